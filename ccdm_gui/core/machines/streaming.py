"""Exact softmax attention over a stream of key chunks (flash-attention style).

Logits are never stored beyond one chunk: the state keeps, per query, a reference
shift m, the shifted sum of weights s = sum exp(l - m), the weighted value sum, the
entropy accumulator u = sum exp(l - m) (l - m), and the running argmax with its logit.
Rescaling by exp(m_old - m_new) when m moves keeps every sum exact.

Logits are taken up to a per-query constant, which cancels in the softmax and in the
entropy: l = (a <q, psi> - a^2 ||psi||^2 / 2) / v. Queries arrive pre-scaled by a / v.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class KeyChunk:
    keys: torch.Tensor  # [G, Kc, D] training patches (unscaled)
    values: torch.Tensor  # [G, Kc, Cv] what the softmax averages (centre pixels)
    first_image: int  # keys are ordered image-major: j -> image first_image + j // kpos_block
    first_kpos: int  # ... and kpos index first_kpos + j % kpos_block
    kpos_block: int


@dataclass
class StreamResult:
    values: torch.Tensor  # [G, M, Cv] softmax-weighted value sums
    best_image: torch.Tensor  # [G, M] int64
    best_kpos: torch.Tensor  # [G, M] int64
    weight: torch.Tensor  # [G, M] winning weight
    entropy: torch.Tensor  # [G, M] nats


class StreamingSoftmax:
    def __init__(self, queries: torch.Tensor, key_scale: float):
        """queries: [G, M, D], already multiplied by a / v; key_scale = a^2 / (2 v)."""
        self.q = queries
        self.key_scale = key_scale
        self.m: torch.Tensor | None = None

    def update(self, chunk: KeyChunk) -> None:
        q, k = self.q, chunk.keys
        bias = (k * k).sum(-1).mul_(-self.key_scale)  # [G, Kc]
        logits = torch.baddbmm(bias[:, None, :], q, k.transpose(1, 2))  # [G, M, Kc]
        cmax, carg = logits.max(dim=-1)
        img = chunk.first_image + torch.div(carg, chunk.kpos_block, rounding_mode="floor")
        kp = chunk.first_kpos + carg % chunk.kpos_block
        if self.m is None:
            m_new = cmax
        else:
            m_new = torch.maximum(self.m, cmax)
        logits.sub_(m_new[..., None])
        e = torch.exp(logits)
        s_chunk = e.sum(-1)
        u_chunk = (e * logits).sum(-1)
        acc_chunk = torch.bmm(e, chunk.values)
        if self.m is None:
            self.s, self.u, self.acc = s_chunk, u_chunk, acc_chunk
            self.best_l, self.best_image, self.best_kpos = cmax, img, kp
        else:
            shift = self.m - m_new  # <= 0
            scale = torch.exp(shift)
            self.u = scale * (self.u + shift * self.s) + u_chunk
            self.s = scale * self.s + s_chunk
            self.acc = scale[..., None] * self.acc + acc_chunk
            # Strict > keeps the earliest candidate on exact ties.
            better = cmax > self.best_l
            self.best_l = torch.where(better, cmax, self.best_l)
            self.best_image = torch.where(better, img, self.best_image)
            self.best_kpos = torch.where(better, kp, self.best_kpos)
        self.m = m_new

    def result(self) -> StreamResult:
        if self.m is None:
            raise ValueError("no candidates were streamed")
        s = self.s
        return StreamResult(
            values=self.acc / s[..., None],
            best_image=self.best_image,
            best_kpos=self.best_kpos,
            weight=torch.exp(self.best_l - self.m) / s,
            entropy=(torch.log(s) - self.u / s).clamp_min_(0.0),
        )

"""The torch route's streamed softmax: tensor operations only (GPUs, float64, wide values,
and installs without the compiled library or numba).

Every extra pass over a tile of logits costs about as much as its exp, so
- the sum of weights is a value column (-1 in the key's shift row), not a reduction;
- for short keys the entropy term comes out of the value product too: with the keys
  [psi, b, -1] among the values, qa . R = sum e (l - m), so exp can work in place; for
  long keys that would double the matrix work, so the tile is kept and u gets a
  row-wise dot instead;
- the argmax needs indices only for rows whose maximum improved, found from amax (a
  fast reduction; max-with-indices over the whole tile is several times slower);
- the clamp to the floor is skipped for chunks where a norm bound shows no logit can
  reach it (_needs_clamp).
"""

from __future__ import annotations

import math

import torch

from .limits import FLOOR
from .streaming import KeyChunk, StreamResult, TiledStream

# Up to this many columns (key, bias, shift and values) the entropy rides in the value
# product (see above).
_ENTROPY_IN_PRODUCT_WIDTH = 24


class TorchStream(TiledStream):
    def __init__(self, queries, key_scale, value_dim, tile_elements=None, separate_keys=False):
        """``separate_keys``: the chunks will carry their patches apart from the bank."""
        super().__init__(queries, key_scale, tile_elements)
        g, m, d = queries.shape
        # The entropy in the value product needs the patches in the bank.
        self.entropy_in_product = (
            d + 2 + value_dim <= _ENTROPY_IN_PRODUCT_WIDTH and not separate_keys
        )
        self.m = torch.zeros(g, m, dtype=queries.dtype, device=queries.device)
        # R is kept transposed ([G, width, M]): the product V^T E^T runs faster than
        # E V when V has few columns.
        width = d + 2 + value_dim if self.entropy_in_product else 1 + value_dim
        self.rt = torch.zeros(g, width, m, dtype=queries.dtype, device=queries.device)
        self.u = None if self.entropy_in_product else torch.zeros_like(self.m)
        self._ebuf: torch.Tensor | None = None
        # For the clamp bound (see _needs_clamp): the largest query norm, and the largest
        # key norm streamed so far.
        self._qnorm = float(self.qa[..., :d].norm(dim=-1).max()) if m else 0.0
        self._knorm = 0.0
        self._clamp = True

    def _take(self, chunk: KeyChunk) -> None:
        bank, d = chunk.bank, self.d
        r = chunk.bias_row(d)
        self._clamp = self._needs_clamp(bank[:, r])
        if chunk.keys is not None and self.entropy_in_product:
            raise ValueError("a chunk with separate keys needs separate_keys=True")
        key_tiles, aux = self._key_tiles(chunk)
        # The whole bank, or from the shift row (the -1s) on: the values.
        vt = bank if self.entropy_in_product else bank[:, r + 1 :]
        counts = chunk.counts
        if counts is not None:
            # A group of c identical candidates has c times the weight of one: every
            # accumulated column (values, sum of weights, entropy terms) is scaled by c,
            # while logits and the argmax stay per candidate.
            vt = vt * counts
        # One split call makes every tile's views at once: per-tile slicing from Python
        # costs dispatch time that other query blocks' threads wait for (the GIL).
        tiles = zip(key_tiles, vt.split(self.tile, -1), strict=True)
        cnts = counts.split(self.tile) if counts is not None else None
        for i, (kt, vtt) in enumerate(tiles):
            at = None if aux is None else aux[i]
            self._tile(kt, vtt, chunk, i * self.tile, None if cnts is None else cnts[i], at)

    def _needs_clamp(self, bias: torch.Tensor) -> bool:
        """Whether a logit of this chunk can fall below FLOOR.

        With R the largest key norm of the chunk and |q| <= Q, a logit minus the shift
        m is at least -Q R - s R^2 - m, and m (always a logit seen so far) is at most Q
        times the largest key norm seen. Small patches at moderate noise stay well above
        the floor, and their tiles then skip a whole pass.
        """
        if self.key_scale <= 0.0:
            return True
        r = math.sqrt(max(0.0, float(-bias.min()) / self.key_scale))
        self._knorm = max(self._knorm, r)
        low = self._qnorm * (r + self._knorm) + self.key_scale * r * r
        return not low < -FLOOR - 1.0

    def _tile(self, keys, vt, chunk: KeyChunk, j0: int, counts=None, aux=None) -> None:
        logits = self._logits(keys, aux, contiguous=False)  # l - m, [G, M, t]
        cmax = logits.amax(-1)
        if not self.started:
            # Nothing accumulated yet, so the first shift needs no rescaling (and must
            # not: exp(-cmax) may be inf when every logit is very negative).
            self.started = True
            logits.sub_(cmax[..., None])
            self.m.copy_(cmax)
            self.qa[..., self.d + 1] = self.m
            cmax = torch.zeros_like(cmax)
            self._track_argmax(logits, cmax, chunk, j0)
        else:
            improved = cmax > self.best
            # best <= rebase always holds (a rebase pulls it back under), so a tile that
            # improves no query's best needs neither a rebase nor the argmax: one check.
            if bool(improved.any()):
                over = cmax > self.rebase
                if bool(over.any()):
                    delta = torch.where(over, cmax, torch.zeros_like(cmax))
                    self._rebase(logits, delta)
                    cmax = cmax - delta  # and best moved by delta too: same comparison
                self._track_argmax(logits, cmax, chunk, j0, improved)
        if self._clamp:
            logits.clamp_min_(FLOOR)
        if self.entropy_in_product:
            e = logits.exp_()
        else:
            if self._ebuf is None or self._ebuf.shape[-1] < logits.shape[-1]:
                self._ebuf = torch.empty_like(self._buf)
            e = torch.exp(logits, out=self._ebuf[..., : logits.shape[-1]])
            # In place: a fresh product tensor per tile costs an allocation and page faults.
            el = torch.mul(e, logits, out=logits)
            self.u += el.sum(-1) if counts is None else torch.matmul(el, counts)
        self.rt.baddbmm_(vt, e.transpose(1, 2))

    def _rebase(self, logits: torch.Tensor, delta: torch.Tensor) -> None:
        """Move the shift m up by delta >= 0 (per query) and rescale what is kept so far."""
        logits.sub_(delta[..., None])
        scale = torch.exp(-delta)
        if self.u is not None:
            s_old = -self.rt[:, 0, :]
            self.u = scale * (self.u - delta * s_old)
        self.rt.mul_(scale[:, None, :])
        self.best -= delta
        self.m += delta
        self.qa[..., self.d + 1] = self.m

    def _track_argmax(self, logits, cmax, chunk: KeyChunk, j0: int, improved=None) -> None:
        """``improved``: the queries whose best this tile beats, known to hold one."""
        if improved is None:
            improved = cmax > self.best
            if not bool(improved.any()):
                return
        gi, mi = improved.nonzero(as_tuple=True)
        top, idx = logits[gi, mi].max(-1)
        self.best[gi, mi] = top
        self._record_winners(chunk, gi, mi, idx + j0)

    def _result(self) -> StreamResult:
        d = self.d
        r = self.rt.transpose(1, 2)  # [G, M, width]
        if self.entropy_in_product:
            s = -r[..., d + 1]
            acc = r[..., d + 2 :]
            u = (self.qa * r[..., : d + 2]).sum(-1)
        else:
            s = -r[..., 0]
            acc = r[..., 1:]
            u = self.u
        return StreamResult(
            values=acc / s[..., None],
            best_image=self.best_image,
            best_kpos=self.best_kpos,
            weight=torch.exp(self.best) / s,
            entropy=(torch.log(s) - u / s).clamp_min_(0.0),
        )

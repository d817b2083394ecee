"""Exact softmax attention over a stream of key chunks (flash-attention style): what the
streamed routes share.

Logits are never stored beyond one cache-sized tile (or block of keys). Per query a
state keeps a reference shift m, the sums R = sum_k exp(l_k - m) [values_k, ...], the
entropy accumulator u = sum exp(l - m) (l - m), and the running argmax. Each route has
its own state class (stream_fold.py, stream_numba.py, stream_torch.py; opened by
streams.open_stream); this module holds the chunks they read, their result, and the
parts two or three of them share.

Logits are taken up to a per-query constant, which cancels in the softmax and in the
entropy: l = (a <q, psi> - a^2 ||psi||^2 / 2) / v. Queries arrive pre-scaled by a / v.
Per (query, candidate) pair there is one multiply-add per patch element and one exp, so
the shift m is lazy: it moves only when a logit exceeds it by more than limits.REBASE
(rare after the first keys), and accumulation is a plain sum with no per-tile rescale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .limits import REBASE


@dataclass
class KeyChunk:
    # [G, D + 2 + Cv, Kc]: rows 0..D-1 the training patches (unscaled), rows D and D+1
    # free for the bias and shift columns (filled here), then the values the softmax
    # averages (centre pixels). Keys lie along the last axis: both products read it as is.
    bank: torch.Tensor
    first_image: int  # keys are ordered image-major: j -> image first_image + j // kpos_block
    first_kpos: int  # ... and kpos index first_kpos + j % kpos_block
    kpos_block: int
    # A deduplicated chunk: key j stands for counts[j] identical candidates, the first of
    # which (in the original image-major order) is origin[j] = image * kpos_block + kpos.
    counts: torch.Tensor | None = None
    origin: torch.Tensor | None = None
    # The bias row already holds ||psi||^2 (cut from box sums of the squared images,
    # cheaper than a pass over the bank); prepare_chunk then only scales it.
    norms: bool = False
    # Patches kept apart from the bank as a strided view [G, D, K] (keys.strip_chunk);
    # the bank then holds only the bias, shift and value rows, [G, 2 + Cv, K].
    keys: torch.Tensor | None = None

    def bias_row(self, d: int) -> int:
        """Index in ``bank`` of the bias row; the shift row follows it."""
        return 0 if self.keys is not None else d


@dataclass
class StreamResult:
    values: torch.Tensor  # [G, M, Cv] softmax-weighted value sums
    best_image: torch.Tensor  # [G, M] int64
    best_kpos: torch.Tensor  # [G, M] int64
    weight: torch.Tensor  # [G, M] winning weight
    entropy: torch.Tensor  # [G, M] nats


# Logit elements per tile and CPU thread for the routes that take logits from a matrix
# product (torch, numba): 2 MiB of float32 each. The threads split every call of a tile
# (on 2 cores 1.3x faster in sum than blocks of queries on one Python thread each).
# With numba's pass (one call per tile, each with a fixed cost of launching threads)
# 2^19 beats 2^18 by 1.07-1.08x over the eight benchmark steps (three runs,
# bench/tile_parts.py --tile-sizes 18 19) and ties 2^20.
TILE_ELEMENTS = 1 << 19
# Tile widths are cut to a multiple of this: rows then start on cache lines and the
# product needs no ragged column block (bench/tile_parts.py, alternately: bbELS P = 3's
# product 1.1-1.7x faster at 576 keys than at 582; P = 7, 768 against 775, even).
TILE_ALIGN = 16
# A GPU has no L2 to fit but pays a launch and a host sync per tile: far bigger tiles.
TILE_ELEMENTS_GPU = 1 << 25


def prepare_chunk(chunk: KeyChunk, d: int, key_scale: float) -> None:
    """Fill a bank's bias row (-key_scale * ||psi||^2) and shift row (-1)."""
    bank = chunk.bank
    r = chunk.bias_row(d)
    if not chunk.norms:
        keys = bank[:, :d] if chunk.keys is None else chunk.keys
        torch.sum(keys * keys, dim=1, out=bank[:, r])
    bank[:, r].mul_(-key_scale)
    bank[:, r + 1] = -1.0


def base2_stats(s, u, acc, best, dtype: torch.dtype):
    """Values, winning weight and entropy (nats) from a compiled route's state: float64
    sums s = sum e, u = sum e l (base 2) and acc [..., Cv] = sum e values, and the best
    logit over the shift (base 2)."""
    values = (acc / s[..., None]).to(dtype)
    weight = (torch.exp2(best.double()) / s).to(dtype)
    entropy = (torch.log(s) - math.log(2.0) * u / s).clamp_min_(0.0).to(dtype)
    return values, weight, entropy


class Stream:
    """One route's softmax state of G x M queries over a stream of key chunks."""

    # How far a logit may pass the shift before the shift moves (limits.REBASE; a test
    # sets its own on a state to make the shift move at every improvement).
    rebase: float = REBASE

    def __init__(self, queries: torch.Tensor, key_scale: float):
        """queries: [G, M, D], already multiplied by a / v; key_scale = a^2 / (2 v)."""
        g, m, d = queries.shape
        self.d, self.key_scale = d, key_scale
        self.best_image = torch.zeros(g, m, dtype=torch.long, device=queries.device)
        self.best_kpos = torch.zeros_like(self.best_image)
        self.started = False

    def update(self, chunk: KeyChunk, prepared: bool = False) -> None:
        """Take one chunk of keys in. ``prepared``: ``prepare_chunk`` has already filled the
        bias and shift rows (several states sharing one chunk must not all write them)."""
        if not prepared:
            prepare_chunk(chunk, self.d, self.key_scale)
        self._take(chunk)

    def result(self) -> StreamResult:
        if not self.started:
            raise ValueError("no candidates were streamed")
        return self._result()

    def _take(self, chunk: KeyChunk) -> None:
        raise NotImplementedError

    def _result(self) -> StreamResult:
        raise NotImplementedError

    def _record_winners(self, chunk: KeyChunk, gi, mi, j) -> None:
        """Queries (gi, mi) now have their winner at index j of ``chunk``."""
        if chunk.origin is not None:
            j = chunk.origin[j]
        self.best_image[gi, mi] = chunk.first_image + torch.div(
            j, chunk.kpos_block, rounding_mode="floor"
        )
        self.best_kpos[gi, mi] = chunk.first_kpos + j % chunk.kpos_block


class TiledStream(Stream):
    """A state that takes its logits from a matrix product, tile by tile: the queries
    augmented by two columns ([q, 1, m] . [psi, b, -1]), so the bias -a^2 ||psi||^2 /
    (2v) and the shift -m ride in the product and a tile comes out already shifted."""

    def __init__(self, queries, key_scale, tile_elements: int | None = None):
        super().__init__(queries, key_scale)
        g, m, d = queries.shape
        self.qa = torch.empty(g, m, d + 2, dtype=queries.dtype, device=queries.device)
        self.qa[..., :d] = queries
        self.qa[..., d] = 1.0
        self.qa[..., d + 1] = 0.0
        self.best = torch.full(  # relative to the shift
            (g, m), -torch.inf, dtype=queries.dtype, device=queries.device
        )
        if tile_elements is None:
            if queries.device.type == "cpu":
                tile_elements = TILE_ELEMENTS * torch.get_num_threads()
            else:
                tile_elements = TILE_ELEMENTS_GPU
        self.tile = max(1, tile_elements // (g * m))
        if self.tile > TILE_ALIGN:
            self.tile -= self.tile % TILE_ALIGN
        self._buf: torch.Tensor | None = None

    def _key_tiles(self, chunk: KeyChunk):
        """The chunk's keys in tiles, and beside them the tiles of its bias and shift rows
        where the patches lie apart from the bank (else None: those rows follow them)."""
        r = chunk.bias_row(self.d)
        if chunk.keys is None:
            return chunk.bank[:, : r + 2].split(self.tile, -1), None
        return chunk.keys.split(self.tile, -1), chunk.bank[:, r : r + 2].split(self.tile, -1)

    def _logits(self, keys: torch.Tensor, aux: torch.Tensor | None, contiguous: bool):
        """l - m of one tile, [G, M, t], in a buffer reused from tile to tile."""
        g, m, _ = self.qa.shape
        t = keys.shape[-1]
        if self._buf is None or self._buf.shape[-1] < t:
            self._buf = torch.empty(g, m, t, dtype=self.qa.dtype, device=self.qa.device)
        if contiguous:
            buf = self._buf.view(-1)[: g * m * t].view(g, m, t)
        else:
            buf = self._buf if self._buf.shape[-1] == t else self._buf[..., :t]
        if aux is None:
            return torch.bmm(self.qa, keys, out=buf)
        d = self.d
        torch.bmm(self.qa[..., d:], aux, out=buf)
        return buf.baddbmm_(self.qa[..., :d], keys)

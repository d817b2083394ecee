"""Exact softmax attention over a stream of key chunks (flash-attention style).

Logits are never stored beyond one cache-sized tile. Per query the state keeps a
reference shift m, the weighted sums R = sum_k exp(l_k - m) [values_k, ...], the
entropy accumulator u = sum exp(l - m) (l - m), and the running argmax.

Logits are taken up to a per-query constant, which cancels in the softmax and in the
entropy: l = (a <q, psi> - a^2 ||psi||^2 / 2) / v. Queries arrive pre-scaled by a / v.

Where the time goes (and why the code looks like this): per (query, candidate) pair
there is one multiply-add per patch element and one exp. Every extra pass over a logits
tile costs about as much as the exp, so
- the bias -a^2 ||psi||^2 / (2v) and the shift -m ride in the matrix product as two
  augmented columns ([q, 1, m] . [psi, b, -1]), so the tile comes out already shifted;
- m is lazy: it moves only when a tile's logits exceed it by more than _REBASE (rare
  after the first tile), so accumulation is a plain R += E V with no per-tile rescale;
  exp(l - m) <= exp(_REBASE) cannot overflow float32 sums;
- the sum of weights is a value column (-1 in the key's shift column), not a reduction;
- for small patches the entropy term also comes out of that product: with keys
  [psi, b, -1] in the values, q_aug . R = sum e (l - m), so exp can work in place;
  for large patches that product would double the matrix work, so the tile is kept and
  u gets a row-wise dot instead;
- the argmax needs indices only for rows whose maximum improved, found from amax
  (a fast reduction; max-with-indices over the whole tile is several times slower);
- tiles are sized to stay in L2 cache;
- on a CPU (float32, few value columns) everything after the matrix product and the
  row maximum is one compiled loop per row (fused.py), with float64 sums: the passes
  listed above are then the route GPUs, float64 and installs without numba take.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import fused, native


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


# Logits may exceed the shift by this much before m moves: exp(20) * 6e7 candidates
# stays far inside float32.
_REBASE = 20.0
# Logit elements per tile and CPU thread: 2 MiB of float32 each. The threads split
# every call of a tile (measured on 2 cores: 1.3x faster in sum than blocks of queries
# on one Python thread each). With the torch passes 2^18, which fits a core's L2, beat
# 2^16, 2^17, 2^19 and 2^20; since the compiled pass (one call per tile, each with a
# fixed cost of launching threads) 2^19 beats 2^18 by 1.07-1.08x over the eight
# benchmark steps (three runs, as bench/tile_parts.py --tile-sizes 18 19) and ties 2^20.
TILE_ELEMENTS = 1 << 19
# Tile widths are cut to a multiple of this: rows then start on cache lines and the
# product needs no ragged column block (bench/tile_parts.py, alternately: bbELS P = 3's
# product 1.1-1.7x faster at 576 keys than at 582; P = 7, 768 against 775, even).
TILE_ALIGN = 16
# A GPU has no L2 to fit but pays a launch and a host sync per tile: far bigger tiles.
TILE_ELEMENTS_GPU = 1 << 25
# exp of a logit more than ~87 below the shift is a float32 denormal, and denormals run
# through exp, the products and the sums tens of times slower (measured 60x for exp at
# late noise times, where logits spread over thousands). Logits are clamped here first:
# exp(-80) is still a normal float, and the weight it adds is below 1e-34 per candidate
# against a total of at least 1 (the shift never exceeds the largest logit seen).
FLOOR = -80.0
# Up to this many value columns, the entropy rides in the value product (see above).
_FOLD_WIDTH = 24
_LOG2E = 1.0 / math.log(2.0)
# The compiled pass's constants, in base 2: 2^-80 is still a normal float32.
_FLOOR32 = np.float32(FLOOR)
_REBASE32 = np.float32(_REBASE)
_NO_COUNTS = np.ones(1, np.float32)
# A tile row whose largest logit is 2^-60 below the shift is skipped: the shift is a
# logit seen so far, so the sum of weights is at least 1, and even 2^26 (6.7e7, every
# patch of 60,000 MNIST images) such candidates add under 2^-34 to it, far below
# float32 resolution. Late in sampling most tiles are such (the posterior is peaked).
_NEGLIGIBLE32 = np.float32(-60.0)
# Up to this many value columns a CPU tile goes through fused.py's compiled pass, which
# dots each value row itself; wider values (the ideal machine's whole images) need the
# matrix product.
_FUSED_VALUES = 8


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


class StreamingSoftmax:
    def __init__(
        self,
        queries: torch.Tensor,
        key_scale: float,
        value_dim: int,
        tile_elements: int | None = None,
        separate_keys: bool = False,
    ):
        """queries: [G, M, D], already multiplied by a / v; key_scale = a^2 / (2 v).
        ``separate_keys``: the chunks will carry their patches apart from the bank."""
        g, m, d = queries.shape
        self.d, self.key_scale = d, key_scale
        cpu32 = queries.device.type == "cpu" and queries.dtype == torch.float32
        self.native = (
            cpu32 and d <= native.MAX_DIM and value_dim <= native.MAX_VALUES and native.available()
        )
        self.fused = cpu32 and not self.native and value_dim <= _FUSED_VALUES and fused.available()
        # Folding the entropy into the value product needs the patches in the bank.
        self.fold = (
            d + 2 + value_dim <= _FOLD_WIDTH
            and not separate_keys
            and not (self.fused or self.native)
        )
        self.qa = torch.empty(g, m, d + 2, dtype=queries.dtype, device=queries.device)
        self.qa[..., :d] = queries
        self.qa[..., d] = 1.0
        self.qa[..., d + 1] = 0.0
        self.best = torch.full(  # relative to the shift
            (g, m), -torch.inf, dtype=queries.dtype, device=queries.device
        )
        self.best_image = torch.zeros(g, m, dtype=torch.long, device=queries.device)
        self.best_kpos = torch.zeros_like(self.best_image)
        self.started = False
        if tile_elements is None:
            if queries.device.type == "cpu":
                tile_elements = TILE_ELEMENTS * torch.get_num_threads()
            else:
                tile_elements = TILE_ELEMENTS_GPU
        self.tile = max(1, tile_elements // (g * m))
        if self.tile > TILE_ALIGN:
            self.tile -= self.tile % TILE_ALIGN
        self._buf: torch.Tensor | None = None
        if self.native:
            self._init_native(g, m, value_dim)
        elif self.fused:
            self._init_fused(g, m, value_dim)
        else:
            self._init_torch(g, m, value_dim)

    def _init_torch(self, g: int, m: int, value_dim: int) -> None:
        d, like = self.d, self.qa
        self.m = torch.zeros(g, m, dtype=like.dtype, device=like.device)
        # R is kept transposed ([G, width, M]): the product V^T E^T runs faster than
        # E V when V has few columns.
        width = d + 2 + value_dim if self.fold else 1 + value_dim
        self.rt = torch.zeros(g, width, m, dtype=like.dtype, device=like.device)
        self.u = None if self.fold else torch.zeros_like(self.m)
        self._ebuf: torch.Tensor | None = None
        # For the clamp bound (see _needs_clamp): the largest query norm, and the largest
        # key norm streamed so far.
        self._qnorm = float(self.qa[..., :d].norm(dim=-1).max()) if m else 0.0
        self._knorm = 0.0
        self._clamp = True

    def _init_fused(self, g: int, m: int, value_dim: int) -> None:
        # The compiled pass takes logits in base 2 (its exp is 2^x): scaling the query
        # and its bias multiplier by log2 e does that inside the product. The shift,
        # best and the entropy sum u are then in base 2 too (result() converts).
        self.qa[..., : self.d + 1] *= _LOG2E
        # numpy views share the tensors' memory: the kernel moves the shift column of
        # qa itself, so the next tile's product already subtracts the new shift.
        self._best_j = torch.zeros(g, m, dtype=torch.long)
        self._changed = torch.zeros(g, m, dtype=torch.bool)
        self._s = torch.zeros(g, m, dtype=torch.float64)
        self._u = torch.zeros(g, m, dtype=torch.float64)
        self._acc = torch.zeros(g, m, value_dim, dtype=torch.float64)
        # Made once: a tile has thousands of siblings, and each view costs a call.
        state = (self.best, self._best_j, self._changed, self._s, self._u, self._acc)
        self._np_state = (self.qa.numpy()[..., self.d + 1], *(t.numpy() for t in state))

    def _init_native(self, g: int, m: int, value_dim: int) -> None:
        # Base-2 state as in _init_fused, in the kernel's layout: queries padded to whole
        # blocks of lanes, each block's k-th numbers side by side ([G, Mpad / L, D, L]),
        # per-query arrays [G, Mpad], the value sums [G, Cv, Mpad]. Padding lanes compute
        # junk that is never read.
        d, lanes = self.d, native.LANES
        mpad = -(-m // lanes) * lanes
        self._mpad = mpad
        q = np.zeros((g, mpad, d), np.float32)
        q[:, :m] = (self.qa[..., :d] * _LOG2E).numpy()
        self._qt = np.ascontiguousarray(q.reshape(g, mpad // lanes, lanes, d).transpose(0, 1, 3, 2))
        self._shift = np.zeros((g, mpad), np.float32)
        self._nbest = np.full((g, mpad), -np.inf, np.float32)
        self._nbest_j = np.zeros((g, mpad), np.int64)
        self._nchanged = np.zeros((g, mpad), np.uint8)
        self._ns = np.zeros((g, mpad))
        self._nu = np.zeros((g, mpad))
        self._nacc = np.zeros((g, value_dim, mpad))

    def _update_native(self, chunk: KeyChunk) -> None:
        d, mpad = self.d, self._mpad
        g = self._qt.shape[0]
        r = chunk.bias_row(d)
        bank = chunk.bank.contiguous()
        keys = bank[:, :d] if chunk.keys is None else chunk.keys
        if keys.stride(-1) != 1:
            keys = keys.contiguous()
        k_n = keys.shape[-1]
        if k_n == 0:
            return
        cv = bank.shape[1] - r - 2
        if not self.started:
            # The first shift is the logit of the first key, a logit seen: every sum then
            # holds a term of at least 1, which the floor and the skip rely on.
            k0 = keys[:, :, 0].numpy()
            b0 = bank[:, r, 0].numpy()
            dots = np.einsum("gbdl,gd->gbl", self._qt, k0).reshape(g, -1)
            self._shift[:] = dots + (b0 * _LOG2E)[:, None]
            self.started = True
        counts = None
        if chunk.counts is not None:
            counts = chunk.counts.to(torch.float32).contiguous().numpy()
        bank_np = bank.numpy()
        kb = native.key_block(d, cv)
        groups = []
        for gi in range(g):
            groups.append(
                native.FoldArgs(
                    d, keys.stride(1), cv, bank.stride(1), mpad, k_n, kb,
                    self._qt[gi].ctypes.data, keys[gi].data_ptr(), bank_np[gi, r].ctypes.data,
                    bank_np[gi, r + 2].ctypes.data if cv else 0,
                    None if counts is None else counts.ctypes.data,
                    _LOG2E, _FLOOR32, _REBASE32, _NEGLIGIBLE32,
                    self._shift[gi].ctypes.data, self._nbest[gi].ctypes.data,
                    self._nbest_j[gi].ctypes.data, self._nchanged[gi].ctypes.data,
                    self._ns[gi].ctypes.data, self._nu[gi].ctypes.data,
                    self._nacc[gi].ctypes.data, native.POLY,
                )
            )  # fmt: skip
        self._nchanged[:] = 0
        native.fold(groups, mpad, torch.get_num_threads())
        m = self.qa.shape[1]
        gi, mi = np.nonzero(self._nchanged[:, :m])
        if len(gi):
            j = torch.from_numpy(self._nbest_j[gi, mi])
            self._record_winners(chunk, torch.from_numpy(gi), torch.from_numpy(mi), j)

    def update(self, chunk: KeyChunk, prepared: bool = False) -> None:
        """Fold one chunk of keys in. ``prepared``: ``prepare_chunk`` has already filled the
        bias and shift rows (several states sharing one chunk must not all write them)."""
        bank, d = chunk.bank, self.d
        if not prepared:
            prepare_chunk(chunk, d, self.key_scale)
        if self.native:
            self._update_native(chunk)
            return
        if self.fused:  # always clamps: one max per logit in the compiled loop
            self._update_fused(chunk)
            return
        r = chunk.bias_row(d)
        self._clamp = self._needs_clamp(bank[:, r])
        if chunk.keys is not None and self.fold:
            raise ValueError("a chunk with separate keys needs separate_keys=True")
        key_tiles, aux = self._key_tiles(chunk)
        vt = bank if self.fold else bank[:, r + 1 :]  # shift row (the -1s), then values
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

    def _key_tiles(self, chunk: KeyChunk):
        """The chunk's keys in tiles, and beside them the tiles of its bias and shift rows
        where the patches lie apart from the bank (else None: those rows follow them)."""
        r = chunk.bias_row(self.d)
        if chunk.keys is None:
            return chunk.bank[:, : r + 2].split(self.tile, -1), None
        return chunk.keys.split(self.tile, -1), chunk.bank[:, r : r + 2].split(self.tile, -1)

    def _update_fused(self, chunk: KeyChunk) -> None:
        bank = chunk.bank
        key_tiles, aux = self._key_tiles(chunk)
        voff = chunk.bias_row(self.d) + 2  # values follow the bias and shift rows
        weighted = chunk.counts is not None
        counts = chunk.counts.numpy() if weighted else _NO_COUNTS
        bank_np = bank.contiguous().numpy()
        self._changed.zero_()
        fused.set_threads(torch.get_num_threads())
        j0 = 0
        for i, kt in enumerate(key_tiles):
            logits = self._logits(kt, None if aux is None else aux[i])
            with fused.LAUNCH:
                fused.fold_tile(
                    logits.numpy(), bank_np, voff, j0, counts, weighted,
                    _FLOOR32, _REBASE32, _NEGLIGIBLE32, *self._np_state,
                )  # fmt: skip
            j0 += kt.shape[-1]
            self.started = True
        gi, mi = self._changed.nonzero(as_tuple=True)
        if len(gi):
            self._record_winners(chunk, gi, mi, self._best_j[gi, mi])

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

    def _logits(self, keys: torch.Tensor, aux: torch.Tensor | None) -> torch.Tensor:
        g, m, _ = self.qa.shape
        t = keys.shape[-1]
        if self._buf is None or self._buf.shape[-1] < t:
            self._buf = torch.empty(g, m, t, dtype=self.qa.dtype, device=self.qa.device)
        if self.fused:  # the compiled pass wants each tile contiguous
            buf = self._buf.view(-1)[: g * m * t].view(g, m, t)
        else:
            buf = self._buf if self._buf.shape[-1] == t else self._buf[..., :t]
        if aux is None:
            return torch.bmm(self.qa, keys, out=buf)
        d = self.d
        torch.bmm(self.qa[..., d:], aux, out=buf)
        return buf.baddbmm_(self.qa[..., :d], keys)

    def _tile(self, keys, vt, chunk: KeyChunk, j0: int, counts=None, aux=None) -> None:
        logits = self._logits(keys, aux)  # l - m, [G, M, t]
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
            # best <= _REBASE always holds (a rebase pulls it back under), so a tile that
            # improves no query's best needs neither a rebase nor the argmax: one check.
            if bool(improved.any()):
                over = cmax > _REBASE
                if bool(over.any()):
                    delta = torch.where(over, cmax, torch.zeros_like(cmax))
                    self._rebase(logits, delta)
                    cmax = cmax - delta  # and best moved by delta too: same comparison
                self._track_argmax(logits, cmax, chunk, j0, improved)
        if self._clamp:
            logits.clamp_min_(FLOOR)
        if self.fold:
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

    def _record_winners(self, chunk: KeyChunk, gi, mi, j) -> None:
        """Queries (gi, mi) now have their winner at index j of ``chunk``."""
        if chunk.origin is not None:
            j = chunk.origin[j]
        self.best_image[gi, mi] = chunk.first_image + torch.div(
            j, chunk.kpos_block, rounding_mode="floor"
        )
        self.best_kpos[gi, mi] = chunk.first_kpos + j % chunk.kpos_block

    def _base2_result(self, s, u, acc, best) -> StreamResult:
        values, weight, entropy = base2_stats(s, u, acc, best, self.qa.dtype)
        return StreamResult(values, self.best_image, self.best_kpos, weight, entropy)

    def result(self) -> StreamResult:
        if not self.started:
            raise ValueError("no candidates were streamed")
        d = self.d
        if self.native:  # the kernel's layout (see _init_native), padding lanes cut off
            m = self.qa.shape[1]
            return self._base2_result(
                torch.from_numpy(self._ns[:, :m]),
                torch.from_numpy(self._nu[:, :m]),
                torch.from_numpy(self._nacc[..., :m]).transpose(1, 2),
                torch.from_numpy(self._nbest[:, :m]),
            )
        if self.fused:
            return self._base2_result(self._s, self._u, self._acc, self.best)
        r = self.rt.transpose(1, 2)  # [G, M, width]
        if self.fold:
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

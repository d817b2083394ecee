"""The compiled fold's streamed softmax (foldc.c through native.py): logits, exp and sums
for sixteen (AVX2: eight) queries at a time in vector registers, nothing per logit
stored. The state lives in the kernel's layout (below) and is in base 2."""

from __future__ import annotations

import numpy as np
import torch

from . import native
from .limits import FLOOR32, LOG2E, NEGLIGIBLE32
from .streaming import KeyChunk, Stream, StreamResult, base2_stats


class FoldStream(Stream):
    # Floats of keys per block the kernel copies (native.BLOCK_FLOATS; a test sets fewer
    # on a state to run many blocks).
    block_floats: int = native.BLOCK_FLOATS

    def __init__(self, queries, key_scale, value_dim, isa: int):
        """``isa``: the kernel's code to run (native.AVX512 or native.AVX2)."""
        super().__init__(queries, key_scale)
        g, m, d = queries.shape
        self.isa, self._m, self._dtype = isa, m, queries.dtype
        # Queries padded to whole blocks of lanes, each block's k-th numbers side by side
        # ([G, Mpad / L, D, L]), per-query arrays [G, Mpad], the value sums [G, Cv, Mpad].
        # Padding lanes compute junk that is never read.
        lanes = native.LANES
        mpad = -(-m // lanes) * lanes
        self._mpad = mpad
        q = np.zeros((g, mpad, d), np.float32)
        q[:, :m] = (queries * LOG2E).numpy()
        self._qt = np.ascontiguousarray(q.reshape(g, mpad // lanes, lanes, d).transpose(0, 1, 3, 2))
        self._shift = np.zeros((g, mpad), np.float32)
        self._best = np.full((g, mpad), -np.inf, np.float32)
        self._best_j = np.zeros((g, mpad), np.int64)
        self._changed = np.zeros((g, mpad), np.uint8)
        self._s = np.zeros((g, mpad))
        self._u = np.zeros((g, mpad))
        self._acc = np.zeros((g, value_dim, mpad))

    def _take(self, chunk: KeyChunk) -> None:
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
            self._shift[:] = dots + (b0 * LOG2E)[:, None]
            self.started = True
        counts = None
        if chunk.counts is not None:
            counts = chunk.counts.to(torch.float32).contiguous().numpy()
        bank_np = bank.numpy()
        kb = native.key_block(d, cv, self.block_floats)
        rebase = np.float32(self.rebase)
        groups = []
        for gi in range(g):
            groups.append(
                native.FoldArgs(
                    d, keys.stride(1), cv, bank.stride(1), mpad, k_n, kb,
                    self._qt[gi].ctypes.data, keys[gi].data_ptr(), bank_np[gi, r].ctypes.data,
                    bank_np[gi, r + 2].ctypes.data if cv else 0,
                    None if counts is None else counts.ctypes.data,
                    LOG2E, FLOOR32, rebase, NEGLIGIBLE32,
                    self._shift[gi].ctypes.data, self._best[gi].ctypes.data,
                    self._best_j[gi].ctypes.data, self._changed[gi].ctypes.data,
                    self._s[gi].ctypes.data, self._u[gi].ctypes.data,
                    self._acc[gi].ctypes.data, native.POLY,
                )
            )  # fmt: skip
        self._changed[:] = 0
        native.fold(groups, mpad, torch.get_num_threads(), self.isa)
        gi, mi = np.nonzero(self._changed[:, : self._m])
        if len(gi):
            j = torch.from_numpy(self._best_j[gi, mi])
            self._record_winners(chunk, torch.from_numpy(gi), torch.from_numpy(mi), j)

    def _result(self) -> StreamResult:
        m = self._m  # padding lanes cut off
        values, weight, entropy = base2_stats(
            torch.from_numpy(self._s[:, :m]),
            torch.from_numpy(self._u[:, :m]),
            torch.from_numpy(self._acc[..., :m]).transpose(1, 2),
            torch.from_numpy(self._best[:, :m]),
            self._dtype,
        )
        return StreamResult(values, self.best_image, self.best_kpos, weight, entropy)

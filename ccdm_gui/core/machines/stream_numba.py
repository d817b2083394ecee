"""The numba route's streamed softmax: torch's matrix product for each tile of logits,
then numba's compiled pass (fused.tile_pass) for everything after it in one loop per
row, with float64 sums. Values up to limits.MAX_VALUES columns (the pass dots each)."""

from __future__ import annotations

import numpy as np
import torch

from . import fused
from .limits import FLOOR32, LOG2E, NEGLIGIBLE32
from .streaming import KeyChunk, StreamResult, TiledStream, base2_stats

_NO_COUNTS = np.ones(1, np.float32)


class NumbaStream(TiledStream):
    def __init__(self, queries, key_scale, value_dim, tile_elements=None):
        super().__init__(queries, key_scale, tile_elements)
        g, m, d = queries.shape
        # The pass takes logits in base 2 (its exp is 2^x): scaling the query and its
        # bias multiplier by log2 e does that inside the product. The shift, best and
        # the entropy sum u are then in base 2 too (base2_stats converts).
        self.qa[..., : d + 1] *= LOG2E
        self._best_j = torch.zeros(g, m, dtype=torch.long)
        self._changed = torch.zeros(g, m, dtype=torch.bool)
        self._s = torch.zeros(g, m, dtype=torch.float64)
        self._u = torch.zeros(g, m, dtype=torch.float64)
        self._acc = torch.zeros(g, m, value_dim, dtype=torch.float64)
        # numpy views share the tensors' memory: the pass moves the shift column of qa
        # itself, so the next tile's product already subtracts the new shift. Made once:
        # a tile has thousands of siblings, and each view costs a call.
        state = (self.best, self._best_j, self._changed, self._s, self._u, self._acc)
        self._np_state = (self.qa.numpy()[..., d + 1], *(t.numpy() for t in state))

    def _take(self, chunk: KeyChunk) -> None:
        key_tiles, aux = self._key_tiles(chunk)
        voff = chunk.bias_row(self.d) + 2  # values follow the bias and shift rows
        weighted = chunk.counts is not None
        counts = chunk.counts.numpy() if weighted else _NO_COUNTS
        bank_np = chunk.bank.contiguous().numpy()
        rebase = np.float32(self.rebase)
        self._changed.zero_()
        fused.set_threads(torch.get_num_threads())
        j0 = 0
        for i, kt in enumerate(key_tiles):
            logits = self._logits(kt, None if aux is None else aux[i], contiguous=True)
            with fused.LAUNCH:
                fused.tile_pass(
                    logits.numpy(), bank_np, voff, j0, counts, weighted,
                    FLOOR32, rebase, NEGLIGIBLE32, *self._np_state,
                )  # fmt: skip
            j0 += kt.shape[-1]
            self.started = True
        gi, mi = self._changed.nonzero(as_tuple=True)
        if len(gi):
            self._record_winners(chunk, gi, mi, self._best_j[gi, mi])

    def _result(self) -> StreamResult:
        values, weight, entropy = base2_stats(self._s, self._u, self._acc, self.best, self.qa.dtype)
        return StreamResult(values, self.best_image, self.best_kpos, weight, entropy)

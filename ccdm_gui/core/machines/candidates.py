"""Which training patches compete at which pixel (docs/design.md, The score machines).

Every patch machine is expressed as a few ``Problem``s. A problem holds G groups; the
query pixels of one group all share one candidate set, namely the patches centred at
``kpos`` in every training image. Sharing is what turns a machine into a few big
attention calls instead of H*W small ones: ELS is one group, bbELS is one interior
group plus its edge rows, edge columns and corners, LS is H*W groups of one pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .patches import grid_positions


@dataclass(frozen=True)
class Problem:
    qpos: torch.Tensor  # [G, Mq, 2] query pixel (row, col) in the noisy image
    kpos: torch.Tensor  # [G, Kp, 2] candidate patch centres in each training image
    query_boundary: str
    key_boundary: str
    # The slab (row0, row1, col0, col1) of the training images padded by d (per
    # key_boundary) whose windows are the keys, matching kpos; empty: no slab ("each"
    # problems, and the one-pixel problems of top_candidates, which cut kpos by index).
    slabs: tuple[tuple[int, int, int, int], ...] = ()
    # How the keys lie in the slab's windows: "valid" one group holding every window,
    # row-major; "rows" one group per window row (keys along it); "cols" one group per
    # window column. Cutting from a slab is several times faster than gathering patches
    # by index, and no per-pixel copy of a window is ever made. "each": one group per
    # pixel, its one key per image the patch at that pixel (LS, bbELS corners), computed
    # by window sums of product images (local.py), no slab.
    layout: str = "valid"

    @property
    def groups(self) -> int:
        return self.qpos.shape[0]

    @property
    def keys_per_image(self) -> int:
        return self.kpos.shape[1]

    @property
    def all_valid(self) -> bool:
        """One group of every fully-inside window (ELS, bbELS interior): shareable keys."""
        return self.layout == "valid" and len(self.slabs) == 1 and self.groups == 1

    @property
    def rectangles(self) -> bool:
        """Each group's query pixels and its key centres fill a rectangle: the slab layouts
        (the whole image or its interior, one edge row, one edge column)."""
        return self.layout in ("valid", "rows", "cols") and len(self.slabs) == 1


def effective_machine(machine: str, patch_size: int, h: int, w: int) -> str:
    """ELS and bbELS have no valid patch once P reaches the image size; they become LS."""
    if machine in ("els", "bbels") and (patch_size >= h or patch_size >= w):
        return "ls"
    return machine


def build_problems(
    machine: str, patch_size: int, boundary: str, h: int, w: int, device: torch.device | str
) -> list[Problem]:
    machine = effective_machine(machine, patch_size, h, w)
    d = patch_size // 2
    if machine == "ls":
        pos = grid_positions(range(h), range(w), device)[:, None, :]
        return [Problem(pos, pos, boundary, boundary, layout="each")]
    if machine == "els":
        q = grid_positions(range(h), range(w), device)[None]
        k = grid_positions(range(d, h - d), range(d, w - d), device)[None]
        # Candidates are fully inside patches, so the key boundary never matters.
        return [Problem(q, k, boundary, "zeros", ((d, h + d, d, w + d),), "valid")]
    if machine == "bbels":
        return _bbels_problems(d, h, w, device)
    raise ValueError(f"no patch problems for machine {machine!r}")


def _bbels_problems(d: int, h: int, w: int, device: torch.device | str) -> list[Problem]:
    inner_rows, inner_cols = range(d, h - d), range(d, w - d)
    interior = grid_positions(inner_rows, inner_cols, device)[None]
    problems = [Problem(interior, interior, "zeros", "zeros", ((d, h + d, d, w + d),), "valid")]
    if d == 0:
        return problems
    top, bottom = range(d), range(h - d, h)
    left, right = range(d), range(w - d, w)
    # An edge pixel's candidates are centred in its own row (or column) at any interior
    # column (row): exactly the query pixels of that edge line, so qpos == kpos. In padded
    # coordinates the windows of rows r..r+d-1 come from the 3d rows starting at r.
    # One problem per strip: a strip's keys are then overlapping views of one array of
    # unfolded image rows (keys.strip_chunk), where two strips would need two arrays.
    rows = [grid_positions(range(r, r + 1), inner_cols, device) for r in [*top, *bottom]]
    cols = [grid_positions(inner_rows, range(c, c + 1), device) for c in [*left, *right]]
    strips = [
        (torch.stack(rows[:d]), "rows", (0, 3 * d, d, w + d)),
        (torch.stack(rows[d:]), "rows", (h - d, h + 2 * d, d, w + d)),
        (torch.stack(cols[:d]), "cols", (d, h + d, 0, 3 * d)),
        (torch.stack(cols[d:]), "cols", (d, h + d, w - d, w + 2 * d)),
    ]
    blocks = [(top, left), (top, right), (bottom, left), (bottom, right)]
    corners = torch.cat([grid_positions(rr, cc, device) for rr, cc in blocks])[:, None, :]
    problems += [Problem(pos, pos, "zeros", "zeros", (slab,), kind) for pos, kind, slab in strips]
    problems.append(Problem(corners, corners, "zeros", "zeros", layout="each"))
    return problems


def logit_count(machine: str, patch_size: int, boundary: str, h: int, w: int, n: int) -> int:
    """Number of (query, candidate) logits per noisy image, i.e. exps per machine call.

    The ideal machine has one query per image (all pixels share one softmax); the patch
    machines have one query per pixel. Multiply by P*P*C for the cross-term MACs of a
    patch machine (by C*H*W for the ideal machine).
    """
    if machine == "ideal":
        return n
    total = 0
    for prob in build_problems(machine, patch_size, boundary, h, w, "cpu"):
        total += prob.groups * prob.qpos.shape[1] * prob.keys_per_image * n
    return total

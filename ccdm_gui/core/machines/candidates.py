"""Which training patches compete at which pixel (science.md section 2 table).

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

MACHINES = ("ideal", "ls", "els", "bbels")
BOUNDARIES = ("zeros", "circular")


@dataclass(frozen=True)
class Problem:
    qpos: torch.Tensor  # [G, Mq, 2] query pixel (row, col) in the noisy image
    kpos: torch.Tensor  # [G, Kp, 2] candidate patch centres in each training image
    query_boundary: str
    key_boundary: str
    # kpos is one group holding every valid centre in row-major order, so keys can be
    # cut with im2col (F.unfold), far faster than gathering by index.
    all_valid: bool = False

    @property
    def groups(self) -> int:
        return self.qpos.shape[0]

    @property
    def keys_per_image(self) -> int:
        return self.kpos.shape[1]


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
        return [Problem(pos, pos, boundary, boundary)]
    if machine == "els":
        q = grid_positions(range(h), range(w), device)[None]
        k = grid_positions(range(d, h - d), range(d, w - d), device)[None]
        # Candidates are fully inside patches, so the key boundary never matters.
        return [Problem(q, k, boundary, "zeros", all_valid=True)]
    if machine == "bbels":
        return _bbels_problems(d, h, w, device)
    raise ValueError(f"no patch problems for machine {machine!r}")


def _bbels_problems(d: int, h: int, w: int, device: torch.device | str) -> list[Problem]:
    inner_rows, inner_cols = range(d, h - d), range(d, w - d)
    interior = grid_positions(inner_rows, inner_cols, device)[None]
    problems = [Problem(interior, interior, "zeros", "zeros", all_valid=True)]
    if d == 0:
        return problems
    edge_rows = list(range(d)) + list(range(h - d, h))
    edge_cols = list(range(d)) + list(range(w - d, w))
    # An edge pixel's candidates are centred in its own row (or column) at any interior
    # column (row): exactly the query pixels of that edge line, so qpos == kpos.
    rows = torch.stack([grid_positions(range(r, r + 1), inner_cols, device) for r in edge_rows])
    cols = torch.stack([grid_positions(inner_rows, range(c, c + 1), device) for c in edge_cols])
    corners = torch.tensor(
        [(r, c) for r in edge_rows for c in edge_cols], device=device, dtype=torch.long
    )[:, None, :]
    problems += [
        Problem(rows, rows, "zeros", "zeros"),
        Problem(cols, cols, "zeros", "zeros"),
        Problem(corners, corners, "zeros", "zeros"),
    ]
    return problems


def candidate_count(machine: str, patch_size: int, boundary: str, h: int, w: int, n: int) -> int:
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

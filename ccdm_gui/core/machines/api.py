"""The score machines' public entry points: denoise with provenance, inspect one pixel."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .. import cancel
from ..machine_registry import check_pair
from . import dedup, local, routes, windowsums
from .candidates import Problem, build_problems, effective_machine
from .keys import image_chunks, key_chunks, strip_keys, strip_order, unique_chunks
from .local import corner_mosaic, local_denoise, mosaic_position
from .patches import gather_patches, grid_positions, pad_images
from .routes import Route, Task
from .streaming import base2_stats, prepare_chunk
from .streams import open_stream

# Elements in one chunk of key patches: cutting patches has a fixed cost per chunk, so
# chunks are large; the attention itself then walks each chunk in cache-sized tiles.
_CHUNK_ELEMENTS = 1 << 22
_CHUNK_ELEMENTS_GPU = 1 << 27
# Queries per streaming state; more queries are split into several states that each
# take every chunk of keys (the tile of logits is queries x keys, so more queries per
# state would mean narrower tiles).
_QUERY_BLOCK = 1024
# v = 1 - abar is 0 at abar = 1; the softmax then is a hard nearest-patch choice, which a
# tiny positive v reproduces without dividing by zero.
_MIN_V = 1e-12


@dataclass
class MachineOutput:
    x0: torch.Tensor  # [B, C, H, W]
    source_index: torch.Tensor  # [B, H, W] int64 index into train
    source_yx: torch.Tensor  # [B, H, W, 2] int64 centre of the winning patch
    weight: torch.Tensor  # [B, H, W] winning softmax weight
    entropy: torch.Tensor  # [B, H, W] softmax entropy, nats


def _validate(x, abar, train, machine, patch_size, boundary) -> None:
    check_pair(machine, boundary)
    if isinstance(patch_size, bool) or not isinstance(patch_size, int):
        raise ValueError(f"patch_size must be an int, got {patch_size!r}")
    if patch_size < 1 or patch_size % 2 == 0:
        raise ValueError(f"patch_size must be odd and >= 1, got {patch_size}")
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        raise ValueError("x must be a float tensor [B, C, H, W]")
    if not isinstance(train, torch.Tensor) or train.dim() != 4:
        raise ValueError("train must be a tensor [N, C, H, W]")
    if train.shape[0] == 0:
        raise ValueError("the training set is empty (no images of the requested class?)")
    if x.shape[1:] != train.shape[1:]:
        raise ValueError(
            f"x is C,H,W = {tuple(x.shape[1:])} but train is {tuple(train.shape[1:])}; "
            "channels and image size must match"
        )
    try:
        ab = float(abar)
    except (TypeError, ValueError):
        raise ValueError(f"abar must be a number, got {abar!r}") from None
    if not (0.0 < ab <= 1.0):
        raise ValueError(f"abar must lie in (0, 1], got {abar!r}")
    if torch.isnan(x).any():
        raise ValueError("x contains NaN")
    if train.is_floating_point() and torch.isnan(train).any():
        raise ValueError("train contains NaN")


def _work_dtype(x: torch.Tensor) -> torch.dtype:
    # float64 in -> float64 throughout (exact checks); everything else computes in float32.
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _prepare(x: torch.Tensor, abar: float, train: torch.Tensor):
    """Inputs in the working dtype on x's device, and a = sqrt(abar), v = 1 - abar."""
    dtype = _work_dtype(x)
    tr = train.to(device=x.device, dtype=dtype)
    return x.to(dtype), tr, math.sqrt(float(abar)), max(1.0 - float(abar), _MIN_V)


def _default_chunk(groups: int, dim: int, device: torch.device | None = None) -> int:
    budget = _CHUNK_ELEMENTS_GPU if device is not None and device.type != "cpu" else _CHUNK_ELEMENTS
    return max(1, budget // (groups * (dim + 8)))


def _queries(x: torch.Tensor, problem: Problem, patch_size: int) -> torch.Tensor:
    """[B, C, H, W] -> [G, B * Mq, D], ordered (b, m) inside each group."""
    b = x.shape[0]
    g, mq = problem.qpos.shape[:2]
    q = gather_patches(x, problem.qpos.reshape(-1, 2), patch_size, problem.query_boundary)
    return q.reshape(b, g, mq, -1).transpose(0, 1).reshape(g, b * mq, -1)


def machine_denoise(
    x: torch.Tensor,
    abar: float,
    train: torch.Tensor,
    machine: str = "bbels",
    patch_size: int = 5,
    boundary: str = "zeros",
    *,
    chunk: int | None = None,
) -> MachineOutput:
    """x0_hat of the chosen score machine at every pixel, with its provenance.

    ``chunk`` bounds the candidates per group held at once (default: sized by memory);
    it changes speed and memory only, never the result beyond float rounding.
    """
    _validate(x, abar, train, machine, patch_size, boundary)
    if chunk is not None and (isinstance(chunk, bool) or int(chunk) < 1):
        raise ValueError(f"chunk must be a positive int, got {chunk!r}")
    with torch.inference_mode():
        xs, tr, a, v = _prepare(x, abar, train)
        if machine == "ideal":
            out = _ideal(xs, tr, a, v, chunk)
        elif effective_machine(machine, patch_size, *x.shape[-2:]) == "ls":
            out = _local(xs, tr, a, v, patch_size, boundary)
        else:
            out = _patch_machine(xs, tr, a, v, machine, patch_size, boundary, chunk, train)
    out.x0 = out.x0.to(x.dtype)
    out.weight = out.weight.to(x.dtype)
    out.entropy = out.entropy.to(x.dtype)
    return out


def _ideal(x: torch.Tensor, train: torch.Tensor, a: float, v: float, chunk: int | None):
    b, c, h, w = x.shape
    q = x.reshape(1, b, -1) * (a / v)
    chunk = chunk or _default_chunk(1, 2 * q.shape[-1], x.device)
    # Whole images are keys and values: wide values, the torch route's (or a GPU's).
    state = open_stream(q, a * a / (2.0 * v), q.shape[-1])
    for kc in image_chunks(train, chunk):
        cancel.check()
        state.update(kc)
    res = state.result()
    pos = grid_positions(range(h), range(w), x.device).reshape(h, w, 2)
    return MachineOutput(
        x0=res.values[0].reshape(b, c, h, w),
        source_index=res.best_image[0][:, None, None].expand(b, h, w).clone(),
        source_yx=pos[None].expand(b, h, w, 2).clone(),
        weight=res.weight[0][:, None, None].expand(b, h, w).clone(),
        entropy=res.entropy[0][:, None, None].expand(b, h, w).clone(),
    )


def _local(x, train, a, v, patch_size, boundary) -> MachineOutput:
    b, _, h, w = x.shape
    x0, index, weight, entropy = local_denoise(x, train, a, v, patch_size, boundary)
    pos = grid_positions(range(h), range(w), x.device).reshape(h, w, 2)
    return MachineOutput(x0, index, pos[None].expand(b, h, w, 2).clone(), weight, entropy)


def _patch_machine(x, train, a, v, machine, patch_size, boundary, chunk, source) -> MachineOutput:
    b, c, h, w = x.shape
    dev = x.device
    out = MachineOutput(
        x0=torch.empty_like(x),
        source_index=torch.empty(b, h, w, dtype=torch.long, device=dev),
        source_yx=torch.empty(b, h, w, 2, dtype=torch.long, device=dev),
        weight=torch.empty(b, h, w, dtype=x.dtype, device=dev),
        entropy=torch.empty(b, h, w, dtype=x.dtype, device=dev),
    )
    window: dict[Route, list[Problem]] = {}
    for prob in build_problems(machine, patch_size, boundary, h, w, dev):
        if prob.layout == "each":  # bbELS corners: LS pixels
            _corners(out, x, train, a, v, patch_size, prob)
            continue
        task = Task.of(x, c * patch_size * patch_size, c, rectangles=prob.rectangles)
        route = routes.select(task)
        if route.window_sums:  # all of a call's rectangles in one call of the kernel
            window.setdefault(route, []).append(prob)
        else:
            _stream(out, x, train, a, v, patch_size, prob, chunk, source, route)
    for route, problems in window.items():
        _window_sums(out, x, train, a, v, patch_size, problems, route.isa)
    return out


def _stream(out: MachineOutput, x, train, a, v, patch_size: int, prob, chunk, source, route):
    """One problem's groups by a streamed route: key chunks cut from the training set (or
    its merged duplicates), each taken by every block of queries before the next."""
    b, c = x.shape[:2]
    key_scale = a * a / (2.0 * v)
    q = _queries(x, prob, patch_size) * (a / v)
    g, m, d = q.shape
    separate = strip_keys(prob)
    if separate:
        q = strip_order(q, prob.layout, c, patch_size)
    step = max(1, min(m, _QUERY_BLOCK // g))
    # Strip keys are views shared by all groups of the problem (keys.strip_chunk).
    kc = chunk or _default_chunk(1 if separate else g, d, x.device)
    merged = None
    if prob.all_valid and routes.merge_duplicates():
        merged = dedup.unique_valid_keys(source, train, patch_size)
    states = [
        open_stream(q[:, m0 : m0 + step], key_scale, c, separate_keys=separate, route=route)
        for m0 in range(0, m, step)
    ]
    stream = (
        key_chunks(train, prob, patch_size, kc) if merged is None else unique_chunks(merged, kc)
    )
    for keys in stream:
        cancel.check()
        prepare_chunk(keys, d, key_scale)
        for st in states:
            st.update(keys, prepared=True)
    parts = [st.result() for st in states]
    _scatter(out, prob, parts, b)


def _window_sums(out: MachineOutput, x, train, a, v, patch_size: int, problems, isa: int):
    """Problems whose groups' queries and keys fill rectangles, by windowsums.py; edge
    columns transposed (then each is a row, where window sums pay)."""
    d = patch_size // 2
    plain, across = [], []
    for prob in problems:
        flip = prob.layout == "cols"
        boxes = [
            windowsums.rects_of(q.flip(-1) if flip else q, k.flip(-1) if flip else k)
            for q, k in zip(prob.qpos, prob.kpos, strict=True)
        ]
        if None in boxes:
            raise AssertionError(f"a {prob.layout} group's pixels fill no rectangle")
        (across if flip else plain).append((prob.query_boundary, boxes))
    tr = train.numpy()
    for groups, transposed in ((plain, False), (across, True)):
        for boundary in {bd for bd, _ in groups}:
            rects = [r for bd, boxes in groups if bd == boundary for r in boxes]
            mode = "circular" if boundary == "circular" else "constant"
            xp = F.pad(x, (d, d, d, d), mode=mode)
            if transposed:
                xp = xp.transpose(-1, -2)
            res = windowsums.softmax_sums(
                np.ascontiguousarray(xp.numpy()),
                tr.transpose(0, 1, 3, 2) if transposed else tr,
                rects, patch_size, a, v, isa,
            )  # fmt: skip
            _scatter_rects(out, rects, transposed, res)


def _scatter_rects(out: MachineOutput, rects, transposed: bool, res) -> None:
    s, u, acc, best, img, key = (torch.from_numpy(t) for t in res)
    qpos, kpos = [], []
    for qi0, qi1, qj0, qj1, ku0, ku1, kv0, kv1 in rects:
        qpos.append(grid_positions(range(qi0, qi1), range(qj0, qj1), "cpu"))
        kpos.append(grid_positions(range(ku0, ku1), range(kv0, kv1), "cpu"))
    # Each query's winning key: its rectangle's key list, offset by the rectangle.
    counts = [len(k) for k in kpos]
    sizes = torch.tensor([len(q) for q in qpos])
    first_key = torch.tensor([0, *counts[:-1]]).cumsum(0).repeat_interleave(sizes)
    kyx = torch.cat(kpos)[first_key[None] + key]  # [B, Q, 2]
    qyx = torch.cat(qpos)
    if transposed:
        kyx, qyx = kyx.flip(-1), qyx.flip(-1)
    rows, cols = qyx.unbind(1)
    values, weight, entropy = base2_stats(s, u, acc, best, out.x0.dtype)
    out.x0[:, :, rows, cols] = values.transpose(1, 2)
    out.source_index[:, rows, cols] = img
    out.source_yx[:, rows, cols] = kyx
    out.weight[:, rows, cols] = weight
    out.entropy[:, rows, cols] = entropy


def _corners(out: MachineOutput, x, train, a, v, patch_size: int, prob: Problem) -> None:
    """A corner pixel's candidates are the patches at its own place (zero padding): LS,
    computed on the mosaic of the four corner blocks (local.corner_mosaic)."""
    h, w = x.shape[-2:]
    d = patch_size // 2
    x0, index, weight, entropy = local_denoise(
        corner_mosaic(x, d), corner_mosaic(train, d), a, v, patch_size, "zeros"
    )
    pos = prob.qpos.reshape(-1, 2)
    rows, cols = pos.unbind(1)
    mr, mc = mosaic_position(rows, cols, h, w, d)
    out.x0[:, :, rows, cols] = x0[:, :, mr, mc]
    out.source_index[:, rows, cols] = index[:, mr, mc]
    out.source_yx[:, rows, cols] = pos
    out.weight[:, rows, cols] = weight[:, mr, mc]
    out.entropy[:, rows, cols] = entropy[:, mr, mc]


def _scatter(out: MachineOutput, prob: Problem, parts, b: int) -> None:
    """Write per-group results back to the pixels they belong to."""
    g, mq = prob.qpos.shape[:2]
    vals = torch.cat([p.values for p in parts], 1)  # [G, B*Mq, C]
    img = torch.cat([p.best_image for p in parts], 1)
    kpi = torch.cat([p.best_kpos for p in parts], 1)
    wgt = torch.cat([p.weight for p in parts], 1)
    ent = torch.cat([p.entropy for p in parts], 1)
    yx = torch.gather(prob.kpos, 1, kpi[..., None].expand(-1, -1, 2))  # [G, B*Mq, 2]
    rows, cols = prob.qpos.reshape(-1, 2).unbind(1)

    def per_image(t: torch.Tensor) -> torch.Tensor:
        # [G, B*Mq, ...] -> [B, G*Mq, ...] matching the flattened qpos order
        t = t.reshape(g, b, mq, *t.shape[2:]).transpose(0, 1)
        return t.reshape(b, g * mq, *t.shape[3:])

    out.x0[:, :, rows, cols] = per_image(vals).transpose(1, 2)
    out.source_index[:, rows, cols] = per_image(img)
    out.source_yx[:, rows, cols] = per_image(yx)
    out.weight[:, rows, cols] = per_image(wgt)
    out.entropy[:, rows, cols] = per_image(ent)


def top_candidates(
    x: torch.Tensor,
    abar: float,
    train: torch.Tensor,
    machine: str = "bbels",
    patch_size: int = 5,
    boundary: str = "zeros",
    pixel: tuple[int, int] = (0, 0),
    k: int = 8,
) -> list[tuple[int, tuple[int, int], float]]:
    """The k heaviest candidates of one pixel of one image, heaviest first.

    Returns (train_index, (row, col) centre of the patch, weight) with weights
    normalised over all of the pixel's candidates.
    """
    if isinstance(x, torch.Tensor) and x.dim() == 3:
        x = x[None]
    _validate(x, abar, train, machine, patch_size, boundary)
    if x.shape[0] != 1:
        raise ValueError("top_candidates inspects one image; pass [C, H, W] or [1, C, H, W]")
    _, c, h, w = x.shape
    r, col = int(pixel[0]), int(pixel[1])
    if not (0 <= r < h and 0 <= col < w):
        raise ValueError(f"pixel {pixel} lies outside the {h}x{w} image")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    with torch.inference_mode():
        xs, tr, a, v = _prepare(x, abar, train)
        if machine == "ideal":
            kpos = torch.tensor([[[r, col]]], device=x.device)
            parts = _image_logits(xs.reshape(-1), tr, a, v)
        else:
            prob = _group_of(machine, patch_size, boundary, h, w, r, col, x.device)
            q = gather_patches(xs, prob.qpos[0], patch_size, prob.query_boundary)
            kpos = prob.kpos
            parts = _patch_logits(q.reshape(-1), tr, kpos[0], patch_size, prob.key_boundary, a, v)
        return _top_k(parts, kpos, k)


# Training images per product of the inspection: two float32 maps of [n, H, W] each.
_INSPECT_IMAGES = 4096


def _patch_logits(q, tr, kpos, p: int, key_boundary: str, a: float, v: float):
    """(first image, logits [n, Kp]) of one query patch ``q`` [C * P * P] against the
    patches centred at ``kpos`` in every training image, a block of images at a time:
    whole-image correlations, not a copy of every patch (at N = 60,000 the patches of
    one pixel are 35 million)."""
    c = tr.shape[1]
    kernel = q.reshape(c, p, p)
    rows, cols = kpos[:, 0], kpos[:, 1]
    for n0 in range(0, tr.shape[0], _INSPECT_IMAGES):
        cancel.check()
        block = tr[n0 : n0 + _INSPECT_IMAGES]
        dots = _correlate(pad_images(block, p // 2, key_boundary), kernel)[:, rows, cols]
        norms = local.window_sums(block.square().sum(1), p, key_boundary)[:, rows, cols]
        yield n0, (a * dots - 0.5 * a * a * norms) / v


def _correlate(padded: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """[n, C, H + P - 1, W + P - 1] x [C, P, P] -> [n, H, W], the kernel's dot product
    with the window at every position: per channel and kernel row one matrix product of
    the images' rows with a banded matrix (torch's convolution with one output channel
    runs at a few GFLOP/s, these products at the matrix product's rate)."""
    n, c, hp, wp = padded.shape
    p = kernel.shape[-1]
    h, w = hp - p + 1, wp - p + 1
    out = torch.zeros(n, h, w, dtype=padded.dtype, device=padded.device)
    j = torch.arange(w, device=padded.device)
    for ch in range(c):
        for u in range(p):
            band = torch.zeros(wp, w, dtype=padded.dtype, device=padded.device)
            for t in range(p):
                band[j + t, j] = kernel[ch, u, t]
            out += padded[:, ch, u : u + h, :] @ band
    return out


def _image_logits(q, tr, a: float, v: float):
    """The ideal machine's: whole images against the image ``q``, one key each."""
    flat = tr.reshape(tr.shape[0], -1)
    for n0 in range(0, flat.shape[0], _INSPECT_IMAGES):
        keys = flat[n0 : n0 + _INSPECT_IMAGES]
        yield n0, ((a * (keys @ q) - 0.5 * a * a * (keys * keys).sum(-1)) / v)[:, None]


def _group_of(machine, patch_size, boundary, h, w, r, c, device) -> Problem:
    """The one-pixel problem holding pixel (r, c)'s candidate set."""
    target = torch.tensor([r, c], device=device)
    for prob in build_problems(machine, patch_size, boundary, h, w, device):
        hit = (prob.qpos == target).all(-1).nonzero()
        if len(hit):
            g, m = hit[0].tolist()
            return Problem(
                prob.qpos[g : g + 1, m : m + 1],
                prob.kpos[g : g + 1],
                prob.query_boundary,
                prob.key_boundary,
            )
    raise AssertionError(f"pixel ({r}, {c}) belongs to no candidate group")


def _top_k(parts, kpos, k: int):
    """The k heaviest of all candidates, from (first image, logits [n, Kp]) parts: a
    running log-sum-exp over all of them and a running top k."""
    best_l = torch.empty(0, dtype=torch.float64, device=kpos.device)
    best_img = torch.empty(0, dtype=torch.long, device=kpos.device)
    best_kp = torch.empty(0, dtype=torch.long, device=kpos.device)
    lse = torch.tensor(-math.inf, dtype=torch.float64, device=kpos.device)
    for n0, logits in parts:
        kp_n = logits.shape[1]
        logits = logits.reshape(-1).to(torch.float64)
        lse = torch.logaddexp(lse, torch.logsumexp(logits, 0))
        top = torch.topk(logits, min(k, logits.numel())).indices
        best_l = torch.cat([best_l, logits[top]])
        best_img = torch.cat([best_img, n0 + torch.div(top, kp_n, rounding_mode="floor")])
        best_kp = torch.cat([best_kp, top % kp_n])
    order = torch.argsort(best_l, descending=True)[:k]
    weights = torch.exp(best_l[order] - lse)
    yx = kpos[0, best_kp[order]]
    return [
        (int(i), (int(p[0]), int(p[1])), float(wt))
        for i, p, wt in zip(best_img[order].tolist(), yx.tolist(), weights.tolist(), strict=True)
    ]

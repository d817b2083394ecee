"""The one source of pixels: numpy arrays in, RGB uint8 [H, W, 3] out.

The app displays exactly these arrays and export writes exactly these arrays, so what a
user sees is what a user saves. Colour work goes through uint8 lookup tables
(core.palette) so one 32x32 panel costs tens of microseconds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .palette import (
    apply_lut,
    categorical_colors,
    colormap_lut,
    position_colors,
    to_codes,
)
from .spec import Comparison, MachineTrajectory

PROVENANCE_MODES = ("source", "position", "weight", "entropy")
SHOW_MODES = ("x0", "xt")
PANELS = ("cnn", "machine", "provenance", "difference")

MACHINE_NAMES = {"bbels": "bbELS", "els": "ELS", "ls": "LS", "ideal": "IS"}
_PROVENANCE_TITLES = {
    "source": "source image",
    "position": "source position",
    "weight": "winning weight",
    "entropy": "entropy",
}
# A pixel's winning patch is its source only when it holds most of the softmax weight.
# Below that the argmax is one of several near-equal candidates: at high noise, and
# wherever identical patches tie (MNIST's blank background: thousands of equal zero
# patches, the first of which would otherwise paint the background as "image #0").
MAJORITY = 0.5
NO_MAJORITY_LABEL = "no majority (weight <= 0.5)"
# Plain ASCII plus the middle dot: Pillow's built-in font (used for export) has no
# other symbols, and captions must read the same in the app and in exported frames.
SEP = " \u00b7 "


def image_rgb(img: np.ndarray, levels: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """An image [C, H, W] (C = 1 grey or 3 RGB) clipped to ``levels`` -> uint8 [H, W, 3]."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[0] not in (1, 3):
        raise ValueError(f"expected an image [C, H, W] with C in (1, 3), got {img.shape}")
    codes = to_codes(img, levels[0], levels[1])
    if img.shape[0] == 1:
        return np.repeat(codes[0][:, :, None], 3, axis=2)
    return np.ascontiguousarray(codes.transpose(1, 2, 0))


def candidate_count(machine: str | None, n_train: int, patch: int, height: int, width: int):
    """The most candidates any pixel's softmax runs over (interior pixels for the
    equivariant machines); log of it bounds the entropy."""
    n_train = max(int(n_train), 1)
    if machine in ("ls", "ideal") or patch >= min(height, width):
        return n_train
    return n_train * (height - patch + 1) * (width - patch + 1)


def entropy_limit(traj: MachineTrajectory, machine: str | None = None) -> float:
    """Upper end of the entropy colour scale: log of the largest candidate count over the
    whole trajectory, so the scale stays put while the user scrubs through time."""
    _, _, h, w = traj.x0.shape
    n = len(traj.train_indices)
    patches = np.unique(np.asarray(traj.patch_size)) if len(traj.patch_size) else [h]
    return float(max(math.log(candidate_count(machine, n, int(p), h, w)) for p in patches) or 1.0)


def provenance_rgb(
    machine_traj: MachineTrajectory,
    step: int,
    mode: str = "source",
    *,
    entropy_max: float | None = None,
    machine: str | None = None,
) -> np.ndarray:
    """Colour the provenance of step ``step`` -> uint8 [H, W, 3].

    source: a categorical colour per training image; position: where in that image the
    winning patch was centred (palette.position_colors); both grey where the winner holds
    no majority of the weight (``MAJORITY``). weight: viridis over 0..1; entropy: inferno
    over 0..entropy_max (default: entropy_limit of the trajectory).
    """
    if mode == "source":
        return categorical_colors(_majority_sources(machine_traj, step))
    if mode == "position":
        _, _, h, w = machine_traj.x0.shape
        yx = machine_traj.source_yx[step]
        rgb = position_colors(yx[..., 0], yx[..., 1], h, w)
        rgb[machine_traj.weight[step] <= MAJORITY] = categorical_colors(np.array([-1]))[0]
        return rgb
    if mode == "weight":
        return apply_lut(machine_traj.weight[step], 0.0, 1.0, colormap_lut("viridis"))
    if mode == "entropy":
        top = entropy_max if entropy_max is not None else entropy_limit(machine_traj, machine)
        return apply_lut(machine_traj.entropy[step], 0.0, top, colormap_lut("inferno"))
    raise ValueError(f"unknown provenance mode {mode!r}; known: {PROVENANCE_MODES}")


def _majority_sources(machine_traj: MachineTrajectory, step: int) -> np.ndarray:
    """Source image per pixel, -1 where the winner holds no majority."""
    ids = np.asarray(machine_traj.source_index[step])
    return np.where(np.asarray(machine_traj.weight[step]) > MAJORITY, ids, -1)


def difference_rgb(a: np.ndarray, b: np.ndarray, limit: float = 1.0) -> np.ndarray:
    """a - b on a blue-white-red scale over [-limit, limit], averaged over channels, so
    red is where ``a`` is brighter. Returns uint8 [H, W, 3]."""
    d = np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)
    if d.ndim == 3:
        d = d.mean(axis=0)
    return apply_lut(d, -limit, limit, colormap_lut("diverging"))


class Legend(NamedTuple):
    """What a colour bar needs. ``colors`` is a uint8 [256, 3] table (a bar from vmin to
    vmax), a list of (label, (r, g, b)) entries (categories), or a uint8 [h, w, 3] plane
    (the 2-D position map: rows down, columns across)."""

    colors: object
    vmin: float | None
    vmax: float | None
    label: str

    @property
    def kind(self) -> str:
        if isinstance(self.colors, list):
            return "categories"
        return "bar" if np.asarray(self.colors).ndim == 2 else "plane"


def legend(
    mode: str,
    machine_traj: MachineTrajectory | None = None,
    step: int | None = None,
    *,
    entropy_max: float | None = None,
    machine: str | None = None,
    max_items: int = 8,
    diff_limit: float = 1.0,
) -> Legend:
    """The colour key for a provenance mode, or for ``"difference"``.

    For "source" the categories are the training images covering most pixels at
    ``step`` (largest first, at most ``max_items``), labelled with their index in the full
    dataset, after a grey "no majority" entry when some pixel has none; that needs
    ``machine_traj`` and ``step``.
    """
    if mode == "weight":
        return Legend(colormap_lut("viridis"), 0.0, 1.0, "winning weight")
    if mode == "entropy":
        if entropy_max is None:
            if machine_traj is None:
                raise ValueError("entropy legend needs machine_traj or entropy_max")
            entropy_max = entropy_limit(machine_traj, machine)
        return Legend(colormap_lut("inferno"), 0.0, float(entropy_max), "entropy (nats)")
    if mode == "difference":
        return Legend(colormap_lut("diverging"), -diff_limit, diff_limit, "CNN - machine")
    if mode == "position":
        h, w = (32, 32) if machine_traj is None else machine_traj.x0.shape[2:]
        rows, cols = np.mgrid[0:h, 0:w]
        plane = position_colors(rows, cols, h, w)
        return Legend(plane, None, None, "patch centre: row -> red, column -> blue")
    if mode == "source":
        entries: list[tuple[str, tuple[int, int, int]]] = []
        if machine_traj is not None and step is not None:
            ids, counts = np.unique(_majority_sources(machine_traj, step), return_counts=True)
            if len(ids) and ids[0] < 0:
                grey = categorical_colors(np.array([-1]))[0]
                entries.append((NO_MAJORITY_LABEL, (int(grey[0]), int(grey[1]), int(grey[2]))))
                ids, counts = ids[1:], counts[1:]
            order = np.argsort(-counts, kind="stable")[: max_items - len(entries)]
            top = ids[order]
            rgb = categorical_colors(top)
            for i, c in zip(top, rgb, strict=True):
                full = (
                    int(machine_traj.train_indices[i])
                    if 0 <= i < len(machine_traj.train_indices)
                    else int(i)
                )
                entries.append((f"#{full}", (int(c[0]), int(c[1]), int(c[2]))))
        return Legend(entries, None, None, "source training image")
    raise ValueError(f"unknown legend mode {mode!r}")


def panel_images(
    comp: Comparison,
    step: int,
    show: str = "x0",
    prov_mode: str = "source",
    diff: bool = False,
    *,
    levels: tuple[float, float] = (-1.0, 1.0),
    diff_limit: float = 1.0,
) -> dict[str, np.ndarray]:
    """The panels of one step, unscaled: "cnn", "machine", "provenance" and, with
    ``diff``, "difference" (CNN minus machine, of whatever ``show`` selects)."""
    if show not in SHOW_MODES:
        raise ValueError(f"unknown show {show!r}; known: {SHOW_MODES}")
    cnn = comp.cnn.x0[step] if show == "x0" else comp.cnn.x_t[step]
    mach = comp.machine.x0[step] if show == "x0" else comp.machine.x_t[step]
    out = {
        "cnn": image_rgb(cnn, levels),
        "machine": image_rgb(mach, levels),
        "provenance": provenance_rgb(comp.machine, step, prov_mode, machine=comp.spec.machine),
    }
    if diff:
        out["difference"] = difference_rgb(cnn, mach, diff_limit)
    return out


def machine_name(comp: Comparison) -> str:
    return MACHINE_NAMES.get(comp.spec.machine, comp.spec.machine)


def caption(
    comp: Comparison, step: int, panel: str, show: str = "x0", prov_mode: str = "source"
) -> str:
    """The one-line caption of a panel, e.g. "bbELS x0 · P=7 · r=0.93"."""
    what = "x0" if show == "x0" else "x_t"
    t = float(comp.cnn.t[step])
    p = int(comp.machine.patch_size[step])
    r = float(comp.correlation[step])
    if panel == "cnn":
        return f"CNN {what}{SEP}t={t:.2f}"
    if panel == "machine":
        return f"{machine_name(comp)} {what}{SEP}P={p}{SEP}r={r:.2f}"
    if panel == "provenance":
        return f"{_PROVENANCE_TITLES.get(prov_mode, prov_mode)}{SEP}P={p}"
    if panel == "difference":
        return f"CNN - {machine_name(comp)}{SEP}r={r:.2f}"
    raise ValueError(f"unknown panel {panel!r}; known: {PANELS}")


def title(comp: Comparison) -> str:
    """One line naming the run: model, dataset and subset, machine and boundary, seed."""
    s = comp.spec
    parts = [
        Path(s.model).stem or s.model,
        f"{Path(s.dataset).stem or s.dataset} N={s.subset}",
        f"{machine_name(comp)} {s.boundary}",
        f"seed {s.seed}",
    ]
    if s.label is not None:
        parts.append(f"class {s.label}")
    return SEP.join(parts)

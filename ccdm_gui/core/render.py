"""The one source of pixels: numpy arrays in, RGB uint8 [H, W, 3] out.

The app displays exactly these arrays and export writes exactly these arrays, so what a
user sees is what a user saves. Colour work goes through uint8 lookup tables
(core.palette) so one 32x32 panel costs tens of microseconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import machine_registry, provenance
from .datasets.known import label_text
from .palette import apply_lut, colormap_lut, to_codes
from .provenance import Legend
from .spec import Comparison, MachineTrajectory
from .view import DEFAULT_VIEW, PANELS, View

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


def provenance_rgb(
    machine_traj: MachineTrajectory,
    step: int,
    mode: str = "source",
    *,
    entropy_max: float | None = None,
    machine: str | None = None,
) -> np.ndarray:
    """Colour the provenance of step ``step`` by ``mode`` (core.provenance.MODES) ->
    uint8 [H, W, 3]. ``entropy_max`` fixes the entropy scale (default: the trajectory's
    provenance.entropy_limit for ``machine``)."""
    frame = provenance.Frame(machine_traj, step, machine, entropy_max)
    return provenance.mode(mode).colour(frame)


def difference_rgb(a: np.ndarray, b: np.ndarray, limit: float = 1.0) -> np.ndarray:
    """a - b on a blue-white-red scale over [-limit, limit], averaged over channels, so
    red is where ``a`` is brighter. Returns uint8 [H, W, 3]."""
    d = np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)
    if d.ndim == 3:
        d = d.mean(axis=0)
    return apply_lut(d, -limit, limit, colormap_lut("diverging"))


def legend(
    mode: str,
    machine_traj: MachineTrajectory | None = None,
    step: int | None = None,
    *,
    entropy_max: float | None = None,
    machine: str | None = None,
    diff_limit: float = 1.0,
    class_names: tuple[str, ...] = (),
) -> Legend:
    """The colour key of a provenance mode, or of ``"difference"``. Keys whose entries
    change per frame (the categories) list them only given ``machine_traj`` and ``step``;
    ``class_names`` (datasets.known.class_names_at) name the classes they mention."""
    if mode == "difference":
        return Legend(colormap_lut("diverging"), -diff_limit, diff_limit, "CNN - machine")
    entry = provenance.mode(mode)
    if machine_traj is None or (step is None and entry.kind == "categories"):
        return entry.legend(None)
    frame = provenance.Frame(machine_traj, step or 0, machine, entropy_max, tuple(class_names))
    return entry.legend(frame)


def panel_images(
    comp: Comparison,
    step: int,
    view: View = DEFAULT_VIEW,
    *,
    levels: tuple[float, float] = (-1.0, 1.0),
    diff_limit: float = 1.0,
) -> dict[str, np.ndarray]:
    """The panels of one step, unscaled, keyed as ``view.panels``: the difference panel
    is CNN minus machine, of whatever ``view.show`` selects."""
    x0 = view.show == "x0"
    cnn = comp.cnn.x0[step] if x0 else comp.cnn.x_t[step]
    mach = comp.machine.x0[step] if x0 else comp.machine.x_t[step]
    out = {
        "cnn": image_rgb(cnn, levels),
        "machine": image_rgb(mach, levels),
        "provenance": provenance_rgb(comp.machine, step, view.prov_mode, machine=comp.spec.machine),
    }
    if view.diff:
        out["difference"] = difference_rgb(cnn, mach, diff_limit)
    return out


def machine_name(comp: Comparison) -> str:
    return machine_registry.label(comp.spec.machine)


def caption(comp: Comparison, step: int, panel: str, view: View = DEFAULT_VIEW) -> str:
    """The one-line caption of a panel, e.g. "bbELS x0 · P=7 · r=0.93"."""
    what = "x0" if view.show == "x0" else "x_t"
    t = float(comp.cnn.t[step])
    p = int(comp.machine.patch_size[step])
    r = float(comp.correlation[step])
    if panel == "cnn":
        return f"CNN {what}{SEP}t={t:.2f}"
    if panel == "machine":
        return f"{machine_name(comp)} {what}{SEP}P={p}{SEP}r={r:.2f}"
    if panel == "provenance":
        return f"{provenance.mode(view.prov_mode).label}{SEP}P={p}"
    if panel == "difference":
        return f"CNN - {machine_name(comp)}{SEP}r={r:.2f}"
    raise ValueError(f"unknown panel {panel!r}; known: {PANELS}")


def title(comp: Comparison) -> str:
    """One line naming the run: model, dataset and the number of training images the
    machine drew from (the subset, or fewer when the dataset or the class has fewer),
    machine and boundary, seed."""
    s = comp.spec
    parts = [
        Path(s.model).stem or s.model,
        f"{Path(s.dataset).stem or s.dataset} N={len(comp.machine.train_indices)}",
        f"{machine_name(comp)} {s.boundary}",
        f"seed {s.seed}",
    ]
    if s.label is not None:
        parts.append(label_text(s.dataset, s.label))
    return SEP.join(parts)

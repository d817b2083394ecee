"""The provenance modes: how the provenance panel colours a pixel by the patch that won it.

``MODES`` is the one table the window's menu, the command line's ``--provenance``, the
export dialog, captions and colour keys read. A mode is one ``ProvenanceMode`` entry:
its key, its label, its colour key's title and kind, and two functions of a ``Frame``
(a machine trajectory at one step): the colours of the pixels and the colour key.
The helpers below build both for the usual kinds (categories per pixel, a value on a
colour bar), so a new mode is an entry plus the function that picks its values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .palette import apply_lut, categorical_colors, colormap_lut, position_colors
from .spec import MachineTrajectory

# A pixel's winning patch is its source only when it holds most of the softmax weight.
# Below that the argmax is one of several near-equal candidates: at high noise, and
# wherever identical patches tie (MNIST's blank background: thousands of equal zero
# patches, the first of which would otherwise paint the background as "image #0").
MAJORITY = 0.5
NO_MAJORITY_LABEL = "no majority (weight <= 0.5)"
# Categories listed in a colour key, largest first.
KEY_ITEMS = 8


class Legend(NamedTuple):
    """What a colour key needs. ``colors`` is a uint8 [256, 3] table (a bar from vmin to
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


@dataclass(frozen=True)
class Frame:
    """One step of a machine trajectory, with what some modes' scales depend on."""

    traj: MachineTrajectory
    step: int
    machine: str | None = None  # the machine's name: the entropy scale depends on it
    entropy_max: float | None = None  # fixes the entropy scale (default: entropy_limit)
    # The training set's class names (datasets.known), which the keys show for labels;
    # () where it is not a known dataset: classes are then shown by number.
    class_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProvenanceMode:
    key: str  # on the command line, in settings and export records
    label: str  # in the menu and the panel's caption
    legend_text: str  # title of the colour key
    kind: str  # "categories", "bar" or "plane": how the colour key is drawn
    colour: Callable[[Frame], np.ndarray]  # -> uint8 [H, W, 3]
    # The colour key's (colors, vmin, vmax) as Legend holds them; given None (no
    # trajectory yet), the key without per-frame entries.
    key_colours: Callable[[Frame | None], tuple[object, float | None, float | None]]
    # Offered only for runs whose training set has class labels (MachineTrajectory's
    # train_labels); without them every pixel is grey.
    needs_labels: bool = False

    def legend(self, f: Frame | None) -> Legend:
        colors, vmin, vmax = self.key_colours(f)
        return Legend(colors, vmin, vmax, self.legend_text)

    def available(self, traj: MachineTrajectory | None) -> bool:
        return not self.needs_labels or (traj is not None and traj.train_labels is not None)


# ----------------------------------------------------------------------------- kinds


def _grey() -> tuple[int, int, int]:
    g = categorical_colors(np.array([-1]))[0]
    return int(g[0]), int(g[1]), int(g[2])


def _categories(ids: Callable[[Frame], np.ndarray], name: Callable[[Frame, int], str]):
    """Colour and key of a mode that gives each pixel a category id (-1: no majority,
    grey). The key lists the categories covering most pixels of the frame."""

    def colour(f: Frame) -> np.ndarray:
        return categorical_colors(ids(f))

    def legend_entries(f: Frame | None) -> list[tuple[str, tuple[int, int, int]]]:
        entries: list[tuple[str, tuple[int, int, int]]] = []
        if f is None:
            return entries
        found, counts = np.unique(ids(f), return_counts=True)
        if len(found) and found[0] < 0:
            entries.append((NO_MAJORITY_LABEL, _grey()))
            found, counts = found[1:], counts[1:]
        top = found[np.argsort(-counts, kind="stable")[: KEY_ITEMS - len(entries)]]
        for i, c in zip(top, categorical_colors(top), strict=True):
            entries.append((name(f, int(i)), (int(c[0]), int(c[1]), int(c[2]))))
        return entries

    return colour, legend_entries


def _majority(f: Frame, ids: np.ndarray) -> np.ndarray:
    return np.where(np.asarray(f.traj.weight[f.step]) > MAJORITY, ids, -1)


# ----------------------------------------------------------------------------- values


def source_ids(f: Frame) -> np.ndarray:
    """Source image per pixel (position in the training subset), -1 where the winner
    holds no majority."""
    return _majority(f, np.asarray(f.traj.source_index[f.step]))


def _dataset_index(f: Frame, i: int) -> str:
    idx = f.traj.train_indices
    return f"#{int(idx[i]) if 0 <= i < len(idx) else i}"


def label_ids(f: Frame) -> np.ndarray:
    """Training label of the source image per pixel, -1 where the winner holds no
    majority or the training set has no labels."""
    labels = f.traj.train_labels
    src = np.asarray(f.traj.source_index[f.step])
    if labels is None:
        return np.full(src.shape, -1, dtype=np.int64)
    return _majority(f, np.asarray(labels)[src])


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


def _entropy_top(f: Frame) -> float:
    return f.entropy_max if f.entropy_max is not None else entropy_limit(f.traj, f.machine)


# ----------------------------------------------------------------------------- mosaic

# The patch mosaic is the machine's own sample, each pixel tinted with the colour of the
# training image its best patch comes from. Brightness is the sample, so the picture
# being assembled is visible at every step; hue is the source; saturation is the share
# of the pixel's softmax weight that patch holds together with its identical copies
# (a tie among equal patches is not uncertainty). A pixel averaged over many different
# patches keeps the sample's grey; a pixel copied from one image takes that image's
# colour; a patch found in several training images has no one source ("generic") and
# stays untinted too. The square root lifts small shares: a patch holding a quarter of
# the weight shows at half strength rather than near-invisibly.
GENERIC = (255, 255, 255)
# The darkest brightness: a tint stays faintly visible on a black background.
FLOOR = 0.15


def patch_weight(f: Frame) -> np.ndarray:
    """Softmax weight held by the winning patch and its identical copies, per pixel."""
    w = np.asarray(f.traj.weight[f.step], dtype=np.float64)
    if f.traj.shared_count is not None:
        w = w * np.asarray(f.traj.shared_count[f.step])
    return np.clip(w, 0.0, 1.0)


def shared_images(f: Frame) -> np.ndarray:
    """Training images holding a copy of the winning patch, per pixel (1 when the
    trajectory has no counts)."""
    if f.traj.shared_images is None:
        return np.ones(np.shape(f.traj.weight[f.step]), dtype=np.int64)
    return np.asarray(f.traj.shared_images[f.step], dtype=np.int64)


def brightness(f: Frame) -> np.ndarray:
    """The machine's x0 estimate at this step, channels averaged, from [-1, 1] to
    [FLOOR, 1]."""
    x0 = np.asarray(f.traj.x0[f.step], dtype=np.float64).mean(axis=0)
    return FLOOR + (1.0 - FLOOR) * np.clip((x0 + 1.0) / 2.0, 0.0, 1.0)


def tint_strength(f: Frame) -> np.ndarray:
    """How strongly each pixel shows its source's colour: sqrt of its patch's weight,
    0 for generic patches."""
    return np.where(shared_images(f) > 1, 0.0, np.sqrt(patch_weight(f)))


def hues(ids: np.ndarray) -> np.ndarray:
    """The categorical colour of each id, scaled to full brightness (the brightness is
    the sample's), float [..., 3] in 0..255."""
    rgb = categorical_colors(ids).astype(np.float64)
    return rgb * (255.0 / np.maximum(rgb.max(axis=-1, keepdims=True), 1.0))


def tint(hue: np.ndarray, strength: np.ndarray, light: np.ndarray) -> np.ndarray:
    """White mixed towards ``hue`` by ``strength``, times ``light``: uint8 [..., 3]."""
    s = np.clip(strength, 0.0, 1.0)[..., None]
    out = (255.0 * (1.0 - s) + np.asarray(hue, dtype=np.float64) * s) * light[..., None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _mosaic(f: Frame) -> np.ndarray:
    src = np.asarray(f.traj.source_index[f.step])
    return tint(hues(src), tint_strength(f), brightness(f))


def _source_name(f: Frame, i: int) -> str:
    """A source image as the colour key names it: dataset index, and its class where
    the training set has labels."""
    name = _dataset_index(f, i)
    labels = f.traj.train_labels
    if labels is not None and 0 <= i < len(labels):
        name += f" ({class_name(f, int(labels[i]))})"
    return name


def class_name(f: Frame, k: int) -> str:
    """Class ``k`` as a key names it: "Trouser" where the dataset names its classes,
    "class 7" where the names are bare numbers or unknown."""
    names = f.class_names
    if 0 <= k < len(names) and names[k] != str(k):
        return names[k]
    return f"class {k}"


def _mosaic_entries(f: Frame | None) -> list[tuple[str, tuple[int, int, int]]]:
    """How to read the tint (its strength, generic patches), then the sources that
    colour the most pixels, each with its pixel count."""
    pale = tuple(int(v) for v in tint(hues(np.array([1])), np.array([0.3]), np.array([1.0]))[0])
    entries: list[tuple[str, tuple[int, int, int]]] = [("pale: a small share of the weight", pale)]
    if f is None:
        return entries
    shared = shared_images(f)
    generic = shared > 1
    if generic.any():
        lo, hi = int(shared[generic].min()), int(shared[generic].max())
        span = f"{lo}" if lo == hi else f"{lo}-{hi}"
        entries.append((f"no tint: generic, in {span} images", GENERIC))
    # Rank the sources by how much colour they put on screen, not by bare pixel counts:
    # a source leading many pixels with a tiny share is no more visible than the grey.
    strength = tint_strength(f)
    ids = np.asarray(f.traj.source_index[f.step])
    visible = strength >= 0.5
    found, counts = np.unique(ids[visible], return_counts=True)
    top = np.argsort(-counts, kind="stable")[: KEY_ITEMS - len(entries)]
    for k in top:
        i, n = int(found[k]), int(counts[k])
        colour = tuple(int(v) for v in hues(np.array([i]))[0])
        entries.append((f"{_source_name(f, i)}: {n} px", colour))
    return entries


# ----------------------------------------------------------------------------- candidates


def _candidates_key(f: Frame | None):
    if f is None:
        raise ValueError("the candidates key needs a trajectory (its scale depends on it)")
    return colormap_lut("viridis"), 1.0, float(math.exp(_entropy_top(f)))


# ----------------------------------------------------------------------------- the table

_source_colour, _source_entries = _categories(source_ids, _dataset_index)
_label_colour, _label_entries = _categories(label_ids, class_name)


def _position(f: Frame) -> np.ndarray:
    _, _, h, w = f.traj.x0.shape
    yx = f.traj.source_yx[f.step]
    rgb = position_colors(yx[..., 0], yx[..., 1], h, w)
    rgb[f.traj.weight[f.step] <= MAJORITY] = _grey()
    return rgb


def _position_plane(f: Frame | None) -> np.ndarray:
    h, w = (32, 32) if f is None else f.traj.x0.shape[2:]
    rows, cols = np.mgrid[0:h, 0:w]
    return position_colors(rows, cols, h, w)


def _entropy_key(f: Frame | None):
    if f is None:
        raise ValueError("the entropy key needs a trajectory (its scale depends on it)")
    return colormap_lut("inferno"), 0.0, _entropy_top(f)


MODES: tuple[ProvenanceMode, ...] = (
    ProvenanceMode(
        "mosaic",
        "patch mosaic",
        "sample tinted by source image",
        "categories",
        _mosaic,
        lambda f: (_mosaic_entries(f), None, None),
    ),
    ProvenanceMode(
        "source",
        "source image",
        "source training image",
        "categories",
        _source_colour,
        lambda f: (_source_entries(f), None, None),
    ),
    ProvenanceMode(
        "position",
        "source position",
        "patch centre: row -> red, column -> blue",
        "plane",
        _position,
        lambda f: (_position_plane(f), None, None),
    ),
    ProvenanceMode(
        "weight",
        "winning weight",
        "winning weight",
        "bar",
        lambda f: apply_lut(f.traj.weight[f.step], 0.0, 1.0, colormap_lut("viridis")),
        lambda _f: (colormap_lut("viridis"), 0.0, 1.0),
    ),
    ProvenanceMode(
        "entropy",
        "entropy",
        "entropy (nats)",
        "bar",
        lambda f: apply_lut(f.traj.entropy[f.step], 0.0, _entropy_top(f), colormap_lut("inferno")),
        _entropy_key,
    ),
    ProvenanceMode(
        "candidates",
        "effective candidates",
        "effective candidates e^entropy (log scale)",
        "bar",
        # e^H on a log scale is the entropy on a linear one: the same colours, read
        # as counts (1 = one patch holds all the weight).
        lambda f: apply_lut(f.traj.entropy[f.step], 0.0, _entropy_top(f), colormap_lut("viridis")),
        _candidates_key,
    ),
    ProvenanceMode(
        "label",
        "source label",
        "training label of the source",
        "categories",
        _label_colour,
        lambda f: (_label_entries(f), None, None),
        needs_labels=True,
    ),
)

_BY_KEY = {m.key: m for m in MODES}
KEYS = tuple(_BY_KEY)


def mode(key: str) -> ProvenanceMode:
    """The table entry of ``key``; ValueError names the known modes."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise ValueError(f"unknown provenance mode {key!r}; known: {', '.join(KEYS)}") from None

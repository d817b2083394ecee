"""Colour tables: sequential and diverging lookup tables and the categorical palette.

Everything is a uint8 table indexed by a uint8 code, so mapping a frame costs one
``np.take``; the tables are built once at import from a few anchor colours.
"""

from __future__ import annotations

import numpy as np

# Anchors sampled from matplotlib's viridis / inferno at 0, 0.1, ..., 1 (public domain
# colour maps by van der Walt and Smith). Linear interpolation between 11 anchors keeps
# them within a couple of code values of the originals without shipping 256-entry tables.
_VIRIDIS = [
    (0.267004, 0.004874, 0.329415),
    (0.282623, 0.140926, 0.457517),
    (0.253935, 0.265254, 0.529983),
    (0.206756, 0.371758, 0.553117),
    (0.163625, 0.471133, 0.558148),
    (0.127568, 0.566949, 0.550556),
    (0.134692, 0.658636, 0.517649),
    (0.266941, 0.748751, 0.440573),
    (0.477504, 0.821444, 0.318195),
    (0.741388, 0.873449, 0.149561),
    (0.993248, 0.906157, 0.143936),
]
_INFERNO = [
    (0.001462, 0.000466, 0.013866),
    (0.087411, 0.044556, 0.224813),
    (0.258234, 0.038571, 0.406485),
    (0.416331, 0.090203, 0.432943),
    (0.578304, 0.148039, 0.404411),
    (0.735683, 0.215906, 0.330245),
    (0.865006, 0.316822, 0.226055),
    (0.954506, 0.468744, 0.099874),
    (0.987622, 0.645320, 0.039886),
    (0.964394, 0.843848, 0.273391),
    (0.988362, 0.998364, 0.644924),
]
# Blue - white - red, after ColorBrewer RdBu reversed: negative is blue, positive red,
# and zero is (near) white so "no difference" reads as blank paper.
_DIVERGING = [
    (0.019608, 0.188235, 0.380392),
    (0.129412, 0.400000, 0.674510),
    (0.262745, 0.576471, 0.764706),
    (0.572549, 0.772549, 0.870588),
    (0.819608, 0.898039, 0.941176),
    (0.968627, 0.968627, 0.968627),
    (0.992157, 0.858824, 0.780392),
    (0.956863, 0.647059, 0.509804),
    (0.839216, 0.376471, 0.301961),
    (0.698039, 0.094118, 0.168627),
    (0.403922, 0.000000, 0.121569),
]


def _interpolate(anchors: list[tuple[float, float, float]]) -> np.ndarray:
    a = np.asarray(anchors, dtype=np.float64)
    x = np.linspace(0.0, 1.0, len(a))
    xs = np.linspace(0.0, 1.0, 256)
    out = np.stack([np.interp(xs, x, a[:, c]) for c in range(3)], axis=1)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def _grey() -> np.ndarray:
    g = np.arange(256, dtype=np.uint8)
    return np.stack([g, g, g], axis=1)


_LUTS: dict[str, np.ndarray] = {
    "grey": _grey(),
    "viridis": _interpolate(_VIRIDIS),
    "inferno": _interpolate(_INFERNO),
    "diverging": _interpolate(_DIVERGING),
}
for _lut in _LUTS.values():
    _lut.setflags(write=False)

COLORMAPS = tuple(_LUTS)


def colormap_lut(name: str) -> np.ndarray:
    """The read-only uint8 [256, 3] table for ``name`` (one of COLORMAPS)."""
    try:
        return _LUTS[name]
    except KeyError:
        raise ValueError(f"unknown colormap {name!r}; known: {COLORMAPS}") from None


def to_codes(values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Map values linearly onto 0..255 (clipped; NaN goes to 0)."""
    if not vmax > vmin:
        raise ValueError(f"need vmax > vmin, got vmin={vmin}, vmax={vmax}")
    v = np.asarray(values, dtype=np.float32)
    scaled = (v - np.float32(vmin)) * np.float32(255.0 / (vmax - vmin)) + np.float32(0.5)
    np.clip(scaled, 0.0, 255.0, out=scaled)
    scaled = np.nan_to_num(scaled, nan=0.0, copy=False)
    return scaled.astype(np.uint8)


def apply_lut(values: np.ndarray, vmin: float, vmax: float, lut: np.ndarray) -> np.ndarray:
    """Colour ``values`` [...] through ``lut`` [256, 3]; returns uint8 [..., 3]."""
    return lut[to_codes(values, vmin, vmax)]


# Golden-ratio hue stepping puts consecutive ids about 0.38 of the colour wheel apart and
# never repeats a hue exactly; cycling saturation and value on periods coprime to each
# other separates ids whose hues happen to land close (id and id + 13, id + 21, ...).
_GOLDEN = 0.6180339887498949
_SATURATIONS = np.array([0.85, 0.55, 1.0], dtype=np.float64)
_VALUES = np.array([0.95, 0.75, 0.88, 0.62, 1.0], dtype=np.float64)


def categorical_colors(ids: np.ndarray) -> np.ndarray:
    """A distinct, stable colour per integer id: uint8 [..., 3]. Negative ids are grey
    (used for "no source")."""
    ids = np.asarray(ids)
    flat = ids.reshape(-1).astype(np.int64)
    uniq, inverse = np.unique(flat, return_inverse=True)
    # Colour only the distinct ids (tens, not a frame's thousand pixels) then scatter.
    h = np.mod(uniq * _GOLDEN + 0.11, 1.0)
    s = _SATURATIONS[np.mod(uniq, len(_SATURATIONS))]
    v = _VALUES[np.mod(uniq // 3, len(_VALUES))]
    rgb = _hsv_to_rgb(h, s, v)
    rgb[uniq < 0] = (0.35, 0.35, 0.35)
    table = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    return table[inverse].reshape(*ids.shape, 3)


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    i = np.floor(h * 6.0).astype(np.int64) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p = v * (1.0 - s)
    q = v * (1.0 - f * s)
    t = v * (1.0 - (1.0 - f) * s)
    choices = [
        np.stack([v, t, p], -1),
        np.stack([q, v, p], -1),
        np.stack([p, v, t], -1),
        np.stack([p, q, v], -1),
        np.stack([t, p, v], -1),
        np.stack([v, p, q], -1),
    ]
    out = np.empty(h.shape + (3,), dtype=np.float64)
    for k, c in enumerate(choices):
        out[i == k] = c[i == k]
    return out


def position_colors(rows: np.ndarray, cols: np.ndarray, height: int, width: int) -> np.ndarray:
    """2-D colour map of a position: red grows with the row, blue with the column, and
    green is highest at the top-left corner so the four corners are black-green, blue,
    red and magenta, all distinct. Returns uint8 [..., 3]."""
    r = np.asarray(rows, dtype=np.float32) / np.float32(max(height - 1, 1))
    c = np.asarray(cols, dtype=np.float32) / np.float32(max(width - 1, 1))
    np.clip(r, 0.0, 1.0, out=r)
    np.clip(c, 0.0, 1.0, out=c)
    red = 40.0 + 215.0 * r
    blue = 40.0 + 215.0 * c
    green = 40.0 + 160.0 * (1.0 - r) * (1.0 - c)
    out = np.stack([red, green, blue], axis=-1) + 0.5
    return out.astype(np.uint8)

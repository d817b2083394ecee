"""What the panels show: one immutable value that the window, render and export share.

A View names the image kind (x0_hat or x_t), the provenance mode and whether the
difference panel is on; it decides which panels there are. How an export draws the
frames (layout, enlargement) is the exporter's business, not the view's.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import provenance

SHOW_MODES = ("x0", "xt")  # the denoised estimate x0_hat, or the noisy state x_t
PANELS = ("cnn", "machine", "provenance", "difference")


@dataclass(frozen=True)
class View:
    show: str = "x0"
    prov_mode: str = "mosaic"  # a key of provenance.MODES
    diff: bool = False  # the CNN - machine difference panel

    def __post_init__(self) -> None:
        if self.show not in SHOW_MODES:
            raise ValueError(f"unknown show {self.show!r}; known: {', '.join(SHOW_MODES)}")
        provenance.mode(self.prov_mode)

    @property
    def panels(self) -> list[str]:
        """The panels shown, in order: the difference panel only when asked for."""
        return [p for p in PANELS if self.diff or p != "difference"]

    def record(self) -> dict:
        """The view as an export records it."""
        return {"show": self.show, "provenance": self.prov_mode, "difference": self.diff}


DEFAULT_VIEW = View()

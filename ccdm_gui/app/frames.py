"""What the window shows: the trajectories received so far and their rendered frames.

A run streams in two phases: the CNN's steps, then the machine's. A displayable frame
needs both, so while the machine streams, the comparison is cut to the steps that both
trajectories have (``min`` of their lengths): every array then has the same length and
``core.render`` works on it unchanged. Before the first machine step only the CNN panel
has pixels. Rendered frames are kept per view, so scrubbing back and forth costs a dict
lookup once a frame has been seen.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..core import render
from ..core.datasets.known import class_names_at
from ..core.metrics import correlation
from ..core.spec import CNNTrajectory, Comparison, MachineTrajectory, RunSpec
from ..core.view import View


def _cut_cnn(t: CNNTrajectory, k: int) -> CNNTrajectory:
    if len(t.t) == k:
        return t
    return CNNTrajectory(t=t.t[:k], x_t=t.x_t[:k], x0=t.x0[:k], final=t.x0[k - 1])


def _cut_machine(m: MachineTrajectory, k: int) -> MachineTrajectory:
    if len(m.t) == k:
        return m
    return replace(
        m,
        t=m.t[:k],
        patch_size=m.patch_size[:k],
        x_t=m.x_t[:k],
        x0=m.x0[:k],
        source_index=m.source_index[:k],
        source_yx=m.source_yx[:k],
        weight=m.weight[:k],
        entropy=m.entropy[:k],
        shared_count=None if m.shared_count is None else m.shared_count[:k],
        shared_images=None if m.shared_images is None else m.shared_images[:k],
        final=m.x0[k - 1],
    )


def partial_comparison(
    spec: RunSpec,
    cnn: CNNTrajectory,
    machine: MachineTrajectory,
    known: np.ndarray | None = None,
) -> Comparison:
    """A Comparison of the steps both trajectories have. ``known`` holds correlations
    already computed for a prefix, so streaming costs one correlation per new step."""
    k = min(len(cnn.t), len(machine.t))
    corr = np.empty(k, dtype=np.float64)
    start = 0 if known is None else min(len(known), k)
    if start:
        corr[:start] = known[:start]
    for i in range(start, k):
        corr[i] = correlation(cnn.x0[i], machine.x0[i])
    return Comparison(spec, _cut_cnn(cnn, k), _cut_machine(machine, k), corr)


class FrameStore:
    """The run on screen. ``complete`` once the worker delivered the whole comparison."""

    def __init__(self) -> None:
        self.spec: RunSpec | None = None
        self.cnn: CNNTrajectory | None = None
        self.machine: MachineTrajectory | None = None
        self.comp: Comparison | None = None
        self.complete = False
        self.cancelled = False  # the worker stopped before the run was complete
        self.total = 0
        self._rgb: dict[tuple, object] = {}  # rendered panels and legends

    def clear(self) -> None:
        self.__init__()

    def begin(self, spec: RunSpec) -> None:
        """A new run starts. The CNN trajectory is kept while the CNN part of the spec
        is unchanged, so a P or boundary change never blanks the CNN panel."""
        keep_cnn = (
            self.spec is not None
            and self.cnn is not None
            and self.spec.cnn_key() == spec.cnn_key()
            and len(self.cnn.t) == spec.steps
        )
        cnn = self.cnn if keep_cnn else None
        self.clear()
        self.spec, self.cnn, self.total = spec, cnn, spec.steps

    def set_cnn(self, traj: CNNTrajectory) -> None:
        self.cnn = traj
        self._update()

    def set_machine(self, traj: MachineTrajectory) -> None:
        self.machine = traj
        self._update()

    def set_complete(self, comp: Comparison) -> None:
        self.spec, self.cnn, self.machine = comp.spec, comp.cnn, comp.machine
        self.comp, self.complete, self.total = comp, True, len(comp.cnn.t)
        self._rgb.clear()

    def _update(self) -> None:
        self.complete = False
        if self.cnn is not None and self.machine is not None:
            # Within one run the steps only grow, so earlier correlations stay valid.
            known = self.comp.correlation if self.comp is not None else None
            self.comp = partial_comparison(self.spec, self.cnn, self.machine, known)
        else:
            self.comp = None
        # Frames grow only at the end, but the partial machine arrays of earlier frames
        # are new objects; drop the cache rather than trust identities.
        self._rgb.clear()

    @property
    def frames(self) -> int:
        """How many steps can be shown now."""
        if self.comp is not None:
            return len(self.comp.cnn.t)
        return 0 if self.cnn is None else len(self.cnn.t)

    def images(self, step: int, view: View) -> dict[str, np.ndarray]:
        key = (step, view)
        hit = self._rgb.get(key)
        if hit is not None:
            return hit
        if self.comp is not None:
            out = render.panel_images(self.comp, step, view)
        elif self.cnn is not None:
            x = self.cnn.x0[step] if view.show == "x0" else self.cnn.x_t[step]
            out = {"cnn": render.image_rgb(x)}
        else:
            out = {}
        self._rgb[key] = out
        return out

    def legend(self, step: int, mode: str):
        """The provenance colour key of a frame (its "source" entries change per step)."""
        key = ("legend", step, mode)
        hit = self._rgb.get(key)
        if hit is None and self.comp is not None:
            spec = self.comp.spec
            names = class_names_at(spec.dataset)
            hit = render.legend(
                mode, self.comp.machine, step, machine=spec.machine, class_names=names
            )
            self._rgb[key] = hit
        return hit

    def captions(self, step: int, view: View) -> dict[str, str]:
        """Every caption names t, P and r of its frame (render's caption plus what it
        leaves out), so any single panel exported or screenshotted is self-describing."""
        if self.comp is None:
            if self.cnn is None:
                return {}
            t = float(self.cnn.t[step])
            what = "x0" if view.show == "x0" else "x_t"
            state = "cancelled (F5 computes it)" if self.cancelled else "computing…"
            return {"cnn": f"CNN {what}  t={t:.2f}", "machine": f"machine: {state}"}
        comp = self.comp
        t = float(comp.cnn.t[step])
        p = int(comp.machine.patch_size[step])
        r = float(comp.correlation[step])
        out = {}
        for name in view.panels:
            text = render.caption(comp, step, name, view)
            extra = []
            if "t=" not in text:
                extra.append(f"t={t:.2f}")
            if "P=" not in text:
                extra.append(f"P={p}")
            if "r=" not in text:
                extra.append(f"r={r:.2f}")
            out[name] = "  ".join([text, *extra])
        return out

"""How fast the window is: launch to first frame, launch to a complete comparison, and
the redraw time of one frame while scrubbing (target < 16 ms, one 60 Hz frame).

    .venv/bin/python bench/gui_timing.py [--model M] [--dataset D] [--subset 1000]

Runs the real window (offscreen unless QT_QPA_PLATFORM says otherwise) on the shipped
model by default, and settings in a temporary file. Each redraw figure is printed with
its ratio to a baseline measured in the same process: core.render.panel_images alone,
the pixels without any Qt.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the ccdm-gui launcher does
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def stats(ms: list[float]) -> tuple[float, float]:
    a = np.asarray(ms, dtype=float)
    return float(a.mean()), float(np.percentile(a, 95))


def main() -> int:
    from ccdm_gui.core.resources import default_dataset_path, default_model_path

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(default_model_path()))
    p.add_argument("--dataset", default=str(default_dataset_path()))
    p.add_argument("--subset", type=int, default=1000)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--machine", default="bbels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=5, help="scrub passes over all frames")
    args = p.parse_args()

    settings = Path(tempfile.mkdtemp()) / "settings.ini"
    os.environ["CCDM_GUI_SETTINGS"] = str(settings)
    from PySide6.QtWidgets import QApplication

    from ccdm_gui.app.app import make_app
    from ccdm_gui.app.main_window import MainWindow
    from ccdm_gui.core import machine_registry, provenance, render
    from ccdm_gui.core.view import View

    app = make_app()
    t_app = time.perf_counter()
    done = {}
    win = MainWindow(
        {
            "model": args.model,
            "dataset": args.dataset,
            "subset": args.subset,
            "steps": args.steps,
            "machine": args.machine,
            "boundary": machine_registry.fit_boundary(args.machine, "circular"),
            "seed": args.seed,
            "patch_size": "calibrated",
            "device": "cpu",
        }
    )
    win.comparison_ready.connect(lambda c: (done.setdefault("t", time.perf_counter()), app.quit()))
    win.run_failed.connect(lambda m: (done.setdefault("error", m), app.quit()))
    win.show()
    app.exec()
    if "error" in done:
        print(f"run failed: {done['error']}")
        return 1
    comp = win.store.comp
    n = len(comp.cnn.t)
    print(f"model {args.model}  subset {args.subset}  steps {n}  machine {args.machine}")
    print(f"imports (torch, Qt, app) before the window: {t_app - T_START:7.2f} s")
    print(f"launch -> first frame on screen:             {win.first_frame_at - T_START:7.2f} s")
    print(f"launch -> complete comparison:               {done['t'] - T_START:7.2f} s")

    # Baseline: the pixels alone, no Qt.
    views = [
        View(show, mode, diff)
        for show in ("x0", "xt")
        for mode in provenance.KEYS
        for diff in (False, True)
    ]
    base = []
    for _ in range(args.repeats):
        for v in views:
            for i in range(n):
                t0 = time.perf_counter()
                render.panel_images(comp, i, v)
                base.append((time.perf_counter() - t0) * 1000)

    def scrub(view: View, paint: bool) -> list[float]:
        win.controls.set_state({}, view)
        win._on_control("show")  # apply the view as a user's toggle would
        out = []
        for _ in range(args.repeats):
            for i in list(range(n)) + list(range(n - 1, -1, -1)):
                t0 = time.perf_counter()
                win.timeline.slider.setValue(i)
                if paint:
                    # Flush the repaint of panels, plots and slider: what the user waits for.
                    win.panels.view.viewport().repaint()
                    QApplication.processEvents()
                out.append((time.perf_counter() - t0) * 1000)
        return out

    redraw, painted = [], []
    for v in views:
        win.store._rgb.clear()  # first pass of each view renders, later passes hit the cache
        redraw += scrub(v, paint=False)
        painted += scrub(v, paint=True)
    requests_before = win.worker.requests
    bm, bp = stats(base)
    rm, rp = stats(redraw)
    pm, pp = stats(painted)
    print(f"\nper frame, over {len(views)} views x {n} frames x {args.repeats} passes (ms):")
    print(f"  baseline render.panel_images        mean {bm:6.3f}  p95 {bp:6.3f}")
    print(
        f"  redraw (set images, captions, plot)  mean {rm:6.3f}  p95 {rp:6.3f}"
        f"   ratio to baseline {rm / bm:6.1f}x / {rp / bp:6.1f}x"
    )
    print(
        f"  redraw + repaint on screen           mean {pm:6.3f}  p95 {pp:6.3f}"
        f"   ratio to baseline {pm / bm:6.1f}x / {pp / bp:6.1f}x"
    )
    print(f"  target 16 ms: {'met' if pp < 16 else 'MISSED'} (p95 with repaint)")
    print(f"  worker requests during scrubbing: {win.worker.requests - requests_before}")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

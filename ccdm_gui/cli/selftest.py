"""ccdm self-test: the smoke test of an installation (a bundle, a package or a checkout).

Each check imports what it exercises inside itself, so that a part missing from a
broken bundle fails that one check with its name instead of the whole command, and
the remaining checks still run. Exit status 0 only when every check passed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

# Small on purpose: the test must take seconds on a laptop CPU, in a frozen bundle too.
_TRAIN_N, _SIZE, _STEPS, _PATCH = 6, 8, 4, 3


class _Context:
    """What the checks hand on to each other (a later check reuses an earlier result)."""

    def __init__(self, display: bool, workdir: Path):
        self.display = display
        self.workdir = workdir
        self.comparison = None  # the machine check's Comparison, for render and export


def _tiny_training_set():
    """Six 8x8 images with distinct structure (bars, a square, a diagonal), in [-1, 1]."""
    import torch

    imgs = torch.full((_TRAIN_N, 1, _SIZE, _SIZE), -1.0)
    imgs[0, :, 2:6, 2:6] = 1.0
    imgs[1, :, :, 3:5] = 1.0
    imgs[2, :, 3:5, :] = 1.0
    imgs[3, 0] = torch.eye(_SIZE) * 2 - 1
    imgs[4, :, ::2, ::2] = 1.0
    imgs[5, :, 1:7, 1] = 1.0
    return imgs


def check_torch(ctx: _Context) -> str:
    import torch

    from ..core.devices import resolve_device

    a = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    got = (a @ a.T).trace().item()
    if got != float((a * a).sum()):
        raise AssertionError(f"matrix product is wrong: {got}")
    return f"torch {torch.__version__}, {torch.get_num_threads()} threads, auto device: " + str(
        resolve_device("auto")
    )


def check_resources(ctx: _Context) -> str:
    from ..core.resources import default_dataset_path, default_model_path, models_dir

    model, data = default_model_path(), default_dataset_path()
    missing = [str(p) for p in (model, data) if not p.exists()]
    if missing:
        raise FileNotFoundError("shipped files missing: " + ", ".join(missing))
    models = sorted(p.name for p in models_dir().glob("*.safetensors"))
    return f"{len(models)} models ({', '.join(models)}), dataset {data}"


def check_model(ctx: _Context) -> str:
    import torch

    from ..core.denoisers import CNNDenoiser
    from ..core.pipeline import load_model
    from ..core.resources import default_model_path
    from ..core.sampler import initial_noise

    loaded = load_model(str(default_model_path()), "cpu")
    info = loaded.info
    x = initial_noise((1, info.channels, info.image_size, info.image_size), seed=0)
    label = 0 if info.num_classes else None
    x0 = CNNDenoiser(loaded.predictor, label)(x, 0.5).x0
    if x0.shape != x.shape or not torch.isfinite(x0).all():
        raise AssertionError(f"CNN output is {tuple(x0.shape)} or not finite")
    return f"{Path(loaded.path).name}: {info.arch}, {info.image_size}px, one CNN step"


def check_machine(ctx: _Context) -> str:
    """The CNN and bbELS sides of a comparison, on a tiny training set held in memory."""
    import numpy as np
    import torch

    from ..core.denoisers import CNNDenoiser, MachineDenoiser
    from ..core.networks import build_network
    from ..core.pipeline import assemble_comparison, cnn_trajectory, machine_trajectory
    from ..core.sampler import initial_noise, sample
    from ..core.spec import RunSpec

    train = _tiny_training_set()
    noise = initial_noise((1, 1, _SIZE, _SIZE), seed=1)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = build_network("resnet", channels=1, width=16, blocks=1).eval()
    cnn = sample(CNNDenoiser(net), noise, _STEPS)
    from ..core.machines import routes

    with routes.watch() as taken:
        mach = sample(MachineDenoiser(train, "bbels", _PATCH, "zeros"), noise, _STEPS)
    for name, traj in (("CNN", cnn), ("machine", mach)):
        if len(traj.steps) != _STEPS or not torch.isfinite(traj.final).all():
            raise AssertionError(f"the {name} trajectory is incomplete or not finite")
    src = torch.stack([s.extra.source_index[0] for s in mach.steps])
    if int(src.min()) < 0 or int(src.max()) >= _TRAIN_N:
        raise AssertionError(f"provenance indices outside [0, {_TRAIN_N})")

    spec = RunSpec(
        model="self-test CNN", dataset="self-test", subset=_TRAIN_N, steps=_STEPS,
        machine="bbels", patch_size=_PATCH,
    )  # fmt: skip
    ctx.comparison = assemble_comparison(
        spec,
        cnn_trajectory(cnn.steps, cnn.final),
        machine_trajectory(mach.steps, mach.final, np.full(_STEPS, _PATCH), np.arange(_TRAIN_N)),
    )
    return (
        f"CNN and bbELS (P={_PATCH}), {_STEPS} DDIM steps, {_TRAIN_N} training images; "
        f"routes: P={_PATCH} {_names(taken)}; {_long_patch_routes()}"
    )


def _names(taken) -> str:
    return "+".join(sorted({route.value for route in taken}))


def _long_patch_routes() -> str:
    """The route one bbELS step of the shortest patch the window sums pay for takes, and
    the same step forced onto each other CPU route, which must agree (random images)."""
    import torch

    from ..core.machines import fused, machine_denoise, native, routes

    p = routes.shortest_window_sums_patch()
    g = torch.Generator().manual_seed(0)
    train = torch.rand(40, 1, 2 * p, 2 * p, generator=g) * 2 - 1
    x = 0.7 * train[:1] + 0.7 * torch.randn(1, 1, 2 * p, 2 * p, generator=g)
    with routes.watch() as taken:
        first = machine_denoise(x, 0.5, train, "bbels", p, "zeros")
    agree, off, diff = [], [], 0.0
    for name in ("fold", "numba", "torch"):
        try:
            with routes.override(name), routes.watch() as other:
                x0 = machine_denoise(x, 0.5, train, "bbels", p, "zeros").x0
        except ValueError:
            off.append(f"{name} off: {native.reason if name == 'fold' else fused.reason}")
            continue
        diff = max(diff, float((first.x0 - x0).abs().max()))
        agree.append(_names(other))
    if not diff < 1e-4:
        raise AssertionError(f"P={p}: {_names(taken)} and {', '.join(agree)} differ by {diff:.1e}")
    return f"P={p} {_names(taken)}, x0 within {diff:.0e} on {', '.join(agree + off)}"


def check_render(ctx: _Context) -> str:
    import numpy as np

    from ..core import provenance, render
    from ..core.view import View

    comp = ctx.comparison
    if comp is None:
        raise RuntimeError("needs the machine check's comparison, which failed")
    for step in range(len(comp.cnn.t)):
        for mode in provenance.KEYS:
            panels = render.panel_images(comp, step, View(prov_mode=mode, diff=True))
            frame = np.concatenate(list(panels.values()), axis=1)
            if frame.dtype != np.uint8 or frame.shape != (_SIZE, _SIZE * len(panels), 3):
                raise AssertionError(f"{mode} frame is {frame.dtype} {frame.shape}")
        render.caption(comp, step, "machine")
    return f"{len(comp.cnn.t)} steps x {len(provenance.KEYS)} provenance modes"


def check_export(ctx: _Context) -> str:
    import av

    from ..export import export_video

    if ctx.comparison is None:
        raise RuntimeError("needs the machine check's comparison, which failed")
    path = export_video(ctx.comparison, ctx.workdir / "selftest.mp4", fps=4, scale=8)
    with av.open(str(path)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    if decoded != _STEPS:
        raise AssertionError(f"wrote {_STEPS} frames, read back {decoded}")
    return f"{path.name}: {decoded} frames, {path.stat().st_size} bytes (PyAV {av.__version__})"


def check_window(ctx: _Context) -> str:
    if not ctx.display:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from ..app import settings
    from ..app.app import make_app
    from ..app.main_window import MainWindow

    # A throwaway settings file: closing the window saves its state, and a smoke
    # test must not overwrite the user's.
    os.environ[settings.ENV_VAR] = str(ctx.workdir / "settings.ini")
    app = make_app(["ccdm-gui"])
    win = MainWindow({"autostart": False})
    win.show()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    size = win.size()
    win.close()
    app.processEvents()
    if win.isVisible():
        raise AssertionError("the window did not close")
    return f"{app.platformName()} platform, {size.width()}x{size.height()} window opened and closed"


CHECKS: list[tuple[str, Callable[[_Context], str]]] = [
    ("torch", check_torch),
    ("resources", check_resources),
    ("model", check_model),
    ("machine", check_machine),
    ("render", check_render),
    ("export", check_export),
    ("window", check_window),
]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ModuleNotFoundError):
        return f"missing part: module {exc.name!r} cannot be imported ({exc})"
    if isinstance(exc, ImportError):
        return f"missing part: {exc}"
    return f"{type(exc).__name__}: {exc}"


def run_checks(display: bool = False, verbose: bool = False, out=None) -> int:
    """Run every check, print one PASS/FAIL line each; return the number that failed."""
    from .. import __version__

    out = out or sys.stdout
    where = f"bundle {sys._MEIPASS}" if getattr(sys, "frozen", False) else "source"
    print(f"ccdm-gui {__version__} self-test (Python {sys.version.split()[0]}, {where})", file=out)
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ccdm-selftest-") as tmp:
        ctx = _Context(display, Path(tmp))
        for name, check in CHECKS:
            start = time.perf_counter()
            try:
                detail = check(ctx)
            except Exception as exc:  # noqa: BLE001 - every failure is reported, none escapes
                failed.append(name)
                print(f"FAIL {name:<9} {_describe(exc)}", file=out, flush=True)
                if verbose:
                    traceback.print_exc(file=out)
                continue
            seconds = time.perf_counter() - start
            print(f"PASS {name:<9} {detail} ({seconds:.1f} s)", file=out, flush=True)
    if failed:
        print(f"self-test FAILED: {', '.join(failed)} ({len(failed)} of {len(CHECKS)})", file=out)
    else:
        print(f"self-test OK: all {len(CHECKS)} checks passed", file=out)
    return len(failed)


def _cmd_selftest(args: argparse.Namespace) -> int:
    return 1 if run_checks(display=args.display, verbose=args.verbose) else 0


def register(sub) -> None:
    p = sub.add_parser(
        "self-test",
        help="check this installation: torch, models, machine, rendering, video, window",
        description="Smoke test of an installed ccdm-gui; exit status 1 if any check fails.",
    )
    p.add_argument(
        "--display",
        action="store_true",
        help="open the window on the real display (default: Qt's offscreen platform)",
    )
    p.add_argument("--verbose", action="store_true", help="print a traceback for each failure")
    p.set_defaults(func=_cmd_selftest)

"""End-to-end check of the shipped packages: build the PyInstaller bundle, the tarball
and the .deb with packaging/build.sh, then run the bundle and the unpacked package.

Slow (about 4 minutes here: the bundle holds torch and Qt), so it runs only with
CCDM_PACKAGING_TEST=1, which .ci/run sets. It reuses dist/ when the .deb there is
newer than every input of the build, and otherwise rebuilds with --reuse-venv (the
pinned build venv is kept while the lock file is unchanged; the bundle itself is
always made afresh).
The few quick tests at the end (self-test from the source tree, build.sh's
argument check, the entry script's dispatch) always run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
BUNDLE = DIST / "ccdm-gui"


def packaging(fn):
    """The marks of a test that needs the built bundle and packages."""
    fn = pytest.mark.slow(fn)
    fn = pytest.mark.skipif(
        os.environ.get("CCDM_PACKAGING_TEST") != "1",
        reason="builds a ~1 GB bundle; set CCDM_PACKAGING_TEST=1 to run",
    )(fn)
    return pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux packages")(fn)


# Everything the bundle or the packages are made from; a change to any of them
# makes the cached dist/ stale.
BUILD_INPUTS = ["ccdm_gui", "models", "resources", "packaging", "pyproject.toml", "setup.py"]


def _version() -> str:
    from ccdm_gui import __version__

    return __version__


def _newest_input() -> float:
    newest = 0.0
    for name in BUILD_INPUTS:
        path = ROOT / name
        files = [path] if path.is_file() else path.rglob("*")
        for f in files:
            if f.is_file() and "__pycache__" not in f.parts:
                newest = max(newest, f.stat().st_mtime)
    return newest


def _deb() -> Path:
    return DIST / f"ccdm-gui_{_version()}_amd64.deb"


def _tarball() -> Path:
    return DIST / f"ccdm-gui-{_version()}-linux-x86_64.tar.gz"


def _run(cmd, timeout: float, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", **kw.pop("env", {})}
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, env=env, **kw
    )


@pytest.fixture(scope="module")
def built() -> dict:
    """dist/ with the bundle, the tarball and the .deb, fresh for the current inputs."""
    deb, tarball = _deb(), _tarball()
    fresh = (
        deb.is_file()
        and tarball.is_file()
        and (BUNDLE / "ccdm").is_file()
        and deb.stat().st_mtime > _newest_input()
    )
    seconds = None
    if not fresh:
        start = time.monotonic()
        proc = _run(["bash", ROOT / "packaging" / "build.sh", "--reuse-venv"], 3000, cwd=ROOT)
        seconds = time.monotonic() - start
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    for path in (deb, tarball):
        print(f"{path.name}: {path.stat().st_size / 2**20:.0f} MiB")
    if seconds is not None:
        print(f"build.sh --reuse-venv took {seconds:.0f} s")
    return {"deb": deb, "tarball": tarball}


def _assert_selftest(proc: subprocess.CompletedProcess) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "FAIL" not in proc.stdout, out
    assert "self-test OK" in proc.stdout, out
    # The compiled library (foldc.c, an extension module) is bundled: the window sums and
    # the compiled fold run; and so is numba: its route compiles and runs.
    assert "P=3 fold-avx" in proc.stdout and "P=7 window-sums-avx" in proc.stdout, out
    assert ", numba" in proc.stdout and "off:" not in proc.stdout, out


@packaging
def test_bundle_version_and_self_test(built):
    proc = _run([BUNDLE / "ccdm", "--version"], 120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"ccdm-gui {_version()}", proc
    _assert_selftest(_run([BUNDLE / "ccdm", "self-test"], 600))


@packaging
def test_bundle_leaves_out_unused_parts(built):
    internal = BUNDLE / "_internal"
    names = {p.name for p in internal.rglob("*")}
    for unwanted in ("libQt6WebEngineCore.so.6", "libQt6Quick.so.6", "libQt6Qml.so.6"):
        assert unwanted not in names, f"{unwanted} was bundled"
    assert not (internal / "scipy").exists()
    pyside = {p.name.split(".")[0] for p in (internal / "PySide6").glob("Qt*.so")}
    assert {"QtCore", "QtGui", "QtWidgets"} <= pyside
    assert not pyside & {"QtQml", "QtQuick", "QtNetwork", "QtWebEngineCore"}, pyside
    platforms = {p.name for p in internal.rglob("platforms/*.so")}
    assert {"libqxcb.so", "libqoffscreen.so"} <= platforms, platforms
    assert list((internal / "models").glob("*.safetensors"))
    assert (internal / "resources" / "datasets" / "mnist" / "train-images-idx3-ubyte.gz").is_file()


@packaging
def test_tarball_holds_the_bundle(built):
    with tarfile.open(built["tarball"]) as tar:
        names = set(tar.getnames())
    assert {"ccdm-gui/ccdm", "ccdm-gui/ccdm-gui"} <= names


@packaging
def test_deb_installs_and_runs(built, tmp_path):
    deb = built["deb"]
    info = subprocess.run(["dpkg-deb", "-f", deb], capture_output=True, text=True, check=True)
    assert "Package: ccdm-gui" in info.stdout
    for lib in ("libxcb-cursor0", "libxkbcommon-x11-0", "libegl1", "libfontconfig1"):
        assert lib in info.stdout, info.stdout

    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
    ccdm, gui = root / "usr/bin/ccdm", root / "usr/bin/ccdm-gui"
    assert ccdm.is_symlink() and ccdm.resolve() == root / "opt/ccdm-gui/ccdm"
    assert gui.resolve() == root / "opt/ccdm-gui/ccdm-gui"
    desktop = (root / "usr/share/applications/ccdm-gui.desktop").read_text()
    assert "Exec=ccdm-gui" in desktop and "Icon=ccdm-gui" in desktop
    assert list((root / "usr/share/icons/hicolor").glob("*/apps/ccdm-gui.*"))

    _assert_selftest(_run([ccdm, "self-test"], 600))

    shot = tmp_path / "first-frame.png"
    start = time.monotonic()
    proc = _run([gui, "--screenshot", shot], 600)
    seconds = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "first frame" in proc.stdout, proc.stdout
    print(f"installed ccdm-gui --screenshot: {proc.stdout.strip()} (process {seconds:.1f} s)")

    from PIL import Image

    with Image.open(shot) as img:
        img = img.convert("RGB")
        width, height = img.size
        colours = img.getcolors(maxcolors=1 << 20)
    assert width >= 640 and height >= 400, img.size
    # A blank or half-drawn window has a handful of colours; panels, plots and
    # text have hundreds.
    assert colours is None or len(colours) > 100, len(colours)


# ------------------------------------------------------------------ quick tests


def test_build_script_refuses_unknown_option():
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    proc = _run(["bash", ROOT / "packaging" / "build.sh", "--bogus"], 60, cwd=ROOT)
    assert proc.returncode == 2 and "unknown option" in proc.stderr


def test_self_test_passes_from_source(tmp_path):
    env = {"CCDM_GUI_SETTINGS": str(tmp_path / "settings.ini")}
    proc = _run([sys.executable, "-m", "ccdm_gui", "self-test"], 900, cwd=ROOT, env=env)
    _assert_selftest(proc)
    assert proc.stdout.count("\nPASS ") == 7, proc.stdout


def test_self_test_names_a_missing_part(monkeypatch):
    import importlib
    import io

    from ccdm_gui.cli import selftest

    def broken(ctx):
        importlib.import_module("ccdm_gui.no_such_part")

    monkeypatch.setattr(selftest, "CHECKS", [("torch", selftest.check_torch), ("part", broken)])
    out = io.StringIO()
    assert selftest.run_checks(out=out) == 1
    text = out.getvalue()
    assert "PASS torch" in text
    assert "FAIL part" in text and "missing part" in text and "ccdm_gui.no_such_part" in text
    assert "self-test FAILED: part" in text


@pytest.mark.parametrize(
    ("executable", "role"),
    [
        ("/opt/ccdm-gui/ccdm-gui", "gui"),
        ("/opt/ccdm-gui/ccdm", "cli"),
        ("C:\\Program Files\\ccdm-gui\\ccdm-gui.exe", "gui"),
        ("/Applications/ccdm-gui.app/Contents/MacOS/ccdm", "cli"),
    ],
)
def test_entry_script_picks_role_by_executable_name(monkeypatch, executable, role):
    import importlib.util

    spec = importlib.util.spec_from_file_location("ccdm_entry", ROOT / "packaging/ccdm_entry.py")
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    monkeypatch.setattr(sys, "executable", executable.replace("\\", os.sep))
    assert entry._role() == role

"""The window's error paths (offscreen Qt, real worker thread, tiny model and data):
a model or dataset that cannot be opened gives way to the default with a note, paths
are remembered absolute, the banner clears once a load succeeds, a random-bytes .pt is
one sentence, and no display is a message rather than Qt's abort."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("pytestqt")

import test_app  # noqa: E402
from test_app import RUN_TIMEOUT_MS, options, run_until_ready, wait_ready  # noqa: E402

from ccdm_gui.app import settings as app_settings  # noqa: E402
from ccdm_gui.app.worker import user_message  # noqa: E402
from ccdm_gui.core import resources  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# The window tests' fixtures: the tiny model and data, the window maker, and private
# settings (autouse), shared rather than copied.
files = test_app.files
make_window = test_app.make_window
private_settings = test_app.private_settings


@pytest.fixture
def tiny_defaults(files, monkeypatch):
    """The shipped model and data stand-ins: the tiny ones (a full MNIST run is slow)."""
    monkeypatch.setattr(resources, "default_model_path", lambda: files["model"])
    monkeypatch.setattr(resources, "default_dataset_path", lambda: files["data"])


def _noise_pt(tmp_path):
    p = tmp_path / "noise.pt"
    p.write_bytes(np.random.default_rng(3).bytes(4096))
    return p


def test_a_missing_model_on_the_command_line_opens_the_default(
    qtbot, files, make_window, tmp_path, tiny_defaults
):
    missing = tmp_path / "missing.safetensors"
    w = make_window(options(files, model=str(missing), machine="ideal"))
    comp = w.store.comp
    assert comp is not None and comp.spec.model == str(files["model"])
    assert w.model_path == str(files["model"])
    text = w.banner.text.text()
    assert w.banner.isVisible() and str(missing) in text and "default model" in text


def test_an_unreadable_model_opens_the_default_in_one_sentence(
    qtbot, files, make_window, tmp_path, tiny_defaults
):
    noise = _noise_pt(tmp_path)
    w = make_window(options(files, model=str(noise), machine="ideal"), wait=False)
    comp = wait_ready(qtbot, w)  # the fallback's run, after the first one failed
    assert comp.spec.model == str(files["model"])
    text = w.banner.text.text()
    assert "noise.pt: not a readable checkpoint" in text and "default model" in text
    assert "\n" not in text and "weights_only" not in text and "Traceback" not in text


def test_the_banner_clears_once_a_load_succeeds(qtbot, files, make_window, tmp_path):
    w = make_window(options(files, machine="ideal"))
    noise = _noise_pt(tmp_path)
    with qtbot.waitSignal(w.run_failed, timeout=RUN_TIMEOUT_MS) as blocker:
        w.open_model(str(noise))
    assert "not a readable checkpoint" in blocker.args[0] and "\n" not in blocker.args[0]
    assert w.banner.isVisible()
    other = files["dir"] / "tiny_cond.safetensors"
    run_until_ready(qtbot, w, lambda: w.open_model(str(other)))
    assert not w.banner.isVisible()


def test_paths_are_remembered_absolute_and_a_gone_one_falls_back(
    qtbot, files, make_window, tmp_path, monkeypatch, tiny_defaults
):
    # Opened by a relative path from the model's folder ...
    monkeypatch.chdir(files["dir"])
    w = make_window(options(files, model="tiny_cond.safetensors", machine="ideal", label=1))
    assert w.store.comp.spec.model == str(files["dir"] / "tiny_cond.safetensors")
    w.close()
    s = app_settings.open_settings()
    assert s.value("last/model") == str(files["dir"] / "tiny_cond.safetensors")
    # ... found again from another folder.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    w2 = make_window({"autostart": False}, wait=False)
    assert w2.model_path == str(files["dir"] / "tiny_cond.safetensors")
    assert not w2.banner.isVisible()
    w2.close()
    # A remembered model that is gone: the default, and a note that says so.
    gone = tmp_path / "gone.safetensors"
    s = app_settings.open_settings()
    s.setValue("last/model", str(gone))
    s.sync()
    w3 = make_window({"machine": "ideal", "subset": 20, "steps": 4, "device": "cpu"})
    assert w3.store.comp.spec.model == str(files["model"])
    text = w3.banner.text.text()
    assert w3.banner.isVisible() and f"The last model, {gone}, is gone" in text


def test_out_of_memory_is_advice_not_a_crash():
    """The allocator's own errors (a real failed allocation on the CPU; the GPU's error
    type as PyTorch raises it) become advice naming the subset."""
    try:
        torch.empty(2**50, dtype=torch.uint8)
    except RuntimeError as e:
        cpu = user_message(e)
    assert cpu.startswith("Out of memory") and "subset" in cpu
    gpu = user_message(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9 GiB"))
    assert "GPU ran out of memory" in gpu and "subset" in gpu and "CPU" in gpu


def test_no_display_is_a_message_not_an_abort(tmp_path):
    env = {k: v for k, v in os.environ.items()}
    for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(k, None)
    r = subprocess.run(
        [sys.executable, "-m", "ccdm_gui", "gui"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 1
    assert r.stderr.strip() == "ccdm gui: error: no display: set DISPLAY or use ccdm's command line"

"""Ctrl+C (SIGINT) during each long command: exit status 130, one line saying so, no
traceback, no partial output; a training run keeps its last complete checkpoint.

Each command runs as a real process (the signal is the real one) on a tiny model with
many steps, and gets SIGINT once its progress bar shows that it is computing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from test_pipeline import make_dataset, make_model

from ccdm_gui.core.checkpoint import load_checkpoint, read_info
from ccdm_gui.core.train import optimiser_path

HANG_GUARD_S = 300  # only against a hung process; nothing here measures speed


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("interrupt")
    return make_model(root / "m.safetensors"), make_dataset(root / "data", n=16)


def _as_in_a_terminal() -> None:
    """The child starts with SIGINT at its default, as a command typed in a terminal does.
    A test run started in the background of a non-interactive shell (``pytest &``) has
    SIGINT ignored, the child would inherit that, and Python then installs no
    KeyboardInterrupt handler: the signal this test sends would never arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Running:
    """A ccdm process whose stderr is collected as it comes."""

    def __init__(self, argv: list[str], cwd: Path):
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        env.pop("CCDM_DEBUG", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ccdm_gui", *argv],
            cwd=cwd,
            env=env,
            preexec_fn=_as_in_a_terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.err = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while chunk := self.proc.stderr.read1(4096):
            self.err += chunk

    def wait_until(self, ready) -> None:
        deadline = time.monotonic() + HANG_GUARD_S
        while not ready():
            assert self.proc.poll() is None, self.err.decode(errors="replace")
            assert time.monotonic() < deadline, "never got going"
            time.sleep(0.2)

    def interrupt(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=HANG_GUARD_S)
        self._reader.join(timeout=10)
        return code, self.err.decode(errors="replace")


def _small(model, data) -> list[str]:
    return ["--model", str(model), "--dataset", str(data), "--subset", "12", "--device", "cpu"]


LONG = "5000"  # CNN steps: many seconds on the tiny model, so Ctrl+C lands mid-run


@pytest.mark.parametrize(
    "command, extra, outputs, shows",
    [
        ("run", ["--steps", LONG, "--out", "out"], ["out"], "cnn"),
        ("export", ["--steps", LONG, "--video", "v.gif", "--frames", "f"], ["v.gif", "f"], "cnn"),
        (
            "evaluate",
            ["--seeds", "1", "--cnn-steps", LONG, "--machine", "ls", "--json", "e.json"],
            ["e.json"],
            "evaluate",
        ),
        (
            "calibrate",
            ["--seeds", "1", "--steps", LONG, "--p-max", "3", "--machines", "ls"],
            [],
            "calibrate",
        ),
    ],
)
def test_ctrl_c_stops_with_130_and_writes_nothing(command, extra, outputs, shows, inputs, tmp_path):
    model, data = inputs
    before = model.read_bytes()
    run = Running([command, *_small(model, data), *extra], tmp_path)
    run.wait_until(lambda: shows.encode() in run.err)
    code, err = run.interrupt()
    assert code == 130, err
    assert f"ccdm {command}: interrupted" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no output, no temporary
    for name in outputs:
        assert not (tmp_path / name).exists()
    assert model.read_bytes() == before


def test_ctrl_c_during_training_keeps_the_last_complete_checkpoint(inputs, tmp_path):
    _, data = inputs
    out = tmp_path / "t.safetensors"
    argv = [
        "train",
        "--dataset",
        str(data),
        "--out",
        str(out),
        "--width",
        "16",
        "--blocks",
        "1",
        "--image-size",
        "12",
        "--batch",
        "2",
        "--steps",
        "1000000",
        "--checkpoint-every",
        "10",
        "--device",
        "cpu",
    ]
    run = Running(argv, tmp_path)
    # A few checkpoints in, so that the signal can land during a save as well.
    run.wait_until(lambda: load_steps(out) >= 20)
    code, err = run.interrupt()
    assert code == 130, err
    assert "ccdm train: interrupted" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name, optimiser_path(out).name]
    steps = load_steps(out)
    state = torch.load(optimiser_path(out), weights_only=True)
    assert steps >= 20 and steps % 10 == 0 and state["step"] == steps
    load_checkpoint(out)  # weights complete, not only the header
    # ... and it resumes from there.
    again = subprocess.run(
        [sys.executable, "-m", "ccdm_gui", *argv, "--steps", str(steps + 2), "--resume"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    assert again.returncode == 0, again.stderr
    assert load_steps(out) == steps + 2


def load_steps(path: Path) -> int:
    """The step the checkpoint at ``path`` holds (its metadata only: polled often)."""
    try:
        return int(read_info(path).training.get("steps", 0))
    except Exception:  # not written yet
        return 0

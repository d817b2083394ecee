"""Every sub-command against every class of bad input: one line on stderr that names the
argument or file, exit status 2 (bad argument) or 1, no traceback, nothing computed and
nothing written.

"Nothing computed" is read from stderr itself: a command that ran a single step would have
drawn a progress bar there, so stderr must be exactly the one error line. "Nothing
written" compares the whole working folder and the input folder before and after.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from test_pipeline import make_dataset, make_model

from ccdm_gui.cli import main
from ccdm_gui.cli.errors import run_command

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _RunsCommand:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _idx(path: Path, arr: np.ndarray, gz: bool = False) -> Path:
    head = bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    raw = head + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def _idx_folder(root: Path, name: str, n: int = 5, n_labels: int | None = None, gz=True):
    folder = root / name
    folder.mkdir()
    sfx = ".gz" if gz else ""
    rng = np.random.default_rng(0)
    _idx(folder / f"train-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n, 12, 12)), gz)
    _idx(folder / f"train-labels-idx1-ubyte{sfx}", np.arange(n_labels or n) % 4, gz)
    return folder


def _broken_datasets(root: Path) -> dict[str, Path]:
    """The dataset readers' failure classes (tests/test_datasets.py), one each."""
    out = {}
    f = _idx_folder(root, "truncated_gz")
    p = f / "train-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:-40])
    out["truncated_gz"] = f
    f = _idx_folder(root, "corrupt_gz")
    p = f / "train-images-idx3-ubyte.gz"
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    raw[-8] ^= 0xFF
    p.write_bytes(bytes(raw))
    out["corrupt_gz"] = f
    junk = root / "x-images-idx3-ubyte"
    junk.write_bytes(b"\x12\x34\x56\x78" + bytes(100))
    out["bad_magic"] = junk
    f = _idx_folder(root, "truncated_body", gz=False)
    p = f / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-100])
    out["truncated_body"] = f
    out["label_count"] = _idx_folder(root, "label_count", n=5, n_labels=4)
    (root / "empty").mkdir()
    out["empty_folder"] = root / "empty"
    hostile = root / "data_batch_1"
    hostile.write_bytes(pickle.dumps(_RunsCommand(root / "pwned"), protocol=2))
    out["hostile_pickle"] = hostile
    obj = root / "objects.npz"
    np.savez(obj, x=np.array([np.zeros(3), "a"], dtype=object))
    out["object_npz"] = obj
    unknown = root / "data.bin"
    unknown.write_bytes(b"nothing a reader knows")
    out["unknown_format"] = unknown
    return out


def _hostile_checkpoints(root: Path) -> dict[str, Path]:
    out = {}
    text = root / "bad.safetensors"
    text.write_text("this is a text file, not a checkpoint\n")
    out["text_safetensors"] = text
    good = make_model(root / "to_cut.safetensors")
    cut = root / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:200])
    out["truncated_safetensors"] = cut
    noise = root / "noise.pt"
    noise.write_bytes(np.random.default_rng(1).bytes(4096))
    out["random_pt"] = noise
    zipped = root / "zip.pt"
    torch.save({"state_dict": {}, "x": _RunsCommand(root / "pwned")}, zipped)
    out["hostile_zip_pt"] = zipped
    legacy = root / "legacy.pt"
    legacy.write_bytes(pickle.dumps(_RunsCommand(root / "pwned"), protocol=2))
    out["hostile_legacy_pt"] = legacy
    out["missing"] = root / "missing.pt"
    (root / "a_folder.safetensors").mkdir()
    out["folder"] = root / "a_folder.safetensors"
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    return {
        "root": root,
        "model": make_model(root / "m.safetensors"),
        "cond": make_model(root / "cond.safetensors", num_classes=4),
        "data": make_dataset(root / "data", n=16),
        "datasets": _broken_datasets(root),
        "checkpoints": _hostile_checkpoints(root),
    }


def _base(command: str, inp) -> list[str]:
    m, d = str(inp["model"]), str(inp["data"])
    small = ["--model", m, "--dataset", d, "--subset", "12", "--device", "cpu"]
    return {
        "run": ["run", *small, "--steps", "2", "--patch-size", "3", "--out", "out"],
        "export": ["export", *small, "--steps", "2", "--patch-size", "3", "--video", "new/out.gif"],
        "grid": [
            "grid",
            *small,
            "--seeds",
            "0-1",
            "--steps",
            "2",
            "--patch-size",
            "3",
            "--out",
            "out.png",
        ],
        "evaluate": [
            "evaluate",
            *small,
            "--seeds",
            "1",
            "--steps",
            "2",
            "--cnn-steps",
            "2",
            "--machine",
            "ls",
            "--json",
            "out.json",
        ],
        "calibrate": [
            "calibrate",
            *small,
            "--seeds",
            "1",
            "--steps",
            "2",
            "--p-max",
            "3",
            "--machines",
            "ls",
            "--json",
            "out.json",
        ],
        "train": [
            "train",
            "--dataset",
            d,
            "--out",
            "out.safetensors",
            "--steps",
            "1",
            "--width",
            "16",
            "--blocks",
            "1",
            "--image-size",
            "12",
            "--batch",
            "2",
            "--device",
            "cpu",
        ],
    }[command]


def _set(argv: list[str], option: str, value: str) -> list[str]:
    argv = list(argv)
    if option in argv:
        argv[argv.index(option) + 1] = value
    else:
        argv += [option, value]
    return argv


def _case(cid: str, commands: tuple[str, ...], options: dict[str, str], names: str) -> tuple:
    """A case that sets ``options`` on the base command line; the message must name
    ``names``."""

    def spoil(argv, _inputs):
        for option, value in options.items():
            argv = _set(argv, option, value)
        return argv

    return (cid, commands, spoil, names)


COMPUTING = ("run", "export", "evaluate", "calibrate", "grid")
ALL = (*COMPUTING, "train")
_NO_CUDA_HERE = "cuda:0" if not torch.cuda.is_available() else f"cuda:{torch.cuda.device_count()}"

# (case id, commands, how to spoil the base command line, what the message must name)
CASES = []
# What each bad checkpoint's line must say besides its name.
_CHECKPOINT_WHY = {
    "missing": "no such file",
    "text_safetensors": "not a readable safetensors file",
    "truncated_safetensors": "not a readable safetensors file",
    "random_pt": "not a readable checkpoint",
    "hostile_zip_pt": "refused: it asks for posix.system",
    "hostile_legacy_pt": "refused: it asks for posix.system",
    "folder": "is a folder",
}
for _name, _why in _CHECKPOINT_WHY.items():
    CASES.append(
        (
            f"model-{_name}",
            COMPUTING,
            lambda a, i, n=_name: _set(a, "--model", str(i["checkpoints"][n])),
            lambda i, n=_name, w=_why: f"model {i['checkpoints'][n]}: {w}",
        )
    )
for _name in (
    "truncated_gz",
    "corrupt_gz",
    "bad_magic",
    "truncated_body",
    "label_count",
    "empty_folder",
    "hostile_pickle",
    "object_npz",
    "unknown_format",
):
    CASES.append(
        (
            f"dataset-{_name}",
            ALL,
            lambda a, i, n=_name: _set(a, "--dataset", str(i["datasets"][n])),
            lambda i, n=_name: i["datasets"][n].name,
        )
    )


CASES += [
    _case("dataset-missing", ALL, {"--dataset": "missing_folder"}, "missing_folder"),
    _case("device-no-cuda", ALL, {"--device": _NO_CUDA_HERE}, "--device"),
    _case("device-unknown", ALL, {"--device": "gpu"}, "--device gpu"),
    _case("subset-0", ALL, {"--subset": "0"}, "--subset 0"),
    _case("subset-word", COMPUTING, {"--subset": "most"}, "--subset most"),
    _case("steps-0", ALL, {"--steps": "0"}, "--steps 0"),
    _case("label-negative", ("run", "export"), {"--label": "-1"}, "--label -1"),
    (
        "label-not-a-class",
        ("run", "export"),
        lambda a, i: _set(_set(a, "--model", str(i["cond"])), "--label", "7"),
        lambda i: "--label 7",
    ),
    _case(
        "bbels-circular",
        ("run", "export", "evaluate"),
        {"--boundary": "circular", "--machine": "bbels"},
        "bbels",
    ),
    _case("seeds-0", ("evaluate", "calibrate"), {"--seeds": "0"}, "--seeds 0"),
    _case("unknown-machine", ("evaluate",), {"--machine": "ls,nope"}, "nope"),
    _case("ideal-cannot-calibrate", ("calibrate",), {"--machines": "ideal"}, "ideal"),
    # outputs
    _case("out-under-a-file", ("run",), {"--out": "some_file/sub"}, "some_file"),
    _case("out-taken", ("run",), {"--out": "taken"}, "trajectory.npz"),
    _case(
        "video-folder-uncreatable",
        ("export",),
        {"--video": "/proc/ccdm_x/v.mp4"},
        "--video /proc/ccdm_x/v.mp4: cannot create a folder in /proc",
    ),
    _case("video-format", ("export", "grid"), {"--video": "x.xyz"}, "x.xyz"),
    _case("picture-format", ("grid",), {"--out": "x.jpg"}, "--out x.jpg"),
    _case("picture-taken", ("grid",), {"--out": "taken.png"}, "taken.png"),
    _case("class-unknown", ("grid",), {"--class": "trouser"}, "--class trouser"),
    _case("video-taken", ("export",), {"--video": "taken.gif"}, "taken.gif"),
    _case("frames-uncreatable", ("export",), {"--frames": "/proc/ccdm_x"}, "/proc/ccdm_x"),
    _case("frames-under-a-file", ("export",), {"--frames": "some_file/frames"}, "some_file"),
    _case("fps-0", ("export",), {"--fps": "0"}, "--fps 0"),
    _case(
        "json-under-a-file", ("evaluate", "calibrate"), {"--json": "some_file/x.json"}, "some_file"
    ),
    _case("json-taken", ("evaluate", "calibrate"), {"--json": "taken.json"}, "taken"),
    _case("train-out-format", ("train",), {"--out": "m.pt"}, "m.pt"),
    _case("train-out-under-a-file", ("train",), {"--out": "some_file/m.safetensors"}, "some_file"),
    _case("train-out-taken", ("train",), {"--out": "taken.safetensors"}, "taken.safetensors"),
    (
        "train-resume-without-optimiser",
        ("train",),
        lambda a, i: _set(a, "--out", "taken.safetensors") + ["--resume"],
        "taken.safetensors",
    ),
]

TABLE = [
    pytest.param(cmd, spoil, name, id=f"{cmd}-{cid}")
    for cid, cmds, spoil, name in CASES
    for cmd in cmds
]


def _workdir(tmp_path: Path, model: Path) -> Path:
    """A working folder with the things outputs can collide with."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "some_file").write_text("a file, not a folder")
    (work / "taken").mkdir()
    (work / "taken" / "trajectory.npz").write_bytes(b"an earlier run")
    (work / "taken.gif").write_bytes(b"an earlier video")
    (work / "taken.png").write_bytes(b"an earlier picture")
    (work / "taken.json").write_text("{}")
    (work / "taken.safetensors").write_bytes(model.read_bytes())
    return work


def _snapshot(*folders: Path) -> dict:
    """Every file's size and time, every folder's presence (a folder's own time changes
    when the writability check makes and removes its probe)."""
    return {
        p: "folder" if p.is_dir() else (p.stat().st_size, p.stat().st_mtime_ns)
        for f in folders
        for p in sorted(f.rglob("*"))
    }


@pytest.mark.parametrize("command, spoil, name", TABLE)
def test_bad_input_is_one_line_and_nothing_happens(
    command, spoil, name, inputs, tmp_path, monkeypatch, capsys
):
    work = _workdir(tmp_path, inputs["model"])
    monkeypatch.chdir(work)
    argv = spoil(_base(command, inputs), inputs)
    before = _snapshot(work, inputs["root"])
    code = main(argv)
    out, err = capsys.readouterr()
    expected = name(inputs) if callable(name) else name
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err  # no progress bar: nothing was computed
    assert lines[0].startswith(f"ccdm {command}: error: "), err
    assert expected in lines[0], err
    assert "Traceback" not in err and out == ""
    assert _snapshot(work, inputs["root"]) == before
    assert not (inputs["root"] / "pwned").exists()


@pytest.mark.parametrize("command", ALL)
def test_the_table_base_command_lines_work(command, inputs, tmp_path, monkeypatch, capsys):
    """The table spoils these; unspoilt, each one runs and writes its output."""
    work = _workdir(tmp_path, inputs["model"])
    monkeypatch.chdir(work)
    assert main(_base(command, inputs)) == 0, capsys.readouterr().err
    written = {
        "run": "out/metrics.json",
        "export": "new/out.gif",  # a video's missing folder is made, as --frames' is
        "grid": "out.png",
        "train": "out.safetensors",
    }
    assert (work / written.get(command, "out.json")).is_file()


def test_an_even_patch_size_is_refused_by_the_parser(inputs, capsys):
    with pytest.raises(SystemExit) as e:
        main(_set(_base("run", inputs), "--patch-size", "4"))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "ccdm run: error: argument --patch-size" in err and "Traceback" not in err


def test_outputs_are_checked_before_the_model_is_read(inputs, tmp_path, monkeypatch, capsys):
    """A hostile model and a bad output path: the output is refused first, so the model
    was never opened."""
    work = _workdir(tmp_path, inputs["model"])
    monkeypatch.chdir(work)
    argv = _set(_base("export", inputs), "--model", str(inputs["checkpoints"]["hostile_zip_pt"]))
    assert main(_set(argv, "--video", "x.xyz")) == 2
    err = capsys.readouterr().err
    assert "--video x.xyz" in err and "zip.pt" not in err


def test_overwrite_replaces_an_earlier_run(inputs, tmp_path, monkeypatch, capsys):
    work = _workdir(tmp_path, inputs["model"])
    monkeypatch.chdir(work)
    argv = _set(_base("run", inputs), "--out", "taken")
    assert main(argv) == 2
    assert main([*argv, "--overwrite"]) == 0
    assert (work / "taken" / "trajectory.npz").read_bytes() != b"an earlier run"
    assert (work / "taken" / "metrics.json").is_file()


# The time limit is a nanosecond of minutes, which any step outlasts, with room to spare
# on --steps, so only the limit under test is reached.
@pytest.mark.parametrize("limit", [("--steps", "1"), ("--max-minutes", "1e-09")])
def test_a_resume_already_past_its_limits_says_so(limit, inputs, tmp_path, monkeypatch, capsys):
    """--steps and --max-minutes count the whole training: resuming a finished one with
    the same limits is refused, naming the limit, and leaves both files as they were."""
    work = _workdir(tmp_path, inputs["model"])
    monkeypatch.chdir(work)
    assert main(_base("train", inputs)) == 0
    files = [work / "out.safetensors", work / "out.safetensors.optim.pt"]
    before = [f.read_bytes() for f in files]
    capsys.readouterr()
    option, value = limit
    argv = [*_base("train", inputs), "--resume"]
    if option != "--steps":
        argv = _set(argv, "--steps", "100")
    code = main(_set(argv, option, value))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"ccdm train: error: {option} {value}: "), err
    assert "already trained 1 steps" in lines[0] and "count the whole training" in lines[0]
    assert [f.read_bytes() for f in files] == before


def test_a_saved_trajectory_that_is_not_one(inputs, tmp_path, monkeypatch, capsys):
    """--trajectory names a file that is not a saved run: refused before any frame."""
    work = _workdir(tmp_path, inputs["model"])
    monkeypatch.chdir(work)
    code = main(["export", "--trajectory", "some_file", "--video", "v.gif"])
    err = capsys.readouterr().err
    assert code == 2 and "--trajectory some_file" in err and "Traceback" not in err
    assert not (work / "v.gif").exists()


def test_unexpected_errors_say_where_to_report_and_debug_shows_the_traceback(capsys, monkeypatch):
    import argparse

    def broken(_args):
        return {}["no such key"]

    monkeypatch.delenv("CCDM_DEBUG", raising=False)
    assert run_command("run", broken, argparse.Namespace()) == 1
    err = capsys.readouterr().err
    assert err.startswith("ccdm run: internal error: KeyError")
    assert "report" in err and "--debug" in err and "Traceback" not in err
    assert run_command("run", broken, argparse.Namespace(debug=True)) == 1
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("CCDM_DEBUG", "1")
    assert run_command("run", broken, argparse.Namespace()) == 1
    assert "Traceback" in capsys.readouterr().err


def test_debug_flag_shows_the_traceback_of_a_bad_argument(inputs, capsys):
    argv = _set(_base("run", inputs), "--model", "missing.pt")
    assert main([*argv, "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "ccdm run: error: model missing.pt: no such file" in err
    assert main(["--debug", *argv]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_run_time_failures_are_status_1(tmp_path, capsys):
    """Errors raised while a command runs (not by the up-front checks): the project's own,
    and a real failed allocation, each one line with status 1."""
    import argparse

    from ccdm_gui.core.checkpoint import load_checkpoint

    gone = tmp_path / "gone.safetensors"
    assert run_command("run", lambda _a: load_checkpoint(gone), argparse.Namespace()) == 1
    err = capsys.readouterr().err
    assert err == f"ccdm run: error: model {gone}: no such file\n"

    def huge(_args):
        return torch.empty(2**50, dtype=torch.uint8)

    assert run_command("evaluate", huge, argparse.Namespace()) == 1
    err = capsys.readouterr().err
    assert err == "ccdm evaluate: error: out of memory; try a smaller --subset (or fewer --seeds)\n"

"""Known datasets: Fashion-MNIST found where Debian installs it, class names, and the
dataset a model was trained on opened by default. Every dataset here is a small IDX set
written into a temporary folder; the suite never needs the Debian package."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from ccdm_gui.cli import main
from ccdm_gui.cli.run import default_dataset
from ccdm_gui.core.checkpoint import ModelInfo
from ccdm_gui.core.datasets import load_dataset
from ccdm_gui.core.datasets.known import (
    KNOWN,
    class_names,
    dataset_for_model,
    known_for_id,
    known_for_path,
    label_text,
    locate,
    matching_dataset,
    parse_class,
)
from ccdm_gui.core.resources import default_dataset_path

FASHION = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def write_idx_gz(path: Path, arr: np.ndarray) -> None:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    head = bytes([0, 0, 8, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    path.write_bytes(gzip.compress(head + arr.tobytes()))


def debian_layout(root: Path, n: int = 30) -> tuple[Path, np.ndarray, np.ndarray]:
    """The four gz files of dataset-fashion-mnist under <root>/datasets/fashion-mnist."""
    folder = root / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    write_idx_gz(folder / "train-images-idx3-ubyte.gz", imgs)
    write_idx_gz(folder / "train-labels-idx1-ubyte.gz", labels)
    write_idx_gz(folder / "t10k-images-idx3-ubyte.gz", imgs[:5] // 2)
    write_idx_gz(folder / "t10k-labels-idx1-ubyte.gz", labels[:5])
    return folder, imgs, labels


@pytest.fixture
def system_data(tmp_path, monkeypatch):
    """XDG data dirs pointing at a temporary /usr/share stand-in, no user data dir."""
    share = tmp_path / "share"
    monkeypatch.setenv("XDG_DATA_DIRS", f"{tmp_path / 'nothing'}:{share}")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home-share"))
    return share


def test_class_names_of_the_known_datasets():
    assert KNOWN["fashion-mnist"].classes == tuple(FASHION)
    assert class_names("fashion-mnist-train-60k", 10) == FASHION
    assert class_names("mnist-train-60k", 10) == [str(k) for k in range(10)]
    assert class_names("fashion-mnist-train-60k", None) == FASHION
    # an unknown dataset, or a class count that is not the dataset's: numbers
    assert class_names("my-own-data", 3) == ["0", "1", "2"]
    assert class_names("fashion-mnist", 4) == ["0", "1", "2", "3"]
    assert class_names(None, None) == []


def test_ids_and_folder_names_tell_the_datasets_apart(tmp_path):
    assert known_for_id("fashion-mnist-train-60k").name == "fashion-mnist"
    assert known_for_id("Fashion_MNIST").name == "fashion-mnist"
    assert known_for_id("mnist-train-60k").name == "mnist"
    assert known_for_id("mnistlike") is None and known_for_id("") is None
    assert known_for_path(tmp_path / "FashionMNIST" / "raw").name == "fashion-mnist"
    assert known_for_path(tmp_path / "mnist" / "train-images-idx3-ubyte.gz").name == "mnist"
    assert known_for_path(tmp_path / "cats") is None


def test_fashion_mnist_is_found_where_debian_installs_it(system_data):
    assert locate("fashion-mnist") is None
    folder, imgs, labels = debian_layout(system_data)
    assert locate("fashion-mnist") == folder
    ds = load_dataset(locate("fashion-mnist"), image_size=None, channels=None)
    # the training files, not t10k, and exact pixels and labels
    assert ds.name == "fashion-mnist" and len(ds) == 30
    torch.testing.assert_close(ds.images[:, 0], torch.from_numpy(imgs).float() / 127.5 - 1.0)
    assert ds.labels.tolist() == labels.tolist()
    # the shipped MNIST is found the same way, after the system's copies
    assert locate("mnist") == default_dataset_path()


def test_a_model_opens_the_dataset_it_was_trained_on(system_data, tmp_path):
    meta = {"id": "fashion-mnist-train-60k", "source": "/elsewhere/fashion/train.gz"}
    assert dataset_for_model(meta) is None  # not installed, recorded path gone
    folder, _, _ = debian_layout(system_data)
    assert dataset_for_model(meta) == folder
    # the recorded path serves an unknown dataset that still exists
    own = tmp_path / "own.npz"
    own.write_bytes(b"")
    assert dataset_for_model({"id": "own", "source": str(own)}) == own
    # the window keeps a dataset of the model's kind, and replaces one of another kind
    assert matching_dataset(meta, str(default_dataset_path())) == folder
    assert matching_dataset(meta, str(tmp_path / "my-fashion-mnist-copy")) is None
    assert matching_dataset({"id": "mnist-train-60k"}, str(folder)) == default_dataset_path()
    assert matching_dataset({"id": "own"}, str(folder)) is None


def test_the_cli_defaults_to_the_models_dataset(system_data, tmp_path):
    from test_pipeline import make_model

    folder, _, _ = debian_layout(system_data)
    fashion = make_model(
        tmp_path / "f.safetensors", num_classes=10, dataset={"id": "fashion-mnist-train-60k"}
    )
    plain = make_model(tmp_path / "p.safetensors")
    assert default_dataset(str(fashion)) == str(folder)
    assert default_dataset(str(plain)) == str(default_dataset_path())
    assert default_dataset(str(tmp_path / "missing.safetensors")) == str(default_dataset_path())
    # ccdm run without --dataset samples from the model's own dataset
    out = tmp_path / "run"
    argv = ["run", "--model", str(fashion), "--subset", "3", "--steps", "2", "--label", "1"]
    assert main([*argv, "--patch-size", "3", "--out", str(out)]) == 0
    import json

    spec = json.loads((out / "metrics.json").read_text())["spec"]
    assert spec["dataset"] == str(folder) and spec["label"] == 1
    # ... and takes the class by name, as the window's picker shows it
    named = [*argv[:-2], "--label", "trousers", "--patch-size", "3", "--out", str(out)]
    assert main([*named, "--overwrite"]) == 0
    assert json.loads((out / "metrics.json").read_text())["spec"]["label"] == 1


@pytest.mark.parametrize(
    ("value", "want"),
    [("trouser", 1), ("Ankle boot", 9), ("7", 7), (" 3 ", 3), (4, 4), (None, None)],
)
def test_a_label_by_number_or_name(value, want):
    from ccdm_gui.core import validate

    info = ModelInfo(
        arch="resnet", arch_params={}, num_classes=10, dataset={"id": "fashion-mnist-train-60k"}
    )
    assert validate.label(value, info) == want


@pytest.mark.parametrize(
    ("value", "dataset", "says"),
    [
        ("-1", "fashion-mnist-train-60k", "--label -1: must be 0 or more"),
        ("10", "fashion-mnist-train-60k", "--label 10: the model knows classes 0..9"),
        ("sock", "fashion-mnist-train-60k", "--label sock: "),
        ("trouser", "own-photos", "--label trouser: the model's dataset has no class names"),
    ],
)
def test_a_label_that_cannot_be_used(value, dataset, says):
    from ccdm_gui.core import validate

    info = ModelInfo(arch="resnet", arch_params={}, num_classes=10, dataset={"id": dataset})
    with pytest.raises(validate.ArgumentError) as e:
        validate.label(value, info)
    assert str(e.value).startswith(says)
    if value == "sock":
        assert "Trouser" in str(e.value)  # the message names the choices


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("trouser", 1),
        ("Trousers", 1),
        ("t-shirt", 0),
        ("T-shirt/top", 0),
        ("ankle", 9),
        ("ankle boots", 9),
        ("sneaker", 7),
        ("8", 8),
        ("bag", 8),
    ],
)
def test_parse_class_by_name_or_number(text, want):
    assert parse_class(text, FASHION) == want


def test_parse_class_refuses_unknown_and_ambiguous_names():
    with pytest.raises(ValueError, match="'hat' is not a class.*1 Trouser"):
        parse_class("hat", FASHION)
    with pytest.raises(ValueError, match="'s' is ambiguous"):
        parse_class("s", FASHION)  # Sandal, Shirt, Sneaker
    with pytest.raises(ValueError, match="not a class"):
        parse_class("12", FASHION)
    digits = [str(k) for k in range(10)]
    assert parse_class("3", digits) == 3


def test_label_for_seed_is_a_random_draw_fixed_by_the_seed():
    info = ModelInfo(arch="resnet", arch_params={}, num_classes=10)
    labels = [info.label_for_seed(s) for s in range(200)]
    assert labels == [info.label_for_seed(s) for s in range(200)]
    assert set(labels) == set(range(10))
    assert labels != [s % 10 for s in range(200)]
    # roughly uniform: every class 20 +- 12 times in 200 draws
    counts = np.bincount(labels, minlength=10)
    assert counts.min() >= 8 and counts.max() <= 32
    assert ModelInfo(arch="resnet", arch_params={}).label_for_seed(3) is None


def test_label_text_names_the_class_of_a_known_dataset(tmp_path):
    assert label_text(tmp_path / "fashion-mnist", 1) == "class 1 (Trouser)"
    assert label_text(tmp_path / "mnist", 7) == "class 7"  # digits are their own names
    assert label_text(tmp_path / "cats", 2) == "class 2"
    assert label_text(tmp_path / "fashion-mnist", 12) == "class 12"

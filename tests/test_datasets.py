"""Dataset readers: every format, good and broken, generated small in tmp_path."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import struct
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ccdm_gui.core import resources
from ccdm_gui.core.datasets import Dataset, DatasetError, load_dataset, subset
from ccdm_gui.core.datasets.checksums import MNIST_TRAIN_MD5, verify_checksums

RNG = np.random.default_rng(0)


def as_model_range(u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(u8.astype(np.float32) / 127.5 - 1.0)


# ---------------------------------------------------------------- writers


def write_idx(path, arr: np.ndarray, gz: bool = True):
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    raw = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def mnist_folder(tmp_path, n=5, n_labels=None, gz=True, name="mnist"):
    folder = tmp_path / name
    folder.mkdir()
    imgs = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = RNG.integers(0, 10, (n if n_labels is None else n_labels,), dtype=np.uint8)
    sfx = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{sfx}", imgs, gz)
    write_idx(folder / f"train-labels-idx1-ubyte{sfx}", labels, gz)
    return folder, imgs, labels


class _Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 str opcodes (SHORT_BINSTRING/BINSTRING), as cPickle did when
    the official CIFAR batches were made; Python 3 alone would route them through
    _codecs.encode, which the restricted reader (rightly) refuses."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj: bytes):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def cifar_batch(n=4, py2=True, label_key=b"labels"):
    data = RNG.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(x) for x in RNG.integers(0, 10, n)]
    d = {b"batch_label": b"training batch 1 of 5", b"data": data, label_key: labels}
    if py2:
        import io

        buf = io.BytesIO()
        _Py2Pickler(buf, protocol=2).dump(d)
        return buf.getvalue(), data, labels
    return pickle.dumps({k.decode(): v for k, v in d.items()}, protocol=4), data, labels


class _RunsCommand:
    """Unpickling this calls os.system; the marker file proves whether it ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [True, False])
def test_idx_pixels_and_labels_exact(tmp_path, gz):
    folder, imgs, labels = mnist_folder(tmp_path, gz=gz)
    ds = load_dataset(folder, image_size=None, channels=1)
    assert ds.name == "mnist"
    assert torch.equal(ds.images[:, 0], as_model_range(imgs))
    assert ds.labels.tolist() == labels.tolist()
    # The images file alone finds its labels beside it.
    sfx = ".gz" if gz else ""
    assert torch.equal(load_dataset(folder / f"train-images-idx3-ubyte{sfx}").labels, ds.labels)


def test_idx_resized_to_32_bilinear_and_rgb(tmp_path):
    folder, imgs, _ = mnist_folder(tmp_path)
    ds = load_dataset(folder)
    assert ds.images.shape == (5, 1, 32, 32) and ds.images.dtype == torch.float32
    assert ds.images.min() >= -1 and ds.images.max() <= 1
    ref = torch.nn.functional.interpolate(
        as_model_range(imgs)[:, None], size=(32, 32), mode="bilinear", align_corners=False
    )
    assert torch.allclose(ds.images, ref, atol=1e-6)
    rgb = load_dataset(folder, channels=3)
    assert rgb.images.shape == (5, 3, 32, 32) and torch.equal(rgb.images[:, 0], rgb.images[:, 2])


def test_fashion_mnist_named_by_folder(tmp_path):
    folder, _, _ = mnist_folder(tmp_path, name="FashionMNIST")
    assert load_dataset(folder).name == "fashion-mnist"


def test_idx_truncated_gzip(tmp_path):
    folder, _, _ = mnist_folder(tmp_path)
    p = folder / "train-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:-40])
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz.*(corrupt|truncated)"):
        load_dataset(folder)


def test_idx_corrupt_gzip(tmp_path):
    folder, _, _ = mnist_folder(tmp_path)
    p = folder / "train-images-idx3-ubyte.gz"
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    raw[-8] ^= 0xFF  # and the CRC, so that no lucky decode passes
    p.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz.*corrupt"):
        load_dataset(folder)


def test_idx_wrong_magic(tmp_path):
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(b"\x12\x34\x56\x78" + bytes(100))
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.*magic"):
        load_dataset(p)


def test_idx_truncated_body(tmp_path):
    folder, _, _ = mnist_folder(tmp_path, gz=False)
    p = folder / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(DatasetError, match="truncated"):
        load_dataset(folder)


def test_idx_image_label_count_mismatch(tmp_path):
    folder, _, _ = mnist_folder(tmp_path, n=5, n_labels=4)
    with pytest.raises(DatasetError, match=r"labels-idx1.*4 labels for 5 images"):
        load_dataset(folder)


def test_channel_count_the_model_cannot_take(tmp_path):
    folder, _, _ = mnist_folder(tmp_path)
    with pytest.raises(DatasetError, match=r"train-images.*the model needs 2"):
        load_dataset(folder, channels=2)


# ---------------------------------------------------------------- CIFAR


def test_cifar_python2_batch_file_exact(tmp_path):
    raw, data, labels = cifar_batch()
    p = tmp_path / "data_batch_1"
    p.write_bytes(raw)
    ds = load_dataset(p, image_size=None, channels=None)
    assert ds.name == "cifar10" and ds.images.shape == (4, 3, 32, 32)
    # Rows hold the R, G, B planes one after another, each 32x32 row-major.
    assert torch.equal(ds.images, as_model_range(data.reshape(4, 3, 32, 32)))
    assert ds.labels.tolist() == labels


def test_cifar_folder_orders_batches_and_prefers_training(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    parts = {}
    for name in ("data_batch_10", "data_batch_2", "test_batch"):
        raw, data, labels = cifar_batch(n=2)
        (root / name).write_bytes(raw)
        parts[name] = data
    (root / "batches.meta").write_bytes(pickle.dumps({"label_names": ["a"]}))
    want = as_model_range(np.concatenate([parts["data_batch_2"], parts["data_batch_10"]]))
    for path in (root, tmp_path):  # the batches folder, or the folder it was extracted into
        ds = load_dataset(path, image_size=None, channels=None)
        assert torch.equal(ds.images, want.reshape(4, 3, 32, 32))


def test_cifar_python3_pickle_and_tar_archive(tmp_path):
    import tarfile

    raw, data, labels = cifar_batch(py2=False)
    p = tmp_path / "data_batch_1"
    p.write_bytes(raw)
    ds = load_dataset(p, channels=1)
    assert ds.images.shape == (4, 1, 32, 32) and ds.labels.tolist() == labels
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(p, arcname="cifar-10-batches-py/data_batch_1")
    assert torch.equal(load_dataset(archive, channels=1).images, ds.images)


def test_cifar100_fine_labels(tmp_path):
    raw, _, labels = cifar_batch(label_key=b"fine_labels")
    p = tmp_path / "train"
    p.write_bytes(raw)
    ds = load_dataset(p, channels=3)
    assert ds.name == "cifar100" and ds.labels.tolist() == labels


def test_malicious_pickle_never_runs_its_command(tmp_path):
    marker = tmp_path / "pwned"
    for i, payload in enumerate(
        [_RunsCommand(marker), {"data": _RunsCommand(marker), "labels": [0]}]
    ):
        p = tmp_path / f"data_batch_{i + 1}"
        p.write_bytes(pickle.dumps(payload, protocol=2))
        with pytest.raises(DatasetError, match=rf"data_batch_{i + 1}.*refused.*system"):
            load_dataset(p)
    assert not marker.exists()
    # The same bytes really would run the command: the test is not vacuous.
    pickle.loads(pickle.dumps(_RunsCommand(marker)))
    assert marker.exists()


def test_pickle_that_is_not_a_cifar_batch(tmp_path):
    cases = {
        "data_batch_1": ([1, 2, 3], "holds a list"),
        "data_batch_2": ({"data": np.zeros((2, 3072), np.uint8)}, "no 'labels'"),
        "data_batch_3": ({"data": np.zeros((2, 10), np.uint8), "labels": [0, 1]}, "shape"),
        "data_batch_4": ({"data": np.zeros((2, 3072), np.float32), "labels": [0, 1]}, "uint8"),
        "data_batch_5": ({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}, "1 labels"),
    }
    for name, (obj, why) in cases.items():
        (tmp_path / name).write_bytes(pickle.dumps(obj, protocol=4))
        with pytest.raises(DatasetError, match=rf"{name}.*{why}"):
            load_dataset(tmp_path / name)


def test_garbage_and_truncated_pickles(tmp_path):
    p = tmp_path / "test_batch"
    p.write_bytes(b"\x80\x02this is not a pickle at all")
    with pytest.raises(DatasetError, match="test_batch"):
        load_dataset(p)
    raw, _, _ = cifar_batch()
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match="test_batch"):
        load_dataset(p)


# ---------------------------------------------------------------- image folders


def test_class_folders_give_sorted_labels_exact_pixels(tmp_path):
    root = tmp_path / "shapes"
    want = {}
    for cls, count in (("b_star", 2), ("a_dot", 3)):
        (root / cls).mkdir(parents=True)
        for i in range(count):
            arr = RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / cls / f"{i}.png")
            want[(cls, i)] = arr
    (root / ".hidden").mkdir()  # dot-folders (thumbnails, checkpoints) are not classes
    ds = load_dataset(root, image_size=None, channels=3)
    assert ds.name == "shapes"
    assert ds.labels.tolist() == [0, 0, 0, 1, 1]  # a_dot < b_star
    order = [("a_dot", 0), ("a_dot", 1), ("a_dot", 2), ("b_star", 0), ("b_star", 1)]
    expect = torch.stack([as_model_range(want[k]).permute(2, 0, 1) for k in order])
    assert torch.equal(ds.images, expect)
    grey = load_dataset(root, image_size=8, channels=1)
    assert grey.images.shape == (5, 1, 8, 8)


def test_flat_jpeg_folder_celeba_style(tmp_path):
    root = tmp_path / "faces"
    root.mkdir()
    for i in range(3):
        # Non-square like CelebA (178 x 218): centre-cropped, then resized.
        arr = np.full((44, 36, 3), 40 * i + 20, dtype=np.uint8)
        arr[:4] = 255  # a band that the centre crop removes
        Image.fromarray(arr).save(root / f"{i:06d}.jpg", quality=95)
    ds = load_dataset(root, image_size=32, channels=3)
    assert ds.labels is None and ds.images.shape == (3, 3, 32, 32)
    for i in range(3):
        assert abs(ds.images[i].mean().item() - ((40 * i + 20) / 127.5 - 1)) < 0.03
    assert load_dataset(root, image_size=32, channels=3, limit=2).images.shape[0] == 2


def test_unreadable_and_truncated_image(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "a.png")
    (root / "b.png").write_bytes(b"definitely not a png")
    with pytest.raises(DatasetError, match=r"b\.png.*unreadable"):
        load_dataset(root)
    (root / "b.png").unlink()
    Image.fromarray(RNG.integers(0, 256, (64, 64), dtype=np.uint8)).save(root / "c.png")
    raw = (root / "c.png").read_bytes()
    (root / "c.png").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match=r"c\.png.*unreadable"):
        load_dataset(root)


def test_empty_and_mixed_folders(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match=r"empty.*empty"):
        load_dataset(empty)
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(DatasetError, match="no images"):
        load_dataset(empty)
    mixed = tmp_path / "mixed"
    (mixed / "cls").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(mixed / "cls" / "a.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(mixed / "loose.png")
    with pytest.raises(DatasetError, match="mixes loose images"):
        load_dataset(mixed)
    with pytest.raises(DatasetError, match="needs 2"):
        load_dataset(mixed / "cls", channels=2)


# ---------------------------------------------------------------- numpy arrays


def test_npz_layouts_ranges_and_labels(tmp_path):
    u8 = RNG.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    y = np.arange(6) % 2
    np.savez(tmp_path / "nhwc.npz", images=u8, labels=y)
    np.savez(tmp_path / "nchw.npz", x=u8.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1)
    np.save(tmp_path / "unit.npy", u8.astype(np.float64) / 255.0)
    want = as_model_range(u8).permute(0, 3, 1, 2)
    a = load_dataset(tmp_path / "nhwc.npz", image_size=None, channels=3)
    assert a.name == "nhwc" and a.labels.tolist() == y.tolist()
    assert torch.equal(a.images, want)
    for name in ("nchw.npz", "unit.npy"):
        b = load_dataset(tmp_path / name, image_size=None, channels=3)
        assert b.labels is None and torch.allclose(b.images, want, atol=1e-5)
    np.save(tmp_path / "grey.npy", u8[..., 0])  # [N, H, W]
    assert load_dataset(tmp_path / "grey.npy").images.shape == (6, 1, 32, 32)
    one = tmp_path / "one"
    one.mkdir()
    (tmp_path / "nhwc.npz").rename(one / "nhwc.npz")
    assert torch.equal(load_dataset(one, image_size=None, channels=3, limit=2).images, want[:2])
    with pytest.raises(DatasetError, match="several array files"):
        load_dataset(tmp_path)


def test_npz_refuses_object_arrays_without_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    obj = np.empty(1, dtype=object)
    obj[0] = _RunsCommand(marker)
    np.save(tmp_path / "evil.npy", obj, allow_pickle=True)
    np.savez(tmp_path / "evil.npz", images=np.zeros((2, 8, 8), np.uint8), labels=obj)
    for name in ("evil.npy", "evil.npz"):
        with pytest.raises(DatasetError, match=rf"{name}.*(refused|pickle)"):
            load_dataset(tmp_path / name)
    assert not marker.exists()


def test_npz_bad_content(tmp_path):
    np.savez(tmp_path / "nokey.npz", weights=np.zeros((2, 8, 8)))
    np.savez(tmp_path / "count.npz", images=np.zeros((3, 8, 8), np.uint8), labels=[0, 1])
    np.save(tmp_path / "range.npy", np.full((2, 8, 8), 300.0))
    np.save(tmp_path / "ndim.npy", np.zeros((2, 8), np.uint8))
    np.save(tmp_path / "two.npy", np.zeros((2, 8, 8, 2), np.uint8))
    (tmp_path / "trunc.npz").write_bytes((tmp_path / "count.npz").read_bytes()[:50])
    for name, why in [
        ("nokey.npz", "no images array"),
        ("count.npz", "2 labels for 3 images"),
        ("range.npy", "300"),
        ("ndim.npy", r"\(2, 8\)"),
        ("two.npy", "channel axis"),
        ("trunc.npz", "corrupt"),
    ]:
        with pytest.raises(DatasetError, match=rf"{name}.*{why}"):
            load_dataset(tmp_path / name)


# ---------------------------------------------------------------- dispatch


def test_unknown_format_and_missing_path(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    with pytest.raises(DatasetError, match=r"notes\.txt.*unknown dataset format"):
        load_dataset(p)
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "nothing")
    img = tmp_path / "one.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(img)
    with pytest.raises(DatasetError, match="single image"):
        load_dataset(img)


# ---------------------------------------------------------------- subset


def test_subset_first_n_and_per_class(tiny_dataset):
    first = subset(tiny_dataset, n=5)
    assert torch.equal(first.images, tiny_dataset.images[:5])
    assert first.labels.tolist() == [0, 1, 2, 0, 1]
    per = subset(tiny_dataset, per_class=2)
    # The first two of each class, kept in dataset order: indices 0..5.
    assert torch.equal(per.images, tiny_dataset.images[:6])
    assert per.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert torch.equal(subset(tiny_dataset, per_class=2).images, per.images)  # deterministic
    assert subset(tiny_dataset, n=100) is tiny_dataset
    with pytest.raises(DatasetError):
        subset(tiny_dataset, n=0)
    unlabelled = Dataset(tiny_dataset.images, None, "u", "<u>")
    with pytest.raises(DatasetError, match="no labels"):
        subset(unlabelled, per_class=1)


# ---------------------------------------------------------------- shipped data


def test_shipped_mnist_checksums_and_load():
    folder = resources.default_dataset_path()
    verify_checksums(folder)
    ds = load_dataset(folder, limit=20)
    assert ds.name == "mnist" and ds.images.shape == (20, 1, 32, 32)
    assert ds.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # MNIST's known start
    assert (folder / "README.md").read_text().count("LeCun") >= 1


def test_checksum_mismatch_and_missing_file(tmp_path):
    src = resources.default_dataset_path()
    dst = tmp_path / "mnist"
    dst.mkdir()
    shutil.copy(src / "train-labels-idx1-ubyte.gz", dst)
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz is missing"):
        verify_checksums(dst)
    labels = dst / "train-labels-idx1-ubyte.gz"
    raw = bytearray(labels.read_bytes())
    raw[100] ^= 1
    labels.write_bytes(bytes(raw))
    want = MNIST_TRAIN_MD5["train-labels-idx1-ubyte.gz"]
    with pytest.raises(
        DatasetError, match=rf"train-labels-idx1-ubyte.gz has md5 \w+, expected {want}"
    ):
        verify_checksums(dst)


def test_resource_paths_source_and_bundle(tmp_path, monkeypatch):
    assert (
        resources.default_model_path() == resources.models_dir() / "mnist_resnet_zeros.safetensors"
    )
    assert (resources.default_dataset_path() / "train-images-idx3-ubyte.gz").is_file()
    # In a PyInstaller bundle the unpacked folder wins ...
    (tmp_path / "resources" / "datasets" / "mnist").mkdir(parents=True)
    (tmp_path / "models").mkdir()
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.default_dataset_path() == tmp_path / "resources" / "datasets" / "mnist"
    assert resources.default_model_path() == tmp_path / "models" / "mnist_resnet_zeros.safetensors"
    # ... and a bundle without models falls back to the source checkout's.
    (tmp_path / "models").rmdir()
    assert resources.models_dir() != tmp_path / "models"

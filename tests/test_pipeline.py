"""The comparison pipeline on a tiny real checkpoint and a tiny IDX dataset."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ccdm_gui.core import pipeline
from ccdm_gui.core.checkpoint import ModelInfo, network_params, save_checkpoint
from ccdm_gui.core.datasets import DatasetError
from ccdm_gui.core.metrics import correlation
from ccdm_gui.core.pipeline import runs
from ccdm_gui.core.sampler import Cancelled, initial_noise
from ccdm_gui.core.schedule import LEGACY_COSINE
from ccdm_gui.core.spec import CNNTrajectory, MachineTrajectory, RunSpec

SIZE = 12


def write_idx(path: Path, arr: np.ndarray) -> None:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    head = bytes([0, 0, 8, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    path.write_bytes(head + arr.tobytes())


def make_dataset(folder: Path, n: int = 40, classes: int = 4) -> Path:
    """Blurry blobs (structure, so patch machines have something to match), labels k % classes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    imgs = np.zeros((n, SIZE, SIZE))
    for k in range(n):
        cy, cx = rng.uniform(2, SIZE - 2, size=2)
        imgs[k] = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / rng.uniform(2, 8))
    write_idx(folder / "train-images-idx3-ubyte", imgs * 255)
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(n) % classes)
    return folder


def make_model(path: Path, num_classes: int = 0, seed: int = 0, **info_changes) -> Path:
    from ccdm_gui.core.networks import build_network

    # width 16: GroupNorm(8) in the embedding head needs two channels per group at batch 1
    info = ModelInfo(
        arch="resnet",
        arch_params={"width": 16, "blocks": 1},
        image_size=SIZE,
        channels=1,
        num_classes=num_classes,
        **info_changes,
    )
    torch.manual_seed(seed)
    save_checkpoint(path, build_network("resnet", **network_params(info)), info)
    return path


@pytest.fixture
def files(tmp_path):
    return make_model(tmp_path / "m.safetensors"), make_dataset(tmp_path / "data")


def _spec(files, **kw) -> RunSpec:
    model, data = files
    base = dict(model=str(model), dataset=str(data), subset=24, seed=3, steps=4, patch_size=3)
    return RunSpec(**(base | kw))


def test_cnn_and_machine_start_from_the_same_noise(files):
    spec = _spec(files)
    comp = pipeline.run_comparison(spec)
    noise = initial_noise((1, 1, SIZE, SIZE), spec.seed).numpy()[0]
    np.testing.assert_array_equal(comp.cnn.x_t[0], noise)
    np.testing.assert_array_equal(comp.machine.x_t[0], noise)
    np.testing.assert_allclose(comp.cnn.t, [1.0, 0.75, 0.5, 0.25])
    np.testing.assert_array_equal(comp.cnn.t, comp.machine.t)
    assert comp.machine.x0.shape == (4, 1, SIZE, SIZE)
    assert comp.machine.source_index.shape == (4, SIZE, SIZE)
    assert comp.machine.source_yx.shape == (4, SIZE, SIZE, 2)
    assert comp.machine.source_index.max() < 24
    np.testing.assert_array_equal(comp.machine.train_indices, np.arange(24))
    # the machine's final sample is the last x0_hat (the last step lands on t = 0)
    np.testing.assert_array_equal(comp.machine.final, comp.machine.x0[-1])
    for i in range(4):
        assert comp.correlation[i] == pytest.approx(
            correlation(comp.cnn.x0[i], comp.machine.x0[i]), abs=1e-12
        )
    assert comp.final_correlation == pytest.approx(correlation(comp.cnn.final, comp.machine.final))


def test_machine_samples_are_built_from_training_pixels(files):
    # At the last step (t = 1/n) the machine's sample is a near-hard patch mosaic: every
    # pixel is (close to) the centre pixel of the winning training patch (Theorem 4.1).
    spec = _spec(files, steps=10, machine="ls", patch_size=5)
    traj = pipeline.run_machine(spec)
    train = pipeline.load_training_images(spec, pipeline.load_model(spec.model).info).images
    src = train[
        torch.from_numpy(traj.source_index[-1]),
        0,
        torch.from_numpy(traj.source_yx[-1][..., 0]),
        torch.from_numpy(traj.source_yx[-1][..., 1]),
    ].numpy()
    # (winning weights can be small: many training patches are identical background, and
    # a tie among identical patches still yields their common centre value)
    np.testing.assert_allclose(traj.final[0], src, atol=0.03)
    # LS takes each pixel from the same location of some training image
    yy, xx = np.mgrid[:SIZE, :SIZE]
    np.testing.assert_array_equal(traj.source_yx[-1][..., 0], yy)
    np.testing.assert_array_equal(traj.source_yx[-1][..., 1], xx)


def test_cache_reuses_the_cnn_when_only_machine_settings_change(files, monkeypatch):
    calls = {"cnn": 0, "machine": 0}
    real_cnn, real_machine = pipeline.run_cnn, pipeline.run_machine

    def counting_cnn(*a, **k):
        calls["cnn"] += 1
        return real_cnn(*a, **k)

    def counting_machine(*a, **k):
        calls["machine"] += 1
        return real_machine(*a, **k)

    monkeypatch.setattr(runs, "run_cnn", counting_cnn)
    monkeypatch.setattr(runs, "run_machine", counting_machine)
    cache = pipeline.TrajectoryCache(max_items=8)
    spec = _spec(files)
    first = pipeline.run_comparison(spec, cache)
    assert calls == {"cnn": 1, "machine": 1}
    again = pipeline.run_comparison(spec, cache)
    assert calls == {"cnn": 1, "machine": 1}
    np.testing.assert_array_equal(first.correlation, again.correlation)
    variants = [
        spec.with_(patch_size=5),
        spec.with_(machine="ls"),
        spec.with_(machine="els", boundary="circular"),
        spec.with_(subset=16),
        spec.with_(patch_size=None),
    ]
    for k, v in enumerate(variants, start=2):
        comp = pipeline.run_comparison(v, cache)
        assert calls == {"cnn": 1, "machine": k}, v
        np.testing.assert_array_equal(comp.cnn.x0, first.cnn.x0)
    # this model is unconditional: a class label only narrows the machine's training set
    comp = pipeline.run_comparison(spec.with_(label=1), cache)
    assert calls == {"cnn": 1, "machine": len(variants) + 2}
    assert set(comp.machine.train_indices % 4) == {1}
    pipeline.run_comparison(spec.with_(seed=4), cache)
    assert calls["cnn"] == 2
    cache.clear()
    pipeline.run_comparison(spec, cache)
    assert calls["cnn"] == 3


def test_timing_says_which_parts_ran_and_which_came_from_the_cache(files):
    cache = pipeline.TrajectoryCache()
    spec = _spec(files)
    t = pipeline.Timing()
    pipeline.run_comparison(spec, cache, timing=t)
    assert (t.cnn_cached, t.machine_cached) == (False, False)
    assert t.cnn_seconds > 0 and t.machine_seconds > 0
    t, stages = pipeline.Timing(), []
    on_step = lambda *a: stages.append(a[:3])  # noqa: E731
    pipeline.run_comparison(spec.with_(machine="ls"), cache, on_step=on_step, timing=t)
    assert (t.cnn_cached, t.machine_cached) == (True, False)
    # the cached CNN reports once, whole; the machine every step
    assert stages == [("cnn", 3, 4)] + [("machine", i, 4) for i in range(4)]
    # Cancelled in the machine part: both parts are marked as run, the machine's time unset.
    t, started = pipeline.Timing(), []
    with pytest.raises(Cancelled):
        pipeline.run_comparison(
            spec.with_(seed=7),
            cache,
            on_step=lambda part, *a: started.append(part),
            should_cancel=lambda: "machine" in started,
            timing=t,
        )
    assert (t.cnn_cached, t.machine_cached) == (False, False)
    assert t.cnn_seconds > 0 and t.machine_seconds == 0.0
    assert cache.get_cnn(spec.with_(seed=7)) is not None
    assert cache.get_machine(spec.with_(seed=7)) is None


def test_cache_is_bounded_and_notices_a_rewritten_model(files):
    cache = pipeline.TrajectoryCache(max_items=2)
    spec = _spec(files)
    traj = pipeline.run_cnn(spec)
    for seed in range(3):
        cache.put_cnn(spec.with_(seed=seed), traj)
    assert cache.get_cnn(spec.with_(seed=0)) is None  # evicted, least recently used
    assert cache.get_cnn(spec.with_(seed=2)) is traj
    model, _ = files
    make_model(model, seed=1)
    st = os.stat(model)
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert cache.get_cnn(spec.with_(seed=2)) is None
    # load_model also refreshes: the rewritten weights give another trajectory
    assert not np.array_equal(pipeline.run_cnn(spec).x0, traj.x0)


def test_progress_partials_and_cancellation(files):
    spec = _spec(files, steps=5)
    seen = []

    def on_step(i, total, partial):
        seen.append((i, total, len(partial.t)))
        np.testing.assert_array_equal(partial.final, partial.x0[-1])
        partial.x0[...] = 99.0  # copies: scribbling on them must not touch the run

    traj = pipeline.run_machine(spec, on_step=on_step)
    assert seen == [(i, 5, i + 1) for i in range(5)]
    assert np.abs(traj.x0).max() < 2.0
    stages = []
    pipeline.run_comparison(spec.with_(seed=9), on_step=lambda *a: stages.append(a))
    assert [a[:3] for a in stages] == [(p, i, 5) for p in ("cnn", "machine") for i in range(5)]
    # Each part's trajectory so far, a step longer each time.
    assert [len(a[3].t) for a in stages] == [*range(1, 6)] * 2
    assert isinstance(stages[4][3], CNNTrajectory) and isinstance(stages[9][3], MachineTrajectory)

    n = {"checks": 0}

    def cancel_after_two():
        n["checks"] += 1
        return n["checks"] > 2

    with pytest.raises(Cancelled):
        pipeline.run_machine(spec, should_cancel=cancel_after_two)
    with pytest.raises(Cancelled):
        pipeline.run_comparison(spec.with_(seed=11), should_cancel=lambda: True)


def test_patch_schedule_mapping(files):
    model, _ = files
    info = pipeline.load_model(str(model)).info
    spec = _spec(files, patch_size=None)
    info.calibrated_p = {
        "bbels": [2 * i + 1 for i in range(1, 21)]
    }  # 3, 5, ..., 41 for t ascending
    np.testing.assert_array_equal(
        pipeline.patch_schedule(spec.with_(steps=20), info, LEGACY_COSINE),
        [2 * i + 1 for i in range(20, 0, -1)],
    )
    # 10 steps: t = 1.0, 0.9, ..., 0.1 -> entries 19, 17, ..., 1
    np.testing.assert_array_equal(
        pipeline.patch_schedule(spec.with_(steps=10), info, LEGACY_COSINE),
        [41, 37, 33, 29, 25, 21, 17, 13, 9, 5],
    )
    # 40 steps: every grid t maps to its nearest calibration t (ties go to the smaller t)
    p40 = pipeline.patch_schedule(spec.with_(steps=40), info, LEGACY_COSINE)
    assert p40[0] == 41 and p40[1] == 39 and p40[-1] == 3 and len(p40) == 40
    np.testing.assert_array_equal(
        pipeline.patch_schedule(spec.with_(patch_size=7), info, LEGACY_COSINE), [7] * 4
    )
    np.testing.assert_array_equal(
        pipeline.patch_schedule(spec.with_(machine="ideal"), info, LEGACY_COSINE), [SIZE] * 4
    )
    # no calibration for ls in this model: the documented default (paper, MNIST ResNet zeros)
    default = pipeline.patch_schedule(spec.with_(machine="ls", steps=20), info, LEGACY_COSINE)
    np.testing.assert_array_equal(default, pipeline.DEFAULT_SCHEDULE[::-1])


def test_training_set_subset_label_and_errors(files, tmp_path):
    model, data = files
    info = pipeline.load_model(str(model)).info
    # the subset is counted within the class: the first 5 images of class 2
    ts = pipeline.load_training_images(_spec(files, subset=5, label=2), info)
    np.testing.assert_array_equal(ts.indices, [2, 6, 10, 14, 18])
    assert ts.images.shape == (5, 1, SIZE, SIZE)
    torch.testing.assert_close(ts.images, ts.dataset.images[[2, 6, 10, 14, 18]])
    assert ts.dataset.images.shape[0] == 40
    assert pipeline.load_training_images(_spec(files, subset=5, label=2), info) is ts
    every = pipeline.load_training_images(_spec(files, subset=100, label=3), info)
    np.testing.assert_array_equal(every.indices, np.arange(3, 40, 4))
    first = pipeline.load_training_images(_spec(files, subset=6, label=None), info)
    np.testing.assert_array_equal(first.indices, np.arange(6))
    with pytest.raises(DatasetError, match="no image of class 7"):
        pipeline.load_training_images(_spec(files, label=7), info)
    info.channels = 2
    with pytest.raises(DatasetError, match="the model needs 2"):
        pipeline.load_training_images(_spec(files, subset=21), info)


def test_conditional_model_needs_a_label(tmp_path):
    model = make_model(tmp_path / "c.safetensors", num_classes=4)
    data = make_dataset(tmp_path / "data")
    spec = RunSpec(model=str(model), dataset=str(data), subset=24, steps=2, patch_size=3)
    with pytest.raises(ValueError, match="class-conditional"):
        pipeline.run_cnn(spec)
    comp = pipeline.run_comparison(spec.with_(label=1, subset=6))
    # the machine only sees the first 6 class-1 images
    np.testing.assert_array_equal(comp.machine.train_indices, [1, 5, 9, 13, 17, 21])
    assert (comp.machine.source_index < 6).all()
    # and carries their labels, for the "source label" provenance mode
    np.testing.assert_array_equal(comp.machine.train_labels, [1] * 6)


def test_save_and_load_round_trip(files, tmp_path):
    comp = pipeline.run_comparison(_spec(files, machine="ideal", patch_size=None))
    path = tmp_path / "out" / "trajectory.npz"
    pipeline.save_comparison(comp, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["trajectory.npz"]
    back = pipeline.load_comparison(path)
    assert back.spec == comp.spec
    for part in ("cnn", "machine"):
        a, b = getattr(comp, part), getattr(back, part)
        for name in a.__dataclass_fields__:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
            assert getattr(a, name).dtype == getattr(b, name).dtype
    np.testing.assert_array_equal(back.correlation, comp.correlation)
    assert back.final_correlation == comp.final_correlation
    with np.load(path, allow_pickle=False) as z:
        assert "spec" in z.files
    # A training set without labels: nothing stored, None read back.
    assert comp.machine.train_labels is not None
    bare = dataclasses.replace(comp, machine=dataclasses.replace(comp.machine, train_labels=None))
    pipeline.save_comparison(bare, tmp_path / "bare.npz")
    with np.load(tmp_path / "bare.npz", allow_pickle=False) as z:
        assert "machine_train_labels" not in z.files
    assert pipeline.load_comparison(tmp_path / "bare.npz").machine.train_labels is None
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros(3))
    with pytest.raises(ValueError, match="not a ccdm-gui trajectory"):
        pipeline.load_comparison(bad)

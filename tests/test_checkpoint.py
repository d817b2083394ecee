"""Checkpoints: round trips, and clear refusals for every kind of bad file."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from ccdm_gui.core.checkpoint import (
    META_KEY,
    CheckpointError,
    ModelInfo,
    load_checkpoint,
    read_info,
    save_checkpoint,
    update_info,
)
from ccdm_gui.core.networks import build_network


def small(arch="resnet", num_classes=0, padding="zeros", width=8):
    params = {"width": width, "blocks": 2} if arch == "resnet" else {"width": width}
    info = ModelInfo(
        arch=arch,
        arch_params=params,
        image_size=16,
        channels=1,
        num_classes=num_classes,
        padding=padding,
        dataset={"id": "tiny", "size": 12},
        calibrated_p={"bbels": [3, 5, 7]},
        name="tiny",
    )
    torch.manual_seed(0)
    net = build_network(arch, channels=1, num_classes=num_classes, padding=padding, **params)
    return net, info


def outputs(net, num_classes=0):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 1, 16, 16, generator=g)
    label = torch.tensor([0, 1]) if num_classes else None
    with torch.no_grad():
        return net.eval()(x, torch.tensor([0.3, 0.9]), label)


@pytest.mark.parametrize(
    "arch,num_classes,padding", [("resnet", 0, "circular"), ("unet", 3, "zeros")]
)
def test_round_trip_same_outputs_and_metadata(tmp_path, arch, num_classes, padding):
    net, info = small(arch, num_classes, padding)
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, net, info)
    loaded = load_checkpoint(path)
    assert torch.equal(outputs(loaded.net, num_classes), outputs(net, num_classes))
    assert loaded.info == info
    assert read_info(path).calibrated_p == {"bbels": [3, 5, 7]}
    assert list(tmp_path.iterdir()) == [path]  # the atomic write left nothing behind


def test_update_info_keeps_weights(tmp_path):
    net, info = small()
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, net, info)
    update_info(path, calibrated_p={"els": [3, 3, 5]})
    loaded = load_checkpoint(path)
    assert loaded.info.calibrated_p == {"els": [3, 3, 5]}
    assert torch.equal(outputs(loaded.net), outputs(net))


def _raw_save(path, state, meta: dict | None):
    save_file(state, str(path), metadata=None if meta is None else {META_KEY: json.dumps(meta)})


def test_missing_weight(tmp_path):
    net, info = small()
    state = {k: v.contiguous() for k, v in net.state_dict().items() if k != "conv_out.weight"}
    _raw_save(tmp_path / "m.safetensors", state, info.to_json())
    with pytest.raises(CheckpointError, match=r"m\.safetensors: missing weights.*conv_out\.weight"):
        load_checkpoint(tmp_path / "m.safetensors")


def test_missing_metadata_key(tmp_path):
    net, info = small()
    meta = info.to_json()
    del meta["arch"]
    _raw_save(tmp_path / "m.safetensors", dict(net.state_dict()), meta)
    with pytest.raises(CheckpointError, match="lacks the key 'arch'"):
        load_checkpoint(tmp_path / "m.safetensors")
    _raw_save(tmp_path / "n.safetensors", dict(net.state_dict()), None)
    with pytest.raises(CheckpointError, match="no ccdm-gui metadata"):
        load_checkpoint(tmp_path / "n.safetensors")


@pytest.mark.parametrize(
    "changes,match",
    [
        (
            {"arch_params": {"width": 16, "blocks": 2}},
            r"weight '[\w.]+' has shape \(8.*the architecture needs \(16",
        ),
        ({"arch": "transformer"}, r"m\.safetensors: unknown architecture 'transformer'"),
    ],
    ids=["shape_mismatch", "unknown_architecture"],
)
def test_metadata_that_does_not_fit_the_weights(tmp_path, changes, match):
    net, info = small(width=8)
    save_checkpoint(tmp_path / "m.safetensors", net, dataclasses.replace(info, **changes))
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(tmp_path / "m.safetensors")


def test_truncated_and_garbage_files(tmp_path):
    net, info = small()
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, net, info)
    raw = path.read_bytes()
    for cut in (len(raw) // 2, 20, 4):
        path.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError, match=r"m\.safetensors"):
            load_checkpoint(path)
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match=r"m\.safetensors"):
        load_checkpoint(path)
    for name in ("g.pt", "t.pt"):
        p = tmp_path / name
        p.write_bytes(os.urandom(512) if name == "g.pt" else b"PK\x03\x04" + b"\0" * 40)
        with pytest.raises(CheckpointError, match=rf"{name}"):
            load_checkpoint(p, info=info)
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "absent.safetensors")


def test_pt_state_dict_needs_metadata_and_loads_with_it(tmp_path):
    net, info = small()
    p = tmp_path / "m.pt"
    torch.save(net.state_dict(), p)
    with pytest.raises(CheckpointError, match="no metadata"):
        load_checkpoint(p)
    assert torch.equal(outputs(load_checkpoint(p, info=info).net), outputs(net))
    torch.save({"state_dict": net.state_dict(), META_KEY: json.dumps(info.to_json())}, p)
    assert load_checkpoint(p).info == info


class _RunsCommand:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pt_pickle_that_runs_a_command_is_refused(tmp_path):
    net, info = small()
    marker = tmp_path / "pwned"
    zipped = tmp_path / "zip.pt"  # torch's zip container with a hostile data.pkl inside
    torch.save({"state_dict": net.state_dict(), "x": _RunsCommand(marker)}, zipped)
    legacy = tmp_path / "legacy.pt"  # a bare pickle, as torch < 1.6 wrote them
    legacy.write_bytes(pickle.dumps(_RunsCommand(marker), protocol=2))
    for p in (zipped, legacy):
        with pytest.raises(CheckpointError, match=rf"{p.name}: refused"):
            load_checkpoint(p, info=info)
    assert not marker.exists()
    # Without the guard the same file would run the command, so the check above means something.
    torch.load(zipped, weights_only=False)
    assert marker.exists()


def test_metadata_that_is_not_a_model_description(tmp_path):
    net, _ = small()
    state = dict(net.state_dict())
    save_file(state, str(tmp_path / "a.safetensors"), metadata={META_KEY: "{not json"})
    save_file(state, str(tmp_path / "b.safetensors"), metadata={META_KEY: "[1, 2]"})
    save_file(state, str(tmp_path / "c.safetensors"), metadata={META_KEY: '{"format": "x/9"}'})
    torch.save({"state_dict": state, META_KEY: "{not json"}, tmp_path / "d.pt")
    for name, why in [
        ("a.safetensors", "not valid JSON"),
        ("b.safetensors", "is a list"),
        ("c.safetensors", "unknown checkpoint format 'x/9'"),
        ("d.pt", "not valid JSON"),
    ]:
        with pytest.raises(CheckpointError, match=rf"{name}: .*{why}"):
            load_checkpoint(tmp_path / name)


# ---------------------------------------------------------------- training checkpoints


def _train(tiny_dataset, out, steps, seed=0, resume=False, conditional=False):
    from ccdm_gui.core.train import TrainConfig, train

    cfg = TrainConfig(
        arch="resnet",
        width=8,
        blocks=2,
        steps=steps,
        batch=4,
        lr=1e-2,
        seed=seed,
        checkpoint_every=2,
        conditional=conditional,
    )
    info = train(cfg, tiny_dataset, out, "tiny", resume=resume)
    return info, load_checkpoint(out).net.state_dict()


@pytest.fixture
def one_thread():
    # An 8x8 model is all thread overhead: on a loaded 2-core box one thread runs these
    # trainings ~40x faster than two.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_training_is_seeded_and_resumes_exactly(tiny_dataset, tmp_path, one_thread):
    from ccdm_gui.core.train import LR_DECAY

    info, full = _train(tiny_dataset, tmp_path / "a.safetensors", steps=5)
    assert info.training["steps"] == 5 and info.dataset["id"] == "tiny"
    torch.manual_seed(0)
    init = build_network("resnet", channels=1, width=8, blocks=2).state_dict()
    assert not _same(full, init)  # it trained
    _, again = _train(tiny_dataset, tmp_path / "b.safetensors", steps=5)
    assert _same(full, again)
    _, other = _train(tiny_dataset, tmp_path / "c.safetensors", steps=5, seed=1)
    assert not _same(full, other)
    # Stop after 3 steps (past the step-2 checkpoint), then resume to 5.
    _train(tiny_dataset, tmp_path / "d.safetensors", steps=3)
    info_d, resumed = _train(tiny_dataset, tmp_path / "d.safetensors", steps=5, resume=True)
    assert info_d.training["steps"] == 5
    assert _same(full, resumed)
    # Batch k ran at lr * decay**k: the last of 5 batches at decay**4.
    for name in ("a", "d"):
        opt = torch.load(tmp_path / f"{name}.safetensors.optim.pt", weights_only=True)
        assert opt["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-2 * LR_DECAY**4)


def test_conditional_training_stores_classes(tiny_dataset, tmp_path, one_thread):
    info, _ = _train(tiny_dataset, tmp_path / "c.safetensors", steps=2, conditional=True)
    loaded = load_checkpoint(tmp_path / "c.safetensors")
    assert info.num_classes == 3 and loaded.info.num_classes == 3
    with pytest.raises(ValueError, match="class label"):
        loaded.net(torch.zeros(1, 1, 8, 8), 0.5)

"""Checkpoints of the paper's reference code open without their code and sample as their
DDIM.sample does (fixtures written by their code: tests/data/paper_code/README.md)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ccdm_gui.core import loaders
from ccdm_gui.core.checkpoint import CheckpointError, ModelInfo, save_checkpoint
from ccdm_gui.core.denoisers import CNNDenoiser
from ccdm_gui.core.networks import build_network
from ccdm_gui.core.sampler import sample

DATA = Path(__file__).parent / "data" / "paper_code"
CASES = [
    ("backbone_tiny_ResNet_zeros.pt", "ddim_resnet_zeros.npz"),
    ("tiny_ResNet_zeros_state_dict.pt", "ddim_resnet_zeros.npz"),
    ("backbone_tiny_UNet_circular_conditional.pt", "ddim_unet_circular_conditional.npz"),
]


@pytest.mark.parametrize("ckpt,npz", CASES)
def test_samples_equal_their_ddim_sample(ckpt, npz):
    model = loaders.open_model(DATA / ckpt)
    ref = np.load(DATA / npz)
    noise = torch.from_numpy(ref["noise"])
    finals = []
    for b, lab in enumerate(ref["label"].tolist()):
        den = CNNDenoiser(model.predictor, None if lab < 0 else lab)
        traj = sample(den, noise[b : b + 1], int(ref["nsteps"]), schedule=model.schedule)
        finals.append(traj.final)
    got = torch.cat(finals).numpy()
    # Their schedule is evaluated in float32; near t = 1 abar ~ 1.5e-4 carries a relative
    # rounding of ~1e-5 that the last x0 = x / sqrt(abar) - ... amplifies into the sample.
    np.testing.assert_allclose(got, ref["sample"], rtol=2e-4, atol=1e-3)
    assert np.abs(ref["sample"]).max() > 1.0


def test_hyper_parameters_from_the_pickle():
    res = loaders.open_model(DATA / "backbone_tiny_ResNet_zeros.pt").info
    assert (res.arch, res.image_size, res.channels, res.padding) == ("paper_resnet", 8, 1, "zeros")
    assert res.arch_params["width"] == 16 and res.arch_params["layers"] == 2
    assert res.num_classes == 0 and res.schedule == "legacy_cosine"
    unet = loaders.open_model(DATA / "backbone_tiny_UNet_circular_conditional.pt").info
    assert (unet.arch, unet.padding, unet.num_classes) == ("paper_unet", "circular", 3)
    assert unet.arch_params["fsizes"] == [8, 16]
    assert unet.arch_params["normalization"] == "GroupNorm" and unet.arch_params["last_norm"]


def test_state_dict_gives_the_pickled_weights():
    whole = loaders.open_model(DATA / "backbone_tiny_ResNet_zeros.pt").net.state_dict()
    plain = loaders.open_model(DATA / "tiny_ResNet_zeros_state_dict.pt").net.state_dict()
    assert whole.keys() == plain.keys()
    for k in whole:
        assert torch.equal(whole[k], plain[k])
    raw = torch.load(DATA / "tiny_ResNet_zeros_state_dict.pt", weights_only=True)
    assert all(torch.equal(raw[k], plain[k]) for k in raw)


def test_scales_file_is_the_calibrated_schedule():
    info = loaders.open_model(DATA / "backbone_tiny_UNet_circular_conditional.pt").info
    want = torch.load(DATA / "scales_tiny_UNet_circular_conditonal.pt", weights_only=True)
    assert info.calibrated_p == {"els": want}
    with pytest.raises(CheckpointError, match="scales file"):
        loaders.open_model(DATA / "scales_tiny_UNet_circular_conditonal.pt")


class _Payload:
    """Would create a file if unpickled by a plain pickle load."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def test_code_in_a_pickle_never_runs(tmp_path):
    target = tmp_path / "ran"
    bad = tmp_path / "backbone_evil_ResNet_zeros.pt"
    torch.save({"up_projection.weight": torch.zeros(1), "x": _Payload(str(target))}, bad)
    with pytest.raises(CheckpointError) as e:
        loaders.open_model(bad)
    assert "refused" in str(e.value) and "\n" not in str(e.value)
    assert not target.exists()
    # the same bytes under a plain unpickler would have run it: the test's payload is live
    with open(bad, "rb") as f:
        torch.load(f, weights_only=False)
    assert target.exists()


def test_unknown_class_of_theirs_is_named(tmp_path):
    # A pickle that names a class the stand-ins do not cover, written by hand (protocol 2:
    # GLOBAL models.Mystery, an empty tuple, NEWOBJ) into torch.save's zip layout.
    blob = b"\x80\x02cmodels\nMystery\nq\x00)\x81q\x01."
    bad = tmp_path / "backbone_mystery.pt"
    torch.save({}, bad)
    with zipfile.ZipFile(bad) as z:
        names = z.namelist()
        files = {n: z.read(n) for n in names}
    pkl = next(n for n in names if n.endswith("data.pkl"))
    files[pkl] = blob
    with zipfile.ZipFile(bad, "w") as z:
        for n in names:
            z.writestr(n, files[n])
    with pytest.raises(CheckpointError) as e:
        loaders.open_model(bad)
    assert "models.Mystery" in str(e.value) and str(bad) in str(e.value)


def test_ccdm_state_dict_still_opens(tmp_path):
    info = ModelInfo(arch="resnet", arch_params={"width": 8, "blocks": 2}, image_size=8)
    net = build_network("resnet", channels=1, width=8, blocks=2, num_classes=0, padding="zeros")
    st = tmp_path / "m.safetensors"
    save_checkpoint(st, net, info)
    pt = tmp_path / "m.pt"
    torch.save({"state_dict": net.state_dict(), "ccdm": json.dumps(info.to_json())}, pt)
    for p in (st, pt):
        loaded = loaders.open_model(p)
        assert loaded.info.arch == "resnet"
        assert all(
            torch.equal(a, b)
            for a, b in zip(
                loaded.net.state_dict().values(), net.state_dict().values(), strict=True
            )
        )

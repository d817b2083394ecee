"""Calibration recovers a known patch size, and writes schedules into a checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ccdm_gui.core import pipeline
from ccdm_gui.core.calibrate import calibrate, calibrate_model, odd_grid
from ccdm_gui.core.checkpoint import load_checkpoint, read_info
from ccdm_gui.core.denoisers import MachineDenoiser
from ccdm_gui.core.schedule import LEGACY_COSINE
from ccdm_gui.core.spec import RunSpec


def _train(n: int = 24, size: int = 10) -> torch.Tensor:
    g = torch.Generator().manual_seed(5)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    imgs = []
    for _ in range(n):
        cy, cx = (torch.rand(2, generator=g) * (size - 4) + 2).tolist()
        w = float(torch.rand(1, generator=g)) * 6 + 2
        imgs.append(torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / w) * 2 - 1)
    return torch.stack(imgs)[:, None].float()


@pytest.mark.parametrize(
    ("machine", "boundary", "steps"),
    [("ls", "zeros", 20), ("els", "circular", 6), ("bbels", "zeros", 6)],
)
def test_calibration_recovers_the_patch_size_of_a_machine_posing_as_the_cnn(
    machine, boundary, steps
):
    train = _train()
    truth = MachineDenoiser(train, machine, 5, boundary)
    res = calibrate(
        lambda x, t, lab: truth.eps(x, t),
        lambda lab: train,
        (1, 10, 10),
        [machine],
        [3, 5, 7],
        seeds=[0, 1, 2],
        boundary=boundary,
        steps=steps,
    )
    assert res.schedule(machine) == [5] * steps
    sim = res.similarity[machine]
    assert sim.shape == (steps, 3, 3)
    np.testing.assert_allclose(sim[:, 1], 1.0, atol=1e-9)
    assert (sim[:, [0, 2]] < sim[:, [1]]).all()
    assert "*" in res.table(machine)


def test_lower_median_over_seeds_is_a_grid_value():
    # A "CNN" that is P = 3 for seed 0 and P = 7 for seeds 1, 2: per-step choices 3, 7, 7
    # give 7; with seeds 0, 1 only (3, 7) the lower median picks 3, never the mean 5.
    train = _train(16)
    p3 = MachineDenoiser(train, "ls", 3)
    p7 = MachineDenoiser(train, "ls", 7)

    def mixed(x, t, lab):
        return torch.cat([p3.eps(x[:1], t), p7.eps(x[1:], t)])

    args = (lambda lab: train, (1, 10, 10), ["ls"], [3, 5, 7])
    three = calibrate(mixed, *args, seeds=[0, 1, 2], steps=4)
    assert three.schedule("ls") == [7] * 4
    np.testing.assert_array_equal(three.best["ls"][:, 0], 3)
    two = calibrate(mixed, *args, seeds=[0, 1], steps=4)
    assert two.schedule("ls") == [3] * 4


def test_calibrate_model_writes_the_schedule_into_the_checkpoint(tmp_path):
    from test_pipeline import make_dataset, make_model

    model = make_model(tmp_path / "m.safetensors")
    data = make_dataset(tmp_path / "data")
    before = load_checkpoint(model).net.state_dict()
    info0 = pipeline.load_model(str(model)).info
    res = calibrate_model(
        str(model),
        str(data),
        subset=16,
        seeds=[0, 1],
        machines=["bbels", "ls"],
        p_max=5,
        steps=20,
        write=True,
    )
    info = read_info(model)
    assert set(info.calibrated_p) == {"bbels", "ls"}
    for m in ("bbels", "ls"):
        assert info.calibrated_p[m] == res.schedule(m)
        assert len(info.calibrated_p[m]) == 20 and set(info.calibrated_p[m]) <= {3, 5}
    after = load_checkpoint(model).net.state_dict()
    for k, v in before.items():
        torch.testing.assert_close(after[k], v)
    # the pipeline's model cache notices the rewrite and follows the new schedule
    fresh = pipeline.load_model(str(model)).info
    assert fresh is not info0 and fresh.calibrated_p == info.calibrated_p
    spec = RunSpec(model=str(model), dataset=str(data), machine="ls", steps=20)
    np.testing.assert_array_equal(
        pipeline.patch_schedule(spec, fresh, LEGACY_COSINE), info.calibrated_p["ls"][::-1]
    )
    # a second calibration of one machine keeps the other's schedule
    calibrate_model(
        str(model), str(data), subset=16, seeds=[0], machines=["ls"], p_max=3, steps=20, write=True
    )
    again = read_info(model)
    assert again.calibrated_p["ls"] == [3] * 20
    assert again.calibrated_p["bbels"] == info.calibrated_p["bbels"]


def test_odd_grid():
    assert odd_grid(17) == [3, 5, 7, 9, 11, 13, 15, 17]
    assert odd_grid(8) == [3, 5, 7]
    with pytest.raises(ValueError):
        odd_grid(1)


def test_a_conditional_model_is_calibrated_against_its_class_filtered_machine(tmp_path):
    """The similarity at the first step, recomputed by hand: the CNN's eps for the seed's
    label against the machine's eps from the first images of that class only."""
    from test_pipeline import make_dataset, make_model

    from ccdm_gui.core.denoisers import MachineDenoiser
    from ccdm_gui.core.metrics import cosine_similarity_batch
    from ccdm_gui.core.sampler import initial_noise
    from ccdm_gui.core.schedule import eps_from_x0

    model = make_model(tmp_path / "c.safetensors", num_classes=4)
    data = make_dataset(tmp_path / "data", classes=4)
    loaded = pipeline.load_model(str(model))
    seeds = [0, 1, 2, 3, 4, 5]
    labels = [loaded.info.label_for_seed(s) for s in seeds]
    assert len(set(labels)) > 1
    res = calibrate_model(
        str(model), str(data), subset=3, seeds=seeds, machines=["ls"], p_max=5, steps=4
    )
    x = torch.cat([initial_noise((1, 1, 12, 12), s) for s in seeds])
    with torch.no_grad():
        eps_cnn = loaded.net(x, 1.0, torch.tensor(labels))
    for j, p in enumerate(res.p_values):
        eps_m = torch.empty_like(x)
        for k, lab in enumerate(labels):
            ts = pipeline.load_training_images(
                RunSpec(model=str(model), dataset=str(data), subset=3, label=lab), loaded.info
            )
            assert ts.indices.tolist() == [lab, lab + 4, lab + 8]
            den = MachineDenoiser(ts.images, "ls", p, "zeros")
            eps_m[k] = eps_from_x0(x[k : k + 1], den(x[k : k + 1], 1.0).x0, 1.0)[0]
        np.testing.assert_allclose(
            res.similarity["ls"][0, j], cosine_similarity_batch(eps_cnn, eps_m), atol=1e-5
        )

"""diffusers models open and run exactly as diffusers runs them.

Tiny random-weight UNet2DModels are saved with diffusers' own save_pretrained; ccdm's
CNN trajectory must equal diffusers' own DDIM loop (DDIMScheduler.from_config, eta = 0)
from the same noise, and the machines must run at the scheduler's abar.
"""

from __future__ import annotations

import json

import diffusers
import numpy as np
import pytest
import torch
from machine_reference import assert_matches, reference_denoise

from ccdm_gui.core import loaders
from ccdm_gui.core.checkpoint import CheckpointError
from ccdm_gui.core.denoisers import CNNDenoiser, MachineDenoiser
from ccdm_gui.core.sampler import initial_noise, sample
from ccdm_gui.core.schedule import DiscreteSchedule

SIZE = 8
STEPS = 6
T = 200


def tiny_unet(channels: int = 1, classes: int | None = None, seed: int = 0):
    torch.manual_seed(seed)
    unet = diffusers.UNet2DModel(
        sample_size=SIZE,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
        add_attention=False,
        num_class_embeds=classes,
    )
    # Livelier than the default init, so that clipping and every term of the update matter.
    with torch.no_grad():
        for p in unet.parameters():
            p.normal_(0.0, 0.3)
    return unet.eval()


def betas_kwargs(beta: str) -> dict:
    if beta == "trained_betas":
        b = np.linspace(1e-4, 0.03, T) ** 1.2 + 1e-4
        return {"trained_betas": b.tolist()}
    return {"beta_schedule": beta}


def save(tmp_path, unet, scheduler, layout: str):
    if layout == "pipeline":
        out = tmp_path / "pipe"
        diffusers.DDIMPipeline(unet=unet, scheduler=scheduler).save_pretrained(
            str(out), safe_serialization=True
        )
    else:
        out = tmp_path / "bare"
        unet.save_pretrained(str(out), safe_serialization=True)
        scheduler.save_pretrained(str(out))
    return out


def diffusers_ddim(folder, noise, steps, labels=None):
    """diffusers' own loop: x_t before each step, x0 of each step, final sample."""
    sub = folder / "unet" if (folder / "unet").is_dir() else folder
    sched_dir = folder / "scheduler" if (folder / "scheduler").is_dir() else folder
    unet = diffusers.UNet2DModel.from_pretrained(str(sub)).eval()
    cfg = diffusers.DDIMScheduler.load_config(str(sched_dir))
    sched = diffusers.DDIMScheduler.from_config(cfg)
    sched.set_timesteps(steps)
    x, xs, x0s = noise.clone(), [], []
    with torch.no_grad():
        for t in sched.timesteps:
            xs.append(x)
            out = unet(x, t, class_labels=labels).sample
            step = sched.step(out, t, x, eta=0.0)
            x0s.append(step.pred_original_sample)
            x = step.prev_sample
    return xs, x0s, x, sched


def ours(folder, noise, steps, label=None):
    loaded = loaders.open_model(folder)
    traj = sample(CNNDenoiser(loaded.predictor, label), noise, steps, schedule=loaded.schedule)
    return loaded, traj


CASES = [
    (beta, pred, cond)
    for beta in ("linear", "scaled_linear", "squaredcos_cap_v2", "trained_betas")
    for pred in ("epsilon", "v_prediction", "sample")
    for cond in (False, True)
]


@pytest.mark.parametrize("beta,pred,cond", CASES)
def test_cnn_trajectory_equals_diffusers_ddim(tmp_path, beta, pred, cond):
    classes = 3 if cond else None
    unet = tiny_unet(classes=classes, seed=len(beta) + len(pred))
    sched = diffusers.DDPMScheduler(
        num_train_timesteps=T, prediction_type=pred, clip_sample=True, **betas_kwargs(beta)
    )
    folder = save(tmp_path, unet, sched, "pipeline" if cond else "bare")
    noise = initial_noise((1, 1, SIZE, SIZE), seed=5)
    label = 2 if cond else None
    lab_t = torch.tensor([2]) if cond else None
    xs, x0s, final, dsched = diffusers_ddim(folder, noise, STEPS, lab_t)
    loaded, traj = ours(folder, noise, STEPS, label)
    assert loaded.info.num_classes == (3 if cond else 0)
    assert len(traj.steps) == STEPS
    for i, step in enumerate(traj.steps):
        np.testing.assert_allclose(step.x_t.numpy(), xs[i].numpy(), atol=1e-4, rtol=0)
        np.testing.assert_allclose(step.x0.numpy(), x0s[i].numpy(), atol=1e-4, rtol=0)
        # the grid point the sampler visited is diffusers' timestep
        assert loaded.schedule.timestep_of(step.t) == int(dsched.timesteps[i])
    np.testing.assert_allclose(traj.final.numpy(), final.numpy(), atol=1e-4, rtol=0)
    assert float(final.abs().max()) > 0.1  # a trajectory that went somewhere


@pytest.mark.parametrize(
    "spacing,offset,alpha_one,clip",
    [
        ("leading", 1, False, True),
        ("trailing", 0, True, False),
        ("linspace", 0, False, True),
    ],
)
def test_ddim_scheduler_settings_followed(tmp_path, spacing, offset, alpha_one, clip):
    """A DDIMPipeline's own scheduler settings (spacing, steps_offset, set_alpha_to_one,
    clip_sample) are what the trajectory follows; three channels, DDIMPipeline's noise."""
    unet = tiny_unet(channels=3, seed=11)
    sched = diffusers.DDIMScheduler(
        num_train_timesteps=T,
        beta_schedule="scaled_linear",
        timestep_spacing=spacing,
        steps_offset=offset,
        set_alpha_to_one=alpha_one,
        clip_sample=clip,
        clip_sample_range=0.7,
    )
    folder = save(tmp_path, unet, sched, "pipeline")
    noise = initial_noise((1, 3, SIZE, SIZE), seed=3)
    xs, x0s, final, _ = diffusers_ddim(folder, noise, 7, None)
    _, traj = ours(folder, noise, 7)
    for i, step in enumerate(traj.steps):
        np.testing.assert_allclose(step.x0.numpy(), x0s[i].numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(traj.final.numpy(), final.numpy(), atol=1e-4, rtol=0)
    # diffusers' pipeline itself, from the noise its generator draws with our seed
    pipe = diffusers.DDIMPipeline.from_pretrained(str(folder), use_safetensors=True)
    img = pipe(
        batch_size=1,
        generator=torch.Generator().manual_seed(3),
        num_inference_steps=7,
        eta=0.0,
        output_type="np",
    ).images[0]
    want = (traj.final[0] / 2 + 0.5).clamp(0, 1).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(img, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("beta", ["linear", "squaredcos_cap_v2"])
def test_machine_runs_at_the_schedulers_abar(tmp_path, beta):
    unet = tiny_unet(seed=2)
    sched = diffusers.DDPMScheduler(num_train_timesteps=T, beta_schedule=beta)
    folder = save(tmp_path, unet, sched, "pipeline")
    loaded = loaders.open_model(folder)
    dsched = diffusers.DDIMScheduler.from_config(sched.config)
    dsched.set_timesteps(5)
    g = torch.Generator().manual_seed(0)
    train = torch.rand(6, 1, SIZE, SIZE, generator=g) * 2 - 1
    den = MachineDenoiser(train, "bbels", 3, "zeros", loaded.schedule)
    traj = sample(den, initial_noise((1, 1, SIZE, SIZE), 9), 5, schedule=loaded.schedule)
    for i, step in enumerate(traj.steps):
        ab = float(dsched.alphas_cumprod[int(dsched.timesteps[i])])
        ref = reference_denoise(step.x_t.numpy(), ab, train.numpy(), "bbels", 3, "zeros")
        assert_matches(step.extra, ref)
    # the last update lands on abar = 1: the final sample is the last x0
    np.testing.assert_array_equal(traj.final.numpy(), traj.steps[-1].x0.numpy())


def test_timesteps_as_diffusers_sets_them():
    ac = diffusers.DDIMScheduler(num_train_timesteps=1000).alphas_cumprod.tolist()
    for spacing in ("leading", "trailing", "linspace"):
        for offset in (0, 1):
            d = diffusers.DDIMScheduler(
                num_train_timesteps=1000, timestep_spacing=spacing, steps_offset=offset
            )
            ours = DiscreteSchedule(tuple(ac), spacing, offset)
            for k in (1, 3, 7, 20, 150, 999):
                d.set_timesteps(k)
                assert ours.timesteps(k).tolist() == d.timesteps.tolist()


def write(path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_refusals_name_the_folder_and_the_reason(tmp_path):
    unet = tiny_unet()
    good = save(tmp_path, unet, diffusers.DDPMScheduler(num_train_timesteps=T), "pipeline")
    index = json.loads((good / "model_index.json").read_text())

    latent = tmp_path / "latent"
    write(latent / "model_index.json", {**index, "vae": ["diffusers", "AutoencoderKL"]})
    with pytest.raises(CheckpointError) as e:
        loaders.open_model(latent)
    assert "pixel space" in one_line(e) and str(latent) in one_line(e)

    cond = tmp_path / "cond"
    write(cond / "model_index.json", {**index, "unet": ["diffusers", "UNet2DConditionModel"]})
    with pytest.raises(CheckpointError) as e:
        loaders.open_model(cond)
    assert "UNet2DConditionModel" in one_line(e) and "pixel space" in one_line(e)

    unknown = tmp_path / "unknown"
    write(unknown / "config.json", {"_class_name": "VQModel", "sample_size": 8})
    write(unknown / "scheduler_config.json", {"_class_name": "DDPMScheduler"})
    with pytest.raises(CheckpointError) as e:
        loaders.open_model(unknown)
    assert "VQModel" in one_line(e)

    odd_sched = tmp_path / "oddsched"
    unet.save_pretrained(str(odd_sched), safe_serialization=True)
    write(odd_sched / "scheduler_config.json", {"_class_name": "ScoreSdeVeScheduler"})
    with pytest.raises(CheckpointError) as e:
        loaders.open_model(odd_sched)
    assert "ScoreSdeVeScheduler" in one_line(e)

    no_sched = tmp_path / "nosched"
    unet.save_pretrained(str(no_sched), safe_serialization=True)
    with pytest.raises(CheckpointError) as e:
        loaders.open_model(no_sched)
    assert "scheduler_config.json" in one_line(e)

    pickled = tmp_path / "pickled"
    unet.save_pretrained(str(pickled), safe_serialization=False)
    write(pickled / "scheduler_config.json", {"_class_name": "DDPMScheduler"})
    with pytest.raises(CheckpointError) as e:
        loaders.open_model(pickled)
    assert "diffusion_pytorch_model.bin" in one_line(e)

    with pytest.raises(CheckpointError) as e:
        loaders.open_model(tmp_path / "absent")
    assert "no such file" in one_line(e)


def test_open_by_any_path_inside_the_folder(tmp_path):
    folder = save(tmp_path, tiny_unet(), diffusers.DDPMScheduler(num_train_timesteps=T), "pipeline")
    for p in (
        folder,
        folder / "model_index.json",
        folder / "unet" / "diffusion_pytorch_model.safetensors",
    ):
        assert loaders.resolve(p) == ("diffusers", folder)
        assert loaders.is_model_path(p)
    info = loaders.read_info(folder)
    assert (info.arch, info.image_size, info.channels, info.padding) == ("diffusers", 8, 1, "zeros")


def test_calibration_kept_beside_the_folder(tmp_path):
    folder = save(tmp_path, tiny_unet(), diffusers.DDPMScheduler(num_train_timesteps=T), "pipeline")
    before = sorted(p.name for p in folder.rglob("*"))
    side = loaders.write_calibration(folder, {"bbels": [3, 5, 7]})
    assert side == str(folder / "ccdm.json")
    assert loaders.open_model(folder).info.calibrated_p == {"bbels": [3, 5, 7]}
    assert loaders.read_info(folder).calibrated_p == {"bbels": [3, 5, 7]}
    assert sorted(p.name for p in folder.rglob("*")) == sorted(before + ["ccdm.json"])


def test_without_diffusers_says_what_to_install(tmp_path):
    import subprocess
    import sys

    folder = save(tmp_path, tiny_unet(), diffusers.DDPMScheduler(num_train_timesteps=T), "pipeline")
    code = (
        "import sys; sys.modules['diffusers'] = None\n"
        "from ccdm_gui.core import loaders\n"
        "from ccdm_gui.core.checkpoint import CheckpointError\n"
        f"try:\n    loaders.open_model({str(folder)!r})\n"
        "except CheckpointError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install diffusers" in out.stdout and str(folder) in out.stdout


def test_the_shipped_diffusers_model_runs_as_diffusers_runs_it():
    from pathlib import Path

    folder = Path(__file__).parent.parent / "models" / "mnist_unet2d_diffusers"
    loaded = loaders.open_model(folder)
    info = loaded.info
    assert (info.arch, info.image_size, info.channels, info.num_classes) == ("diffusers", 32, 1, 0)
    assert len(info.calibrated_p["bbels"]) == 20
    noise = initial_noise((1, 1, 32, 32), seed=0)
    xs, x0s, final, _ = diffusers_ddim(folder, noise, 3)
    traj = sample(CNNDenoiser(loaded.predictor), noise, 3, schedule=loaded.schedule)
    np.testing.assert_allclose(traj.final.numpy(), final.numpy(), atol=1e-4, rtol=0)

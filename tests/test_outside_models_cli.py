"""A diffusers pipeline folder and a paper-code checkpoint through the command line:
run, calibrate (--write beside them), evaluate and export, as for ccdm's own models."""

from __future__ import annotations

import json
from pathlib import Path

import diffusers
import numpy as np
import torch
from test_pipeline import SIZE, make_dataset

from ccdm_gui.cli import main
from ccdm_gui.core import loaders
from ccdm_gui.core.pipeline import load_comparison
from ccdm_gui.core.sampler import initial_noise

PAPER = Path(__file__).parent / "data" / "paper_code"


def tiny_pipeline(folder: Path) -> Path:
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(
        sample_size=SIZE,
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
        add_attention=False,
    )
    sched = diffusers.DDPMScheduler(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2")
    diffusers.DDPMPipeline(unet=unet, scheduler=sched).save_pretrained(
        str(folder), safe_serialization=True
    )
    return folder


def test_diffusers_folder_run_calibrate_evaluate_export(tmp_path, capsys):
    model = tiny_pipeline(tmp_path / "pipe")
    data = make_dataset(tmp_path / "data")
    common = ["--model", str(model), "--dataset", str(data), "--subset", "12", "--device", "cpu"]

    out = tmp_path / "run"
    assert main(["run", *common, "--seed", "4", "--steps", "5", "--out", str(out)]) == 0
    comp = load_comparison(out / "trajectory.npz")
    with np.load(out / "trajectory.npz") as z:
        x_t0 = z["cnn_x_t"][0]
    np.testing.assert_array_equal(x_t0, initial_noise((1, 1, SIZE, SIZE), 4)[0].numpy())
    sched = loaders.open_model(model).schedule
    # both trajectories visit the scheduler's timesteps: (k + 1) / T for k in 80, 60, .. 0
    want = [(k + 1) / 100 for k in sched.timesteps(5).tolist()]
    assert comp.cnn.t.tolist() == want and comp.machine.t.tolist() == want

    argv = ["calibrate", *common, "--seeds", "2", "--machines", "bbels", "--p-max", "5"]
    assert main([*argv, "--steps", "10", "--write"]) == 0
    assert f"into {model / 'ccdm.json'}" in capsys.readouterr().out
    cal = json.loads((model / "ccdm.json").read_text())["calibrated_p"]["bbels"]
    assert len(cal) == 10 and set(cal) <= {3, 5}

    res_path = tmp_path / "eval.json"
    argv = ["evaluate", *common, "--machine", "bbels,ls", "--seeds", "2", "--steps", "5"]
    assert main([*argv, "--cnn-steps", "5", "--json", str(res_path)]) == 0
    res = json.loads(res_path.read_text())
    assert res["patch_size"] == "calibrated" and "bbels" in res["calibrated"]
    assert len(res["correlation"]["bbels"]) == 2

    frames = tmp_path / "frames"
    argv = ["export", *common, "--seed", "1", "--steps", "3", "--frames", str(frames)]
    assert main([*argv, "--video", str(tmp_path / "v.mp4")]) == 0
    assert len(list(frames.glob("*.png"))) == 3 and (tmp_path / "v.mp4").stat().st_size > 0


def test_paper_checkpoint_runs_with_its_scales(tmp_path):
    data = make_dataset(tmp_path / "data")
    model = PAPER / "backbone_tiny_UNet_circular_conditional.pt"
    out = tmp_path / "run"
    argv = ["run", "--model", str(model), "--dataset", str(data), "--subset", "12"]
    argv += ["--machine", "els", "--label", "1", "--steps", "4", "--out", str(out)]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    scales = torch.load(PAPER / "scales_tiny_UNet_circular_conditonal.pt", weights_only=True)
    # t = 1, 0.75, 0.5, 0.25: entries 19, 14, 9, 4 of the 20 scales
    assert metrics["patch_size"] == [scales[k] for k in (19, 14, 9, 4)]


def test_refusal_is_one_line_on_the_command_line(tmp_path, capsys):
    data = make_dataset(tmp_path / "data")
    latent = tmp_path / "latent"
    latent.mkdir()
    index = {"_class_name": "LDMPipeline", "vqvae": ["diffusers", "VQModel"]}
    index["unet"] = ["diffusers", "UNet2DModel"]
    (latent / "model_index.json").write_text(json.dumps(index))
    code = main(["run", "--model", str(latent), "--dataset", str(data), "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "pixel space" in err and len(err.splitlines()) == 1

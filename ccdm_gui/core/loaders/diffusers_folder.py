"""diffusers pixel-space models: a pipeline folder (model_index.json with unet/ and
scheduler/) or a bare UNet2DModel folder with a scheduler config beside it.

The network is diffusers' own UNet2DModel, loaded from safetensors only; the noise
schedule is the one DDIMScheduler.from_config(<the folder's scheduler config>) builds
(alphas_cumprod over the training timesteps, spacing, set_alpha_to_one, clip_sample).
diffusers is imported only here, and only when such a folder is opened.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from ..checkpoint import CheckpointError, LoadedModel, ModelInfo
from ..predictors import PREDICTION_TYPES, DiffusersPredictor
from ..schedule import discrete_from_config

PACKAGE = "diffusers==0.42.1"
WEIGHTS = "diffusion_pytorch_model.safetensors"
PIXEL = "the machines work in pixel space"
# Components that make a pipeline latent or text-conditioned.
_LATENT = {"vae", "vqvae", "text_encoder", "tokenizer", "image_encoder", "movq"}
# Schedulers whose config is a beta schedule over discrete training timesteps.
SCHEDULERS = {
    "DDPMScheduler",
    "DDIMScheduler",
    "PNDMScheduler",
    "DPMSolverMultistepScheduler",
    "DPMSolverSinglestepScheduler",
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "HeunDiscreteScheduler",
    "LMSDiscreteScheduler",
    "UniPCMultistepScheduler",
    "DEISMultistepScheduler",
    "KDPM2DiscreteScheduler",
    "KDPM2AncestralDiscreteScheduler",
}


def _json(path: Path) -> dict[str, Any]:
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(d, dict):
        raise CheckpointError(f"{path}: holds a {type(d).__name__}, not a JSON object")
    return d


def is_folder(path: Path) -> bool:
    return path.is_dir() and ((path / "model_index.json").is_file() or _bare_config(path))


def _bare_config(path: Path) -> bool:
    cfg = path / "config.json"
    if not cfg.is_file():
        return False
    try:
        return "_class_name" in json.loads(cfg.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False


def _locate(path: Path) -> tuple[Path, Path]:
    """(unet folder, scheduler config file) of a pipeline or a bare model folder."""
    index = path / "model_index.json"
    if index.is_file():
        d = _json(index)
        cls = d.get("_class_name", "?")
        comps = {k: v for k, v in d.items() if not k.startswith("_")}
        for k, v in comps.items():
            present = isinstance(v, list) and len(v) == 2 and v[1] is not None
            if k in _LATENT and present:
                raise CheckpointError(f"{path}: {cls} has a {k} ({v[1]}): {PIXEL}")
        unet = comps.get("unet")
        if not (isinstance(unet, list) and len(unet) == 2 and unet[1]):
            raise CheckpointError(f"{path}: {cls} has no unet component in model_index.json")
        if unet[1] != "UNet2DModel":
            raise CheckpointError(
                f"{path}: the unet is a {unet[1]}; only UNet2DModel opens ({PIXEL}, "
                "unconditional or class-conditional)"
            )
        sched = comps.get("scheduler")
        if not (isinstance(sched, list) and len(sched) == 2 and sched[1]):
            raise CheckpointError(f"{path}: {cls} has no scheduler component in model_index.json")
        return path / "unet", path / "scheduler" / "scheduler_config.json"
    for cand in (
        path / "scheduler_config.json",
        path / "scheduler" / "scheduler_config.json",
        path.parent / "scheduler_config.json",
        path.parent / "scheduler" / "scheduler_config.json",
    ):
        if cand.is_file():
            return path, cand
    raise CheckpointError(
        f"{path}: no scheduler config (scheduler_config.json) in or beside this model folder"
    )


def _unet_config(unet_dir: Path) -> dict[str, Any]:
    cfg = _json(unet_dir / "config.json")
    cls = cfg.get("_class_name")
    if cls == "UNet2DConditionModel":
        raise CheckpointError(f"{unet_dir}: a UNet2DConditionModel (text-conditioned): {PIXEL}")
    if cls != "UNet2DModel":
        raise CheckpointError(f"{unet_dir}: unknown model class {cls!r}; only UNet2DModel opens")
    cin, cout = int(cfg.get("in_channels", 3)), int(cfg.get("out_channels", 3))
    if cin != cout:
        raise CheckpointError(
            f"{unet_dir}: in_channels {cin} but out_channels {cout}; only a model that predicts "
            "one image-sized output (eps, v or x0) opens"
        )
    if cin not in (1, 3):
        raise CheckpointError(f"{unet_dir}: {cin} channels; the machines take 1 or 3")
    size = cfg.get("sample_size")
    if isinstance(size, list):
        if len(size) != 2 or size[0] != size[1]:
            raise CheckpointError(f"{unet_dir}: sample_size {size}; only square images open")
        size = size[0]
    if not isinstance(size, int):
        raise CheckpointError(f"{unet_dir}: config.json gives no sample_size")
    emb = cfg.get("class_embed_type")
    if emb is not None:
        raise CheckpointError(
            f"{unet_dir}: class_embed_type {emb!r} is not a class-label embedding; "
            "only num_class_embeds conditioning opens"
        )
    if not (unet_dir / WEIGHTS).is_file():
        bins = sorted(p.name for p in unet_dir.glob("*.bin"))
        why = f" (found {bins[0]}: pickled weights are refused, they can run code)" if bins else ""
        raise CheckpointError(f"{unet_dir}: no {WEIGHTS}{why}")
    return cfg


def _scheduler_config(path: Path) -> dict[str, Any]:
    cfg = _json(path)
    cls = cfg.get("_class_name")
    if cls not in SCHEDULERS:
        raise CheckpointError(
            f"{path}: unknown scheduler class {cls!r}; one with a beta schedule over discrete "
            "timesteps opens (DDPMScheduler, DDIMScheduler, ...)"
        )
    if cfg.get("thresholding"):
        raise CheckpointError(f"{path}: dynamic thresholding is not supported")
    pred = cfg.get("prediction_type", "epsilon")
    if pred not in PREDICTION_TYPES:
        raise CheckpointError(f"{path}: unknown prediction_type {pred!r}")
    return cfg


def read_info(path: Path) -> ModelInfo:
    """Metadata from the JSON configs alone (no diffusers, no weights)."""
    unet_dir, sched_path = _locate(path)
    ucfg = _unet_config(unet_dir)
    scfg = _scheduler_config(sched_path)
    size = ucfg["sample_size"]
    size = size[0] if isinstance(size, list) else size
    training = {}
    if (path / "training.json").is_file():
        training = _json(path / "training.json")
    beta = "trained_betas" if scfg.get("trained_betas") is not None else scfg.get("beta_schedule")
    return ModelInfo(
        arch="diffusers",
        arch_params={
            "class": "UNet2DModel",
            "block_out_channels": list(ucfg.get("block_out_channels", [])),
            "down_block_types": list(ucfg.get("down_block_types", [])),
            "scheduler": scfg.get("_class_name"),
            "prediction_type": scfg.get("prediction_type", "epsilon"),
        },
        image_size=int(size),
        channels=int(ucfg.get("in_channels", 3)),
        num_classes=int(ucfg.get("num_class_embeds") or 0),
        padding="zeros",
        schedule=f"{beta}, {int(scfg.get('num_train_timesteps', 1000))} timesteps",
        training=training,
        name=path.name,
    )


def load(path: Path, device: str = "cpu") -> LoadedModel:
    info = read_info(path)
    unet_dir, sched_path = _locate(path)
    if importlib.util.find_spec("diffusers") is None:
        raise CheckpointError(
            f"{path}: a diffusers folder; opening it needs the diffusers package "
            f"(pip install {PACKAGE})"
        )
    try:
        import diffusers
    except Exception as e:
        raise CheckpointError(
            f"{path}: diffusers does not import ({e}); pip install {PACKAGE}"
        ) from None
    scfg = _scheduler_config(sched_path)
    try:
        ddim = diffusers.DDIMScheduler.from_config(scfg)
    except Exception as e:
        raise CheckpointError(f"{sched_path}: diffusers cannot build its scheduler ({e})") from None
    try:
        unet = diffusers.UNet2DModel.from_pretrained(
            str(unet_dir), use_safetensors=True, local_files_only=True, low_cpu_mem_usage=False
        )
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{unet_dir}: diffusers cannot load the UNet ({msg})") from None
    unet = unet.float().to(device).eval()
    schedule = discrete_from_config(ddim.alphas_cumprod.tolist(), dict(ddim.config))
    c = ddim.config
    clip = float(c.clip_sample_range) if c.clip_sample else None
    predictor = DiffusersPredictor(unet, schedule, c.prediction_type, clip)
    return LoadedModel(info=info, net=unet, path=str(path), schedule=schedule, predictor=predictor)

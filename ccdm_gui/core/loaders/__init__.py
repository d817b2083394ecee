"""The one place that decides how a model path opens. CLI ``--model``, the window's Open
model, drag and drop and recent files all come here.

- a ``.safetensors`` file with ccdm-gui metadata: ccdm's own checkpoint;
- a ``.pt`` / ``.pth`` / ``.ckpt`` file: a ccdm state dict, or a checkpoint of the paper's
  reference code (loaders.paper), read without running code;
- a diffusers pipeline folder or bare UNet2DModel folder (or its ``model_index.json`` /
  ``config.json``, or the weights file inside it): loaders.diffusers_folder.

Calibrated P(t) lives in ccdm's checkpoints themselves; for the others in a JSON beside
them (loaders.sidecar), which overrides what the model came with.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from ..checkpoint import (
    CheckpointError,
    LoadedModel,
    ModelInfo,
    load_checkpoint,
    update_info,
)
from ..checkpoint import read_info as read_ccdm_info
from . import diffusers_folder, paper, sidecar

MODEL_SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt")
TORCH_SUFFIXES = (".pt", ".pth", ".ckpt")


def resolve(path: str | os.PathLike) -> tuple[str, Path]:
    """(format name, the path that format opens) for a user's model path."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: no such file")
    if p.is_dir():
        if diffusers_folder.is_folder(p):
            return "diffusers", p
        raise CheckpointError(
            f"{p}: is a folder without a model (no model_index.json, nor a diffusers "
            "config.json); give a .safetensors or .pt file or a diffusers folder"
        )
    if p.name in ("model_index.json", "config.json") and diffusers_folder.is_folder(p.parent):
        return "diffusers", p.parent
    if p.name.startswith("diffusion_pytorch_model") and diffusers_folder.is_folder(p.parent):
        # the weights inside a diffusers unet/ folder: the pipeline above it, if there is one
        up = p.parent.parent
        return "diffusers", up if (up / "model_index.json").is_file() else p.parent
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        return "ccdm", p
    if suffix in TORCH_SUFFIXES:
        return "torch", p
    raise CheckpointError(
        f"{p}: not a model ({', '.join(MODEL_SUFFIXES)} file or a diffusers folder)"
    )


def is_model_path(path: str | os.PathLike) -> bool:
    """Whether a dropped or recent path is meant as a model (rather than a dataset)."""
    p = Path(path)
    if p.is_dir():
        return diffusers_folder.is_folder(p)
    if p.name == "model_index.json":
        return True
    return p.suffix.lower() in MODEL_SUFFIXES


def _with_sidecar(info: ModelInfo, path: Path) -> ModelInfo:
    own = sidecar.read(path)
    if own is not None:
        info.calibrated_p = {**(info.calibrated_p or {}), **own}
    return info


# torch files have no header to read: their metadata comes from a load, kept per change.
_torch_infos: dict[tuple, ModelInfo] = {}


def read_info(path: str | os.PathLike) -> ModelInfo:
    """Metadata without loading weights where the format allows."""
    kind, p = resolve(path)
    if kind == "ccdm":
        return read_ccdm_info(p)
    if kind == "diffusers":
        return _with_sidecar(diffusers_folder.read_info(p), p)
    key = (str(p.resolve()), change_stamp(p))
    if key not in _torch_infos:
        if len(_torch_infos) > 16:
            _torch_infos.clear()
        _torch_infos[key] = open_model(p).info
    return copy.deepcopy(_torch_infos[key])


def open_model(path: str | os.PathLike, device: str = "cpu") -> LoadedModel:
    kind, p = resolve(path)
    if kind == "ccdm":
        return load_checkpoint(p, device)
    if kind == "diffusers":
        loaded = diffusers_folder.load(p, device)
    else:
        obj = paper.unpickle(p)
        if paper.is_scales(obj):
            raise CheckpointError(
                f"{p}: a scales file (the paper code's calibrated P(t)); open the backbone_*.pt "
                "beside it"
            )
        if not (paper.is_pickled_module(obj) or paper.is_paper_state(obj)):
            return load_checkpoint(p, device)
        loaded = paper.load(p, obj, device)
    _with_sidecar(loaded.info, p)
    return loaded


def calibration_file(path: str | os.PathLike) -> str:
    """Where calibrated P(t) of this model is kept: a ccdm checkpoint itself, else a JSON
    beside the model."""
    kind, p = resolve(path)
    return str(p) if kind == "ccdm" else str(sidecar.sidecar_path(p))


def write_calibration(path: str | os.PathLike, calibrated_p: dict[str, list[int]]) -> str:
    """Store calibrated P(t) where this format keeps it; returns the file written."""
    kind, p = resolve(path)
    if kind == "ccdm":
        update_info(p, calibrated_p=calibrated_p)
        return str(p)
    return str(sidecar.write(p, calibrated_p))


def change_stamp(path: str | os.PathLike) -> tuple:
    """Changes when the model or its calibration changes (for caches keyed by path)."""
    p = Path(path)
    out = []
    for q in (p, sidecar.sidecar_path(p) if p.exists() else None):
        try:
            st = q.stat().st_mtime_ns if q is not None else -1
            if q is not None and q.is_dir():
                st = max([st] + [c.stat().st_mtime_ns for c in q.iterdir()])
        except OSError:
            st = -1
        out.append(st)
    return tuple(out)

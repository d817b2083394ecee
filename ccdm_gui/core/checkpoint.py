"""Checkpoints: safetensors weights plus JSON metadata. Loading never runs code.

A ``.pt`` state dict is accepted only through ``torch.load(weights_only=True)``,
which refuses any pickle that would construct arbitrary objects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .atomic import atomic_path
from .networks import ARCHITECTURES, build_network
from .predictors import EpsPredictor
from .schedule import LEGACY_COSINE, Schedule

FORMAT = "ccdm-gui/1"
META_KEY = "ccdm"
# Seeds the per-seed label draw (any fixed number; changing it changes every default label).
LABEL_STREAM = 0x1ABE1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


@dataclass
class ModelInfo:
    arch: str
    arch_params: dict[str, Any]
    image_size: int = 32
    channels: int = 1
    num_classes: int = 0
    padding: str = "zeros"
    schedule: str = "legacy_cosine"
    dataset: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    calibrated_p: dict[str, list[int]] = field(default_factory=dict)
    name: str = ""

    def label_for_seed(self, seed: int) -> int | None:
        """The class a seed samples when none is chosen: drawn at random from the seed,
        as the paper draws a random label per seed, and the same draw in ``ccdm run
        --seed S``, ``ccdm evaluate`` and ``ccdm calibrate``. The draw has its own
        generator, apart from the seed's initial noise."""
        if self.num_classes <= 0:
            return None
        return int(np.random.default_rng([LABEL_STREAM, int(seed)]).integers(self.num_classes))

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, **self.__dict__}

    @classmethod
    def from_json(cls, d: dict[str, Any], source: str) -> ModelInfo:
        if not isinstance(d, dict):
            raise CheckpointError(f"{source}: metadata is a {type(d).__name__}, not an object")
        if d.get("format") != FORMAT:
            raise CheckpointError(f"{source}: unknown checkpoint format {d.get('format')!r}")
        for key in ("arch", "arch_params"):
            if key not in d:
                raise CheckpointError(f"{source}: metadata lacks the key {key!r}")
        if d["arch"] not in ARCHITECTURES:
            raise CheckpointError(f"{source}: unknown architecture {d['arch']!r}")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class LoadedModel:
    """A network ready to run: ``predictor(x, t, labels) -> Prediction(x0, eps)`` on its
    ``schedule`` (the legacy cosine and an eps network unless the loader says otherwise)."""

    info: ModelInfo
    net: nn.Module
    path: str
    schedule: Schedule = LEGACY_COSINE
    predictor: Callable | None = None

    def __post_init__(self):
        if self.predictor is None:
            self.predictor = EpsPredictor(self.net, self.schedule)


def network_params(info: ModelInfo) -> dict[str, Any]:
    return {
        **info.arch_params,
        "channels": info.channels,
        "num_classes": info.num_classes,
        "padding": info.padding,
    }


def save_checkpoint(path: str | Path, net: nn.Module, info: ModelInfo) -> None:
    """Atomic: written to a temporary file beside the target, then renamed."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={META_KEY: json.dumps(info.to_json())})


def read_info(path: str | Path) -> ModelInfo:
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
    if META_KEY not in meta:
        raise CheckpointError(f"{path}: no ccdm-gui metadata in this safetensors file")
    try:
        d = json.loads(meta[META_KEY])
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: metadata is not valid JSON ({e})") from None
    return ModelInfo.from_json(d, str(path))


def _load_state(path: Path) -> tuple[dict[str, torch.Tensor], ModelInfo | None]:
    if path.suffix in (".pt", ".pth", ".ckpt"):
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as e:
            # PyTorch's own text runs to many lines and advises weights_only=False,
            # the very thing that would let the file run code; one sentence says it.
            wanted = re.search(r"unsupported GLOBAL (\S+)", str(e))
            if wanted:
                why = (
                    f"refused: it asks for {wanted.group(1)}, and loading that could run "
                    "code (only plain state dicts load)"
                )
            else:
                why = "not a readable checkpoint (neither safetensors nor a PyTorch state dict)"
            raise CheckpointError(f"{path}: {why}") from None
        info = None
        if isinstance(obj, dict) and "state_dict" in obj:
            meta = obj.get(META_KEY)
            if isinstance(meta, str):
                try:
                    info = ModelInfo.from_json(json.loads(meta), str(path))
                except json.JSONDecodeError as e:
                    raise CheckpointError(f"{path}: metadata is not valid JSON ({e})") from None
            obj = obj["state_dict"]
        if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
            raise CheckpointError(f"{path}: not a state dict of tensors")
        return obj, info
    from safetensors.torch import load_file

    info = read_info(path)
    try:
        return load_file(str(path)), info
    except Exception as e:
        raise CheckpointError(f"{path}: cannot read weights ({e})") from None


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", info: ModelInfo | None = None
) -> LoadedModel:
    """Build the network that the metadata describes and load its weights.

    For a ``.pt`` file without embedded metadata, pass ``info``.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    state, found = _load_state(path)
    info = found or info
    if info is None:
        raise CheckpointError(f"{path}: no metadata; say which architecture it holds")
    try:
        net = build_network(info.arch, **network_params(info))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: metadata does not describe a network ({e})") from None
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing:
        raise CheckpointError(f"{path}: missing weights {missing[:3]} ({len(missing)} in all)")
    if extra:
        raise CheckpointError(f"{path}: unexpected weights {extra[:3]} ({len(extra)} in all)")
    for k, v in own.items():
        if tuple(v.shape) != tuple(state[k].shape):
            raise CheckpointError(
                f"{path}: weight {k!r} has shape {tuple(state[k].shape)}, "
                f"the architecture needs {tuple(v.shape)}"
            )
    net.load_state_dict(state)
    net.to(device).eval()
    return LoadedModel(info=info, net=net, path=str(path))


def update_info(path: str | Path, **changes: Any) -> ModelInfo:
    """Rewrite a checkpoint's metadata (e.g. a calibrated schedule), weights unchanged."""
    loaded = load_checkpoint(path)
    for k, v in changes.items():
        setattr(loaded.info, k, v)
    save_checkpoint(path, loaded.net, loaded.info)
    return loaded.info

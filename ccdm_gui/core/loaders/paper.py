"""Checkpoints of the paper's reference code (henhen724/convolutional_diffusion), opened
without their code and without running anything.

Their training script ``torch.save``s the whole ``DDIM`` module, with a ``MinimalResNet``
or ``MinimalUNet`` backbone inside: a pickle that names their classes (``models.*`` in
the first layout, ``src.models.*`` in the later one) and torch's layers. It is read by
``torch.load(weights_only=True)`` with each of those names bound to an inert stand-in
(a plain object that only receives the pickled attributes), so nothing of theirs or of
torch's layers is constructed or called. The weights are then the pickled parameters,
the hyper-parameters the pickled attributes (padding mode, image size, schedule) and the
shapes of the weights; ccdm_gui.core.paper_networks runs them.

Plain state dicts of the same networks open too (padding mode and image size from the
file name, as the authors name their files: ``backbone_MNIST_ResNet_zeros.pt``). A
``scales_*.pt`` beside the checkpoint (a pickled list of 20 odd ints, entry i at
t = (i + 1) / 20) becomes its calibrated P(t).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import CheckpointError, LoadedModel, ModelInfo
from ..networks import build_network
from ..schedule import LEGACY_COSINE, ContinuousSchedule

_LAYERS = {
    "torch.nn.modules.conv": ("Conv2d", "ConvTranspose2d"),
    "torch.nn.modules.linear": ("Linear", "Identity"),
    "torch.nn.modules.normalization": ("GroupNorm",),
    "torch.nn.modules.batchnorm": ("BatchNorm2d",),
    "torch.nn.modules.activation": ("ReLU", "SiLU"),
    "torch.nn.modules.container": ("Sequential", "ModuleList"),
    "torch.nn.modules.sparse": ("Embedding",),
    "torch.nn.modules.pooling": ("MaxPool2d",),
}
_THEIRS = ("DDIM", "MinimalResNet", "MinimalUNet", "UBlock", "EmbeddingModule")
_THEIR_MODULES = ("models", "src.models", "__main__")
_SCHEDULE_MODULES = ("utils.noise_schedules", "src.utils.noise_schedules")


class _Inert:
    """A pickled object's attributes and nothing else (no methods of its class run)."""

    qualname = ""


class _ScheduleRef:
    """Stands for one of their schedule functions; never called."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *a, **k):  # pragma: no cover - registered, never called
        raise RuntimeError("a stand-in for the reference code's schedule is not callable")


# Schedules of their noise_schedules module, as abar(t) = 1 - beta(t).
SCHEDULES = {
    "cosine_noise_schedule": LEGACY_COSINE,
    "linear_noise_schedule": ContinuousSchedule("paper_linear", lambda t: 0.99 - 0.97 * t),
    "exponential_schedule": ContinuousSchedule("paper_exponential", lambda t: math.exp(-2 * t)),
}


def _standins() -> list[tuple[Any, str]]:
    out = []
    names = [f"{m}.{c}" for m, cs in _LAYERS.items() for c in cs]
    names += [f"{m}.{c}" for m in _THEIR_MODULES for c in _THEIRS]
    for name in names:
        out.append((type(name.rsplit(".", 1)[1], (_Inert,), {"qualname": name}), name))
    for m in _SCHEDULE_MODULES:
        for fn in SCHEDULES:
            out.append((_ScheduleRef(fn), f"{m}.{fn}"))
    return out


_STANDINS = _standins()


def _unpickle(path: Path) -> Any:
    try:
        with torch.serialization.safe_globals(_STANDINS):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        text = str(e)
        m = re.search(r"GLOBAL ([\w.]+)", text) or re.search(r"got <class '([\w.]+)'>", text)
        if m:
            # PyTorch's own text runs to many lines and advises weights_only=False, the
            # very thing that would let the file run code; one sentence says it.
            raise CheckpointError(
                f"{path}: refused: it asks for {m.group(1)}, and loading that could run code "
                "(state dicts and the paper code's checkpoints load)"
            ) from None
        raise CheckpointError(
            f"{path}: not a readable checkpoint (neither safetensors nor a PyTorch state dict)"
        ) from None


def _kind(obj: Any) -> str:
    return type(obj).qualname.rsplit(".", 1)[1] if isinstance(obj, _Inert) else ""


def _flatten(mod: _Inert, prefix: str = "") -> dict[str, torch.Tensor]:
    """The state dict of a pickled module tree: parameters and persistent buffers."""
    d = mod.__dict__
    out: dict[str, torch.Tensor] = {}
    transient = d.get("_non_persistent_buffers_set") or set()
    for name, p in (d.get("_parameters") or {}).items():
        if p is not None:
            out[prefix + name] = p.detach()
    for name, b in (d.get("_buffers") or {}).items():
        if b is not None and name not in transient:
            out[prefix + name] = b
    for name, child in (d.get("_modules") or {}).items():
        if isinstance(child, _Inert):
            out.update(_flatten(child, f"{prefix}{name}."))
    return out


def _walk(mod: _Inert):
    yield mod
    for child in (mod.__dict__.get("_modules") or {}).values():
        if isinstance(child, _Inert):
            yield from _walk(child)


def _from_name(path: Path) -> dict[str, Any]:
    name = path.name
    hints: dict[str, Any] = {}
    for mode in ("circular", "zeros"):
        if f"_{mode}" in name:
            hints["padding"] = mode
    m = re.search(r"_(\d+)x\1", name)
    hints["image_size"] = int(m.group(1)) if m else 32
    return hints


def _n_layers(state: dict, prefix: str) -> int:
    idx = {int(k[len(prefix) :].split(".")[0]) for k in state if k.startswith(prefix)}
    return max(idx) + 1 if idx else 0


def _norm_of(state: dict, block: str, width_key: str) -> str | None:
    """GroupNorm, BatchNorm or None from what a UBlock's Sequential holds after its conv."""
    if f"{block}.model.1.running_mean" in state:
        return "BatchNorm"
    if f"{block}.model.1.weight" in state:
        return "GroupNorm"
    return None


def _arch_from_state(state: dict[str, torch.Tensor], path: Path) -> tuple[str, dict, int, int]:
    """(arch, arch_params, channels, num_classes) from the shapes of the weights."""
    classes = 0
    if "embedding.class_embeddings.weight" in state:
        classes = int(state["embedding.class_embeddings.weight"].shape[0])
    if "up_projection.weight" in state:
        up = state["up_projection.weight"]
        width, channels, k = int(up.shape[0]), int(up.shape[1]), int(up.shape[-1])
        layers = _n_layers(state, "convs.")
        embs = _n_layers(state, "embs.")
        norm = "GroupNorm" if "convs.0.1.weight" in state else None
        down = state.get("down_projection.weight", state.get("down_projection.1.weight"))
        if down is None or layers == 0:
            raise CheckpointError(f"{path}: a MinimalResNet without its convs or down_projection")
        params = {
            "width": width,
            "layers": layers,
            "kernel_size": k,
            "last_kernel_size": int(down.shape[-1]),
            "normalization": norm,
            "add_one": embs > layers,
        }
        return "paper_resnet", params, channels, classes
    if "feature_blocks.0.model.0.weight" in state:
        n_down = _n_layers(state, "feature_blocks.")
        fs = [int(state[f"feature_blocks.{i}.model.0.weight"].shape[0]) for i in range(n_down)]
        fs.append(int(state["bottleneck.model.0.weight"].shape[0]))
        first = state["feature_blocks.0.model.0.weight"]
        norm = _norm_of(state, "feature_blocks.0", "")
        params = {
            "fsizes": fs,
            "emb_dim": int(state["bottleneck.emb.1.weight"].shape[1]),
            "kernel_size": int(first.shape[-1]),
            "last_kernel_size": int(state["output_conv.weight"].shape[-1]),
            "normalization": norm,
            "last_norm": "last_normalizer.weight" in state,
        }
        return "paper_unet", params, int(first.shape[1]), classes
    raise CheckpointError(
        f"{path}: neither a MinimalResNet nor a MinimalUNet of the paper's code "
        "(no up_projection or feature_blocks weights)"
    )


def _pickled_hints(root: _Inert, path: Path) -> tuple[_Inert, dict[str, Any]]:
    """The backbone inside a pickled DDIM (or the backbone itself) and what its
    attributes say: padding mode, image size, schedule."""
    hints = _from_name(path)
    backbone = root
    if _kind(root) == "DDIM":
        backbone = (root.__dict__.get("_modules") or {}).get("backbone")
        if not isinstance(backbone, _Inert):
            raise CheckpointError(f"{path}: a DDIM without a backbone module")
        if isinstance(root.__dict__.get("default_imsize"), int):
            hints["image_size"] = int(root.__dict__["default_imsize"])
        sched = root.__dict__.get("noise_schedule")
        if isinstance(sched, _ScheduleRef):
            hints["schedule"] = sched.name
        elif sched is not None:
            raise CheckpointError(f"{path}: unknown noise schedule {sched!r}")
    if _kind(backbone) not in ("MinimalResNet", "MinimalUNet"):
        raise CheckpointError(
            f"{path}: holds a {type(backbone).qualname}; a MinimalResNet or MinimalUNet opens"
        )
    modes = {
        m.__dict__.get("padding_mode")
        for m in _walk(backbone)
        if _kind(m) == "Conv2d" and m.__dict__.get("padding_mode")
    }
    if len(modes) != 1:
        raise CheckpointError(f"{path}: convolutions with padding modes {sorted(modes)}")
    hints["padding"] = modes.pop()
    return backbone, hints


def scales_path(path: Path) -> Path | None:
    """The authors' scales file for a backbone file (their FashionMNIST ones are spelt
    ``conditonal``)."""
    if not path.name.startswith("backbone_"):
        return None
    stem = path.name[len("backbone_") :].replace("conditonal", "conditional")
    for cand in sorted(path.parent.glob("scales_*.pt")):
        if cand.name[len("scales_") :].replace("conditonal", "conditional") == stem:
            return cand
    return None


def read_scales(path: Path) -> list[int]:
    obj = _unpickle(path)
    if torch.is_tensor(obj):
        obj = obj.tolist()
    ok = isinstance(obj, list) and obj and all(isinstance(p, int) and p % 2 == 1 for p in obj)
    if not ok:
        raise CheckpointError(f"{path}: a scales file holds a list of odd ints")
    return [int(p) for p in obj]


def is_scales(obj: Any) -> bool:
    return isinstance(obj, list) and bool(obj) and all(isinstance(p, int) for p in obj)


def load(path: Path, obj: Any, device: str = "cpu") -> LoadedModel:
    """``obj`` is what ``unpickle`` read from ``path``: a pickled module or a state dict."""
    if isinstance(obj, _Inert):
        backbone, hints = _pickled_hints(obj, path)
        state = _flatten(backbone)
    else:
        state, hints = obj, _from_name(path)
    arch, params, channels, classes = _arch_from_state(state, path)
    padding = hints.get("padding")
    if padding is None:
        raise CheckpointError(
            f"{path}: a state dict without its padding mode; name the file *_zeros.pt or "
            "*_circular.pt as the authors do"
        )
    if padding not in ("zeros", "circular"):
        raise CheckpointError(
            f"{path}: padding mode {padding!r}; the machines take zeros or circular"
        )
    schedule_name = hints.get("schedule", "cosine_noise_schedule")
    info = ModelInfo(
        arch=arch,
        arch_params=params,
        image_size=int(hints["image_size"]),
        channels=channels,
        num_classes=classes,
        padding=padding,
        schedule=SCHEDULES[schedule_name].name,
        name=path.stem,
    )
    net = build_network(arch, channels=channels, num_classes=classes, padding=padding, **params)
    own = net.state_dict()
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or extra:
        raise CheckpointError(
            f"{path}: weights do not fit the {arch} they describe "
            f"(missing {missing[:2]}, unexpected {extra[:2]})"
        )
    for k, v in own.items():
        if tuple(v.shape) != tuple(state[k].shape):
            raise CheckpointError(f"{path}: weight {k!r} has shape {tuple(state[k].shape)}")
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    net.to(device).eval()
    scales = scales_path(path)
    if scales is not None:
        machine = "bbels" if padding == "zeros" else "els"
        info.calibrated_p = {machine: read_scales(scales)}
    return LoadedModel(info=info, net=net, path=str(path), schedule=SCHEDULES[schedule_name])


def unpickle(path: Path) -> Any:
    return _unpickle(path)


def is_paper_state(obj: Any) -> bool:
    return isinstance(obj, dict) and (
        "up_projection.weight" in obj or "feature_blocks.0.model.0.weight" in obj
    )


def is_pickled_module(obj: Any) -> bool:
    return isinstance(obj, _Inert)

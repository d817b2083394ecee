"""Device choice: CUDA when present, then Apple MPS, else CPU."""

from __future__ import annotations

import torch


def available_devices() -> list[str]:
    devs = []
    if torch.cuda.is_available():
        devs += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devs.append("mps")
    return devs + ["cpu"]


def resolve_device(name: str | None = "auto") -> str:
    if name in (None, "", "auto"):
        return available_devices()[0]
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    if name == "mps" and "mps" not in available_devices():
        raise ValueError("device 'mps' requested but Apple MPS is not available")
    return name

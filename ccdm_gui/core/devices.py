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


def out_of_memory(e: BaseException) -> str | None:
    """ "gpu" or "cpu" when ``e`` says that device's memory ran out, else None; the
    command line and the window each phrase the advice (a smaller subset, the CPU)."""
    text = str(e).lower()
    if isinstance(e, torch.OutOfMemoryError) or (
        isinstance(e, RuntimeError) and "out of memory" in text
    ):
        return "gpu"
    if isinstance(e, MemoryError) or (
        isinstance(e, RuntimeError)
        and ("can't allocate memory" in text or "not enough memory" in text)
    ):
        return "cpu"
    return None

"""A comparison as one .npz file (``ccdm run`` writes it, ``ccdm export`` reads it)."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from ..atomic import atomic_write_bytes
from ..spec import CNNTrajectory, Comparison, MachineTrajectory, RunSpec

_CNN_FIELDS = [f.name for f in dataclasses.fields(CNNTrajectory)]
_MACHINE_FIELDS = [f.name for f in dataclasses.fields(MachineTrajectory)]
# Fields a file may lack (None is not stored): their dataclass default stands in.
_MACHINE_OPTIONAL = {"train_labels", "shared_count", "shared_images"}


def spec_to_json(spec: RunSpec) -> str:
    return json.dumps(dataclasses.asdict(spec), sort_keys=True)


def spec_from_json(text: str) -> RunSpec:
    d = json.loads(text)
    known = {f.name for f in dataclasses.fields(RunSpec)}
    return RunSpec(**{k: v for k, v in d.items() if k in known})


def save_comparison(comp: Comparison, path: str | os.PathLike) -> None:
    """One .npz: cnn_<field>, machine_<field>, correlation, and the spec as a JSON string."""
    arrays = {f"cnn_{k}": np.asarray(getattr(comp.cnn, k)) for k in _CNN_FIELDS}
    arrays |= {
        f"machine_{k}": np.asarray(getattr(comp.machine, k))
        for k in _MACHINE_FIELDS
        if getattr(comp.machine, k) is not None
    }
    arrays["correlation"] = np.asarray(comp.correlation, dtype=np.float64)
    arrays["spec"] = np.array(spec_to_json(comp.spec))
    arrays["format"] = np.array("ccdm-gui/comparison/1")
    atomic_write_bytes(path, lambda f: np.savez_compressed(f, **arrays))


def load_comparison(path: str | os.PathLike) -> Comparison:
    try:
        with np.load(str(path), allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable trajectory file ({e})") from None
    missing = [
        k
        for k in ["spec", "correlation"]
        + [f"cnn_{f}" for f in _CNN_FIELDS]
        + [f"machine_{f}" for f in _MACHINE_FIELDS if f not in _MACHINE_OPTIONAL]
        if k not in data
    ]
    if missing:
        raise ValueError(f"{path}: not a ccdm-gui trajectory file (lacks {missing[:3]})")
    cnn = CNNTrajectory(**{k: data[f"cnn_{k}"] for k in _CNN_FIELDS})
    machine = MachineTrajectory(
        **{k: data[f"machine_{k}"] for k in _MACHINE_FIELDS if f"machine_{k}" in data}
    )
    return Comparison(
        spec=spec_from_json(str(data["spec"])),
        cnn=cnn,
        machine=machine,
        correlation=data["correlation"],
    )

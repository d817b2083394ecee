"""Arguments checked before any computation. The command line and the window ask the same
questions here, so a bad model, dataset, number, device or output path is refused with one
sentence that names it, before a step is run or a byte is written.

Every refusal is an ArgumentError: ``what`` names the argument (``model``, ``--subset``,
``video``...), and its text reads ``<what> <value>: <why>``.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .checkpoint import LoadedModel, ModelInfo
    from .pipeline import TrainingSet
    from .spec import RunSpec


class ArgumentError(ValueError):
    """An argument that cannot be used; the text names it and says why."""

    def __init__(self, what: str, why: str):
        self.what, self.why = what, why
        super().__init__(f"{what} {why}")


# ----------------------------------------------------------------------------- numbers


def at_least(what: str, value: int | float | None, minimum: int | float = 1):
    """``value`` unchanged when it is None or >= ``minimum``."""
    if value is not None and value < minimum:
        raise ArgumentError(what, f"{value}: must be at least {minimum}")
    return value


def subset(what: str, value: int | str | None) -> int | None:
    """A training-subset size: a count of at least 1, or None for the whole set, which
    the command line spells "all" (the window's subset box shows it so)."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
        return None
    try:
        n = int(value)
    except ValueError:
        raise ArgumentError(what, f"{value}: must be a number of images, or all") from None
    if n < 1:
        raise ArgumentError(what, f"{value}: must be at least 1, or all")
    return n


def patch_size(what: str, value: int | None) -> int | None:
    """An odd P >= 1, or None for the model's calibrated P(t)."""
    if value is not None and (value < 1 or value % 2 == 0):
        raise ArgumentError(what, f"{value}: must be a positive odd number")
    return value


def label_number(text: str) -> int | None:
    """A --label given as a number (checked: 0 or more), or None where it is a class
    name, which only the model's dataset can resolve (``label``)."""
    if not re.fullmatch(r"-?\d+", text.strip()):
        return None
    if int(text) < 0:
        raise ArgumentError("--label", f"{int(text)}: must be 0 or more")
    return int(text)


def label(value: int | str | None, info: ModelInfo) -> int | None:
    """A class label the model can be conditioned on (an unconditional model ignores it,
    but the machine still restricts its training images to that class): a number, or a
    class name where the model's dataset is a known one (``trouser``, ``t-shirt``)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        number = label_number(text)
        if number is not None:
            value = number
        else:
            from .datasets.known import class_names, parse_class

            names = class_names(info.dataset.get("id"))
            if not names:
                raise ArgumentError(
                    "--label", f"{text}: the model's dataset has no class names; give a number"
                )
            try:
                value = parse_class(text, names)
            except ValueError as e:
                raise ArgumentError("--label", f"{text}: {e}") from None
    if value < 0:
        raise ArgumentError("--label", f"{value}: must be 0 or more")
    if info.num_classes > 0 and value >= info.num_classes:
        raise ArgumentError(
            "--label", f"{value}: the model knows classes 0..{info.num_classes - 1}"
        )
    return value


# ----------------------------------------------------------------------------- device

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def device(name: str | None) -> str:
    """The device a run will use: ``auto`` picks CUDA, then MPS, then the CPU."""
    from .devices import available_devices, resolve_device

    text = "auto" if name in (None, "") else str(name)
    if not _DEVICE.match(text):
        raise ArgumentError("--device", f"{text}: unknown; use auto, cpu, cuda, cuda:N or mps")
    try:
        resolved = resolve_device(text)
    except ValueError as e:
        raise ArgumentError("--device", f"{text}: {_not_available(str(e))}") from None
    if resolved == "cuda":
        resolved = "cuda:0"
    if resolved.startswith("cuda") and resolved not in available_devices():
        have = [d for d in available_devices() if d.startswith("cuda")]
        raise ArgumentError("--device", f"{text}: no such GPU here (have {', '.join(have)})")
    return resolved


def _not_available(msg: str) -> str:
    return "CUDA is not available on this machine" if "CUDA" in msg else msg.split("; ")[-1]


# ----------------------------------------------------------------------------- inputs


def model_file(path: str | os.PathLike) -> Path:
    """A model path that loaders knows how to open (its content is checked on loading)."""
    from .checkpoint import CheckpointError
    from .loaders import resolve

    p = Path(path).expanduser()
    try:
        resolve(p)
    except CheckpointError as e:
        raise ArgumentError("model", str(e)) from None
    return p


def dataset_path(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise ArgumentError("dataset", f"{p}: no such file or folder")
    return p


def load_model(path: str | os.PathLike, device_name: str = "cpu") -> LoadedModel:
    """The checkpoint, loaded (and cached for the run that follows)."""
    from .checkpoint import CheckpointError
    from .pipeline import load_model as load

    p = model_file(path)
    try:
        return load(str(p), device_name)
    except CheckpointError as e:
        raise ArgumentError("model", str(e)) from None


def training_images(spec: RunSpec, info: ModelInfo) -> TrainingSet:
    """The run's training images, read (and cached) before its first step."""
    from .datasets import DatasetError
    from .pipeline import load_training_images

    dataset_path(spec.dataset)
    try:
        return load_training_images(spec, info)
    except DatasetError as e:
        raise ArgumentError("dataset", str(e)) from None


# ----------------------------------------------------------------------------- outputs


def _probe(folder: Path) -> None:
    """Create and remove a folder inside ``folder``: the one test that holds for root,
    network shares and pseudo file systems alike (os.access does not)."""
    os.rmdir(tempfile.mkdtemp(prefix=".ccdm-check-", dir=folder))


def _reason(e: OSError) -> str:
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if e.errno == errno.EROFS:
        return "read-only file system"
    if e.errno == errno.ENOENT:
        return "the file system there takes no new files"
    return e.strerror or str(e)


def output_folder(what: str, path: str | os.PathLike, named: str | None = None) -> Path:
    """A folder that exists and is writable, or that can be created (nothing is created).
    ``named`` is the path the user gave, when the folder is that path's parent."""
    p = Path(path).expanduser()
    shown = named or str(p)
    top = p
    while not top.exists() and top.parent != top:
        top = top.parent
    if top.exists() and not top.is_dir():
        where = "is a file" if str(top) == shown else f"{top} is a file, not a folder"
        raise ArgumentError(what, f"{shown}: {where}")
    try:
        _probe(top)
    except OSError as e:
        verb = "cannot write in" if top == p else "cannot create a folder in"
        raise ArgumentError(what, f"{shown}: {verb} {top} ({_reason(e)})") from None
    return p


def output_file(
    what: str,
    path: str | os.PathLike,
    overwrite: bool = False,
    suffixes: Iterable[str] | None = None,
    folder_must_exist: bool = False,
) -> Path:
    """A file that can be written: known suffix, not a folder, not an existing file unless
    ``overwrite``, and a folder that is (or can be made) writable."""
    p = Path(path).expanduser()
    if suffixes is not None:
        known = [s.lower().lstrip(".") for s in suffixes]
        if p.suffix.lower().lstrip(".") not in known:
            listed = ", ".join(f".{s}" for s in known)
            raise ArgumentError(what, f"{p}: unknown format {p.suffix or '(none)'}; use {listed}")
    if p.is_dir():
        raise ArgumentError(what, f"{p}: is a folder; give a file name")
    if folder_must_exist and not p.parent.is_dir():
        why = "is a file, not a folder" if p.parent.exists() else "does not exist"
        raise ArgumentError(what, f"{p}: folder {p.parent} {why}")
    output_folder(what, p.parent, named=str(p))
    if p.exists() and not overwrite:
        raise ArgumentError(what, f"{p}: already exists; add --overwrite to replace it")
    return p


def new_files(what: str, paths: Iterable[Path], overwrite: bool) -> None:
    """Refuse to replace files that exist unless ``overwrite``."""
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise ArgumentError(what, f"{existing[0]}: already exists; add --overwrite to replace it")

"""The datasets ccdm-gui knows by name: their class names and where they are installed.

A checkpoint records the dataset it was trained on (``info.dataset["id"]``, e.g.
``fashion-mnist-train-60k``); from that the app finds the same dataset on this computer
and names the classes of a class-conditional model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TRAIN_IMAGES = "train-images-idx3-ubyte"


@dataclass(frozen=True)
class KnownDataset:
    name: str  # the id prefix, and the name load_dataset gives the data
    title: str
    classes: tuple[str, ...]
    folder: str  # the folder name under a data directory (Debian: /usr/share/datasets/<folder>)


KNOWN: dict[str, KnownDataset] = {
    d.name: d
    for d in (
        KnownDataset("mnist", "MNIST", tuple(str(k) for k in range(10)), "mnist"),
        KnownDataset(
            "fashion-mnist",
            "Fashion-MNIST",
            (
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ),
            "fashion-mnist",
        ),
    )
}


def _normal(text: str) -> str:
    return text.lower().replace("_", "-").replace(" ", "-")


def known_for_id(dataset_id: str | None) -> KnownDataset | None:
    """The known dataset an id or name starts with (``fashion-mnist-train-60k`` ->
    Fashion-MNIST); the longest name wins, since ``mnist`` is inside ``fashion-mnist``."""
    if not dataset_id:
        return None
    ident = _normal(str(dataset_id))
    for d in sorted(KNOWN.values(), key=lambda d: -len(d.name)):
        if ident == d.name or ident.startswith(d.name + "-"):
            return d
    return None


def known_for_path(path: str | Path) -> KnownDataset | None:
    """The known dataset a path holds, told by its folder and file names: MNIST and
    Fashion-MNIST share file names, so the folders (``fashion-mnist``, ``FashionMNIST/raw``)
    are what tell them apart."""
    parts = [_normal(p) for p in Path(path).resolve().parts]
    if any("fashion" in p for p in parts):
        return KNOWN["fashion-mnist"]
    if any("mnist" in p for p in parts):
        return KNOWN["mnist"]
    return None


def data_dirs() -> list[Path]:
    """Where installed datasets are looked for, in order: the user's and the system's
    XDG data directories (``datasets/<name>`` under each; Debian's packages install to
    /usr/share/datasets), then the data shipped with ccdm-gui."""
    from ..resources import resources_dir

    home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    system = os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share"
    dirs = [Path(home)] + [Path(p) for p in system.split(":") if p]
    return [d / "datasets" for d in dirs] + [resources_dir() / "datasets"]


def _has_training_set(folder: Path) -> bool:
    return any((folder / (TRAIN_IMAGES + sfx)).is_file() for sfx in (".gz", ""))


def locate(name: str) -> Path | None:
    """The first installed copy of a known dataset's training set, or None."""
    d = KNOWN.get(name)
    if d is None:
        return None
    for root in data_dirs():
        if _has_training_set(root / d.folder):
            return root / d.folder
    return None


def dataset_for_model(dataset_meta: dict | None) -> Path | None:
    """Where the dataset a checkpoint was trained on is on this computer: its known
    installed copy, else the path recorded at training if it still exists, else None."""
    meta = dataset_meta or {}
    d = known_for_id(meta.get("id"))
    found = locate(d.name) if d is not None else None
    if found is not None:
        return found
    source = meta.get("source")
    if source and Path(source).exists():
        return Path(source)
    return None


def matching_dataset(dataset_meta: dict | None, current: str | Path | None) -> Path | None:
    """The dataset to open with a model: None to keep ``current`` (it is already the
    model's kind, or the model's dataset is unknown or not on this computer), else the
    installed copy of the dataset the model was trained on."""
    d = known_for_id((dataset_meta or {}).get("id"))
    if d is None or (current and known_for_path(current) is d):
        return None
    return dataset_for_model(dataset_meta)


def class_names(dataset_id: str | None, num_classes: int | None = None) -> list[str]:
    """The names of a dataset's classes (``num_classes`` None: as many as it has, none
    for an unknown dataset); numbers where the dataset or the class count is not known."""
    d = known_for_id(dataset_id)
    if num_classes is None:
        return list(d.classes) if d is not None else []
    if d is not None and len(d.classes) == num_classes:
        return list(d.classes)
    return [str(k) for k in range(num_classes)]


def class_names_at(dataset_path: str | Path) -> tuple[str, ...]:
    """The class names of the dataset at ``dataset_path`` where it is a known one, else ()."""
    d = known_for_path(dataset_path)
    return tuple(d.classes) if d is not None else ()


def label_text(dataset_path: str | Path, label: int) -> str:
    """``class 1 (Trouser)``: a label with its name when the dataset is a known one."""
    d = known_for_path(dataset_path)
    if d is not None and 0 <= int(label) < len(d.classes) and d.classes[label] != str(label):
        return f"class {label} ({d.classes[label]})"
    return f"class {label}"


def parse_class(text: str, names: list[str]) -> int:
    """A class given by number or by name (case and punctuation ignored, a unique prefix
    will do: ``trouser``, ``t-shirt``, ``ankle``); ValueError names the choices."""
    text = text.strip()
    if text.isdigit() and int(text) < len(names):
        return int(text)

    def key(s: str) -> str:
        return "".join(ch for ch in s.lower() if ch.isalnum())

    want = key(text)
    plural = want[:-1] if want.endswith("s") else want  # "trousers", "sandals"
    exact = [k for k, n in enumerate(names) if key(n) in (want, plural)]
    hits = exact or [k for k, n in enumerate(names) if want and key(n).startswith(want)]
    if len(hits) == 1:
        return hits[0]
    choices = ", ".join(f"{k} {n}" if n != str(k) else n for k, n in enumerate(names))
    what = "is ambiguous" if hits else "is not a class of this model"
    raise ValueError(f"class {text!r} {what}; choose one of: {choices}")

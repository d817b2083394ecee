"""The score machines and boundaries: the one table the core, the command line and the
window read (names, labels, which boundary each is defined for, the default for a
model's padding, where its calibrated P(t) is kept).

No torch or numpy here: the command line builds its parser from this table before
anything heavy is imported.
"""

from __future__ import annotations

from dataclasses import dataclass

BOUNDARIES = ("zeros", "circular")


@dataclass(frozen=True)
class Machine:
    name: str  # on the command line, in settings, specs and file names
    label: str  # in the window, captions and exports (the command-line name in brackets
    # where the paper's abbreviation differs from it)
    description: str  # tooltip and help text
    boundaries: tuple[str, ...]  # the boundaries it is defined for, preferred first
    default_for: tuple[str, ...]  # the model paddings for which it is the default machine
    # Key of its schedule in a checkpoint's calibrated_p; None: it compares whole images,
    # so it has no receptive field P to calibrate or choose.
    calibration_key: str | None

    @property
    def has_patch_size(self) -> bool:
        return self.calibration_key is not None


TABLE = (
    Machine(
        "bbels",
        "bbELS",
        "boundary-broken ELS: the paper's model of zero-padded CNNs (zero boundary)",
        ("zeros",),
        ("zeros",),
        "bbels",
    ),
    Machine(
        "els",
        "ELS",
        "equivariant local score machine: any patch, any location",
        BOUNDARIES,
        ("circular",),
        "els",
    ),
    Machine(
        "ls",
        "LS",
        "local score machine: the patch at the same location only",
        BOUNDARIES,
        (),
        "ls",
    ),
    Machine(
        "ideal",
        "IS (ideal)",
        "ideal score machine: whole images (memorises the training set)",
        BOUNDARIES,
        (),
        None,
    ),
)

_BY_NAME = {m.name: m for m in TABLE}
MACHINES = tuple(_BY_NAME)
# The machines whose P(t) can be calibrated against a model.
CALIBRATABLE = tuple(m.name for m in TABLE if m.calibration_key is not None)


def machine(name: str) -> Machine:
    """The table entry of ``name``; ValueError names the known machines."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown machine {name!r}; choose one of {', '.join(MACHINES)}") from None


def label(name: str) -> str:
    """How the window and exports show ``name`` (the name itself if it is unknown)."""
    m = _BY_NAME.get(name)
    return m.label if m is not None else name


def check_boundary(boundary: str) -> None:
    if boundary not in BOUNDARIES:
        raise ValueError(f"unknown boundary {boundary!r}; choose one of {', '.join(BOUNDARIES)}")


def check_pair(name: str, boundary: str) -> None:
    """ValueError unless ``name`` is a machine defined for ``boundary``."""
    m = machine(name)
    check_boundary(boundary)
    if boundary not in m.boundaries:
        raise ValueError(
            f"{m.name} is defined for the {' or '.join(m.boundaries)} boundary only; "
            f"with a {boundary} boundary use {default_machine(boundary)}"
        )


def default_machine(padding: str) -> str:
    """The machine that models a CNN with this padding (bbels for zeros, els for
    circular)."""
    for m in TABLE:
        if padding in m.default_for:
            return m.name
    check_boundary(padding)
    raise AssertionError(f"no default machine for padding {padding!r}")


def fit_boundary(name: str, boundary: str) -> str:
    """``boundary`` if ``name`` is defined for it, else the machine's preferred one:
    for a window that must always hold a valid pair."""
    m = machine(name)
    return boundary if boundary in m.boundaries else m.boundaries[0]

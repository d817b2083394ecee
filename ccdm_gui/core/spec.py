"""What a comparison run is (an immutable, hashable spec) and what it yields.

Trajectories hold numpy copies, so they can cross threads and be cached freely.
Index 0 of every per-step array is the noisiest step (t = 1), the last is t = 1/n.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .machine_registry import check_pair


@dataclass(frozen=True)
class RunSpec:
    model: str
    dataset: str
    subset: int = 1000
    seed: int = 0
    label: int | None = None
    steps: int = 20
    machine: str = "bbels"
    boundary: str = "zeros"
    patch_size: int | None = None  # None: follow the model's calibrated P(t)
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_pair(self.machine, self.boundary)
        if self.patch_size is not None and (self.patch_size < 1 or self.patch_size % 2 == 0):
            raise ValueError(f"patch size must be a positive odd number, got {self.patch_size}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")

    def cnn_key(self) -> tuple:
        """What the CNN trajectory depends on (not the dataset, machine, P or boundary)."""
        return (self.model, self.seed, self.label, self.steps, self.device)

    def machine_key(self) -> tuple:
        return (
            self.model,
            self.dataset,
            self.subset,
            self.seed,
            self.label,
            self.steps,
            self.machine,
            self.boundary,
            self.patch_size,
            self.device,
        )

    def with_(self, **changes) -> RunSpec:
        return replace(self, **changes)


@dataclass
class CNNTrajectory:
    t: np.ndarray  # [T] float64
    x_t: np.ndarray  # [T, C, H, W] float32
    x0: np.ndarray  # [T, C, H, W] float32
    final: np.ndarray  # [C, H, W] the sample (x at t = 0)


@dataclass
class MachineTrajectory:
    t: np.ndarray  # [T]
    patch_size: np.ndarray  # [T] int, the P used at each step
    x_t: np.ndarray  # [T, C, H, W]
    x0: np.ndarray  # [T, C, H, W]
    source_index: np.ndarray  # [T, H, W] int64, index into the (class-filtered) training subset
    source_yx: np.ndarray  # [T, H, W, 2] int64, centre of the winning patch in that image
    weight: np.ndarray  # [T, H, W] float32, winning softmax weight
    entropy: np.ndarray  # [T, H, W] float32, nats
    final: np.ndarray  # [C, H, W]
    train_indices: np.ndarray  # [N] int64: subset position -> index in the full dataset
    # [N] int64 class label of each training image; None: the dataset has no labels.
    train_labels: np.ndarray | None = None
    # [T, H, W] int32: the pixel's candidates identical to its winning patch (the
    # winner included), and the training images holding such a copy
    # (machines.sharing); None in files saved without them.
    shared_count: np.ndarray | None = None
    shared_images: np.ndarray | None = None


@dataclass
class Comparison:
    spec: RunSpec
    cnn: CNNTrajectory
    machine: MachineTrajectory
    correlation: np.ndarray  # [T] correlation of the two x0_hat at each step

    @property
    def final_correlation(self) -> float:
        from .metrics import correlation

        return correlation(self.cnn.final, self.machine.final)

"""Run a comparison: the CNN's DDIM trajectory beside a score machine's, from the same noise.

Everything here is Qt-free and may run on a worker thread: results are numpy copies,
progress goes through callbacks, and cancellation is checked between steps.

    loading           the model and training images a run reads, and the disk caches
    patch_schedule    the receptive field P of each step
    runs              the CNN part, the machine part, and the two as one comparison
    trajectory_cache  finished trajectories kept by what each depends on
    files             a comparison as one .npz file
"""

from ..sampler import Cancelled
from .files import load_comparison, save_comparison
from .loading import CACHES, TrainingSet, load_model, load_training_images, model_info
from .patch_schedule import DEFAULT_SCHEDULE, patch_schedule, schedule_for
from .runs import (
    Timing,
    assemble_comparison,
    cnn_label,
    cnn_trajectory,
    machine_trajectory,
    run_cnn,
    run_comparison,
    run_machine,
)
from .trajectory_cache import TrajectoryCache

__all__ = [
    "CACHES",
    "DEFAULT_SCHEDULE",
    "Cancelled",
    "Timing",
    "TrainingSet",
    "TrajectoryCache",
    "assemble_comparison",
    "cnn_label",
    "cnn_trajectory",
    "load_comparison",
    "load_model",
    "load_training_images",
    "machine_trajectory",
    "model_info",
    "patch_schedule",
    "run_cnn",
    "run_comparison",
    "run_machine",
    "save_comparison",
    "schedule_for",
]

"""The score machines of Kamb & Ganguli: IS, LS, ELS and bbELS denoisers with provenance.

Each machine is exact softmax attention of noisy patches over training patches;
``candidates`` says which patches compete where, ``routes`` which implementation
computes each softmax (window sums, the compiled fold, numba's pass or torch).
"""

from ..machine_registry import BOUNDARIES, MACHINES
from .api import MachineOutput, machine_denoise, top_candidates
from .candidates import logit_count

__all__ = [
    "BOUNDARIES",
    "MACHINES",
    "MachineOutput",
    "logit_count",
    "machine_denoise",
    "top_candidates",
]

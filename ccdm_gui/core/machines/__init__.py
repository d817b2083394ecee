"""The score machines of Kamb & Ganguli: IS, LS, ELS and bbELS denoisers with provenance.

Each machine is exact softmax attention of noisy patches over training patches,
streamed in chunks (see ``streaming``); ``candidates`` says which patches compete where.
"""

from ..machine_registry import BOUNDARIES, MACHINES
from .api import MachineOutput, machine_denoise, top_candidates
from .candidates import candidate_count

__all__ = [
    "BOUNDARIES",
    "MACHINES",
    "MachineOutput",
    "candidate_count",
    "machine_denoise",
    "top_candidates",
]

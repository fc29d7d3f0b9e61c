"""Backends run trial segments as jobs: local processes, simulated, or Slurm.

The config's ``backend:`` names one; ``backend_class`` is the one place that maps the name to a
class. Everything else asks the class or its instance what it can do (``Backend.capabilities``).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .base import Backend, Capabilities, Clock, JobSpec, JobState, SegmentSpec, SubmitError, WorkerSpec

if TYPE_CHECKING:
    from ..config import ExperimentConfig

NAMES = ("local", "simulated", "slurm")


def backend_class(name: str) -> type[Backend]:
    """The class of the backend the config names (imported on demand: the simulated one needs
    numpy, the others submitit)."""
    if name == "local":
        from .local import LocalBackend

        return LocalBackend
    if name == "simulated":
        from .simulated import SimulatedBackend

        return SimulatedBackend
    if name == "slurm":
        from .slurm import SlurmBackend

        return SlurmBackend
    from ..errors import AshaError

    raise AshaError(f"backend: unknown backend '{name}'")


def capabilities(cfg: ExperimentConfig) -> Capabilities:
    """What the configured backend does, without making one (the replayed state, status)."""
    return backend_class(cfg.backend).capabilities(cfg)


def make_backend(cfg: ExperimentConfig, exp_root: Path) -> Backend:
    """The backend the config names, for the experiment folder ``exp_root``."""
    return backend_class(cfg.backend).from_config(cfg, exp_root)


def log_files(jobs_dir: Path, job_id: str) -> tuple[Path | None, Path | None]:
    """The stdout and stderr files of a job of any backend (the job id says whose it is)."""
    for name in NAMES:
        found = backend_class(name).log_files(jobs_dir, job_id)
        if found is not None:
            return found
    return None, None


__all__ = ["Backend", "Capabilities", "Clock", "JobSpec", "JobState", "SegmentSpec", "SubmitError",
           "WorkerSpec", "backend_class", "capabilities", "make_backend", "log_files"]

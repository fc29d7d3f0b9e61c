"""Backends run trial segments as jobs: local processes, simulated, or Slurm."""
from .base import Backend, Clock, JobState, SegmentSpec, SubmitError

__all__ = ["Backend", "Clock", "JobState", "SegmentSpec", "SubmitError"]

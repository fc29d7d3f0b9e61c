"""asha_hpc: asynchronous successive halving (ASHA) hyperparameter search for Slurm GPU clusters.

Training code imports only ``Trial``, ``InvalidHP`` and ``TrainingEndedEarly`` from here;
everything else is the master's business.
"""
from .errors import AshaError, ConfigError, InvalidHP, TrainingEndedEarly
from .job.trial import Segment, Trial

__all__ = ["Trial", "Segment", "InvalidHP", "TrainingEndedEarly", "AshaError", "ConfigError",
           "__version__"]


def __getattr__(name: str) -> str:
    """``__version__``: the installed release's (pyproject.toml's), looked up when asked, so
    that a job importing ``Trial`` does not pay for importlib.metadata."""
    if name != "__version__":
        raise AttributeError(f"module 'asha_hpc' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("asha-hpc")
    except PackageNotFoundError:  # the source tree on sys.path, not installed
        return "unknown (not installed)"

"""asha_hpc: asynchronous successive halving (ASHA) hyperparameter search for Slurm GPU clusters.

Training code imports only ``Trial``, ``InvalidHP`` and ``TrainingEndedEarly`` from here;
``run`` and ``resume`` start a search from Python, ``load`` reads one, ``watch`` shows one
live, ``pause`` and ``cancel`` stop one (``api.py``),
imported when first used so that a job importing ``Trial`` does not import the master.
"""
from typing import TYPE_CHECKING, Any

from .errors import AshaError, ConfigError, InvalidHP, TrainingEndedEarly
from .job.trial import Segment, Trial

if TYPE_CHECKING:
    from .api import SearchFailed, SearchResult, cancel, load, pause, resume, run, watch

__all__ = ["Trial", "Segment", "InvalidHP", "TrainingEndedEarly", "AshaError", "ConfigError",
           "run", "resume", "load", "watch", "pause", "cancel", "SearchResult", "SearchFailed",
           "__version__"]
_API = ("run", "resume", "load", "watch", "pause", "cancel", "SearchResult", "SearchFailed")


def __getattr__(name: str) -> Any:
    """``run`` and the API's types (``api.py``), and ``__version__``: the installed release's
    (pyproject.toml's), looked up when asked, so that a job importing ``Trial`` does not pay
    for importlib.metadata."""
    if name in _API:
        from . import api

        return getattr(api, name)
    if name != "__version__":
        raise AttributeError(f"module 'asha_hpc' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("asha-hpc")
    except PackageNotFoundError:  # the source tree on sys.path, not installed
        return "unknown (not installed)"

"""asha_hpc: asynchronous successive halving (ASHA) hyperparameter search for Slurm GPU clusters.

Training code imports only ``Trial``, ``InvalidHP`` and ``TrainingEndedEarly`` from here;
everything else is the master's business.
"""
from .errors import AshaError, ConfigError, InvalidHP, TrainingEndedEarly
from .job.trial import Segment, Trial

__version__ = "0.1.0"
__all__ = ["Trial", "Segment", "InvalidHP", "TrainingEndedEarly", "AshaError", "ConfigError",
           "__version__"]

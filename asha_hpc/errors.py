"""Exceptions that carry a message meant for a person.

Every error a user can cause (a bad config, a corrupt file, a second master) is one of these:
the CLI prints its message on one line and exits non-zero, without a traceback.
"""
from __future__ import annotations

import errno
import shlex
from collections.abc import Iterable

# a full filesystem or an exhausted quota: a fault of the machine, never of a trial
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def shell_word(path: object) -> str:
    """A path as the commands a message tells a person to run need it: quoted for the shell
    when it holds a space or another special character, as it is otherwise."""
    return shlex.quote(str(path))


def shown(value: object) -> str:
    """A value as a one-line message shows it: its repr, cut at 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class AshaError(Exception):
    """An error whose message is complete and actionable as it is."""


class ConfigError(AshaError):
    """A config (or hyperparameter spec) with one or more problems, all reported at once.

    Each problem names its path in the file, e.g. ``searcher.divisor: must be > 1, got 1``.
    """

    def __init__(self, problems: Iterable[str], source: str = "") -> None:
        self.problems: list[str] = list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        if len(self.problems) == 1:
            msg = f"{head}invalid config: {self.problems[0]}"
        else:
            msg = f"{head}invalid config ({len(self.problems)} problems):\n" + "\n".join(
                f"  - {p}" for p in self.problems
            )
        super().__init__(msg)


class InvalidHP(Exception):
    """Raised by training code for hyperparameters it cannot train.

    The trial leaves the search without counting toward ``max_trials`` and a replacement is
    sampled (spec section 2c).
    """


class LeaseHeldError(AshaError):
    """Another master holds the experiment directory."""


class JournalFull(AshaError):
    """The master cannot write its journal: the disk is full or (``quota``) the quota
    exhausted."""

    def __init__(self, message: str, quota: bool = False) -> None:
        super().__init__(message)
        self.quota = quota


class MasterDiskFull(AshaError):
    """The master's own write (its journal, a job's files) found the disk full or the quota
    exhausted: it stopped there, nothing lost. ``path``: what it was writing (or the folder);
    ``quota``: EDQUOT. ``launch.run_master`` waits for room and resumes the search."""

    def __init__(self, message: str, path: str, quota: bool) -> None:
        super().__init__(message)
        self.path = path
        self.quota = quota


class FatalTrialError(AshaError):
    """An error that will repeat for every trial (an entry point that does not exist, the
    searcher's metric never reported, a command that cannot run): the job says so in its
    result and the search stops at the first one, instead of spending a job on each trial."""


class TrainingEndedEarly(AshaError):
    """Something in the training code other than the search ended a trial's training before
    its segment's length (an early-stopping callback, a library's own early stopping, a time
    limit of the framework's own). Raised after ``segment.report(...)`` in the same segment,
    the model is final: the result stands for this segment and for any promotion, which needs
    no more training. Raised without one, the trial ends with the results it reported so far,
    failed, and is not retried, since a retry would stop the same way."""

    reported: dict | None = None  # a command's report for the segment (set by the job)
    reached: int | None = None  # ... and its reached line, where it left no checkpoint


def ended_early_by_optuna(e: BaseException) -> TrainingEndedEarly | None:
    """Optuna's ``TrialPruned`` (``optuna.TrialPruned``, ``optuna.exceptions.TrialPruned``),
    kept by an Optuna user's loop, as what it means here: ``TrainingEndedEarly`` (the trial
    ends with what it reported; a retry would prune it alike). None for any other error."""
    kind = type(e)
    if kind.__name__ != "TrialPruned" or kind.__module__.split(".")[0] != "optuna":
        return None
    return TrainingEndedEarly(f"optuna.TrialPruned{': ' + str(e) if str(e) else ''} (ended as "
                              f"asha_hpc.TrainingEndedEarly is)")


class AttemptSuperseded(BaseException):
    """The master took this job's attempt for dead (it found the job frozen) and retries it
    elsewhere: the job publishes nothing more. A BaseException, as KeyboardInterrupt is, so that
    the training code's ``except Exception`` does not carry on past it."""


class MetricNotReported(FatalTrialError, ValueError):
    """The training code did not report the searcher's metric."""

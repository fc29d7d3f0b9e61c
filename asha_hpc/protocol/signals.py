"""The signals that tell a running job to save where it is and stop, who sends each, and the
name a result records for it (``stop_reason``).

Slurm delivers a signal to every process of a job step, not only to the job's own Python:
the ``sh`` of a command wrapper, torchrun, a DataLoader's workers. A signal whose default action
ends a process kills those before the training script can checkpoint, so the signals the
search itself sends are ones that end nobody by default: the job's Python (jobmain) alone
catches them and tells the command through its stop file."""
from __future__ import annotations

#: Slurm's warning before a job's time limit (``sbatch --signal=USR2@...``); jobs start their
#: command with it ignored
TIME_LIMIT = "SIGUSR2"
#: ``asha-hpc pause`` on Slurm (``scancel --signal=URG``): SIGURG's default action is to ignore
#: it, so every other process of the job lives on
PAUSE = "SIGURG"
#: ``scancel`` (``asha-hpc cancel``, a user's own), a preemption, Slurm's end of a job
TERMINATE = "SIGTERM"
#: what a job catches and turns into its trial's stop
CAUGHT = (TIME_LIMIT, TERMINATE, PAUSE)

_CAUSES = {TIME_LIMIT: "time limit", PAUSE: "asha-hpc pause"}


def cause(stop_reason: str | None) -> str:
    """What stopped a job, for people: ``SIGURG: asha-hpc pause``; ``stop`` when unknown."""
    if not stop_reason:
        return "stop"
    return f"{stop_reason}: {_CAUSES[stop_reason]}" if stop_reason in _CAUSES else stop_reason

"""The kinds of journal records (what each holds: state.py's docstring, which replays them).

``Kind`` is a ``str`` enum, so a member is the very string the journal stores (``Kind.RESULT ==
"result"``) and journals written before it existed read unchanged. state.py dispatches on it
through one table, ``ExperimentState.HANDLERS``; a kind missing from the table is a record of a
newer release, refused with one line.
"""
from __future__ import annotations

import enum


class Kind(str, enum.Enum):
    INIT = "init"
    RESUMED = "resumed"
    STOPPED = "stopped"
    INTENT = "intent"
    SUBMITTED = "submitted"
    SUBMIT_FAILED = "submit_failed"
    STARTED = "started"
    RESULT = "result"
    RETRY_FAILED = "retry_failed"
    JOB_DEAD = "job_dead"
    TRIAL_FAILED = "trial_failed"
    WORKERS = "workers"
    WORKERS_SUBMITTED = "workers_submitted"
    WORKER_READY = "worker_ready"
    WORKER_GONE = "worker_gone"
    WORKERS_MODE = "workers_mode"
    SAMPLED = "sampled"
    CHECKPOINTS_REMOVED = "checkpoints_removed"
    CANCELLED = "cancelled"
    DONE = "done"
    ABORTED = "aborted"

    def __str__(self) -> str:  # the journal's spelling in messages and f-strings
        return self.value

"""The journal's records: their kinds and one typed constructor per kind.

``Kind`` is a ``str`` enum, so a member is the very string the journal stores (``Kind.RESULT ==
"result"``) and journals written before it existed read unchanged. state.py dispatches on it
through one table, ``ExperimentState.HANDLERS``; a kind missing from the table is a record of a
newer release, refused with one line. state.py's docstring says what each kind means.

Every writer builds a record here (``Intent(trial=3, segment=0, attempt=0, length=4)``) and the
master journals ``rec.to_record()``: the JSON object the journal stores, ``kind`` included, with
``time``, ``seq`` and ``epoch`` added by the master and the journal. Replay reads those dicts back
(``rec.get`` for every optional field: an older release's records lack the newer fields), so the
classes here are for writing only, like Optuna's ``JournalOperation`` logs.

A field declared with ``optional(default)`` is left out of the record while it holds its default:
that is how earlier releases wrote it (a ``worker_ready`` without ``host``, a ``job_dead`` without
``disk_full``), and replay reads a missing field as that default. ``UNSET`` is the default of the
few optional fields that are written even when ``None`` (an intent's ``timeout_min`` is ``None``
for "the backend's default limit", and absent where no limit was planned).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


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
    MAX_COMPUTE = "max_compute"
    NODES_READMITTED = "nodes_readmitted"
    JOB_DEAD = "job_dead"
    WORKERS = "workers"
    WORKERS_SUBMITTED = "workers_submitted"
    WORKER_READY = "worker_ready"
    WORKER_GONE = "worker_gone"
    WORKERS_MODE = "workers_mode"
    SAMPLED = "sampled"
    WARM_START = "warm_start"
    CHECKPOINTS_REMOVED = "checkpoints_removed"
    CANCELLED = "cancelled"
    DONE = "done"
    ABORTED = "aborted"

    def __str__(self) -> str:  # the journal's spelling in messages and f-strings
        return self.value


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def optional(default: Any = None) -> Any:
    """A field left out of the record while it holds ``default``."""
    return field(default=default, metadata={"optional": True})


@dataclass(frozen=True, kw_only=True)
class Record:
    """One journal record; subclasses name their ``kind`` and declare its fields."""

    kind: ClassVar[Kind]

    def to_record(self) -> dict[str, Any]:
        """The JSON object the journal stores."""
        rec: dict[str, Any] = {"kind": self.kind.value}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.metadata.get("optional") and v is f.default:
                continue
            rec[f.name] = v
        return rec


# ---------------------------------------------------------------- the master's lifecycle
@dataclass(frozen=True, kw_only=True)
class Init(Record):
    kind = Kind.INIT
    seed: int | None
    config_hash: str | None = optional()  # b885ae9 and earlier wrote none
    # what the hash is of, so that a refusal can name what changed (901715f and earlier: none)
    pinned: dict[str, Any] | None = optional()
    # the master's rules the journal was written under (state.RULES; 5096112 and earlier: none)
    rules: int | None = optional()


@dataclass(frozen=True, kw_only=True)
class Resumed(Record):
    kind = Kind.RESUMED
    pid: int


@dataclass(frozen=True, kw_only=True)
class Stopped(Record):
    kind = Kind.STOPPED
    reason: str
    # a pause's ("paused"): running jobs told to save and stop, queued ones withdrawn, waiting
    # pool workers told to leave, and the jobs cancelled after the grace (still running then)
    jobs: int | None = optional()
    queued: int | None = optional()
    workers: int | None = optional()
    cancelled: list[str] | None = optional()


@dataclass(frozen=True, kw_only=True)
class RetryFailed(Record):
    kind = Kind.RETRY_FAILED
    trials: list[int]
    # failures of attempts started before this record ran the code before the fix: retried,
    # uncounted (journals written before this field keep counting them, as their masters did)
    before_fix_free: bool | None = optional()


@dataclass(frozen=True, kw_only=True)
class MaxCompute(Record):
    """``resume --max-compute``: the search's cap on all training from here on (the config's
    ``searcher.max_compute`` until the first such record)."""
    kind = Kind.MAX_COMPUTE
    units: int
    was: int | None  # the cap before it (None: none)


@dataclass(frozen=True, kw_only=True)
class NodesReadmitted(Record):
    """``resume --readmit-node``: excluded nodes taken back (repaired); they are judged afresh."""
    kind = Kind.NODES_READMITTED
    hosts: list[str]
    # taken back by the master itself, this many hours after the exclusion
    # (``readmit_nodes_after_h``, doubled for each exclusion before)
    after_h: float | None = optional()


@dataclass(frozen=True, kw_only=True)
class Cancelled(Record):
    kind = Kind.CANCELLED


@dataclass(frozen=True, kw_only=True)
class Done(Record):
    kind = Kind.DONE
    state: str  # completed | failed
    message: str | None = optional()


@dataclass(frozen=True, kw_only=True)
class Aborted(Record):
    kind = Kind.ABORTED
    message: str
    state: str = "failed"


# ---------------------------------------------------------------- segment attempts
@dataclass(frozen=True, kw_only=True)
class Attempt(Record):
    """A record about one attempt of one segment of one trial (its ``attempt_key``)."""

    trial: int
    segment: int
    attempt: int


@dataclass(frozen=True, kw_only=True)
class Intent(Attempt):
    """About to submit an attempt, or to hand it to the waiting job ``worker`` (slot ``slot``,
    in job ``job_id``); with a planned time limit, its fields (timelimits.Limit.record)."""

    kind = Kind.INTENT
    length: int
    timeout_min: int | None = optional(UNSET)
    split: bool | None = optional()
    basis: str | None = optional()
    estimate_s: float | None = optional()
    worker: str | None = optional()
    slot: int | None = optional()
    job_id: str | None = optional(UNSET)


@dataclass(frozen=True, kw_only=True)
class Submitted(Attempt):
    kind = Kind.SUBMITTED
    job_id: str


@dataclass(frozen=True, kw_only=True)
class SubmitFailed(Attempt):
    kind = Kind.SUBMIT_FAILED
    error: str
    worker: str | None = optional()  # the waiting job the segment was handed to had left
    # the scheduler could not take a job now (its controller was down, a limit on queued jobs):
    # the same submission goes through later, so this counts nothing
    transient: bool = optional(False)


@dataclass(frozen=True, kw_only=True)
class Started(Attempt):
    kind = Kind.STARTED
    job_id: str | None
    host: str | None
    # the master saw the job running (the scheduler's word); without it, the job's own message:
    # its code ran
    by_scheduler: bool = optional(False)


@dataclass(frozen=True, kw_only=True)
class Result(Started):
    """A job's result message as journaled (messages.Result.record): where the attempt ran
    (``Started``'s fields), how it ended, and the optional fields a job sends when it can."""

    kind = Kind.RESULT
    status: str
    metrics: dict[str, Any] | None
    length: int | None
    error: str | None
    checkpoint: str | None
    started: float | None
    ended: float | None
    stop_reason: str | None
    gpus: int | None = optional()
    fatal: bool = optional(False)
    # the training code ended the trial's training early (an early-stopping callback): the
    # trial fails now, without a retry
    ends_trial: bool = optional(False)
    # the call of the code that ran this attempt started from a checkpoint
    restored: bool = optional(False)
    # it ran in a warm worker's process that had run the code before (an error may be the
    # process's: state a library keeps per process)
    reused: bool = optional(False)
    # "path (why)" of newer checkpoints the attempt found incomplete and could not go on from
    skipped_checkpoints: list[str] | None = optional()
    # the checkpoint the attempt could have gone on from, which its code never asked for
    ignored_checkpoint: str | None = optional()
    # a completed segment short of max_length after which the trial has no checkpoint at all
    no_checkpoint: bool = optional(False)
    # journaled by the master, no job ran: a trial whose training ended on purpose (the model
    # is final) promoted to this segment's length
    carried: bool = optional(False)
    job_started: float | None = optional()
    reached: float | None = optional()
    worker: str | None = optional()
    slot: int | None = optional()
    waiting: bool | None = optional()
    handoff: int | None = optional()  # the slot format its waiting job reads (handoff.VERSION)
    disk_full: dict[str, Any] | None = optional()
    warnings: list[str] | None = optional()  # the code's mistakes its job noticed (job/notes.py)
    adopted: bool = optional(False)
    # the node of a rank of the trial that died silently and so failed the attempt, when it is
    # not the reporting rank's (``host``): the node the failure is held against
    failed_node: str | None = optional()


@dataclass(frozen=True, kw_only=True)
class JobDead(Attempt):
    kind = Kind.JOB_DEAD
    job_id: str | None
    state: str  # the backend's JobState value
    counts: bool  # counts against max_restarts
    disk_full: bool = optional(False)
    # why the master cancelled it while it was queued, to submit the segment again ("": it
    # did not): the job never ran
    withdrawn: str = optional("")
    host: str | None = optional()  # the node it ran on, where the backend knows it
    # why the master found it hung and cancelled it ("": it did not): its heartbeat stopped
    # while the scheduler still ran it (a frozen process, a node gone silent)
    hung: str = optional("")
    # why the result message it sent could not be read ("": none came, or it was read): the
    # message was torn or corrupted on its way, not the trial's doing
    unreadable: str = optional("")


@dataclass(frozen=True, kw_only=True)
class Sampled(Record):
    kind = Kind.SAMPLED
    trial: int
    hparams: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class WarmStart(Record):
    """``searcher.warm_start``: an earlier search's results, read once before the first trial
    (master/warmstart.py): per trial ``{"hparams", "losses": [[length, loss or None], ...]}``,
    lower is better, the configurations already as this space's."""
    kind = Kind.WARM_START
    source: str  # the earlier experiment folder, as resolved
    trials: list[dict[str, Any]]
    left_out: int  # its trials with results whose configuration is not one of this space
    why: str = optional("")  # the first of their reasons
    inherited: int = optional(0)  # of ``trials``, those from its own warm_start record


@dataclass(frozen=True, kw_only=True)
class CheckpointsRemoved(Record):
    kind = Kind.CHECKPOINTS_REMOVED
    trials: list[int]


# ---------------------------------------------------------------- jobs that wait (pool.py)
@dataclass(frozen=True, kw_only=True)
class Workers(Record):
    kind = Kind.WORKERS
    workers: list[str]
    timeout_min: int | None
    started: int  # pool jobs started so far, these included


@dataclass(frozen=True, kw_only=True)
class WorkersSubmitted(Record):
    kind = Kind.WORKERS_SUBMITTED
    jobs: dict[str, str]  # worker id -> job id


@dataclass(frozen=True, kw_only=True)
class WorkerReady(Record):
    kind = Kind.WORKER_READY
    worker: str
    slot: int
    job_started: float | None = optional()
    ready_at: float | None = optional()  # when it was ready, on the job's clock (newer jobs)
    host: str | None = optional()
    handoff: int | None = optional()  # the slot format it reads (handoff.VERSION; older: none)


@dataclass(frozen=True, kw_only=True)
class WorkerGone(Record):
    kind = Kind.WORKER_GONE
    workers: list[str]
    why: str
    # the job ended on its own before any of its workers was ready: its code never ran, or
    # failed before it could wait (``job_id``, and ``host`` where the scheduler names one)
    unready: bool = optional(False)
    job_id: str | None = optional()
    host: str | None = optional()


@dataclass(frozen=True, kw_only=True)
class WorkersMode(Record):
    """``workers: auto``'s choice with the numbers behind it (autoworkers.Decision.record)."""

    kind = Kind.WORKERS_MODE
    mode: str
    reason: str
    measured: bool
    segments: int
    startup_s: float | None = optional()
    queue_s: float | None = optional()
    train_s: float | None = optional()
    idle_s: float | None = optional()
    share: float | None = optional()

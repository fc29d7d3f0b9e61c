"""Jobs that wait for their next segment: the worker pool and in-place continuation.

Two kinds of waiting job, one bookkeeping:

- a **pool** worker (``local.workers`` / ``slurm.workers`` / ``simulated.pool``) is a long-lived
  job that holds its GPU and runs segment after segment of any trial;
- a **continuing** segment job (``continue_in_place``) waits briefly after its segment for the
  same trial's next one, and exits when the searcher does not continue that trial at once.

The master learns that a job waits from its messages (a pool worker's ``ready``, a result with
``waiting``) and hands it work through its slots (handoff.py). Like the rest of the state,
this is rebuilt from the journal (``Pool.apply_*`` are called by state.py), so a resumed master
knows which worker waits on which slot. The policy questions (does a segment fit before the job's
time limit? should an idle worker leave?) are pure functions here too.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

POOL = "pool"
CONTINUE = "continue"

STARTING = "starting"  # submitted, not heard from (queued, importing)
IDLE = "idle"  # waits on ``slot``
BUSY = "busy"  # runs a segment of ``trial``
GONE = "gone"  # exited, died, or told to exit

#: seconds kept free before a job's time limit when deciding whether a segment fits
FIT_MARGIN_S = 30.0
#: pool jobs that end before their code runs (a setup line, environment or mount missing where
#: they run): this many in a row stop a search where nothing ever worked, and slow the pool of
#: one that has (the master's loop)
UNREADY_STREAK = 3


@dataclass
class Worker:
    id: str
    kind: str  # POOL | CONTINUE
    job_id: str | None = None
    status: str = STARTING
    slot: int = 0  # the slot it waits on (IDLE) or runs (BUSY)
    trial: int | None = None  # the trial it runs (BUSY) or may continue (CONTINUE, IDLE)
    limit_min: int | None = None  # its job's time limit
    job_started: float | None = None
    idle_since: float | None = None
    segments: int = 0  # segments it completed
    host: str | None = None  # where it runs (from its messages)
    handoff: int | None = None  # the slot format it reads (handoff.VERSION), from its messages

    @property
    def deadline(self) -> float | None:
        """When its job's time limit ends (None: no limit, or not known yet)."""
        if self.limit_min is None or self.job_started is None:
            return None
        return self.job_started + 60.0 * self.limit_min


class Pool:
    """All waiting-capable jobs of an experiment, by worker id."""

    def __init__(self) -> None:
        self.workers: dict[str, Worker] = {}
        self.live: dict[str, Worker] = {}  # those not GONE: what each poll looks at
        self.started = 0  # pool workers ever submitted (numbers the next one)
        self.ever_ready = False  # a pool job reached its code and waited for work
        # pool jobs that ended before any of their workers was ready, since a pool job was last
        # ready (their worker_gone records): the master stops or slows the pool on them
        self.unready: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ queries
    def alive(self, kind: str | None = None) -> list[Worker]:
        return [w for w in self.live.values() if kind is None or w.kind == kind]

    def idle(self) -> list[Worker]:
        return [w for w in self.live.values() if w.status == IDLE]

    def job_ids(self) -> list[str]:
        """Job ids of live pool workers (a job may hold several lanes)."""
        return sorted({w.job_id for w in self.alive(POOL) if w.job_id})

    # ------------------------------------------------------------------ apply (from state.py)
    def on_workers(self, rec: dict[str, Any]) -> None:
        """``workers``: pool jobs about to be submitted (lane ids, time limit)."""
        for wid in rec["workers"]:
            self._set(Worker(id=wid, kind=POOL, limit_min=rec.get("timeout_min")), STARTING)
        self.started = max(self.started, int(rec.get("started", self.started)))

    def on_workers_submitted(self, rec: dict[str, Any]) -> None:
        for wid, jid in rec["jobs"].items():
            if wid in self.workers:
                self.workers[wid].job_id = jid

    def on_ready(self, rec: dict[str, Any]) -> None:
        self.ever_ready = True
        self.unready.clear()
        w = self.workers.get(rec["worker"])
        if w is None or w.status == GONE:
            return
        self._set(w, IDLE)
        w.slot, w.idle_since = int(rec["slot"]), rec.get("time")
        if isinstance(rec.get("job_started"), (int, float)):
            w.job_started = float(rec["job_started"])
        w.host = rec.get("host") or w.host
        w.handoff = rec.get("handoff")

    def on_result(self, rec: dict[str, Any], job_id: str | None,
                  limit_min: int | None) -> None:
        """A result from a job that can wait: it now waits on ``slot`` (or has left)."""
        wid = rec.get("worker")
        if not isinstance(wid, str):
            return
        w = self.workers.get(wid)
        if w is None:  # a segment job that may continue in place
            w = self.workers[wid] = Worker(id=wid, kind=CONTINUE, job_id=job_id, limit_min=limit_min)
            if isinstance(rec.get("job_started"), (int, float)):
                w.job_started = float(rec["job_started"])
        w.host = rec.get("host") or w.host
        if rec.get("status") == "completed":
            w.segments += 1
        if w.status == GONE:
            return
        if rec.get("waiting") and isinstance(rec.get("slot"), int):
            self._set(w, IDLE)
            w.slot, w.trial, w.idle_since = rec["slot"], rec["trial"], rec.get("time")
            w.handoff = rec.get("handoff")
        else:
            self._set(w, GONE)

    def on_assigned(self, rec: dict[str, Any]) -> None:
        """An intent handed to a waiting job (``worker`` and ``slot`` in the record)."""
        w = self.workers.get(rec["worker"])
        if w is not None:
            self._set(w, BUSY)
            w.trial, w.idle_since = rec["trial"], None

    def on_gone(self, rec: dict[str, Any]) -> None:
        if rec.get("unready"):
            self.unready.append(rec)
        for wid in rec["workers"]:
            if wid in self.workers:
                self._set(self.workers[wid], GONE)

    def lanes_of_job(self, job_id: str) -> list[str]:
        return [w.id for w in self.live.values() if w.job_id == job_id]

    def _set(self, w: Worker, status: str) -> None:
        """The only place a worker's status changes: keeps ``live`` exact."""
        w.status = status
        self.workers[w.id] = w
        if status == GONE:
            self.live.pop(w.id, None)
        else:
            self.live[w.id] = w


def fits(w: Worker, now: float, estimate_s: float | None, safety: float = 1.5,
         warning_s: float = 0.0) -> bool:
    """True if a segment expected to take ``estimate_s`` ends before ``w``'s time limit less
    ``warning_s`` (Slurm's stop signal comes that early), with ``safety`` x the estimate and
    FIT_MARGIN_S to spare. Unknown estimate or no limit: True. A fresh worker takes a segment
    that does not fit all the same (no other job would have more time): it is stopped at the
    limit and continued elsewhere from its checkpoint, which costs a restart, never the result."""
    dl = w.deadline
    if dl is None or estimate_s is None or w.segments == 0:
        return True
    return now + safety * estimate_s + FIT_MARGIN_S <= dl - warning_s


@dataclass
class HandOver:
    """One step's hand-over decision (``match``): which waiting job gets which trial's next
    segment, which jobs leave, and which keep waiting."""

    plan: list[tuple[Worker, int]] = field(default_factory=list)  # (worker, trial id)
    release: list[Worker] = field(default_factory=list)
    waiting: list[Worker] = field(default_factory=list)  # given nothing, kept


def match(idle: Sequence[Worker], todo: Sequence[int],
          fit: Callable[[Worker, int], bool]) -> HandOver:
    """Hand the trials whose next segment waits (``todo``, in the searcher's order) to the
    waiting jobs (``idle``, in the pool's order), each worker in turn:

    - a continuing job gets its own trial's segment or nothing;
    - a pool worker gets its own trial's segment if it waits, else the first waiting one;
    - only a segment that ``fit``s before the job's time limit, and no segment twice.

    A job given nothing leaves (``release``) when it continues only its own trial or when
    segments still wait but none fits it; otherwise (``waiting``) ``surplus`` decides whether
    a segment can still come for it."""
    out = HandOver()
    waiting = set(todo)
    taken: set[int] = set()
    for w in idle:
        own = [w.trial] if w.trial is not None and w.trial in waiting else []
        candidates = own if w.kind == CONTINUE else own + list(todo)
        pick = next((t for t in candidates if t not in taken and fit(w, t)), None)
        if pick is not None:
            taken.add(pick)
            out.plan.append((w, pick))
        elif w.kind == CONTINUE or len(taken) < len(todo):
            out.release.append(w)
        else:
            out.waiting.append(w)
    return out


def to_start(want: int, size: int, alive: int, waiting_or_starting: int) -> int:
    """How many pool jobs to start: enough for the segments waiting to be assigned
    (``want``) beyond the workers idle or on their way, up to ``size`` alive."""
    return max(0, min(size - alive, want - waiting_or_starting))


def surplus(spare: Sequence[Worker], waiting: int, unfreed: int, more_work: bool,
            busy_jobs: Collection[str] = ()) -> list[Worker]:
    """The idle pool workers in ``spare`` (given nothing this step, in the master's order) to
    release now, because no segment can come for them; the rest keep waiting.

    A segment becomes runnable only when a trial's segment ends (the searcher promotes a trial
    or creates one in the slot it freed), and a pool worker that ends a segment waits for the
    next one itself. So a spare worker is needed only for segments that wait for no worker
    (``waiting``: queued but not handed over, e.g. held back until a first segment works) and
    for running segments whose end frees no pool worker (``unfreed``: segment jobs, jobs that
    continue only their own trial). Once the searcher hands out nothing more (``more_work``
    False) none is needed. Lanes of a job that runs a segment in another lane (``busy_jobs``)
    hold no GPU of their own: they are kept first, and never released while their job runs."""
    if not more_work:
        return list(spare)
    ranked = sorted(spare, key=lambda w: w.job_id not in busy_jobs)  # stable: else in order
    need = max(0, waiting + unfreed)
    held = set(busy_jobs) | {w.job_id for w in ranked[:need]}
    return [w for w in ranked[need:] if w.job_id is None or w.job_id not in held]


def worker_ids(first: int, count: int) -> Iterable[str]:
    return (f"w{i:04d}" for i in range(first, first + count))

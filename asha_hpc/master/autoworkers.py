"""``workers: auto``: warm workers or a job per segment, chosen from what the experiment measured.

A job per segment pays, for every segment, its queue wait and its start-up (interpreter, imports,
CUDA context, data) and holds its GPU only while it runs. A warm worker (pool.py) pays them once
and runs segment after segment in one process, but holds its GPU between segments. Which one is
cheaper depends on numbers only the running search knows, so the master measures them from the
journal (``AutoMeasure``, fed by state.py like the rest of the state, so ``status`` and a resumed
master see the same numbers) and asks ``decide``, a pure function, at every step:

- **start-up** per fresh job: the median of ``started - job_started`` of results whose job began
  with that segment (a job's first segment; a handed-over segment has no start-up), and for a
  pool worker the time to its ``ready`` message (``worker_ready.ready_at``): its first segment
  starts only when the master hands one over, and that wait is not start-up (journals of
  workers that sent no time fall back to the first segment);
- **queue wait** (Slurm, simulated; not local, where a job that waits for a slot would wait as
  long for a worker): the lower quartile of submission to job start, for segment jobs (intent to
  ``job_started``) and pool workers (``workers`` record to ``worker_ready.job_started``). The
  lower quartile, because the upper part is the search waiting for its own busy GPUs, which a
  pool waits for as well;
- **training** per segment: the mean of ``ended - started`` (a mean: the share below is the
  share of the *total* training);
- **idle** per segment of a warm worker: the mean time from its result to its next segment;
  before a pool ran, the median time the master takes to see a result (a warm worker waits
  that long). Waits that span a master's restart measure its downtime and are left out.

The rule, over the last WINDOW segments:

    saved = start-up + queue wait          (what a warm worker saves per segment)
    warm workers  when saved > share x training       (share: ``auto_workers_share``, 10%)
                  and idle < saved                     (a held, idle GPU costs less than it saves)
                  and two segments fit in a worker's time limit (Slurm ``timeout_min``)
    otherwise     a job per segment

Before MIN_SEGMENTS segments are measured the search starts with warm workers: a worker's first
segment costs what a segment job costs, so starting warm loses nothing, and long segments show
up in the first results. To keep a search near the threshold from switching back and forth, a
pool is left only when the share falls below ``share / HYSTERESIS`` or its idling exceeds
``saved x HYSTERESIS``, and entered only when idling stays under ``saved / HYSTERESIS``.
Every change of mode is journaled with its numbers (``workers_mode``; journals without it
replay as before).
"""
from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..protocol.metrics import finite_float
from ..protocol.records import WorkersMode
from .pool import FIT_MARGIN_S

if TYPE_CHECKING:
    from ..backends.base import Capabilities

POOL = "pool"
SEGMENT = "segment"
#: measurements over the last this many segments (and worker starts)
WINDOW = 32
#: segments measured before the first decision from measurements
MIN_SEGMENTS = 2
#: a pool is left only below share / HYSTERESIS (entered above share)
HYSTERESIS = 1.5
#: a worker must fit two segments (x this safety) in its time limit to be worth keeping
FIT_SAFETY = 1.5


@dataclass(frozen=True)
class Measures:
    """What a job per segment and a warm worker cost, per segment (seconds)."""

    segments: int = 0  # completed segments measured in the window
    startup_s: float | None = None
    queue_s: float | None = None
    train_s: float | None = None
    idle_s: float | None = None

    @property
    def saved_s(self) -> float | None:
        """What a warm worker saves per segment: a new job's start-up and queue wait."""
        if self.startup_s is None:
            return None
        return self.startup_s + (self.queue_s or 0.0)

    @property
    def share(self) -> float | None:
        """``saved_s`` as a share of the training per segment."""
        if self.saved_s is None or self.train_s is None:
            return None
        return self.saved_s / max(self.train_s, 1e-9)


@dataclass(frozen=True)
class Decision:
    mode: str  # POOL | SEGMENT
    reason: str
    measures: Measures
    measured: bool = True  # False: the prior (nothing measured yet) or a setting that forces it

    def record(self) -> WorkersMode:
        """The journal record of this decision."""
        m = self.measures

        def r4(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return WorkersMode(mode=self.mode, reason=self.reason, measured=self.measured,
                           segments=m.segments, startup_s=r4(m.startup_s), queue_s=r4(m.queue_s),
                           train_s=r4(m.train_s), idle_s=r4(m.idle_s), share=r4(m.share))

    def line(self) -> str:
        """One line for people (status, simulate)."""
        head = "warm workers" if self.mode == POOL else "a job per segment"
        return f"{head}: {self.reason}"


def _secs(x: float) -> str:
    if x < 0.1:
        return f"{x * 1000:.0f} ms"
    if x < 100:
        return f"{x:.1f} s"
    if x < 3600 * 2:
        return f"{x / 60:.1f} min"
    return f"{x / 3600:.1f} h"


def decide(m: Measures, share: float, current: str | None = None, *,
           lifetime_s: float | None = None, blocked: str | None = None) -> Decision:
    """The mode for the next segments (see the module doc). ``current``: the mode in use
    (None before the first decision); ``lifetime_s``: a pool worker's time limit (None: none);
    ``blocked``: why a pool cannot be used with this config (then: a job per segment)."""
    if blocked:
        return Decision(SEGMENT, blocked, m, measured=False)
    saved, ratio = m.saved_s, m.share
    if m.segments < MIN_SEGMENTS or saved is None or ratio is None or m.train_s is None:
        mode = current or POOL
        return Decision(mode, "until the first segments show their start-up and training",
                        m, measured=False)
    cost = f"start-up {_secs(m.startup_s or 0.0)}"
    if m.queue_s:
        cost += f" + queue {_secs(m.queue_s)}"
    cost += f" per segment = {100 * ratio:.0f}% of training ({_secs(m.train_s)} per segment)"
    if lifetime_s is not None and \
            2 * FIT_SAFETY * m.train_s + (m.startup_s or 0.0) + FIT_MARGIN_S > lifetime_s:
        return Decision(SEGMENT, f"segments of {_secs(m.train_s)} fit fewer than two in a "
                        f"worker's time limit ({_secs(lifetime_s)})", m)
    need = share / HYSTERESIS if current == POOL else share
    if ratio <= need:
        return Decision(SEGMENT, f"{cost}, not over {100 * need:.0f}%", m)
    # the same hysteresis for idling: a pool's own start-ups (its processes import the
    # training code at their first segment, not before they are ready) read shorter than a
    # segment job's, so without it the two rules handed a search back and forth
    idle_bound = saved * HYSTERESIS if current == POOL else saved / HYSTERESIS
    if m.idle_s is not None and m.idle_s >= idle_bound:
        return Decision(SEGMENT, f"{cost}, but a warm worker would sit idle "
                        f"{_secs(m.idle_s)} per segment, more than "
                        + ("that" if idle_bound == saved else f"{_secs(idle_bound)}"), m)
    return Decision(POOL, cost, m)


def pool_limits(caps: Capabilities) -> tuple[float | None, str | None]:
    """(a pool worker's time limit in seconds or None, why this config cannot keep warm
    workers or None), as the backend declares them (on Slurm a worker lives for the fixed
    ``timeout_min`` and holds one set of resources)."""
    if caps.no_pool:
        return None, caps.no_pool
    return caps.worker_lifetime_s, None


def decide_for(cfg: Any, auto: AutoMeasure, caps: Capabilities) -> Decision:
    """``decide`` for an experiment: its config's share, its backend's limits, its
    measurements and the mode it runs in (the master each step; ``status`` from the replayed
    journal)."""
    lifetime, blocked = pool_limits(caps)
    return decide(auto.measures(), cfg.auto_workers_share, auto.mode, lifetime_s=lifetime,
                  blocked=blocked)


def status(cfg: Any, auto: AutoMeasure, caps: Capabilities) -> dict[str, Any]:
    """``status``'s ``workers`` entry: the setting and, for auto, the mode with today's numbers."""
    setting = cfg.workers_setting
    out: dict[str, Any] = {"setting": setting}
    if setting != "auto":
        out["line"] = (f"{setting} warm worker{'s' if setting != 1 else ''}" if setting
                       else "0 (a job per segment)")
        return out
    d = decide_for(cfg, auto, caps)
    m = d.measures
    out.update(mode=d.mode, measured=d.measured, line=d.line(), changes=auto.changes,
               segments=m.segments, startup_s=m.startup_s, queue_s=m.queue_s, train_s=m.train_s,
               idle_s=m.idle_s, share=m.share, threshold=cfg.auto_workers_share)
    if auto.mode is not None and d.mode != auto.mode:  # the master decides at its next step
        out["line"] += f" (now {'warm workers' if auto.mode == POOL else 'a job per segment'})"
    return out


def _quantile(xs: deque[float], q: float) -> float:
    s = sorted(xs)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class AutoMeasure:
    """The measurements above, rebuilt from journal records (state.py calls ``on_*``).
    ``count_queue``: whether waits before a job starts are queue waits (not on the local
    backend, where they are waits for a free slot)."""

    def __init__(self, count_queue: bool) -> None:
        self.count_queue = count_queue
        self.mode: str | None = None  # the journaled mode (None: never decided)
        self.measured = False  # the journaled mode came from measurements
        self.last: dict[str, Any] | None = None  # the latest workers_mode record
        self.changes = 0
        self._startup: deque[float] = deque(maxlen=WINDOW)
        self._queue: deque[float] = deque(maxlen=WINDOW)
        self._train: deque[float] = deque(maxlen=WINDOW)
        self._idle: deque[float] = deque(maxlen=WINDOW)
        self._latency: deque[float] = deque(maxlen=WINDOW)
        self._intent: dict[tuple[int, int, int], float] = {}  # attempt -> its intent's time
        self._submitted: dict[str, float] = {}  # pool worker -> its ``workers`` record's time
        self._started_up: set[str] = set()  # pool workers whose start-up their ready measured
        self._waits_since: dict[str, float] = {}  # worker -> when it began waiting
        self._resumed_at = float("-inf")  # the latest master start after a stop or crash
        self._cache: Measures | None = None

    # ------------------------------------------------------------------ feeding (state)
    def on_intent(self, rec: dict[str, Any]) -> None:
        t = finite_float(rec.get("time"))
        if t is None:
            return
        self._intent[(rec["trial"], rec["segment"], rec["attempt"])] = t
        w = rec.get("worker")
        since = self._waits_since.pop(w, None) if isinstance(w, str) else None
        if since is not None:
            self._idle.append(max(t - since, 0.0))
            self._cache = None

    def on_result(self, rec: dict[str, Any]) -> None:
        t0 = self._intent.pop((rec["trial"], rec["segment"], rec["attempt"]), None)
        started, ended = finite_float(rec.get("started")), finite_float(rec.get("ended"))
        job_started, seen = finite_float(rec.get("job_started")), finite_float(rec.get("time"))
        if started is None or ended is None:
            return
        self._cache = None
        w = rec.get("worker")
        if job_started is not None and job_started < started:  # the job began with it
            if w not in self._started_up:
                self._startup.append(started - job_started)
            self._started_up.discard(w)
            if self.count_queue and t0 is not None and job_started >= t0:
                self._queue.append(job_started - t0)
        if rec.get("status") == "completed":
            self._train.append(max(ended - started, 0.0))
        if seen is not None and ended >= self._resumed_at:  # not a wait for a master
            self._latency.append(max(seen - ended, 0.0))
        if isinstance(w, str) and rec.get("waiting"):
            self._waits_since[w] = ended

    def on_workers(self, rec: dict[str, Any]) -> None:
        t = finite_float(rec.get("time"))
        if t is not None:
            for wid in rec["workers"]:
                self._submitted[wid] = t

    def on_worker_ready(self, rec: dict[str, Any]) -> None:
        sub = self._submitted.pop(rec["worker"], None)
        js, ready = finite_float(rec.get("job_started")), finite_float(rec.get("ready_at"))
        if self.count_queue and sub is not None and js is not None and js >= sub:
            self._queue.append(js - sub)
            self._cache = None
        if js is not None and ready is not None and ready >= js:
            self._startup.append(ready - js)
            self._started_up.add(rec["worker"])
            self._cache = None

    def on_resumed(self, rec: dict[str, Any]) -> None:
        """A master started again: what waited for it (results, workers) measures its
        downtime, not what a warm worker costs."""
        t = finite_float(rec.get("time"))
        if t is not None:
            self._resumed_at = t
        self._waits_since.clear()

    def on_gone(self, rec: dict[str, Any]) -> None:
        for wid in rec["workers"]:
            self._waits_since.pop(wid, None)
            self._submitted.pop(wid, None)
            self._started_up.discard(wid)

    def on_mode(self, rec: dict[str, Any]) -> None:
        if rec.get("mode") != self.mode:
            self.changes += 1
        self.mode = rec.get("mode")
        self.measured = bool(rec.get("measured", True))
        self.last = rec

    # ------------------------------------------------------------------ model
    def measures(self) -> Measures:
        if self._cache is None:
            idle = self._idle if len(self._idle) >= 3 else None
            self._cache = Measures(
                segments=len(self._train),
                startup_s=statistics.median(self._startup) if self._startup else None,
                queue_s=(_quantile(self._queue, 0.25) if self._queue else None)
                if self.count_queue else 0.0,
                train_s=statistics.fmean(self._train) if self._train else None,
                idle_s=statistics.fmean(idle) if idle else
                (statistics.median(self._latency) if self._latency else None))
        return self._cache


def plan_estimate(mean_units: float, share: float, unit: str = "units") -> str:
    """``plan``'s estimate, before anything is measured: how long a unit of training may take
    for warm workers to pay off, for segments of ``mean_units`` units on average."""
    k = 1.0 / (share * max(mean_units, 1e-9))
    one = "batch" if unit == "batches" else unit[:-1] if unit.endswith("s") else unit
    return (f"workers: auto keeps warm workers while a new job's start-up + queue wait exceed "
            f"{100 * share:.0f}% of a segment's training. Segments here train {mean_units:.3g} "
            f"{unit} on average: warm workers while one {one} trains in less than {k:.3g} x "
            f"(start-up + queue wait), else a job per segment.")


__all__ = ["POOL", "SEGMENT", "Measures", "Decision", "decide", "decide_for", "pool_limits",
           "status", "AutoMeasure", "plan_estimate"]

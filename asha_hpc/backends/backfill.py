"""A simulated shared cluster with a backfill scheduler: where time limits decide when jobs start.

``SimulatedBackend`` starts a segment as soon as a worker is free. On a real cluster a job waits
for GPUs among other users' jobs, and Slurm's backfill scheduler starts a job ahead of its turn
only if it will end, *by its time limit*, before the reservation of the job it would delay. This
backend models that, for what-ifs such as fixed vs automatic time limits
(``benchmarks/time_limits.py``):

- ``gpus`` GPUs in one pool (no node topology);
- other users' jobs (``BackgroundLoad``) arrive as a Poisson process with GPU counts, run times
  and the time limits they ask for (users overestimate); the cluster is warmed up with them
  before the search starts;
- EASY backfill, priority = submission order: the first job that does not fit gets a
  reservation at the earliest time enough GPUs are free, judged by the running jobs' time limits
  (the scheduler knows no run times); a later job starts now if it fits now and either its limit
  ends before that reservation or it leaves the reserved GPUs alone;
- a segment job asks for ``spec.timeout_min`` (``default_limit_min`` without one), capped at
  ``max_time_min``, and ``gpus_per_node x nodes`` of ``spec.resources`` GPUs (default 1);
- a segment longer than its limit gets the warning signal ``signal_delay_s`` before the limit,
  checkpoints the whole units it trained and publishes "interrupted" with ``reached`` (the
  Slurm path); the master continues it in a new job.

Results carry ``job_started`` and ``started`` (after ``startup_seconds``) like real jobs, so
the time-limit model (asha_hpc/timelimits.py) learns from them as it does on Slurm.
"""
from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import SimulatedConfig
from ..protocol import signals
from ..protocol.expdir import INBOX, atomic_write_json, result_name
from .base import JobSpec, JobState, SegmentSpec, SubmitError, TimeCap
from .simulated import SIM_PREFIX, CurveFn, SimulatedBackend


@dataclass
class BackgroundLoad:
    """Other users' jobs: Poisson arrivals keeping ``load`` of the GPUs busy on average.
    Run times are log-normal (median ``run_median_s``, spread ``run_sigma``); a job asks for
    ``limit_factor`` (drawn uniformly) times its run time, rounded up to a whole hour."""

    load: float = 0.8
    gpu_choices: tuple[int, ...] = (1, 1, 1, 2, 4, 8, 16)
    run_median_s: float = 3600.0
    run_sigma: float = 1.0
    limit_factor: tuple[float, float] = (1.2, 4.0)
    max_limit_s: float = 48 * 3600.0
    warmup_s: float = 48 * 3600.0  # simulated before the search starts

    def mean_gpu_seconds(self) -> float:
        return float(np.mean(self.gpu_choices)) * self.run_median_s * math.exp(self.run_sigma ** 2 / 2)


@dataclass
class QJob:
    id: str
    gpus: int
    limit_s: float
    submit: float
    seq: int
    ours: bool
    run_s: float = 0.0  # background: the actual run time
    start: float | None = None
    end: float | None = None
    state: JobState = JobState.PENDING
    spec: SegmentSpec | None = None
    result: dict[str, Any] | None = None  # ours: what it publishes at its end


@dataclass
class QueueStats:
    ours_waits: list[float] = field(default_factory=list)
    background_waits: list[float] = field(default_factory=list)
    ours_gpu_s: float = 0.0
    interrupted: int = 0
    limits_min: list[float] = field(default_factory=list)


class BackfillBackend(SimulatedBackend):
    """See the module doc. ``background=None``: an otherwise empty cluster."""

    name = "simulated"

    def __init__(self, exp_dir: Path, cfg: SimulatedConfig, seed: int = 0, *, gpus: int = 64,
                 background: BackgroundLoad | None = None, default_limit_min: int = 60,
                 max_time_min: int | None = None, signal_delay_s: float = 90.0,
                 curve: CurveFn | None = None) -> None:
        super().__init__(exp_dir, cfg, seed=seed, curve=curve)
        self.gpus = gpus
        self.bg = background
        self.default_limit_min = default_limit_min
        self.max_time = max_time_min
        self.signal_delay_s = signal_delay_s
        self.brng = np.random.default_rng(seed + 104729)
        self.queue: list[QJob] = []  # pending, in priority (submission) order
        self.running: dict[str, QJob] = {}
        self.q_ends: list[tuple[float, int, str]] = []
        self.qjobs: dict[str, QJob] = {}
        self.free = gpus
        self.stats = QueueStats()
        self._qseq = 0
        self._next_bg: float | None = None
        self._now = 0.0
        if self.bg is not None and self.bg.load > 0:
            self._now = -self.bg.warmup_s
            self._next_bg = self._now + self._bg_gap()
            self._run_until(0.0)

    # ------------------------------------------------------------------ background
    def _bg_gap(self) -> float:
        assert self.bg is not None
        rate = self.bg.load * self.gpus / self.bg.mean_gpu_seconds()  # arrivals per second
        return float(self.brng.exponential(1.0 / rate))

    def _bg_arrival(self, t: float) -> None:
        assert self.bg is not None
        g = int(self.brng.choice(self.bg.gpu_choices))
        run = float(self.bg.run_median_s * math.exp(self.brng.normal(0.0, self.bg.run_sigma)))
        limit = run * float(self.brng.uniform(*self.bg.limit_factor))
        limit = min(math.ceil(limit / 3600.0) * 3600.0, self.bg.max_limit_s)
        self._qseq += 1
        job = QJob(id=f"bg{self._qseq}", gpus=min(g, self.gpus), limit_s=limit, submit=t,
                   seq=self._qseq, ours=False, run_s=min(run, limit))
        self.queue.append(job)

    # ------------------------------------------------------------------ interface
    def time_cap(self, partition: str | None = None, qos: str | None = None,
                 account: str | None = None) -> TimeCap:
        return TimeCap(self.max_time, "partition MaxTime")

    def submit(self, specs: Sequence[JobSpec]) -> list[str]:
        if any(not isinstance(s, SegmentSpec) for s in specs):
            raise SubmitError("the backfill simulation runs a job per segment, not pool workers")
        now = self.clock.t
        self._run_until(now)
        ids = []
        for spec in specs:
            assert isinstance(spec, SegmentSpec)
            minutes = spec.timeout_min if spec.timeout_min is not None else self.default_limit_min
            if self.max_time is not None:
                minutes = min(minutes, self.max_time)
            res = spec.resources or {}
            g = int(res.get("gpus_per_node") or 1) * int(res.get("nodes") or 1)
            jid = SIM_PREFIX + spec.key
            self._qseq += 1
            job = QJob(id=jid, gpus=min(max(g, 1), self.gpus), limit_s=60.0 * minutes, submit=now,
                       seq=self._qseq, ours=True, spec=spec)
            self.qjobs[jid] = job
            self.queue.append(job)
            self.stats.limits_min.append(minutes)
            ids.append(jid)
        self._schedule(now)
        return ids

    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        return {j: (self.qjobs[j].state if j in self.qjobs else JobState.LOST) for j in job_ids}

    def find(self, spec: JobSpec) -> str | None:
        jid = SIM_PREFIX + spec.key
        return jid if jid in self.qjobs else None

    def cancel(self, job_ids: Sequence[str]) -> None:
        for jid in job_ids:
            job = self.qjobs.get(jid)
            if job is None or job.state.terminal:
                continue
            job.state = JobState.CANCELLED
            if job in self.queue:
                self.queue.remove(job)
            if jid in self.running:
                del self.running[jid]
                self.free += job.gpus
        self._schedule(self.clock.t)

    def next_event_time(self) -> float | None:
        times = [self.q_ends[0][0]] if self.q_ends else []
        if self._next_bg is not None:
            times.append(self._next_bg)
        return min(times) if times else None

    def advance(self, now: float) -> None:
        self._run_until(now)

    # ------------------------------------------------------------------ the event loop
    def _run_until(self, now: float) -> None:
        while True:
            t_end = self.q_ends[0][0] if self.q_ends else math.inf
            t_bg = self._next_bg if self._next_bg is not None else math.inf
            t = min(t_end, t_bg)
            if t > now:
                break
            self._now = max(self._now, t)
            if t_end <= t_bg:
                _, _, jid = heapq.heappop(self.q_ends)
                self._end(self.running.pop(jid))
            else:
                self._bg_arrival(t)
                self._next_bg = t + self._bg_gap()
            self._schedule(t)
        self._now = max(self._now, now)

    def _schedule(self, now: float) -> None:
        """EASY backfill over the queue (see the module doc)."""
        reservation: tuple[float, int] | None = None  # (shadow time, GPUs spare then)
        started = []
        for job in self.queue:
            if reservation is None:
                if job.gpus <= self.free:
                    self._start(job, now)
                    started.append(job)
                    continue
                avail, shadow = self.free, math.inf
                for t_end, g in sorted((r.start + r.limit_s, r.gpus) for r in self.running.values()):  # type: ignore[operator]
                    avail += g
                    if avail >= job.gpus:
                        shadow = t_end
                        break
                reservation = (shadow, avail - job.gpus)
                continue
            if job.gpus > self.free:
                continue
            shadow, extra = reservation
            if now + job.limit_s <= shadow:
                self._start(job, now)
                started.append(job)
            elif job.gpus <= extra:
                self._start(job, now)
                started.append(job)
                reservation = (shadow, extra - job.gpus)
            if self.free == 0:
                break
        if started:
            gone = {id(j) for j in started}
            self.queue = [j for j in self.queue if id(j) not in gone]

    def _start(self, job: QJob, now: float) -> None:
        job.start = now
        job.state = JobState.RUNNING
        self.free -= job.gpus
        self.running[job.id] = job
        if job.ours:
            self.stats.ours_waits.append(now - job.submit)
            job.end = now + self._plan_run(job, now)
        else:
            if now >= 0:
                self.stats.background_waits.append(now - job.submit)
            job.end = now + job.run_s
        self._qseq += 1
        heapq.heappush(self.q_ends, (job.end, self._qseq, job.id))

    def _plan_run(self, job: QJob, start: float) -> float:
        """How long our segment job runs, and the result it will publish."""
        spec = job.spec
        assert spec is not None
        have = self.trained.get(spec.trial_id, 0)
        units = max(spec.length - have, 0)
        noise = math.exp(self.rng.normal(0.0, self.cfg.duration_noise)) if self.cfg.duration_noise else 1.0
        per_unit = self.cfg.unit_seconds * noise
        startup = self.cfg.startup_seconds
        full = startup + units * per_unit
        stop_at = job.limit_s - self.signal_delay_s  # the warning signal
        base = {"type": "result", "trial": spec.trial_id, "segment": spec.segment,
                "attempt": spec.attempt, "key": spec.key, "length": spec.length, "error": None,
                "host": "backfill", "job_id": job.id, "job_started": start,
                "started": start + min(startup, full)}
        if full <= stop_at:
            job.result = dict(base, status="completed", reached=spec.length,
                              metrics={spec.metric: self.curve(spec.hparams, spec.length, self.seed)},
                              checkpoint=None, ended=start + full)
            return full
        run = max(stop_at, 0.0)
        done = int(max(run - startup, 0.0) // per_unit) if per_unit > 0 else 0
        reached = have + min(done, max(units - 1, 0))
        job.result = dict(base, status="interrupted", reached=reached, metrics=None,
                          stop_reason=signals.TIME_LIMIT, ended=start + run, checkpoint=None)
        return run

    def _end(self, job: QJob) -> None:
        self.free += job.gpus
        if not job.ours or job.state.terminal:
            return
        assert job.spec is not None and job.result is not None and job.start is not None
        self.busy_seconds += job.end - job.start  # type: ignore[operator]
        self.stats.ours_gpu_s += job.gpus * (job.end - job.start)  # type: ignore[operator]
        job.state = JobState.COMPLETED
        res = job.result
        if res["status"] == "interrupted":
            self.stats.interrupted += 1
        self.trained[job.spec.trial_id] = res["reached"]
        atomic_write_json(self.exp_dir / INBOX / result_name(job.spec.key), res, durable=False)


__all__ = ["BackfillBackend", "BackgroundLoad", "QueueStats"]

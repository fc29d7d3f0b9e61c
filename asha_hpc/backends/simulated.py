"""The simulated backend: no processes, a virtual clock, a synthetic learning curve (or any
curve function passed as ``curve``, e.g. curves replayed from a file by ``asha-hpc simulate``).

It drives the *same* master loop as the real backends: results are real files in the inbox and
the journal is real, only time and training are made up. A segment takes
``startup_seconds + units * unit_seconds`` of virtual time (times log-normal noise), waits
``queue_wait_seconds`` in a queue first, and runs only while one of ``workers`` is free. The
master's sleeps skip idle polls (staying on its poll grid), so 10,000 trials take seconds.
"""
from __future__ import annotations

import hashlib
import heapq
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..config import SimulatedConfig
from ..expdir import INBOX, atomic_write_json
from .base import Backend, Clock, JobState, SegmentSpec

SIM_PREFIX = "sim:"

# A learning curve: (hparams, length, seed) -> the metric the trial reports at that length.
CurveFn = Callable[[Dict[str, Any], int, int], float]


def synthetic_curve(hparams: Dict, length: int, seed: int = 0) -> float:
    """A plausible validation loss after ``length`` units: a power-law decay toward a floor,
    both fixed by the hyperparameters (so early ranks predict late ranks, imperfectly)."""
    h = hashlib.sha256(json.dumps([seed, hparams], sort_keys=True, default=str).encode()).digest()
    r = np.random.default_rng(int.from_bytes(h[:8], "little"))
    floor, scale, rate, wobble = r.uniform(0.05, 1.0), r.uniform(0.5, 2.0), r.uniform(0.3, 1.0), r.uniform(0, 0.03)
    return float(floor + scale / (1.0 + length) ** rate + wobble * math.sin(length))


@dataclass
class _Job:
    spec: SegmentSpec
    eligible: float  # submission + queue wait
    start: Optional[float] = None
    end: Optional[float] = None
    state: JobState = JobState.PENDING
    fails: bool = False


class VirtualClock(Clock):
    def __init__(self, backend: "SimulatedBackend") -> None:
        self.t = 0.0
        self.backend = backend

    def time(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        target = self.t + seconds
        nxt = self.backend.next_event_time()
        if seconds > 0 and nxt is not None and nxt > target:
            target = self.t + math.ceil((nxt - self.t) / seconds) * seconds
        self.t = target
        self.backend.advance(self.t)


class SimulatedBackend(Backend):
    name = "simulated"

    def __init__(self, exp_dir: Path, cfg: SimulatedConfig, seed: int = 0,
                 curve: Optional[CurveFn] = None) -> None:
        """``curve(hparams, length, seed)`` gives the reported metric (default:
        ``synthetic_curve``; ``asha-hpc simulate --curves`` replays curves from a file)."""
        self.exp_dir = Path(exp_dir)
        self.cfg = cfg
        self.seed = seed
        self.curve: CurveFn = curve or synthetic_curve
        self.rng = np.random.default_rng(seed + 7919)
        self.clock = VirtualClock(self)
        self.jobs: Dict[str, _Job] = {}
        self.trained: Dict[int, int] = {}  # trial -> length reached (its "checkpoint")
        self.waiting: List[Tuple[float, int, str]] = []  # (eligible, seq, id): not started
        self.ending: List[Tuple[float, int, str]] = []  # (end, seq, id): running
        self._seq = 0
        self.delayed: List[Tuple[float, int, _Job]] = []  # (visible at, seq, job)
        self.busy_seconds = 0.0  # worker-seconds spent in segments (utilization)
        self._t = 0.0  # time of the last start or end played (advance keeps time order)

    def submit(self, specs: Sequence[SegmentSpec]) -> List[str]:
        ids = []
        now = self.clock.t
        for spec in specs:
            jid = SIM_PREFIX + spec.key
            job = _Job(spec, eligible=now + self.cfg.queue_wait_seconds,
                       fails=bool(self.rng.random() < self.cfg.failure_rate))
            self.jobs[jid] = job
            self._seq += 1
            heapq.heappush(self.waiting, (job.eligible, self._seq, jid))
            ids.append(jid)
        self.advance(now)
        return ids

    def _running(self) -> int:
        return len(self.ending)

    def _duration(self, spec: SegmentSpec) -> float:
        units = max(spec.length - self.trained.get(spec.trial_id, 0), 0)
        noise = math.exp(self.rng.normal(0.0, self.cfg.duration_noise)) if self.cfg.duration_noise else 1.0
        return self.cfg.startup_seconds + units * self.cfg.unit_seconds * noise

    def next_event_time(self) -> Optional[float]:
        times = [self.delayed[0][0]] if self.delayed else []
        if self.ending:
            times.append(self.ending[0][0])
        if self.waiting and (self.cfg.workers is None or self._running() < self.cfg.workers):
            times.append(self.waiting[0][0])
        return min(times) if times else None

    def advance(self, now: float) -> None:
        """Play every start and end up to ``now`` in time order."""
        while self.delayed and self.delayed[0][0] <= now:
            self._publish(heapq.heappop(self.delayed)[2])
        while True:
            t_end = self.ending[0][0] if self.ending else math.inf
            free = self.cfg.workers is None or self._running() < self.cfg.workers
            t_start = self.waiting[0][0] if self.waiting and free else math.inf
            t = min(t_end, t_start)
            if t > now:
                return
            if t_end <= t_start:
                _, _, jid = heapq.heappop(self.ending)
                self._t = max(self._t, t_end)
                self._finish(self.jobs[jid])
            else:
                _, _, jid = heapq.heappop(self.waiting)
                job = self.jobs[jid]
                # a job eligible while every worker was busy starts when one frees up (now),
                # not at its eligible time
                t = self._t = max(t, self._t)
                job.start = t
                job.end = t + self._duration(job.spec)
                job.state = JobState.RUNNING
                self._seq += 1
                heapq.heappush(self.ending, (job.end, self._seq, jid))

    def _finish(self, job: _Job) -> None:
        spec = job.spec
        assert job.start is not None and job.end is not None
        self.busy_seconds += job.end - job.start
        if job.fails:
            job.state = JobState.FAILED  # crashed without a result, like a killed process
            return
        job.state = JobState.COMPLETED
        self.trained[spec.trial_id] = spec.length
        if self.cfg.result_delay_seconds > 0:  # NFS: the file shows up after the job ended
            self._seq += 1
            heapq.heappush(self.delayed, (job.end + self.cfg.result_delay_seconds, self._seq, job))
            return
        self._publish(job)

    def _publish(self, job: _Job) -> None:
        spec = job.spec
        metric = self.curve(spec.hparams, spec.length, self.seed)
        atomic_write_json(self.exp_dir / INBOX / f"{spec.key}.result.json", {
            "type": "result", "trial": spec.trial_id, "segment": spec.segment,
            "attempt": spec.attempt, "key": spec.key, "status": "completed",
            "metrics": {spec.metric: metric}, "length": spec.length, "error": None,
            "checkpoint": None, "started": job.start, "ended": job.end, "host": "simulated",
            "job_id": SIM_PREFIX + spec.key}, durable=False)

    def find(self, spec: SegmentSpec) -> Optional[str]:
        jid = SIM_PREFIX + spec.key
        return jid if jid in self.jobs else None

    def states(self, job_ids: Sequence[str]) -> Dict[str, JobState]:
        return {jid: (self.jobs[jid].state if jid in self.jobs else JobState.LOST) for jid in job_ids}

    def cancel(self, job_ids: Sequence[str]) -> None:
        for jid in job_ids:
            job = self.jobs.get(jid)
            if job and not job.state.terminal:
                job.state = JobState.CANCELLED
                self.waiting = [w for w in self.waiting if w[2] != jid]
                self.ending = [e for e in self.ending if e[2] != jid]
                heapq.heapify(self.waiting)
                heapq.heapify(self.ending)

"""The simulated backend: no processes, a virtual clock, a synthetic learning curve (or any
curve function passed as ``curve``, e.g. curves replayed from a file by ``asha-hpc simulate``).

It drives the *same* master loop as the real backends: results are real files in the inbox and
the journal is real, only time and training are made up. A segment takes
``startup_seconds + units * unit_seconds`` of virtual time (times log-normal noise), waits
``queue_wait_seconds`` in a queue first, and runs only while one of ``workers`` is free, on the
least busy of ``nodes`` that its ``exclude`` allows (the first ``broken_nodes`` of them fail every
segment a few seconds after it starts, as a node with a broken GPU does; with ``broken_how:
die`` every job there ends before its code runs and sends nothing, as on a node without the
shared mount: only the scheduler knows where it ran). The master's sleeps
skip idle polls (staying on its poll grid), so 10,000 trials take seconds.
"""
from __future__ import annotations

import hashlib
import heapq
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ExperimentConfig, SimulatedConfig
from ..protocol.expdir import INBOX, atomic_write_json, result_name
from ..protocol.handoff import VERSION as HANDOFF_VERSION
from .base import (
    Backend,
    Capabilities,
    Clock,
    JobSpec,
    JobState,
    SegmentSpec,
    WorkerSpec,
    exclude_list,
)

SIM_PREFIX = "sim:"
BROKEN_S = 5.0  # how long a segment lasts on a broken node before it fails
BROKEN_ERROR = "RuntimeError: CUDA error: uncorrectable ECC error encountered"

# A learning curve: (hparams, length, seed) -> the metric the trial reports at that length.
CurveFn = Callable[[dict[str, Any], int, int], float]


def synthetic_curve(hparams: dict, length: int, seed: int = 0) -> float:
    """A plausible validation loss after ``length`` units: a power-law decay toward a floor,
    both fixed by the hyperparameters (so early ranks predict late ranks, imperfectly)."""
    h = hashlib.sha256(json.dumps([seed, hparams], sort_keys=True, default=str).encode()).digest()
    r = np.random.default_rng(int.from_bytes(h[:8], "little"))
    floor, scale = r.uniform(0.05, 1.0), r.uniform(0.5, 2.0)
    rate, wobble = r.uniform(0.3, 1.0), r.uniform(0, 0.03)
    return float(floor + scale / (1.0 + length) ** rate + wobble * math.sin(length))


def synthetic_score(hparams: dict, length: int, seed: int = 0) -> float:
    """``synthetic_curve`` for a metric to maximise: an accuracy in (0, 1) that rises with
    training, ``exp(-loss)``, so that trials rank as they do by the loss."""
    return math.exp(-synthetic_curve(hparams, length, seed))


def curve_function(spec: str | None, context_dir: str = ".",
                   smaller_is_better: bool = True) -> CurveFn:
    """The curve ``simulated.curve`` names ('module:function', found as an entrypoint is:
    the config's folder first on sys.path), or when it names none the synthetic curve of
    the searcher's direction (a loss, or a score)."""
    if not spec:
        return synthetic_curve if smaller_is_better else synthetic_score
    from ..errors import AshaError
    from ..job.entrypoint import resolve_entrypoint

    try:
        return resolve_entrypoint(spec.strip(), context_dir)
    except ImportError as e:
        raise AshaError(f"simulated.curve: cannot import {spec!r} ({e}); give 'module:function' "
                        f"relative to the config's folder ({context_dir})") from None
    except AshaError as e:  # the entrypoint's message (missing module, function), about this key
        msg = str(e)
        if "not found" in msg:
            raise AshaError(f"simulated.curve: cannot import {spec!r} (not in {context_dir} nor on "
                            f"sys.path); give 'module:function' relative to the config's "
                            f"folder") from None
        raise AshaError("simulated.curve: " + msg.split(": ", 1)[-1]) from None


@dataclass
class _Job:
    spec: JobSpec
    eligible: float  # submission + queue wait
    start: float | None = None
    end: float | None = None  # end of the segment it runs
    state: JobState = JobState.PENDING
    fails: bool = False
    task: SegmentSpec | None = None  # the segment it runs now
    worker: str | None = None  # set once it can wait for more (pool, continue in place)
    wait_s: float = 0.0
    slot: int = 0
    token: int = 0  # invalidates a pending idle timeout when work arrives
    first: bool = True
    host: str | None = None  # the node it runs on
    on_broken: bool = False  # its segment began on a broken node (fails as the node does)


class VirtualClock(Clock):
    def __init__(self, backend: SimulatedBackend) -> None:
        self.t = 0.0
        self.backend = backend

    def time(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        target = self.t + seconds
        nxt = self.backend.next_event_time()
        unread, self.backend.unread = self.backend.unread, False  # a message came between polls
        if seconds > 0 and nxt is not None and nxt > target and not unread:
            target = self.t + math.ceil((nxt - self.t) / seconds) * seconds
        self.t = target
        self.backend.advance(self.t)


class SimulatedBackend(Backend):
    name = "simulated"
    clock: VirtualClock

    @classmethod
    def from_config(cls, cfg: ExperimentConfig, exp_root: Path) -> SimulatedBackend:
        return cls(exp_root, cfg.simulated, seed=cfg.experiment_seed, context_dir=cfg.config_dir,
                   smaller_is_better=cfg.searcher.smaller_is_better)

    @classmethod
    def capabilities(cls, cfg: ExperimentConfig) -> Capabilities:
        """Virtual time: results are there at once; segments get time limits planned as on
        Slurm where the config asks for them (``slurm.timeout_min: auto``)."""
        return Capabilities(virtual_time=True, result_grace_s=0.0,
                            time_limits=cfg.slurm if cfg.slurm.auto_time else None)

    @classmethod
    def rung_resources(cls, cfg: ExperimentConfig, level: int) -> dict[str, Any]:
        """A simulated cluster plays ``slurm.per_rung`` (backfill.py gives each job its GPUs)."""
        return cfg.slurm.rung_options(level)

    @classmethod
    def excluding(cls, cfg: ExperimentConfig, resources: dict[str, Any],
                  nodes: set[str]) -> dict[str, Any]:
        return dict(resources, exclude=exclude_list(resources.get("exclude"), nodes)) if nodes \
            else resources

    def __init__(self, exp_dir: Path, cfg: SimulatedConfig, seed: int = 0,
                 curve: CurveFn | None = None, context_dir: str = ".",
                 smaller_is_better: bool = True) -> None:
        """``curve(hparams, length, seed)`` gives the reported metric (default: the one
        ``simulated.curve`` names, else the synthetic curve of the metric's direction;
        ``asha-hpc simulate --curves`` replays curves from a file)."""
        self.exp_dir = Path(exp_dir)
        self.cfg = cfg
        self.seed = seed
        self.curve: CurveFn = curve or curve_function(cfg.curve, context_dir, smaller_is_better)
        self.rng = np.random.default_rng(seed + 7919)
        self.clock = VirtualClock(self)
        self.jobs: dict[str, _Job] = {}
        self.trained: dict[int, int] = {}  # trial -> length reached (its "checkpoint")
        self.waiting: list[tuple[float, int, str]] = []  # (eligible, seq, id): not started
        self.ending: list[tuple[float, int, str, str, int]] = []  # (time, seq, id, what, token)
        self._seq = 0
        self.delayed: list[tuple[Any, ...]] = []  # (visible at, seq, job, spec, fields)
        self.busy_seconds = 0.0  # worker-seconds spent in segments (utilization)
        self.held_seconds = 0.0  # worker-seconds jobs held a GPU (busy, starting or waiting)
        self.train_seconds = 0.0  # busy_seconds less the jobs' start-ups: GPU time that trained
        self.occupied = 0  # jobs holding a GPU
        self.unread = False  # a message was published outside advance() (at a hand-over)
        self.workers: dict[str, str] = {}  # worker id -> job id (jobs that wait for more)
        self._seg_start: dict[str, float] = {}  # job id -> start of its handed-over segment
        self.slots: dict[tuple[str, int], dict[str, Any]] = {}  # what each slot was handed
        self.published: list[tuple[int, int, int]] = []  # (trial, segment, attempt) with a result
        self._t = 0.0  # time of the last start or end played (advance keeps time order)
        self.hosts = (["simulated"] if cfg.nodes <= 1
                      else [f"node{i + 1:02d}" for i in range(cfg.nodes)])
        self.broken = set(self.hosts[:cfg.broken_nodes])
        self.running_on = {h: 0 for h in self.hosts}  # jobs running on each node
        self.blocked: list[str] = []  # jobs whose exclude leaves them no node: they never start

    def submit(self, specs: Sequence[JobSpec]) -> list[str]:
        ids = []
        now = self.clock.t
        for spec in specs:
            jid = SIM_PREFIX + spec.key
            job = _Job(spec, eligible=now + self.cfg.queue_wait_seconds,
                       fails=bool(self.rng.random() < self.cfg.failure_rate))
            if isinstance(spec, WorkerSpec):
                job.worker, job.wait_s, job.fails = spec.worker, spec.idle_timeout_s, False
                self.workers[spec.worker] = jid
            else:
                job.task = spec
                if spec.continue_s > 0:
                    job.worker, job.wait_s = spec.key, spec.continue_s
                    self.workers[spec.key] = jid
            self.jobs[jid] = job
            self._seq += 1
            heapq.heappush(self.waiting, (job.eligible, self._seq, jid))
            ids.append(jid)
        self.advance(now)
        return ids

    def _running(self) -> int:
        return self.occupied

    def _duration(self, spec: SegmentSpec, startup: bool = True) -> float:
        units = max(spec.length - self.trained.get(spec.trial_id, 0), 0)
        noise = math.exp(self.rng.normal(0.0, self.cfg.duration_noise)) if self.cfg.duration_noise else 1.0
        return (self.cfg.startup_seconds if startup else 0.0) + units * self.cfg.unit_seconds * noise

    def next_event_time(self) -> float | None:
        times = [self.delayed[0][0]] if self.delayed else []
        if self.ending:
            times.append(self.ending[0][0])
        if self.waiting and (self.cfg.workers is None or self._running() < self.cfg.workers):
            times.append(self.waiting[0][0])
        return min(times) if times else None

    def _push(self, t: float, jid: str, what: str, token: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self.ending, (t, self._seq, jid, what, token))

    def advance(self, now: float) -> None:
        """Play every start, end and hand-over up to ``now`` in time order."""
        while self.delayed and self.delayed[0][0] <= now:
            self._publish(*heapq.heappop(self.delayed)[2:])
        while True:
            t_end = self.ending[0][0] if self.ending else math.inf
            free = self.cfg.workers is None or self._running() < self.cfg.workers
            t_start = self.waiting[0][0] if self.waiting and free else math.inf
            t = min(t_end, t_start)
            if t > now:
                return
            if t_end <= t_start:
                _, _, jid, what, token = heapq.heappop(self.ending)
                self._t = max(self._t, t_end)
                job = self.jobs[jid]
                if job.state.terminal:
                    continue
                if what == "end":
                    self._finish(job)
                elif what == "ready" and self._dies(job):  # its code never ran
                    self._release(job, JobState.FAILED, t_end)
                elif what == "ready":  # a pool worker finished starting: it waits on slot 0
                    self._ready(job, {"type": "ready", "worker": job.worker, "slot": 0,
                                      "job_id": jid, "job_started": job.start, "time": self._t,
                                      "host": job.host, "handoff": HANDOFF_VERSION})
                elif what == "idle" and token == job.token:  # nothing came: it leaves
                    self._release(job, JobState.COMPLETED, t_end)
            else:
                _, _, jid = heapq.heappop(self.waiting)
                job = self.jobs[jid]
                if job.state.terminal:
                    continue
                # a job eligible while every worker was busy starts when one frees up (now),
                # not at its eligible time
                t = self._t = max(t, self._t)
                job.host = self._node(job)
                if job.host is None:
                    self.blocked.append(jid)
                    continue
                job.start = t
                job.state = JobState.RUNNING
                self.occupied += 1
                self.running_on[job.host] += 1
                if job.task is not None:
                    job.on_broken = self._broken(job.host, t)
                    job.end = t + (self.cfg.startup_seconds + BROKEN_S if job.on_broken
                                   else self._duration(job.task))
                    job.fails = job.fails or self._dies(job)
                    self._push(job.end, jid, "end")
                    # the job's own message: where it runs matters (nodes.py), and a job that
                    # will crash ran its code first (only one that dies before it sends none)
                    if (len(self.hosts) > 1 or job.fails) and not self._dies(job):
                        self._started(job, job.task, t + self.cfg.startup_seconds)
                else:
                    self._push(t + self.cfg.startup_seconds, jid, "ready")

    def _dies(self, job: _Job) -> bool:
        """Whether ``job`` ends before its code runs (``broken_how: die`` on a broken node)."""
        return self._broken(job.host, job.start) and self.cfg.broken_how == "die"

    def _broken(self, host: str | None, t: float | None) -> bool:
        """Whether ``host`` is broken at time ``t`` (``repaired_after_s``: not from then on)."""
        repaired = self.cfg.repaired_after_s
        return host in self.broken and (repaired is None or t is None or t < repaired)

    def _node(self, job: _Job) -> str | None:
        """The least busy node the job's ``exclude`` (a comma-separated list of names) allows."""
        excluded = set(str(job.spec.resources.get("exclude") or "").split(","))
        allowed = [h for h in self.hosts if h not in excluded]
        return min(allowed, key=self.running_on.__getitem__) if allowed else None

    def _started(self, job: _Job, spec: SegmentSpec, at: float) -> None:
        """The message a job sends when its segment starts (its node)."""
        atomic_write_json(self.exp_dir / INBOX / f"{spec.key}.started.json", {
            "type": "started", "trial": spec.trial_id, "segment": spec.segment,
            "attempt": spec.attempt, "key": spec.key, "time": at, "host": job.host,
            "job_id": SIM_PREFIX + job.spec.key}, durable=False)
        self.unread = True

    def _release(self, job: _Job, state: JobState, at: float) -> None:
        """The job ends and gives its GPU back."""
        job.state = state
        self.occupied -= 1
        assert job.start is not None and job.host is not None
        self.running_on[job.host] -= 1
        self.held_seconds += max(at - job.start, 0.0)

    def _ready(self, job: _Job, body: dict[str, Any]) -> None:
        """The job waits for its next segment (at most ``wait_s``)."""
        job.token += 1
        self._push(self._t + job.wait_s, SIM_PREFIX + job.spec.key, "idle", job.token)
        if body:
            atomic_write_json(self.exp_dir / INBOX / f"{job.worker}.ready-{job.slot:06d}.json",
                              body, durable=False)
            self.unread = True

    def hand_over(self, worker: str, slot: int, body: dict[str, Any]) -> bool:
        jid = self.workers.get(worker)
        job = self.jobs.get(jid) if jid is not None else None
        if jid is None or job is None or job.state != JobState.RUNNING or job.task is not None \
                or job.slot != slot:
            return False
        now = self.clock.t
        self.slots[(worker, slot)] = body
        job.token += 1
        job.slot += 1
        if body.get("type") != "segment":
            self._release(job, JobState.COMPLETED, now)
            return True
        job.task = SegmentSpec(**body["spec"])
        job.on_broken = self._broken(job.host, now)
        job.end = now + (BROKEN_S if job.on_broken else self._duration(job.task, startup=False))
        self._seg_start[jid] = now
        self._push(job.end, jid, "end")
        return True

    def handed(self, worker: str, slot: int) -> dict[str, Any] | None:
        return self.slots.get((worker, slot))

    def _finish(self, job: _Job) -> None:
        spec, jid = job.task, SIM_PREFIX + job.spec.key
        assert spec is not None and job.end is not None
        handed_at = self._seg_start.pop(jid, None)
        assert job.start is not None
        if handed_at is None:  # the job's own segment: it starts after the job's start-up,
            held_from, begun = job.start, job.start + self.cfg.startup_seconds  # as in a real job
        else:  # handed over to a job that had started up already
            held_from = begun = handed_at
        self.busy_seconds += job.end - held_from  # start-up included: the GPU is taken
        self.train_seconds += job.end - begun
        job.task = None
        if job.fails:  # crashed without a result, like a killed process
            self._release(job, JobState.FAILED, job.end)
            return
        if not job.on_broken:
            self.trained[spec.trial_id] = spec.length
        self.published.append((spec.trial_id, spec.segment, spec.attempt))
        extra: dict[str, Any] = {"started": begun, "job_started": job.start if job.first else begun}
        job.first = False
        if job.worker is not None:
            extra.update(worker=job.worker, slot=job.slot, waiting=True, handoff=HANDOFF_VERSION)
            self._ready(job, {})
        else:
            self._release(job, JobState.COMPLETED, job.end)
        if self.cfg.result_delay_seconds > 0:  # NFS: the file shows up after the job ended
            self._seq += 1
            heapq.heappush(self.delayed, (job.end + self.cfg.result_delay_seconds, self._seq,
                                          job, spec, extra, job.on_broken))
            return
        self._publish(job, spec, extra, job.on_broken)

    def _publish(self, job: _Job, spec: SegmentSpec, extra: dict[str, Any],
                 broken: bool) -> None:
        if broken:
            outcome: dict[str, Any] = {"status": "error", "metrics": None, "length": None,
                                       "error": BROKEN_ERROR}
        else:
            outcome = {"status": "completed", "length": spec.length, "error": None,
                       "metrics": {spec.metric: self.curve(spec.hparams, spec.length, self.seed)}}
        atomic_write_json(self.exp_dir / INBOX / result_name(spec.key), dict({
            "type": "result", "trial": spec.trial_id, "segment": spec.segment,
            "attempt": spec.attempt, "key": spec.key, "checkpoint": None, "ended": job.end,
            "host": job.host, "job_id": SIM_PREFIX + job.spec.key}, **outcome, **extra),
            durable=False)

    def find(self, spec: JobSpec) -> str | None:
        jid = SIM_PREFIX + spec.key
        return jid if jid in self.jobs else None

    def node_of(self, job_id: str) -> str | None:
        """Where a job ran, on a simulated cluster of several nodes (one is no node to name)."""
        job = self.jobs.get(job_id)
        return job.host if job is not None and len(self.hosts) > 1 else None

    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        return {jid: (self.jobs[jid].state if jid in self.jobs else JobState.LOST) for jid in job_ids}

    def cancel(self, job_ids: Sequence[str]) -> None:
        for jid in job_ids:
            job = self.jobs.get(jid)
            if job and not job.state.terminal:
                if job.state == JobState.RUNNING:
                    self._release(job, JobState.CANCELLED, self.clock.t)
                job.state = JobState.CANCELLED
                self.waiting = [w for w in self.waiting if w[2] != jid]
                self.ending = [e for e in self.ending if e[2] != jid]
                heapq.heapify(self.waiting)
                heapq.heapify(self.ending)

"""The one small interface every backend implements (local, simulated, slurm).

The master never talks to submitit or Slurm directly. It hands a backend ``SegmentSpec``s (one
per trial segment attempt) and asks for the state of job ids. Results never travel through the
backend: every job publishes its result into the experiment directory's inbox, so the same
master loop serves all backends and a restarted master finds results of jobs it did not start.
Where backends differ (time limits, late results, queues, log files, per-rung resources), each
declares it (``Backend.capabilities`` and the class methods below), so that the master never
asks a backend's name.
"""
from __future__ import annotations

import enum
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..protocol.expdir import attempt_key

if TYPE_CHECKING:
    from ..config import ExperimentConfig, SlurmConfig


# What a pending job's reason means (backends/slurm_reasons.py tells them apart for Slurm)
WAITS = "waits"  # for free nodes, its turn, its start time: starts by itself
LIMIT = "limit"  # a limit on what you or your group use at once: starts as other jobs end
STUCK = "stuck"  # never starts as submitted: the request or the job must change


@dataclass(frozen=True)
class Pending:
    """Why the scheduler keeps a job pending."""

    reason: str  # as the scheduler names it
    kind: str  # WAITS, LIMIT or STUCK
    means: str  # what it means for the job, and for STUCK what to do
    too_long: bool = False  # it asks for a longer time limit than it may (STUCK)


def for_jobs(means: str, job: str, jobs: Sequence[str]) -> str:
    """``means`` as classified for ``job``, said of all ``jobs`` pending for the same reason:
    a command in it (in backticks) names them all."""
    if len(jobs) < 2:
        return means
    return re.sub(r"`[^`]*`", lambda m: m.group(0).replace(job, " ".join(jobs)), means)


def jobs_text(jobs: Sequence[str], trials: dict[str, list[int]], most: int = 10) -> str:
    """``job 12_0 (trial 3)`` or ``3 jobs: 12_0 (trial 3), ...``, at most ``most`` named."""
    named = [f"{j} ({', '.join(f'trial {t}' for t in trials.get(j, [])) or 'warm workers'})"
             for j in jobs[:most]]
    more = f", and {len(jobs) - most} more" if len(jobs) > most else ""
    return (f"job {named[0]}" if len(jobs) == 1
            else f"{len(jobs)} jobs: {', '.join(named)}{more}")


class JobState(str, enum.Enum):
    """What the backend knows about a job. Terminal states say how the job ended; whether a
    segment succeeded is decided by its result file in the inbox, not by this state."""

    PENDING = "pending"  # queued, not started
    RUNNING = "running"
    COMPLETED = "completed"  # ended normally (exit 0): a result should be in the inbox
    FAILED = "failed"  # non-zero exit, crash
    CANCELLED = "cancelled"  # scancel / user cancel
    TIMEOUT = "timeout"  # hit its time limit
    PREEMPTED = "preempted"  # preempted by the scheduler (not the trial's fault)
    NODE_FAIL = "node_fail"  # node died (not the trial's fault)
    OUT_OF_MEMORY = "out_of_memory"  # killed for memory (the trial's fault: counts as a restart)
    UNKNOWN = "unknown"  # cannot tell right now (accounting lag): keep waiting
    LOST = "lost"  # no trace of it anywhere (never started, or vanished): treat as dead
    # gone from the scheduler, which cannot say how it ended (no accounting), after it ran (it
    # left its log file): not lost while queued, not known to be the trial's fault
    ENDED = "unaccounted"

    @property
    def terminal(self) -> bool:
        return self not in (JobState.PENDING, JobState.RUNNING, JobState.UNKNOWN)

    @property
    def counts_as_restart(self) -> bool:
        """Failures that are the trial's own fault count against ``max_restarts``; preemption,
        node failure, time limits (the segment continues from its checkpoint) and lost jobs do
        not."""
        return self in (JobState.FAILED, JobState.OUT_OF_MEMORY)


@dataclass(frozen=True)
class SegmentSpec:
    """Everything one job needs to run one attempt of one trial segment. Pickled into the job:
    the job never reads the experiment config."""

    exp_dir: str
    experiment: str  # experiment name, for job names
    trial_id: int
    segment: int  # 0, 1, ... per trial: one per Create/Resume decision
    attempt: int  # 0, 1, ... per segment: retries and resubmissions
    length: int  # absolute target length to train to
    hparams: dict[str, Any]
    entrypoint: str | list[str]  # "module:function", "path/file.py:function", or a command
    context_dir: str  # the config file's directory: on sys.path / the command's cwd
    metric: str  # the searcher's metric: must be in every segment report
    length_unit: str = "units"
    max_length: int | None = None  # the searcher's max_length: the longest a trial trains
    until_exit: bool = False  # no length (Determined 0.38): the run ends when the code returns
    env: dict[str, str] = field(default_factory=dict)  # extra environment (CUDA_VISIBLE_DEVICES ...)
    heartbeat_s: float = 10.0  # the ranks' heartbeat, read by each other
    solo_beat_s: float = 30.0  # a single rank's, read by the master alone (hung_after_s)
    timeout_min: int | None = None  # this job's time limit (None: the backend's default)
    resources: dict[str, Any] = field(default_factory=dict)  # per-rung overrides (slurm keys)
    continue_s: float = 0.0  # > 0: after the segment, wait this long for the next one in place
    seed: int = 0  # the trial's seed: experiment_seed + trial id (Determined's trial seed)

    @property
    def key(self) -> str:
        """Unique name of this attempt: inbox file names, run folders, log names."""
        return attempt_key(self.trial_id, self.segment, self.attempt)

    @property
    def job_name(self) -> str:
        return f"asha-{self.experiment}-{self.key}"


@dataclass(frozen=True)
class WorkerSpec:
    """One job of the worker pool: it holds its resources and runs, in one process, the
    segments the master hands it (handoff.py) until told to exit. ``lanes`` > 1: that many
    worker processes share the job's GPUs (``trials_per_gpu``)."""

    exp_dir: str
    experiment: str
    worker: str  # "w0003"; lanes are "w0003.0", "w0003.1", ...
    lanes: int = 1
    idle_timeout_s: float = 600.0  # exit when no segment came for this long (master gone):
    # the config's worker_idle_timeout_s
    env: dict[str, str] = field(default_factory=dict)
    timeout_min: int | None = None
    resources: dict[str, Any] = field(default_factory=dict)

    def lane_id(self, lane: int) -> str:
        return self.worker if self.lanes == 1 else f"{self.worker}.{lane}"

    @property
    def lane_ids(self) -> list[str]:
        return [self.lane_id(i) for i in range(self.lanes)]

    @property
    def key(self) -> str:
        return self.worker

    @property
    def job_name(self) -> str:
        return f"asha-{self.experiment}-{self.worker}"


JobSpec = SegmentSpec | WorkerSpec  # what one job runs: a segment, or a pool worker


@dataclass(frozen=True)
class TimeCap:
    """The longest time limit a job may ask for, and what sets it."""

    minutes: int | None  # None: no limit known
    source: str = ""  # e.g. "partition short MaxTime", "QOS debug MaxWall"

    def text(self) -> str:
        return f"{self.source} {self.minutes} min" if self.minutes is not None else "no limit"


@dataclass(frozen=True)
class Capabilities:
    """What the master, and the state replayed from the journal (which has no backend: status,
    reports), adapt to instead of asking a backend's name. ``Backend.capabilities(cfg)`` gives
    them for an experiment's config."""

    # jobs run on a virtual clock and run no user code (the simulated backends): nothing real
    # to make durable, no inbox to watch, no job to lose to a bug that probe jobs would catch
    virtual_time: bool = False
    # jobs run on this machine: a command trial's program can be checked here before a run
    jobs_run_here: bool = False
    # how long after a job ended its result may still appear (a shared filesystem shows
    # files late): only then is the job dead
    result_grace_s: float = 10.0
    # a job's wait before it starts is a scheduler's queue (``workers: auto`` counts it as a
    # cost of a job per segment), not a wait for a free slot on this machine
    queue_waits: bool = True
    # the settings each segment's time limit is planned from (timelimits.plan_limit: the
    # ``slurm`` section, which a simulated cluster plays too); None: no planned time limits
    time_limits: SlurmConfig | None = None
    # a job's time limit (minutes) where none is planned: pool workers live this long
    default_limit_min: int | None = None
    # how long before its time limit a job is told to stop (Slurm's --signal lead): the time a
    # checkpoint takes, so also how long a paused job has to save (Backend.pause)
    stop_warning_s: float = 0.0
    # why warm workers cannot run here (one fixed time limit and one set of resources are
    # needed), or None
    no_pool: str | None = None

    @property
    def jobs_on_other_nodes(self) -> bool:
        """Real jobs that may run on other machines (a cluster's): they see the experiment
        folder only where it is on a filesystem those machines mount."""
        return not (self.virtual_time or self.jobs_run_here)

    @property
    def worker_lifetime_s(self) -> float | None:
        """A pool worker's time limit in seconds (None: none)."""
        return None if self.default_limit_min is None else 60.0 * self.default_limit_min


def submitit_logs(folders: Sequence[Path], stem: str) -> tuple[Path | None, Path | None]:
    """The stdout and stderr files submitit wrote for job ``stem``: ``<stem>_0_log.out`` (or
    another task's where task 0 has none), in the first of ``folders`` that has one."""
    found: list[Path | None] = []
    for ext in ("out", "err"):
        hit: Path | None = None
        for folder in folders:
            p = folder / f"{stem}_0_log.{ext}"
            if p.is_file():
                hit = p
            else:
                more = sorted(folder.glob(f"{stem}_*_log.{ext}")) if folder.is_dir() else []
                hit = more[0] if more else None
            if hit is not None:
                break
        found.append(hit)
    return found[0], found[1]


def exclude_list(own: Any, nodes: set[str]) -> str:
    """A Slurm ``--exclude`` value: ``own`` (a hostlist, or a list of them) and ``nodes``."""
    if isinstance(own, (list, tuple)):
        own = ",".join(str(v) for v in own)
    return ",".join(([str(own)] if own else []) + sorted(nodes))


class SubmitError(Exception):
    """Submission failed and no job was created (nothing to clean up). ``transient``: the
    scheduler could not take it now (its controller does not answer, a limit on queued jobs);
    the same submission later may go through, nothing in the config needs to change.
    ``too_many``: it takes only so many of the user's jobs at once (submitted or running), and
    this submission would have gone past that: fewer may go through now, more as jobs end.
    ``no_node``: no node can run the job as asked (with nodes excluded, none may be left, or
    an excluded name is no node of the cluster)."""

    def __init__(self, message: str, transient: bool = False, too_many: bool = False,
                 no_node: bool = False) -> None:
        super().__init__(message)
        self.transient = transient or too_many
        self.too_many = too_many
        self.no_node = no_node


class Clock:
    """Wall-clock time; the simulated backend substitutes a virtual one."""

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class Backend(ABC):
    """Runs segments as jobs. Implementations: local (submitit LocalExecutor), simulated
    (virtual clock), slurm (submitit SlurmExecutor)."""

    name: str = "base"  # the config's ``backend:`` (backends/__init__.py maps it to a class)
    clock: Clock = Clock()
    exp_dir: Path  # the experiment folder (hand_over writes its slots there)

    @classmethod
    def from_config(cls, cfg: ExperimentConfig, exp_root: Path) -> Backend:
        """This backend for an experiment (``backends.make_backend``)."""
        raise NotImplementedError(f"the {cls.name} backend is made by its own code")

    @classmethod
    def capabilities(cls, cfg: ExperimentConfig) -> Capabilities:
        """What this backend does for an experiment with config ``cfg`` (a class method: the
        replayed state asks without a backend). Default: real time, no time limits."""
        return Capabilities()

    @classmethod
    def rung_resources(cls, cfg: ExperimentConfig, level: int) -> dict[str, Any]:
        """Resource overrides for the jobs of rung ``level`` (``SegmentSpec.resources``).
        Default: none."""
        return {}

    @classmethod
    def excluding(cls, cfg: ExperimentConfig, resources: dict[str, Any],
                  nodes: set[str]) -> dict[str, Any]:
        """``resources`` (a rung's) for a job that must not run on ``nodes`` (master/nodes.py).
        Default: unchanged, for a backend that runs every job on one machine."""
        return resources

    @classmethod
    def log_files(cls, jobs_dir: Path, job_id: str) -> tuple[Path | None, Path | None] | None:
        """The stdout and stderr files of one of this backend's jobs (``jobs_dir``: the
        experiment's ``jobs/``), None where ``job_id`` is not one of its ids. Default: None."""
        return None

    @abstractmethod
    def submit(self, specs: Sequence[JobSpec]) -> list[str]:
        """Submit segments or pool workers (a burst may become one job array); return job ids
        in the same order. Raise SubmitError if nothing was submitted."""

    @abstractmethod
    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """Current state of each job id (ids this backend never saw, e.g. after a restart, are
        looked up too). Must be cheap: a backend bounds its own calls to the scheduler and may
        answer from a cache."""

    def node_of(self, job_id: str) -> str | None:
        """The node a job ran on, where the backend knows it (a job that died before it could
        say so itself); None when unknown, or several. Default: None."""
        return None

    def pending(self, job_ids: Sequence[str]) -> dict[str, Pending]:
        """Why the scheduler keeps each of these jobs pending, for those the last ``states``
        saw pending with a reason (none where a backend has no queue to explain)."""
        return {}

    @abstractmethod
    def cancel(self, job_ids: Sequence[str]) -> None:
        """Cancel jobs; unknown or finished ids are ignored."""

    def pause(self, job_ids: Sequence[str]) -> list[str]:
        """Cancel those of ``job_ids`` still queued, and tell the running ones to save where
        they are and stop (``asha-hpc pause``); return those that may still run, which the
        master cancels if they have not stopped within a grace. Default: ``cancel``, whose
        signal reaches only the job's own Python (the local backend's SIGTERM), and nothing
        left to wait for."""
        self.cancel(job_ids)
        return []

    def kill(self, job_ids: Sequence[str]) -> None:
        """End jobs at once, where the backend can, without the stop signal that lets a job
        checkpoint and leave: a hung job's (master/loop.py), whose trial trains again
        elsewhere. Default: ``cancel`` (Slurm's ``scancel --signal=KILL`` is a cancel too:
        SIGCONT, SIGTERM, and SIGKILL after KillWait; a frozen job woken so may checkpoint
        meanwhile, beside its retry: the newer attempt's checkpoints win, by name)."""
        self.cancel(job_ids)

    def find(self, spec: JobSpec) -> str | None:
        """Job id of a submission whose id was never journaled (the master died between
        submitting and journaling), or None if it was never submitted. Default: None."""
        return None

    def cancel_strays(self, specs: Sequence[JobSpec]) -> list[str]:
        """Cancel the jobs of ``specs`` (each one ``find`` did not find) that were submitted
        all the same, by a master that died before it could own them: such a job runs none
        of the trial's code, and its segment is submitted again. The ids cancelled. Default:
        none (a backend whose jobs cannot outlive that moment)."""
        return []

    def time_cap(self, partition: str | None = None, qos: str | None = None,
                 account: str | None = None) -> TimeCap:
        """The longest time limit a job may ask for in ``partition`` under ``qos`` and
        ``account`` (None: the defaults). Default: no limit."""
        return TimeCap(None)

    def forget_limits(self) -> None:
        """Read the limits behind ``time_cap`` again at its next call (a job pends because
        they are not what they were read as). Default: nothing to forget."""
        return None

    def hand_over(self, worker: str, slot: int, body: dict[str, Any]) -> bool:
        """Fill a waiting job's slot with a segment or an exit (handoff.py); False when the job
        closed that slot itself first (it left). The simulated backend plays this in memory."""
        from ..protocol.handoff import claim, slot_path

        return claim(slot_path(Path(self.exp_dir), worker, slot), body)

    def handed(self, worker: str, slot: int) -> dict[str, Any] | None:
        """What a slot holds (None: still empty), for a restarted master."""
        from ..protocol.handoff import read_slot, slot_path

        return read_slot(slot_path(Path(self.exp_dir), worker, slot))

    def tick(self) -> None:  # noqa: B027 (optional hook: most backends have nothing to do)
        """Housekeeping once per master iteration (start queued local jobs, ...)."""

    def close(self) -> None:  # noqa: B027 (optional hook: most backends hold nothing)
        """Release resources; running jobs are left alone (a resumed master re-attaches)."""

"""Slurm backend: submitit's ``SlurmExecutor`` for submission, our own rate-limited ``sacct``
(with an ``squeue`` fallback) for job states.

Why not ``job.state`` / ``job.done()``: submitit's watcher resets its back-off at every
submission and only knows ``sacct`` (no accounting -> every state stays UNKNOWN). Here one poll
asks about every tracked, unfinished job in ONE ``sacct`` call, at most once per
``poll_min_interval_s``, however many jobs or submissions there are; terminal states are cached
for good. Why pending jobs pend comes from one ``squeue`` call at most every
``reasons_interval_s``, while some do.

Trial jobs are submitted with ``--no-requeue``: after a preemption or node failure the master
resubmits the segment as a new attempt from its checkpoint, so a job Slurm brought back would run
the same attempt twice.

Job names: a single submission is named ``spec.job_name``. A burst of several specs becomes one
``sbatch --array`` whose tasks all share ONE name (Slurm gives an array a single name; renaming
tasks one by one costs one slurmctld RPC each and splits the array record), so the array is named
``asha-<experiment>-batch-<token>`` and a manifest ``<exp_dir>/jobs/batches/<token>.json`` (keys
in task order, written before sbatch; the array's job id is added after) lets ``find()`` map a
spec to ``<array id>_<index>``.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..protocol import signals
from ..protocol.expdir import JOBS, atomic_write_json
from .base import (
    Backend,
    Capabilities,
    JobSpec,
    JobState,
    Pending,
    SubmitError,
    TimeCap,
    exclude_list,
    submitit_logs,
)
from .slurm_limits import (
    AccountingLimits,
    enforces_limits,
    parse_assocs,
    parse_partition_qos,
    parse_qos,
    time_cap,
)
from .slurm_reasons import classify

if TYPE_CHECKING:
    from ..config import ExperimentConfig

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------ states

_STATE_MAP: dict[str, JobState] = {
    "COMPLETED": JobState.COMPLETED,
    "FAILED": JobState.FAILED,
    "BOOT_FAIL": JobState.NODE_FAIL,  # launch failure on the node: not the trial's fault
    "SPECIAL_EXIT": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED,
    "REVOKED": JobState.CANCELLED,  # federation: the sibling ran elsewhere
    "TIMEOUT": JobState.TIMEOUT,
    "DEADLINE": JobState.TIMEOUT,
    "PREEMPTED": JobState.PREEMPTED,
    "NODE_FAIL": JobState.NODE_FAIL,
    "OUT_OF_MEMORY": JobState.OUT_OF_MEMORY,
    "PENDING": JobState.PENDING,
    "REQUEUED": JobState.PENDING,
    "REQUEUE_FED": JobState.PENDING,
    "REQUEUE_HOLD": JobState.PENDING,
    "RESV_DEL_HOLD": JobState.PENDING,
    "RESIZING": JobState.PENDING,
    "SUSPENDED": JobState.PENDING,
    "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,
    "CONFIGURING": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING,
    "STOPPED": JobState.RUNNING,
}


def parse_slurm_state(state: str, exit_code: str = "") -> JobState:
    """Map a Slurm state as sacct/squeue print it to a JobState.

    Handles ``CANCELLED by 123``, fixed-width truncation (``OUT_OF_ME+``) and, for COMPLETED, a
    non-zero ``ExitCode`` (``exit:signal``) which counts as FAILED. Unknown -> UNKNOWN."""
    word = (state or "").strip().split(" ")[0].upper()
    if not word:
        return JobState.UNKNOWN
    st = _STATE_MAP.get(word)
    if st is None and word.endswith("+"):
        prefix = word.rstrip("+")
        matches = [v for k, v in _STATE_MAP.items() if k.startswith(prefix)]
        if prefix and len(set(matches)) == 1:
            st = matches[0]
    if st is None:
        return JobState.UNKNOWN
    if st is JobState.COMPLETED and exit_code:
        code, _, sig = exit_code.strip().partition(":")
        if (code.isdigit() and int(code) != 0) or (sig.isdigit() and int(sig) != 0):
            return JobState.FAILED
    return st


_ARRAY_RANGE = re.compile(r"^(\d+)_\[([0-9,\-]+)(?:%\d+)?\]$")


def expand_job_ids(job_id: str) -> list[str]:
    """``123`` -> [123]; ``123_4`` -> [123_4]; ``123_[4-6,9%2]`` -> [123_4, 123_5, 123_6, 123_9];
    steps (``123.batch``) and het-job parts (``123+0``) -> []."""
    job_id = job_id.strip()
    if not job_id or "." in job_id or "+" in job_id:
        return []
    m = _ARRAY_RANGE.match(job_id)
    if m is None:
        return [job_id]
    base, out = m.group(1), []
    for part in m.group(2).split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        for i in range(int(lo), int(hi or lo) + 1):
            out.append(f"{base}_{i}")
    return out


def _base_id(job_id: str) -> str:
    return job_id.split("_", 1)[0]


def _id_sort_key(job_id: str) -> tuple[int, int]:
    base, _, idx = job_id.partition("_")
    try:
        return int(base), int(idx) if idx else -1
    except ValueError:
        return -1, -1


# ------------------------------------------------------------------------------------ params

# hydra-submitit-launcher name -> SlurmExecutor (sbatch) name; everything else is passed as is
_KEY_MAP = {"timeout_min": "time", "tasks_per_node": "ntasks_per_node", "mem_gb": "mem"}
# keys that are not sbatch parameters
_IGNORED_KEYS = {"name", "job_name", "max_num_timeout", "submitit_folder", "_target_"}


def _mem_str(mem_gb: float) -> str:
    mem_gb = float(mem_gb)
    return f"{int(mem_gb)}GB" if mem_gb == int(mem_gb) else f"{int(mem_gb * 1024)}MB"


def executor_parameters(slurm: Mapping[str, Any]) -> dict[str, Any]:
    """hydra-submitit-launcher style keys -> ``SlurmExecutor.update_parameters`` keywords.
    ``None`` values mean "submitit default". Raises ValueError for unknown keys."""
    from submitit import SlurmExecutor

    valid = SlurmExecutor._valid_parameters()
    out: dict[str, Any] = {}
    unknown = []
    for key, value in slurm.items():
        if value is None or key in _IGNORED_KEYS:
            continue
        if key == "timeout_min":
            # sbatch wants whole minutes: submitit writes the value verbatim into --time
            value = max(1, int(math.ceil(float(value))))
        elif key == "mem_gb":
            value = _mem_str(value)
        elif key in ("setup", "srun_args"):
            value = [str(v) for v in value]
        elif key == "additional_parameters":
            value = dict(value)
        elif key == "exclude" and not isinstance(value, str):
            value = ",".join(str(v) for v in value)
        elif key in ("signal_delay_s", "array_parallelism", "nodes", "cpus_per_task",
                     "gpus_per_node", "tasks_per_node"):
            value = int(value)
        name = _KEY_MAP.get(key, key)
        if name not in valid:
            unknown.append(key)
            continue
        out[name] = value
    if unknown:
        raise ValueError(
            f"unknown slurm option(s) {sorted(unknown)}; valid: "
            f"{sorted(set(valid) | set(_KEY_MAP)) }"
        )
    return out


# ------------------------------------------------------------------------------------ backend

#: first setup line of every job: its start time, before any setup line runs
JOB_T0_SETUP = "export ASHA_JOB_T0=$(date +%s.%N)"

#: What the job's python runs before submitit: a handler for the stop signals, installed before
#: the seconds of imports and unpickling that precede jobmain's own. Slurm may send the time-limit
#: USR2 "up to 60 s early", i.e. right at the start of a short job: with Python's default action
#: the job died as FAILED and the attempt counted as the trial's failure. The handler only notes
#: the signal in ASHA_EARLY_STOP; run_segment turns it into trial.should_stop().
JOB_BOOT = ("import os,signal,sys,runpy;"
            "h=lambda s,f:os.environ.setdefault('ASHA_EARLY_STOP',signal.Signals(s).name);"
            f"[signal.signal(getattr(signal,x),h) for x in {signals.CAUGHT!r}];"
            "sys.argv=sys.argv[3:];"  # python -u -c BOOT -u -m submitit.core._submit FOLDER
            "runpy.run_module('submitit.core._submit',run_name='__main__',alter_sys=True)")


def job_python(python: str | None = None) -> str:
    """The ``python`` submitit puts before ``-u -m submitit.core._submit FOLDER``: ``python``
    (``slurm.python``: a command found on the job's PATH after its setup lines, or a path),
    else the master's own interpreter."""
    import shlex
    import sys

    return f"{shlex.quote(python or sys.executable)} -u -c {shlex.quote(JOB_BOOT)}"


# sbatch errors that say the controller cannot take a job now, not that the job is wrong: the
# controller is down, restarting, failing over or overloaded, or a limit on jobs queued at once
_TRANSIENT_SBATCH = re.compile(
    r"unable to contact slurm controller|socket timed out|temporarily unable|"
    r"zero bytes were transmitted|connection refused|connection timed out|connection reset|"
    r"resource temporarily unavailable|communication connection failure|slurmctld is busy|"
    r"MaxSubmitJob|GrpSubmitJob|job submit limit reached", re.IGNORECASE)
# the user (or account, or QOS) has as many jobs submitted as it may (each array task counts)
_TOO_MANY_SBATCH = re.compile(r"MaxSubmitJob|GrpSubmitJob|job submit limit reached",
                              re.IGNORECASE)


def transient_sbatch_error(text: str) -> bool:
    """True when sbatch failed because the scheduler cannot take a job now (the same job may go
    through later), False when it refused the job itself (an invalid partition, account, QOS,
    GPU request: the config must change)."""
    return bool(_TRANSIENT_SBATCH.search(text))


def no_node_sbatch_error(text: str) -> bool:
    """True when sbatch refused because no node can take the job as asked: what its
    ``--exclude`` leaves of the partition (or a name there that is no node) cannot run it."""
    return "Requested node configuration is not available" in text \
        or "Invalid node name specified" in text


def too_many_sbatch_error(text: str) -> bool:
    """True when sbatch refused because the user may not have more jobs submitted at once."""
    return bool(_TOO_MANY_SBATCH.search(text))


# sbatch's refusals of a job's options, and the config key that sets each
_SBATCH_FIELDS = [
    (re.compile(r"invalid partition", re.I), "slurm.partition"),
    (re.compile(r"invalid account|invalid.*account.*partition combination", re.I), "slurm.account"),
    (re.compile(r"invalid qos", re.I), "slurm.qos"),
    (re.compile(r"invalid feature specification", re.I), "slurm.constraint"),
    (re.compile(r"invalid generic resource|gres", re.I), "slurm.gpus_per_node"),
    (re.compile(r"memory specification can not be satisfied|memory required", re.I), "slurm.mem_gb"),
    (re.compile(r"time limit|qosmaxwall", re.I), "slurm.timeout_min"),
    (re.compile(r"unrecognized option|invalid option|unknown option", re.I),
     "slurm.additional_parameters"),
    (re.compile(r"requested node configuration is not available", re.I),
     "slurm.gpus_per_node, cpus_per_task, mem_gb or constraint"),
]


def sbatch_error_field(text: str) -> str | None:
    """The config key behind sbatch's refusal of a job, where its text says (else None)."""
    return next((key for pattern, key in _SBATCH_FIELDS if pattern.search(text)), None)


_ONE_NODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# srun's line in the batch script's stderr when a task of the step ends badly ("srun: error:
# gpu17: task 1: Killed"); the first one names the task that failed first, the others follow
# as the step is ended (--kill-on-bad-exit)
_TASK_ENDED = re.compile(r"^srun: error: ([A-Za-z0-9][A-Za-z0-9._-]*): tasks? [0-9][^:]*: "
                         r"(?!Terminated)", re.M)
LOG_TAIL = 65536  # bytes of a job's stderr read for srun's line: the end of a step is near its end


# what slurmstepd ("Detected 1 oom_kill event in StepId=7.0", "oom-kill event(s)" in other
# releases) and srun ("task 0: Out Of Memory") write when the cgroup's memory limit killed a task
# what submitit writes in its folder before sbatch answers, and moves away once it has
_SUBMITIT_TEMPORARY = re.compile(r"[0-9a-f]{32}\.pkl|\.submission_file_[0-9a-f]{32}\.sh")
_OOM = re.compile(r"oom[-_]kill event|: tasks? [0-9][^:]*: Out Of Memory", re.I)


def _log_tail(err: Path | None) -> str:
    """The last LOG_TAIL bytes of a job's stderr ('' when there is none)."""
    if err is None:
        return ""
    try:
        with err.open("rb") as f:
            f.seek(max(0, err.stat().st_size - LOG_TAIL))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def first_failed_task_node(err: Path | None) -> str | None:
    """The node of the first task srun reported ending badly in a job's stderr, if any."""
    m = _TASK_ENDED.search(_log_tail(err))
    return m.group(1) if m else None


def killed_for_memory(err: Path | None) -> bool:
    """Whether Slurm says in a job's stderr that it killed a task for memory."""
    return _OOM.search(_log_tail(err)) is not None


@dataclass
class _Track:
    state: JobState = JobState.UNKNOWN
    submitted_at: float | None = None  # set when this backend submitted it
    seen: bool = False  # ever seen by sacct/squeue
    missing_since: float | None = None
    reason: str | None = None  # why Slurm keeps it pending (squeue's %r)
    node: str | None = None  # the one node it ran on (sacct's NodeList), once it started


class SlurmBackend(Backend):
    """Runs each SegmentSpec as a Slurm job through submitit's SlurmExecutor.

    ``slurm``: hydra-submitit-launcher keys (partition, qos, account, constraint, timeout_min,
    cpus_per_task, gpus_per_node, tasks_per_node, nodes, mem_gb, setup, additional_parameters,
    array_parallelism, signal_delay_s, exclude; other SlurmExecutor parameters pass through).
    ``fn(spec)`` runs in the job (default ``asha_hpc.job.jobmain.run_segment``).
    """

    name = "slurm"
    #: a job missing from sacct and squeue this long after it was first missed becomes LOST
    lost_grace_s: float = 60.0
    #: a job we submitted less than this ago and missing everywhere is UNKNOWN (accounting lag)
    submit_grace_s: float = 30.0
    #: after an sacct failure, use squeue alone for this long before trying sacct again
    sacct_retry_s: float = 300.0
    #: squeue is asked why pending jobs pend at most this often
    reasons_interval_s: float = 30.0
    #: timeout for each scheduler command
    command_timeout_s: float = 60.0

    @classmethod
    def from_config(cls, cfg: ExperimentConfig, exp_root: Path) -> SlurmBackend:
        return cls(str(exp_root), cfg.slurm.backend_options(),
                   poll_min_interval_s=cfg.slurm.poll_min_interval_s, python=cfg.slurm.python)

    @classmethod
    def capabilities(cls, cfg: ExperimentConfig) -> Capabilities:
        """Every segment gets a time limit (planned where ``timeout_min`` is auto), and the job
        its stop signal ``signal_delay_s`` before it; results cross NFS, which shows files
        late. Pool workers need one fixed time limit and one set of resources."""
        s = cfg.slurm
        no_pool = None
        if s.auto_time:
            no_pool = "slurm.timeout_min is auto (or per rung): pool workers need one fixed time limit"
        elif s.per_rung:
            no_pool = "slurm.per_rung gives rungs their own resources: pool workers hold one set"
        return Capabilities(result_grace_s=30.0, time_limits=s,
                            default_limit_min=s.timeout_min if isinstance(s.timeout_min, int) else None,
                            stop_warning_s=float(s.signal_delay_s), no_pool=no_pool)

    @classmethod
    def rung_resources(cls, cfg: ExperimentConfig, level: int) -> dict[str, Any]:
        return cfg.slurm.rung_options(level)

    @classmethod
    def excluding(cls, cfg: ExperimentConfig, resources: dict[str, Any],
                  nodes: set[str]) -> dict[str, Any]:
        """``--exclude``: the rung's (else the slurm section's) and ``nodes``."""
        if not nodes:
            return resources
        return dict(resources, exclude=exclude_list(resources.get("exclude", cfg.slurm.exclude),
                                                    nodes))

    @classmethod
    def log_files(cls, jobs_dir: Path, job_id: str) -> tuple[Path | None, Path | None] | None:
        """``jobs/<id>_0_log.out`` (``<array>_<task>`` for arrays); folders written before
        logs moved out of the job's own folder have ``jobs/<id>/<id>_0_log.out``."""
        if ":" in job_id or "/" in job_id or job_id in ("", ".", ".."):
            return None
        return submitit_logs([jobs_dir / job_id, jobs_dir], job_id)

    def __init__(
        self,
        exp_dir: str,
        slurm: Mapping[str, Any] | None = None,
        fn: Callable[[JobSpec], Any] | None = None,
        poll_min_interval_s: float = 10.0,
        python: str | None = None,
    ) -> None:
        self.exp_dir = Path(exp_dir).absolute()
        self.slurm = dict(slurm or {})
        self.params = executor_parameters(self.slurm)
        # Slurm must not requeue a trial job (preemption, node failure, `scontrol requeue`): the
        # job publishes "interrupted" (or dies), the master submits the segment again as a new
        # attempt, and the requeued job (same id, same attempt) would then run the trial's code
        # a second time, next to its successor. An explicit requeue/no_requeue is kept.
        extra = dict(self.params.get("additional_parameters") or {})
        if not {k.replace("-", "_") for k in extra} & {"requeue", "no_requeue"}:
            extra["no_requeue"] = True
        self.params["additional_parameters"] = extra
        # the job's start, before any setup line (module load, venv): run times for the
        # time-limit model (jobmain reads it into the result's job_started)
        # a setup line that fails ends the job before its code runs (`module load` of a module
        # that is not there), rather than leaving a trial to run without what it loads
        given = list(self.params.get("setup") or [])
        self.params["setup"] = [JOB_T0_SETUP] + (["set -e", *given, "set +e"] if given else [])
        self.python = python
        self.fn = fn
        self.poll_min_interval_s = float(poll_min_interval_s)
        self.jobs_dir = self.exp_dir / JOBS
        self.batches_dir = self.jobs_dir / "batches"
        self.logs_dir = self.jobs_dir  # where log_files() looks
        self.max_array_size: int | None = None  # read once from scontrol show config
        self._config: str | None = None  # scontrol show config, once it answered
        self._accounting_read = False
        self._accounting_limits: AccountingLimits | None = None
        self._accounting_after = float("-inf")  # after a failed read: not asked again before
        self._accounting_warned = False  # a failed read is said once
        self._executors: dict[str, Any] = {}  # one per distinct parameter set (time, resources)
        self._max_time: tuple[dict[str, int | None], str | None] | None = None
        self._max_time_given = False  # set_max_time: kept when the limits are read again
        self._jobs: dict[str, _Track] = {}
        self._last_poll = float("-inf")
        self._sacct_down_until = float("-inf")
        self._sinfo_after = float("-inf")  # after a failed sinfo: not asked again before
        self._reasons_at = float("-inf")  # when squeue was last asked why jobs pend
        self._created = self.clock.time()
        self.stats: dict[str, int] = {
            "sbatch": 0, "sacct": 0, "squeue": 0, "scancel": 0, "scontrol": 0,
            "sacct_errors": 0, "squeue_errors": 0, "polls": 0, "submit_errors": 0,
        }

    # ------------------------------------------------------------------ helpers
    def query_calls_per_minute(self) -> float:
        """(sacct + squeue calls) per minute since this backend was created."""
        minutes = max(1e-9, (self.clock.time() - self._created) / 60.0)
        return (self.stats["sacct"] + self.stats["squeue"]) / minutes

    def _run(self, kind: str, cmd: list[str]) -> subprocess.CompletedProcess | None:
        """Run a scheduler command (counted in stats[kind]); None if it could not run."""
        self.stats[kind] = self.stats.get(kind, 0) + 1
        try:
            return subprocess.run(cmd, capture_output=True, text=True,
                                  timeout=self.command_timeout_s, check=False)
        except (OSError, subprocess.SubprocessError) as e:
            log.warning("%s failed: %s", " ".join(cmd[:1]), e)
            return None

    def _get_fn(self) -> Callable[[JobSpec], Any]:
        if self.fn is None:
            from ..job.jobmain import run_job

            self.fn = run_job
        return self.fn

    def _get_executor(self, key: str = "", params: dict[str, Any] | None = None) -> Any:
        ex = self._executors.get(key)
        if ex is None:
            from submitit import SlurmExecutor

            self.jobs_dir.mkdir(parents=True, exist_ok=True)
            ex = SlurmExecutor(folder=str(self.jobs_dir / "%j"), max_num_timeout=0,
                               python=job_python(self.python))
            ex.update_parameters(**(self.params if params is None else params))
            self._executors[key] = ex
        return ex

    def spec_parameters(self, spec: JobSpec) -> tuple[str, dict[str, Any]]:
        """(key, executor parameters) of a spec: the backend's, with the spec's per-rung
        ``resources`` and its ``timeout_min``. Specs with equal keys can share an array (all
        tasks of an array have one time limit and one set of resources)."""
        if spec.timeout_min is None and not spec.resources:
            return "", self.params
        params = dict(self.params)
        if spec.resources:
            over = executor_parameters(spec.resources)
            if "additional_parameters" in over:
                over["additional_parameters"] = dict(params.get("additional_parameters") or {},
                                                     **over["additional_parameters"])
            params.update(over)
        if spec.timeout_min is not None:
            params["time"] = max(1, int(spec.timeout_min))
        return json.dumps(params, sort_keys=True, default=str), params

    def set_max_time(self, limits: Mapping[str, int | None], default: str | None = None) -> None:
        """Use these MaxTime values (minutes, None = no limit) instead of asking sinfo."""
        self._max_time = (dict(limits), default)
        self._max_time_given = True

    def max_time_min(self, partition: str | None = None) -> int | None:
        """The partition's MaxTime in minutes (None: INFINITE or unknown); the default
        partition when ``partition`` is None. ``sinfo -h -o '%P %l'`` once, then cached."""
        if self._max_time is None:
            from ..master.timelimits import parse_partition_limits

            now = self.clock.time()
            if now < self._sinfo_after:
                return None
            res = self._run("sinfo", ["sinfo", "-h", "-o", "%P %l"])
            if res is None or res.returncode != 0:  # the controller may be restarting: ask
                self._sinfo_after = now + 10.0  # again soon; not capped until then
                log.warning("sinfo failed: partition time limits unknown, not capped until "
                            "sinfo answers")
                return None
            self._max_time = parse_partition_limits(res.stdout)
        limits, default = self._max_time
        name = partition or default
        return limits.get(name) if name else None

    def _show_config(self) -> str | None:
        """``scontrol show config``, read once it answers (None while it fails)."""
        if self._config is None:
            res = self._run("scontrol", ["scontrol", "show", "config"])
            if res is not None and res.returncode == 0:
                self._config = res.stdout
        return self._config

    def _array_chunk_size(self) -> int:
        if self.max_array_size is None:
            size = 1001
            m = re.search(r"^MaxArraySize\s*=\s*(\d+)", self._show_config() or "", re.M)
            if m:
                size = int(m.group(1))
            self.max_array_size = size
        # task indices run 0..n-1 and must stay below MaxArraySize
        return max(1, self.max_array_size - 1)

    def _accounting(self) -> AccountingLimits | None:
        """This user's QOS and association limits, where the cluster enforces them; read
        once. None where it does not enforce them, or while they cannot be read (then jobs
        are capped by MaxTime alone, and they are asked for again 5 minutes later)."""
        now = self.clock.time()
        if self._accounting_read or now < self._accounting_after:
            return self._accounting_limits
        config = self._show_config()
        if config is None or not enforces_limits(config):
            self._accounting_read = config is not None
            self._accounting_after = now + 10.0
            return None
        user = _user_name()
        cmds = {"qos": ["sacctmgr", "-nP", "show", "qos", "format=Name,MaxWall,Flags"],
                "assoc": ["sacctmgr", "-nP", "show", "assoc", "where", f"user={user}",
                          "format=Account,Partition,MaxWall,DefaultQOS,QOS"],
                "user": ["sacctmgr", "-nP", "show", "user", user, "format=DefaultAccount"],
                "partition": ["scontrol", "show", "partition", "-o"]}
        out: dict[str, str] = {}
        for key, cmd in cmds.items():
            res = self._run(cmd[0], cmd)
            if res is None or res.returncode != 0:
                self._accounting_after = now + 300.0
                why = (res.stderr.strip().splitlines() or ["no answer"])[-1] if res else "did not run"
                (log.debug if self._accounting_warned else log.warning)(
                    "%s failed (%s): the QOS and association time limits of this cluster are "
                    "unknown, jobs are capped by their partition's MaxTime alone until it answers",
                    " ".join(cmd[:3]), why)
                self._accounting_warned = True
                return None
            out[key] = res.stdout
        self._accounting_read = True
        self._accounting_limits = AccountingLimits(
            qos=parse_qos(out["qos"]), assocs=parse_assocs(out["assoc"]),
            default_account=(out["user"].strip().splitlines() or [""])[0].strip().lower(),
            partition_qos=parse_partition_qos(out["partition"]))
        return self._accounting_limits

    def forget_limits(self) -> None:
        if self._max_time is not None and not self._max_time_given:
            self._max_time = None
        self._accounting_read, self._accounting_after = False, float("-inf")
        self._accounting_limits = None
        self._config = None

    def time_cap(self, partition: str | None = None, qos: str | None = None,
                 account: str | None = None) -> TimeCap:
        """The partition's MaxTime, or a shorter QOS or association MaxWall where the cluster
        enforces those (slurm_limits.py). ``qos``/``account``: the job's, else the backend's
        ``slurm.qos``/``slurm.account``."""
        limit = self.max_time_min(partition)
        name = partition or (self._max_time[1] if self._max_time is not None else None)
        return time_cap(name, limit, qos=qos or self.slurm.get("qos"),
                        account=account or self.slurm.get("account"),
                        accounting=self._accounting())

    # ------------------------------------------------------------------ submit
    def submit(self, specs: Sequence[JobSpec]) -> list[str]:
        """Specs are grouped by time limit and per-rung resources (``spec_parameters``: an
        array's tasks share both); per group, one spec -> one sbatch, several -> one ``sbatch
        --array`` per chunk below MaxArraySize. Ids come back in the specs' order. All or
        nothing: if a chunk fails, the chunks already submitted are cancelled and SubmitError is
        raised."""
        specs = list(specs)
        if not specs:
            return []
        groups: dict[str, list[int]] = {}  # specs with one time limit and resources: one array
        params: dict[str, dict[str, Any]] = {}
        for i, spec in enumerate(specs):
            key, params[key] = self.spec_parameters(spec)
            groups.setdefault(key, []).append(i)
        out: list[str | None] = [None] * len(specs)
        done: list[str] = []
        try:
            for key, idx in groups.items():
                size = self._array_chunk_size() if len(idx) > 1 else 1
                for start in range(0, len(idx), size):
                    part = idx[start:start + size]
                    got = self._submit_chunk([specs[i] for i in part], key, params[key])
                    for i, jid in zip(part, got):
                        out[i] = jid
                    done.extend(got)
        except SubmitError:
            if done:
                self.cancel(done)
            raise
        ids = [str(j) for j in out]
        now = self.clock.time()
        for jid in ids:
            self._jobs[jid] = _Track(state=JobState.PENDING, submitted_at=now)
        return ids

    def _submit_chunk(self, chunk: list[JobSpec], key: str = "",
                      params: dict[str, Any] | None = None) -> list[str]:
        import submitit

        ex = self._get_executor(key, params)
        fn = self._get_fn()
        manifest: Path | None = None
        try:
            with submitit.helpers.clean_env():
                ex.update_parameters(**self._log_parameters(params or self.params,
                                                            array=len(chunk) > 1))
                if len(chunk) == 1:
                    ex.update_parameters(job_name=chunk[0].job_name)
                    self.stats["sbatch"] += 1
                    return [str(ex.submit(fn, chunk[0]).job_id)]
                token = uuid.uuid4().hex[:12]
                name = f"asha-{chunk[0].experiment}-batch-{token}"
                manifest = self.batches_dir / f"{token}.json"
                record: dict[str, Any] = {"name": name, "keys": [s.key for s in chunk],
                                          "job_id": None}
                _write_json(manifest, record)
                ex.update_parameters(job_name=name)
                self.stats["sbatch"] += 1
                with ex.batch():
                    jobs = [ex.submit(fn, spec) for spec in chunk]
                ids = [str(j.job_id) for j in jobs]
                record["job_id"] = _base_id(ids[0])
                try:
                    _write_json(manifest, record)
                except OSError as e:  # the array exists: find() falls back to its name
                    log.warning("could not record array %s in %s: %s", ids[0], manifest, e)
                return ids
        except Exception as e:  # sbatch error, unparsable output, pickling error ...
            self.stats["submit_errors"] += 1
            self._remove_orphans()
            if manifest is not None:
                _unlink(manifest)
            msg = str(e).strip().splitlines()
            field = sbatch_error_field(str(e))
            raise SubmitError(
                f"sbatch failed for {len(chunk)} segment(s) ({chunk[0].key}...): "
                f"{type(e).__name__}: {' / '.join(msg[-3:])}"
                + (f" (set by {field} in the config)" if field else ""),
                transient=transient_sbatch_error(str(e)),
                too_many=too_many_sbatch_error(str(e)),
                no_node=no_node_sbatch_error(str(e))) from e

    def _log_parameters(self, params: Mapping[str, Any], array: bool) -> dict[str, Any]:
        """sbatch's and srun's ``--output`` and ``--error`` in ``jobs/`` itself, named as
        submitit names them (``<id>_<task>_log.out``). Slurm does not make a log's folder, and
        submitit makes ``jobs/<id>/`` only once sbatch has answered with the id: a job that
        starts at once (an idle partition; the backfill starts an array's tasks together) would
        find no folder for its log and die before its code runs. The pickles stay in
        ``jobs/<id>/``: submitit's job waits for its own. (The config refuses log paths of the
        user's own: ``asha-hpc logs`` and fail-fast read these.)"""
        extra = dict(params.get("additional_parameters") or {})
        job = "%A_%a" if array else "%j"
        out, err = (str(self.logs_dir / f"{job}_%t_log.{ext}") for ext in ("out", "err"))
        extra["output"] = out.replace("%t", "0")
        srun = [*(params.get("srun_args") or []), "--output", out]
        if not params.get("stderr_to_stdout"):
            extra["error"] = err.replace("%t", "0")
            srun += ["--error", err]
        return {"additional_parameters": extra, "srun_args": srun}

    def _remove_orphans(self) -> None:
        """Remove what submitit left in ``jobs/`` for a submission that failed: its pickles
        (``<uuid>.pkl``: one that went through moved them into its jobs' folders) and its
        sbatch file (``.submission_file_<uuid>.sh``: one that went through left a link to its
        job's copy there instead). Nothing is listed before a submission: ``jobs/`` holds
        every job's logs, tens of thousands of names in a long search."""
        try:
            names = os.listdir(self.jobs_dir)
        except OSError:
            return
        for n in names:
            p = self.jobs_dir / n
            if _SUBMITIT_TEMPORARY.fullmatch(n) and not p.is_symlink() and p.is_file():
                _unlink(p)

    # ------------------------------------------------------------------ states
    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """Cached states; at most one poll (one sacct call, plus one squeue call for jobs that
        sacct does not show, or instead of sacct when it fails) per ``poll_min_interval_s``.
        A poll covers every tracked unfinished job, not only ``job_ids``."""
        ids = [str(j) for j in job_ids]
        for jid in ids:
            if jid not in self._jobs:
                self._jobs[jid] = _Track()
        if any(not self._jobs[j].state.terminal for j in ids):
            now = self.clock.time()
            if now - self._last_poll >= self.poll_min_interval_s:
                self._poll(now)
        return {j: self._jobs[j].state for j in ids}

    def _poll(self, now: float) -> None:
        active = [j for j, t in self._jobs.items() if not t.state.terminal]
        if not active:
            return
        self._last_poll = now
        self.stats["polls"] += 1
        found: dict[str, JobState] = {}
        reasons: dict[str, str] = {}  # squeue's, for pending jobs
        answered = False  # did any source answer at all?
        sacct_ok = False
        if now >= self._sacct_down_until:
            res = self._sacct(active)
            if res is None:
                self._sacct_down_until = now + self.sacct_retry_s
            else:
                found.update(res)
                answered = sacct_ok = True
        missing = [j for j in active if j not in found]
        if missing and not (sacct_ok and all(self._recent(j, now) for j in missing)):
            res = self._squeue(missing, reasons)
            if res is not None:
                found.update(res)
                answered = True
        # why jobs pend: only the controller knows it now (sacct's Reason is the one the
        # accounting database got at submission: a job that waits for Resources, or is held
        # back by a limit found later, still shows None there)
        waiting = [j for j in active if found.get(j) == JobState.PENDING and j not in reasons]
        if waiting and now - self._reasons_at >= self.reasons_interval_s:
            self._reasons_at = now
            self._squeue(waiting, reasons)
        for jid in active:
            t = self._jobs[jid]
            st = found.get(jid)
            if st is not None:
                t.state, t.seen, t.missing_since = st, True, None
                if st != JobState.PENDING:
                    t.reason = None
                elif jid in reasons:
                    t.reason = reasons[jid]
                continue
            if not answered:
                continue  # the scheduler did not answer: keep what we knew
            if t.missing_since is None:
                t.missing_since = now
            if self._recent(jid, now):
                if t.state not in (JobState.PENDING, JobState.RUNNING):
                    t.state = JobState.UNKNOWN
            elif now - t.missing_since >= self.lost_grace_s:
                # without accounting (sacct down or disabled) a job that ended leaves squeue
                # without a word; one that left its log file ran, and its log may say how
                t.state = self._ended_how(jid)
            elif t.state not in (JobState.PENDING, JobState.RUNNING):
                t.state = JobState.UNKNOWN

    def _ended_how(self, jid: str) -> JobState:
        """How job ``jid`` ended, known from its log files alone: LOST without one (Slurm
        opens them when the job starts), OUT_OF_MEMORY where Slurm says it killed a task for
        memory (the trial's own fault, as sacct would say), else ENDED (unaccounted)."""
        found = self.log_files(self.jobs_dir, jid)
        if found is None or all(p is None for p in found):
            return JobState.LOST
        return JobState.OUT_OF_MEMORY if killed_for_memory(found[1]) else JobState.ENDED

    def _recent(self, jid: str, now: float) -> bool:
        t = self._jobs[jid]
        return t.submitted_at is not None and now - t.submitted_at < self.submit_grace_s

    def node_of(self, job_id: str) -> str | None:
        """The node it ran on; for a job of several nodes that ended, the node of the task
        that failed first (srun says so in the job's log), else None."""
        t = self._jobs.get(str(job_id))
        if t is None:
            return None
        if t.node is None and t.state.counts_as_restart:  # not a time limit's nor a cancel's
            found = self.log_files(self.jobs_dir, str(job_id))
            return first_failed_task_node(found[1] if found else None)
        return t.node

    def pending(self, job_ids: Sequence[str]) -> dict[str, Pending]:
        out = {}
        for jid in map(str, job_ids):
            t = self._jobs.get(jid)
            if t is not None and t.state == JobState.PENDING and t.reason:
                out[jid] = classify(t.reason, jid)
        return out

    def _sacct(self, ids: Sequence[str]) -> dict[str, JobState] | None:
        """States of ``ids`` (and of their arrays' tasks)."""
        # ask for the array's base id: one argument covers all its tasks
        query = sorted({_base_id(j) for j in ids}, key=_id_sort_key)
        cmd = ["sacct", "-X", "-n", "-o", "JobID,State,ExitCode,NodeList", "--parsable2", "-j",
               ",".join(query)]
        res = self._run("sacct", cmd)
        if res is None or res.returncode != 0:
            self.stats["sacct_errors"] += 1
            if res is not None:
                log.warning("sacct failed (rc %s): %s; using squeue", res.returncode,
                            res.stderr.strip()[:200])
            return None
        out: dict[str, JobState] = {}
        for line in res.stdout.splitlines():
            parts = line.split("|")
            if len(parts) < 2:
                continue
            st = parse_slurm_state(parts[1], parts[2] if len(parts) > 2 else "")
            # one node's name ("gpu17"; not "gpu[01-02]" nor "None assigned"): where it ran
            node = parts[3].strip() if len(parts) > 3 and _ONE_NODE.fullmatch(parts[3].strip()) \
                else None
            for jid in expand_job_ids(parts[0]):
                out[jid] = st
                if node and jid in self._jobs:
                    self._jobs[jid].node = node
        # right after an array is submitted, sacct shows it as one plain "<base>|PENDING" row
        # until its tasks are split off: its tasks are pending too
        for jid in ids:
            base = _base_id(jid)
            if jid not in out and base != jid and out.get(base) is JobState.PENDING:
                out[jid] = JobState.PENDING
        return out

    def _squeue(self, ids: Sequence[str], reasons: dict[str, str]) -> dict[str, JobState] | None:
        query = sorted({_base_id(j) for j in ids}, key=_id_sort_key)
        cmd = ["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T|%r", "-j", ",".join(query)]
        res = self._run("squeue", cmd)
        if res is None:
            self.stats["squeue_errors"] += 1
            return None
        if res.returncode != 0:
            # one unknown id alone: "slurm_load_jobs error: Invalid job id specified"
            if "Invalid job id" in res.stderr:
                return {}
            self.stats["squeue_errors"] += 1
            log.warning("squeue failed (rc %s): %s", res.returncode, res.stderr.strip()[:200])
            return None
        out: dict[str, JobState] = {}
        for line in res.stdout.splitlines():
            jid, _, rest = line.partition("|")
            state, _, reason = rest.partition("|")
            st = parse_slurm_state(state)
            for j in expand_job_ids(jid):
                out[j] = st
                if st == JobState.PENDING and reason.strip():
                    reasons[j] = reason.strip()
        return out

    # ------------------------------------------------------------------ cancel / find
    def cancel(self, job_ids: Sequence[str]) -> None:
        """One scancel call for all ids; unknown or finished ids are ignored."""
        ids = [str(j) for j in job_ids]
        if not ids:
            return
        res = self._run("scancel", ["scancel", *ids])
        if res is not None and res.returncode != 0:
            log.info("scancel rc %s: %s", res.returncode, res.stderr.strip()[:200])

    def pause(self, job_ids: Sequence[str]) -> list[str]:
        """Pending jobs are cancelled; running ones get ``scancel --signal=URG``
        (signals.PAUSE). scancel's own SIGTERM goes to every process of the job and kills what
        the training script depends on before it can save: a wrapper's ``sh`` (the job then
        drops the checkpoint its child writes), a DataLoader's workers. SIGURG ends nobody by
        default: the job's Python catches it and tells the command through its stop file, as
        for a time limit. All ids are returned: the master cancels those still there after
        the grace (a command that never looks at its stop file)."""
        ids = [str(j) for j in job_ids]
        if not ids:
            return []
        # pending first: one that starts in between gets the signal
        for args in (["--state=PENDING"], [f"--signal={signals.PAUSE[3:]}", "--state=RUNNING"]):
            res = self._run("scancel", ["scancel", *args, *ids])
            if res is not None and res.returncode != 0:
                log.info("scancel %s rc %s: %s", " ".join(args), res.returncode,
                         res.stderr.strip()[:200])
        return ids

    def find(self, spec: JobSpec) -> str | None:
        """Job id of ``spec``'s submission, or None: first the array manifests (no scheduler
        call when the array's id was recorded), then the job name in squeue and sacct."""
        for record, index in self._manifests_of(spec):
            base = record.get("job_id")
            if not base:
                found = self._lookup_name(record["name"])
                base = _base_id(found) if found else None
            if base and self._is_ours(f"{base}_{index}"):
                return f"{base}_{index}"
        return self._lookup_name(spec.job_name)

    def _manifests(self) -> list[dict[str, Any]]:
        """Every array submission's manifest that reads as one."""
        out = []
        for path in sorted(self.batches_dir.glob("*.json")) if self.batches_dir.is_dir() else []:
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            keys = record.get("keys") if isinstance(record, dict) else None
            if isinstance(keys, list) and all(isinstance(k, str) for k in keys):
                out.append(record)
        return out

    def _manifests_of(self, spec: JobSpec) -> list[tuple[dict[str, Any], int]]:
        """(array manifest, task index) of each array submission that held ``spec``."""
        return [(r, r["keys"].index(spec.key)) for r in self._manifests() if spec.key in r["keys"]]

    def cancel_strays(self, specs: Sequence[JobSpec]) -> list[str]:
        """A master killed between sbatch's answer and submitit moving the job's pickle into
        ``jobs/<id>/`` leaves a job that would hold its node for submitit's 60 s wait for that
        pickle, then fail. Such a job is known by its name (``spec``'s, or its array's) and its
        batch script, which submitit writes in this experiment's ``jobs/``: a job of the same
        name from another experiment folder has its script elsewhere. One squeue call."""
        names = {spec.job_name for spec in specs}
        keys = {spec.key for spec in specs}
        # each manifest read once, however many specs were lost (a whole array's, after a kill)
        names.update(str(r.get("name")) for r in self._manifests() if keys & set(r["keys"]))
        if not names:
            return []
        # not COMPLETING: a job cancelled a moment ago is one no longer
        res = self._run("squeue", ["squeue", "-h", "-r", "-o", "%i|%o",
                                   "-t", "PENDING,CONFIGURING,RUNNING,SUSPENDED",
                                   f"--name={','.join(sorted(names))}"])
        if res is None or res.returncode != 0:
            return []
        here = os.path.realpath(self.jobs_dir)
        strays = []
        for line in res.stdout.splitlines():
            job, _, script = line.partition("|")
            for jid in expand_job_ids(job):
                if os.path.dirname(os.path.realpath(script.strip())) == here and \
                        not self._is_ours(jid):
                    strays.append(jid)
        self.cancel(strays)
        self._remove_orphans()  # their sbatch files and pickles, never moved
        return strays

    def _is_ours(self, job_id: str) -> bool:
        """The job was submitted into this experiment directory and got its pickle: submitit
        moves ``<exp>/jobs/<id>/<id>_submitted.pkl`` into place right after sbatch returns. A
        job without it (the master died in between) is a stray (``cancel_strays``), and a job of
        the same name from another experiment directory has no folder here."""
        return (self.jobs_dir / job_id / f"{job_id}_submitted.pkl").exists()

    def _lookup_name(self, name: str) -> str | None:
        """Newest job id named ``name`` (squeue, then sacct over all time) submitted from this
        experiment directory (for an array: any of its tasks)."""
        ids: list[str] = []
        res = self._run("squeue", ["squeue", "-h", "-r", "-t", "all", "-o", "%i",
                                   f"--name={name}"])
        if res is not None and res.returncode == 0:
            for line in res.stdout.splitlines():
                ids.extend(expand_job_ids(line))
        if not any(self._is_ours(j) for j in ids):
            res = self._run("sacct", ["sacct", "-X", "-n", "--parsable2", "-o", "JobID",
                                      "-S", "2000-01-01", f"--name={name}"])
            if res is not None and res.returncode == 0:
                for line in res.stdout.splitlines():
                    ids.extend(expand_job_ids(line.split("|")[0]))
        ids = [j for j in ids if self._is_ours(j)]
        if not ids:
            return None
        return max(ids, key=_id_sort_key)


# ------------------------------------------------------------------------------------ files


def _user_name() -> str:
    """The user jobs run as (sacctmgr's ``user=``)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, obj)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


__all__ = ["SlurmBackend", "parse_slurm_state", "expand_job_ids", "executor_parameters"]

"""Experiment config: YAML -> validated dataclasses.

Keys follow Determined's experiment config (``searcher``, ``hyperparameters``, ``max_restarts``,
``reproducibility``); a Determined file loads as it is (compat/determined_config.py maps its
other keys or names them as ignored, one warning each); the runtime sections
(``backend``, ``local``, ``slurm``, ``simulated``) are ours, with Slurm keys named as in
hydra-submitit-launcher. Every problem in a file is reported at once, each naming its dotted path
(``searcher.divisor: must be > 1, got 1``); unknown keys get a "did you mean" suggestion.
"""
from __future__ import annotations

import difflib
import math
import os
import re
import secrets
import shlex
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, shown
from .master.timelimits import SIGNAL_EARLY_S
from .space import _is_int
from .yamlfile import compose_yaml, read_yaml

SEARCHER_NAMES = ("adaptive_asha", "async_halving", "random", "grid", "single")
MODES = ("aggressive", "standard", "conservative")
ASHA_RULES = ("paper", "determined_0.37", "determined_0.38")  # searcher/asha.py RULES
LENGTH_UNITS = ("batches", "epochs", "records")
HUNG_AFTER_S = 900.0  # hung_after_s's default
BACKENDS = ("local", "slurm", "simulated")


@dataclass
class SearcherConfig:
    """The ``searcher`` section, Determined-compatible keys, defaults as in the spec."""

    name: str = "adaptive_asha"  # adaptive_asha | async_halving | random | grid | single
    metric: str = ""
    smaller_is_better: bool = True
    max_length: int = 1
    length_unit: str = "units"  # batches | epochs | records | units | a name (display only)
    max_trials: int = 1
    max_concurrent_trials: int = 16
    mode: str = "standard"  # aggressive | standard | conservative
    divisor: float = 4.0
    max_rungs: int = 5
    bracket_rungs: list[int] | None = None
    num_rungs: int = 5  # async_halving only
    stop_once: bool = False
    asha_rule: str = "paper"  # paper | determined_0.37 | determined_0.38 (searcher/asha.py RULES)
    time_metric: str | None = None  # Determined 0.38: the validation metric counting length
    until_exit: bool = False  # Determined 0.38 without a length: a trial runs until its script ends
    sampler: str = "random"  # random | tpe | gp (searcher/tpe.py, gp.py): how new trials are drawn
    random_fraction: float = 1 / 3  # tpe, gp: share of the draws that stay random
    max_compute: int | None = None  # units of length summed over every segment: a cap on the search
    # configurations the first trials take, in order (space.py check_point): defaults, or the
    # best of an earlier search; what a point leaves out is drawn as usual
    points_to_evaluate: list[dict[str, Any]] = field(default_factory=list)
    # an earlier experiment folder (relative: to the config's folder) whose results the model
    # sampler fits on from the first trial (master/warmstart.py); read once, then journaled
    warm_start: str | list[str] | None = None


@dataclass
class LocalConfig:
    """``local``: submitit's LocalExecutor on this machine. asha_hpc itself limits how many
    segments run at once and gives each its own GPUs (submitit alone gives all jobs the same)."""

    gpus: list[str] = field(default_factory=list)  # GPU ids to hand out; empty: CPU only
    gpus_per_trial: int = 0
    trials_per_gpu: int = 1
    max_parallel: int = 1  # segments running at once
    tasks_per_node: int = 1  # ranks per trial (torch.distributed; one process each)
    # "auto": warm workers or a job per segment, from measurements (autoworkers.py); N > 0: a
    # pool of N long-lived worker processes (pool.py); 0: a job per segment
    workers: int | str = "auto"


@dataclass
class SlurmConfig:
    """``slurm``: resources per segment job, named as in hydra-submitit-launcher."""

    partition: str | None = None
    qos: str | None = None
    account: str | None = None
    constraint: str | None = None
    exclude: str | None = None
    timeout_min: int | str = 60  # minutes, or "auto": fitted to each segment (timelimits.py)
    cpus_per_task: int | None = None
    gpus_per_node: int | None = None
    tasks_per_node: int = 1
    nodes: int = 1
    mem_gb: float | None = None
    setup: list[str] = field(default_factory=list)
    additional_parameters: dict[str, Any] = field(default_factory=dict)
    array_parallelism: int | None = None
    signal_delay_s: int = 90
    poll_min_interval_s: float = 10.0  # at most one sacct/squeue call per this many seconds
    workers: int | str = "auto"  # as local.workers: "auto", N (a pool), or 0
    trials_per_gpu: int = 1  # pool workers per job, sharing its GPUs
    # time limits per segment (asha_hpc/master/timelimits.py): per rung level, the last entry for deeper
    # rungs; an entry is minutes or "auto"
    timeout_min_per_rung: list[int | str] | None = None
    first_guess_min: int = 60  # timeout_min auto: the limit before anything was measured
    time_safety_factor: float = 1.5  # timeout_min auto: estimate x this (+ the signal's lead)
    per_rung: list[dict[str, Any]] = field(default_factory=list)  # resources per rung level
    python: str | None = None  # the jobs' interpreter; None: the master's (sys.executable)

    @property
    def auto_time(self) -> bool:
        """True when the master plans a time limit per segment (auto or per-rung values)."""
        return self.timeout_min == "auto" or bool(self.timeout_min_per_rung)

    def backend_options(self) -> dict[str, Any]:
        """What SlurmBackend takes: the sbatch-related keys (asha_hpc's own knobs removed).
        A trial of several tasks gets ``srun --kill-on-bad-exit=1``: one dead rank ends the
        step, so the segment fails once instead of leaving the other ranks hanging."""
        d = asdict(self)
        for k in ("poll_min_interval_s", "timeout_min_per_rung", "first_guess_min",
                  "time_safety_factor", "per_rung", "workers", "trials_per_gpu", "python"):
            d.pop(k)
        if self.timeout_min == "auto":  # each spec carries its own; this is the default
            d["timeout_min"] = self.first_guess_min
        if self.tasks_per_node * self.nodes > 1:
            d["srun_args"] = ["--kill-on-bad-exit=1"]
        return d

    def rung_options(self, level: int) -> dict[str, Any]:
        """``per_rung`` overrides for a rung level (the last entry for deeper rungs; {} without
        ``per_rung``), with ``srun_args`` when they make the trial multi-task."""
        if not self.per_rung:
            return {}
        d = dict(self.per_rung[min(level, len(self.per_rung) - 1)])
        tasks = d.get("tasks_per_node", self.tasks_per_node) * d.get("nodes", self.nodes)
        if tasks > 1 and self.tasks_per_node * self.nodes <= 1:
            d["srun_args"] = ["--kill-on-bad-exit=1"]
        return d


@dataclass
class SimulatedConfig:
    """``simulated``: a virtual clock and a synthetic learning curve instead of processes."""

    unit_seconds: float = 60.0  # virtual seconds per training unit
    startup_seconds: float = 0.0  # virtual seconds of start-up per segment job
    queue_wait_seconds: float = 0.0  # virtual seconds a job waits before it starts
    duration_noise: float = 0.1  # relative spread of segment durations
    failure_rate: float = 0.0  # chance that a segment attempt crashes
    result_delay_seconds: float = 0.0  # results show up this long after the job ends (NFS)
    workers: int | None = None  # GPUs: segments running at once (None: no limit)
    pool: int | str = 0  # > 0: a worker pool of this many jobs; "auto" as local.workers
    curve: str | None = None  # 'module:function' (hparams, length, seed) -> metric; None:
    # the built-in synthetic curve (a hash of the hyperparameters, which nothing can learn)
    nodes: int = 1  # nodes the jobs run on (each job on the least busy one it may use)
    broken_nodes: int = 0  # of them, this many fail every segment sent to them (a broken GPU)
    # how they fail it: "fail" (the segment fails a few seconds in, with a CUDA error) or
    # "die" (every job there ends before its code runs, sending nothing: a missing mount)
    broken_how: str = "fail"
    repaired_after_s: float | None = None  # broken nodes work again from this (virtual) time


@dataclass
class ExperimentConfig:
    """One experiment, validated. ``config_dir`` is the context directory: it goes on sys.path
    (and is a command's working directory) in the master and in every job."""

    name: str
    entrypoint: str | list[str]
    searcher: SearcherConfig
    hyperparameters: dict[str, Any]
    config_dir: str
    description: str = ""
    max_restarts: int = 5
    # an excluded node is taken back after this many hours, twice as long after each further
    # exclusion (None: only by ``resume --readmit-node``)
    readmit_nodes_after_h: float | None = None
    # until a segment has worked (since the start or --retry-failed): at most this many jobs,
    # in waves, so that a bug every trial shares costs this many jobs, not max_concurrent_trials
    probe_jobs: int = 3
    experiment_seed: int = 0
    backend: str = "local"
    experiment_dir: str | None = None
    poll_interval_s: float = 1.0
    result_grace_s: float | None = None  # wait for a late result (NFS); None: per backend
    save_experiment_best: int = 3
    # > 0: every trial keeps its newest checkpoint (Determined's save_trial_latest); 0: only
    # those retention.py keeps
    save_trial_latest: int = 0
    slots_per_trial: int = 1  # Determined's resources.slots_per_trial (the Core API shim's slots)
    checkpoint_folder: str | None = None  # trials' checkpoints live below it (else in the experiment)
    continue_in_place: bool = False  # a segment job continues with its trial's next segment
    continue_wait_s: float | None = None  # ... waiting this long for it (None: 3 polls)
    worker_idle_timeout_s: float = 600.0  # a pool worker given nothing this long exits
    # a running job whose heartbeat is this old is hung (frozen, or its node is): cancelled,
    # and its trial goes on from its checkpoint
    hung_after_s: float = HUNG_AFTER_S
    # workers: auto keeps warm workers while start-up + queueing exceed this share of training
    auto_workers_share: float = 0.10
    # set in every job before the trial's code runs (NCCL_*, OMP_NUM_THREADS, HF_HOME...)
    environment_variables: dict[str, str] = field(default_factory=dict)
    # Determined's ``data``: what the code reads as det.get_cluster_info().user_data, as written
    data: dict[str, Any] = field(default_factory=dict)
    local: LocalConfig = field(default_factory=LocalConfig)
    slurm: SlurmConfig = field(default_factory=SlurmConfig)
    simulated: SimulatedConfig = field(default_factory=SimulatedConfig)
    warnings: list[str] = field(default_factory=list)
    source: str = ""  # the file it was read from (load_config), for messages about it

    @property
    def workers_setting(self) -> int | str:
        """The pool setting of the backend in use: a number of workers (0: a job per
        segment) or "auto"."""
        return {"local": self.local.workers, "slurm": self.slurm.workers,
                "simulated": self.simulated.pool}.get(self.backend, 0)

    @property
    def workers_auto(self) -> bool:
        """True when the master chooses between warm workers and a job per segment."""
        return self.workers_setting == "auto"

    @property
    def pool_size(self) -> int:
        """Worker-pool workers of the backend in use: the configured number, or with "auto"
        the most the pool may grow to when it is chosen (what runs at once anyway: local
        ``max_parallel``, the simulated GPUs, Slurm's ``array_parallelism``; the master also
        never starts more workers than segments wait)."""
        n = self.workers_setting
        if n != "auto":
            return int(n)
        cap = {"local": self.local.max_parallel, "slurm": self.slurm.array_parallelism,
               "simulated": self.simulated.workers}.get(self.backend)
        return int(cap) if cap else 1 << 20

    @property
    def lanes_per_job(self) -> int:
        """Pool workers per job: on Slurm they share the job's GPUs (``trials_per_gpu``); the
        local backend shares GPUs between jobs itself."""
        return self.slurm.trials_per_gpu if self.backend == "slurm" else 1

    @property
    def continue_wait(self) -> float:
        """Seconds a segment job waits for its trial's next segment (0: it never does)."""
        if not self.continue_in_place or (self.pool_size and not self.workers_auto):
            return 0.0
        return self.continue_wait_s if self.continue_wait_s is not None else 3 * self.poll_interval_s

    @property
    def is_command(self) -> bool:
        return isinstance(self.entrypoint, list)

    def space(self):
        """The parsed hyperparameter space (validated at load time)."""
        from .space import parse_space

        space, _ = parse_space(self.hyperparameters)
        return space

    def to_dict(self) -> dict[str, Any]:
        """The config as resolved (defaults filled in), in the file's own shape: written to
        ``<exp>/experiment.yaml`` and loadable again with ``load_config``."""
        s = asdict(self.searcher)
        unit = s.pop("length_unit")
        s["max_length"] = {unit: s["max_length"]} if unit != "units" else s["max_length"]
        for k in ("bracket_rungs", "time_metric", "max_compute", "warm_start"):
            if s[k] is None:
                s.pop(k)
        if not s["until_exit"]:
            s.pop("until_exit")
        if not s["points_to_evaluate"]:  # files (and config hashes) stay as they were before it
            s.pop("points_to_evaluate")
        ckpt: dict[str, Any] = {"save_experiment_best": self.save_experiment_best}
        if self.save_trial_latest:  # files (and config hashes) stay as they were before it
            ckpt["save_trial_latest"] = self.save_trial_latest
        if self.checkpoint_folder:
            ckpt["folder"] = self.checkpoint_folder
        if s["sampler"] == "random":  # the default: files stay as they were before tpe
            del s["sampler"], s["random_fraction"]
        return {
            "name": self.name,
            "description": self.description,
            "entrypoint": self.entrypoint,
            "searcher": s,
            "hyperparameters": self.hyperparameters,
            "max_restarts": self.max_restarts,
            "readmit_nodes_after_h": self.readmit_nodes_after_h,
            "reproducibility": {"experiment_seed": self.experiment_seed},
            "backend": self.backend,
            "experiment_dir": self.experiment_dir,
            "poll_interval_s": self.poll_interval_s,
            "result_grace_s": self.result_grace_s,
            "checkpoint_storage": ckpt,
            **({"resources": {"slots_per_trial": self.slots_per_trial}}
               if self.slots_per_trial != 1 else {}),
            "continue_in_place": self.continue_in_place,
            "continue_wait_s": self.continue_wait_s,
            "worker_idle_timeout_s": self.worker_idle_timeout_s,
            **({"hung_after_s": self.hung_after_s} if self.hung_after_s != HUNG_AFTER_S else {}),
            "probe_jobs": self.probe_jobs,
            "auto_workers_share": self.auto_workers_share,
            **({"environment_variables": dict(self.environment_variables)}
               if self.environment_variables else {}),
            **({"data": self.data} if self.data else {}),  # files stay as they were before it
            "context_dir": self.config_dir,
            "local": asdict(self.local),
            "slurm": asdict(self.slurm),
            "simulated": asdict(self.simulated),
        }


# sbatch's and submitit's own names for what the slurm section calls otherwise
# an alias is the key to write; a note after it closes the quote itself: "key' (note)"
_FIRST_RUNG = ("num_rungs' (async_halving: the first rung is max_length / divisor^(num_rungs - 1); "
               "asha-hpc plan shows it)")
_ALIASES = {("slurm", "gpus"): "gpus_per_node", ("slurm", "gres"): "gpus_per_node",
            ("slurm", "gpus_per_task"): "gpus_per_node", ("slurm", "time"): "timeout_min",
            ("slurm", "mem"): "mem_gb", ("slurm", "cpus"): "cpus_per_task",
            ("slurm", "ntasks_per_node"): "tasks_per_node", ("slurm", "ntasks"): "tasks_per_node",
            ("slurm", "slurm_partition"): "partition", ("slurm", "slurm_account"): "account",
            ("local", "gpus_per_node"): "gpus_per_trial",
            # Optuna's and Ray Tune's names
            ("searcher", "direction"): "smaller_is_better' (false to maximize)",
            ("searcher", "n_trials"): "max_trials", ("searcher", "num_samples"): "max_trials",
            ("searcher", "max_t"): "max_length", ("searcher", "reduction_factor"): "divisor",
            ("searcher", "grace_period"): _FIRST_RUNG, ("searcher", "min_resource"): _FIRST_RUNG,
            # Ray Tune's and Optuna's top-level names
            ("", "num_samples"): "searcher.max_trials", ("", "n_trials"): "searcher.max_trials",
            ("", "mode"): "searcher.smaller_is_better' (false to maximize, Ray's mode: max); "
                          "searcher.mode is adaptive_asha's aggressive|standard|conservative",
            ("", "direction"): "searcher.smaller_is_better' (false to maximize)",
            ("", "scheduler"): "searcher.name' (async_halving for Ray's ASHAScheduler, "
                               "adaptive_asha for HyperBand's brackets)",
            ("", "search_alg"): "searcher.sampler' (tpe for Ray's BOHB, Optuna's TPE)",
            # W&B Sweeps' names (a sweep config's top level, or moved under searcher)
            ("", "method"): "searcher.sampler' (random, or tpe or gp for W&B's bayes; its "
                            "grid is searcher.name: grid)",
            ("searcher", "method"): "sampler' (random, or tpe or gp for W&B's bayes; its grid "
                                    "is name: grid)",
            ("", "parameters"): "hyperparameters' (W&B's distributions: README, From W&B "
                                "Sweeps)",
            ("", "run_cap"): "searcher.max_trials", ("searcher", "run_cap"): "max_trials",
            ("searcher", "goal"): "smaller_is_better' (true for W&B's minimize)",
            ("", "program"): "entrypoint' (command: [python3, train.py, \"${args}\"])"}


# other tools' settings that have no key of their own here (Optuna's study.optimize, pruners)
_NO_KEY = {
    "timeout": "no wall-clock budget here: searcher.max_compute caps the training (in units "
               "of max_length), or `asha-hpc cancel` stops the search",
    "pruner": "the early stopping is the searcher's: searcher.name async_halving (Optuna's "
              "SuccessiveHalvingPruner) or adaptive_asha (HyperbandPruner)",
    "early_terminate": "the early stopping is the searcher's: W&B's hyperband {min_iter, eta} "
                       "is searcher.divisor: eta, with max_length / divisor^k = min_iter "
                       "(adaptive_asha's max_rungs, or async_halving's num_rungs)",
}

# other tools' names for a value (Ray Tune, Optuna, Syne Tune, Determined)
_OTHER_NAMES = {
    ("searcher.name", "asha"): "ASHA is async_halving (one bracket, Ray's ASHAScheduler) or "
                               "adaptive_asha (Determined's, HyperBand's brackets)",
    ("searcher.name", "hyperband"): "HyperBand's brackets are adaptive_asha",
    ("searcher.name", "bohb"): "BOHB is adaptive_asha with searcher.sampler: tpe",
    ("searcher.name", "tpe"): "TPE is searcher.sampler: tpe (with any searcher.name)",
    ("searcher.sampler", "bohb"): "BOHB's density models are tpe",
    ("searcher.sampler", "mobster"): "MOBSTER's Gaussian process is gp",
    ("searcher.sampler", "bayesian"): "tpe or gp",
    ("searcher.sampler", "bayes"): "W&B's bayes is tpe or gp",
    ("searcher.sampler", "grid"): "a grid is searcher.name: grid",
    ("searcher.name", "bayes"): "W&B's bayes is searcher.sampler: tpe or gp (with name: "
                                "adaptive_asha or async_halving)",
}


# sbatch options that hydra-submitit-launcher and submitit name, and the slurm section takes
# only as additional_parameters (submitit passes them on to sbatch)
_SBATCH_OPTIONS = ("mem_per_gpu", "mem_per_cpu", "cpus_per_gpu", "comment", "wckey",
                   "reservation", "licenses", "mail_user", "mail_type", "dependency")
# sbatch options asha_hpc sets for every trial job, which additional_parameters (passed to
# sbatch last, so they win) must not replace, and where each is set instead
_OWNED_SBATCH = {
    "signal": "slurm.signal_delay_s sets it (each job gets SIGUSR2 that long before its time "
              "limit, saves, and its trial goes on in a new job; a --signal=SIG@N here becomes "
              "signal_delay_s N)",
    "time": "slurm.timeout_min sets it (minutes, or auto: fitted to each segment; a --time "
            "here becomes timeout_min, but not beside auto or timeout_min_per_rung, whose "
            "fitted limits it would replace)",
    "output": "jobs' logs go in the experiment's jobs/ folder, where `asha-hpc logs` finds them",
    "error": "jobs' logs go in the experiment's jobs/ folder, where `asha-hpc logs` finds them",
    "job_name": "jobs are named after the experiment, and the master finds them by that name",
    "array": "the master submits several segments at once as an array itself",
}
# hydra-submitit-launcher's own settings, which have no use here
_LAUNCHER_ONLY = {
    "_target_": "the launcher's class", "submitit_folder": "jobs' files go under the experiment "
    "folder", "name": "jobs are named after the experiment and the trial",
    "max_num_timeout": "a job stopped at its time limit goes on from its checkpoint, not "
    "counted; failures: max_restarts", "stderr_to_stdout": "each job has its .out and .err"}


def _spelled(params: dict[str, Any], name: str) -> Any:
    """The key of ``params`` that names sbatch's option ``name`` (``job-name`` or ``job_name``,
    as submitit writes either), or None."""
    return next((k for k in params if str(k).replace("-", "_") == name), None)


def _slurm_minutes(text: str) -> int | None:
    """A --time's whole minutes; None for one that is no time limit (UNLIMITED, text)."""
    from .master.timelimits import parse_slurm_minutes

    try:
        minutes = parse_slurm_minutes(text)
    except ValueError:
        return None
    return minutes if minutes is not None and minutes >= 1 else None


_SIGNAL = re.compile(r"^(?:[RB]{1,2}:)?(?:SIG)?[A-Z0-9]+@(\d+)$", re.I)


def _signal_seconds(text: str) -> int | None:
    """A --signal=[R|B:]SIG@N's N; None for one that names no time."""
    m = _SIGNAL.match(text.strip())
    return int(m.group(1)) if m else None


# sbatch options among additional_parameters that become the setting standing for them, with
# a warning: they always won over it at sbatch (it reads additional_parameters last), so a
# folder an earlier release wrote resumes with the limit and the warning its jobs really had,
# and the master now knows them. One whose value means no such setting is left for
# _check_owned_sbatch to refuse. (option, setting, the setting's value from the option's, why)
_BECOME: tuple[tuple[str, str, Callable[[str], int | None], str], ...] = (
    # a Determined config's sbatch_args --time, an sbatch script's habit
    ("time", "timeout_min", _slurm_minutes,
     "asha_hpc writes each trial job's --time from timeout_min"),
    # Lightning's docs give --signal=SIGUSR1@90 for its own requeue: what it asks for is a
    # warning 90 s before the limit, which every trial job gets as SIGUSR2
    ("signal", "signal_delay_s", _signal_seconds,
     "every trial job gets SIGUSR2 that long before its time limit, saves, and its trial goes "
     "on in a new job; no SIGUSR1 requeue is needed"),
)


def _options_as_settings(c: _Checker, s: SlurmConfig) -> None:
    """``_BECOME``'s options in ``s.additional_parameters`` made settings."""
    for name, setting, value_of, why in _BECOME:
        key = _spelled(s.additional_parameters, name)
        # a --time beside limits fitted to each segment would replace them: refused
        if key is None or name == "time" and s.auto_time:
            continue
        value = value_of(str(s.additional_parameters[key]))
        if value is None:
            continue
        old = getattr(s, setting)
        setattr(s, setting, value)
        s.additional_parameters = {k: v for k, v in s.additional_parameters.items() if k != key}
        was = f", in place of {setting} {old}" if old != value else ""
        c.warnings.append(f"slurm.additional_parameters.{key}: slurm.{setting} {value}{was} "
                          f"({why})")


def sbatch_owned(key: str) -> str | None:
    """What to set instead of an sbatch option asha_hpc writes for every trial job and no
    setting stands for; None for any other (--time and --signal become settings)."""
    k = key.replace("-", "_")
    return None if k in {b[0] for b in _BECOME} else _OWNED_SBATCH.get(k)


def _check_owned_sbatch(c: _Checker, params: dict[str, Any], path: str) -> None:
    for key in params:
        owned = _OWNED_SBATCH.get(str(key).replace("-", "_"))
        if owned is not None:
            c.bad(f"{path}.{key}", f"asha_hpc sets sbatch's --{str(key).replace('_', '-')} for "
                               f"every trial job; {owned}")


def _unknown_key_hint(key: str, path: str, known: tuple[str, ...]) -> str:
    """The section's own name for sbatch's (``slurm.gpus``: ``gpus_per_node``), else where a
    key of another section goes (``workers`` at the top: ``local.workers`` or
    ``slurm.workers``), else the closest known key, else the known keys."""
    sections = {"": _TOP_KEYS, "searcher": _SEARCHER_KEYS, "local": _LOCAL_KEYS,
                "slurm": _SLURM_KEYS, "simulated": _SIMULATED_KEYS,
                "resources": ("slots_per_trial",)}
    homes = [f"{sec}.{key}" if sec else key for sec, keys in sections.items()
             if key in keys and sec != path and path in sections]
    alias = _ALIASES.get((path, key.replace("-", "_")))
    if path in ("", "searcher") and key in _NO_KEY:
        return f"; {_NO_KEY[key]}"
    if alias is not None:
        return f"; did you mean '{alias}" + ("?" if "'" in alias else "'?")
    if path == "slurm" and key.replace("-", "_") in _SBATCH_OPTIONS:
        return (f"; an sbatch option without a name of its own here: give it as "
                f"additional_parameters: {{{key.replace('-', '_')}: ...}}")
    if path == "slurm" and key in _LAUNCHER_ONLY:
        return f"; hydra-submitit-launcher's, not needed here ({_LAUNCHER_ONLY[key]})"
    if homes:
        return f"; it belongs in another section: {' or '.join(homes)}"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else f" (known keys: {', '.join(known)})"


class _Checker:
    """Collects problems while reading a mapping; never raises on bad user input."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def bad(self, path: str, msg: str) -> None:
        self.problems.append(f"{path}: {msg}")

    def mapping(self, raw: Any, path: str, known: tuple[str, ...]) -> dict[str, Any]:
        """``raw`` as a dict, with unknown keys reported (did-you-mean) and dropped."""
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.bad(path or "(top level)", f"must be a mapping, got {shown(raw)}")
            return {}
        out = {}
        for k, v in raw.items():
            full = f"{path}.{k}" if path else str(k)
            if k in known:
                out[k] = v
            else:
                self.bad(full, f"unknown key{_unknown_key_hint(str(k), path, known)}")
        return out

    def get(self, d: dict[str, Any], key: str, path: str, kind: Callable[[Any], bool], what: str,
            default: Any, check: Callable[[Any], str | None] | None = None) -> Any:
        """``d[key]`` if present and of the right kind and passing ``check``, else ``default``
        (after reporting the problem)."""
        full = f"{path}.{key}" if path else key
        if key not in d or d[key] is None:
            return default
        v = d[key]
        if not kind(v):
            self.bad(full, f"must be {what}, got {shown(v)}")
            return default
        if check is not None:
            msg = check(v)
            if msg:
                self.bad(full, f"{msg}, got {shown(v)}")
                return default
        return v

    def choice(self, d: dict[str, Any], key: str, path: str, choices: tuple[str, ...], default: str) -> str:
        full = f"{path}.{key}" if path else key
        v = d.get(key, default)
        if v is None:
            return default
        if v not in choices:
            same_case = [c for c in choices if c.lower() == str(v).lower()]  # TPE, Paper
            close = same_case or difflib.get_close_matches(str(v), choices, n=1, cutoff=0.6)
            other = _OTHER_NAMES.get((full, str(v).lower()))
            hint = f"; did you mean '{close[0]}'?" if close else f"; {other}" if other else ""
            self.bad(full, f"must be one of {', '.join(choices)}, got {shown(v)}{hint}")
            return default
        return v


def _is_num(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_paths(v: Any) -> bool:
    """A string, or a list of strings (``searcher.warm_start``)."""
    return isinstance(v, str) or isinstance(v, list) and all(isinstance(x, str) for x in v)


def _warm_start_problem(v: str | list[str]) -> str | None:
    paths = [v] if isinstance(v, str) else v
    if not paths:
        return "must name at least one folder"
    if any(not x.strip() for x in paths):
        return "must not be empty"
    if len(set(paths)) < len(paths):
        return "names a folder twice"
    return None


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _at_least(n: float) -> Callable[[Any], str | None]:
    return lambda v: None if v >= n else f"must be >= {n}"


def _greater(n: float) -> Callable[[Any], str | None]:
    return lambda v: None if v > n else f"must be > {n}"


# ----------------------------------------------------------------------------- sections
_LARGER = {"acc", "accuracy", "auc", "auroc", "f1", "precision", "recall", "map", "ndcg",
           "bleu", "rouge", "r2", "score", "iou", "miou", "dice", "reward", "return", "top1",
           "top5", "mcc", "kappa", "sharpe"}
_SMALLER = {"loss", "error", "err", "mse", "mae", "rmse", "perplexity", "ppl", "nll", "wer",
            "cer", "regret", "distance", "time", "latency", "cost"}


def _larger_is_better(metric: str) -> bool:
    """A metric whose name says larger is better (``val/accuracy``, ``roc_auc``, ``eval_f1``)
    and nothing that says smaller is (``val_error_rate``)."""
    words = set(re.split(r"[^a-z0-9]+", metric.lower()))
    return bool(words & _LARGER) and not words & _SMALLER


_SEARCHER_KEYS = ("name", "metric", "smaller_is_better", "max_length", "max_trials",
                  "max_concurrent_trials", "mode", "divisor", "max_rungs", "bracket_rungs",
                  "num_rungs", "stop_once", "asha_rule", "time_metric", "until_exit", "sampler",
                  "random_fraction", "max_compute", "points_to_evaluate", "warm_start")
SAMPLERS = ("random", "tpe", "gp")


def _searcher(c: _Checker, raw: Any) -> SearcherConfig:
    p = "searcher"
    if raw is None:
        c.bad(p, "missing: add a searcher section with at least name, metric and max_length")
        return SearcherConfig()
    d = c.mapping(raw, p, _SEARCHER_KEYS)
    s = SearcherConfig()
    s.name = c.choice(d, "name", p, SEARCHER_NAMES, "adaptive_asha")
    if "name" not in d:
        c.bad(f"{p}.name", f"missing: one of {', '.join(SEARCHER_NAMES)}")
    metric = d.get("metric")
    if metric is None:
        c.bad(f"{p}.metric", "missing: the name of the metric your code reports (e.g. val_loss)")
    elif isinstance(metric, dict) and isinstance(metric.get("name"), str):  # W&B Sweeps'
        goal = {"minimize": "true", "maximize": "false"}.get(str(metric.get("goal")), "true|false")
        c.bad(f"{p}.metric", f"W&B's {{name, goal}}: write metric: {metric['name']} and "
                             f"smaller_is_better: {goal}")
    elif not isinstance(metric, str) or not metric.strip():
        c.bad(f"{p}.metric", f"must be a non-empty string, got {shown(metric)}")
    else:
        s.metric = metric
    s.smaller_is_better = c.get(d, "smaller_is_better", p, _is_bool, "true or false", True)
    if "smaller_is_better" not in d and isinstance(metric, str) and _larger_is_better(metric):
        c.warnings.append(f"{p}.metric '{metric}' is minimised: smaller_is_better is true unless "
                          f"given (as in Determined). For a metric where larger is better, set "
                          f"{p}.smaller_is_better: false")
    s.max_length, s.length_unit = _max_length(c, d.get("max_length"))
    needs_trials = s.name in ("adaptive_asha", "async_halving", "random")
    if needs_trials and d.get("max_trials") is None:
        c.bad(f"{p}.max_trials", f"missing: required for searcher '{s.name}'")
    s.max_trials = c.get(d, "max_trials", p, _is_int, "an integer", 1, _at_least(1))
    s.max_concurrent_trials = c.get(d, "max_concurrent_trials", p, _is_int, "an integer", 16, _at_least(0))
    if str(d.get("mode")).lower() in ("min", "max", "minimize", "maximize"):  # Ray's, Optuna's
        c.bad(f"{p}.mode", f"is how aggressively ASHA stops trials here ({', '.join(MODES)}, as "
                           f"in Determined), got {shown(d['mode'])}; the metric's direction is "
                           f"smaller_is_better: "
                           f"{'false' if str(d['mode']).lower().startswith('max') else 'true'}")
        d = {k: v for k, v in d.items() if k != "mode"}
    s.mode = c.choice(d, "mode", p, MODES, "standard")
    s.divisor = float(c.get(d, "divisor", p, _is_num, "a number", 4.0, _greater(1)))
    s.max_rungs = c.get(d, "max_rungs", p, _is_int, "an integer", 5, _at_least(1))
    s.num_rungs = c.get(d, "num_rungs", p, _is_int, "an integer", 5, _at_least(1))
    # (a resolved config, as resume reads it, holds the default for every searcher)
    if "num_rungs" in d and s.num_rungs != 5 and s.name != "async_halving":
        c.warnings.append(f"{p}.num_rungs is read by async_halving only: {s.name} ignores it"
                          + ("; its rungs come from max_rungs" if s.name == "adaptive_asha" else ""))
    if s.name in ("grid", "random", "single"):  # one rung: every trial trains to max_length
        unread = (("divisor", 4.0), ("max_trials", 1)) if s.name == "grid" else (("divisor", 4.0),)
        ignored = [k for k, default in unread if k in d and getattr(s, k) != default]
        if ignored:
            c.warnings.append(
                f"{p}.{' and '.join(ignored)}: {s.name} ignores {'them' if len(ignored) > 1 else 'it'}"
                + (" (the hyperparameters' values make the grid's points)"
                   if "max_trials" in ignored else "")
                + ": every trial trains to max_length, no early stopping; for that, "
                  "async_halving or adaptive_asha"
                + (", with the grid's points as searcher.points_to_evaluate" if s.name == "grid" else ""))
    s.stop_once = c.get(d, "stop_once", p, _is_bool, "true or false", False)
    s.asha_rule = c.choice(d, "asha_rule", p, ASHA_RULES, "paper")
    if s.asha_rule == "determined_0.38":
        if d.get("stop_once") is False:
            c.bad(f"{p}.stop_once", "determined_0.38 is stopping-based (stop_once: true): remove "
                  "stop_once: false, or pick asha_rule determined_0.37")
        s.stop_once = True
    elif s.asha_rule == "determined_0.37" and s.stop_once:
        c.bad(f"{p}.asha_rule", "determined_0.37 promotes paused trials: remove stop_once: true, "
              "or pick asha_rule determined_0.38 (stopping-based)")
    s.time_metric = c.get(d, "time_metric", p, _is_str, "a metric name", None)
    s.until_exit = c.get(d, "until_exit", p, _is_bool, "true or false", False)
    s.sampler = c.choice(d, "sampler", p, SAMPLERS, "random")
    if s.sampler != "random" and s.name not in ("adaptive_asha", "async_halving", "random"):
        c.bad(f"{p}.sampler", f"{s.sampler} works with adaptive_asha, async_halving and random, not with "
              f"'{s.name}': remove the sampler or change the searcher name")
    s.random_fraction = float(c.get(d, "random_fraction", p, _is_num, "a number", 1 / 3,
                                    lambda v: None if 0 <= v <= 1 else "must be in [0, 1]"))
    if "random_fraction" in d and s.sampler == "random":
        c.bad(f"{p}.random_fraction", "only used with sampler: tpe or gp; add 'sampler: tpe' "
              "or remove it")
    s.max_compute = c.get(d, "max_compute", p, _is_int, f"an integer (units of {s.length_unit})",
                          None, _at_least(1))
    if s.max_compute is not None and s.max_compute < s.max_length:
        c.bad(f"{p}.max_compute", f"{s.max_compute} is less than max_length ({s.max_length}): no "
              "trial could reach it; raise max_compute or remove it")
    pts = d.get("points_to_evaluate")
    if pts is not None:
        if not isinstance(pts, list):
            c.bad(f"{p}.points_to_evaluate", "must be a list of configurations (maps of "
                  f"hyperparameter names to values), got {shown(pts)}")
        elif pts and s.name not in ("adaptive_asha", "async_halving", "random"):
            c.bad(f"{p}.points_to_evaluate", f"works with adaptive_asha, async_halving and random, "
                  f"not with '{s.name}': remove it or change the searcher name")
        elif len(pts) > s.max_trials:
            c.bad(f"{p}.points_to_evaluate", f"{len(pts)} configurations but max_trials is "
                  f"{s.max_trials}: only the first {s.max_trials} could run; raise max_trials "
                  "or give fewer")
        else:
            s.points_to_evaluate = list(pts)  # checked against the space in parse_config
    s.warm_start = c.get(d, "warm_start", p, _is_paths,
                         "a path (an earlier experiment folder) or a list of them", None,
                         _warm_start_problem)
    if s.warm_start is not None and s.sampler == "random":
        c.bad(f"{p}.warm_start", "feeds the model of sampler tpe or gp, and this search samples "
              "at random: add 'sampler: tpe' (or gp), or remove warm_start")
    br = d.get("bracket_rungs")
    if br is not None:
        if not isinstance(br, list) or not all(_is_int(x) and x >= 1 for x in br):
            c.bad(f"{p}.bracket_rungs", f"must be a list of integers >= 1, got {shown(br)}")
        elif br:
            s.bracket_rungs = list(br)
    return s


def _max_length(c: _Checker, v: Any) -> tuple[int, str]:
    p = "searcher.max_length"
    if v is None:
        c.bad(p, "missing: an integer, or {epochs|batches|records: N}")
        return 1, "units"
    unit = "units"
    if isinstance(v, dict):
        # batches, epochs and records mean something to the integrations and to Determined's
        # scripts; another name (steps, timesteps, rounds) is the unit shown
        name = next(iter(v)) if len(v) == 1 else None
        if isinstance(name, str) and name not in LENGTH_UNITS and \
                difflib.get_close_matches(name, LENGTH_UNITS, n=1, cutoff=0.8):
            close = difflib.get_close_matches(name, LENGTH_UNITS, n=1, cutoff=0.8)[0]
            c.bad(f"{p}.{name}", f"unknown unit; did you mean '{close}'? (the integrations "
                                 f"count {close} for it; another name is shown only)")
            return 1, "units"
        if not (isinstance(name, str) and re.fullmatch(r"[a-z][a-z_]{0,30}", name)):
            c.bad(p, f"must be an integer or {{UNIT: N}} (batches, epochs, records, or a name "
                     f"of your own: steps, timesteps, rounds), got {shown(v)}")
            return 1, "units"
        unit, v = next(iter(v.items()))
        p = f"{p}.{unit}"
    if not _is_int(v) or v < 1:
        c.bad(p, f"must be an integer >= 1, got {shown(v)}")
        return 1, unit
    return v, unit


def _entrypoint(c: _Checker, raw: Any, command: Any) -> str | list[str]:
    if command is not None:
        if raw is not None:
            c.bad("command", "give either entrypoint or command, not both")
        raw = command
        key = "command"
    else:
        key = "entrypoint"
    if raw is None:
        c.bad("entrypoint", "missing: 'module:function', 'path/to/file.py:function', or a command list")
        return ""
    if isinstance(raw, list):
        if not raw or not all(isinstance(x, (str, int, float)) for x in raw):
            c.bad(key, f"a command must be a non-empty list of strings, got {shown(raw)}")
            return ""
        return [str(x) for x in raw]
    if isinstance(raw, dict) and set(raw) == {"command"}:
        return _entrypoint(c, None, raw["command"])
    if not isinstance(raw, str) or not raw.strip():
        c.bad(key, f"must be 'module:function' or a command, got {shown(raw)}")
        return ""
    raw = raw.strip()
    if key == "entrypoint" and " " not in raw and ":" in raw:
        mod, _, fn = raw.rpartition(":")
        if not mod or not fn.isidentifier():
            c.bad(key, f"must be 'module:function' or 'path/to/file.py:function', got {shown(raw)}")
        return raw
    try:
        return shlex.split(raw)  # "python train.py --x" is a command
    except ValueError as e:  # an unclosed quotation, a trailing backslash
        c.bad(key, f"cannot be read as a command ({str(e).lower()}): {shown(raw)}; close the "
              "quotation, or give the command as a list of arguments")
        return ""


_LOCAL_KEYS = ("gpus", "gpus_per_trial", "trials_per_gpu", "max_parallel", "tasks_per_node",
               "workers")


def _local(c: _Checker, raw: Any) -> LocalConfig:
    p = "local"
    d = c.mapping(raw, p, _LOCAL_KEYS)
    loc = LocalConfig()
    g = d.get("gpus", "auto")
    if g == "auto" or g is None:
        loc.gpus = detect_gpus()
    elif _is_int(g) and g >= 0:
        loc.gpus = [str(i) for i in range(g)]
    elif isinstance(g, list) and all(_is_int(x) or isinstance(x, str) for x in g):
        loc.gpus = [str(x) for x in g]
    else:
        c.bad(f"{p}.gpus", f"must be 'auto', a count, or a list of GPU ids, got {shown(g)}")
    default_per = 1 if loc.gpus else 0
    loc.gpus_per_trial = c.get(d, "gpus_per_trial", p, _is_int, "an integer", default_per, _at_least(0))
    loc.trials_per_gpu = c.get(d, "trials_per_gpu", p, _is_int, "an integer", 1, _at_least(1))
    if loc.gpus_per_trial > len(loc.gpus):
        n = loc.gpus_per_trial
        c.bad(f"{p}.gpus_per_trial", f"asks for {n} GPU{'s' if n > 1 else ''} per trial but "
              f"local.gpus has {len(loc.gpus)} ({', '.join(loc.gpus) or 'none'}): leave it out "
              f"(0 on a machine without GPUs) or name the GPUs in local.gpus")
    if loc.gpus_per_trial:
        default_par = max(1, len(loc.gpus) // loc.gpus_per_trial) * loc.trials_per_gpu
    else:
        default_par = os.cpu_count() or 1
    loc.workers = _workers(c, d, p)
    fixed = loc.workers if isinstance(loc.workers, int) else 0
    loc.max_parallel = c.get(d, "max_parallel", p, _is_int, "an integer",
                             max(default_par, fixed), _at_least(1))
    loc.tasks_per_node = c.get(d, "tasks_per_node", p, _is_int, "an integer", 1, _at_least(1))
    if fixed > loc.max_parallel:
        c.bad(f"{p}.workers", f"{loc.workers} workers cannot run with local.max_parallel "
              f"{loc.max_parallel}: raise max_parallel or lower workers")
    return loc


def _workers(c: _Checker, d: dict[str, Any], p: str, key: str = "workers") -> int | str:
    """``workers`` (``simulated.pool``): "auto", or a number of pool workers >= 0."""
    default: int | str = "auto" if key == "workers" else 0
    v = d.get(key)
    if v is None:
        return default
    if v == "auto":
        return "auto"
    if not _is_int(v) or v < 0:
        c.bad(f"{p}.{key}", f"must be 'auto' or an integer >= 0 (0: a job per segment), got {shown(v)}")
        return default
    return int(v)


def detect_gpus() -> list[str]:
    """GPUs this process may use: CUDA_VISIBLE_DEVICES if set, else ``nvidia-smi -L``; none
    when neither says anything (a laptop without CUDA)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [x.strip() for x in env.split(",") if x.strip() and x.strip() != "-1"]
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


_SLURM_INT = ("timeout_min", "cpus_per_task", "gpus_per_node", "tasks_per_node", "nodes",
              "array_parallelism", "signal_delay_s")
_SLURM_STR = ("partition", "qos", "account", "constraint", "exclude")


_PER_RUNG_KEYS = ("partition", "qos", "account", "constraint", "exclude", "cpus_per_task",
                  "gpus_per_node", "tasks_per_node", "nodes", "mem_gb", "additional_parameters")


_SLURM_KEYS = _SLURM_INT + _SLURM_STR + (
    "mem_gb", "setup", "additional_parameters", "poll_min_interval_s", "timeout_min_per_rung",
    "first_guess_min", "time_safety_factor", "per_rung", "workers", "trials_per_gpu", "python")


def _slurm(c: _Checker, raw: Any) -> SlurmConfig:
    p = "slurm"
    d = c.mapping(raw, p, _SLURM_KEYS)
    s = SlurmConfig()
    if d.get("timeout_min") == "auto":
        d = dict(d)
        d.pop("timeout_min")
        s.timeout_min = "auto"
    for k in _SLURM_STR:
        setattr(s, k, c.get(d, k, p, _is_str, "a string", None))
    for k in _SLURM_INT:
        lo = 1 if k in ("timeout_min", "tasks_per_node", "nodes", "cpus_per_task", "array_parallelism") else 0
        if k == "timeout_min" and isinstance(d.get(k), str):
            c.bad(f"{p}.{k}", f"must be an integer or 'auto', got {shown(d[k])}")
            continue
        setattr(s, k, c.get(d, k, p, _is_int, "an integer", getattr(s, k), _at_least(lo)))
    s.mem_gb = c.get(d, "mem_gb", p, _is_num, "a number", None, _greater(0))
    per = d.get("timeout_min_per_rung")
    if per is not None:
        if not isinstance(per, list) or not per:
            c.bad(f"{p}.timeout_min_per_rung", f"must be a non-empty list of minutes (or 'auto'), "
                  f"one per rung, got {shown(per)}")
        else:
            good = True
            for i, v in enumerate(per):
                if not (v == "auto" or (_is_int(v) and v >= 1)):
                    c.bad(f"{p}.timeout_min_per_rung[{i}]",
                          f"must be an integer >= 1 or 'auto', got {shown(v)}")
                    good = False
            if good:
                s.timeout_min_per_rung = list(per)
    s.first_guess_min = c.get(d, "first_guess_min", p, _is_int, "an integer", 60, _at_least(1))
    s.time_safety_factor = float(c.get(d, "time_safety_factor", p, _is_num, "a number", 1.5, _greater(0)))
    s.per_rung = _per_rung(c, d.get("per_rung"), f"{p}.per_rung")
    s.poll_min_interval_s = float(c.get(d, "poll_min_interval_s", p, _is_num, "a number", 10.0, _greater(0)))
    setup = d.get("setup")
    if isinstance(setup, str):
        setup = [setup]
    if setup is not None:
        if not isinstance(setup, list) or not all(isinstance(x, str) for x in setup):
            c.bad(f"{p}.setup", f"must be a list of shell lines, got {shown(setup)}")
        else:
            s.setup = setup
    s.additional_parameters = c.get(d, "additional_parameters", p, lambda v: isinstance(v, dict),
                                    "a mapping", {})
    _options_as_settings(c, s)
    _check_owned_sbatch(c, s.additional_parameters, f"{p}.additional_parameters")
    s.python = c.get(d, "python", p, lambda v: isinstance(v, str) and bool(v.strip()),
                     "a python command (python3) or path", None)
    activates = next((x for x in s.setup if _ACTIVATES.search(x)), None)
    if activates is not None and s.python is None:
        c.warnings.append(
            f"{p}.setup: `{activates.strip()}` activates an environment, but the jobs run the "
            f"master's Python ({sys.executable}) unless {p}.python names another: set "
            f"{p}.python: python3 to run the one setup activates (asha_hpc must be installed "
            f"there too)")
    if isinstance(s.timeout_min, int) and s.signal_delay_s >= 60 * s.timeout_min:
        c.bad(f"{p}.signal_delay_s", f"{s.signal_delay_s} s is not less than timeout_min "
              f"({s.timeout_min} min): every job would be told to stop as it starts; lower it "
              f"or raise timeout_min")
    elif isinstance(s.timeout_min, int) and \
            s.signal_delay_s + SIGNAL_EARLY_S > 60 * s.timeout_min / 2:
        # Slurm sends the signal up to a minute early: most of each job would go to start-up,
        # stopping and the retries after it
        left = max(0, 60 * s.timeout_min - s.signal_delay_s - int(SIGNAL_EARLY_S))
        c.warnings.append(
            f"{p}.signal_delay_s: a job of timeout_min {s.timeout_min} gets SIGUSR2 "
            f"{s.signal_delay_s} s before its limit, and Slurm may send it up to "
            f"{SIGNAL_EARLY_S:.0f} s earlier: {left}-{60 * s.timeout_min - s.signal_delay_s} s of "
            f"each job are left for start-up and training, and a segment takes many jobs. "
            f"Raise timeout_min, or lower signal_delay_s (the time a checkpoint takes, plus a "
            f"margin)")
    s.workers = _workers(c, d, p)
    s.trials_per_gpu = c.get(d, "trials_per_gpu", p, _is_int, "an integer", 1, _at_least(1))
    if isinstance(s.workers, int) and s.workers:
        if s.timeout_min == "auto" or s.timeout_min_per_rung:
            c.bad(f"{p}.workers", "pool workers live for a fixed slurm.timeout_min (their job's "
                  "limit; the master replaces workers as they reach it): set an integer "
                  "timeout_min and remove 'auto' / timeout_min_per_rung")
        if s.per_rung:
            c.bad(f"{p}.workers", "pool workers hold one set of resources: remove slurm.per_rung")
        if s.tasks_per_node * s.nodes > 1 and s.trials_per_gpu > 1:
            c.bad(f"{p}.trials_per_gpu", "shares GPUs between single-process pool workers; with "
                  "several ranks per trial (tasks_per_node or nodes > 1) leave it at 1")
    elif s.trials_per_gpu > 1:
        c.bad(f"{p}.trials_per_gpu", "shares a GPU between pool workers: set slurm.workers to "
              "a number of workers too")
    return s


# a setup line that puts another Python first on the PATH
_ACTIVATES = re.compile(r"(^|[\s;&|])(source|\.)\s+\S*activate\b|\b(conda|mamba|micromamba)\s+"
                        r"activate\b|\bmodule\s+load\s+\S*(python|anaconda|miniconda|conda)|"
                        r"\bspack\s+load\b|\bpyenv\s+(shell|activate)\b", re.IGNORECASE)


def _per_rung(c: _Checker, raw: Any, p: str) -> list[dict[str, Any]]:
    """``slurm.per_rung``: a list of resource overrides, one per rung level."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        c.bad(p, f"must be a list of mappings (resources per rung), got {shown(raw)}")
        return []
    out = []
    for i, item in enumerate(raw):
        q = f"{p}[{i}]"
        if isinstance(item, dict) and "timeout_min" in item:
            c.bad(f"{q}.timeout_min", "time limits per rung go in slurm.timeout_min_per_rung")
            item = {k: v for k, v in item.items() if k != "timeout_min"}
        d = c.mapping(item, q, _PER_RUNG_KEYS)
        e: dict[str, Any] = {}
        for k in ("partition", "qos", "account", "constraint", "exclude"):
            if k in d:
                e[k] = c.get(d, k, q, _is_str, "a string", None)
        for k in ("cpus_per_task", "gpus_per_node", "tasks_per_node", "nodes"):
            if k in d:
                e[k] = c.get(d, k, q, _is_int, "an integer", None,
                             _at_least(0 if k == "gpus_per_node" else 1))
        if "mem_gb" in d:
            e["mem_gb"] = c.get(d, "mem_gb", q, _is_num, "a number", None, _greater(0))
        if "additional_parameters" in d:
            e["additional_parameters"] = c.get(d, "additional_parameters", q,
                                               lambda v: isinstance(v, dict), "a mapping", None)
            _check_owned_sbatch(c, e["additional_parameters"] or {}, f"{q}.additional_parameters")
        out.append({k: v for k, v in e.items() if v is not None})
    return out


_SIMULATED_KEYS = ("unit_seconds", "startup_seconds", "queue_wait_seconds", "duration_noise",
                   "failure_rate", "workers", "result_delay_seconds", "pool", "curve", "nodes",
                   "broken_nodes", "broken_how", "repaired_after_s")


def _simulated(c: _Checker, raw: Any) -> SimulatedConfig:
    p = "simulated"
    d = c.mapping(raw, p, _SIMULATED_KEYS)
    s = SimulatedConfig()
    s.unit_seconds = float(c.get(d, "unit_seconds", p, _is_num, "a number", s.unit_seconds, _greater(0)))
    for k in ("startup_seconds", "queue_wait_seconds", "duration_noise", "result_delay_seconds"):
        setattr(s, k, float(c.get(d, k, p, _is_num, "a number", getattr(s, k), _at_least(0))))
    s.failure_rate = float(c.get(d, "failure_rate", p, _is_num, "a number", 0.0,
                                 lambda v: None if 0 <= v < 1 else "must be in [0, 1)"))
    s.workers = c.get(d, "workers", p, _is_int, "an integer", None, _at_least(1))
    s.pool = _workers(c, d, p, "pool")
    s.curve = c.get(d, "curve", p, _is_curve, "'module:function' or 'path/to/file.py:function'",
                    None)
    s.nodes = c.get(d, "nodes", p, _is_int, "an integer", 1, _at_least(1))
    s.broken_nodes = c.get(d, "broken_nodes", p, _is_int, "an integer", 0,
                           lambda v: None if 0 <= v < max(s.nodes, 1)
                           else "must be at least 0 and less than simulated.nodes")
    s.broken_how = c.get(d, "broken_how", p, lambda v: v in ("fail", "die"),
                         "'fail' or 'die'", "fail")
    s.repaired_after_s = c.get(d, "repaired_after_s", p, _is_num, "a number (seconds)", None,
                               _at_least(0))
    return s


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _environment(c: _Checker, v: Any) -> dict[str, str]:
    """``environment_variables``: a mapping of NAME: value, or Determined's list of
    "NAME=value" strings. Values are set as text (a number or true/false as YAML wrote it)."""
    path = "environment_variables"
    if v is None:
        return {}
    items: list[tuple[Any, Any, str]] = []
    if isinstance(v, dict):
        items = [(k, val, f"{path}.{k}") for k, val in v.items()]
    elif isinstance(v, list):
        for i, entry in enumerate(v):
            if not isinstance(entry, str) or "=" not in entry:
                c.bad(f"{path}[{i}]", f"must be a string NAME=value, got {entry!r:.60}")
                continue
            name, _, val = entry.partition("=")
            items.append((name, val, f"{path}[{i}]"))
    else:
        c.bad(path, f"must be a mapping of NAME: value (or a list of \"NAME=value\"), got "
                    f"{type(v).__name__}")
        return {}
    out: dict[str, str] = {}
    for name, val, where in items:
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            c.bad(where, f"{name!r:.60} is not a variable name (letters, digits and _, not "
                         f"starting with a digit)")
        elif val is None or isinstance(val, (dict, list)):
            c.bad(where, f"must be a string or a number, got {val!r:.60}")
        else:
            out[name] = ("true" if val else "false") if isinstance(val, bool) else str(val)
    return out


def _is_curve(v: Any) -> bool:
    if not isinstance(v, str) or " " in v.strip():
        return False
    mod, _, fn = v.strip().rpartition(":")
    return bool(mod) and fn.isidentifier()


def _data(c: Any, raw: Any) -> dict[str, Any]:
    """``data``: any mapping, passed to the code as it is."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        c.bad("data", f"must be a mapping (Determined's user data: any keys), got {shown(raw)}")
        return {}
    return raw


_TOP_KEYS = ("name", "description", "entrypoint", "command", "searcher", "hyperparameters", "resources",
             "max_restarts", "readmit_nodes_after_h", "reproducibility", "backend", "experiment_dir",
             "poll_interval_s", "result_grace_s",
             "checkpoint_storage", "local", "slurm", "simulated", "context_dir",
             "continue_in_place", "continue_wait_s", "worker_idle_timeout_s", "hung_after_s",
             "probe_jobs", "auto_workers_share", "environment_variables", "data")


def parse_config(raw: Any, config_dir: str | Path, source: str = "",
                 overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Validate a loaded YAML document. Raises ConfigError listing every problem."""
    from .compat.determined_config import translate
    from .space import looks_like_a_draw, parse_space

    c = _Checker()
    if raw is None:
        raise ConfigError(["(top level): the file is empty"], source)
    raw, notes, c.problems = translate(raw, str(config_dir))  # a Determined file as it is
    c.warnings.extend(notes)
    d = c.mapping(raw, "", _TOP_KEYS)
    if overrides:
        d.update({k: v for k, v in overrides.items() if v is not None})
    name = c.get(d, "name", "", _is_str, "a string", None)
    if name is None or not name.strip():
        name = Path(source).stem if source else "experiment"
    name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name.strip())
    searcher = _searcher(c, d.get("searcher"))
    hp_raw = d.get("hyperparameters")
    if hp_raw is None:
        hp_raw = {}
    space, hp_problems = parse_space(hp_raw)
    c.problems.extend(hp_problems)
    entrypoint = _entrypoint(c, d.get("entrypoint"), d.get("command"))
    if isinstance(entrypoint, list):
        from .protocol import command_args

        flat = None if hp_problems else space.flat_names()
        c.problems.extend(command_args.problems(entrypoint, flat))
        c.warnings.extend(command_args.warnings(entrypoint, flat or []))
    if searcher.name == "grid" and not hp_problems:
        c.problems.extend(space.grid_problems())
    elif not hp_problems:
        counted = [".".join(names) for names, param in space.leaves()
                   if getattr(param, "count", None) is not None]
        if counted:
            c.warnings.append(
                f"hyperparameters.{counted[0]}.count"
                + (f" (and {len(counted) - 1} more)" if len(counted) > 1 else "")
                + f": count sets the grid searcher's points only; {searcher.name} draws any "
                  f"value of the range (a categorical of the values draws those alone)")
    for names, param in space.leaves():
        val = getattr(param, "val", None) if param.kind == "const" else None
        hint = looks_like_a_draw(val)
        if hint is not None:
            c.warnings.append(
                f"hyperparameters.{'.'.join(names)}: the constant {val!r} is text that every "
                f"trial gets as it is, not a search space; to search it, write a mapping: {hint}"
                + ("" if "vals" in hint else ", with minval and maxval"))
    if not hp_problems:
        given: list[dict[str, Any] | None] = []  # each point in full, None where it leaves a draw
        for i, point in enumerate(searcher.points_to_evaluate):
            value, problems = space.check_point(point, f"searcher.points_to_evaluate[{i}]")
            c.problems.extend(problems)
            given.append(None if problems else space.config_of(value)[0])
        for i, full in enumerate(given):
            first = next((j for j in range(i) if full is not None and given[j] == full), None)
            if first is not None:  # (Optuna's enqueue_trial skips a repeat only with skip_if_exists)
                c.warnings.append(
                    f"searcher.points_to_evaluate[{i}] repeats [{first}]: trials {first + 1} and "
                    f"{i + 1} will train the same configuration; remove one if that is not meant")
    repro = c.mapping(d.get("reproducibility"), "reproducibility", ("experiment_seed",))
    seed = c.get(repro, "experiment_seed", "reproducibility", _is_int, "an integer", None, _at_least(0))
    if seed is None:
        seed = secrets.randbelow(2**31)  # recorded in the resolved config: resume replays it
    ckpt = c.mapping(d.get("checkpoint_storage"), "checkpoint_storage",
                     ("save_experiment_best", "save_trial_latest", "folder"))
    cfg_dir = d.get("context_dir") or str(config_dir)
    cfg = ExperimentConfig(
        name=name,
        description=c.get(d, "description", "", _is_str, "a string", "") or "",
        entrypoint=entrypoint,
        searcher=searcher,
        hyperparameters=hp_raw if isinstance(hp_raw, dict) else {},
        config_dir=str(Path(cfg_dir).resolve()),
        max_restarts=c.get(d, "max_restarts", "", _is_int, "an integer", 5, _at_least(0)),
        readmit_nodes_after_h=c.get(d, "readmit_nodes_after_h", "", _is_num,
                                    "a number of hours (or null: never on its own)", None,
                                    _greater(0)),
        probe_jobs=c.get(d, "probe_jobs", "", _is_int, "an integer (0: no limit)", 3, _at_least(0)),
        experiment_seed=seed,
        backend=c.choice(d, "backend", "", BACKENDS, "local"),
        experiment_dir=c.get(d, "experiment_dir", "", _is_str, "a string (a path)", None),
        poll_interval_s=float(c.get(d, "poll_interval_s", "", _is_num, "a number", 1.0, _greater(0))),
        result_grace_s=c.get(d, "result_grace_s", "", _is_num, "a number", None, _at_least(0)),
        save_experiment_best=c.get(ckpt, "save_experiment_best", "checkpoint_storage", _is_int,
                                   "an integer", 3, _at_least(0)),
        save_trial_latest=c.get(ckpt, "save_trial_latest", "checkpoint_storage", _is_int,
                                "an integer", 0, _at_least(0)),
        checkpoint_folder=c.get(ckpt, "folder", "checkpoint_storage", _is_str, "a path", None),
        slots_per_trial=c.get(c.mapping(d.get("resources"), "resources", ("slots_per_trial",)),
                              "slots_per_trial", "resources", _is_int, "an integer", 1, _at_least(1)),
        continue_in_place=c.get(d, "continue_in_place", "", _is_bool, "true or false", False),
        continue_wait_s=c.get(d, "continue_wait_s", "", _is_num, "a number", None, _at_least(0)),
        worker_idle_timeout_s=float(c.get(d, "worker_idle_timeout_s", "", _is_num, "a number",
                                          600.0, _greater(0))),
        hung_after_s=float(c.get(d, "hung_after_s", "", _is_num, "a number", HUNG_AFTER_S,
                                 _at_least(5))),
        auto_workers_share=float(c.get(d, "auto_workers_share", "", _is_num, "a number", 0.10,
                                       _greater(0))),
        environment_variables=_environment(c, d.get("environment_variables")),
        data=_data(c, d.get("data")),
        local=_local(c, d.get("local")),
        slurm=_slurm(c, d.get("slurm")),
        simulated=_simulated(c, d.get("simulated")),
    )
    if c.problems:
        raise ConfigError(c.problems, source)
    cfg.warnings = c.warnings
    return cfg


def yaml_error_line(e: Exception, text: str = "") -> str:
    """Where a YAML error is, as the user would look for it: PyYAML's ``problem_mark`` is where
    the parser gave up, often the line after the mistake (an unclosed ``[``, a key without its
    ``:``); its ``context_mark`` (``while scanning a simple key``, ``a quoted scalar``, ``while
    parsing a flow sequence``) is the mistake itself. (A block mapping's context is where the
    mapping began, not the mistake: there the problem mark is right.)"""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    found, ctx = getattr(e, "problem_mark", None), getattr(e, "context_mark", None)
    context = getattr(e, "context", None) or ""
    if ctx is not None and context.startswith(("while scanning", "while parsing a flow")) and (
            found is None or (ctx.line, ctx.column) != (found.line, found.column)):
        seen = f"; noticed at line {found.line + 1}, column {found.column + 1}" if found else ""
        return (f"line {ctx.line + 1}, column {ctx.column + 1}: not valid YAML ({context}: "
                f"{problem}{seen})")
    if found is not None and problem == "mapping values are not allowed here":
        # 'name my-run' above 'entrypoint: x' reads as one scalar over both lines: the ':' is
        # missing on the line before
        before = [(i, line) for i, line in enumerate(text.splitlines()[:found.line])
                  if line.strip() and not line.lstrip().startswith("#")]
        if before and ":" not in before[-1][1] and not before[-1][1].lstrip().startswith("-"):
            i, line = before[-1]
            return (f"line {i + 1}: not valid YAML (no ':' after '{line.split()[0]}'? noticed "
                    f"at line {found.line + 1}, column {found.column + 1}: {problem})")
    where = f"line {found.line + 1}, column {found.column + 1}: " if found else ""
    return f"{where}not valid YAML ({problem})"


def trial_seed(experiment_seed: int, trial_id: int) -> int:
    """A trial's own seed, the same in every job of it: experiment_seed + id (Determined's
    trial seed), kept below 2**31 for every library's seeding function."""
    return (experiment_seed + trial_id) % 2**31


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read and validate a YAML experiment file (``yamlfile.read_yaml``: the safe loader)."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        from .protocol.expdir import JOURNAL

        if (p.parent / JOURNAL).exists():  # an experiment folder whose config is gone
            raise ConfigError([f"{p}: no such file: the experiment's config is gone (its "
                               f"journal holds the rest); copy the config the search started "
                               f"with there (resume refuses one whose searcher or "
                               f"hyperparameters differ)"]) from None
        raise ConfigError([f"{p}: no such file"]) from None
    except OSError as e:
        raise ConfigError([f"{p}: cannot read ({e.strerror})"]) from None
    try:
        yaml11 = _an_earlier_releases(p)
        raw = read_yaml(text, yaml11)
        words = _words_read_as_booleans(compose_yaml(text, yaml11))
    except yaml.YAMLError as e:
        raise ConfigError([yaml_error_line(e, text)], str(p)) from None
    cfg = parse_config(raw, p.resolve().parent, source=str(p), overrides=overrides)
    cfg.warnings.extend(words)
    cfg.source = str(p)
    return cfg


def _an_earlier_releases(p: Path) -> bool:
    """``p`` is the config of an experiment folder whose search a release before YAML 1.2
    numbers ran (folder format < 4): read as that release read it (its journal's config hash
    says 1e-4 was text) until this release's master upgrades the folder."""
    from .protocol.expdir import CONFIG, JOURNAL, YAML12_FORMAT, folder_format

    return p.name == CONFIG and (p.parent / JOURNAL).exists() and \
        folder_format(p.parent) < YAML12_FORMAT


_SEARCHED = ("hyperparameters", "searcher.points_to_evaluate")  # where a value is the user's


def _words_read_as_booleans(node: Any, path: str = "") -> list[str]:
    """YAML 1.1 (PyYAML) reads yes, no, on and off as booleans: among hyperparameter
    values (``vals: [auto, on, off]``) that is rarely what was meant. One line for each."""
    out: list[str] = []
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            out += _words_read_as_booleans(v, f"{path}.{k.value}" if path else str(k.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            out += _words_read_as_booleans(v, f"{path}[{i}]")
    elif (isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:bool"
          and node.value.lower() not in ("true", "false")
          and path.startswith(_SEARCHED)):
        value = node.value.lower() in ("yes", "on")
        out.append(f"{path}: YAML reads {node.value} (line {node.start_mark.line + 1}) as "
                   f"{str(value).lower()}; quote it ('{node.value}') where the word is meant")
    return out

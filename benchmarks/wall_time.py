"""Wall time at equal budget on this machine (2 workers): asha_hpc vs Optuna, Ray Tune, Syne Tune.

    pip install -e '.[bench]'
    python benchmarks/wall_time.py                  # 256 trials, 3 repeats (~30 min on 2 cores)
    python benchmarks/wall_time.py --quick          # 32 trials, 1 repeat (~3 minutes)
    python benchmarks/wall_time.py --systems optuna,asha_local --repeats 1

The search-quality task (benchmarks/stopping_rules.py: the numpy MLP on scikit-learn's digits,
validation log-loss, epochs as the unit; imported by path, not copied) searched by each system
the way its own docs recommend for several processes on one machine, with 2 workers, the same
number of trials (256), eta = 4, a minimum of 1 epoch and a maximum length of 64 epochs (rungs
1 / 4 / 16 / 64 for everyone: with 81, adaptive_asha's rungs would be 1 / 5 / 20 / 81 and the
peers' 1 / 4 / 16 / 64 / 81, so the budgets would differ for reasons that have nothing to do with
wall time):

- ``optuna``: Optuna RandomSampler + SuccessiveHalvingPruner(min_resource=1, reduction_factor=4),
  JournalStorage(JournalFileBackend) in a temporary folder, 2 worker processes each running
  ``study.optimize`` for half the trials; ``report`` + ``should_prune`` every epoch;
- ``optuna_shared``: the same, with the study given asha_hpc's configs for the seed, in
  creation order (``study.enqueue_trial`` before the clock starts): both systems then train the
  same configs, so the comparison is free of the luck of each sampler's draws (a config's
  epoch cost varies several-fold with its width and batch size);
- ``ray_ckpt`` / ``ray``: Ray Tune ``Tuner`` with ASHAScheduler(grace_period=1,
  reduction_factor=4, max_t=64), ``max_concurrent_trials=2``, ``reuse_actors=True``, 1 CPU per
  trial, ``ray.init(num_cpus=2)`` inside the timed part; ``tune.report`` every epoch, with a
  checkpoint (an npz of the weights) each epoch or without;
- ``syne``: Syne Tune ASHA (stopping, grace 1, reduction factor 4, max_t 64) on its LocalBackend
  with 2 workers and the Tuner's defaults (each trial a process);
- ``asha_local``: ``asha-hpc run`` on the local backend, per-segment mode (each segment a new
  process through submitit), ``local.max_parallel: 2``, adaptive_asha standard, divisor 4,
  ``max_concurrent_trials: 2``, the config's default ``poll_interval_s`` (``--poll-interval``
  to change it); a checkpoint (npz) after every segment, resumed from ``latest_checkpoint``;
- ``asha_pool``: the same with ``local.workers: 2`` (long-lived workers calling ``train`` in
  their process); recorded as "not available" while the config does not accept the key;
- ``asha_pool_aggr``: the worker pool with adaptive_asha ``mode: aggressive`` (one bracket,
  trials start at 1 epoch: the rule family of Optuna's SuccessiveHalvingPruner and Ray's
  ASHAScheduler, so about the same epochs as theirs). ``standard`` (the asha_hpc default, used
  by ``asha_local`` / ``asha_pool``) runs 3 brackets, part of them starting trials at 4 or 16
  epochs, and trains about twice the epochs.

``--merge`` keeps the rows and runs of systems not measured in this call from the existing
JSON (each row says when and at which commit it was measured) and replaces the others.

Each search runs in a fresh Python process (the "driver"). Measured per run: the wall time of
the search call (Optuna: create the study, start the 2 workers, wait for them; Ray: ray.init to
the end of ``fit``; Syne: ``Tuner.run``; asha_hpc: the master's ``run`` command in process) and
of the whole driver command (Python start and imports included); epochs trained and trials
trained, counted by the objective itself (every training process appends a line per epoch to a
counter file); the best validation loss at 64 epochs among the trials trained that far; and
"pure training": the same epochs (each trial's hyperparameters, as many epochs as it trained)
retrained in one loop in one process, no system at all. The median over ``--repeats`` is
reported. Thread variables (OPENBLAS/OMP/MKL) are 1, as in stopping_rules.py.

Writes benchmarks/results/wall_time.json (wall_time_quick.json with --quick).
"""
from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # tiny matrices: threads only add overhead

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import wall_time_trial as wtt  # noqa: E402

MAX_LEN = 64
DIVISOR = 4
WORKERS = 2
ALL_SYSTEMS = ["optuna", "optuna_shared", "ray_ckpt", "ray", "syne", "asha_local", "asha_pool",
               "asha_pool_aggr"]
LABELS = {
    "optuna": "Optuna SH pruner, journal file, 2 procs",
    "optuna_shared": "Optuna, asha_hpc's configs (enqueued)",
    "ray_ckpt": "Ray Tune ASHA, checkpoint every epoch",
    "ray": "Ray Tune ASHA, no checkpoints",
    "syne": "Syne Tune ASHA, LocalBackend",
    "asha_local": "asha_hpc local, per-segment jobs",
    "asha_pool": "asha_hpc local, worker pool (2)",
    "asha_pool_aggr": "asha_hpc local, worker pool (2), aggressive",
}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT)] +
                                        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["WALL_TIME_MAX_LEN"] = str(MAX_LEN)
    return env


# ----------------------------------------------------------------------------- drivers
# Each runs in its own fresh process (python wall_time.py --driver SYSTEM ...) and writes a
# JSON with the time of its search call and what the system itself reports.

def drive_optuna(a, tmp: Path, shared: bool = False) -> dict[str, Any]:
    """``shared``: the study gets, in order, the configs asha_hpc creates with this seed
    (``study.enqueue_trial``, before the clock starts), so Optuna and asha_hpc train the same
    configs and differ only in their stopping rule and their overhead. With its own sampler,
    a run's wall time also carries the luck of which widths and batch sizes it drew: one
    epoch of the widest, smallest-batch config costs several of the cheapest."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    journal = tmp / "optuna_journal.log"
    storage = JournalStorage(JournalFileBackend(str(journal)))
    if shared:
        study = optuna.create_study(study_name="wall_time", storage=storage, direction="minimize")
        stream = wtt.sq().Stream(a.seed)
        for _ in range(a.trials):
            study.enqueue_trial(stream())
    t0 = time.perf_counter()
    if not shared:
        study = optuna.create_study(study_name="wall_time", storage=storage, direction="minimize")
    per = [a.trials // WORKERS + (1 if i < a.trials % WORKERS else 0) for i in range(WORKERS)]
    procs = [subprocess.Popen([sys.executable, str(HERE / "wall_time_trial.py"), "--optuna-worker",
                               "--journal", str(journal), "--study", "wall_time",
                               "--trials", str(n), "--seed", str(a.seed * 100 + i),
                               "--divisor", str(DIVISOR)], env=_env())
             for i, n in enumerate(per)]
    rcs = [p.wait() for p in procs]
    wall = time.perf_counter() - t0
    study = optuna.load_study(study_name="wall_time", storage=storage)
    states: dict[str, int] = {}
    for t in study.trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    try:
        best = study.best_value
    except ValueError:
        best = None
    return {"wall_s": wall, "rcs": rcs, "system_best": best, "system_trials": len(study.trials),
            "states": states}


def drive_ray(a, tmp: Path, checkpoints: bool) -> dict[str, Any]:
    import logging

    os.environ.update(_env())
    os.environ["WALL_TIME_RAY_CKPT"] = "1" if checkpoints else "0"
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    space = {"lr": tune.loguniform(10 ** -3.5, 1.0), "width": tune.randint(16, 129),
             "batch_size": tune.choice(wtt.BATCHES),
             "weight_decay": tune.loguniform(1e-6, 1e-1), "act": tune.choice(wtt.ACTS)}
    t0 = time.perf_counter()
    ray.init(num_cpus=WORKERS, include_dashboard=False, logging_level=logging.ERROR,
             log_to_driver=False)
    t_init = time.perf_counter() - t0
    sched = ASHAScheduler(time_attr="training_iteration", max_t=MAX_LEN, grace_period=1,
                          reduction_factor=DIVISOR)
    tuner = tune.Tuner(
        tune.with_resources(wtt.ray_trainable, {"cpu": 1}), param_space=space,
        tune_config=tune.TuneConfig(metric="val_loss", mode="min", scheduler=sched,
                                    num_samples=a.trials, max_concurrent_trials=WORKERS,
                                    reuse_actors=True,
                                    search_alg=BasicVariantGenerator(random_state=a.seed)),
        run_config=tune.RunConfig(storage_path=str(tmp / "ray_results"), name="wall_time",
                                  verbose=0))
    grid = tuner.fit()
    t_fit = time.perf_counter() - t0
    best = grid.get_best_result(metric="val_loss", mode="min", scope="last")
    errors = len(grid.errors)
    ray.shutdown()
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "fit_end_s": t_fit, "ray_init_s": t_init, "errors": errors,
            "system_best": best.metrics.get("val_loss") if best and best.metrics else None,
            "system_best_epochs": best.metrics.get("training_iteration") if best and best.metrics else None,
            "system_trials": len(grid)}


def drive_syne(a, tmp: Path) -> dict[str, Any]:
    import logging

    os.environ.update(_env())
    os.environ["SYNETUNE_FOLDER"] = str(tmp / "syne")
    logging.getLogger("syne_tune").setLevel(logging.WARNING)
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend import LocalBackend
    from syne_tune.config_space import choice, loguniform, randint
    from syne_tune.optimizer.baselines import ASHA

    space = {"lr": loguniform(10 ** -3.5, 1.0), "width": randint(16, 128),
             "batch_size": choice(wtt.BATCHES), "weight_decay": loguniform(1e-6, 1e-1),
             "act": choice(wtt.ACTS), "epochs": MAX_LEN}
    t0 = time.perf_counter()
    tuner = Tuner(trial_backend=LocalBackend(entry_point=str(HERE / "wall_time_trial.py")),
                  scheduler=ASHA(space, metric="val_loss", time_attr="epoch", max_t=MAX_LEN,
                                 do_minimize=True, random_seed=a.seed, grace_period=1,
                                 reduction_factor=DIVISOR),
                  stop_criterion=StoppingCriterion(max_num_trials_started=a.trials),
                  n_workers=WORKERS, wait_trial_completion_when_stopping=True,
                  tuner_name=f"wall-time-{a.seed}")
    tuner.run()
    wall = time.perf_counter() - t0
    best = None
    try:
        st = tuner.tuning_status
        best = float(st.get_dataframe()["val_loss-min"].min())  # best reported at any epoch
    except Exception:  # noqa: BLE001 - only informative
        pass
    return {"wall_s": wall, "system_best_any_epoch": best,
            "sleep_time_s": getattr(tuner, "sleep_time", None)}


def asha_config(a, tmp: Path, pool: bool, mode: str = "standard") -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "name": "wall_time",
        "entrypoint": "wall_time_trial:train",
        "context_dir": str(HERE),
        "searcher": {"name": "adaptive_asha", "metric": "val_loss",
                     "max_length": {"epochs": MAX_LEN}, "max_trials": a.trials,
                     "max_concurrent_trials": WORKERS, "mode": mode, "divisor": DIVISOR},
        "hyperparameters": wtt.sq().SPACE_SPEC,
        "reproducibility": {"experiment_seed": a.seed},
        "backend": "local",
        "max_restarts": 1,
        "local": {"gpus": 0, "max_parallel": WORKERS},
    }
    if a.poll_interval:
        cfg["poll_interval_s"] = a.poll_interval
    if pool:
        cfg["local"]["workers"] = WORKERS
    return cfg


def asha_pool_available() -> str | None:
    """None if the config accepts ``local.workers``, else why not (the validation message)."""
    from asha_hpc.config import parse_config
    from asha_hpc.errors import ConfigError

    ns = argparse.Namespace(trials=4, seed=0, poll_interval=None)
    try:
        parse_config(asha_config(ns, Path("."), pool=True), HERE)
    except ConfigError as e:
        return " ".join(str(e).split())
    return None


def drive_asha(a, tmp: Path, pool: bool, mode: str = "standard") -> dict[str, Any]:
    import yaml

    os.environ.update(_env())
    cfg_path = tmp / "wall_time.yaml"
    cfg_path.write_text(yaml.safe_dump(asha_config(a, tmp, pool, mode), sort_keys=False))
    exp_dir = tmp / "exp"
    from asha_hpc.cli import main as asha_main

    t0 = time.perf_counter()
    rc = asha_main(["run", str(cfg_path), "--exp-dir", str(exp_dir)])
    wall = time.perf_counter() - t0
    out: dict[str, Any] = {"wall_s": wall, "rc": rc, "exp_dir": str(exp_dir)}
    try:
        from asha_hpc.views.status import open_experiment

        _, _, records, st = open_experiment(str(exp_dir))
        best = st.ranked()
        if best:
            out["system_best"], out["system_best_length"] = best[0].metric, best[0].length
        out["system_trials"] = len(st.trials)
        out["overheads"] = asha_overheads(records, wall)
    except Exception as e:  # noqa: BLE001 - only informative
        out["observe_error"] = repr(e)
    return out


def asha_overheads(records: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    """Where a per-segment search spends its time, from the journal, per completed segment
    attempt: ``to_segment``: the intent journaled -> ``run_segment`` starts in the job process
    (waiting for a free slot, submitit's controller and task processes, the interpreter,
    imports, unpickling); ``segment``: ``run_segment`` -> result published (the user's imports,
    data loading, training, checkpoint); ``to_master``: result file -> journal (the master's
    poll). The process start time a result carries (``job_started``, from /proc with the boot
    time in whole seconds) is too coarse for sub-second figures and is not used."""
    intent: dict[Any, float] = {}
    rows = []
    for r in records:
        key = (r.get("trial"), r.get("segment"), r.get("attempt"))
        if r.get("kind") == "intent":
            intent[key] = r["time"]
        elif r.get("kind") == "result" and r.get("status") == "completed":
            s, e = r.get("started"), r.get("ended")
            if None in (s, e) or key not in intent:
                continue
            rows.append({"to_segment": s - intent[key], "segment": e - s,
                         "to_master": r["time"] - e})
    if not rows:
        return {}
    n = len(rows)
    tot = {k: sum(x[k] for x in rows) for k in rows[0]}
    med = {k: statistics.median(x[k] for x in rows) for k in rows[0]}
    times = [r["time"] for r in records if "time" in r]
    return {"segments": n, "median_s": med, "total_s": tot,
            "journal_span_s": max(times) - min(times) if times else None,
            "slot_seconds": WORKERS * wall}


DRIVERS = {
    "optuna": lambda a, tmp: drive_optuna(a, tmp),
    "optuna_shared": lambda a, tmp: drive_optuna(a, tmp, shared=True),
    "ray_ckpt": lambda a, tmp: drive_ray(a, tmp, True),
    "ray": lambda a, tmp: drive_ray(a, tmp, False),
    "syne": lambda a, tmp: drive_syne(a, tmp),
    "asha_local": lambda a, tmp: drive_asha(a, tmp, False),
    "asha_pool": lambda a, tmp: drive_asha(a, tmp, True),
    "asha_pool_aggr": lambda a, tmp: drive_asha(a, tmp, True, "aggressive"),
}


def driver_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("system")
    ap.add_argument("--trials", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--poll-interval", type=float)
    a = ap.parse_args(argv)
    os.environ["WALL_TIME_COUNTER"] = str(Path(a.tmp) / "counter.tsv")
    res = DRIVERS[a.system](a, Path(a.tmp))
    Path(a.out).write_text(json.dumps(res, default=str))
    return 0


# ----------------------------------------------------------------------------- measuring
def read_counter(path: Path) -> dict[str, Any]:
    """Epochs and trials as the objective counted them, and the best loss at MAX_LEN."""
    epochs: dict[str, int] = {}
    best = None
    if path.exists():
        for line in path.read_text().splitlines():
            f = line.split("\t")
            if f[0] == "E" and len(f) >= 4:
                epochs[f[1]] = epochs.get(f[1], 0) + 1
                if f[3] and int(f[2]) == MAX_LEN:
                    v = float(f[3])
                    best = v if best is None else min(best, v)
            elif f[0] == "H" and len(f) >= 2:
                epochs.setdefault(f[1], 0)
    return {"epochs": sum(epochs.values()), "trials": len(epochs), "best_val_at_max": best,
            "per_trial": epochs}


def pure_training(per_trial: dict[str, int]) -> float:
    """The same epochs (each trial's hyperparameters, its epoch count) in one loop, one process."""
    t0 = time.perf_counter()
    for k, n in per_trial.items():
        net = wtt.new_net(json.loads(k))
        for _ in range(n):
            net.epoch()
    return time.perf_counter() - t0


def paired_ratios(runs: list[dict[str, Any]], system: str, base: str = "optuna") -> list[float]:
    """``system``'s wall time over ``base``'s, repeat by repeat. The two ran back to back, so
    the ratio cancels most of a shared machine's drifting load, which moves single runs by
    +-25% here; the median of these ratios is steadier than a ratio of medians."""
    if system.startswith("optuna"):
        return []
    opt = {r["seed"]: r["wall_s"] for r in runs if r["system"] == base
           and r.get("wall_s") and r["rc"] == 0}
    return [r["wall_s"] / opt[r["seed"]] for r in runs if r["system"] == system
            and r.get("wall_s") and r["rc"] == 0 and r["seed"] in opt]


def run_one(system: str, trials: int, seed: int, poll: float | None, keep: bool,
            timeout: float) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix=f"wall_time_{system}_"))
    out = tmp / "driver.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--driver", system,
           "--trials", str(trials), "--seed", str(seed), "--tmp", str(tmp), "--out", str(out)]
    if poll:
        cmd += ["--poll-interval", str(poll)]
    log = tmp / "driver.log"
    t0 = time.perf_counter()
    with open(log, "wb") as lf:
        p = subprocess.Popen(cmd, env=_env(), stdout=lf, stderr=subprocess.STDOUT,
                             start_new_session=True)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.wait()
            rc = "timeout"
    command_s = time.perf_counter() - t0
    res: dict[str, Any] = {"system": system, "seed": seed, "rc": rc, "command_s": command_s}
    if out.exists():
        res.update(json.loads(out.read_text()))
    else:
        res["error"] = log.read_text(errors="replace")[-3000:]
    c = read_counter(tmp / "counter.tsv")
    per_trial = c.pop("per_trial")
    res.update(c)
    res["pure_training_s"] = pure_training(per_trial) if per_trial else None
    if keep:
        res["tmp"] = str(tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def startup_probe(repeats: int = 5) -> dict[str, float]:
    """Median seconds of fresh processes doing what each per-segment job does before training."""
    probes = {
        "python -c pass": "pass",
        "import submitit + asha_hpc.job.jobmain": "import submitit, asha_hpc.job.jobmain",
        "+ numpy, sklearn, digits Data()": ("import submitit, asha_hpc.job.jobmain, wall_time_trial as w;"
                                            " w.data()"),
    }
    out = {}
    for name, code in probes.items():
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=_env(), check=True)
            ts.append(time.perf_counter() - t0)
        out[name] = statistics.median(ts)
    net = wtt.new_net({"lr": 0.05, "width": 64, "batch_size": 64, "weight_decay": 1e-4,
                       "act": "relu"})
    t0 = time.perf_counter()
    for _ in range(20):
        net.epoch()
    out["one epoch (width 64, batch 64)"] = (time.perf_counter() - t0) / 20
    return out


def versions() -> dict[str, str | None]:
    v: dict[str, str | None] = {"python": platform.python_version()}
    for mod in ("numpy", "sklearn", "optuna", "ray", "syne_tune", "submitit"):
        try:
            v[mod] = getattr(__import__(mod), "__version__", "?")
        except Exception:  # noqa: BLE001
            v[mod] = None
    return v


def have(mod: str) -> bool:
    try:
        __import__(mod)
        return True
    except Exception:  # noqa: BLE001
        return False


def git_commit() -> str | None:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "asha_hpc"],
                               capture_output=True, text=True).stdout.strip()
        return head + ("+dirty asha_hpc" if dirty else "")
    except Exception:  # noqa: BLE001 - only informative
        return None


def med(xs: list[float | None]) -> float | None:
    xs = [x for x in xs if isinstance(x, (int, float))]
    return statistics.median(xs) if xs else None


def fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--driver":
        return driver_main(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="32 trials, 1 repeat")
    ap.add_argument("--trials", type=int, help="trials per search (default 256; 32 with --quick)")
    ap.add_argument("--repeats", type=int, help="runs per system (default 3; 1 with --quick)")
    ap.add_argument("--repeats-for", default="",
                    help="per-system repeats, e.g. syne=1,asha_local=1 (slow systems)")
    ap.add_argument("--systems", default=",".join(ALL_SYSTEMS),
                    help=f"comma-separated, from {','.join(ALL_SYSTEMS)}")
    ap.add_argument("--poll-interval", type=float,
                    help="asha_hpc poll_interval_s (default: the config's default)")
    ap.add_argument("--timeout", type=float, default=1200.0, help="seconds per search run")
    ap.add_argument("--keep", action="store_true", help="keep each run's temporary folder")
    ap.add_argument("--no-probe", action="store_true", help="skip the start-up probe")
    ap.add_argument("--out", help="JSON path (default benchmarks/results/wall_time[_quick].json)")
    ap.add_argument("--merge", action="store_true",
                    help="keep the existing JSON's rows and runs of systems not run now")
    a = ap.parse_args()
    T = a.trials or (32 if a.quick else 256)
    R = a.repeats or (1 if a.quick else 3)
    systems = [s.strip() for s in a.systems.split(",") if s.strip()]
    bad = [s for s in systems if s not in ALL_SYSTEMS]
    if bad:
        ap.error(f"unknown systems {bad}; choose from {ALL_SYSTEMS}")
    skipped: dict[str, str] = {}
    for s, mod in (("optuna", "optuna"), ("optuna_shared", "optuna"), ("ray_ckpt", "ray.tune"),
                   ("ray", "ray.tune"), ("syne", "syne_tune")):
        if s in systems and not have(mod):
            skipped[s] = f"{mod} not installed"
    if "asha_pool" in systems or "asha_pool_aggr" in systems:
        why = asha_pool_available()
        if why:
            for s in ("asha_pool", "asha_pool_aggr"):
                if s in systems:
                    skipped[s] = f"not available yet (config rejects local.workers: {why})"
    run_systems = [s for s in systems if s not in skipped]
    reps = {s: R for s in run_systems}
    for item in filter(None, (x.strip() for x in a.repeats_for.split(","))):
        k, _, v = item.partition("=")
        if k not in reps or not v.isdigit():
            ap.error(f"--repeats-for: bad item {item!r}")
        reps[k] = int(v)
    vers = versions()
    print(f"wall time at equal budget: {T} trials, eta {DIVISOR}, lengths 1..{MAX_LEN} epochs, "
          f"{WORKERS} workers, {R} repeat(s); python {vers['python']}, optuna {vers['optuna']}, "
          f"ray {vers['ray']}, syne_tune {vers['syne_tune']}, {os.cpu_count()} CPUs",
          file=sys.stderr, flush=True)
    t_all = time.perf_counter()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    commit = git_commit()
    runs: list[dict[str, Any]] = []
    for rep in range(max(reps.values(), default=0)):
        for s in [s for s in run_systems if rep < reps[s]]:
            r = run_one(s, T, rep, a.poll_interval, a.keep, a.timeout)
            runs.append(r)
            print(f"  repeat {rep} {s}: search {fmt(r.get('wall_s'), '.1f')} s, command "
                  f"{r['command_s']:.1f} s, {r['epochs']:,} epochs, {r['trials']} trials, best "
                  f"{fmt(r['best_val_at_max'], '.4f')}, pure {fmt(r['pure_training_s'], '.1f')} s"
                  + (f", rc {r['rc']}" if r["rc"] != 0 else "")
                  + (f"\n    error: {r['error'][-800:]}" if r.get("error") else ""),
                  file=sys.stderr, flush=True)
    probe = {} if a.no_probe else startup_probe()
    rows = []
    for s in run_systems:
        rs = [r for r in runs if r["system"] == s]
        ok = [r for r in rs if r.get("wall_s") is not None and r["rc"] == 0]
        row = {"system": s, "label": LABELS[s], "runs": len(rs), "ok_runs": len(ok),
               "wall_s": med([r.get("wall_s") for r in ok]),
               "wall_s_min": min((r["wall_s"] for r in ok), default=None),
               "wall_s_max": max((r["wall_s"] for r in ok), default=None),
               "command_s": med([r["command_s"] for r in ok]),
               "epochs": med([r["epochs"] for r in ok]),
               "trials": med([r["trials"] for r in ok]),
               "best_val_at_max": med([r["best_val_at_max"] for r in ok]),
               "pure_training_s": med([r["pure_training_s"] for r in ok])}
        if row["wall_s"] and row["pure_training_s"]:
            row["wall_over_ideal"] = row["wall_s"] / (row["pure_training_s"] / WORKERS)
        for base in ("optuna", "optuna_shared"):
            pairs = paired_ratios(runs, s, base)
            if pairs:  # each run over the base's run of the same repeat (back to back)
                row.update({f"paired_vs_{base}": med(pairs), f"paired_vs_{base}_min": min(pairs),
                            f"paired_vs_{base}_max": max(pairs), f"paired_vs_{base}_runs": len(pairs)})
        row.update(measured_at=stamp, commit=commit, load_avg_end=os.getloadavg())
        rows.append(row)
    name = "wall_time_quick.json" if a.quick else "wall_time.json"
    out = Path(a.out) if a.out else HERE / "results" / name
    kept: list[str] = []
    if a.merge and out.exists():
        old = json.loads(out.read_text())
        if old.get("config", {}).get("trials") != T:
            print(f"--merge: {out} has {old.get('config', {}).get('trials')} trials per search, "
                  f"not {T}: not merged", file=sys.stderr)
        else:
            now = {r["system"] for r in rows}
            for r in old.get("rows", []):
                if r["system"] not in now:
                    r.setdefault("measured_at", old.get("measured_at", "earlier run"))
                    r.setdefault("load_avg_end", old.get("load_avg"))
                    rows.append(r)
                    kept.append(r["system"])
            runs = runs + [r for r in old.get("runs", []) if r["system"] in kept]
            for k, v in old.get("config", {}).get("repeats_per_system", {}).items():
                if k in kept:
                    reps[k] = v
            for k, v in old.get("skipped", {}).items():
                if k in kept and k not in skipped:
                    skipped[k] = v
            systems = systems + [k for k in kept if k not in systems]
        order = {s: i for i, s in enumerate(ALL_SYSTEMS)}
        rows.sort(key=lambda r: order.get(r["system"], 99))
    opt = next((r["wall_s"] for r in rows if r["system"] == "optuna" and r["wall_s"]), None)
    print()
    print(f"Wall time at equal budget: digits MLP, {T} trials, eta {DIVISOR}, min 1 / max {MAX_LEN} "
          f"epochs, {WORKERS} workers, median of {R} (runs per system: "
          f"{', '.join(f'{s} {n}' for s, n in reps.items())}); python {vers['python']}, optuna "
          f"{vers['optuna']}, ray {vers['ray']}, syne_tune {vers['syne_tune']}, "
          f"{os.cpu_count()} CPUs")
    print(f"{'system':<44} {'search s':>9} {'command s':>9} {'x Optuna':>8} {'epochs':>7} "
          f"{'trials':>6} {'best@max':>8} {'pure s':>7} {'x ideal':>7}")
    for r in rows:
        rel = r["wall_s"] / opt if opt and r["wall_s"] else None
        label = r["label"] + (" *" if r["system"] in kept else "")
        print(f"{label:<44} {fmt(r['wall_s'], '9.1f')} {fmt(r['command_s'], '9.1f')} "
              f"{fmt(rel, '8.2f')} {fmt(r['epochs'], '7,.0f')} {fmt(r['trials'], '6.0f')} "
              f"{fmt(r['best_val_at_max'], '8.4f')} {fmt(r['pure_training_s'], '7.1f')} "
              f"{fmt(r.get('wall_over_ideal'), '7.1f')}")
    print("search s: the search call (process start-up of workers/trials included); command s: "
          "the whole driver process; epochs, trials: counted by the objective; best@max: best "
          f"validation loss among trials trained to {MAX_LEN} epochs; pure s: the same epochs in "
          f"one loop, one process; x ideal: search s / (pure s / {WORKERS})")
    for r in rows:
        for base in ("optuna", "optuna_shared"):
            k = f"paired_vs_{base}"
            if r.get(k) and r["system"] not in kept:
                print(f"paired with {base}'s run of the same repeat: {r['system']} {r[k]:.2f} x "
                      f"(median of {r[k + '_runs']}, {r[k + '_min']:.2f}-{r[k + '_max']:.2f})")
    if kept:
        print(f"*: kept from {out} (not re-measured now): "
              + ", ".join(f"{r['system']} ({r.get('measured_at')})" for r in rows
                          if r["system"] in kept))
    for s, why in skipped.items():
        print(f"skipped: {LABELS[s]}: {why}")
    for r in runs:
        if r["system"].startswith("asha") and r.get("overheads") and r["system"] not in kept:
            o = r["overheads"]
            print(f"asha_hpc {r['system']} repeat {r['seed']}: {o['segments']} segments; median "
                  + ", ".join(f"{k} {v:.3f} s" for k, v in o["median_s"].items())
                  + "; totals " + ", ".join(f"{k} {v:.0f} s" for k, v in o["total_s"].items())
                  + f" of {o['slot_seconds']:.0f} slot-seconds")
    if probe:
        print("start-up probe (median of 5 fresh processes): "
              + ", ".join(f"{k} {v:.3f} s" for k, v in probe.items()))
    total = time.perf_counter() - t_all
    print(f"total {total:.0f} s")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "wall_time", "quick": a.quick, "versions": vers, "cpus": os.cpu_count(),
        "load_avg": os.getloadavg(), "machine": platform.platform(), "measured_at": stamp,
        "commit": commit, "merged_from_earlier": kept,
        "config": {"trials": T, "repeats": R, "repeats_per_system": reps, "workers": WORKERS,
                   "max_length": MAX_LEN,
                   "divisor": DIVISOR, "poll_interval_s": a.poll_interval,
                   "systems": systems},
        "skipped": skipped, "rows": rows, "runs": runs, "startup_probe": probe,
        "total_s": total}, indent=2, default=str) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Helpers the Slurm end-to-end tests share: a training function that checkpoints and obeys
stop requests, a Slurm experiment config with a unique name, the CLI as a subprocess, sacct
rows mapped to attempt keys, and cancelling what a test left queued (the ``cleanup`` fixture
in conftest.py)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import yaml

from asha_hpc.config import load_config
from asha_hpc.master.state import replay
from asha_hpc.protocol.journal import read_journal
from asha_hpc.testing.invariants import check_invariants

from conftest import partition_options

REPO_ROOT = Path(__file__).resolve().parent.parent
# the jobs' python must import asha_hpc even without `pip install -e .`
SETUP = [f"export PYTHONPATH={REPO_ROOT}${{PYTHONPATH:+:$PYTHONPATH}}"]
RUN_TIMEOUT_S = 180

# what the test models share: which job ran them, and a log of what each segment saw
MODEL_HELPERS = '''
import json, os, time


def _job():
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID")


def _log(trial, **rec):
    with open(trial.dir / "log.jsonl", "a") as f:
        f.write(json.dumps(dict(rec, key=trial.run_dir.name, job=_job(), time=time.time())) + "\\n")


def _save(trial, epoch):
    with trial.save_checkpoint(length=epoch) as p:
        (p / "s.json").write_text(json.dumps({"epoch": epoch}))


def _resume(trial):
    """The epoch the trial's latest checkpoint holds; 0 for a fresh trial."""
    c = trial.latest_checkpoint
    return json.loads((c / "s.json").read_text())["epoch"] if c else 0


'''

MODEL = MODEL_HELPERS + '''import asha_hpc


def train(trial):
    hp = trial.hparams
    epoch = _resume(trial)
    _log(trial, event="start", epoch=epoch, pid=os.getpid(), stop_at_start=trial.should_stop(),
         cvd=os.environ.get("CUDA_VISIBLE_DEVICES"), job_gpus=os.environ.get("SLURM_JOB_GPUS"),
         job_name=os.environ.get("SLURM_JOB_NAME"))
    for seg in trial.segments():
        while epoch < seg.length:
            if hp["obey_stop"] and trial.should_stop():
                _save(trial, epoch)
                _log(trial, event="stop", epoch=epoch, reason=trial._stop_reason)
                return  # no report: the job publishes "interrupted"
            time.sleep(hp["sleep"])
            epoch += 1
            if hp["ckpt_every"] and epoch % hp["ckpt_every"] == 0:
                _save(trial, epoch)
            tmp = trial.dir / ".progress.tmp"
            tmp.write_text(json.dumps({"key": trial.run_dir.name, "job": _job(), "epoch": epoch}))
            os.replace(tmp, trial.dir / "progress.json")
        _save(trial, epoch)
        _log(trial, event="end", epoch=epoch)
        seg.report(loss=(hp["x"] - 0.3) ** 2 + 1.0 / (1 + epoch))
'''


def make_experiment(tmp_path: Path, tag: str, searcher=None, hp=None, slurm=None, **top) -> Path:
    """Write model.py and a slurm config into tmp_path; returns the config's path. The
    experiment's name is unique (``<tag>-<random>``): job names repeat across experiments."""
    (tmp_path / "model.py").write_text(MODEL)
    cfg = {
        "name": f"{tag}-{uuid.uuid4().hex[:6]}",
        "entrypoint": "model:train",
        "searcher": dict({"name": "adaptive_asha", "metric": "loss", "max_length": 16,
                          "max_trials": 6, "max_concurrent_trials": 3, "mode": "aggressive",
                          "divisor": 4}, **(searcher or {})),
        "hyperparameters": dict({"x": {"type": "double", "minval": -1, "maxval": 1},
                                 "sleep": 0.02, "obey_stop": True, "ckpt_every": 0},
                                **(hp or {})),
        "reproducibility": {"experiment_seed": 5},
        "poll_interval_s": 0.5,
        "max_restarts": 2,
        "backend": "slurm",
        # a job per segment (workers: 0) unless a test asks for warm workers: the Slurm e2e
        # tests are about segment jobs (arrays, time limits, cancels); test_slurm_pool.py and
        # test_slurm_autoworkers.py about the pool
        "slurm": dict({"timeout_min": 5, "poll_min_interval_s": 1, "setup": SETUP, "workers": 0,
                       **partition_options()}, **(slurm or {})),
    }
    cfg.update(top)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def in_process(tmp_path: Path, cfg_path: Path):
    """(cfg, exp, backend) for a master run in this test's process on the real cluster."""
    from asha_hpc.backends.slurm import SlurmBackend
    from asha_hpc.protocol.expdir import ExpDir

    cfg = load_config(cfg_path)
    exp = ExpDir.create(tmp_path / "run")
    (exp.root / "experiment.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    return cfg, exp, SlurmBackend(str(exp.root), cfg.slurm.backend_options(), poll_min_interval_s=1)


def run_bounded(m):
    """``m.run()``, stopped after RUN_TIMEOUT_S if it has not ended by then."""
    deadline = threading.Timer(RUN_TIMEOUT_S, m.request_stop, ["the test's time ran out"])
    deadline.start()
    try:
        return m.run()
    finally:
        deadline.cancel()


def exp_name(cfg_path: Path) -> str:
    return yaml.safe_load(cfg_path.read_text())["name"]


def env_with(path_prefix: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{REPO_ROOT}{os.pathsep}{env['PYTHONPATH']}" if env.get("PYTHONPATH") \
        else str(REPO_ROOT)
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}{os.pathsep}{env['PATH']}"
    return env


def cli(*args, check=True, env=None, timeout=RUN_TIMEOUT_S):
    r = subprocess.run([sys.executable, "-m", "asha_hpc.cli", *map(str, args)],
                       capture_output=True, text=True, env=env or env_with(), timeout=timeout,
                       cwd=REPO_ROOT)
    if check and r.returncode != 0:
        raise AssertionError(f"asha-hpc {args} exited {r.returncode}:\n{r.stderr[-3000:]}")
    return r


def start_master(*args, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "asha_hpc.cli", *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env or env_with(), cwd=REPO_ROOT)


def run_search(tmp_path: Path, cfg: dict, cleanup, **slurm) -> tuple[Path, subprocess.Popen]:
    """``asha-hpc run`` of ``cfg`` (a name unique to the test; backend slurm, one job per
    segment, a 0.5 s poll, ``slurm`` on top) as a process of its own, left to ``cleanup``:
    (the experiment folder, the master)."""
    cfg = {**cfg, "backend": "slurm", "poll_interval_s": 0.5,
           "slurm": {"timeout_min": 5, "poll_min_interval_s": 1, "setup": SETUP, "workers": 0,
                     **partition_options(), **slurm}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(cfg))
    cleanup[0].append(cfg["name"])
    exp = tmp_path / "run"
    master = start_master("run", tmp_path / "exp.yaml", "--exp-dir", exp)
    cleanup[1].append(master)
    return exp, master


def journal(exp_dir: Path) -> list[dict]:
    return read_journal(Path(exp_dir) / "journal.jsonl")[0]


def final_state(exp_dir: Path):
    cfg = load_config(Path(exp_dir) / "experiment.yaml")
    recs = journal(exp_dir)
    assert check_invariants(cfg, recs) == []
    return cfg, replay(cfg, recs), recs


def status_json(exp_dir: Path) -> dict:
    return json.loads(cli("status", exp_dir, "--json").stdout)


def model_log(exp_dir: Path, trial: int | None = None) -> list[dict]:
    paths = ([Path(exp_dir) / "trials" / f"{trial:05d}" / "log.jsonl"] if trial is not None
             else sorted((Path(exp_dir) / "trials").glob("*/log.jsonl")))
    out = []
    for p in paths:
        if p.exists():
            out += [dict(json.loads(line), trial=int(p.parent.name))
                    for line in p.read_text().splitlines() if line.strip()]
    return out


def wait_until(cond, timeout: float, what: str, every: float = 0.1):
    end = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.time() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def progress(exp_dir: Path, trial: int) -> dict | None:
    try:
        return json.loads((Path(exp_dir) / "trials" / f"{trial:05d}" / "progress.json").read_text())
    except (OSError, ValueError):
        return None


def sacct_jobs(name: str, since: float, expect=(), settle_s: float = 30.0) -> list[dict[str, str]]:
    """sacct rows (JobID, JobName, State, ExitCode) of the jobs named ``asha-<name>-*`` started
    after ``since``, waited for until every id in ``expect`` is there, no array row is still
    collapsed (``123_[4-6]``) and none is pending or running (accounting lags a little behind
    the scheduler)."""
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(since - 5))
    end = time.time() + settle_s
    while True:
        res = subprocess.run(["sacct", "-X", "-n", "--parsable2", "-S", start,
                              "-o", "JobID,JobName,State,ExitCode"],
                             capture_output=True, text=True, check=True)
        rows = [dict(zip(("id", "name", "state", "exit"), line.split("|")))
                for line in res.stdout.splitlines() if line.strip()]
        rows = [r for r in rows if r["name"].startswith(f"asha-{name}-")]
        busy = [r for r in rows if "[" in r["id"] or r["state"].split()[0] in
                ("PENDING", "RUNNING", "COMPLETING", "REQUEUED")]
        if not busy and set(expect) <= {r["id"] for r in rows} or time.time() > end:
            return rows
        time.sleep(0.5)


def job_keys(exp_dir: Path, name: str, rows: list[dict[str, str]]) -> list[tuple]:
    """(key, job id, state word) per sacct row: a single job's key is in its name, an array
    task's key comes from the array's manifest in <exp>/jobs/batches/ (by token and index). An
    array cancelled before its tasks started (a stray a resumed master cancelled) is one plain
    row in sacct: it stands for each task."""
    manifests = {}
    for p in (Path(exp_dir) / "jobs" / "batches").glob("*.json"):
        m = json.loads(p.read_text())
        manifests[m["name"]] = m
    out = []
    for r in rows:
        state = r["state"].split()[0]
        if r["name"] in manifests and "_" not in r["id"]:
            out += [(k, f"{r['id']}_{i}", state)
                    for i, k in enumerate(manifests[r["name"]]["keys"])]
        elif r["name"] in manifests:
            idx = int(r["id"].split("_")[1])
            out.append((manifests[r["name"]]["keys"][idx], r["id"], state))
        else:
            key = r["name"][len(f"asha-{name}-"):]
            assert re.fullmatch(r"t\d{5}-s\d{3}-a\d{2}", key), r
            out.append((key, r["id"], state))
    return out


def submitted_keys(recs: list[dict]) -> dict[str, str]:
    return {f"t{r['trial']:05d}-s{r['segment']:03d}-a{r['attempt']:02d}": r["job_id"]
            for r in recs if r["kind"] == "submitted"}


def cancel_leftovers(names: list[str]) -> None:
    """scancel every queued/running job of these experiments (and their masters)."""
    # %F: an array's own id (scancel takes it for all its tasks; not "12_[0-1%2]")
    res = subprocess.run(["squeue", "-h", "-o", "%F|%j"], capture_output=True, text=True)
    ids = []
    for line in res.stdout.splitlines():
        jid, _, jname = line.partition("|")
        if any(jname.startswith(f"asha-{n}-") or jname == f"asha-master-{n}" for n in names):
            ids.append(jid.strip())
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True)

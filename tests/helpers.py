"""Helpers the end-to-end tests share (local and simulated backends): a small training
function, an experiment config around it, the CLI as a subprocess, the journal and the replayed
final state (checked against the invariants). Slurm's own helpers: tests/slurm_helpers.py."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from asha_hpc.config import load_config, parse_config
from asha_hpc.master.state import replay
from asha_hpc.protocol.journal import read_journal
from asha_hpc.testing.invariants import check_invariants

MODEL = '''
import json, os, signal, time
import asha_hpc

def train(trial):
    hp = trial.hparams
    if hp["x"] < hp["invalid_below"]:
        raise asha_hpc.InvalidHP("x too small")
    marker = trial.dir / "failed_once"
    if hp["fail"] == "always":
        raise RuntimeError("this trial always fails")
    if hp["fail"] == "once" and not marker.exists():
        marker.write_text("x")
        raise RuntimeError("first attempt fails")
    if hp["fail"] in ("killed_once", "killed_late") and not marker.exists():  # the OOM killer
        marker.write_text("x")
        if hp["fail"] == "killed_late":  # after a while of training
            time.sleep(1.5)
        os.kill(os.getpid(), signal.SIGKILL)
    epoch = 0
    if trial.latest_checkpoint:
        epoch = json.loads((trial.latest_checkpoint / "s.json").read_text())["epoch"]
    with open(trial.dir / "env.jsonl", "a") as f:
        f.write(json.dumps({"cvd": os.environ.get("CUDA_VISIBLE_DEVICES"), "start": time.time(),
                            "from": epoch}) + "\\n")
    if hp.get("barrier"):  # the first two jobs wait for each other: they surely overlap
        os.makedirs(hp["barrier"], exist_ok=True)
        open(os.path.join(hp["barrier"], str(trial.id)), "w").close()
        deadline = time.time() + 60
        while len(os.listdir(hp["barrier"])) < 2 and time.time() < deadline:
            time.sleep(0.02)
    deadline = time.time() + 120
    while hp.get("hold") and os.path.exists(hp["hold"]) and time.time() < deadline:
        time.sleep(0.05)  # held until the test removes that file: the search is surely running
    for seg in trial.segments():
        while epoch < seg.length:
            time.sleep(hp["sleep"])
            epoch += 1
        with trial.save_checkpoint() as p:
            (p / "s.json").write_text(json.dumps({"epoch": epoch}))
        with open(trial.dir / "env.jsonl", "a") as f:
            f.write(json.dumps({"end": time.time()}) + "\\n")
        seg.report(loss=(hp["x"] - 0.3) ** 2 + 1.0 / (1 + epoch))
'''


def make_experiment(tmp_path, searcher=None, hp=None, **top):
    (tmp_path / "model.py").write_text(MODEL)
    cfg = {
        "name": "e2e",
        "entrypoint": "model:train",
        "searcher": dict({"name": "adaptive_asha", "metric": "loss", "max_length": 16,
                          "max_trials": 8, "max_concurrent_trials": 2, "mode": "aggressive",
                          "divisor": 4}, **(searcher or {})),
        "hyperparameters": dict({"x": {"type": "double", "minval": -1, "maxval": 1},
                                 "fail": "never", "invalid_below": -2.0, "sleep": 0.01}, **(hp or {})),
        "reproducibility": {"experiment_seed": 3},
        "poll_interval_s": 0.2,
        "max_restarts": 2,
        "local": {"gpus": [], "max_parallel": 2},
    }
    cfg.update(top)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_cli(*args, timeout: float = 300, env=None, **popen) -> subprocess.CompletedProcess:
    """``python -m asha_hpc.cli ARGS``. One still running at ``timeout`` is asked for its
    threads' stacks (faulthandler on SIGABRT) before it is killed, and the test fails with
    them and the end of what it printed: a hang shows where it waits."""
    cmd = [sys.executable, "-m", "asha_hpc.cli", *map(str, args)]
    env = dict(os.environ if env is None else env, PYTHONFAULTHANDLER="1")
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env, **popen) as p:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGABRT)
            try:
                out, err = p.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
            words = list(map(str, args))
            exp = words[words.index("--exp-dir") + 1] if "--exp-dir" in words else \
                (words[1] if words[0] == "resume" else None)
            status = subprocess.run([sys.executable, "-m", "asha_hpc.cli", "status", exp],
                                    capture_output=True, text=True, timeout=60).stdout \
                if exp and Path(exp).is_dir() else ""
            raise AssertionError(f"asha-hpc {' '.join(words)} still ran after {timeout:g} s; "
                                 f"its stacks and the end of its stderr:\n{err[-8000:]}\n"
                                 f"status:\n{status[-4000:]}") from None
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def run_in_background(cfg_path, exp) -> subprocess.Popen:
    """``asha-hpc run CFG --exp-dir EXP`` as a process of its own (stderr a pipe), for a test
    that signals, pauses or edits around a running master."""
    return subprocess.Popen([sys.executable, "-m", "asha_hpc.cli", "run", str(cfg_path),
                             "--exp-dir", str(exp)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def cli(*args, check=True, timeout: float = 600, **kw):
    r = run_cli(*args, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"asha-hpc {args} exited {r.returncode}:\n{r.stderr}")
    return r


def journal(exp_dir):
    return read_journal(Path(exp_dir) / "journal.jsonl")[0]


def final_state(exp_dir):
    cfg = load_config(Path(exp_dir) / "experiment.yaml")
    recs = journal(exp_dir)
    assert check_invariants(cfg, recs) == []
    return cfg, replay(cfg, recs)


def sim_cfg(trials=60, concurrent=8, **sim):
    return parse_config({
        "name": "chaos", "entrypoint": "unused:train",
        "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 64,
                     "max_trials": trials, "max_concurrent_trials": concurrent,
                     "mode": "standard", "divisor": 4},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
        "reproducibility": {"experiment_seed": 5}, "backend": "simulated", "poll_interval_s": 5,
        "max_restarts": 2,
        "simulated": dict({"unit_seconds": 10, "duration_noise": 0.5, "failure_rate": 0.05}, **sim)},
        "/tmp")


def mount_tmpfs(folder: Path, size: str) -> None:
    """A tmpfs of ``size`` (``12m``) mounted on ``folder`` (made here); the test is skipped with
    the reason where that is not allowed (mounting needs root)."""
    import pytest

    folder.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {r.stderr.strip()}")


def stepped(m, cfg, steps: int):
    """Master ``m`` started and run for ``steps`` polls, as a master part-way through its
    search (in this process: its lease is alive for the CLI's commands)."""
    assert m.start()
    for _ in range(steps):
        m.step()
        m._sleep(cfg.poll_interval_s)
    return m


def one_trial_training(tmp_path: Path, how: dict, max_length, metric: str = "loss",
                       started: str = "training") -> tuple[Path, subprocess.Popen]:
    """A search of one trial (``how``: its entrypoint or command) started with ``asha-hpc run``
    in the background, returned once the trial's code has written ``trials/00001/<started>``:
    (the experiment folder, the master's process). Jobs one per segment, no restart allowed."""
    import time

    cfg = tmp_path / "one.yaml"
    cfg.write_text(yaml.safe_dump(dict(how, **{
        "name": "one", "searcher": {"name": "single", "metric": metric, "max_length": max_length},
        "hyperparameters": {}, "poll_interval_s": 0.2, "max_restarts": 0,
        "local": {"gpus": [], "workers": 0}})))
    exp = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "asha_hpc.cli", "run", str(cfg), "--exp-dir",
                          str(exp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (exp / "trials" / "00001" / started).exists():
            assert time.time() < deadline and p.poll() is None, "the trial never trained"
            time.sleep(0.1)
    except BaseException:
        p.kill()
        raise
    return exp, p


# A one-trial search's code (``one_trial_training``) that trains until the test writes ``go``
# next to the experiment folder, then reports: a segment that runs as long as the test wants.
UNTIL_GO = '''
import time

def train(trial):
    (trial.dir / "training").write_text("x")
    go = trial.dir.parent.parent.parent / "go"
    deadline = time.time() + 120
    while not go.exists() and time.time() < deadline:
        time.sleep(0.05)
    for segment in trial.segments():
        with trial.save_checkpoint() as path:
            (path / "w.txt").write_text("w")
        segment.report(loss=0.5)
'''


def preempt_then_finish(exp: Path, master: subprocess.Popen) -> None:
    """SIGTERM to trial 1's job's whole process group (its code wrote the group's id in
    ``pgid``), as Slurm's preemption and scancel signal every process of a job; then the
    search must go on to its end (``max_restarts: 0``: an error would fail it)."""
    try:
        os.killpg(int((exp / "trials" / "00001" / "pgid").read_text()), signal.SIGTERM)
        assert master.wait(timeout=300) == 0
    finally:
        if master.poll() is None:
            master.kill()


def running(tmp_path, cap=None, progress=lambda s: None):
    """A simulated search of 60 trials (under ``cap``) whose master has run 3 polls and runs
    on: (cfg, exp, master)."""
    from asha_hpc.launch import create_experiment
    from asha_hpc.master.loop import Master

    cfg = sim_cfg(trials=60, failure_rate=0.0)
    cfg.searcher.max_compute = cap
    exp = create_experiment(cfg, tmp_path / "exp")
    return cfg, exp, stepped(Master(exp, cfg, progress=progress), cfg, 3)


# ----------------------------------------------------- workers: auto, local and on Slurm
CACHE_MODEL = '''
import json, os, time
from pathlib import Path


def train(trial):
    """The first segments build the dataset cache every later one reads (as tokenizing a
    corpus into a cache on the shared filesystem): slow once, fast afterwards."""
    hp = trial.hparams
    cache = Path(hp["cache"])
    epoch = 0
    if trial.latest_checkpoint:
        epoch = json.loads((trial.latest_checkpoint / "s.json").read_text())["epoch"]
    for seg in trial.segments():
        if not cache.exists():
            time.sleep(hp["build_s"])
            cache.write_text("ready")
        while epoch < seg.length:
            time.sleep(0.002)
            epoch += 1
        with trial.save_checkpoint() as p:
            (p / "s.json").write_text(json.dumps({"epoch": epoch}))
        with open(trial.dir / "pids.txt", "a") as f:
            f.write(f"{seg.index} {os.getpid()}\\n")
        seg.report(loss=(hp["x"] - 0.3) ** 2 + 1.0 / (1 + epoch))
'''


def cache_experiment(tmp_path: Path, **top) -> Path:
    (tmp_path / "model.py").write_text(CACHE_MODEL)
    # 40 trials (about 50 segments): the two slow segments stay in the measured window (the
    # last 32) until enough fast ones dilute their training time, so the switch back to warm
    # workers comes after 10 to 30 fast segments depending on the measured start-up; the
    # segments left after it must show the warm workers back
    cfg = dict(
        name="awcache", entrypoint="model:train", poll_interval_s=0.2, max_restarts=1,
        searcher={"name": "adaptive_asha", "metric": "loss", "max_length": 16, "divisor": 4,
                  "max_trials": 40, "max_concurrent_trials": 2, "mode": "aggressive"},
        hyperparameters={"x": {"type": "double", "minval": -1, "maxval": 1}, "build_s": 20.0,
                         "cache": str(tmp_path / "dataset.cache")},
        reproducibility={"experiment_seed": 3},
        # auto with a share of 60%: the 20 s of cache building make the first segments long
        # enough for a job each (a start-up under 8 s, even on a loaded machine), and the
        # fast ones after them bring the warm workers back
        auto_workers_share=0.6, local={"gpus": [], "max_parallel": 2})
    cfg.update(top)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def switches(recs):
    """(mode, seq) of each measured decision, and the intents after each."""
    return [(r["mode"], r["seq"]) for r in recs if r["kind"] == "workers_mode" and r["measured"]]


def check_switch_both_ways(recs):
    """Warm workers first, a job each once the long segments are measured, warm workers again
    once the fast segments dominate; every intent follows the mode in force."""
    sw = switches(recs)
    assert [m for m, _ in sw][:2] == ["segment", "pool"], sw
    seg_at, pool_at = sw[0][1], sw[1][1]
    intents = [r for r in recs if r["kind"] == "intent"]
    as_jobs = [r for r in intents if seg_at < r["seq"] < pool_at]
    assert as_jobs and not any(r.get("worker") for r in as_jobs)  # a job per segment
    warm_again = [r for r in intents if r["seq"] > pool_at]
    assert warm_again and any(r.get("worker") for r in warm_again)
    assert any(r.get("worker") for r in intents if r["seq"] < seg_at)  # warm at the start


def four_trials_cfg(max_restarts=0):
    """A search of 4 trials that may all run at once: the first three failures decide
    fail-fast (state.py's ``hopeless``), for tests that replay records by hand."""
    from asha_hpc.config import parse_config

    return parse_config({"name": "s", "entrypoint": "m:f",
                         "searcher": {"name": "adaptive_asha", "metric": "m", "max_length": 4,
                                      "max_trials": 4, "max_concurrent_trials": 4,
                                      "mode": "aggressive", "divisor": 2},
                         "hyperparameters": {"x": 1}, "max_restarts": max_restarts}, "/tmp")


# a plain epoch loop that says, in ``trial.dir / "pids"``, each job's pid and the epoch it
# started from (a test freezes the first, and sees where the retry went on from)
FREEZABLE_TRAIN = '''
import json, os, time


def train(trial):
    epoch = 0
    if trial.latest_checkpoint is not None:
        epoch = json.loads((trial.latest_checkpoint / "s.json").read_text())["epoch"]
    with open(trial.dir / "pids", "a") as f:
        f.write(f"{os.getpid()} {epoch}\\n")
    for segment in trial.segments():
        while epoch < segment.length:  # trains on after a stop signal, as much code does
            time.sleep(0.2)
            epoch += 1
            with trial.save_checkpoint(length=epoch) as p:
                (p / "s.json").write_text(json.dumps({"epoch": epoch}))
            with open(trial.dir / "saves", "a") as f:  # the checkpoints it published
                f.write(f"{os.getpid()} {epoch}\\n")
        segment.report(loss=1.0 / epoch)
'''


def fake_slurm_command(tmp_path, name: str, script: str) -> tuple[Path, dict[str, str]]:
    """A stand-in for a Slurm command (``sbatch``, ``squeue``): a shell ``script`` in
    ``tmp_path/bin``; returns its path and an environment whose PATH holds only it and this
    Python (no other Slurm command answers, nor hangs on a cluster that is down)."""
    import stat

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{script}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path, dict(os.environ, PATH=f"{bin_dir}:{os.path.dirname(sys.executable)}")

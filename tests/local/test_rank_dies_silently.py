"""A rank of a two-rank trial dies without a word (killed: the out-of-memory killer, a segfault)
while the other is inside its training step, on the local backend and on the real Slurm
cluster, with a job per segment and in a worker pool.

The surviving rank either waits for it as a collective does (NCCL waits until its timeout, 10
minutes by default; locally nothing else ends it, and on Slurm the step's ``--kill-on-bad-exit``
ends it), or gets an error from its collective at once (gloo: "Connection closed by peer").
Either way the attempt must fail within seconds, count one restart, and be held against the dead
rank's node, named in the result (``failed_node``) and in its error; the retry then trains to
the end.
"""
import socket

import pytest
import yaml

from conftest import partition_options
from helpers import cli, final_state, journal

MODEL = '''
import os, signal, time

def train(trial):
    then = trial.hparams["then"]
    first = not (trial.dir / "died").exists()
    if first and trial.rank == 0:
        (trial.dir / "rank0-first").write_text("x")
    for seg in trial.segments():
        for epoch in range(seg.length):
            time.sleep(0.05)
            if first and epoch == 2 and then == "rank 0 raises":
                if trial.rank == 0:
                    (trial.dir / "died").write_text("")
                    raise RuntimeError("CUDA error: out of memory on rank 0")
                time.sleep(3600)  # rank 1, in the step rank 0 never joins
            if first and epoch == 2:
                if trial.rank == 1:
                    while not (trial.dir / "rank0-first").exists():
                        time.sleep(0.01)
                    (trial.dir / "died").write_text(os.environ.get("SLURMD_NODENAME", ""))
                    if then == "rank 1 raises":
                        raise RuntimeError("CUDA error: an illegal memory access was encountered")
                    os.kill(os.getpid(), signal.SIGKILL)
                # rank 0, in the step the dead rank never joins
                while not (trial.dir / "died").exists():
                    time.sleep(0.01)
                if then in ("hang", "rank 1 raises"):
                    time.sleep(3600)
                time.sleep(0.2)
                raise ConnectionError("Connection closed by peer: typically caused by a remote "
                                      "worker crashing")
        seg.report(loss=1.0 / seg.length)
'''


def experiment(tmp_path, backend, then, workers=0):
    (tmp_path / "deadrank.py").write_text(MODEL)
    cfg = {
        "name": "deadrank", "entrypoint": "deadrank:train",
        "searcher": {"name": "single", "metric": "loss", "max_length": 6},
        "hyperparameters": {"then": then},
        "reproducibility": {"experiment_seed": 3}, "poll_interval_s": 0.3, "max_restarts": 2,
        "result_grace_s": 1, "backend": backend,
        "local": {"gpus": [], "max_parallel": 1, "tasks_per_node": 2, "workers": workers},
        "slurm": {**partition_options(), "tasks_per_node": 2, "cpus_per_task": 1,
                  "timeout_min": 5, "poll_min_interval_s": 1, "workers": workers},
    }
    if workers:
        cfg["worker_idle_timeout_s"] = 60
    path = tmp_path / "deadrank.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def check(exp, then, node):
    cfg, st = final_state(exp)
    t = st.trials[1]
    assert st.lifecycle == "completed" and t.length == 6
    assert t.restarts == 1, t.error
    failed = [r for r in journal(exp) if r["kind"] == "result" and r["status"] == "error"]
    assert len(failed) == 1, failed
    [r] = failed
    assert r["failed_node"] == node, r
    assert f"rank 1 on node {node} died (process " in r["error"], r["error"]
    if then == "hang":  # found by the watch, not by waiting out the hour
        assert "while this rank's code ran" in r["error"], r["error"]
        assert r["ended"] - r["started"] < 60, r
    else:  # the collective's own error, with the dead peer named first
        assert "then this rank failed" in r["error"] and "ConnectionError" in r["error"]


@pytest.mark.parametrize("workers", [0, 1], ids=["segment jobs", "worker pool"])
@pytest.mark.parametrize("then", ["hang", "raise"])
def test_a_rank_that_dies_silently_fails_the_attempt_on_its_node_local(tmp_path, then, workers):
    cli("run", experiment(tmp_path, "local", then, workers), "--exp-dir", tmp_path / "run",
        timeout=240)
    check(tmp_path / "run", then, socket.gethostname())


@pytest.mark.slurm
@pytest.mark.parametrize("workers", [0, 1], ids=["segment jobs", "worker pool"])
def test_a_rank_that_dies_silently_frees_the_allocation_slurm(tmp_path, workers):
    """Slurm ends the step (SIGTERM, then SIGKILL): the surviving rank's watch has named the
    dead rank and its node before that."""
    cli("run", experiment(tmp_path, "slurm", "hang", workers), "--exp-dir", tmp_path / "run",
        timeout=300)
    node = (tmp_path / "run" / "trials" / "00001" / "died").read_text()
    assert node  # Slurm's name for the node, as the job saw it
    check(tmp_path / "run", "hang", node)


@pytest.mark.parametrize("workers", [0, 1], ids=["segment jobs", "worker pool"])
def test_a_rank_whose_code_fails_ends_the_attempt_for_the_others_local(tmp_path, workers):
    """Rank 1 raises (its own error, said in its marker) while rank 0 waits in a collective:
    rank 0 ends the attempt within seconds, with rank 1's error and node, and never blames a
    node for rank 1's exit."""
    cli("run", experiment(tmp_path, "local", "rank 1 raises", workers), "--exp-dir",
        tmp_path / "run", timeout=240)
    cfg, st = final_state(tmp_path / "run")
    assert st.lifecycle == "completed" and st.trials[1].restarts == 1
    [r] = [r for r in journal(tmp_path / "run") if r["kind"] == "result" and r["status"] == "error"]
    assert "CUDA error: an illegal memory access" in r["error"], r["error"]
    assert "died" not in r["error"].splitlines()[0], r["error"]  # it failed, and said so
    assert r.get("failed_node", r["host"]) == socket.gethostname()
    assert r["ended"] - r["started"] < 60, r


def test_rank_0_whose_code_fails_is_not_held_up_by_a_waiting_peer_local(tmp_path):
    """Rank 0 raises while rank 1 waits in a collective: rank 1 sees rank 0's end and leaves
    quietly, so rank 0 does not wait out the 8 beats a silent death could take to show; the
    failure is rank 0's own, on its node."""
    cli("run", experiment(tmp_path, "local", "rank 0 raises"), "--exp-dir", tmp_path / "run",
        timeout=240)
    cfg, st = final_state(tmp_path / "run")
    assert st.lifecycle == "completed" and st.trials[1].restarts == 1
    [r] = [r for r in journal(tmp_path / "run") if r["kind"] == "result" and r["status"] == "error"]
    assert "CUDA error: out of memory on rank 0" in r["error"] and "died" not in r["error"]
    assert "failed_node" not in r and r["host"] == socket.gethostname()
    assert r["ended"] - r["started"] < 30, r  # not the 80 s of 8 default beats


def test_the_oom_killer_in_a_pytorch_ddp_tutorial_script_local(tmp_path):
    """The PyTorch DDP tutorial's model on gloo, two ranks; the test plays the out-of-memory
    killer and SIGKILLs rank 1 mid-training. Rank 0's collective fails at once ("Connection
    closed by peer"): the attempt fails on rank 1's node, naming it, and the retry resumes from
    the last checkpoint to the end."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    pytest.importorskip("torch")
    shutil.copy(Path(__file__).parents[1] / "foreign" / "ddp_tutorial.py", tmp_path)
    cfg = {"name": "ddp-tutorial", "entrypoint": "ddp_tutorial:train",
           "searcher": {"name": "single", "metric": "loss", "max_length": 30},
           "hyperparameters": {"lr": 0.001}, "max_restarts": 2, "poll_interval_s": 0.3,
           "result_grace_s": 1, "backend": "local",
           "local": {"gpus": [], "max_parallel": 1, "tasks_per_node": 2}}
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(cfg))
    run = subprocess.Popen([sys.executable, "-m", "asha_hpc.cli", "run", str(tmp_path / "ddp.yaml"),
                            "--exp-dir", str(tmp_path / "run")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    trial_dir = tmp_path / "run" / "trials" / "00001"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:  # rank 1 trains, and a checkpoint or two exist
            ckpts = trial_dir / "checkpoints"
            if (trial_dir / "pid-rank1").exists() and ckpts.is_dir() and \
                    len([p for p in ckpts.iterdir() if not p.name.startswith(".")]) >= 1:
                break
            time.sleep(0.05)
        victim = int((trial_dir / "pid-rank1").read_text())
        os.kill(victim, signal.SIGKILL)
        _, err = run.communicate(timeout=240)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err
    cfg_, st = final_state(tmp_path / "run")
    t = st.trials[1]
    assert st.lifecycle == "completed" and t.length == 30 and t.restarts == 1, t.error
    [r] = [r for r in journal(tmp_path / "run") if r["kind"] == "result" and r["status"] == "error"]
    node = socket.gethostname()
    assert r["failed_node"] == node, r
    assert r["error"].startswith(f"rank 1 on node {node} died (process {victim} is gone)"), r["error"]
    assert r["ended"] - r["started"] < 60, r

"""Trials of two ranks, on the local backend and on the real Slurm cluster, with a job per
segment and in a worker pool whose jobs hold two ranks each.

The model needs no torch: the ranks meet over MASTER_ADDR:MASTER_PORT with a plain socket (the
same rendezvous torch.distributed's env:// uses), write one checkpoint shard each, and both
report (only rank 0's report may count). With `kill: true`, rank 1 dies in the middle of writing
its shard once: the segment must fail once and resume from the last complete checkpoint.
"""
import json
from pathlib import Path

import pytest
import yaml

from conftest import partition_options
from helpers import cli, final_state, journal

DIST_MODEL = '''
import json, os, signal, socket, time

def handshake(trial, value):
    addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    if trial.rank == 0:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("", port))
        srv.listen(1)
        conn, _ = srv.accept()
        other = json.loads(conn.recv(4096))
        conn.sendall(json.dumps(value).encode())
        conn.close()
        srv.close()
        return other
    for _ in range(1000):
        try:
            c = socket.create_connection((addr, port), timeout=5)
            break
        except OSError:
            time.sleep(0.02)
    c.sendall(json.dumps(value).encode())
    other = json.loads(c.recv(4096))
    c.close()
    return other

def train(trial):
    hp = trial.hparams
    epoch = 0
    if trial.latest_checkpoint:
        epoch = json.loads((trial.latest_checkpoint / f"shard-{trial.rank}.json").read_text())["epoch"]
    segs = []
    for seg in trial.segments():
        segs.append(seg.length)
        other = handshake(trial, {"rank": trial.rank, "length": seg.length, "hp": hp})
        with open(trial.dir / f"rank{trial.rank}.jsonl", "a") as f:
            f.write(json.dumps({"rank": trial.rank, "world": trial.world_size,
                                "local_rank": trial.local_rank, "length": seg.length,
                                "from": epoch, "other": other, "pid": os.getpid(),
                                "port": os.environ["MASTER_PORT"]}) + "\\n")
        while epoch < seg.length:
            time.sleep(hp["sleep"])
            epoch += 1
            with trial.save_checkpoint() as p:
                (p / f"shard-{trial.rank}.json").write_text(json.dumps({"epoch": epoch}))
                if (hp["kill"] and trial.rank == 1 and epoch == 3
                        and not (trial.dir / "killed").exists()):
                    (trial.dir / "killed").write_text("x")
                    os.kill(os.getpid(), signal.SIGKILL)
        seg.report(loss=hp["x"] + 1.0 / epoch + 100.0 * trial.rank)
'''


def dist_experiment(tmp_path, backend, kill=False, trials=3, workers=0, continue_in_place=False):
    (tmp_path / "distmodel.py").write_text(DIST_MODEL)
    cfg = {
        "name": "dist", "entrypoint": "distmodel:train",
        "searcher": {"name": "async_halving", "metric": "loss", "max_length": 8, "num_rungs": 2,
                     "divisor": 2, "max_trials": trials, "max_concurrent_trials": 2},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}, "sleep": 0.05,
                            "kill": kill},
        "reproducibility": {"experiment_seed": 2}, "poll_interval_s": 0.3, "max_restarts": 2,
        "result_grace_s": 1, "backend": backend,
        "local": {"gpus": [], "max_parallel": 2, "tasks_per_node": 2},
        "slurm": {**partition_options(), "tasks_per_node": 2, "cpus_per_task": 1, "timeout_min": 5,
                  "poll_min_interval_s": 1},
    }
    cfg[backend]["workers"] = workers  # 0: a job per segment; N: a pool of jobs of two ranks each
    if workers:
        cfg["worker_idle_timeout_s"] = 60
    cfg["continue_in_place"] = continue_in_place
    if kill:  # one trial straight to the full length
        cfg["searcher"] = {"name": "single", "metric": "loss", "max_length": 8}
        cfg["hyperparameters"]["x"] = 0.5
    path = tmp_path / "dist.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def rank_logs(trial_dir: Path):
    return {r: [json.loads(line) for line in (trial_dir / f"rank{r}.jsonl").read_text().splitlines()]
            for r in (0, 1)}


def workers_started(recs):
    return {w for r in recs if r["kind"] == "workers" for w in r["workers"]}


def check_two_ranks(exp: Path, mode: str = "segment"):
    cfg, st = final_state(exp)
    assert st.lifecycle == "completed"
    recs = journal(exp)
    results = [r for r in recs if r["kind"] == "result"]
    assert len({(r["trial"], r["segment"], r["attempt"]) for r in results}) == len(results)
    for r in results:  # rank 1 reports loss + 100: only rank 0's report reaches the searcher
        if r["status"] == "completed":
            assert r["metrics"]["loss"] < 50
    ports, pids = set(), set()
    for t in st.trials.values():
        logs = rank_logs(exp / "trials" / f"{t.id:05d}")
        assert [x["length"] for x in logs[0]] == [x["length"] for x in logs[1]]
        for a, b in zip(logs[0], logs[1]):
            assert (a["rank"], a["world"], b["rank"], b["world"]) == (0, 2, 1, 2)
            assert a["other"]["rank"] == 1 and b["other"]["rank"] == 0
            assert a["other"]["length"] == a["length"] and a["other"]["hp"] == t.hparams
            ports.add(a["port"])
            pids.add((a["pid"], b["pid"]))
    segments = sum(len(rank_logs(exp / "trials" / f"{t:05d}")[0]) for t in st.trials)
    if mode == "segment":  # a rendezvous (free port) per job
        assert len(ports) == segments
        return st
    intents = [r for r in recs if r["kind"] == "intent"]
    handed = [r for r in intents if r.get("worker")]
    if mode == "continue":  # some segments went on in their job, on both ranks together
        assert handed and len(pids) < segments
        return st
    # every segment ran in the pool's jobs, on both ranks of one job, whose processes stayed
    assert intents and len(handed) == len(intents)
    started = len(workers_started(recs))
    assert len(pids) <= started < segments
    return st


def check_rank_kill(exp: Path):
    cfg, st = final_state(exp)
    t = st.trials[1]
    assert st.lifecycle == "completed" and t.length == 8
    assert t.restarts == 1, t.error
    logs = rank_logs(exp / "trials" / "00001")
    # first attempt from 0; the retry from epoch 2 (epoch 3's checkpoint never got rank 1's shard)
    assert [x["from"] for x in logs[0]][:2] == [0, 2] and [x["from"] for x in logs[1]][:2] == [0, 2]
    ckpts = list((exp / "trials" / "00001" / "checkpoints").iterdir())
    assert len(ckpts) == 1 and {p.name for p in ckpts[0].iterdir()} >= {"shard-0.json", "shard-1.json"}


def test_two_ranks_local(tmp_path):
    cli("run", dist_experiment(tmp_path, "local"), "--exp-dir", tmp_path / "run")
    check_two_ranks(tmp_path / "run")


def test_rank_killed_mid_checkpoint_local(tmp_path):
    cli("run", dist_experiment(tmp_path, "local", kill=True), "--exp-dir", tmp_path / "run")
    check_rank_kill(tmp_path / "run")


def test_two_ranks_in_a_worker_pool_local(tmp_path):
    cli("run", dist_experiment(tmp_path, "local", trials=4, workers=2), "--exp-dir", tmp_path / "run")
    check_two_ranks(tmp_path / "run", "pool")


def test_two_ranks_continue_in_place_local(tmp_path):
    cli("run", dist_experiment(tmp_path, "local", trials=4, continue_in_place=True),
        "--exp-dir", tmp_path / "run")
    check_two_ranks(tmp_path / "run", "continue")


def test_rank_killed_mid_checkpoint_in_a_worker_pool_local(tmp_path):
    """Rank 1 of a pool worker dies: rank 0 fails the segment once and leaves (its job cannot
    run two ranks any more); the master starts another worker, which resumes from the last
    complete checkpoint."""
    cli("run", dist_experiment(tmp_path, "local", kill=True, workers=1), "--exp-dir", tmp_path / "run")
    check_rank_kill(tmp_path / "run")
    recs = journal(tmp_path / "run")
    assert len(workers_started(recs)) == 2  # one replacement


@pytest.mark.slurm
def test_two_ranks_slurm(tmp_path):
    cli("run", dist_experiment(tmp_path, "slurm"), "--exp-dir", tmp_path / "run", timeout=300)
    check_two_ranks(tmp_path / "run")


@pytest.mark.slurm
def test_rank_killed_mid_checkpoint_slurm(tmp_path):
    cli("run", dist_experiment(tmp_path, "slurm", kill=True), "--exp-dir", tmp_path / "run", timeout=300)
    check_rank_kill(tmp_path / "run")


@pytest.mark.slurm
def test_two_ranks_in_a_worker_pool_slurm(tmp_path):
    cli("run", dist_experiment(tmp_path, "slurm", trials=4, workers=2), "--exp-dir", tmp_path / "run",
        timeout=300)
    check_two_ranks(tmp_path / "run", "pool")


@pytest.mark.slurm
def test_rank_killed_mid_checkpoint_in_a_worker_pool_slurm(tmp_path):
    cli("run", dist_experiment(tmp_path, "slurm", kill=True, workers=1), "--exp-dir",
        tmp_path / "run", timeout=300)
    check_rank_kill(tmp_path / "run")
    recs = journal(tmp_path / "run")
    assert len(workers_started(recs)) == 2  # one replacement

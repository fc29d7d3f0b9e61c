"""Idle pool workers at a search's tail (pool.surplus): released the moment no segment can
come for them, with the same results as a job per segment; real processes (the rule itself:
tests/unit/test_pool_surplus.py)."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import yaml

from asha_hpc.config import load_config
from asha_hpc.master.loop import Master
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.protocol.journal import read_journal
from asha_hpc.testing.invariants import check_invariants

# ----------------------------------------------------------------------------- real processes
MODEL = '''
import json, os, time
from pathlib import Path


def train(trial):
    hp = trial.hparams
    epoch = 0
    if trial.latest_checkpoint:
        epoch = json.loads((trial.latest_checkpoint / "s.json").read_text())["epoch"]
    fresh = trial.latest_checkpoint is None
    for seg in trial.segments():
        with open(trial.dir / "log.jsonl", "a") as f:
            f.write(json.dumps({"index": seg.index, "length": seg.length, "pid": os.getpid()}) + "\\n")
        if fresh and seg.length == 4:  # the one-rung bracket's trials wait for the test's go
            go = Path(hp["go"])
            for _ in range(2400):
                if go.exists():
                    break
                time.sleep(0.05)
        while epoch < seg.length:
            time.sleep(hp["sleep"])
            epoch += 1
        with trial.save_checkpoint() as p:
            (p / "s.json").write_text(json.dumps({"epoch": epoch}))
        seg.report(loss=(hp["x"] - 0.3) ** 2 + 1.0 / (1 + epoch))
'''


def two_bracket_experiment(tmp_path: Path, workers: int) -> Path:
    """Two brackets of one trial at a time: A (rungs 1 and 4, 4 trials, one promoted) and B
    (one rung of 4, 2 trials). B's first trial waits for the test, so A ends first: its
    worker then idles while B may still create a trial, which B's own worker will take."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "model.py").write_text(MODEL)
    cfg = {
        "name": "tail", "entrypoint": "model:train", "context_dir": str(tmp_path),
        "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 4,
                     "max_trials": 6, "max_concurrent_trials": 2, "mode": "standard",
                     "divisor": 4, "bracket_rungs": [2, 1]},
        "hyperparameters": {"x": {"type": "double", "minval": -1, "maxval": 1},
                            "sleep": 0.02, "go": str(tmp_path / "go")},
        "reproducibility": {"experiment_seed": 5}, "poll_interval_s": 0.2,
        "local": {"gpus": [], "max_parallel": 2, "workers": workers},
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_until_a_is_done(tmp_path: Path, workers: int):
    """Run the search in a thread; once bracket A's five segments are journaled (and, with a
    pool, once a worker is journaled gone, or after a minute) let B's trials go on. Returns
    (cfg, exp, state, journal, the journal as it was when B was let go)."""
    cfg_path = two_bracket_experiment(tmp_path, workers)
    cfg = load_config(cfg_path)
    exp = ExpDir.create(tmp_path / "run")
    master = Master(exp, cfg, progress=lambda s: None)
    box: dict = {}
    th = threading.Thread(target=lambda: box.setdefault("st", master.run()), daemon=True)
    th.start()
    seen: list = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen = read_journal(exp.journal)[0] if exp.journal.exists() else []
        a_done = sum(1 for r in seen if r["kind"] == "result" and r["status"] == "completed") >= 5
        gone = any(r["kind"] == "worker_gone" for r in seen)
        if a_done and (not workers or gone):
            break
        time.sleep(0.1)
    (tmp_path / "go").write_text("go")
    th.join(120)
    assert not th.is_alive()
    return cfg, exp, box["st"], read_journal(exp.journal)[0], seen


def outcome(st):
    return {t.id: (t.hparams["x"], t.length, t.metric, t.status) for t in st.trials.values()}


def test_an_idle_worker_goes_at_once_when_no_segment_can_come_for_it(tmp_path):
    """Bracket A ends while B's trial runs: A's worker can get nothing more (B's next trial
    will go to B's own worker), so it is released then, not held until the search ends;
    the trials, lengths and metrics are those of a job per segment, each segment run once."""
    cfg, exp, st, recs, seen = run_until_a_is_done(tmp_path / "pool", workers=2)
    assert st.lifecycle == "completed" and check_invariants(cfg, recs) == []
    # released before B was let go: while a segment still ran and B could create a trial
    gone = [r for r in seen if r["kind"] == "worker_gone"]
    assert len(gone) == 1 and gone[0]["why"] == "no segment can come for it", gone
    left = gone[0]["workers"][0]
    b_first = next(r for r in recs if r["kind"] == "intent" and r["length"] == 4
                   and r["segment"] == 0)
    assert left != b_first.get("worker")  # A's worker left; B's kept running its trial
    assert not any(r["kind"] == "result" and r["trial"] == b_first["trial"] for r in seen)
    # the other worker ran B's second trial, then left with the search
    handed = [r for r in recs if r["kind"] == "intent"]
    assert all(r.get("worker") for r in handed) and \
        not any(r["worker"] == left for r in handed if r["seq"] > gone[0]["seq"])
    assert {w for r in recs if r["kind"] == "worker_gone" for w in r["workers"]} == \
        {"w0000", "w0001"}
    assert not any(r["kind"] == "workers" and r["seq"] > gone[0]["seq"] for r in recs)
    # each worker said when it was ready: its start-up ends there (workers: auto measures it)
    ready = [r for r in recs if r["kind"] == "worker_ready"]
    assert len(ready) == 2 and all(r["job_started"] <= r["ready_at"] for r in ready)
    # every segment trained once
    done = [(r["trial"], r["segment"]) for r in recs if r["kind"] == "result"]
    logged = [(int(p.parent.name), json.loads(line)["index"])
              for p in (exp.root / "trials").glob("*/log.jsonl")
              for line in p.read_text().splitlines()]
    assert sorted(done) == sorted(logged) and len(set(done)) == len(done) == 7

    _, _, st0, recs0, _ = run_until_a_is_done(tmp_path / "jobs", workers=0)
    assert st0.lifecycle == "completed" and not any(r.get("worker") for r in recs0)
    assert outcome(st0) == outcome(st)

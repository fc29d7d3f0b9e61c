"""Time limits per segment on the real local Slurm cluster (``bash tools/local_slurm.sh start``;
partitions ``debug``, MaxTime INFINITE, the default, and ``short``, MaxTime 10 minutes).

- auto limits: the first jobs ask for the first guess capped at the MaxTime read from the
  cluster; after a few segments short rungs ask for less and long ones for more (sacct
  Timelimit = the journal's);
- an underestimated segment: TIMEOUT without a result (the code ignores the warning in its
  first job), which counts no restart; then, with a MaxTime injected into the backend, planned
  splits that stop at the warning, checkpoint and continue until the segment completes.

About 3.5 minutes in all: both are ``slow``. Pure tests of the model: tests/test_timelimits.py.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from asha_hpc.backends.slurm import SlurmBackend  # noqa: E402
from asha_hpc.config import load_config  # noqa: E402
from asha_hpc.master.loop import Master  # noqa: E402
from asha_hpc.protocol.expdir import ExpDir  # noqa: E402

from slurm_helpers import (  # noqa: E402
    MODEL_HELPERS,
    SETUP,
    cancel_leftovers,
    cli,
    final_state,
    job_keys,
    model_log,
    sacct_jobs,
    submitted_keys,
)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

MODEL = MODEL_HELPERS + '''
def train(trial):
    hp = trial.hparams
    epoch = _resume(trial)
    first = trial.run_dir.name.endswith("-a00") and epoch == 0
    _log(trial, event="start", epoch=epoch)
    for seg in trial.segments():
        while epoch < seg.length:
            if trial.should_stop() and not (first and hp["ignore_first_stop"]):
                _save(trial, epoch)
                _log(trial, event="stop", epoch=epoch, reason=trial._stop_reason)
                return  # no report: the job publishes "interrupted"
            time.sleep(hp["sleep"])
            epoch += 1
            if epoch % 10 == 0:
                _save(trial, epoch)
        _save(trial, epoch)
        seg.report(loss=(hp["x"] - 0.3) ** 2 + 1.0 / (1 + epoch))
'''


def make(tmp_path: Path, tag: str, searcher, hp, slurm, **top) -> Path:
    (tmp_path / "model.py").write_text(MODEL)
    cfg = {
        "name": f"{tag}-{uuid.uuid4().hex[:6]}", "entrypoint": "model:train",
        "searcher": dict({"metric": "loss"}, **searcher),
        "hyperparameters": dict({"x": {"type": "double", "minval": -1, "maxval": 1},
                                 "ignore_first_stop": False}, **hp),
        "reproducibility": {"experiment_seed": 5}, "poll_interval_s": 0.5, "max_restarts": 1,
        "backend": "slurm", "result_grace_s": 2,
        "slurm": dict({"timeout_min": "auto", "poll_min_interval_s": 1, "setup": SETUP}, **slurm),
    }
    cfg.update(top)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def names():
    out: list[str] = []
    yield out
    cancel_leftovers(out)


def sacct_limits(ids) -> dict[str, str]:
    """JobID -> Timelimit as sacct prints it (``00:10:00``)."""
    res = subprocess.run(["sacct", "-X", "-n", "--parsable2", "-o", "JobID,Timelimit",
                          "-j", ",".join(sorted({i.split("_")[0] for i in ids}))],
                         capture_output=True, text=True, check=True)
    return dict(line.split("|")[:2] for line in res.stdout.splitlines() if "|" in line)


def minutes(limit: str) -> int:
    h, m, s = (int(x) for x in limit.split("-")[-1].split(":"))
    return h * 60 + m + (1 if s else 0)


def test_maxtime_read_from_the_cluster(local_partitions, tmp_path):
    b = SlurmBackend(str(tmp_path), {"timeout_min": 5})
    assert b.max_time_min("short") == 10
    assert b.max_time_min("debug") is None and b.max_time_min() is None  # debug: the default
    assert b.stats["sinfo"] == 1  # read once


def test_auto_limits_shrink_for_short_rungs_and_grow_for_long_ones(local_partitions, tmp_path, names):
    """Rungs 1, 4, 16 (1 s per epoch); first guess 30 min, capped at the short partition's
    MaxTime (10, from sinfo); safety factor 10 so that minutes tell the rungs apart:
    rung 1 ~ (3 s + 1 s) x 10 + 10 + 60 s -> 2 min, rung 16 ~ (3 + 12) x 10 + 70 -> 4 min."""
    cfg_path = make(tmp_path, "tl1",
                    {"name": "adaptive_asha", "max_length": 16, "max_trials": 16,
                     "max_concurrent_trials": 4, "mode": "aggressive", "divisor": 4},
                    {"sleep": 1.0},
                    {"partition": "short", "first_guess_min": 30, "time_safety_factor": 10,
                     "signal_delay_s": 10})
    name = yaml.safe_load(cfg_path.read_text())["name"]
    names.append(name)
    exp = tmp_path / "run"
    t0 = time.time()
    cli("run", cfg_path, "--exp-dir", exp, timeout=240)
    _, st, recs = final_state(exp)
    assert st.lifecycle == "completed"
    intents = [r for r in recs if r["kind"] == "intent"]
    # the jobs planned before any result (probe_jobs of them) have only the first guess
    seen = next(r["seq"] for r in recs if r["kind"] == "result")
    first = [r for r in intents if r["seq"] < seen]
    assert 1 <= len(first) <= 4
    assert all(r["timeout_min"] == 10 and not r["split"] for r in first)
    assert {r["basis"] for r in first} == {"first guess; capped at partition short MaxTime 10 min"}
    later: dict[int, list[int]] = {}
    for r in intents[len(first):]:
        later.setdefault(r["length"], []).append(r["timeout_min"])
    assert set(later) == {1, 4, 16}, later
    assert max(later[1]) < 10  # shrank from the first guess
    assert max(later[1]) < min(later[16])  # the long rung asks for more
    assert max(later[1]) <= min(later[4]) and max(later[4]) <= min(later[16])
    # Slurm got exactly the limits the journal planned (arrays grouped by limit)
    subs = submitted_keys(recs)
    sacct_jobs(name, t0, expect=subs.values())
    limits = sacct_limits(subs.values())
    planned = {f"t{r['trial']:05d}-s{r['segment']:03d}-a{r['attempt']:02d}": r["timeout_min"]
               for r in intents}
    for key, jid in subs.items():
        assert minutes(limits[jid]) == planned[key], (key, jid, limits[jid])
    assert all(r["status"] == "completed" for r in recs if r["kind"] == "result")
    status = json.loads(cli("status", exp, "--json").stdout)
    rows = {r["length"]: r for r in status["time_limits"]}
    assert rows[16]["asked_min_last"] > rows[1]["asked_min_last"]
    assert rows[1]["run_s_median"] < rows[16]["run_s_median"]
    assert "time limits:" in cli("status", exp).stdout


def test_timeout_then_planned_splits_until_the_segment_completes(local_partitions, tmp_path, names):
    """One segment of 300 epochs x 0.5 s (150 s of work). First guess 1 min, and the first job
    ignores its warning: TIMEOUT, no result (Slurm kills it at most KillWait 30 s plus a
    30 s check after its limit, i.e. by 120 s: with 90 s of work it once finished first), no
    restart counted; it checkpointed every 10
    epochs. The backend is told MaxTime is 1 min on debug: every later job is a planned split
    (estimate > MaxTime) that stops at its USR2 (10-40 s in), checkpoints with its length and
    continues in the next, until the segment completes."""
    cfg_path = make(tmp_path, "tl2", {"name": "single", "max_length": 300},
                    {"x": 0.1, "sleep": 0.5, "ignore_first_stop": True},
                    {"partition": "debug", "first_guess_min": 1, "signal_delay_s": 20})
    name = yaml.safe_load(cfg_path.read_text())["name"]
    names.append(name)
    cfg = load_config(cfg_path)
    exp = ExpDir.create(tmp_path / "run")
    (exp.root / "experiment.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    backend = SlurmBackend(str(exp.root), cfg.slurm.backend_options(), poll_min_interval_s=1)
    backend.set_max_time({"debug": 1, "short": 10}, default="debug")
    t0 = time.time()
    st = Master(exp, cfg, backend=backend, progress=lambda s: None).run()
    assert st.lifecycle == "completed", st.message
    _, st, recs = final_state(exp.root)
    t = st.trials[1]
    assert t.status == "completed" and t.length == 300 and t.restarts == 0
    intents = [r for r in recs if r["kind"] == "intent"]
    [dead] = [r for r in recs if r["kind"] == "job_dead"]
    assert (dead["attempt"], dead["state"], dead["counts"]) == (0, "timeout", False)
    assert intents[0]["timeout_min"] == 1 and intents[0]["basis"] == "first guess"
    assert not intents[0]["split"]
    assert len(intents) >= 2 and all(r["split"] and r["timeout_min"] == 1 for r in intents[1:])
    assert intents[1]["estimate_s"] >= 60  # learnt from the timeout: at least the 60 s it ran
    results = [r for r in recs if r["kind"] == "result"]
    assert [r["status"] for r in results] == ["interrupted"] * (len(results) - 1) + ["completed"]
    assert all(r["stop_reason"] == "SIGUSR2" for r in results[:-1])
    assert all(isinstance(r.get("job_started"), float) and r["job_started"] <= r["started"]
               for r in results)
    reached = [r["reached"] for r in results]
    assert reached == sorted(reached) and reached[-1] == 300
    # only the timeout counted as a retry; the planned splits that made progress did not
    no_progress = sum(1 for a, b in zip(reached, reached[1:]) if b <= a)
    assert t.infra_retries == 1 + no_progress
    # each job continued where the previous one left its checkpoint
    starts = [e for e in model_log(exp.root, 1) if e["event"] == "start"]
    assert starts[0]["epoch"] == 0 and starts[1]["epoch"] > 0  # the timed-out job's checkpoint
    assert [s["epoch"] for s in starts[2:]] == reached[:-1][:len(starts) - 2]
    subs = submitted_keys(recs)
    rows = sacct_jobs(name, t0, expect=subs.values())
    states = {k: s for k, _, s in job_keys(exp.root, name, rows)}
    assert states["t00001-s000-a00"] == "TIMEOUT"
    assert all(s == "COMPLETED" for k, s in states.items() if k != "t00001-s000-a00")
    assert {minutes(v) for v in sacct_limits(subs.values()).values()} == {1}
    status = json.loads(cli("status", exp.root, "--json").stdout)
    [row] = status["time_limits"]
    assert row["splits"] == len(intents) - 1 and row["time_limited"] >= len(intents) - 1

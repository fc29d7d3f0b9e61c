"""Time limits per segment (asha_hpc/master/timelimits.py): the pure estimator and planner, the state
feeding it from the journal, the master planning with it on the simulated backends, the Slurm
backend grouping specs by time limit (no cluster needed), status, and the benchmark's smoke run.
The runs on the real local cluster are in tests/test_slurm_timelimits.py."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from asha_hpc.backends.backfill import BackfillBackend
from asha_hpc.backends.base import JobState, SegmentSpec
from asha_hpc.config import SlurmConfig, parse_config
from asha_hpc.errors import ConfigError
from asha_hpc.master.loop import Master
from asha_hpc.master.state import replay
from asha_hpc.master.timelimits import (
    SIGNAL_EARLY_S,
    Run,
    SegmentTimes,
    parse_partition_limits,
    parse_slurm_minutes,
    plan_limit,
    rung_level,
    rung_levels,
    theil_sen_intercept,
)
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.protocol.journal import read_journal
from asha_hpc.testing.invariants import check_invariants

REPO = Path(__file__).resolve().parent.parent.parent


# ----------------------------------------------------------------------------- parsing
@pytest.mark.parametrize("text,minutes", [
    ("infinite", None), ("UNLIMITED", None), ("10:00", 10), ("30", 30), ("1:00:00", 60),
    ("2-00:00:00", 2880), ("1-12", 2160), ("1-00:30", 1470), ("0:59", 0), ("4:00:30", 240)])
def test_parse_slurm_minutes(text, minutes):
    assert parse_slurm_minutes(text) == minutes


def test_parse_partition_limits_and_bad_values():
    limits, default = parse_partition_limits("debug* infinite\nshort 10:00\nlong 7-00:00:00\nodd x?\n")
    assert default == "debug"
    assert limits == {"debug": None, "short": 10, "long": 10080, "odd": None}
    with pytest.raises(ValueError):
        parse_slurm_minutes("soon")


def test_theil_sen_intercept_is_robust():
    pts = [(u, 30.0 + 2.0 * u) for u in (1, 3, 3, 12, 12, 48)]
    assert theil_sen_intercept(pts) == pytest.approx(30.0)
    pts.append((3, 500.0))  # one straggler moves it little
    assert theil_sen_intercept(pts) == pytest.approx(30.0, abs=3)
    assert theil_sen_intercept([(4, 10.0), (4, 11.0), (4, 12.0)]) is None  # units never vary
    assert theil_sen_intercept([(1, 10.0), (4, 11.0)]) is None  # too few points


# ----------------------------------------------------------------------------- the model
def _run(trial, target, units, d, **kw):
    return Run(trial=trial, target=target, planned_units=units, units=units, duration_s=d,
               status="completed", time_limited=False, **kw)


def _times():
    """Runs of a job with 20 s of overhead and 2 s per unit: rung 4 (3 units), rung 16 (12)."""
    t = SegmentTimes()
    for i in range(4):
        t.add(_run(i, 4, 3, 20 + 2 * 3 + i * 0.1, startup_s=5.0))
    for i in range(3):
        t.add(_run(10 + i, 16, 12, 20 + 2 * 12 - i * 0.1, startup_s=5.0))
    return t


def test_estimate_per_rung_and_overall():
    t = _times()
    assert t.overhead_s() == pytest.approx(20, abs=0.5)
    rate, basis = t.rate(16)
    assert rate == pytest.approx(2, abs=0.05) and basis.startswith("rung 16")
    est, basis = t.estimate_s(64, 48)  # no run at 64 yet: the rate over all rungs
    assert est == pytest.approx(20 + 2 * 48, rel=0.03) and basis.startswith("all rungs")
    assert SegmentTimes().estimate_s(4, 3) is None


def test_overhead_is_the_measured_startup_while_units_never_vary():
    t = SegmentTimes()
    for i in range(3):
        t.add(_run(i, 4, 4, 40.0, startup_s=8.0))
    assert t.overhead_s() == pytest.approx(8.0)
    assert t.rate(4)[0] == pytest.approx(8.0)  # (40 - 8) / 4


def test_a_time_limited_attempt_is_a_lower_bound_for_its_trial():
    t = _times()
    # trial 99 hit its limit after 300 s without finishing 12 units: at least (300-20)/12 s each
    t.add(Run(trial=99, target=16, planned_units=12, units=None, duration_s=300.0,
              status="interrupted", time_limited=True))
    own, basis = t.rate(16, trial=99)
    assert own == pytest.approx(280 / 12, rel=0.01) and "trial 99" in basis
    assert t.rate(16, trial=5)[0] < 5  # the rung's median still rules the other trials


def _slurm(**kw):
    return SlurmConfig(**dict({"timeout_min": "auto", "first_guess_min": 60,
                               "time_safety_factor": 1.5, "signal_delay_s": 90}, **kw))


def test_plan_limit_first_guess_estimate_and_maxtime():
    t = _times()
    s = _slurm()
    first = plan_limit(SegmentTimes(), s, trial=1, target=4, units=3, level=0, max_time_min=None)
    assert (first.minutes, first.split, first.basis) == (60, False, "first guess")
    short = plan_limit(t, s, trial=1, target=4, units=3, level=0, max_time_min=None)
    need = (20 + 2 * 3) * 1.5 + 90 + SIGNAL_EARLY_S
    assert short.minutes == math.ceil(need / 60) == 4 and not short.split
    long = plan_limit(t, s, trial=1, target=256, units=192, level=3, max_time_min=None)
    assert long.minutes == math.ceil(((20 + 2 * 192) * 1.5 + 150) / 60) == 13
    capped = plan_limit(t, s, trial=1, target=256, units=192, level=3, max_time_min=10)
    assert (capped.minutes, capped.split) == (10, True) and "MaxTime 10" in capped.basis
    guess = plan_limit(SegmentTimes(), s, trial=1, target=4, units=3, level=0, max_time_min=30)
    assert (guess.minutes, guess.split) == (30, False)  # capped, but nothing says it won't fit
    rec = capped.record()
    assert rec["timeout_min"] == 10 and rec["split"] is True and rec["estimate_s"] > 0


def test_plan_limit_fixed_and_per_rung():
    t = _times()
    s = _slurm(timeout_min=45, timeout_min_per_rung=[5, "auto", 30])
    assert plan_limit(t, s, trial=1, target=1, units=1, level=0, max_time_min=None).minutes == 5
    auto = plan_limit(t, s, trial=1, target=4, units=3, level=1, max_time_min=None)
    assert auto.minutes == 4 and auto.basis.startswith("rung 4")
    deep = plan_limit(t, s, trial=1, target=64, units=48, level=5, max_time_min=20)
    assert (deep.minutes, deep.split) == (20, True)  # the last entry (30), capped
    plain = plan_limit(t, _slurm(timeout_min=45), trial=1, target=4, units=3, level=0, max_time_min=None)
    assert (plain.minutes, plain.basis) == (45, "fixed")


def test_rung_levels():
    levels = rung_levels([[1, 4, 16, 64], [4, 16, 64], [16, 64]])
    assert levels == [1, 4, 16, 64]
    assert [rung_level(levels, x) for x in (1, 4, 16, 64, 100)] == [0, 1, 2, 3, 3]


def test_config_keys_and_errors():
    base = {"name": "x", "entrypoint": "m:f", "searcher": {"name": "single", "metric": "l",
                                                            "max_length": 4}}
    c = parse_config(dict(base, slurm={"timeout_min": "auto", "first_guess_min": 30,
                                       "per_rung": [{"gpus_per_node": 1}, {"gpus_per_node": 2}]}), ".")
    assert c.slurm.auto_time and c.slurm.backend_options()["timeout_min"] == 30
    assert "per_rung" not in c.slurm.backend_options()
    assert c.slurm.rung_options(0) == {"gpus_per_node": 1}
    assert c.slurm.rung_options(7) == {"gpus_per_node": 2}  # the last entry for deeper rungs
    with pytest.raises(ConfigError) as e:
        parse_config(dict(base, slurm={"timeout_min": "soon", "timeout_min_per_rung": [10, -1],
                                       "per_rung": [{"gpus": 2}], "time_safety_factor": -1}), ".")
    msg = str(e.value)
    for part in ("slurm.timeout_min: must be an integer or 'auto'",
                 "slurm.timeout_min_per_rung[1]: must be an integer >= 1 or 'auto'",
                 "slurm.per_rung[0].gpus: unknown key",
                 "slurm.time_safety_factor: must be > 0"):
        assert part in msg, msg


# ----------------------------------------------------------------------------- state
def _cfg(slurm=None, searcher=None, backend="simulated", **sim):
    return parse_config({
        "name": "tl", "entrypoint": "unused:train",
        "searcher": dict({"name": "single", "metric": "loss", "max_length": 64}, **(searcher or {})),
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
        "reproducibility": {"experiment_seed": 3}, "backend": backend, "max_restarts": 1,
        "poll_interval_s": 10, "simulated": dict({"unit_seconds": 60, "startup_seconds": 120,
                                                  "duration_noise": 0.1}, **sim),
        "slurm": dict({"timeout_min": "auto", "first_guess_min": 30, "signal_delay_s": 90},
                      **(slurm or {}))}, "/tmp")


def _records(*recs):
    out = [{"kind": "init", "seq": 1}]
    for i, r in enumerate(recs, 2):
        out.append(dict(r, seq=i, time=float(i)))
    return out


def _attempt(a, **kw):
    return {"trial": 1, "segment": 0, "attempt": a, **kw}


def test_timeout_without_result_counts_no_restart_and_teaches_the_model():
    assert JobState.TIMEOUT.counts_as_restart is False
    cfg = _cfg()
    st = replay(cfg, _records(
        dict(_attempt(0, kind="intent", length=64, timeout_min=30, split=False)),
        dict(_attempt(0, kind="submitted", job_id="7")),
        dict(_attempt(0, kind="job_dead", job_id="7", state="timeout", counts=False))))
    t = st.trials[1]
    assert t.restarts == 0 and t.infra_retries == 1 and t.status == "queued"
    [run] = st.times.runs
    assert run.status == "timeout" and run.duration_s == 1800 and run.time_limited
    # the next attempt asks for more than the 30 minutes that were not enough
    lim = plan_limit(st.times, cfg.slurm, trial=1, target=64, units=64, level=0, max_time_min=None)
    assert lim.minutes > 30 * cfg.slurm.time_safety_factor


def test_interrupted_with_reached_feeds_the_rate_and_the_units_left():
    cfg = _cfg()
    st = replay(cfg, _records(
        dict(_attempt(0, kind="intent", length=64, timeout_min=30, split=False)),
        dict(_attempt(0, kind="result", status="interrupted", stop_reason="SIGUSR2", reached=20,
                      checkpoint="/c/1", job_started=1000.0, started=1010.0, ended=1000.0 + 1700))))
    assert st.times.units_left(1, 64, 0) == 44
    rate, _ = st.times.rate(64, trial=1)
    assert rate == pytest.approx((1700 - 10) / 20)  # overhead: the measured start-up
    assert st.trials[1].infra_retries == 0  # a stop that got further counts nothing
    assert st.trials[1].error == "interrupted (SIGUSR2: time limit); continues from its checkpoint"


def test_a_planned_split_counts_no_retry_only_with_progress():
    cfg = _cfg()
    recs = _records(
        dict(_attempt(0, kind="intent", length=64, timeout_min=20, split=True)),
        dict(_attempt(0, kind="result", status="interrupted", stop_reason="SIGUSR2", reached=10,
                      checkpoint="/c/1", job_started=0.0, started=5.0, ended=1050.0)),
        dict(_attempt(1, kind="intent", length=64, timeout_min=20, split=True)),
        dict(_attempt(1, kind="result", status="interrupted", stop_reason="SIGUSR2", reached=10,
                      checkpoint="/c/1", job_started=2000.0, started=2005.0, ended=3050.0)))
    st = replay(cfg, recs)
    t = st.trials[1]
    assert t.infra_retries == 1 and t.restarts == 0  # the second made no progress
    assert st.times.splits[64] == 2
    assert any("split at the longest time limit allowed" in e for _, e in st.events)


# ----------------------------------------------------------------------------- master
def _run_master(tmp_path, cfg, backend_factory=None):
    exp = ExpDir.create(tmp_path / "exp")
    backend = backend_factory(exp) if backend_factory else None
    st = Master(exp, cfg, backend=backend, progress=lambda s: None).run()
    recs = read_journal(exp.journal)[0]
    assert check_invariants(cfg, recs) == []
    return exp, st, recs


def test_limits_shrink_for_short_rungs_and_grow_for_long_ones(tmp_path):
    cfg = _cfg(searcher={"name": "adaptive_asha", "max_length": 64, "max_trials": 16,
                         "max_concurrent_trials": 4, "mode": "aggressive", "divisor": 4})
    exp, st, recs = _run_master(tmp_path, cfg)
    assert st.lifecycle == "completed"
    intents = [r for r in recs if r["kind"] == "intent"]
    assert all(r["timeout_min"] == 30 and r["basis"] == "first guess" for r in intents[:4])
    by_len = {}
    for r in intents[4:]:
        by_len.setdefault(r["length"], []).append(r["timeout_min"])
    # rungs 4/16/64: rung 4 (4 units, ~6 min of work) asks for less than the 30-minute guess,
    # rung 64 (48 units, ~50 min) for more
    assert max(by_len[4]) < 30 < min(by_len[64])
    assert max(by_len[4]) < min(by_len[16]) <= max(by_len[16]) < min(by_len[64])
    # every segment finished within its limit on this backend (no enforcement, checked here)
    for r in recs:
        if r["kind"] == "result":
            asked = next(i["timeout_min"] for i in intents if (i["trial"], i["segment"], i["attempt"])
                         == (r["trial"], r["segment"], r["attempt"]))
            assert r["ended"] - r["started"] < 60 * asked
    # status shows them
    from asha_hpc.views.status import status_dict
    from asha_hpc.views.text import render_status_text

    d = status_dict(exp, cfg, st, recs)
    rows = {r["length"]: r for r in d["time_limits"]}
    assert set(rows) == {4, 16, 64} and rows[4]["rung"] == 0 and rows[64]["rung"] == 2
    assert rows[64]["asked_min_median"] > rows[4]["asked_min_median"]
    assert rows[4]["run_s_median"] < rows[64]["run_s_median"]
    assert rows[4]["asked"] == sum(r["length"] == 4 for r in intents)
    text = render_status_text(d)
    assert "time limits:" in text and "limit min" in text and "run median" in text


def test_default_simulated_config_plans_nothing(tmp_path):
    cfg = parse_config({
        "name": "plain", "entrypoint": "unused:train",
        "searcher": {"name": "random", "metric": "loss", "max_length": 4, "max_trials": 3},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
        "backend": "simulated", "poll_interval_s": 10}, "/tmp")
    exp, st, recs = _run_master(tmp_path, cfg)
    assert not any("timeout_min" in r for r in recs if r["kind"] == "intent")
    from asha_hpc.views.status import status_dict
    from asha_hpc.views.text import render_status_text

    d = status_dict(exp, cfg, st, recs)
    assert d["time_limits"] == [] and "time limits:" not in render_status_text(d)


def test_backfill_backend_splits_a_segment_longer_than_maxtime(tmp_path):
    """MaxTime 30 min, a 64-unit segment of 1 min units: after the first guess (capped at 30,
    interrupted at its warning) every attempt is a planned split, makes progress and counts no
    retry (nor does the first guess's stop, which made progress too); the segment completes
    from its checkpoints."""
    cfg = _cfg(slurm={"first_guess_min": 120})
    exp, st, recs = _run_master(tmp_path, cfg, lambda exp: BackfillBackend(
        exp.root, cfg.simulated, seed=1, gpus=4, max_time_min=30, signal_delay_s=90))
    assert st.lifecycle == "completed"
    t = st.trials[1]
    assert t.status == "completed" and t.length == 64 and t.restarts == 0
    intents = [r for r in recs if r["kind"] == "intent"]
    results = [r for r in recs if r["kind"] == "result"]
    assert all(r["timeout_min"] <= 30 for r in intents)
    assert intents[0]["timeout_min"] == 30 and not intents[0]["split"]  # the guess, capped
    assert intents[1]["timeout_min"] == 30 and intents[1]["split"]  # known not to fit: planned
    assert len(intents) >= 3  # 64 min of work + start-ups in 30-minute jobs
    assert [r["status"] for r in results] == ["interrupted"] * (len(results) - 1) + ["completed"]
    reached = [r["reached"] for r in results]
    assert reached == sorted(reached) and len(set(reached)) == len(reached)  # progress each time
    assert t.infra_retries == 0  # every stop got further: none counts, planned split or not


def test_backfill_queue_starts_short_limits_in_holes():
    """EASY backfill: with a wide job waiting for GPUs that free up in 4 h, a 30-minute job
    starts at once and a 5-hour job waits."""
    from asha_hpc.backends.backfill import QJob
    from asha_hpc.config import SimulatedConfig

    b = BackfillBackend(Path("/nonexistent"), SimulatedConfig(), gpus=8)
    b._now = 0.0
    running = QJob(id="r", gpus=6, limit_s=4 * 3600, submit=0, seq=1, ours=False, run_s=3 * 3600)
    wide = QJob(id="w", gpus=8, limit_s=3600, submit=1, seq=2, ours=False, run_s=3600)
    long = QJob(id="l", gpus=1, limit_s=5 * 3600, submit=2, seq=3, ours=False, run_s=600)
    short = QJob(id="s", gpus=1, limit_s=1800, submit=3, seq=4, ours=False, run_s=600)
    b.queue = [running]
    b._schedule(0.0)
    b.queue = [wide, long, short]
    b._schedule(10.0)
    assert short.start == 10.0 and long.start is None and wide.start is None


# ----------------------------------------------------------------------------- slurm backend
def _spec(i, timeout=None, resources=None):
    return SegmentSpec(exp_dir="/tmp/x", experiment="t", trial_id=i, segment=0, attempt=0,
                       length=1, hparams={}, entrypoint="m:f", context_dir="/tmp", metric="loss",
                       timeout_min=timeout, resources=resources or {})


def test_slurm_backend_groups_arrays_by_time_limit_and_resources(tmp_path, monkeypatch):
    from asha_hpc.backends.slurm import JOB_T0_SETUP, SlurmBackend

    b = SlurmBackend(str(tmp_path), {"timeout_min": 60, "gpus_per_node": 1, "setup": ["echo hi"]})
    assert b.params["setup"] == [JOB_T0_SETUP, "set -e", "echo hi", "set +e"]
    b.max_array_size = 1001
    calls = []

    def fake_chunk(chunk, key="", params=None):
        calls.append(([s.trial_id for s in chunk], params["time"], params.get("gpus_per_node")))
        return [f"{100 + len(calls)}_{i}" for i in range(len(chunk))] if len(chunk) > 1 \
            else [str(100 + len(calls))]

    monkeypatch.setattr(b, "_submit_chunk", fake_chunk)
    specs = [_spec(1, 5), _spec(2, 30), _spec(3, 5), _spec(4, 30, {"gpus_per_node": 2}), _spec(5)]
    ids = b.submit(specs)
    assert calls == [([1, 3], 5, 1), ([2], 30, 1), ([4], 30, 2), ([5], 60, 1)]
    assert ids == ["101_0", "102", "101_1", "103", "104"]  # in the specs' order
    _, p = b.spec_parameters(_spec(9, 7, {"gpus_per_node": 2, "additional_parameters": {"x": 1}}))
    assert p["time"] == 7 and p["gpus_per_node"] == 2
    assert p["additional_parameters"] == {"no_requeue": True, "x": 1}


def test_slurm_backend_max_time_injected(tmp_path):
    from asha_hpc.backends.slurm import SlurmBackend

    b = SlurmBackend(str(tmp_path), {"timeout_min": 60})
    b.set_max_time({"debug": None, "short": 10}, default="short")
    assert b.max_time_min() == 10 and b.max_time_min("debug") is None
    assert b.max_time_min("nope") is None and b.stats.get("sinfo", 0) == 0


# ----------------------------------------------------------------------------- benchmark
def test_benchmark_quick(tmp_path):
    out = tmp_path / "tl.json"
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "time_limits.py"), "--quick",
                        "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "makespan h" in r.stdout and "auto" in r.stdout
    d = json.loads(out.read_text())
    pols = [row["policy"] for row in d["rows"]]
    assert pols[0].startswith("fixed") and "auto" in pols
    split = next(row for row in d["rows"] if "MaxTime" in row["policy"])
    assert split["planned_splits"] > 0


def test_per_rung_resources_reach_the_backend(tmp_path):
    """slurm.per_rung: each rung level's jobs ask for its GPUs (the last entry for deeper
    rungs); the time per unit is measured per rung."""
    cfg = _cfg(searcher={"name": "adaptive_asha", "max_length": 64, "max_trials": 16,
                         "max_concurrent_trials": 4, "mode": "aggressive", "divisor": 4},
               slurm={"per_rung": [{"gpus_per_node": 1}, {"gpus_per_node": 2, "tasks_per_node": 2}]})
    backends = []

    def make(exp):
        backends.append(BackfillBackend(exp.root, cfg.simulated, seed=2, gpus=16))
        return backends[0]

    exp, st, recs = _run_master(tmp_path, cfg, make)
    assert st.lifecycle == "completed"
    gpus = {}
    for job in backends[0].qjobs.values():
        gpus.setdefault(job.spec.length, set()).add(job.gpus)
        if job.spec.length > 4:
            assert job.spec.resources["srun_args"] == ["--kill-on-bad-exit=1"]
    assert gpus == {4: {1}, 16: {2}, 64: {2}}

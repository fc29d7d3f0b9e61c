"""``workers: auto`` (autoworkers.py): the pure rule, its measurements from journal records, the
config, the journal and status, the switch in virtual time, and on real local processes."""
from __future__ import annotations

import json
import os

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as hs

from asha_hpc.backends import capabilities
from asha_hpc.cli import main
from asha_hpc.config import load_config, parse_config
from asha_hpc.errors import ConfigError
from asha_hpc.master import autoworkers as aw
from asha_hpc.master.loop import Master
from asha_hpc.master.state import replay
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.protocol.journal import read_journal
from asha_hpc.testing.invariants import check_invariants
from asha_hpc.views.status import status_dict

from helpers import cache_experiment, check_switch_both_ways


def M(startup=3.0, queue=0.0, train=0.5, idle=0.01, segments=10):
    return aw.Measures(segments=segments, startup_s=startup, queue_s=queue, train_s=train,
                       idle_s=idle)


# ----------------------------------------------------------------------------- the rule
def test_short_segments_get_warm_workers_with_the_numbers_in_the_reason():
    d = aw.decide(M(startup=3.1, train=4.56), 0.10)
    assert d.mode == aw.POOL and d.measured
    assert d.line() == "warm workers: start-up 3.1 s per segment = 68% of training (4.6 s per segment)"
    rec = d.record().to_record()
    assert rec["kind"] == "workers_mode" and rec["mode"] == "pool"
    assert rec["startup_s"] == 3.1 and rec["train_s"] == 4.56
    assert rec["share"] == pytest.approx(0.68, abs=1e-3)


def test_long_segments_get_a_job_each():
    d = aw.decide(M(startup=3.0, train=3600.0), 0.10)
    assert d.mode == aw.SEGMENT and "0% of training" in d.reason


def test_queue_wait_counts_as_saved_time():
    assert aw.decide(M(startup=5.0, queue=0.0, train=600.0), 0.10).mode == aw.SEGMENT
    d = aw.decide(M(startup=5.0, queue=1800.0, train=600.0), 0.10)
    assert d.mode == aw.POOL and "queue 30.0 min" in d.reason


def test_share_is_configurable():
    m = M(startup=3.0, train=20.0)  # 15%
    assert aw.decide(m, 0.10).mode == aw.POOL
    assert aw.decide(m, 0.20).mode == aw.SEGMENT


def test_hysteresis_keeps_the_current_mode_near_the_threshold():
    m = M(startup=1.0, train=12.0)  # 8.3%: under 10%, over 10% / 1.5
    assert aw.decide(m, 0.10, None).mode == aw.SEGMENT
    assert aw.decide(m, 0.10, aw.SEGMENT).mode == aw.SEGMENT
    assert aw.decide(m, 0.10, aw.POOL).mode == aw.POOL  # left only below 6.7%
    assert aw.decide(M(startup=1.0, train=16.0), 0.10, aw.POOL).mode == aw.SEGMENT


def test_an_idle_warm_worker_costing_more_than_it_saves_means_a_job_each():
    d = aw.decide(M(startup=0.5, train=0.1, idle=2.0), 0.10)
    assert d.mode == aw.SEGMENT and "idle 2.0 s per segment" in d.reason


def test_segments_that_do_not_fit_twice_in_a_worker_lifetime_get_a_job_each():
    d = aw.decide(M(startup=30.0, queue=600.0, train=1500.0), 0.10, lifetime_s=3600.0)
    assert d.mode == aw.SEGMENT and "fit fewer than two" in d.reason
    assert aw.decide(M(startup=30.0, queue=600.0, train=600.0), 0.10, lifetime_s=3600.0).mode == aw.POOL


def test_before_measurements_the_search_starts_warm_and_a_blocked_config_never_does():
    d = aw.decide(aw.Measures(), 0.10)
    assert d.mode == aw.POOL and not d.measured
    assert aw.decide(M(segments=1), 0.10, aw.SEGMENT).mode == aw.SEGMENT  # kept until measured
    b = aw.decide(M(train=0.01), 0.10, blocked="slurm.timeout_min is auto")
    assert b.mode == aw.SEGMENT and not b.measured and "timeout_min" in b.reason


pos = hs.floats(min_value=0.0, max_value=1e5, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(startup=pos, queue=pos, train=hs.floats(min_value=1e-4, max_value=1e5), idle=pos,
       share=hs.floats(min_value=0.01, max_value=2.0),
       current=hs.sampled_from([None, aw.POOL, aw.SEGMENT]), factor=hs.floats(1.0, 100.0))
def test_rule_is_deterministic_and_longer_training_never_brings_the_pool_back(
        startup, queue, train, idle, share, current, factor):
    m = M(startup=startup, queue=queue, train=train, idle=idle)
    d = aw.decide(m, share, current)
    assert d == aw.decide(m, share, current)
    assert d.mode in (aw.POOL, aw.SEGMENT)
    if d.mode == aw.SEGMENT:
        longer = aw.decide(M(startup=startup, queue=queue, train=train * factor, idle=idle),
                           share, current)
        assert longer.mode == aw.SEGMENT
    if d.mode == aw.POOL:  # warm workers only when they save more than the share and than idle
        slack = aw.HYSTERESIS if current == aw.POOL else 1.0
        assert startup + queue > share / aw.HYSTERESIS * train and idle < (startup + queue) * slack
    if d.mode == aw.POOL and current == aw.SEGMENT:  # entered with idle well under the saving
        assert idle < (startup + queue) / aw.HYSTERESIS


def test_idling_near_what_a_pool_saves_does_not_switch_back_and_forth():
    """A Keras search (runs of 2.4-3.4 s): a pool's start-ups read 1.6 s (its processes import
    Keras at their first segment), a segment job's 3.5 s, and a warm worker idles 3.2 s: the
    idle rule sent it to jobs, and the jobs' start-ups back to the pool, 10 times a minute."""
    in_pool = M(startup=1.6, train=3.4, idle=3.2)
    assert aw.decide(in_pool, 0.10, aw.POOL).mode == aw.SEGMENT  # idles twice what it saves
    as_jobs = M(startup=3.5, train=2.6, idle=3.2)
    assert aw.decide(as_jobs, 0.10, aw.SEGMENT).mode == aw.SEGMENT  # not back for so little
    assert aw.decide(M(startup=3.5, train=2.6, idle=1.0), 0.10, aw.SEGMENT).mode == aw.POOL


# ----------------------------------------------------------------------------- measurements
def result(trial, seg, started, ended, job_started=None, time=None, **kw):
    return dict({"kind": "result", "trial": trial, "segment": seg, "attempt": 0,
                 "status": "completed", "started": started, "ended": ended,
                 "job_started": started if job_started is None else job_started,
                 "time": ended + 0.05 if time is None else time}, **kw)


def intent(trial, seg, time, **kw):
    return dict({"kind": "intent", "trial": trial, "segment": seg, "attempt": 0, "time": time}, **kw)


def test_measures_from_segment_jobs_and_warm_workers():
    a = aw.AutoMeasure(count_queue=True)
    # two segment jobs: queued 10 and 30 s, 2 s of start-up, 4 s of training
    a.on_intent(intent(1, 0, 100.0))
    a.on_result(result(1, 0, started=112.0, ended=116.0, job_started=110.0))
    a.on_intent(intent(2, 0, 100.0))
    a.on_result(result(2, 0, started=132.0, ended=136.0, job_started=130.0))
    m = a.measures()
    assert m.segments == 2 and m.startup_s == 2.0 and m.train_s == 4.0
    assert m.queue_s == pytest.approx(15.0)  # the lower quartile of 10 and 30
    assert m.idle_s == pytest.approx(0.05)  # no pool yet: how long the master took to see a result
    # a pool worker: submitted at 200, started at 260 (queue 60), then warm segments
    a.on_workers({"kind": "workers", "workers": ["w0000"], "time": 200.0})
    a.on_worker_ready({"kind": "worker_ready", "worker": "w0000", "slot": 0, "job_started": 260.0})
    ends = 300.0
    for i in range(4):
        a.on_intent(intent(3 + i, 0, ends + 0.5, worker="w0000"))
        a.on_result(result(3 + i, 0, started=ends + 0.5, ended=ends + 1.5, worker="w0000",
                           waiting=True))
        ends += 1.5
    m = a.measures()
    assert m.startup_s == 2.0  # warm segments have none
    assert sorted(a._queue) == [10.0, 30.0, 60.0]
    assert m.idle_s == pytest.approx(0.5)  # its result -> its next hand-over (3 of them)
    assert m.train_s == pytest.approx((4 + 4 + 1 + 1 + 1 + 1) / 6)


def test_a_pool_workers_start_up_ends_at_its_ready_not_at_its_first_segment():
    """A worker that started up in 1.5 s, then waited 6 s for the master to hand it a segment
    (the search had nothing for it yet): its start-up is 1.5 s. A worker of an older release
    (no time in its ready message) is measured at its first segment, as before."""
    a = aw.AutoMeasure(count_queue=False)
    a.on_workers({"kind": "workers", "workers": ["w0000", "w0001"], "time": 99.0})
    a.on_worker_ready({"kind": "worker_ready", "worker": "w0000", "slot": 0,
                       "job_started": 100.0, "ready_at": 101.5})
    a.on_intent(intent(1, 0, 107.5, worker="w0000", slot=0))
    a.on_result(result(1, 0, started=107.5, ended=110.0, job_started=100.0, worker="w0000",
                       waiting=True, slot=1))
    assert a.measures().startup_s == 1.5 and list(a._startup) == [1.5]
    # its next segments have no start-up; the old worker's first one counts in full
    a.on_intent(intent(2, 0, 110.1, worker="w0000", slot=1))
    a.on_result(result(2, 0, started=110.1, ended=112.0, worker="w0000", waiting=True, slot=2))
    a.on_worker_ready({"kind": "worker_ready", "worker": "w0001", "slot": 0, "job_started": 100.0})
    a.on_intent(intent(3, 0, 103.0, worker="w0001", slot=0))
    a.on_result(result(3, 0, started=103.0, ended=105.0, job_started=100.0, worker="w0001",
                       waiting=True, slot=1))
    assert sorted(a._startup) == [1.5, 3.0]


def test_local_waits_for_a_slot_are_not_queue_waits():
    a = aw.AutoMeasure(count_queue=False)
    a.on_intent(intent(1, 0, 100.0))
    a.on_result(result(1, 0, started=112.0, ended=116.0, job_started=110.0))
    assert a.measures().queue_s == 0.0


# ----------------------------------------------------------------------------- config
def base_cfg(**top):
    cfg = {"name": "aw", "entrypoint": "model:train",
           "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 16,
                        "max_trials": 8, "max_concurrent_trials": 2, "mode": "aggressive"},
           "hyperparameters": {"x": {"type": "double", "minval": -1, "maxval": 1}}}
    cfg.update(top)
    return cfg


def test_auto_is_the_default_and_numbers_still_force_a_mode(tmp_path):
    cfg = parse_config(base_cfg(local={"gpus": 0, "max_parallel": 3}), tmp_path)
    assert cfg.local.workers == "auto" and cfg.slurm.workers == "auto" and cfg.workers_auto
    assert cfg.pool_size == 3 and cfg.auto_workers_share == 0.10
    assert parse_config(base_cfg(local={"workers": 0}), tmp_path).pool_size == 0
    two = parse_config(base_cfg(local={"workers": 2, "max_parallel": 2}), tmp_path)
    assert two.pool_size == 2 and not two.workers_auto
    assert parse_config(base_cfg(backend="simulated"), tmp_path).workers_setting == 0
    resolved = parse_config(base_cfg(), tmp_path).to_dict()
    assert resolved["local"]["workers"] == "auto" and resolved["auto_workers_share"] == 0.10


@pytest.mark.parametrize("raw, field", [
    ({"local": {"workers": "fast"}}, "local.workers: must be 'auto' or an integer >= 0"),
    ({"slurm": {"workers": -1}}, "slurm.workers: must be 'auto' or an integer >= 0"),
    ({"simulated": {"pool": "many"}}, "simulated.pool: must be 'auto' or an integer >= 0"),
    ({"auto_workers_share": 0}, "auto_workers_share: must be > 0"),
    ({"slurm": {"trials_per_gpu": 2}}, "slurm.trials_per_gpu"),
])
def test_bad_settings_name_the_field(tmp_path, raw, field):
    with pytest.raises(ConfigError) as e:
        parse_config(base_cfg(**raw), tmp_path)
    assert field in str(e.value)


def test_slurm_auto_time_limits_keep_a_job_per_segment(tmp_path):
    cfg = parse_config(base_cfg(backend="slurm", slurm={"timeout_min": "auto"}), tmp_path)
    assert aw.pool_limits(capabilities(cfg))[1] and "timeout_min" in aw.pool_limits(capabilities(cfg))[1]
    fixed = parse_config(base_cfg(backend="slurm", slurm={"timeout_min": 30}), tmp_path)
    assert aw.pool_limits(capabilities(fixed)) == (1800.0, None)


# ----------------------------------------------------------------------------- virtual time
def sim_cfg(tmp_path, unit_s, startup_s, queue_s=0.0, pool="auto", trials=24):
    return parse_config(base_cfg(
        name="awsim", backend="simulated", poll_interval_s=1.0,
        searcher={"name": "adaptive_asha", "metric": "loss", "max_length": 64, "divisor": 4,
                  "max_trials": trials, "max_concurrent_trials": 8, "mode": "standard"},
        reproducibility={"experiment_seed": 7},
        simulated={"unit_seconds": unit_s, "startup_seconds": startup_s, "workers": 8,
                   "queue_wait_seconds": queue_s, "duration_noise": 0.1, "pool": pool}), tmp_path)


def run_sim(tmp_path, cfg, tag):
    exp = ExpDir.create(tmp_path / tag)
    m = Master(exp, cfg, progress=lambda s: None)
    st = m.run()
    recs = read_journal(exp.journal)[0]
    assert st.lifecycle == "completed" and check_invariants(cfg, recs) == []
    return st, recs, m.backend


def modes(recs):
    return [(r["mode"], r["measured"]) for r in recs if r["kind"] == "workers_mode"]


def test_short_segments_stay_on_warm_workers_in_virtual_time(tmp_path):
    st, recs, b = run_sim(tmp_path, sim_cfg(tmp_path, unit_s=0.05, startup_s=5.0), "short")
    assert modes(recs) == [("pool", False), ("pool", True)]
    assert not [r for r in recs if r["kind"] == "submitted"]  # every segment on a warm worker
    assert status_dict(ExpDir.open(tmp_path / "short"), st.cfg, st)["workers"]["mode"] == "pool"


def test_long_segments_switch_to_a_job_each_and_release_the_pool(tmp_path):
    st, recs, b = run_sim(tmp_path, sim_cfg(tmp_path, unit_s=600.0, startup_s=5.0), "long")
    assert modes(recs) == [("pool", False), ("segment", True)]
    switch = next(r["seq"] for r in recs if r["kind"] == "workers_mode" and r["mode"] == "segment")
    later = [r for r in recs if r["kind"] == "intent" and r["seq"] > switch]
    assert later and not any(r.get("worker") for r in later)
    assert any(r["kind"] == "worker_gone" and r["why"] == "workers: auto chose a job per segment"
               for r in recs)
    d = status_dict(ExpDir.open(tmp_path / "long"), st.cfg, st)["workers"]
    assert d["mode"] == "segment" and d["share"] < 0.10 and d["changes"] == 2


def test_long_segments_with_a_long_queue_stay_warm(tmp_path):
    st, recs, b = run_sim(tmp_path, sim_cfg(tmp_path, unit_s=600.0, startup_s=5.0,
                                            queue_s=1800.0), "queued")
    assert modes(recs)[-1] == ("pool", True)


def test_a_resumed_master_keeps_the_journaled_mode(tmp_path):
    cfg = sim_cfg(tmp_path, unit_s=600.0, startup_s=5.0)
    exp = ExpDir.create(tmp_path / "resume")
    m = Master(exp, cfg, progress=lambda s: None)
    assert m.start()
    while m.state.auto.mode != aw.SEGMENT or not m.state.auto.measured:
        assert m.step()
        m.clock.sleep(cfg.poll_interval_s)
    m.close()
    st = replay(cfg, read_journal(exp.journal)[0])
    assert st.auto.mode == aw.SEGMENT
    m2 = Master(exp, cfg, backend=m.backend, progress=lambda s: None)
    st2 = m2.run()
    recs = read_journal(exp.journal)[0]
    assert st2.lifecycle == "completed" and check_invariants(cfg, recs) == []
    assert modes(recs) == [("pool", False), ("segment", True)]  # nothing decided twice


def test_a_journal_without_workers_mode_records_replays_and_shows_status(tmp_path):
    cfg = sim_cfg(tmp_path, unit_s=1.0, startup_s=5.0)
    st, recs, b = run_sim(tmp_path, cfg, "old")
    old = [r for r in recs if r["kind"] != "workers_mode"]  # as an earlier release wrote it
    st_old = replay(cfg, old)
    assert st_old.lifecycle == "completed" and st_old.auto.mode is None
    w = status_dict(ExpDir.open(tmp_path / "old"), cfg, st_old)["workers"]
    assert w["setting"] == "auto" and w["line"].startswith("warm workers: start-up 5.0 s")


# ----------------------------------------------------------------------------- real processes
@pytest.mark.slow
def test_local_search_switches_both_ways(tmp_path):
    path = cache_experiment(tmp_path)
    cfg = load_config(path)
    exp = ExpDir.create(tmp_path / "run")
    st = Master(exp, cfg, progress=lambda s: None).run()
    recs = read_journal(exp.journal)[0]
    assert st.lifecycle == "completed" and check_invariants(cfg, recs) == []
    check_switch_both_ways(recs)
    w = status_dict(exp, cfg, st)["workers"]
    assert w["mode"] == "pool" and w["changes"] >= 3 and w["line"].startswith("warm workers: ")


def test_plan_shows_the_estimate(tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(base_cfg()))
    assert main(["plan", str(path)]) == 0
    out = capsys.readouterr().out
    assert "workers: auto keeps warm workers while a new job's start-up + queue wait exceed 10%" in out
    assert main(["plan", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["workers"] == "auto" and d["segments"] > 0 and "workers_estimate" in d


THREADS_MODEL = '''
import os


def train(trial):
    for seg in trial.segments():
        with open(trial.dir / "threads.txt", "a") as f:
            f.write(os.environ.get("OMP_NUM_THREADS", "unset") + "\\n")
        seg.report(loss=0.5)
'''


def test_local_jobs_share_the_cores_unless_the_user_set_threads(tmp_path, monkeypatch):
    from asha_hpc.backends.local import threads_per_job

    (tmp_path / "model.py").write_text(THREADS_MODEL)
    path = tmp_path / "exp.yaml"
    raw = base_cfg(searcher={"name": "single", "metric": "loss", "max_length": 1},
                   local={"gpus": [], "max_parallel": 1}, poll_interval_s=0.2)
    for i, (env, want) in enumerate([(None, str(threads_per_job(
            parse_config(raw, tmp_path).local))), ("3", "3")]):
        if env is None:
            monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        else:
            monkeypatch.setenv("OMP_NUM_THREADS", env)
        path.write_text(yaml.safe_dump(raw))
        exp = ExpDir.create(tmp_path / f"run{i}")
        st = Master(exp, load_config(path), progress=lambda s: None).run()
        assert st.lifecycle == "completed"
        assert (exp.trial_dir(1) / "threads.txt").read_text().split() == [want]
    assert threads_per_job(parse_config(base_cfg(local={"gpus": [], "max_parallel": 1}),
                                        tmp_path).local) == (os.cpu_count() or 1)


@pytest.mark.parametrize("unit,one", [("batches", "batch"), ("epochs", "epoch"),
                                      ("units", "unit"), ("minutes", "minute")])
def test_plans_estimate_names_one_unit_in_the_singular(unit, one):
    assert f"while one {one} trains in less than" in aw.plan_estimate(56, 0.1, unit)


SLOW_IMPORT = '''
import time
time.sleep(1.5)  # jax, flax and orbax: seconds of imports before any training


def train(trial):
    for segment in trial.segments():
        with trial.save_checkpoint(length=segment.length) as p:
            (p / "w").write_text("x")
        segment.report(loss=1.0 / segment.length + trial.hparams["x"])
'''


def test_importing_the_codes_module_is_start_up_not_training(tmp_path):
    """A warm worker imports the code's module once; a job per segment, every time. Counted
    as training, a JAX script's seconds of imports made auto keep a job per segment."""
    (tmp_path / "slow.py").write_text(SLOW_IMPORT)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "imports", "entrypoint": "slow:train",
        "searcher": {"name": "random", "metric": "loss", "max_length": 2, "max_trials": 2,
                     "max_concurrent_trials": 2},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
        "poll_interval_s": 0.2, "local": {"gpus": [], "workers": 0}}))
    assert main(["run", str(tmp_path / "c.yaml"), "--exp-dir", str(tmp_path / "e")]) == 0
    results = [r for r in read_journal(tmp_path / "e" / "journal.jsonl")[0]
               if r["kind"] == "result"]
    assert len(results) == 2
    for r in results:
        assert r["started"] - r["job_started"] >= 1.5  # start-up
        assert r["ended"] - r["started"] < 1.0  # training

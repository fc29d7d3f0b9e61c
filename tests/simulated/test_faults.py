"""Fault injection: master kills at many points, corrupt inputs, late results, full disks."""
import json
import os

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from asha_hpc.config import parse_config
from asha_hpc.errors import AshaError, ConfigError
from asha_hpc.master.loop import Master
from asha_hpc.protocol import journal as journal_mod
from asha_hpc.protocol.expdir import ExpDir, atomic_write_json
from asha_hpc.protocol.journal import read_journal
from asha_hpc.protocol.records import JobDead, Started
from asha_hpc.testing.chaos import run_chaos
from asha_hpc.testing.invariants import check_invariants

from helpers import cli, final_state, make_experiment, sim_cfg


@pytest.mark.parametrize("seed", range(4))
def test_master_killed_at_many_points_on_simulated_backend(tmp_path, seed):
    rep = run_chaos(sim_cfg(), tmp_path, kills=40, seed=seed)
    assert rep.lifecycle == "completed"
    assert rep.kills >= 30
    assert rep.violations == [] and rep.results_lost == 0 and rep.duplicated == 0
    assert rep.corrupt_inputs == rep.kills


def test_delayed_results_within_grace_are_not_failures(tmp_path):
    cfg = sim_cfg(result_delay_seconds=20, failure_rate=0.0)
    cfg.result_grace_s = 30
    exp = ExpDir.create(tmp_path / "exp")
    st = Master(exp, cfg, progress=lambda s: None).run()
    recs = read_journal(exp.journal)[0]
    assert st.lifecycle == "completed"
    assert not [r for r in recs if r["kind"] == "job_dead"]
    assert check_invariants(cfg, recs) == []


def test_results_later_than_grace_are_applied_once(tmp_path):
    cfg = sim_cfg(trials=20, result_delay_seconds=40, failure_rate=0.0)
    cfg.result_grace_s = 10
    exp = ExpDir.create(tmp_path / "exp")
    st = Master(exp, cfg, progress=lambda s: None).run()
    recs = read_journal(exp.journal)[0]
    assert st.lifecycle == "completed"
    dead = {(r["trial"], r["segment"], r["attempt"]) for r in recs if r["kind"] == "job_dead"}
    results = [r for r in recs if r["kind"] == "result"]
    applied = {(r["trial"], r["segment"], r["attempt"]) for r in results}
    # a result arriving after its job was declared dead is applied only when nobody had
    # started the retry (``adopted``: its retry is dropped), else dropped; never twice
    late = [r for r in results if (r["trial"], r["segment"], r["attempt"]) in dead]
    assert dead and all(r.get("adopted") for r in late)
    done = [(r["trial"], r["segment"]) for r in results if r["status"] == "completed"]
    assert len(done) == len(set(done)) and len(applied) == len(results)
    assert check_invariants(cfg, recs) == []


def test_stale_result_for_an_old_attempt_is_dropped(tmp_path):
    cfg = sim_cfg(trials=4, concurrent=2, failure_rate=0.0)
    exp = ExpDir.create(tmp_path / "exp")
    m = Master(exp, cfg, progress=lambda s: None)
    m.start()
    m._submit()
    t = m.state.trials[1]
    m._record(JobDead(trial=1, segment=0, attempt=0, job_id=t.job_id, state="lost", counts=False))
    m._submit()
    assert m.state.trials[1].attempt == 1
    # the retry runs: the segment is taken (a retry nobody started would adopt the result:
    # test_a_finished_result_of_an_earlier_attempt_is_applied_when_its_retry_never_ran)
    m._record(Started(trial=1, segment=0, attempt=1, job_id=None, host=None))
    atomic_write_json(exp.inbox / "t00001-s000-a00.result.json", {
        "type": "result", "trial": 1, "segment": 0, "attempt": 0, "status": "completed",
        "metrics": {"loss": 0.0}, "length": 1})
    m._collect()
    assert m.state.trials[1].status in ("pending", "running") and not m.state.trials[1].rung_metrics
    assert os.listdir(exp.inbox)  # removed only once the journal holding it is durable
    m._flush()
    assert not os.listdir(exp.inbox)


def test_full_disk_gives_clear_error_and_resumes(tmp_path, monkeypatch):
    cfg = sim_cfg(trials=30, failure_rate=0.0)
    exp = ExpDir.create(tmp_path / "exp")
    real_write = os.write
    calls = {"n": 0}

    def write(fd, data):
        calls["n"] += 1
        if calls["n"] == 25:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(journal_mod, "FULL_WAIT_S", 0.0)  # no waiting for room
    with pytest.raises(AshaError, match=r"journal.jsonl: cannot write the journal "
                                        r"\(No space left on device\); nothing was lost"):
        Master(exp, cfg, progress=lambda s: None).run()
    monkeypatch.setattr(os, "write", real_write)
    recs, _, warnings = read_journal(exp.journal)
    assert warnings == [] and check_invariants(cfg, recs) == []
    st = Master(exp, cfg, progress=lambda s: None).run()
    assert st.lifecycle == "completed"
    assert check_invariants(cfg, read_journal(exp.journal)[0]) == []


KILL_IN_CHECKPOINT = '''
import json, os, signal
def train(trial):
    epoch = 0
    if trial.latest_checkpoint:
        epoch = json.loads((trial.latest_checkpoint / "s.json").read_text())["epoch"]
    with open(trial.dir / "resumed.jsonl", "a") as f:
        f.write(json.dumps({"from": epoch}) + "\\n")
    for seg in trial.segments():
        while epoch < seg.length:
            epoch += 1
            with trial.save_checkpoint() as p:
                (p / "s.json").write_text(json.dumps({"epoch": epoch}))
                if epoch == 3 and not (trial.dir / "killed").exists():
                    (trial.dir / "killed").write_text("x")
                    (p / "half").write_text("partial")
                    os.kill(os.getpid(), signal.SIGKILL)  # dies mid-checkpoint
        seg.report(loss=1.0 / epoch + trial.hparams["x"])
'''


def test_job_killed_while_writing_a_checkpoint_resumes_from_last_complete(tmp_path):
    (tmp_path / "killer.py").write_text(KILL_IN_CHECKPOINT)
    cfg = {"name": "kill", "entrypoint": "killer:train",
           "searcher": {"name": "single", "metric": "loss", "max_length": 6},
           "hyperparameters": {"x": 0.5}, "poll_interval_s": 0.2, "result_grace_s": 0.5,
           "local": {"gpus": [], "max_parallel": 1}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(cfg))
    cli("run", tmp_path / "exp.yaml", "--exp-dir", tmp_path / "run")
    cfg_, st = final_state(tmp_path / "run")
    t = st.trials[1]
    assert st.lifecycle == "completed" and t.restarts == 1 and t.length == 6
    lines = (tmp_path / "run/trials/00001/resumed.jsonl").read_text().splitlines()
    resumed = [json.loads(line)["from"] for line in lines]
    assert resumed == [0, 2]  # the checkpoint of epoch 3 was never published


def test_second_master_other_host_refused_and_force(tmp_path):
    cfg_path = make_experiment(tmp_path, searcher={"max_trials": 2})
    exp = tmp_path / "run"
    cli("run", cfg_path, "--exp-dir", exp)
    import time

    (exp / "master.json").write_text(json.dumps({"host": "login2", "pid": 4242, "token": "t",
                                                 "heartbeat": time.time()}))
    r = cli("resume", exp, check=False)
    assert r.returncode == 1 and "host login2, pid 4242" in r.stderr and "--force" in r.stderr
    r = cli("resume", exp, "--force")
    assert "already completed" in r.stderr


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["name", "searcher", "metric", "max_length", "max_trials", "divisor",
                         "mode", "hyperparameters", "type", "minval", "maxval", "vals", "base",
                         "count", "entrypoint", "local", "slurm", "gpus", "epochs", "x"]),
        children, max_size=6),
    max_leaves=25))
@example({"searcher": {"name": []}})  # an unhashable name reached the Determined lookup
@example({"name": None, "entrypoint": '"'})  # shlex's "No closing quotation" escaped
@example({"entrypoint": "python3 -m determined.launch.torch_distributed 'x", "slurm": {}})
def test_fuzzed_configs_only_raise_config_errors(raw):
    try:
        parse_config(raw, "/tmp")
    except ConfigError as e:
        assert e.problems and all(isinstance(p, str) and ": " in p for p in e.problems)


def test_restarts_of_the_master_never_count_against_segments_that_never_ran(tmp_path):
    """A segment lost while queued (its master restarted before it started) costs nothing:
    after 30 such losses the trial still runs (the rule of README's 'What survives what')."""
    from asha_hpc.master.state import replay

    cfg = sim_cfg(trials=1, failure_rate=0.0)
    recs = [{"kind": "init", "seed": 5, "seq": 1}]
    st = replay(cfg, recs)
    for i in range(30):
        t = st.trials[1]
        for r in ({"kind": "intent", "trial": 1, "segment": 0, "attempt": t.attempt, "length": t.target},
                  {"kind": "submitted", "trial": 1, "segment": 0, "attempt": t.attempt, "job_id": f"j{i}"},
                  {"kind": "job_dead", "trial": 1, "segment": 0, "attempt": t.attempt, "job_id": f"j{i}",
                   "state": "lost", "counts": False}):
            st.apply(r)
    t = st.trials[1]
    assert t.status == "queued" and t.restarts == 0 and t.infra_retries == 0
    # the same death after the job ran counts, whichever master started it
    st.apply({"kind": "intent", "trial": 1, "segment": 0, "attempt": t.attempt, "length": t.target})
    st.apply({"kind": "started", "trial": 1, "segment": 0, "attempt": t.attempt})
    st.apply({"kind": "job_dead", "trial": 1, "segment": 0, "attempt": t.attempt, "state": "failed",
              "counts": True})
    assert t.restarts == 1


def test_a_finished_result_of_an_earlier_attempt_is_applied_when_its_retry_never_ran(tmp_path):
    """submitit's controller was killed, its task went on and finished: the job was declared
    dead and retried, but the retry had not started. The result is valid: applied, once, and
    the retry is cancelled."""
    cfg = sim_cfg(trials=4, failure_rate=0.0, unit_seconds=1000)
    exp = ExpDir.create(tmp_path / "exp")
    m = Master(exp, cfg, progress=lambda s: None)
    m.start()
    m.step()
    t = m.state.trials[1]
    old = (t.segment, t.attempt)
    m._record(JobDead(trial=1, segment=t.segment, attempt=t.attempt, job_id=t.job_id,
                      state="failed", counts=True))
    m.step()  # the retry is submitted (pending)
    retry_job = m.state.trials[1].job_id
    assert m.state.trials[1].status == "pending" and m.state.trials[1].attempt == old[1] + 1
    atomic_write_json(exp.inbox / "late.result.json", {
        "type": "result", "trial": 1, "segment": old[0], "attempt": old[1], "status": "completed",
        "metrics": {"loss": 0.25}, "length": t.target})
    m.step()
    t = m.state.trials[1]
    assert list(t.rung_metrics.values()) == [0.25] and t.status not in ("queued", "pending")
    assert m.backend.states([retry_job])[retry_job].value == "cancelled"
    m.close()
    recs = read_journal(exp.journal)[0]
    assert [r for r in recs if r["kind"] == "result" and r.get("adopted")]
    assert check_invariants(cfg, recs) == []

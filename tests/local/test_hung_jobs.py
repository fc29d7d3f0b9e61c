"""A job the scheduler still runs but that is frozen (SIGSTOP, a hung node) or gone without the
scheduler knowing (its step daemon killed): before, the search waited for it until its time
limit, hours for a warm worker. Its heartbeat stops; the master journals it dead, not counted
against the trial, cancels it, and the trial goes on from its checkpoint. Real jobs on the
local backend; the master driven step by step in this process with a short hung_after_s."""
import os
import signal
import time

import pytest
import yaml

import asha_hpc.master.loop as loop
from asha_hpc.config import load_config
from asha_hpc.master.loop import Master
from asha_hpc.protocol.checkpoints import checkpoint_length, latest_checkpoint
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.protocol.journal import read_journal
from asha_hpc.testing.invariants import check_invariants

from helpers import FREEZABLE_TRAIN


def _one_trial_master(tmp_path, monkeypatch, max_length):
    """A master, driven step by step here, of one trial of FREEZABLE_TRAIN, its jobs taken
    for hung after 10 s without a heartbeat (they beat every 2.5 s)."""
    (tmp_path / "model.py").write_text(FREEZABLE_TRAIN)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "hung", "entrypoint": "model:train", "hung_after_s": 10,
        "searcher": {"name": "random", "metric": "loss", "max_length": max_length,
                     "max_trials": 1},
        "hyperparameters": {"x": 1}, "reproducibility": {"experiment_seed": 1},
        "poll_interval_s": 0.5, "local": {"gpus": [], "max_parallel": 1, "workers": 0}}))
    cfg = load_config(tmp_path / "c.yaml")
    exp = ExpDir.create(tmp_path / "e")
    return cfg, exp, Master(exp, cfg, progress=lambda s: None)


def _freeze_at_its_first_checkpoint_and_finish(cfg, exp, m, timeout_s: float):
    """Drive the master to the search's end; the trial's job is SIGSTOPped (as a hung node
    leaves it: the scheduler runs it) once it published a checkpoint. (its pid, that
    checkpoint's length)."""
    m.start()
    pids = exp.trial_dir(1) / "pids"
    frozen, at = None, None
    deadline = time.time() + timeout_s
    while m.step():
        assert time.time() < deadline, "the search did not end"
        if frozen is None and pids.exists() and latest_checkpoint(exp.checkpoints(1)) is not None:
            frozen = int(pids.read_text().split()[0])
            os.kill(frozen, signal.SIGSTOP)
            at = checkpoint_length(latest_checkpoint(exp.checkpoints(1)))
        m.clock.sleep(cfg.poll_interval_s)
    m.close()
    assert frozen is not None
    return frozen, at


@pytest.mark.slow
def test_a_frozen_job_is_found_by_its_heartbeat_cancelled_and_its_trial_goes_on(tmp_path, monkeypatch):
    cfg, exp, m = _one_trial_master(tmp_path, monkeypatch, max_length=30)
    frozen, at = _freeze_at_its_first_checkpoint_and_finish(cfg, exp, m, 240)
    pids = exp.trial_dir(1) / "pids"
    recs = read_journal(exp.journal)[0]
    assert check_invariants(cfg, recs) == []
    (dead,) = [r for r in recs if r["kind"] == "job_dead"]
    assert dead["hung"].startswith("no heartbeat for ") and dead["counts"] is False
    from asha_hpc.views.status import describe

    assert describe(dead, "loss").startswith(f"trial 1 job {dead['job_id']} hung (no heartbeat for ")
    st = m.state
    assert st.lifecycle == "completed" and st.trials[1].length == 30 and st.trials[1].restarts == 0
    starts = [line.split() for line in pids.read_text().splitlines()]
    # the retry went on from the checkpoint the job had when it froze: killed, it wrote no more
    assert len(starts) == 2 and int(starts[1][1]) == at > 0
    with pytest.raises(ProcessLookupError):  # cancelled: the frozen process is gone
        for _ in range(50):
            os.kill(frozen, 0)
            time.sleep(0.2)


def test_who_is_judged_hung(tmp_path, monkeypatch):
    """Only running jobs whose own heartbeat stopped hung_after_s ago: not a job that never beat (a
    release without heartbeats), not one whose last beat is an earlier job's, and none at all
    when most running jobs went quiet at once (the shared file system, seen from here), nor
    while this master itself was stalled."""
    from asha_hpc.backends.base import JobState
    from asha_hpc.master.state import RUNNING, TrialState

    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "hung", "entrypoint": "model:train", "hung_after_s": 100,
        "searcher": {"name": "random", "metric": "loss", "max_length": 4, "max_trials": 8},
        "hyperparameters": {"x": 1}, "local": {"gpus": [], "max_parallel": 8}}))
    cfg = load_config(tmp_path / "c.yaml")
    exp = ExpDir.create(tmp_path / "e")
    m = Master(exp, cfg, progress=lambda s: None)
    now = time.time()
    exp.lease.write_text("{}")  # the file system's "now", as the master's lease renewal sets it

    def trial(tid, beat_ago=None, started_ago=500.0):
        t = TrialState(id=tid, bracket=0, hparams={}, status=RUNNING, job_id=f"local:{tid}",
                       attempt_started=now - started_ago)
        if beat_ago is not None:
            run = exp.run_dir(tid, t.key)
            run.mkdir(parents=True)
            (run / "heartbeat").write_text("")
            os.utime(run / "heartbeat", (now - beat_ago, now - beat_ago))
        return t

    def judged(trials, awake_ago=1000.0):
        look_s = min(loop.HUNG_LOOK_S, cfg.hung_after_s / 8)  # how often the master looks
        m._hung_looked, m._awake_since = now - look_s - 1.0, now - awake_ago
        states = {t.job_id: JobState.RUNNING for t in trials}
        return sorted(r.trial for r, _ in m._hung(trials, states))

    frozen, alive, silent, earlier = trial(1, 300), trial(2, 5), trial(3), trial(4, 800, 400)
    others = [trial(i, 5) for i in range(5, 9)]
    assert judged([frozen, alive, silent, earlier] + others) == [1]
    assert judged([frozen, alive, silent, earlier] + others, awake_ago=50) == []
    assert judged([frozen, trial(10, 300), trial(11, 300), alive]) == []  # most at once


@pytest.mark.slow
def test_a_hung_job_that_wakes_publishes_nothing_beside_its_retry(tmp_path, monkeypatch):
    """Slurm's cancel of a frozen job sends SIGCONT, then SIGTERM, and the kill only after
    KillWait: the woken job trained on and checkpointed into the trial's folder beside the
    attempt that retries it. The master marks the attempt superseded before the kill; the job
    that wakes publishes no checkpoint and no result, and ends."""
    cfg, exp, m = _one_trial_master(tmp_path, monkeypatch, max_length=60)
    def cancel_as_slurm_does(job_ids):  # the job wakes, told to stop; nothing kills it
        pid = int((exp.trial_dir(1) / "pids").read_text().split()[0])  # the frozen one's
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGTERM)

    monkeypatch.setattr(m.backend, "kill", cancel_as_slurm_does)
    woken, at = _freeze_at_its_first_checkpoint_and_finish(cfg, exp, m, 300)
    recs = read_journal(exp.journal)[0]
    assert check_invariants(cfg, recs) == []
    (dead,) = [r for r in recs if r["kind"] == "job_dead"]
    assert dead["hung"]
    marker = exp.run_dir(1, "t00001-s000-a00") / "superseded"
    assert marker.exists() and "no heartbeat for" in marker.read_text()
    # the woken job published nothing after it froze: no checkpoint (its save raised before the
    # rename), no result of its attempt, and it ended by itself
    saved_by_it = [int(e) for p, e in (line.split() for line in
                                       (exp.trial_dir(1) / "saves").read_text().splitlines())
                   if int(p) == woken]
    assert max(saved_by_it) == at
    assert not [r for r in recs if r["kind"] == "result" and r["attempt"] == 0]
    with pytest.raises(ProcessLookupError):
        for _ in range(100):
            os.kill(woken, 0)
            time.sleep(0.2)
    logs = "".join(p.read_text(errors="replace") for p in exp.jobs.rglob("*") if p.is_file()
                   and p.suffix in (".err", ".out", ".log"))
    assert "(t00001-s000-a00) for dead (no heartbeat for" in logs
    st = m.state
    assert st.lifecycle == "completed" and st.trials[1].length == 60

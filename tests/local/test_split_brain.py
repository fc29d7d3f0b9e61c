"""Split brain: a master frozen past its lease while another takes over (issue 16, point 1).

The stale master must not damage or hide a record of the new one: it stops at its next write
(the lease is its fence), and records it wrote in the instant between its check and its write
carry its old epoch and are dropped on replay."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from asha_hpc.config import load_config
from asha_hpc.errors import LeaseHeldError
from asha_hpc.master.loop import Master
from asha_hpc.master.state import replay
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.protocol.journal import Journal, read_journal
from asha_hpc.protocol.records import JobDead, Stopped
from asha_hpc.testing.invariants import check_invariants

from helpers import cli, make_experiment, sim_cfg


def _drive(m: Master, steps: int) -> None:
    for _ in range(steps):
        if not m.step():
            return
        m.clock.sleep(m.cfg.poll_interval_s)


def test_late_records_of_a_superseded_master_are_dropped_and_the_new_ones_kept(tmp_path):
    cfg = sim_cfg(trials=30, failure_rate=0.0)
    exp = ExpDir.create(tmp_path / "exp")
    a = Master(exp, cfg, progress=lambda s: None)
    a.start()
    _drive(a, 12)
    seen_by_b = len(read_journal(exp.journal)[0])
    b = Master(exp, cfg, backend=a.backend, force=True, progress=lambda s: None)  # A froze
    b.start()
    assert b.lease.epoch == a.lease.epoch + 1
    # A wakes up: at its next write the fence stops it, before a byte reaches the journal
    size = exp.journal.stat().st_size
    with pytest.raises(LeaseHeldError, match="taken over"):
        a._record(Stopped(reason="late"))
    assert exp.journal.stat().st_size == size
    # A froze between its check and its write: its records land all the same
    a.journal.fence = None
    live = b.state.live()[0]
    a._record(JobDead(trial=live.id, segment=live.segment, attempt=live.attempt,
                      job_id=live.job_id, state="FAILED", counts=True),
              Stopped(reason="late"))
    a.journal.close()
    while b.step():
        b.clock.sleep(cfg.poll_interval_s)
    b.close()
    recs, _, warns = read_journal(exp.journal)
    assert warns == [f"{exp.journal}: ignored 2 record(s) that a superseded master wrote after "
                     f"another master took the experiment over"]
    assert len(recs) > seen_by_b and all(r.get("epoch") in (1, 2) for r in recs)
    st = replay(cfg, recs)
    assert st.lifecycle == "completed" and check_invariants(cfg, recs) == []
    assert st.trials[live.id].restarts == 0  # A's late job_dead never counted
    assert st.searcher.snapshot() == b.state.searcher.snapshot()  # replay == what B knew


def test_a_master_frozen_while_renewing_its_lease_never_takes_it_back(tmp_path, monkeypatch):
    """Master A froze inside its heartbeat, after its check and before its rename; B took the
    lease over and journaled. A wakes and its rename lands: the lease file is A's again. A
    took the search back from there, with what it knew before the freeze (records replay
    dropped, results it consumed lost, a checkpoint B's records need removed), and B stopped.
    Now the journal, grown since A's last write, stops A before it writes or submits, and B
    takes its lease back and finishes."""
    from asha_hpc.protocol.expdir import atomic_write_json

    cfg = sim_cfg(trials=30, failure_rate=0.0)
    exp = ExpDir.create(tmp_path / "exp")
    a = Master(exp, cfg, progress=lambda s: None)
    a.start()
    _drive(a, 12)
    b = Master(exp, cfg, backend=a.backend, force=True, progress=lambda s: None)  # A froze
    b.start()
    _drive(b, 3)
    atomic_write_json(a.lease.path, a.lease._body(), durable=False)  # A's rename, late
    assert a.lease.holder()["token"] == a.lease.token
    size = exp.journal.stat().st_size
    with pytest.raises(LeaseHeldError, match="the journal changed since this master's last write"):
        a._record(Stopped(reason="late"))
    with pytest.raises(LeaseHeldError, match="the journal changed"):
        a._fence()  # what A checks before it submits a job, consumes a result, removes files
    import asha_hpc.master.loop as loop

    monkeypatch.setattr(loop, "removable_checkpoints", lambda *a, **k: [1])  # what A would remove
    with pytest.raises(LeaseHeldError, match="the journal changed"):
        a._retain(force=True)  # before it removes checkpoints B's trials may need
    monkeypatch.undo()
    assert exp.journal.stat().st_size == size
    b.lease.check()  # B's next look: A's lease is of an older epoch: taken back
    assert b.lease.holder()["token"] == b.lease.token
    with pytest.raises(LeaseHeldError, match="taken over"):
        a.lease.heartbeat()
    assert b.lease.holder()["token"] == b.lease.token
    a.journal.close()
    while b.step():
        b.clock.sleep(cfg.poll_interval_s)
    b.close()
    recs, _, warns = read_journal(exp.journal)
    assert warns == [] and check_invariants(cfg, recs) == []
    st = replay(cfg, recs)
    assert st.lifecycle == "completed"
    assert st.searcher.snapshot() == b.state.searcher.snapshot()


def test_late_record_between_takeover_and_first_read_is_kept_as_the_new_master_saw_it(tmp_path):
    p = tmp_path / "journal.jsonl"
    a = Journal(p, epoch=1)
    a.append([{"kind": "a1"}, {"kind": "a2"}])
    a.append([{"kind": "a3"}])  # written after B took the lease, before B read the journal
    b = Journal(p, epoch=2)
    assert b.max_epoch == 1 and [r["kind"] for r in b.records] == ["a1", "a2", "a3"]
    b.append([{"kind": "b4"}])
    a.append([{"kind": "a4-late"}])  # same seq as b4, older epoch: B never saw it
    b.append([{"kind": "b5"}])
    recs, _, warns = read_journal(p)
    assert [r["kind"] for r in recs] == ["a1", "a2", "a3", "b4", "b5"]
    assert [r["seq"] for r in recs] == [1, 2, 3, 4, 5] and len(warns) == 1


def test_journal_of_the_previous_release_without_epochs_resumes(tmp_path):
    """A journal written before fencing (no ``epoch`` in any record) replays as epoch 0 and
    a resumed master continues it with epoch 1."""
    cfg = sim_cfg(trials=20, failure_rate=0.0)
    exp = ExpDir.create(tmp_path / "exp")
    m = Master(exp, cfg, progress=lambda s: None)
    m.start()
    _drive(m, 8)
    m.close()
    old = tmp_path / "old.jsonl"  # the same records as the previous release wrote them
    Journal(old).append([{k: v for k, v in r.items() if k not in ("epoch", "seq", "config_hash")}
                         for r in read_journal(exp.journal)[0]])
    os.replace(old, exp.journal)
    assert all("epoch" not in r for r in read_journal(exp.journal)[0])
    m = Master(exp, cfg, progress=lambda s: None)
    st = m.run()
    recs, _, warns = read_journal(exp.journal)
    assert st.lifecycle == "completed" and warns == [] and check_invariants(cfg, recs) == []
    assert {r.get("epoch") for r in recs} == {None, 1}


def _unshare_ok() -> bool:
    try:
        return subprocess.run(["unshare", "--uts", "true"], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not _unshare_ok(), reason="needs `unshare --uts` (root or user namespaces) "
                    "to run the second master under another hostname")
def test_frozen_master_and_a_second_master_on_another_host(tmp_path):
    """Master A (this host) is frozen past its lease; master B on host login2 takes over and
    finishes; A, woken, stops at its next write with one line. The journal is whole."""
    cfg_path = make_experiment(tmp_path, searcher={"max_trials": 6, "max_length": 16},
                               hp={"sleep": 0.05})
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    a = subprocess.Popen([sys.executable, "-m", "asha_hpc.cli", "run", str(cfg_path),
                          "--exp-dir", str(run)], stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 60
        while len(read_journal(run / "journal.jsonl")[0]) < 8:
            assert time.time() < deadline and a.poll() is None, "master A did not start"
            time.sleep(0.05)
        a.send_signal(signal.SIGSTOP)
        lease = json.loads((run / "master.json").read_text())
        lease["heartbeat"] -= 3600  # frozen for an hour: past any lease timeout
        (run / "master.json").write_text(json.dumps(lease))
        os.utime(run / "master.json", (time.time() - 3600, time.time() - 3600))
        b = subprocess.Popen(["unshare", "--uts", "sh", "-c",
                              f"hostname login2 && exec {sys.executable} -m asha_hpc.cli resume {run}"],
                             stderr=subprocess.PIPE, text=True, env=env)
        while not any(r.get("epoch") == 2 for r in read_journal(run / "journal.jsonl")[0]):
            assert time.time() < deadline + 60 and b.poll() is None, b.stderr.read() if b.stderr else ""
            time.sleep(0.05)
        a.send_signal(signal.SIGCONT)
        _, a_err = a.communicate(timeout=60)
        _, b_err = b.communicate(timeout=120)
    finally:
        if a.poll() is None:
            a.send_signal(signal.SIGCONT)
            a.kill()
    assert b.returncode == 0, b_err
    assert "took over a stale lease" in b_err and "best trial" in b_err
    assert a.returncode == 1 and "Traceback" not in a_err
    assert a_err.strip().splitlines()[-1].startswith("asha-hpc: error: ")
    assert "taken over by host login2" in a_err
    recs, _, warns = read_journal(run / "journal.jsonl")
    assert warns == []
    cfg = load_config(run / "experiment.yaml")
    assert check_invariants(cfg, recs) == [] and replay(cfg, recs).lifecycle == "completed"
    r = cli("status", run)
    assert "completed" in r.stdout


def _unshare_pid_ok() -> bool:
    try:
        return subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                              capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not _unshare_pid_ok(), reason="needs `unshare --pid` (root or user "
                    "namespaces) to run the second master in a container of the same host name")
def test_a_second_master_in_another_pid_namespace_of_the_same_host_is_refused(tmp_path):
    """Master A runs on this host; `resume` in a container that shares the host's name but not
    its pids (docker --network host, a pid namespace) cannot see A's pid. It must not read
    that as A being gone: A's heartbeat is fresh, so it refuses, naming A."""
    cfg_path = make_experiment(tmp_path, searcher={"max_trials": 6, "max_length": 16},
                               hp={"sleep": 0.2})
    run = tmp_path / "run"
    a = subprocess.Popen([sys.executable, "-m", "asha_hpc.cli", "run", str(cfg_path),
                          "--exp-dir", str(run)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not (run / "master.json").exists():
            assert time.time() < deadline and a.poll() is None, "master A did not start"
            time.sleep(0.05)
        b = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-m",
                            "asha_hpc.cli", "resume", str(run)],
                           capture_output=True, text=True, timeout=60)
        assert b.returncode == 1, b.stderr
        assert f"another master holds this experiment (host {socket.gethostname()}, pid {a.pid}" \
            in b.stderr
        assert a.poll() is None  # A goes on, its lease untouched
        _, a_err = a.communicate(timeout=120)
    finally:
        if a.poll() is None:
            a.kill()
    assert a.returncode == 0 and "taken over" not in a_err, a_err
    recs, _, warns = read_journal(run / "journal.jsonl")
    assert warns == [] and {r["epoch"] for r in recs} == {1}


class _Frozen(BaseException):
    """The master stops inside the backend's submission (a hung NFS under sbatch)."""


def test_a_submission_that_lands_after_its_master_was_replaced_runs_nothing(tmp_path, monkeypatch):
    """A master frozen inside its submission past its lease: the master that takes over finds
    no job for the intent and retries the segment as a new attempt. The frozen master's
    submission then lands; its job trained beside the retry, in the same trial's folder. Now
    the attempt it runs is marked superseded when the retry is decided, and the job ends at its
    start, with nothing run or published. Real jobs on the local backend."""
    path = make_experiment(tmp_path, searcher={"name": "random", "max_trials": 1,
                                               "max_length": 4, "max_concurrent_trials": 1},
                           local={"gpus": [], "max_parallel": 2, "workers": 0})  # a job a segment
    cfg = load_config(path)
    exp = ExpDir.create(tmp_path / "exp")
    a = Master(exp, cfg, progress=lambda s: None)
    late: list = []

    def frozen_inside_the_submission(specs):
        late.extend(specs)
        raise _Frozen

    monkeypatch.setattr(a.backend, "submit", frozen_inside_the_submission)
    a.start()
    with pytest.raises(_Frozen):
        _drive(a, 5)
    assert [s.key for s in late] == ["t00001-s000-a00"]
    b = Master(exp, cfg, force=True, progress=lambda s: None)  # A is taken for dead
    b.start()
    monkeypatch.undo()
    (jid,) = a.backend.submit(late)  # A wakes: its submission lands
    while b.step():
        b.clock.sleep(cfg.poll_interval_s)
    b.close()
    deadline = time.time() + 60
    while not a.backend.states([jid])[jid].terminal:
        assert time.time() < deadline, "the late job did not end"
        a.backend.tick()
        time.sleep(0.2)
    recs, _, warns = read_journal(exp.journal)
    assert check_invariants(cfg, recs) == []
    (failed,) = [r for r in recs if r["kind"] == "submit_failed"]
    assert failed["attempt"] == 0 and "not submitted before the master stopped" in failed["error"]
    assert [r["attempt"] for r in recs if r["kind"] == "result"] == [1]
    assert sorted(p.name for p in exp.run_dir(1, "t00001-s000-a00").iterdir()) == ["superseded"]
    logs = "".join(p.read_text(errors="replace") for p in exp.jobs.rglob("*") if p.is_file()
                   and p.suffix in (".err", ".out", ".log"))
    assert "(t00001-s000-a00) for dead (not submitted before the master stopped; retried) " \
           "before it started: this job does nothing and ends" in logs
    assert b.state.lifecycle == "completed"

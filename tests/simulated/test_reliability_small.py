"""Issue 16, points 6 and 8: a checkpoint without its manifest, `status | head`, a failed
experiment's live trials, rejected files and stale leases that must not pile up."""
import json
import os
import subprocess
import sys
import time

from asha_hpc.job.trial import latest_checkpoint
from asha_hpc.master import loop as master_mod
from asha_hpc.master.lease import KEEP_STALE, Lease
from asha_hpc.master.loop import Master
from asha_hpc.master.state import replay
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.views.status import export_rows

from helpers import cli, make_experiment, sim_cfg


def _checkpoint(root, name, files):
    p = root / name
    p.mkdir(parents=True)
    for f, data in files.items():
        (p / f).write_text(data)
    (p / "MANIFEST.json").write_text(json.dumps({"files": {f: len(d) for f, d in files.items()}}))
    return p


def test_a_checkpoint_without_its_manifest_is_warned_about_and_the_previous_used(tmp_path, capsys):
    root = tmp_path / "checkpoints"
    old = _checkpoint(root, "t00001-s000-a00-0001", {"w.pt": "old"})
    new = _checkpoint(root, "t00001-s001-a00-0001", {"w.pt": "new"})
    (new / "MANIFEST.json").unlink()  # e.g. a copy that skipped it
    assert latest_checkpoint(root) == old
    err = capsys.readouterr().err
    assert f"skipping incomplete checkpoint {new} (manifest missing)" in err and f"resuming from {old}" in err
    (old / "w.pt").write_text("truncated!")
    assert latest_checkpoint(root) is None
    assert "training starts from the beginning" in capsys.readouterr().err


def test_a_users_own_file_among_the_checkpoints_is_named_not_taken_for_a_checkpoint(tmp_path,
                                                                                    capsys):
    """A script that keeps its own best.pt in trial.dir/checkpoints/: it is no checkpoint of
    asha_hpc's (not a torn one to skip), and retention would remove it: the warning says where
    such files go, and the latest checkpoint is found as before."""
    root = tmp_path / "checkpoints"
    ckpt = _checkpoint(root, "t00001-s000-a00-0001", {"w.pt": "w"})
    (root / "best.pt").write_text("mine")
    assert latest_checkpoint(root) == ckpt
    err = capsys.readouterr().err
    assert f"{root / 'best.pt'}: not a checkpoint folder of asha_hpc's" in err
    assert "keep your own files in the trial's folder (trial.dir)" in err
    assert "incomplete" not in err
    (root / "t00001-s000-a00-0001").rename(tmp_path / "gone")
    assert latest_checkpoint(root) is None


def test_status_piped_into_head_ends_quietly(tmp_path):
    cfg = make_experiment(tmp_path, searcher={"max_trials": 3})
    cli("run", cfg, "--exp-dir", tmp_path / "run", "--backend", "simulated")
    r = subprocess.run(f"{sys.executable} -m asha_hpc.cli status {tmp_path / 'run'} | head -1; "
                       f"exit ${{PIPESTATUS[0]}}", shell=True, executable="/bin/bash",
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0 and r.stderr == "" and len(r.stdout.splitlines()) == 1


def test_a_failed_experiment_lists_no_trial_as_running_or_pending():
    cfg = sim_cfg(trials=4)
    recs = [{"kind": "init", "seed": 5}]
    st = replay(cfg, recs)
    for t in list(st.trials.values()):
        recs.append({"kind": "intent", "trial": t.id, "segment": 0, "attempt": 0, "length": t.target})
    recs.append({"kind": "started", "trial": 1, "segment": 0, "attempt": 0})
    recs.append({"kind": "aborted", "state": "failed", "message": "3 trials failed"})
    st = replay(cfg, recs)
    c = st.counts()
    assert c["running"] == c["pending"] == c["queued"] == 0 and c["interrupted"] == len(st.trials)
    assert {r["state"] for r in export_rows(st)} == {"interrupted"}


def test_rejected_inbox_files_do_not_pile_up(tmp_path, monkeypatch):
    monkeypatch.setattr(master_mod, "KEEP_REJECTED", 3)
    exp = ExpDir.create(tmp_path / "exp")
    for i in range(10):
        (exp.inbox / f"junk-{i}.json").write_text("{not json")
    m = Master(exp, sim_cfg(trials=2, failure_rate=0.0), progress=lambda s: None)
    m.start()
    m.step()
    m.close()
    names = os.listdir(exp.inbox)
    assert len([n for n in names if n.startswith(".rejected-")]) == 3
    assert not [n for n in names if n.startswith("junk")]


def test_stale_leases_kept_aside_are_bounded(tmp_path):
    path = tmp_path / "master.json"
    for i in range(KEEP_STALE + 4):
        stale = tmp_path / f"master.json.stale-{1000 + i}"
        stale.write_text("{}")
        os.utime(stale, (1000 + i, 1000 + i))
    path.write_text(json.dumps({"host": "gone-node", "pid": 1, "token": "x",
                                "heartbeat": time.time() - 9999}))
    os.utime(path, (time.time() - 9999, time.time() - 9999))  # and the file as old
    assert "no heartbeat" in Lease(path, timeout_s=60).acquire()
    assert len([n for n in os.listdir(tmp_path) if n.startswith("master.json.stale-")]) == KEEP_STALE


def test_a_job_pickle_submitit_never_moved_is_removed_by_the_next_master(tmp_path):
    from asha_hpc.backends.local import LocalBackend
    from asha_hpc.config import LocalConfig

    jobs = tmp_path / "jobs"
    jobs.mkdir()
    leaked, in_flight = jobs / ("a" * 32 + ".pkl"), jobs / ("b" * 32 + ".pkl")
    kept = jobs / "123_submitted.pkl"
    for p in (leaked, in_flight, kept):
        p.write_bytes(b"x")
    os.utime(leaked, (time.time() - 600, time.time() - 600))
    os.utime(kept, (time.time() - 600, time.time() - 600))
    LocalBackend(tmp_path, LocalConfig())
    assert not leaked.exists() and in_flight.exists() and kept.exists()


def test_a_local_job_record_whose_pid_now_belongs_to_a_later_process_is_not_that_job(tmp_path):
    """A resumed master reads each local job's record (its key, pid, GPUs). When that pid is
    alive but its process started after the record was written (the pid came back: a reboot,
    another search's job), the job is gone: not running, holding no GPU, and cancel leaves the
    other process alone. Written just after that process started, the same record is the job."""
    import signal

    from asha_hpc.backends.base import JobState
    from asha_hpc.backends.local import LOCAL_PREFIX, LocalBackend, record_path
    from asha_hpc.config import LocalConfig

    # a process that looks like a submitit local job, in its own session (cancel signals a group)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "submitit"],
                             start_new_session=True)
    try:
        jobs = tmp_path / "jobs"
        jobs.mkdir()
        jid = LOCAL_PREFIX + "t00001-s000-a00"
        record = record_path(jobs, jid)
        record.write_text(json.dumps({"key": "t00001-s000-a00", "pid": other.pid, "gpus": ["0"]}))
        os.utime(record, (time.time() - 3600, time.time() - 3600))  # written an hour ago
        backend = LocalBackend(tmp_path, LocalConfig(gpus=["0"], gpus_per_trial=1))
        assert backend.holding == {}
        assert backend.states([jid]) == {jid: JobState.FAILED}
        backend.cancel([jid])
        time.sleep(0.3)
        assert other.poll() is None, "cancel signalled a process that is not this job"

        os.utime(record, None)  # written now: after that process started, so it is the job
        backend = LocalBackend(tmp_path, LocalConfig(gpus=["0"], gpus_per_trial=1))
        assert backend.holding == {jid: ["0"]}
        assert backend.states([jid]) == {jid: JobState.RUNNING}
        backend.cancel([jid])
        assert other.wait(timeout=10) == -signal.SIGTERM
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()

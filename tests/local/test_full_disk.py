"""A full disk or quota (issue 16, point 2), on a real small tmpfs: a fault of the machine.

Jobs that hit it count against nothing and fail no trial; the master stops handing out work,
says once which filesystem is full, and goes on when there is room. The master's own ENOSPC
is one line and a clean stop that ``resume`` continues."""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from asha_hpc.config import load_config
from asha_hpc.errors import JournalFull, MasterDiskFull
from asha_hpc.master.loop import Master
from asha_hpc.protocol.diskfull import DiskFull, disk_full_in, free_bytes
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.protocol.journal import Journal, read_journal

from helpers import cli, final_state, make_experiment, mount_tmpfs

BIG_CHECKPOINTS = '''
import json, os, time

def train(trial):
    epoch = 0
    if trial.latest_checkpoint:
        epoch = json.loads((trial.latest_checkpoint / "state.json").read_text())["epoch"]
    for segment in trial.segments():
        while epoch < segment.length:
            time.sleep(trial.hparams["sleep"])
            epoch += 1
        with trial.save_checkpoint() as path:
            (path / "weights.bin").write_bytes(os.urandom(3 << 20))
            (path / "state.json").write_text(json.dumps({"epoch": epoch}))
        segment.report(loss=(trial.hparams["x"] - 0.3) ** 2 + 1.0 / (1 + epoch))
'''


@pytest.fixture
def small_fs(tmp_path):
    """A 12 MiB tmpfs (root only: skipped with the reason otherwise)."""
    fs = tmp_path / "fs"
    mount_tmpfs(fs, "12m")
    yield fs
    # the tmpfs and the experiment on it go at the unmount: a copy next to it (pytest keeps the
    # last runs' tmp folders) is what a failed run's journal can be read from
    try:
        shutil.copytree(fs, tmp_path / "fs_kept", symlinks=True, dirs_exist_ok=True)
    except (shutil.Error, OSError):  # a job of a failed test still writing: keep what was copied
        pass
    subprocess.run(["umount", "-l", str(fs)], check=False)


def _experiment(tmp_path, trials, sleep):
    cfg = make_experiment(tmp_path, searcher={"max_trials": trials, "max_length": 16},
                          hp={"sleep": sleep})
    (tmp_path / "model.py").write_text(BIG_CHECKPOINTS)
    return cfg


def _trials_untouched(run):
    cfg, st = final_state(run)
    assert st.lifecycle == "completed"
    assert [t.id for t in st.trials.values() if t.status == "failed"] == []
    recs = read_journal(run / "journal.jsonl")[0]
    restarted = [t.id for t in st.trials.values() if t.restarts]
    why = [r for r in recs if r.get("trial") in restarted
           and (r["kind"] == "job_dead" or r["kind"] == "result" and r.get("status") != "completed")]
    assert restarted == [], f"restarted {restarted}: {why}"
    return recs


def test_jobs_on_a_full_disk_pause_the_search_until_there_is_room(tmp_path, small_fs):
    cfg = _experiment(tmp_path, trials=6, sleep=0.01)
    run = small_fs / "run"
    master = subprocess.Popen([sys.executable, "-m", "asha_hpc.cli", "run", str(cfg),
                               "--exp-dir", str(run)], stderr=subprocess.PIPE, text=True)
    lines = []

    def read():
        assert master.stderr is not None
        for line in master.stderr:
            lines.append(line)
            if "no space left on this filesystem" in line:  # the operator raises the limit
                subprocess.run(["mount", "-o", "remount,size=64m", str(small_fs)], check=True)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        master.wait(timeout=240)
    finally:
        if master.poll() is None:
            master.kill()
    reader.join(5)
    err = "".join(lines)
    assert master.returncode == 0, err
    full = [x for x in lines if "no space left on this filesystem" in x]
    assert len(full) == 1 and str(small_fs) in full[0] and "goes on by itself" in full[0]
    assert "there is room again" in err and "Traceback" not in err
    recs = _trials_untouched(run)
    assert [r for r in recs if r["kind"] == "result" and r.get("disk_full")]  # it did fill


def test_status_of_a_master_stopped_while_the_disk_is_full_says_why_nothing_starts(tmp_path,
                                                                                   small_fs):
    cfg = _experiment(tmp_path, trials=6, sleep=0.01)
    # the checkpoints on the small filesystem, the experiment beside it: the jobs meet the full
    # disk, and the master's own writes (the journal that records it) do not race them there
    raw = yaml.safe_load(cfg.read_text())
    raw["checkpoint_storage"] = {"folder": str(small_fs / "checkpoints")}
    cfg.write_text(yaml.safe_dump(raw))
    run = tmp_path / "run"
    log = open(tmp_path / "master.err", "w+")
    master = subprocess.Popen([sys.executable, "-m", "asha_hpc.cli", "run", str(cfg),
                               "--exp-dir", str(run)], stderr=log)
    deadline = time.time() + 120
    try:
        while not [r for r in read_journal(run / "journal.jsonl")[0] if r.get("disk_full")]:
            assert time.time() < deadline and master.poll() is None, log.read()
            time.sleep(0.1)
        running = cli("status", run).stdout  # the master still runs: it goes on by itself
        assert "disk full: trial " in running and "the master goes on by itself" in running
        master.send_signal(signal.SIGINT)  # the user stops it, to come back later
        master.wait(timeout=60)
    finally:
        if master.poll() is None:
            master.kill()
    out = cli("status", run).stdout
    line = [x for x in out.splitlines() if x.startswith("disk full: ")]
    assert len(line) == 1, out
    assert "no space left" in line[0] and str(small_fs) in line[0]
    assert f"free space, then `asha-hpc resume {run}`" in line[0]
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_fs)], check=True)
    cli("resume", run, timeout=240)
    _trials_untouched(run)
    assert "disk full" not in cli("status", run).stdout


def test_a_save_cut_short_by_a_full_disk_is_no_room_when_it_is_removed(tmp_path, small_fs):
    """Checkpoints of 5 MiB on 12 MiB, two trials at a time: a save that fails removes what it
    had written, and that freed space looked like room again. The search started segments
    again and again, each retrained and cut short at its save, and counted nothing (a hostile
    user's 20 MiB tmpfs: 5 rounds in 1.5 minutes). Now room is twice the checkpoint a job could
    not write: the search waits until the operator makes room, then completes."""
    cfg = _experiment(tmp_path, trials=6, sleep=0.01)
    (tmp_path / "model.py").write_text(BIG_CHECKPOINTS.replace("3 << 20", "5 << 20"))
    run = small_fs / "run"
    master = subprocess.Popen([sys.executable, "-m", "asha_hpc.cli", "run", str(cfg),
                               "--exp-dir", str(run)], stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(master.stderr or []), daemon=True).start()
    try:
        deadline = time.time() + 60
        while not any("no space left on this filesystem" in x for x in lines):
            assert time.time() < deadline and master.poll() is None, "".join(lines)
            time.sleep(0.2)
        time.sleep(8)  # jobs cut short go on failing their saves, removing what they wrote
        # journaled, or waiting in the inbox where the master's own write met the full disk
        # first (it waits for room, and the master that follows reads them)
        full = {(r["trial"], r["segment"], r["attempt"]): r
                for r in [r for r in read_journal(run / "journal.jsonl")[0]
                          if r["kind"] == "result" and r.get("disk_full")]
                + _waiting_disk_full(run)}
        assert not any("there is room again" in x for x in lines), "".join(lines)
        # one per trial running then; of two saves that fill the disk together, one may stop
        # after less than a MiB, or a job meet it outside a save (need 0)
        assert 1 <= len(full) <= 2, full
        assert max(r["disk_full"]["need"] for r in full.values()) > 1 << 20, full
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_fs)], check=True)
        master.wait(timeout=180)
    finally:
        if master.poll() is None:
            master.kill()
    err = "".join(lines)
    assert master.returncode == 0 and "there is room again" in err, err
    _trials_untouched(run)


def _waiting_disk_full(run: Path) -> list[dict]:
    """The disk-full results in the inbox, not journaled yet."""
    out = []
    for f in (run / "inbox").glob("*.result.json"):
        try:
            body = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(body, dict) and body.get("disk_full"):
            out.append(body)
    return out


@pytest.mark.parametrize("then", ["room", "pause", "stop"])
def test_the_masters_own_full_disk_is_one_line_and_the_search_goes_on_once_there_is_room(
        tmp_path, small_fs, then):
    """The filesystem filled to the last byte under a running search: the master's own writes
    fail. It stops there (nothing lost), says once which filesystem is full, and waits, holding
    the search (``status`` shows its master, and why nothing starts, though nothing could be
    journaled); once the operator makes room a master resumes the search from its journal by
    itself: no trial is failed or restarted, and no `resume` by hand is needed. A `pause`
    asked while it waits is what the search does once there is room. A master stopped while
    it waits (Ctrl-C) leaves ``status`` saying why, until `resume`."""
    cfg = _experiment(tmp_path, trials=6, sleep=0.05)
    run = small_fs / "run"
    code = ("import sys, asha_hpc.protocol.journal as j; j.FULL_WAIT_S = 1.0; "  # no 30 s wait for room
            "from asha_hpc.cli import main; sys.exit(main(sys.argv[1:]))")
    log = open(tmp_path / "master.err", "w+")  # not a pipe: its jobs (waiting for room) keep theirs
    master = subprocess.Popen([sys.executable, "-c", code, "run", str(cfg), "--exp-dir", str(run)],
                              stderr=log)
    try:
        deadline = time.time() + 60
        while not [r for r in read_journal(run / "journal.jsonl")[0] if r["kind"] == "result"]:
            assert time.time() < deadline and master.poll() is None, "no result came"
            time.sleep(0.05)
        ballast = small_fs / f"ballast-{uuid.uuid4().hex}"
        with open(ballast, "wb", buffering=0) as f:  # keep the filesystem full to the last byte
            deadline = time.time() + 120  # (jobs free their partial checkpoints: take that too)
            # until the master's own write meets it (the lease's heartbeat at the latest; jobs
            # may meet it first), and has said so
            while not (run / "master.waits-for-room").exists() or "no space left on this " \
                    "filesystem" not in (tmp_path / "master.err").read_text():
                assert time.time() < deadline and master.poll() is None, \
                    (tmp_path / "master.err").read_text()
                try:
                    f.write(b"\0" * 4096)
                except OSError as e:
                    assert e.errno == errno.ENOSPC
                    time.sleep(0.01)
            time.sleep(3)  # it waits, and stays
            assert master.poll() is None, (tmp_path / "master.err").read_text()
            status = cli("status", run).stdout
            assert "no master is running" not in status and "[running]" in status, status
            line = [x for x in status.splitlines() if x.startswith("disk full: ")]
            assert len(line) == 1 and "the master's own write" in line[0], status
            assert f"no space left on {small_fs} (" in line[0], line
            assert "the master goes on by itself" in line[0], line
            if then == "stop":
                master.send_signal(signal.SIGINT)
                assert master.wait(timeout=60) == 130
                line = [x for x in cli("status", run).stdout.splitlines()
                        if x.startswith("disk full: ")]
                assert len(line) == 1 and "stopped while it waited for room" in line[0], line
                assert f"then `asha-hpc resume {run}`" in line[0], line
        ballast.unlink()
        if then == "pause":  # asked of the waiting master (the request fits now)
            assert "to pause; not done yet" in cli("pause", run, "--wait", "0").stdout
        # the checkpoints of trials that may still be promoted fill 12 MiB by themselves: the
        # operator raises the limit
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_fs)], check=True)
        if then == "stop":
            assert "best trial" in cli("resume", run, timeout=240).stderr
        master.wait(timeout=240)
    finally:
        if master.poll() is None:
            master.kill()
    assert "disk full" not in cli("status", run).stdout
    err = (tmp_path / "master.err").read_text()
    if then == "stop":
        assert "while it waited for room" in err, err
        _trials_untouched(run)
        return
    assert master.returncode == (75 if then == "pause" else 0) and "Traceback" not in err, err
    full = [x for x in err.splitlines() if "no space left on this filesystem" in x]
    assert len(full) == 1 and str(small_fs) in full[0] and "goes on by itself" in full[0], err
    if then == "pause":
        assert "search paused" in err and "best trial" not in err, err
        assert final_state(run)[1].lifecycle == "stopped"
        assert "best trial" in cli("resume", run, timeout=240).stderr
    else:
        assert "there is room again" in err and "best trial" in err, err
    _trials_untouched(run)


NO_SPACE = '''
import errno

def train(trial):
    for segment in trial.segments():
        raise OSError(errno.ENOSPC, "No space left on device", "/scratch/user/run/ckpt.pt")
'''


def test_the_full_filesystem_is_named_before_the_master_journals_what_filled_it(tmp_path,
                                                                                monkeypatch):
    """The journal is usually on the filesystem a job found full: when its own append then
    waits for room (and stops the master), the operator must already have been told which
    filesystem to free. Here the journal refuses the batch holding the job's result: the master
    stops, naming the journal, for ``run_master`` to wait for room."""
    # a job per segment: warm workers would wait on for their idle timeout after the test,
    # the master having stopped (as it should) without releasing them
    cfg_path = make_experiment(tmp_path, searcher={"max_trials": 2},
                               local={"gpus": [], "max_parallel": 2, "workers": 0})
    (tmp_path / "model.py").write_text(NO_SPACE)
    real_append = Journal.append

    def append(self, recs, sync=True):
        recs = list(recs)
        if any(r.get("disk_full") for r in recs):
            raise JournalFull(f"{self.path}: cannot write the journal (No space left on device)")
        return real_append(self, recs, sync)

    monkeypatch.setattr(Journal, "append", append)
    lines: list[str] = []
    exp = ExpDir.create(tmp_path / "run")
    with pytest.raises(MasterDiskFull) as stopped:  # run_master waits for room, then resumes
        Master(exp, load_config(cfg_path), progress=lines.append).run()
    assert stopped.value.path == str(exp.journal) and not stopped.value.quota
    said = [x for x in lines if "no space left on this filesystem" in x]
    assert len(said) == 1 and "(writing /scratch/user/run/ckpt.pt)" in said[0], lines
    # nothing of the refused batch is in the journal, and its inbox file waits for a resume
    assert not [r for r in read_journal(exp.journal)[0] if r["kind"] == "result"]
    assert [n for n in os.listdir(exp.inbox) if n.endswith(".result.json")]


def test_disk_full_is_told_from_the_trials_own_errors(tmp_path):
    def chained():
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded", "/scratch/u/ckpt.pt")
        except OSError as e:
            raise RuntimeError("saving failed") from e

    with pytest.raises(RuntimeError) as info:
        chained()
    _same(disk_full_in(info.value, tmp_path), {"path": "/scratch/u/ckpt.pt", "quota": True,
                                                "free": free_bytes(Path("/scratch/u/ckpt.pt"))})
    # torch.save flattens the OSError into its own text
    flat = RuntimeError("[enforce fail at inline_container.cc:595] . unexpected pos 64 vs 0: "
                        "No space left on device")
    _same(disk_full_in(flat, tmp_path), {"path": str(tmp_path), "quota": False,
                                         "free": free_bytes(tmp_path)})
    assert disk_full_in(ValueError("loss is nan"), tmp_path) is None
    assert disk_full_in(OSError(errno.EACCES, "Permission denied"), tmp_path) is None


def test_a_librarys_error_that_names_no_cause_is_a_full_disk_when_there_is_no_room(small_fs):
    """numpy says "Not enough free space to write N bytes" (a check before it writes) or "N
    requested and M written" (a short write), with no errno; any error at all on a filesystem
    with no room left is a full disk too, not the trial's bug (which failed the trials for
    good). The same error with room left is the trial's own."""
    import numpy as np

    with pytest.raises(OSError) as big:
        np.save(small_fs / "weights.npy", np.zeros(4 << 20))  # 32 MiB on 12
    assert big.value.errno is None and "No space left" not in str(big.value)
    assert disk_full_in(big.value, small_fs)["path"] == str(small_fs)
    short = OSError("100000 requested and 37872 written")
    assert disk_full_in(short, small_fs)["quota"] is False
    other = RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")
    assert disk_full_in(other, small_fs) is None  # there is room
    with open(small_fs / "filler", "wb", buffering=0) as f:
        with pytest.raises(OSError):
            while True:
                f.write(b"\0" * (1 << 20))
    _same(disk_full_in(other, small_fs), {"path": str(small_fs), "quota": False,
                                          "free": free_bytes(small_fs)})
    (small_fs / "filler").unlink()
    assert disk_full_in(other, small_fs) is None


def _same(found, expected):
    """The same, but for ``free``, read a moment apart while other processes write to that
    filesystem (CI runs the Slurm tests beside these): within 64 MiB."""
    assert found is not None and {k: v for k, v in found.items() if k != "free"} == \
        {k: v for k, v in expected.items() if k != "free"}
    assert (found["free"] is None) == (expected["free"] is None)
    if found["free"] is not None:
        assert abs(found["free"] - expected["free"]) <= 64 << 20


def test_room_again_is_more_free_space_or_for_a_quota_a_probe_that_can_be_written(tmp_path, small_fs):
    ballast = small_fs / "ballast"
    with open(ballast, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    full = DiskFull(small_fs / "run", quota=False, probe_dir=small_fs)
    quota = DiskFull(small_fs / "run", quota=True, probe_dir=small_fs)
    assert full.mount == small_fs and not full.has_room() and not quota.has_room()
    os.truncate(ballast, os.path.getsize(ballast) - (4 << 20))  # 4 MiB freed
    assert full.has_room() and quota.has_room()
    # a job could not write a 3 MiB checkpoint: room is twice that, and a MiB
    full.needs(3 << 20)
    assert full.room_needed() == 7 << 20 and not full.has_room()
    # the number a person can aim for; a quota's room shows only to a probe
    assert "until there is room (at least 7 MiB free). Free space and" in full.line(small_fs)
    assert "until there is room. Free space or raise the quota" in quota.line(small_fs)
    os.truncate(ballast, os.path.getsize(ballast) - (3 << 20))
    assert full.has_room()
    assert [n for n in os.listdir(small_fs) if n.startswith(".space-probe")] == []

"""``launch.run_master``: a master whose own write found the disk full is followed, once there
is room, by a master that resumes the search; the wait is said once, and Ctrl-C during it stops
the master as it stops a running one, with the line that says how to go on. (Fakes for the
masters; the real thing, on a full tmpfs, is tests/local/test_full_disk.py.)"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from asha_hpc import launch
from asha_hpc.errors import LeaseHeldError, MasterDiskFull
from asha_hpc.master import loop
from asha_hpc.protocol.diskfull import DiskFull


class FakeLease:
    def __init__(self, root: Path, taken: bool = False) -> None:
        self.path = root / "master.json"
        self.beats = 0
        self.released = False
        self.taken = taken

    def heartbeat(self) -> None:
        if self.taken:
            raise LeaseHeldError(f"{self.path.parent}: the lease was taken over by host h pid 1")
        self.beats += 1

    def release(self) -> None:
        self.released = True


class FakeMaster:
    def __init__(self, root: Path, fail: bool, disk_full: DiskFull | None = None) -> None:
        self.exp = SimpleNamespace(root=root)
        self.fail = fail
        self.disk_full = disk_full
        self.progress = lambda line: None
        self.state = "done"
        self.resume_hint = None
        self.stopped_by: str | None = None
        self.lease = FakeLease(root)
        self.waits_for_room = False
        self.keep_lease_when_full = False

    def request_stop(self, reason: str) -> None:
        self.stopped_by = reason

    def run(self) -> str:
        if self.fail:
            self.waits_for_room = True
            raise MasterDiskFull(f"{self.exp.root}: No space left on device; the master stops, "
                                 f"nothing is lost: ... `asha-hpc resume {self.exp.root}`",
                                 str(self.exp.root / "journal.jsonl"), quota=False)
        return self.state


def test_a_master_follows_once_there_is_room_and_the_wait_is_said_once(tmp_path, monkeypatch):
    looks = iter([False, False, True])
    monkeypatch.setattr(DiskFull, "has_room", lambda self: next(looks))
    monkeypatch.setattr(loop, "DISK_LOOK_S", 0.0)
    said: list[str] = []
    first = FakeMaster(tmp_path, fail=True)
    first.progress = said.append
    made: list[DiskFull] = []

    def again(full: DiskFull) -> FakeMaster:
        made.append(full)
        return FakeMaster(tmp_path, fail=False, disk_full=full)

    last = launch.run_master(first, again)  # type: ignore[arg-type]
    assert isinstance(last, FakeMaster) and not last.fail and last.state == "done"
    assert len(made) == 1 and made[0].path == tmp_path / "journal.jsonl"
    assert last.progress == said.append  # the new master prints where the first did
    assert len(said) == 1 and "no space left on this filesystem" in said[0], said
    # held while it waited (status shows a master), handed on for the master that follows
    assert first.lease.beats == 3 and first.lease.released and not first.waits_for_room


def test_a_search_taken_over_while_it_waits_is_left_to_the_new_master(tmp_path, monkeypatch):
    """``resume --force`` by a person while the master waited for room: this one stops with
    why, as a running master does, and starts no second master."""
    monkeypatch.setattr(DiskFull, "has_room", lambda self: False)
    said: list[str] = []
    first = FakeMaster(tmp_path, fail=True)
    first.lease.taken = True
    first.progress = said.append
    with pytest.raises(LeaseHeldError, match="the lease was taken over by host h pid 1"):
        launch.run_master(first, lambda full: pytest.fail("a second master"))  # type: ignore[arg-type]
    assert not first.lease.released  # the new master's now


def test_a_wait_a_job_already_said_is_not_said_again(tmp_path, monkeypatch):
    monkeypatch.setattr(DiskFull, "has_room", lambda self: True)
    said: list[str] = []
    first = FakeMaster(tmp_path, fail=True,
                       disk_full=DiskFull(tmp_path / "ckpt", quota=True, probe_dir=tmp_path))
    first.progress = said.append
    got: list[DiskFull] = []
    launch.run_master(first, lambda full: got.append(full) or FakeMaster(tmp_path, False))  # type: ignore[arg-type]
    assert said == [] and got == [first.disk_full]  # the job's (a quota), not a new one


def test_ctrl_c_while_waiting_stops_the_master_as_it_stops_a_running_one(tmp_path, monkeypatch):
    import os
    import signal

    def interrupted(self):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, or Slurm's SIGUSR2 to a master job
        return False

    monkeypatch.setattr(DiskFull, "has_room", interrupted)
    said: list[str] = []
    first = FakeMaster(tmp_path, fail=True)
    first.progress = said.append
    before = signal.getsignal(signal.SIGINT)
    last = launch.run_master(first, lambda full: pytest.fail("no master after Ctrl-C"))  # type: ignore[arg-type]
    assert last is first and first.stopped_by == "SIGINT"  # `run` exits 130, the API "stopped"
    assert said[-1].startswith("master stopped (SIGINT) while it waited for room")
    assert said[-1].endswith(f"Continue with: asha-hpc resume {tmp_path}")
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize("how", ["pause", "cancel"])
def test_a_pause_or_cancel_with_no_room_for_its_request_is_one_line(tmp_path, monkeypatch, how):
    """On a full disk the request file a master reads cannot be written: one line that says so
    and what to do (it was a bare OSError from asha_hpc.pause), the same from the command."""
    import errno

    from asha_hpc.config import parse_config
    from asha_hpc.errors import AshaError
    from asha_hpc.protocol import requests

    cfg = parse_config({"name": "s", "entrypoint": "m:f",
                        "searcher": {"name": "random", "metric": "m", "max_length": 4,
                                     "max_trials": 2},
                        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}}},
                       str(tmp_path))
    exp = launch.create_experiment(cfg, tmp_path / "e")

    def full(exp):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(requests, f"write_{how}_request", full)
    with pytest.raises(AshaError) as said:
        launch.stop_search(exp.root, how, 0.0, in_python=True)
    assert str(said.value).endswith(f"No space left on device: the request to {how} cannot be "
                                    f"written in {exp.root}; free some space (a few KiB) and "
                                    f"{how} again")


def test_pause_and_cancel_of_a_folder_that_holds_no_search_say_so(tmp_path):
    """What a person types as the folder (a typo, spaces, a file, a parent of experiments):
    one AshaError naming it, nothing written there."""
    import tempfile

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    import asha_hpc
    from asha_hpc.errors import AshaError

    names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"),
                    min_size=1, max_size=30).filter(lambda n: n not in (".", ".."))

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(name=names, how=st.sampled_from(["pause", "cancel"]), make=st.sampled_from(["", "dir", "file"]))
    def check(name, how, make):
        # a folder of its own per example: an earlier one may have made the name a file
        target = Path(tempfile.mkdtemp(dir=tmp_path)) / name
        if make == "dir":
            target.mkdir(exist_ok=True)
        elif make == "file":
            target.write_text("x")
        before = sorted(p.name for p in target.iterdir()) if target.is_dir() else None
        with pytest.raises(AshaError) as said:
            getattr(asha_hpc, how)(target, wait_s=0)
        assert str(target.resolve()) in str(said.value)
        if before is not None:
            assert sorted(p.name for p in target.iterdir()) == before

    check()


@pytest.mark.parametrize("backend", ["slurm", "local"])
def test_a_slurm_search_in_a_machines_memory_is_warned_of_at_once(tmp_path, capsys, backend):
    """An experiment folder on tmpfs (the login node's /tmp on many clusters, /dev/shm) is
    never shared with the compute nodes: said when the folder is made, before any job waits
    in the queue to die; a local search there is fine."""
    import shutil
    import uuid

    from asha_hpc.config import parse_config
    from asha_hpc.protocol.expdir import filesystem_type

    shm = Path("/dev/shm")
    assert filesystem_type(shm) == "tmpfs"  # Linux: POSIX shared memory is a tmpfs
    cfg = parse_config({"name": "s", "entrypoint": "m:f", "backend": backend,
                        "searcher": {"name": "random", "metric": "m", "max_length": 4,
                                     "max_trials": 2},
                        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}}},
                       str(tmp_path))
    root = shm / f"asha-test-{uuid.uuid4().hex[:8]}"
    try:
        launch.create_experiment(cfg, root)
        launch.create_experiment(cfg, tmp_path / "e")  # a disk: no warning
    finally:
        shutil.rmtree(root, ignore_errors=True)
    warned = [x for x in capsys.readouterr().err.splitlines() if "warning" in x]
    if backend == "local":
        assert warned == []
    else:
        assert warned == [
            f"asha-hpc: warning: {root.resolve()} is on tmpfs, the memory of this machine: jobs "
            f"on other nodes cannot write there (their logs, their results) and end before their "
            f"code runs. Unless every job runs on this machine, put the experiment folder on a "
            f"filesystem every compute node mounts (--exp-dir)"]

"""``status`` for a master whose own write met a full disk or quota: nothing could be journaled,
so the master's empty mark file is what tells it. The filesystem is measured when status runs:
one with no room is named with its free space; where both the experiment's and the checkpoint
folder's have room, only a quota explains it. (Free space is faked here; the real thing, on a
full tmpfs, is tests/local/test_full_disk.py.)"""
import os

from test_failed_attempts_text import CFG, attempts

from asha_hpc.master.state import replay
from asha_hpc.protocol import diskfull
from asha_hpc.protocol.diskfull import ROOM_BYTES, free_bytes, mount_point
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.views.status import (
    disk_full_pause,
    held_for_room,
    master_room_wait,
    status_dict,
)
from asha_hpc.views.text import master_room_wait_line, render_status_text


def _lines(exp: ExpDir) -> list[str]:
    recs = attempts("error")[:2]  # one segment under way: the search is not over
    d = status_dict(exp, CFG, replay(CFG, recs), recs)
    return [x for x in render_status_text(d).splitlines() if x.startswith("disk full: ")]


def test_without_the_mark_there_is_no_wait(tmp_path):
    exp = ExpDir.create(tmp_path / "e")
    assert master_room_wait(exp) is None and _lines(exp) == []


def test_a_filesystem_with_no_room_is_named_with_its_free_space(tmp_path, monkeypatch):
    exp = ExpDir.create(tmp_path / "e")
    exp.room_wait.touch()
    os.utime(exp.room_wait, (1_700_000_000, 1_700_000_000))
    monkeypatch.setattr(diskfull, "free_bytes", lambda path: 3 << 10)
    full = master_room_wait(exp)
    assert full == {"time": 1_700_000_000, "trial": None, "path": str(mount_point(exp.root)),
                    "quota": False, "free": 3 << 10}
    running = master_room_wait_line(full, str(exp.root), running=True)
    assert f"no space left on {mount_point(exp.root)} (3 KiB free)" in running
    assert running.endswith("free space there, and the master goes on by itself (running "
                            "trials lose nothing)")
    stopped = master_room_wait_line(full, str(exp.root), running=False)
    assert "the master stopped while it waited for room" in stopped
    assert f"then `asha-hpc resume {exp.root}`" in stopped
    # a search no master runs: status says the stopped form
    assert len(_lines(exp)) == 1 and "stopped while it waited" in _lines(exp)[0]


def test_only_the_checkpoint_folder_short_of_room_is_the_one_named(tmp_path, monkeypatch):
    """Checkpoints on scratch, the experiment in home (checkpoint_storage's folder, a link)."""
    exp = ExpDir.create(tmp_path / "e")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (exp.root / "trials").rmdir()
    (exp.root / "trials").symlink_to(scratch, target_is_directory=True)
    exp.room_wait.touch()
    monkeypatch.setattr(diskfull, "free_bytes",
                        lambda path: 0 if str(path).startswith(str(scratch)) else ROOM_BYTES * 8)
    monkeypatch.setattr(diskfull, "mount_point", lambda path: path)  # each its own filesystem
    full = master_room_wait(exp)
    assert full is not None and full["path"] == str(scratch) and full["free"] == 0


def test_room_everywhere_is_a_quota(tmp_path, monkeypatch):
    exp = ExpDir.create(tmp_path / "e")
    exp.room_wait.touch()
    monkeypatch.setattr(diskfull, "free_bytes", lambda path: ROOM_BYTES * 8)
    full = master_room_wait(exp)
    assert full is not None and full["quota"] and full["path"] is None
    line = master_room_wait_line(full, str(exp.root), running=True)
    assert "a full quota, it seems" in line and "raise the quota or free space in it" in line


def test_a_jobs_full_disk_holds_until_a_segment_starts_or_a_master_resumes_the_search():
    """A search paused (or stopped) while the disk was full, resumed once there was room: the
    master that resumed hands out work again, so the journal's full disk no longer explains
    anything (it said "none starts until there is room" of a paused search with room)."""
    full = {"kind": "result", "trial": 3, "segment": 0, "attempt": 0, "status": "error",
            "time": 5.0, "disk_full": {"path": "/scratch/run/trials/00003", "quota": False}}
    held = {"time": 5.0, "trial": 3, "path": "/scratch/run/trials/00003", "quota": False,
            "free": None, "need": None}
    start = [{"kind": "init"}, {"kind": "intent", "trial": 3, "segment": 0, "attempt": 0}]
    assert disk_full_pause(start + [full]) == held
    assert disk_full_pause(start + [full, {"kind": "stopped"}]) == held
    assert disk_full_pause(start + [full, {"kind": "stopped"}, {"kind": "resumed"}]) is None
    assert disk_full_pause(start + [full, {"kind": "intent", "trial": 4, "segment": 0,
                                           "attempt": 0}]) is None
    assert disk_full_pause(start + [full, {"kind": "resumed"}, dict(full, time=9.0)]) == \
        dict(held, time=9.0)


def test_a_jobs_full_disk_with_room_now_holds_nothing_back(tmp_path):
    """The job saw 0 bytes free; the filesystem has room now (what the master waits for): a
    search paused or stopped meanwhile is not said to wait for room. A quota shows only to a
    write, which status does not make: it is still said."""
    def records(**full):
        return [{"kind": "init"}, {"kind": "intent", "trial": 1, "segment": 0, "attempt": 0},
                {"kind": "result", "trial": 1, "segment": 0, "attempt": 0, "status": "error",
                 "disk_full": {"path": str(tmp_path), **full}}]

    assert held_for_room(records(quota=False, free=0), tmp_path) is None
    assert held_for_room(records(quota=True, free=0), tmp_path) is not None
    # as much free as when it filled (or unknown, from an older release): no room yet
    assert held_for_room(records(quota=False, free=free_bytes(tmp_path)), tmp_path) is not None
    assert held_for_room(records(quota=False), tmp_path) is not None

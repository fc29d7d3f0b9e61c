"""fswatch.py: a waiter wakes when a file lands in a folder (inotify on local filesystems, a
short poll elsewhere), and never misses one that landed between two waits."""
import os
import threading
import time

import pytest

from asha_hpc.protocol.fswatch import FolderWatch, fs_type, is_network_fs


def _land_later(folder, name, delay):
    def go():
        time.sleep(delay)
        tmp = folder / f".tmp-{name}"
        tmp.write_text("{}")
        os.replace(tmp, folder / name)
    th = threading.Thread(target=go)
    th.start()
    return th


@pytest.mark.parametrize("inotify", [True, False])
def test_wakes_when_a_file_is_renamed_in(tmp_path, monkeypatch, inotify):
    if not inotify:
        monkeypatch.setenv("ASHA_NO_INOTIFY", "1")
        time.sleep(0.06)  # polling wakes while the folder changed in the last 50 ms
    w = FolderWatch(tmp_path)
    if inotify and not w.uses_inotify:
        pytest.fail(f"no inotify watch on {tmp_path} ({fs_type(tmp_path)}): this machine's "
                    f"kernel and /tmp should allow one")
    assert w.uses_inotify == inotify
    assert w.wait(0.05) is False  # nothing came
    th = _land_later(tmp_path, "a.result.json", 0.2)
    t0 = time.monotonic()
    assert w.wait(5.0) is True
    waited = time.monotonic() - t0
    th.join()
    assert 0.15 < waited < 1.0
    w.close()


def test_a_file_landing_between_waits_is_not_missed(tmp_path):
    w = FolderWatch(tmp_path)
    (tmp_path / "b.result.json").write_text("{}")  # while the waiter was busy elsewhere
    t0 = time.monotonic()
    assert w.wait(5.0) is True and time.monotonic() - t0 < 0.5
    w.close()


def test_temporary_files_do_not_wake_an_inotify_waiter(tmp_path):
    w = FolderWatch(tmp_path)
    if not w.uses_inotify:
        pytest.fail("no inotify on this machine's /tmp")
    (tmp_path / ".tmp-in-flight").write_text("{")
    assert w.wait(0.1) is False
    w.close()


def test_network_filesystems_are_polled():
    assert is_network_fs("nfs4") and is_network_fs("lustre") and is_network_fs("fuse.sshfs")
    assert is_network_fs(None)  # unknown: polling is the safe side
    assert not is_network_fs("ext4") and not is_network_fs("xfs") and not is_network_fs("tmpfs")


def test_out_of_inotify_instances_polls_and_says_so_once(tmp_path, caplog, monkeypatch):
    """The kernel's per-user inotify limit (fs.inotify.max_user_instances, 128 by default)
    is shared by every process of the user: when it is used up, waiting still works by
    polling, and the user is told once which setting to raise."""
    import ctypes
    import ctypes.util

    import asha_hpc.protocol.fswatch as watch

    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    monkeypatch.setattr(watch, "_warned_limit", False)
    held = []
    try:
        for _ in range(100_000):  # take every instance left to this user
            fd = libc.inotify_init1(watch.IN_NONBLOCK | watch.IN_CLOEXEC)
            if fd < 0:
                break
            held.append(fd)
        assert held, "no inotify instance could be created at all on this machine"
        with caplog.at_level("WARNING", logger="asha_hpc"):
            a, b = FolderWatch(tmp_path), FolderWatch(tmp_path)
        assert not a.uses_inotify and not b.uses_inotify
        said = [r.getMessage() for r in caplog.records if "inotify limit" in r.getMessage()]
        assert len(said) == 1 and "fs.inotify.max_user_instances" in said[0]
        (tmp_path / "c.result.json").write_text("{}")
        assert a.wait(2.0) is True  # polling still sees the file
    finally:
        for fd in held:
            os.close(fd)
    a.close()
    b.close()

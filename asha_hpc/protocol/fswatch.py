"""Waking up when a file lands in a folder: how the master hears of a result and a waiting job
of its next segment, in microseconds where the kernel can tell and a short poll where it cannot.

On Linux, for a folder on a local filesystem (ext4, xfs, btrfs, tmpfs, overlay...), a
``FolderWatch`` holds an inotify watch: a wait blocks in ``select`` and returns as soon as a file
is created or renamed into the folder. The watch lives as long as the waiter, so an event that
comes between two waits is queued, never missed.

Network filesystems (NFS, Lustre, GPFS, BeeGFS, CIFS, ...) accept an inotify watch but only
report changes made on the same client, and another node writes the files. There, and where
inotify is missing or out of instances (``fs.inotify.max_user_instances``), the wait is an
adaptive poll of the folder's modification time: 1 ms doubling to ``max_poll_s``, so a message
is seen within milliseconds of a busy exchange and an idle waiter costs a stat now and then.

No dependency (ctypes on the C library); everything else falls back to polling.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import select
import struct
import sys
import time
from pathlib import Path

# inotify(7)
IN_CREATE = 0x00000100
IN_MOVED_TO = 0x00000080
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name

# filesystems whose changes come from other machines: inotify would stay silent
NETWORK_FS = {"nfs", "nfs4", "lustre", "gpfs", "cifs", "smb3", "smbfs", "beegfs", "ceph",
              "glusterfs", "panfs", "9p", "afs", "ocfs2", "gfs2", "wekafs", "orangefs", "pvfs2",
              "fuse", "fuseblk", "virtiofs", "davfs"}

_libc = None
_warned_limit = False
log = logging.getLogger("asha_hpc")


def fs_type(path: Path) -> str | None:
    """The type of the filesystem ``path`` lives on (from /proc/self/mounts), or None."""
    try:
        real = os.path.realpath(path)
        best, kind = "", None
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                inside = real == mnt or real.startswith(mnt.rstrip("/") + "/")
                if inside and len(mnt) >= len(best):
                    best, kind = mnt, parts[2]
        return kind
    except OSError:
        return None


def is_network_fs(kind: str | None) -> bool:
    return kind is None or kind in NETWORK_FS or kind.startswith("fuse.") or kind.startswith("nfs")


def _inotify_fd(folder: Path) -> int | None:
    """An inotify descriptor watching ``folder`` for new entries, or None (not Linux, a network
    filesystem, or the kernel refused: then the caller polls)."""
    global _libc
    if not sys.platform.startswith("linux") or os.environ.get("ASHA_NO_INOTIFY"):
        return None
    if is_network_fs(fs_type(folder)):
        return None
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            _limit_reached(ctypes.get_errno(), "fs.inotify.max_user_instances")
            return None
        wd = _libc.inotify_add_watch(fd, os.fsencode(str(folder)), IN_CREATE | IN_MOVED_TO)
        if wd < 0:
            _limit_reached(ctypes.get_errno(), "fs.inotify.max_user_watches")
            os.close(fd)
            return None
        return fd
    except (OSError, AttributeError, TypeError):
        return None


def _limit_reached(err: int, sysctl: str) -> None:
    """Say once per process that the kernel's inotify limit was hit: waiting still works
    (polling), but hand-offs get slower, and only the user can raise the limit."""
    global _warned_limit
    if err not in (errno.EMFILE, errno.ENOSPC, errno.ENFILE) or _warned_limit:
        return
    _warned_limit = True
    log.warning("inotify limit reached (%s: %s): waiting for messages by polling instead, "
                "which adds up to a few ms per hand-off; raise it with "
                "'sysctl %s=<more>' or run fewer watchers per user", sysctl,
                os.strerror(err), sysctl)


class FolderWatch:
    """Wait for new entries in one folder (see the module doc). ``wait`` returns True when
    something may have arrived (the caller looks), False when ``timeout_s`` passed quietly."""

    def __init__(self, folder: Path, max_poll_s: float = 0.05) -> None:
        self.folder = Path(folder)
        self.max_poll_s = max_poll_s
        self.fd = _inotify_fd(self.folder)
        self._stamp = self._mtime()

    @property
    def uses_inotify(self) -> bool:
        return self.fd is not None

    def _mtime(self) -> int | None:
        try:
            return os.stat(self.folder).st_mtime_ns
        except OSError:
            return None

    def wait(self, timeout_s: float) -> bool:
        if self.fd is not None:
            return self._wait_events(timeout_s)
        return self._wait_poll(timeout_s)

    def _wait_events(self, timeout_s: float) -> bool:
        t0 = time.monotonic()
        assert self.fd is not None  # wait() comes here only with inotify
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        while True:
            left = timeout_s - (time.monotonic() - t0)
            if left <= 0:
                return False
            try:
                ready = poller.poll(max(1, int(left * 1000 + 0.999)))
            except OSError:  # should not happen; never spin on it: poll from now on
                self.close()
                return self._wait_poll(left)
            if ready and self._drain():
                return True

    def _drain(self) -> bool:
        """Read the queued events; True if one names a file other than a temporary (``.tmp-``
        files are written and renamed by publishers: their creation is no news)."""
        assert self.fd is not None
        news = False
        while True:
            try:
                data = os.read(self.fd, 65536)
            except (BlockingIOError, InterruptedError):
                return news
            except OSError:
                return True
            if not data:
                return news
            off = 0
            while off + _EVENT.size <= len(data):
                _, _, _, n = _EVENT.unpack_from(data, off)
                name = data[off + _EVENT.size: off + _EVENT.size + n].rstrip(b"\0")
                off += _EVENT.size + n
                if not name.startswith(b"."):
                    news = True

    def _wait_poll(self, timeout_s: float) -> bool:
        """Poll the folder's modification time. Directory times can be coarse (a clock tick)
        and are cached on NFS: a change in the same tick as the last look is caught by also
        waking while the folder changed in the last 50 ms."""
        t0 = time.monotonic()
        delay = 0.001
        first = self._mtime()
        if first is not None and first != self._stamp:
            self._stamp = first
            return True
        if first is not None and 0 <= time.time_ns() - first < 50_000_000:
            time.sleep(0.002)  # a change may share the last look's tick: look again soon
            return True
        while True:
            left = timeout_s - (time.monotonic() - t0)
            if left <= 0:
                return False
            time.sleep(min(delay, left))
            delay = min(delay * 2, self.max_poll_s)
            now = self._mtime()
            if now != first:
                self._stamp = now
                return True

    def close(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None

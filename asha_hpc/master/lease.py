"""The master's lease on an experiment directory: one master at a time, without locks.

``master.json`` holds host, pid, a random token and a heartbeat time. A second master refuses,
naming the holder, unless the lease is stale: on this host (in this pid namespace: a container
may share the host's name, not its pids) when the pid is gone or now belongs
to a process started after the lease was (the pid was reused: a reboot, or a master killed long
ago), on any host when the heartbeat is older than ``timeout_s``. Hosts' clocks may differ, so
a master taking over also asks the file system's clock: the lease file must not have changed for
``timeout_s`` either (its mtime against that of the file the new master just wrote; on NFS the
server sets both). Creation uses ``os.link`` (atomic, fails if the file exists, also on NFS) so
two masters starting at once cannot both win; heartbeats replace the file by rename. ``force``
takes the lease regardless, for an operator who knows better.

The lease also carries the master's ``epoch`` (journal.py: fencing). ``check`` is the fence the
journal calls right before each write: a master whose lease was taken over stops there.
"""
from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from ..errors import LeaseHeldError, shell_word
from ..protocol.expdir import atomic_write_json, prune_oldest, read_json
from ..protocol.pids import is_recorded_process, pid_alive, pid_namespace, start_ticks

KEEP_STALE = 5  # leases taken over, kept for a person (master.json.stale-*)
log = logging.getLogger(__name__)


TIMEOUT_S = 120.0  # a heartbeat older than this (on another host) frees the lease


class Lease:
    def __init__(self, path: Path, timeout_s: float = TIMEOUT_S) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.token = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started = time.time()
        self.epoch = 0
        self.previous: dict[str, Any] | None = None  # the lease taken over, if any
        self.pidns = pid_namespace()
        self.ticks = start_ticks(self.pid)

    def _body(self) -> dict[str, Any]:
        return {"host": self.host, "pid": self.pid, "token": self.token,
                "started": self.started, "heartbeat": time.time(), "epoch": self.epoch,
                "slurm_job_id": os.environ.get("SLURM_JOB_ID"), "pidns": self.pidns,
                "ticks": self.ticks, "dir": str(self.path.parent.resolve())}

    def holder(self) -> dict[str, Any] | None:
        body, _ = read_json(self.path)
        return body if isinstance(body, dict) else None

    def live_holder(self) -> dict[str, Any] | None:
        """The record of the master that holds the lease, while it is alive (``status``,
        ``cancel``); None when nobody holds it or its holder is stale. Read without writing:
        the lease file's age by this host's clock stands in for the file system's, so a
        master whose clock is behind is not taken for dead (the file was written recently)."""
        h = self.holder()
        try:
            quiet = time.time() - self.path.stat().st_mtime
        except OSError:
            quiet = None
        return h if h is not None and self.stale_reason(h, quiet) is None else None

    def stale_reason(self, h: dict[str, Any], quiet_s: float | None = None) -> str | None:
        """Why the lease ``h`` may be taken over, or None while its holder is alive.
        ``quiet_s``: how long the lease file has not changed by the file system's clock, where
        known; a heartbeat old by this host's clock but a file written since is a clock
        difference between hosts, not a dead master."""
        age = time.time() - float(h.get("heartbeat", 0) or 0)
        copied = _copied_from(h.get("dir"), self.path.parent)
        if copied is not None:  # rsync or cp -a of a running search: the copy has no master
            return f"it runs the experiment in {copied}; this folder is a copy of that one"
        job = os.environ.get("SLURM_JOB_ID")
        if job and h.get("slurm_job_id") == job and os.environ.get("SLURM_RESTART_COUNT", "0") != "0":
            return f"it was this Slurm job ({job}) before it was requeued"
        # its pid means something here only on this host, in this pid namespace (a container
        # may share the host's name, not its pids); a lease of an earlier release has none
        if h.get("host") == self.host and isinstance(h.get("pid"), int) \
                and h.get("pidns", self.pidns) == self.pidns:
            if not pid_alive(h["pid"]):
                return f"its process {h['pid']} on {self.host} is gone"
            if not is_recorded_process(h["pid"], h.get("ticks"), h.get("started")):
                return (f"its process {h['pid']} on {self.host} is gone (that pid now belongs "
                        f"to a process started after the lease)")
            return None
        if age > self.timeout_s and (quiet_s is None or quiet_s > self.timeout_s):
            return f"no heartbeat for {age:.0f} s (timeout {self.timeout_s:.0f} s)"
        return None

    def _quiet_s(self, written_now: Path) -> float | None:
        """How long the lease file has not changed, by the file system's clock: its mtime
        against that of ``written_now``, a file this process just wrote beside it."""
        try:
            return written_now.stat().st_mtime - self.path.stat().st_mtime
        except OSError:
            return None

    def _held_message(self, h: dict[str, Any], quiet_s: float | None) -> str:
        age = time.time() - float(h.get("heartbeat", 0) or 0)
        seen = f"heartbeat {age:.0f} s ago"
        if quiet_s is not None and age - quiet_s > self.timeout_s:
            seen = (f"heartbeat {age:.0f} s ago by this host's clock, but {self.path.name} was "
                    f"written {max(quiet_s, 0.0):.0f} s ago: the two hosts' clocks differ by "
                    f"about {age - quiet_s:.0f} s")
        later = (f"; a master on another host takes over once it is {self.timeout_s:.0f} s old"
                 if h.get("host") != self.host else "")
        return (f"{self.path.parent}: another master holds this experiment (host "
                f"{h.get('host')}, pid {h.get('pid')}"
                + (f", Slurm job {h['slurm_job_id']}" if h.get("slurm_job_id") else "")
                + f", {seen}{later}). Stop it first, or if you are sure it is dead: asha-hpc "
                f"resume {shell_word(self.path.parent)} --force")

    def acquire(self, force: bool = False) -> str | None:
        """Take the lease or raise LeaseHeldError. Returns a note when a stale lease was taken
        over (for the log)."""
        note = None
        tmp = self.path.with_name(f".master-{self.token}.json")
        for _ in range(3):
            atomic_write_json(tmp, self._body())  # also the file system's "now" for _quiet_s
            try:
                h = self.holder()
                if h is not None or self.path.exists():
                    if h is not None and h.get("token") == self.token:
                        return note
                    quiet = self._quiet_s(tmp)
                    why = "it is unreadable" if h is None else self.stale_reason(h, quiet)
                    if not force and why is None:
                        assert h is not None
                        raise LeaseHeldError(self._held_message(h, quiet))
                    note = "forced" if force and why is None else f"took over a stale lease: {why}"
                    self.previous = h
                    try:
                        os.replace(self.path,
                                   self.path.with_name(f"master.json.stale-{int(time.time())}"))
                    except FileNotFoundError:
                        pass
                    prune_oldest(self.path.parent, "master.json.stale-", KEEP_STALE)
                try:
                    os.link(tmp, self.path)
                except FileExistsError:
                    continue  # somebody else won the race: look again
                return note
            finally:
                tmp.unlink(missing_ok=True)
        raise LeaseHeldError(f"{self.path}: could not take the lease (another master is starting)")

    def previous_epoch(self) -> int:
        """The epoch of the lease taken over (0 if none, or one of an earlier release)."""
        e = (self.previous or {}).get("epoch", 0)
        return e if isinstance(e, int) and not isinstance(e, bool) else 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.heartbeat()

    def check(self) -> None:
        """The fence: raise LeaseHeldError unless this master still holds the lease. A lease
        of a lower epoch in its place is a master this one took over, frozen while it renewed
        its lease (between its check and its rename) that woke and renamed its old lease file
        over this one's: this master takes it back, and that one stops at its next look (the
        journal has grown since its last write: journal.py)."""
        h = self.holder()
        if h is not None and h.get("token") != self.token and _lower_epoch(h, self.epoch):
            log.warning("%s: the master this one took over (host %s, pid %s, epoch %s) wrote "
                        "the lease file after it woke; taken back, and it stops at its next "
                        "look", self.path.parent, h.get("host"), h.get("pid"), h.get("epoch"))
            atomic_write_json(self.path, self._body(), durable=False)
            h = self.holder()
        if h is None or h.get("token") != self.token:
            who = (f"by host {h.get('host')} pid {h.get('pid')}" if h is not None
                   else "(its file is gone)")
            raise LeaseHeldError(f"{self.path.parent}: the lease was taken over {who} while this "
                                 f"master was not looking (frozen or disconnected); this master "
                                 f"stops without writing anything more")

    def heartbeat(self) -> None:
        """Refresh the heartbeat; raise LeaseHeldError if the lease was taken from us."""
        self.check()
        atomic_write_json(self.path, self._body(), durable=False)

    def release(self) -> None:
        h = self.holder()
        if h is not None and h.get("token") == self.token:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass


def _copied_from(held: Any, here: Path) -> str | None:
    """The folder the lease's master runs, where that is another folder on this host than
    ``here`` (the lease was copied with the experiment); None where it is this one, or cannot
    be told (another host's mount, a lease of an earlier release without ``dir``)."""
    if not isinstance(held, str) or not held:
        return None
    try:
        return None if os.path.samefile(held, here) else held
    except (OSError, ValueError):  # not here (another host's path; a NUL in a foreign file)
        return None


def _lower_epoch(h: dict[str, Any], epoch: int) -> bool:
    """The lease ``h`` is of a master before this one's ``epoch`` (an earlier release's lease
    has no epoch: 0)."""
    e = h.get("epoch", 0)
    return epoch > 0 and isinstance(e, int) and not isinstance(e, bool) and e < epoch

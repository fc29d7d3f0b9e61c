"""The master's append-only journal: every decision and submission, one JSON record a line.

Each line is ``<crc32 hex> <json>``; the JSON holds a sequence number ``seq`` and, since
fencing, the ``epoch`` of the master that wrote it (records of earlier releases have none:
epoch 0). The master's state is ``replay(journal)``. Records are appended in groups with one
write and one fsync (group commit), so a poll with fifty results costs one fsync, not fifty.

Reading salvages: a line that fails its checksum is skipped with a warning naming it (a torn
last line, a crash mid-write, is also cut off before the next append); every record that
checks out is kept. Nothing a reader says ever advises deleting valid records.

Fencing (split brain). Every master takes a new epoch, higher than any in the journal or the
lease it took over, and checks the lease right before each write (``fence``). A master frozen
past its lease (a hung NFS client, a paused VM) that wakes up after another took over stops at
its next write; if it was frozen between the check and the write, its late records land in
the file (O_APPEND: after the new master's, on a local disk) carrying its old epoch and a
``seq`` the new master has also used. Replay drops every record of an epoch whose ``seq`` is
at or after the first ``seq`` of a later epoch: exactly the records the new master never saw.
"""
from __future__ import annotations

import errno
import json
import logging
import math
import os
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DISK_FULL_ERRNOS, AshaError, JournalFull, LeaseHeldError, shell_word
from .expdir import FILE_MODE, sync_data

log = logging.getLogger(__name__)

FULL_WAIT_S = 30.0  # a full disk or quota: how long an append waits for room before it fails


def _encode(rec: dict[str, Any]) -> bytes:
    payload = json.dumps(rec, sort_keys=True, separators=(",", ":"))
    return f"{zlib.crc32(payload.encode()):08x} {payload}\n".encode()


@dataclass
class JournalScan:
    records: list[dict[str, Any]]  # the valid records, superseded masters' late ones dropped
    good: int  # bytes up to the end of the last valid line (what follows is a torn tail)
    warnings: list[str]
    max_epoch: int  # the highest epoch in the file, dropped records included


def scan_journal(path: Path) -> JournalScan:
    """Read a journal, salvaging every record that checks out (see the module's docstring)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return JournalScan([], 0, [], 0)
    decoded: list[dict[str, Any]] = []
    warnings: list[str] = []
    corrupt: list[int] = []
    good = 0
    pos = 0
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if last and not line:
            break  # the file ends with a newline
        rec = None if last else _decode(line)  # a last line without its newline is torn
        pos += len(line) + 1
        if rec is None:
            if line.strip():
                corrupt.append(i + 1)
            continue
        decoded.append(rec)
        good = pos
    if corrupt:
        tail = [n for n in corrupt if n > data[:good].count(b"\n")]
        middle = [n for n in corrupt if n not in tail]
        if middle:
            warnings.append(f"{path}: skipped {_lines(middle)} (bad checksum: corrupt or "
                            f"overwritten); every other record is kept")
        if tail:
            warnings.append(f"{path}: {_lines(tail)} torn (a crash mid-write); ignored")
    records, dropped = _drop_superseded(decoded)
    if dropped:
        warnings.append(f"{path}: ignored {dropped} record(s) that a superseded master wrote "
                        f"after another master took the experiment over")
    gaps = [(a["seq"], b["seq"]) for a, b in zip(records, records[1:]) if b["seq"] != a["seq"] + 1]
    if gaps:
        warnings.append(f"{path}: records out of sequence after seq "
                        + ", ".join(f"{a} (next {b})" for a, b in gaps[:5])
                        + ("..." if len(gaps) > 5 else "") + "; kept as they are")
    return JournalScan(records, good, warnings, max((_epoch(r) for r in decoded), default=0))


def read_journal(path: Path) -> tuple[list[dict[str, Any]], int, list[str]]:
    """(records, length of the valid prefix in bytes, warnings): see ``scan_journal``."""
    s = scan_journal(path)
    return s.records, s.good, s.warnings


class JournalTail:
    """A reader that follows a journal from where it last read: each ``new_records()`` reads
    only the complete lines appended since (a job that asks about the search again and again
    reads the file once in all, not once per question). Lines that do not check out are
    skipped; a journal cut back below what was read (a torn tail removed) is read again from
    its start, and ``restarted`` says so."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offset = 0
        self.restarted = False

    def new_records(self) -> list[dict[str, Any]]:
        self.restarted = False
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < self.offset:
                    self.offset, self.restarted = 0, True
                f.seek(self.offset)
                data = f.read(size - self.offset)
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1  # complete lines only: the rest is still being written
        self.offset += end
        recs = (_decode(line) for line in data[:end].split(b"\n") if line)
        return [r for r in recs if r is not None]


def _lines(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:10]) + ("..." if len(numbers) > 10 else "")
    return f"line {shown}" if len(numbers) == 1 else f"{len(numbers)} lines ({shown})"


def _epoch(rec: dict[str, Any]) -> int:
    e = rec.get("epoch", 0)
    return e if isinstance(e, int) and not isinstance(e, bool) else 0


def _drop_superseded(recs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Drop each record whose ``seq`` is at or after the first ``seq`` of a later epoch."""
    first: dict[int, int] = {}
    for r in recs:
        e = _epoch(r)
        first[e] = min(first.get(e, r["seq"]), r["seq"])
    bound: dict[int, float] = {}
    lowest = math.inf
    for e in sorted(first, reverse=True):
        bound[e] = lowest
        lowest = min(lowest, first[e])
    kept = [r for r in recs if r["seq"] < bound[_epoch(r)]]
    return kept, len(recs) - len(kept)


def _decode(line: bytes):
    try:
        crc, payload = line.split(b" ", 1)
        if int(crc, 16) != zlib.crc32(payload):
            return None
        rec = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("seq"), int) else None


class Journal:
    """Append-only writer. Only the lease holder (the master) opens one.

    ``epoch``: stamped on every record appended (None: no field, as earlier releases wrote).
    ``fence``: called right before each write; raises (LeaseHeldError) once another master
    has taken over, so that a stale master writes nothing."""

    def __init__(self, path: Path, durable: bool = True, epoch: int | None = None,
                 fence: Callable[[], None] | None = None) -> None:
        self.path = Path(path)
        self.durable = durable
        self.epoch = epoch
        self.fence = fence
        scan = scan_journal(self.path)
        self.records, self.warnings, self.max_epoch = scan.records, scan.warnings, scan.max_epoch
        for w in self.warnings:
            log.warning(w)
        # O_APPEND: a write lands at the end of the file as it is, never over another
        # writer's records (a stale master's included)
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        try:
            self._fd = os.open(str(self.path), flags, FILE_MODE)
            if os.fstat(self._fd).st_size > scan.good:
                os.ftruncate(self._fd, scan.good)  # cut a torn tail before appending after it
        except OSError as e:
            raise AshaError(f"{self.path}: cannot open the journal ({e.strerror})") from None
        self.seq = self.records[-1]["seq"] if self.records else 0
        self._size = os.fstat(self._fd).st_size  # the file as this writer left it
        self._ends_torn = False  # another writer's partial line ends the file
        self._unsynced = False
        self._said_full = False

    def append(self, recs: Iterable[dict[str, Any]], sync: bool = True) -> list[dict[str, Any]]:
        """Append records (each gets the next ``seq``) with one write and one fsync. On an OS
        error (disk full, permission) nothing is half-written: the file is cut back and the
        error is raised as an AshaError naming the file (JournalFull for a full disk or quota).

        ``sync=False`` leaves the fsync to the next synced append or ``sync()``: the writer
        must sync before anything outside acts on these records (write-ahead), which lets the
        master make a poll's results and the decisions they lead to durable with one fsync."""
        out = []
        buf = bytearray()
        seq = self.seq
        for r in recs:
            seq += 1
            rec = dict(r, seq=seq)
            if self.epoch is not None:
                rec["epoch"] = self.epoch
            out.append(rec)
            buf += _encode(rec)
        if not buf:
            return out
        waited_until = time.monotonic() + FULL_WAIT_S
        while True:
            if self.fence is not None:
                self.fence()
                self.check_unchanged()
            try:
                self._write((b"\n" if self._ends_torn else b"") + bytes(buf), sync)
                self._ends_torn = False
                break
            except OSError as e:
                # a full disk often empties again within seconds (a job's partial checkpoint
                # is removed): wait a little before giving up, writing nothing meanwhile
                if e.errno not in DISK_FULL_ERRNOS or time.monotonic() > waited_until:
                    raise self._error(e) from None
                if not self._said_full:
                    log.warning("%s: %s; waiting up to %.0f s for room before the master stops",
                                self.path, e.strerror, FULL_WAIT_S)
                    self._said_full = True
                time.sleep(1.0)
        self._said_full = False
        self.seq = seq
        return out

    def check_unchanged(self) -> None:
        """The second fence: nothing of a later master's was written since this writer's last
        write. Records of a later epoch there mean this master's lease was taken over without
        the lease file showing it (this master, frozen while it renewed the lease, wrote its
        old lease back over the new master's): everything it knows is behind the journal, so
        it stops. Records of an earlier epoch are a superseded master's late ones, which replay
        drops (``_drop_superseded``): this writer goes on. A fence for a local disk; on NFS the
        client's cached size may lag, and the lease is the fence."""
        size = os.fstat(self._fd).st_size
        if size <= self._size:  # (smaller: a size an NFS client's cache still holds)
            return
        grown = os.pread(self._fd, size - self._size, self._size)
        later = [r for r in map(_decode, grown.splitlines()) if r is not None
                 and _epoch(r) >= (self.epoch or 0)]
        if later:
            raise LeaseHeldError(
                f"{self.path}: the journal changed since this master's last write ({self._size} "
                f"bytes, now {size}): another master writes it (it took over while this one was "
                f"frozen or disconnected); this master stops without writing anything more")
        log.warning("%s: %d byte(s) of a superseded master's late records follow this master's "
                    "last write; replay ignores them", self.path, size - self._size)
        self._size = size
        self._ends_torn = not grown.endswith(b"\n")  # its torn line must not take ours with it

    def _write(self, data: bytes, sync: bool) -> None:
        """One write (and fsync); on an OS error the partial line is cut off and it raises."""
        start: int | None = None
        try:
            start = os.fstat(self._fd).st_size
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            self._size = start + len(data)
            if sync:
                self._fsync()
            else:
                self._unsynced = True
        except OSError:
            self._cut_back(start)
            raise

    def _cut_back(self, start: int | None) -> None:
        """Remove a failed write's partial line, unless another master holds the journal now
        (what follows ``start`` may then be its records; a partial line is skipped on reading
        anyway)."""
        if start is None:
            return
        try:
            if self.fence is not None:
                self.fence()
            os.ftruncate(self._fd, start)
        except (OSError, AshaError):
            pass

    def _error(self, e: OSError) -> AshaError:
        full = e.errno in DISK_FULL_ERRNOS
        line = (f"{self.path}: cannot write the journal ({e.strerror}); nothing was lost: "
                f"{'free space or raise the quota' if full else 'fix the cause'}, then "
                f"`asha-hpc resume {shell_word(self.path.parent)}`")
        return JournalFull(line, quota=e.errno == errno.EDQUOT) if full else AshaError(line)

    def sync(self) -> None:
        """Make every record appended so far durable (a no-op when they are)."""
        if self._unsynced:
            try:
                self._fsync()
            except OSError as e:
                raise self._error(e) from None

    def _fsync(self) -> None:
        if self.durable:
            sync_data(self._fd)
        self._unsynced = False

    def close(self) -> None:
        try:
            if self._unsynced and self.durable:
                sync_data(self._fd)
            os.close(self._fd)
        except OSError:
            pass

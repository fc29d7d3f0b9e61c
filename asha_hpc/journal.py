"""The master's append-only journal: every decision and submission, one JSON record a line.

Each line is ``<crc32 hex> <json>``; the JSON holds a sequence number ``seq``. The master's state
is ``replay(journal)``. A torn last line (a crash mid-write) fails its checksum and is ignored,
and the file is cut back to its last good line before anything new is appended. Records are
appended in groups with one write and one fsync (group commit), so a poll with fifty results
costs one fsync, not fifty.
"""
from __future__ import annotations

import json
import logging
import os
import zlib
from pathlib import Path
from typing import Any, Dict, Iterable, List, Tuple

from .errors import AshaError
from .expdir import sync_data

log = logging.getLogger(__name__)


def _encode(rec: Dict[str, Any]) -> bytes:
    payload = json.dumps(rec, sort_keys=True, separators=(",", ":"))
    return f"{zlib.crc32(payload.encode()):08x} {payload}\n".encode()


def read_journal(path: Path) -> Tuple[List[Dict[str, Any]], int, List[str]]:
    """(records, length of the valid prefix in bytes, warnings).

    A bad last line is a torn write and is dropped with a warning. A bad line followed by good
    ones is corruption: refuse, naming the file and line, since skipping it could lose a
    result."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return [], 0, []
    records: List[Dict[str, Any]] = []
    warnings: List[str] = []
    pos = 0
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if last and not line:
            break  # the file ends with a newline
        rec = _decode(line)
        if rec is None or (records and rec.get("seq") != records[-1]["seq"] + 1):
            rest_is_empty = all(not x.strip() for x in lines[i + 1:])
            if rest_is_empty:
                warnings.append(f"{path}: line {i + 1} is torn (a crash mid-write); ignored")
                break
            raise AshaError(f"{path}: line {i + 1} is corrupt (bad checksum or sequence) and is "
                            f"followed by more records; the journal cannot be trusted. Restore it "
                            f"from a backup, or cut it before line {i + 1} to resume from there")
        if last:  # a complete record without its newline: torn after the payload
            warnings.append(f"{path}: line {i + 1} has no newline (a crash mid-write); ignored")
            break
        records.append(rec)
        pos += len(line) + 1
    return records, pos, warnings


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
    """Append-only writer. Only the lease holder (the master) opens one."""

    def __init__(self, path: Path, durable: bool = True) -> None:
        self.path = Path(path)
        self.durable = durable
        self.records, good, self.warnings = read_journal(self.path)
        for w in self.warnings:
            log.warning(w)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        try:
            self._fd = os.open(str(self.path), flags, 0o600)
        except OSError as e:
            raise AshaError(f"{self.path}: cannot open the journal ({e.strerror})") from None
        os.ftruncate(self._fd, good)  # cut a torn tail before appending after it
        os.lseek(self._fd, good, os.SEEK_SET)
        self.seq = self.records[-1]["seq"] if self.records else 0
        self._unsynced = False

    def append(self, recs: Iterable[Dict[str, Any]], sync: bool = True) -> List[Dict[str, Any]]:
        """Append records (each gets the next ``seq``) with one write and one fsync. On an OS
        error (disk full, permission) nothing is half-written: the file is cut back and the
        error is raised as an AshaError naming the file.

        ``sync=False`` leaves the fsync to the next synced append or ``sync()``: the writer
        must sync before anything outside acts on these records (write-ahead), which lets the
        master make a poll's results and the decisions they lead to durable with one fsync."""
        out = []
        buf = bytearray()
        seq = self.seq
        for r in recs:
            seq += 1
            rec = dict(r, seq=seq)
            out.append(rec)
            buf += _encode(rec)
        if not buf:
            return out
        start = os.lseek(self._fd, 0, os.SEEK_CUR)
        try:
            view = memoryview(bytes(buf))
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            if sync:
                self._fsync()
            else:
                self._unsynced = True
        except OSError as e:
            try:
                os.ftruncate(self._fd, start)
                os.lseek(self._fd, start, os.SEEK_SET)
            except OSError:
                pass
            raise AshaError(f"{self.path}: cannot write the journal ({e.strerror}); nothing was "
                            f"lost: free space or fix permissions, then `asha-hpc resume "
                            f"{self.path.parent}`") from None
        self.seq = seq
        return out

    def sync(self) -> None:
        """Make every record appended so far durable (a no-op when they are)."""
        if self._unsynced:
            try:
                self._fsync()
            except OSError as e:
                raise AshaError(f"{self.path}: cannot write the journal ({e.strerror}); free "
                                f"space or fix permissions, then `asha-hpc resume "
                                f"{self.path.parent}`") from None

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

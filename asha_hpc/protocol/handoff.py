"""The hand-off channel between the master and a job that waits for its next segment.

A waiting job (a worker of the pool, or a segment job that may continue in place) numbers the
assignments it takes: it waits for ``<exp>/workers/<worker>/slot-<n>.json``. The master fills a
slot with a segment spec, or with ``{"type": "exit"}``. A job that gives up waiting (idle too
long, told to stop) closes the slot itself with an exit of its own.

Both sides *create* the slot file with ``link(2)``, which fails on an existing name, atomically,
also over NFS: whoever creates it first wins, the loser learns it and reads the winner's file.
So each slot has exactly one writer, there is no lock, and a race between "master assigns" and
"worker leaves" cannot lose a segment: the master that loses it puts the segment back to be
submitted elsewhere.

Waiting is event-driven: an inotify watch of the job's slot folder where the filesystem is
local (the job wakes the moment its slot is created), else a short adaptive poll (1 ms,
doubling to 50 ms while the job recently ran something, then slower) rather than a fixed
sleep, so a hand-off costs well under a millisecond of waiting on a local disk and at most the
attribute-cache delay on NFS.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .expdir import WORKERS, atomic_write, read_json
from .fswatch import FolderWatch

EXIT = "exit"
SEGMENT = "segment"
# What a slot's segment holds (the fields of SegmentSpec and what they mean): raised with every
# change to them. A waiting job states the version it reads in each ready message and waiting
# result, and a master hands segments only to jobs of its own version: a job of another
# release (still running after an upgrade) is told to leave, instead of taking a segment it
# cannot read and leaving with it, which counted as the trial's failed attempt.
VERSION = 1


def slot_path(exp_root: Path, worker: str, slot: int) -> Path:
    return Path(exp_root) / WORKERS / worker / f"slot-{slot:06d}.json"


def claim(path: Path, body: dict[str, Any], durable: bool = False) -> bool:
    """Create ``path`` holding ``body`` unless it exists; True if this call created it.

    Not fsync'd by default: the master journals (durably) what it hands over before filling
    the slot, and a restarted master hands a journaled segment over again when its slot is
    empty; a job that closes its own slot is leaving. A fsync here would sit between a
    segment's end and the next one's start for nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, (json.dumps(body, sort_keys=True) + "\n").encode(), durable,
                        exclusive=True)


def read_slot(path: Path) -> dict[str, Any] | None:
    """The slot's body, or None when the slot is still empty (or unreadable: treated as an
    exit by the caller, never as a segment)."""
    if not path.exists():
        return None
    body, err = read_json(path)
    if err or not isinstance(body, dict):
        return {"type": EXIT, "why": f"unreadable slot file {path.name}: {err or 'not a mapping'}"}
    return body


def wait_slot(path: Path, timeout_s: float, stop: Callable[[], bool] = lambda: False,
              why: str = "idle", watch: FolderWatch | None = None,
              close: bool = True) -> dict[str, Any]:
    """Wait for the master to fill ``path``; after ``timeout_s`` (or once ``stop()`` is true)
    close it with an exit of our own. Returns the slot's body: a segment or an exit.

    ``close=False``: a follower (rank > 0 of a job of several ranks) never writes the slot,
    which rank 0 or the master fills; it returns an exit of its own, unwritten, on ``stop()``.

    ``watch``: the job's inotify watch of the slot's folder (fswatch.py), kept across slots: the
    wait then wakes the moment the slot is created, and looks at ``stop()`` every 0.25 s.
    Without one (or on a network filesystem) the slot is polled: 1 ms doubling to 50 ms, 0.25 s
    once idle for 10 s."""
    t0 = time.monotonic()
    delay = 0.001
    events = watch is not None and watch.uses_inotify
    while True:
        body = read_slot(path)
        if body is not None:
            return body
        waited = time.monotonic() - t0
        if stop() or waited >= timeout_s:
            mine = {"type": EXIT, "by": "job", "why": "stop requested" if stop() else why}
            if not close or claim(path, mine):
                return mine
            continue  # the master filled it just now: take what it wrote
        if events:
            assert watch is not None
            watch.wait(min(0.25, max(0.0, timeout_s - waited) + 0.001))
            continue
        time.sleep(min(delay, max(0.0, timeout_s - waited) + 0.001))
        delay = min(delay * 2, 0.05 if waited < 10.0 else 0.25)

"""The line a job writes into its logs at the start of each segment it runs, and the reader
that cuts one segment's part out of a log: a worker of the pool (and a job that continues a
trial in place) writes the segments of several trials, or several segments of one, into the
same two log files."""
from __future__ import annotations

import re

_BANNER = re.compile(rb"^asha_hpc: ==== (t\d+-s\d+-a\d+) ", re.M)


def banner(key: str, trial: int, segment: int, length: int, unit: str) -> str:
    """The line that opens segment ``key``'s part of a job's logs."""
    return f"asha_hpc: ==== {key} ==== trial {trial}, segment {segment}, to {length} {unit}"


def section(log: bytes, key: str) -> bytes | None:
    """The part of ``log`` that segment ``key`` wrote, from its banner to the next one (None:
    the log has no banners, a job of one segment or of an earlier release; the whole log is
    that segment's). A key that ran twice in one log (never, but a log is any text) gives
    both parts."""
    marks = list(_BANNER.finditer(log))
    if not marks:
        return None
    parts = [log[m.start():(marks[i + 1].start() if i + 1 < len(marks) else len(log))]
             for i, m in enumerate(marks) if m.group(1).decode() == key]
    return b"".join(parts)


def keys(log: bytes) -> list[str]:
    """The segments whose banners ``log`` holds, in order."""
    return [m.group(1).decode() for m in _BANNER.finditer(log)]

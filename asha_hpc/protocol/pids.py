"""Whether a process the experiment folder names by pid is still that process.

The lease, local jobs' records and ranks' files name a process by host and pid. On the same host
a pid that is alive may still belong to another process: after a reboot, or once pids wrapped
around since a master or job died. A file written when its process already ran gives the time the
process must have started by; a live pid whose process started later is someone else.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

# Slack between a process's start time as /proc gives it (boot time to the second plus clock
# ticks) and a time written after it started (the lease's ``started``, a record's mtime).
START_SLACK_S = 5.0


def pid_alive(pid: int) -> bool:
    """True while some process has ``pid`` (one of another user's counts) and has not exited:
    a zombie, which its parent has not reaped yet, has."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:  # e.g. a pid out of range
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc here: the signal's answer stands
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


@functools.lru_cache(maxsize=1)
def _boot_time() -> int | None:
    """The machine's boot time (epoch seconds, /proc/stat's btime): read once, as it does not
    change while this process runs."""
    try:
        return next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def process_started(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), from /proc; None where /proc cannot say."""
    btime = _boot_time()
    if btime is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat[stat.rindex(")") + 2:].split()[19])  # field 22: starttime
    except (OSError, ValueError, IndexError):
        return None
    return btime + ticks / os.sysconf("SC_CLK_TCK")


def started_after(pid: int, when: object) -> bool:
    """True when the live process ``pid`` started after ``when`` (a time its recorded process
    had already started by): the pid was reused. False where that cannot be told."""
    if not isinstance(when, (int, float)) or isinstance(when, bool):
        return False
    began = process_started(pid)
    return began is not None and began > float(when) + START_SLACK_S


def pid_namespace() -> str | None:
    """This process's pid namespace (``pid:[4026531836]``): pids name the same processes only
    within one. None where /proc cannot say."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None

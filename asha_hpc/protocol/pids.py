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
    ticks = start_ticks(pid)
    if ticks is None or not ticks.isdigit():
        return None
    return btime + int(ticks) / os.sysconf("SC_CLK_TCK")


def started_after(pid: int, when: object) -> bool:
    """True when the live process ``pid`` started after ``when`` (a time its recorded process
    had already started by): the pid was reused. False where that cannot be told."""
    if not isinstance(when, (int, float)) or isinstance(when, bool):
        return False
    began = process_started(pid)
    return began is not None and began > float(when) + START_SLACK_S


def is_recorded_process(pid: int, ticks: object, started: object) -> bool:
    """Whether the live process ``pid`` is the one a record names (not a later process that
    reused the pid): by its start ticks since boot where the record holds them, which no
    wall-clock step moves (NTP, a VM restored or migrated); else, for a record of an earlier
    release, by having started no later than ``started`` (epoch seconds)."""
    if isinstance(ticks, str):
        return start_ticks(pid) == ticks
    return not started_after(pid, started)


def pid_namespace() -> str | None:
    """This process's pid namespace (``pid:[4026531836]``): pids name the same processes only
    within one. None where /proc cannot say."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat's field 22): with
    the pid, which process it is (a pid reused later has another)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[19]
    except (OSError, IndexError):
        return None


def descendants(pid: int) -> list[tuple[int, str]]:
    """Every live process below ``pid`` (children, theirs, ...) as (pid, start ticks), those in
    sessions of their own included (torchrun's workers, a daemon): a signal to the process
    group misses them, and once their parent is gone they are init's and nobody's. Linux's
    /proc; empty elsewhere."""
    parent: dict[int, list[int]] = {}
    for p, fields in _processes():
        try:
            parent.setdefault(int(fields[1]), []).append(p)
        except (IndexError, ValueError):
            continue
    out: list[tuple[int, str]] = []
    todo = list(parent.get(pid, []))
    while todo:
        p = todo.pop()
        ticks = start_ticks(p)
        if ticks is not None:
            out.append((p, ticks))
        todo += parent.get(p, [])
    return out


def kill_tree(pid: int, group: bool = True) -> None:
    """SIGKILL to ``pid`` (its whole process group when ``group``: a local job's leader) and
    to every process below it, those in sessions of their own included."""
    import signal

    below = descendants(pid)
    try:
        if group:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    for p, ticks in below:
        if start_ticks(p) == ticks:  # still that process
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


def kill_leftovers(pgid: int) -> int:
    """SIGKILL to what a local job left in its process group (``pgid``: its leader's pid)
    once the leader is gone: a server, a logger or a worker its code started and never ended,
    which Slurm's end of a job kills (its cgroup) and nothing else would here. Only while no
    process has that pid: Linux reuses no pid still named by a process group, so a live one is
    the job itself or a newer leader, whose group is not ours to touch. How many were killed."""
    import signal

    if pid_alive(pgid):
        return 0
    killed = 0
    for p, fields in _processes():
        try:
            if fields[0] == "Z" or int(fields[2]) != pgid:  # state, ppid, pgrp
                continue
            os.kill(p, signal.SIGKILL)
            killed += 1
        except (OSError, IndexError, ValueError):
            continue
    return killed


def _processes() -> list[tuple[int, list[str]]]:
    """Every process as (pid, the fields of /proc/<pid>/stat after its command's name: state,
    ppid, pgrp, ...). Linux's /proc; empty elsewhere."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    out = []
    for name in entries:
        if name.isdigit():
            try:
                out.append((int(name), Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[-1].split()))
            except OSError:
                continue
    return out

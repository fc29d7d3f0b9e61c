"""The longest time limit a Slurm job may ask for, and where that limit comes from.

A job that asks for more than it may either pends forever (``PartitionTimeLimit``,
``QOSMaxWallDurationPerJobLimit``) or is refused, so the master caps each planned limit here and
splits a segment that does not fit. Three places limit a job's wall time:

- the partition's ``MaxTime`` (``sinfo``), always;
- where the cluster enforces accounting limits (``AccountingStorageEnforce`` has ``limits`` or
  ``safe``), the ``MaxWall`` of the partition's QOS, of the job's QOS and of the user's
  association. Slurm takes the first of these that is set, in that order (the job's QOS first
  when it has the ``OverPartQOS`` flag), and that one is bounded by the partition's ``MaxTime``
  unless its QOS has the ``PartitionTimeLimit`` flag (https://slurm.schedmd.com/resource_limits.html).

The job's QOS is ``slurm.qos``, else the association's default QOS, else its only QOS, else
``normal``; its account is ``slurm.account``, else the user's default account. Names compare
without case, as Slurm stores them in lower case.

Pure: the backend runs ``scontrol show config``, ``scontrol show partition -o``, and ``sacctmgr``
for QOS, associations and the user's default account, once per master, and hands the text here.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .base import TimeCap


def _minutes(text: str) -> int | None:
    from ..master.timelimits import parse_slurm_minutes

    try:
        return parse_slurm_minutes(text) if text.strip() else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Qos:
    name: str
    max_wall: int | None  # minutes; None: not set
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Assoc:
    """One row of the user's associations."""

    account: str
    partition: str  # "" for the account's row that holds for every partition
    max_wall: int | None
    default_qos: str = ""
    qos: tuple[str, ...] = ()


@dataclass
class AccountingLimits:
    """What the cluster's accounting says about one user's wall-time limits."""

    qos: dict[str, Qos] = field(default_factory=dict)
    assocs: list[Assoc] = field(default_factory=list)
    default_account: str = ""
    partition_qos: dict[str, str] = field(default_factory=dict)  # partition -> its QOS


def enforces_limits(show_config: str) -> bool:
    """``scontrol show config`` -> whether QOS and association limits hold for jobs."""
    m = re.search(r"^AccountingStorageEnforce\s*=\s*(.*)$", show_config, re.M)
    words = {w.strip().lower() for w in m.group(1).split(",")} if m else set()
    return bool(words & {"limits", "safe"})


def parse_qos(out: str) -> dict[str, Qos]:
    """``sacctmgr -nP show qos format=Name,MaxWall,Flags``."""
    table: dict[str, Qos] = {}
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) < 2 or not parts[0].strip():
            continue
        name = parts[0].strip().lower()
        flags = frozenset(f.strip().lower() for f in (parts[2] if len(parts) > 2 else "").split(",")
                          if f.strip())
        table[name] = Qos(name, _minutes(parts[1]), flags)
    return table


def parse_assocs(out: str) -> list[Assoc]:
    """``sacctmgr -nP show assoc where user=U format=Account,Partition,MaxWall,DefaultQOS,QOS``."""
    rows = []
    for line in out.splitlines():
        parts = (line.split("|") + [""] * 5)[:5]
        if not parts[0].strip():
            continue
        rows.append(Assoc(account=parts[0].strip().lower(), partition=parts[1].strip().lower(),
                          max_wall=_minutes(parts[2]), default_qos=parts[3].strip().lower(),
                          qos=tuple(q.strip().lower() for q in parts[4].split(",") if q.strip())))
    return rows


def parse_partition_qos(out: str) -> dict[str, str]:
    """``scontrol show partition -o`` -> {partition: its QOS} for partitions that have one."""
    found = {}
    for line in out.splitlines():
        name = re.search(r"(?:^|\s)PartitionName=(\S+)", line)
        qos = re.search(r"(?:^|\s)QoS=(\S+)", line)
        if name and qos and qos.group(1).upper() not in ("N/A", "(NULL)", ""):
            found[name.group(1).lower()] = qos.group(1).lower()
    return found


def _assoc(rows: Sequence[Assoc], account: str, partition: str) -> Assoc | None:
    mine = [a for a in rows if a.account == account]
    return (next((a for a in mine if a.partition == partition), None)
            or next((a for a in mine if not a.partition), None))


def job_qos(qos: str | None, assoc: Assoc | None) -> str:
    """The QOS a job runs under when it asks for ``qos`` (None: none asked for)."""
    if qos:
        return qos.lower()
    if assoc is not None and assoc.default_qos:
        return assoc.default_qos
    if assoc is not None and len(assoc.qos) == 1:
        return assoc.qos[0]
    return "normal"


def time_cap(partition: str | None, partition_max: int | None, *, qos: str | None = None,
             account: str | None = None, accounting: AccountingLimits | None = None) -> TimeCap:
    """The cap on a job's time limit in ``partition`` (its ``MaxTime``: ``partition_max``),
    asking for ``qos`` and ``account`` (None: the defaults). ``accounting``: None where the
    cluster does not enforce accounting limits (or they could not be read)."""
    part = partition.lower() if partition else ""
    by_partition = (TimeCap(partition_max, f"partition {partition} MaxTime")
                    if partition_max is not None else TimeCap(None))
    if accounting is None:
        return by_partition
    acct = (account or accounting.default_account).lower()
    assoc = _assoc(accounting.assocs, acct, part)
    mine = job_qos(qos, assoc)
    order = [accounting.partition_qos.get(part), mine]
    first = accounting.qos.get(mine)
    if first is not None and "overpartqos" in first.flags:
        order.reverse()
    wall: TimeCap | None = None
    over_partition = False
    for name in order:
        q = accounting.qos.get(name) if name else None
        if q is not None and q.max_wall is not None:
            wall, over_partition = TimeCap(q.max_wall, f"QOS {q.name} MaxWall"), \
                "partitiontimelimit" in q.flags
            break
    if wall is None and assoc is not None and assoc.max_wall is not None:
        where = f" partition {assoc.partition}" if assoc.partition else ""
        wall = TimeCap(assoc.max_wall, f"association (account {assoc.account}{where}) MaxWall")
    if wall is None or wall.minutes is None:
        return by_partition
    if over_partition or by_partition.minutes is None or wall.minutes < by_partition.minutes:
        return wall
    return by_partition


__all__ = ["Qos", "Assoc", "AccountingLimits", "enforces_limits", "parse_qos", "parse_assocs",
           "parse_partition_qos", "job_qos", "time_cap"]

"""Why Slurm keeps a job pending, in a researcher's words: does it start by waiting, once other
jobs (yours or your group's) end, or never as it was submitted?

The reason is squeue's ``%r`` (https://slurm.schedmd.com/job_reason_codes.html); sacct's
``Reason`` is the one the accounting database got when the job was submitted, not today's.
Pure: a reason in, a ``Pending`` out. A reason this table does not know is taken as a wait,
shown as Slurm names it: an unknown reason must not alarm anyone.
"""
from __future__ import annotations

import re

from .base import LIMIT, STUCK, WAITS, Pending

_HOW_MUCH = {"Wall": "time", "Node": "nodes", "Cpu": "CPUs", "CPU": "CPUs", "Mem": "memory",
             "GRES": "GPUs (GRES)", "TRES": "resources (TRES)", "Billing": "billing units"}

# exact reasons first; the patterns below cover the families (AssocGrp*, QOSMax*PerJob*, ...)
_EXACT: dict[str, tuple[str, str]] = {
    "None": (WAITS, "not scheduled yet"),
    "Priority": (WAITS, "other jobs come first in the queue"),
    "Resources": (WAITS, "waits for nodes to free up"),
    "BeginTime": (WAITS, "waits for its start time"),
    "Dependency": (WAITS, "waits for the jobs it depends on"),
    "JobArrayTaskLimit": (LIMIT, "its array runs as many tasks at once as it may"),
    "Reservation": (WAITS, "waits for its reservation to start"),
    "ReqNodeNotAvail": (WAITS, "the nodes it can use are reserved or down (often maintenance)"),
    "PartitionDown": (WAITS, "its partition is down: it starts once the partition is up"),
    "PartitionInactive": (WAITS, "its partition is inactive: it starts once it is active"),
    "NodeDown": (WAITS, "a node it needs is down"),
    "Licenses": (WAITS, "waits for licenses"),
    "Cleaning": (WAITS, "requeued; waits while its last run is cleaned up"),
    "AccountingPolicy": (LIMIT, "an accounting limit holds it back"),
    "QOSJobLimit": (LIMIT, "its QOS runs as many jobs at once as it may: starts as others end"),
    "QOSUsageThreshold": (LIMIT, "its QOS has used its share for now"),
    "PartitionTimeLimit": (STUCK, "asks for more time than the partition allows: lower "
                                  "slurm.timeout_min (or use timeout_min: auto)"),
    "PartitionNodeLimit": (STUCK, "asks for more nodes than the partition allows: lower "
                                  "slurm.nodes"),
    "PartitionConfig": (STUCK, "asks for what the partition cannot give (GPUs, memory, CPUs): "
                               "change the slurm section or slurm.partition"),
    "BadConstraints": (STUCK, "no node matches what it asks for (slurm.constraint, "
                              "gpus_per_node, mem_gb, cpus_per_task): change the slurm section"),
    "DependencyNeverSatisfied": (STUCK, "the job it depends on failed: it never starts"),
    "InvalidAccount": (STUCK, "its account is not valid: fix slurm.account"),
    "AccountNotAllowed": (STUCK, "its account may not use this partition: fix slurm.account or "
                                 "slurm.partition"),
    "InvalidQOS": (STUCK, "its QOS is not valid: fix slurm.qos"),
    "QOSNotAllowed": (STUCK, "its QOS may not be used here: fix slurm.qos or slurm.partition"),
    "JobHeldUser": (STUCK, "held by its user (scontrol hold, or --hold): `scontrol release {job}` "
                           "lets it start"),
    "JobHeldAdmin": (STUCK, "held by an administrator (Slurm holds a job whose launch failed): "
                            "ask them, or `scontrol release {job}` where you may"),
}


def _family(reason: str) -> tuple[str, str] | None:
    m = re.fullmatch(r"(Assoc|QOS)(Grp|Max)(\w*?)(PerJob|PerNode|PerUser|PerAccount)?(Limit|"
                     r"RunMinutes|Minutes)?", reason)
    if m:
        who = "your association" if m.group(1) == "Assoc" else "its QOS"
        what = next((v for k, v in _HOW_MUCH.items() if k in (m.group(3) or "")), "jobs")
        per = m.group(4)
        if m.group(2) == "Grp" or per in ("PerUser", "PerAccount") or "Jobs" in (m.group(3) or ""):
            return LIMIT, (f"{who} has reached its limit on {what} in use at once: starts as "
                           f"other jobs end")
        return STUCK, (f"asks for more {what} than {who} allows per job: lower it in the slurm "
                       f"section, or pick a slurm.qos that allows it")
    m = re.fullmatch(r"QOSMin(\w+?)(NotSatisfied|Limit)?", reason)
    if m:
        what = next((v for k, v in _HOW_MUCH.items() if k in m.group(1)), m.group(1))
        return STUCK, (f"asks for {what} below its QOS's minimum: raise it in the slurm "
                       f"section, or pick another slurm.qos")
    if reason.startswith("Nodes_required_for_job_are_DOWN"):
        return WAITS, "the nodes it needs are down, drained or taken by higher priority jobs"
    return None


#: the job asks for a longer time limit than its partition, QOS or association allows
_TOO_LONG = re.compile(r"PartitionTimeLimit|(QOS|Assoc)MaxWallDurationPerJobLimit")


def classify(reason: str, job: str = "") -> Pending:
    """What Slurm's pending ``reason`` means for ``job`` (its id, for what to run)."""
    reason = (reason or "None").strip() or "None"
    head = reason.split(",")[0].strip()  # "ReqNodeNotAvail, Reserved for maintenance"
    kind, means = _EXACT.get(head) or _family(head) or (WAITS, f"Slurm's reason: {reason}")
    if "launch failed requeued held" in reason.lower():
        kind, means = _EXACT["JobHeldAdmin"]
    return Pending(reason=reason, kind=kind, means=means.replace("{job}", job or "JOBID"),
                   too_long=_TOO_LONG.fullmatch(head) is not None)

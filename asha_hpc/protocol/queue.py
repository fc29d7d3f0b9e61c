"""``<exp>/queue.json``: why the scheduler keeps the search's jobs pending, as the master saw it
at its last poll; the master writes it when that changes, ``status`` reads it.

    {"jobs": [{"job": "2282", "trials": [5], "reason": "QOSMaxWallDurationPerJobLimit",
               "kind": "stuck", "means": "...", "since": 1796300000.0}, ...]}

``since``: when the master first saw the job pending for that reason. ``kind`` and ``means``:
backends/base.py's ``Pending``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .expdir import ExpDir, atomic_write_json, read_json


@dataclass(frozen=True)
class QueuedJob:
    job: str
    trials: list[int]  # the trials it runs (none: a pool worker's job)
    reason: str
    kind: str
    means: str
    since: float


def write_queue(exp: ExpDir, jobs: list[QueuedJob]) -> None:
    atomic_write_json(exp.queue, {"jobs": [asdict(j) for j in jobs]}, durable=False)


def read_queue(exp: ExpDir) -> list[QueuedJob] | None:
    """The pending jobs the master last wrote; None without a readable file."""
    obj, _ = read_json(exp.queue)
    if not isinstance(obj, dict) or not isinstance(obj.get("jobs"), list):
        return None
    out = []
    for j in obj["jobs"]:
        try:
            out.append(QueuedJob(job=str(j["job"]), trials=[int(t) for t in j.get("trials", [])],
                                 reason=str(j["reason"]), kind=str(j["kind"]),
                                 means=str(j.get("means", "")), since=float(j["since"])))
        except (KeyError, TypeError, ValueError):
            continue  # a torn or foreign entry: the others still show
    return out

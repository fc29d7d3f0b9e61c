"""``<exp>/queue.json``: why the search's jobs do not run yet, as the master saw it at its last
poll: why the scheduler keeps each job pending, and whether submissions wait because the
scheduler could not take jobs; the master writes it when that changes, ``status`` reads it.

    {"jobs": [{"job": "2282", "trials": [5], "reason": "QOSMaxWallDurationPerJobLimit",
               "kind": "stuck", "means": "...", "since": 1796300000.0}, ...],
     "submissions_wait": {"since": 1796300100.0, "error": "sbatch failed ..."} or null}

``since``: when the master first saw the job pending for that reason, or the scheduler refuse
a submission. ``kind`` and ``means``: backends/base.py's ``Pending``.
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


@dataclass(frozen=True)
class SubmitWait:
    since: float  # the first submission the scheduler could not take, of this outage
    error: str  # the last one's error


@dataclass(frozen=True)
class Queue:
    jobs: list[QueuedJob]
    submissions_wait: SubmitWait | None


def write_queue(exp: ExpDir, queue: Queue) -> None:
    wait = queue.submissions_wait
    atomic_write_json(exp.queue, {"jobs": [asdict(j) for j in queue.jobs],
                                  "submissions_wait": asdict(wait) if wait else None},
                      durable=False)


def read_queue(exp: ExpDir) -> Queue | None:
    """What the master last wrote; None without a readable file."""
    obj, _ = read_json(exp.queue)
    if not isinstance(obj, dict) or not isinstance(obj.get("jobs"), list):
        return None
    jobs = []
    for j in obj["jobs"]:
        try:
            jobs.append(QueuedJob(job=str(j["job"]), trials=[int(t) for t in j.get("trials", [])],
                                  reason=str(j["reason"]), kind=str(j["kind"]),
                                  means=str(j.get("means", "")), since=float(j["since"])))
        except (KeyError, TypeError, ValueError, OverflowError):
            continue  # a torn or foreign entry: the others still show
    wait = obj.get("submissions_wait")
    try:
        sw = SubmitWait(since=float(wait["since"]), error=str(wait["error"])) \
            if isinstance(wait, dict) else None
    except (KeyError, TypeError, ValueError):
        sw = None
    return Queue(jobs=jobs, submissions_wait=sw)

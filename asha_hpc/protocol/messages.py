"""The messages jobs send the master through the inbox, as typed records: every field of every
message the master reads is checked here, in one place, before anything acts on it.

A job writes ``inbox/<name>.json`` (expdir.publish); the master reads it with ``from_json``,
which returns a ``Ready``, ``Started`` or ``Result`` or raises ``MessageError`` naming the
field. Ids are non-negative integers, worker ids are plain names (never a path: the master
makes a folder and a slot file from them), a checkpoint path must lie in its own trial's
checkpoints folder, strings are bounded. A file that fails is moved aside, never acted on.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from . import records
from .expdir import ExpDir

RESULT_STATUSES = ("completed", "interrupted", "invalid_hp", "error")
WORKER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_ERROR = 4000  # characters of a traceback kept in the journal: its first line and its end
ERROR_HEAD = 500  # of them, at most this many of the first line (a rank's "rank 1 ... died")
MAX_TEXT = 512
# a failed command's error goes on with what it printed last, each line as it was: the line
# the summary shows is the command's own, not this one (master/state.py: error_summary)
COMMAND_STDERR = "; the end of its stderr:"


class MessageError(ValueError):
    """A message the master must not act on; the text names the field."""


def _int(body: dict[str, Any], key: str, required: bool = True) -> int | None:
    v = body.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise MessageError(f"'{key}' must be a non-negative integer, got {v!r:.60}")
    return v


def _num(body: dict[str, Any], key: str) -> float | None:
    v = body.get(key)
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return v
    return None  # optional measurements: a bad one is dropped, not fatal


def _text(body: dict[str, Any], key: str, limit: int = MAX_TEXT) -> str | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, int) and not isinstance(v, bool):
        v = str(v)  # a job id may come as a number
    if not isinstance(v, str):
        raise MessageError(f"'{key}' must be a string, got {type(v).__name__}")
    return v[-limit:]


def _error_text(body: dict[str, Any]) -> str | None:
    """A result's error, at most MAX_ERROR characters: its end (a traceback's exception), and
    its first line (the job's headline over a traceback: which rank died, and where)."""
    v = _text(body, "error", 10 * MAX_ERROR)
    if v is None or len(v) <= MAX_ERROR:
        return v
    head = v.split("\n", 1)[0][:ERROR_HEAD]
    return head + "\n[...]\n" + v[-(MAX_ERROR - len(head) - 7):]


def worker_id(v: Any) -> str:
    """A worker id, checked: a plain name that is safe as one folder name."""
    if not isinstance(v, str) or not WORKER_ID.fullmatch(v) or ".." in v:
        raise MessageError(f"'worker' must be a plain name (letters, digits, . _ -), got {v!r:.60}")
    return v


def _checkpoint(v: Any, exp_root: str, trial: int) -> str | None:
    """A checkpoint path inside ``<exp>/trials/<trial>/checkpoints/`` (as the job names it)."""
    if v is None:
        return None
    if not isinstance(v, str):
        raise MessageError("'checkpoint' must be a path string")
    p, base = PurePosixPath(v), PurePosixPath(ExpDir(Path(exp_root)).checkpoints(trial))
    # a folder moved or copied since the job wrote it names the same checkpoint from where it
    # was: its path inside the folder is what identifies it
    inside = base.relative_to(PurePosixPath(exp_root)).parts
    if ".." in p.parts or not p.name or p.parent.parts[-len(inside):] != inside:
        raise MessageError(f"'checkpoint' {v!r:.120} is not a checkpoint of trial {trial} "
                           f"(expected {base}/<name>)")
    return v if p.parent == base else str(base / p.name)


@dataclass(frozen=True)
class Ready:
    """A job waits on slot ``slot`` of ``worker`` for its next segment."""

    worker: str
    slot: int
    job_started: float | None = None
    host: str | None = None
    time: float | None = None  # when it began to wait, on the job's clock (older jobs: none)
    handoff: int | None = None  # the slot format it reads (handoff.VERSION; older jobs: none)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Ready:
        return cls(worker=worker_id(body.get("worker")), slot=_int(body, "slot") or 0,
                   job_started=_num(body, "job_started"), host=_text(body, "host"),
                   time=_num(body, "time"), handoff=_int(body, "handoff", required=False))


@dataclass(frozen=True)
class Started:
    """A job started running a segment attempt."""

    trial: int
    segment: int
    attempt: int
    host: str | None = None
    job_id: str | None = None

    @property
    def key(self):
        return self.trial, self.segment, self.attempt

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Started:
        return cls(trial=_int(body, "trial") or 0, segment=_int(body, "segment") or 0,
                   attempt=_int(body, "attempt") or 0, host=_text(body, "host"),
                   job_id=_text(body, "job_id"))

    def record(self) -> records.Started:
        return records.Started(trial=self.trial, segment=self.segment, attempt=self.attempt,
                               host=self.host, job_id=self.job_id)


@dataclass(frozen=True)
class Result(Started):
    """A segment attempt's result (jobmain.py says what each status means)."""

    status: str = "error"
    metrics: dict[str, Any] | None = None
    length: int | None = None
    error: str | None = None
    checkpoint: str | None = None
    started: float | None = None
    ended: float | None = None
    stop_reason: str | None = None
    extra: dict[str, Any] | None = None  # optional journal fields, present only when valid
    ready: Ready | None = None  # the job waits for another segment on this slot

    @classmethod
    def from_json(cls, body: dict[str, Any], exp_root: str = "", name: str = "") -> Result:
        s = Started.from_json(body)
        status, error = body.get("status"), _error_text(body)
        if status not in RESULT_STATUSES:  # a job of another release: an error, not a crash
            status, error = "error", f"unknown result status {status!r:.40} in {name}"
        metrics = body.get("metrics")
        if metrics is not None and not (isinstance(metrics, dict)
                                        and all(isinstance(k, str) for k in metrics)):
            raise MessageError("'metrics' must be an object with string keys")
        extra: dict[str, Any] = {}
        gpus = body.get("gpus")
        if isinstance(gpus, int) and not isinstance(gpus, bool) and gpus >= 0:
            extra["gpus"] = gpus
        if body.get("fatal") is True and status == "error":  # every trial would fail so
            extra["fatal"] = True
        if body.get("ends_trial") is True and status in ("error", "completed"):
            extra["ends_trial"] = True  # a retry would end alike; completed: the model is final
        if body.get("restored") is True:  # the code started from a checkpoint (fail-fast)
            extra["restored"] = True
        if body.get("reused") is True:  # a warm worker's process that had run other calls
            extra["reused"] = True
        said = body.get("warnings")  # the code's mistakes its job noticed (job/notes.py)
        if isinstance(said, list) and said and all(isinstance(x, str) for x in said):
            extra["warnings"] = [x[:MAX_TEXT] for x in said[:3]]
        skipped = body.get("skipped_checkpoints")
        if isinstance(skipped, list) and skipped and all(isinstance(x, str) for x in skipped):
            extra["skipped_checkpoints"] = [x[:MAX_TEXT] for x in skipped[:3]]
        ignored = body.get("ignored_checkpoint")  # its code never asked for it: from scratch
        if isinstance(ignored, str) and ignored and status == "completed":
            extra["ignored_checkpoint"] = ignored[:MAX_TEXT]
        if body.get("no_checkpoint") is True and status == "completed":  # promoted: from scratch
            extra["no_checkpoint"] = True
        for k in ("job_started", "reached"):  # run times and progress (timelimits.py)
            if _num(body, k) is not None:
                extra[k] = body[k]
        failed_node = _text(body, "failed_node")
        if status == "error" and failed_node:  # a peer's node, to blame instead of this one's
            extra["failed_node"] = failed_node
        ready = None
        if body.get("worker") is not None:
            ready = Ready(worker=worker_id(body["worker"]), slot=_int(body, "slot") or 0,
                          job_started=_num(body, "job_started"), host=s.host,
                          handoff=_int(body, "handoff", required=False))
            extra.update(worker=ready.worker, slot=ready.slot, waiting=bool(body.get("waiting")))
            if ready.handoff is not None:
                extra["handoff"] = ready.handoff
        full = body.get("disk_full")
        if status == "error" and isinstance(full, dict) and isinstance(full.get("path"), str):
            extra["disk_full"] = {"path": full["path"][-MAX_TEXT:], "quota": bool(full.get("quota"))}
            for k in ("free", "need"):
                if isinstance(full.get(k), int) and not isinstance(full[k], bool):
                    extra["disk_full"][k] = full[k]
        return cls(trial=s.trial, segment=s.segment, attempt=s.attempt, host=s.host,
                   job_id=s.job_id, status=status, metrics=metrics,
                   length=_int(body, "length", required=False), error=error,
                   checkpoint=_checkpoint(body.get("checkpoint"), exp_root, s.trial) if exp_root
                   else _text(body, "checkpoint"),
                   started=_num(body, "started"), ended=_num(body, "ended"),
                   stop_reason=_text(body, "stop_reason"), extra=extra or None,
                   ready=ready if extra.get("waiting") else None)

    def record(self) -> records.Result:
        return records.Result(trial=self.trial, segment=self.segment, attempt=self.attempt,
                              host=self.host, job_id=self.job_id, status=self.status,
                              metrics=self.metrics, length=self.length, error=self.error,
                              checkpoint=self.checkpoint, started=self.started, ended=self.ended,
                              stop_reason=self.stop_reason, **(self.extra or {}))


Message = Ready | Started | Result


def from_json(body: Any, exp_root: str = "", name: str = "") -> Message:
    """The typed message in an inbox file's JSON, or MessageError naming what is wrong."""
    if not isinstance(body, dict):
        raise MessageError("not a JSON object")
    kind = body.get("type")
    if kind == "ready":
        return Ready.from_json(body)
    if kind == "started":
        return Started.from_json(body)
    if kind == "result":
        return Result.from_json(body, exp_root, name)
    raise MessageError(f"unknown message type {kind!r:.40} (not an asha_hpc message)")

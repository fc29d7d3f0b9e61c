"""What ``asha-hpc resume --max-compute`` and ``asha-hpc cancel`` ask a running master, and
the master's answer to the first.

    <exp>/max_compute.request   written by the CLI:   ``<units>\\n<token>\\n``
    <exp>/max_compute.answer    written by the master: ``{"token": ..., "taken": ..., "line": ...}``
    <exp>/cancel.request        written by the CLI:   ``<time asked>\\n``; the master removes it
                                once it has cancelled the jobs and journaled the cancel

The master removes the request once it has journaled the cap, or refused it, and answers with
the request's token, so the command that asked can tell its own answer from an older one, or
from the answer to a request that replaced its own, and print what the master did. A request
without a token (the release that introduced the file wrote only the number) is still taken;
its answer carries an empty token.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from .expdir import ExpDir, atomic_write, atomic_write_json, read_json


@dataclass(frozen=True)
class CapRequest:
    units: int
    token: str


@dataclass(frozen=True)
class CapAnswer:
    token: str
    taken: bool  # journaled (or already the cap); False: refused, nothing changed
    line: str  # what the master said, as in its own log


def write_cap_request(exp: ExpDir, units: int) -> str:
    """Ask the running master for ``units``; returns the token its answer will carry."""
    token = f"{os.getpid()}-{time.time_ns()}"
    atomic_write(exp.max_compute_request, f"{units}\n{token}\n".encode())
    return token


def read_cap_request(path: Path) -> CapRequest:
    """The request in ``path``; ValueError (or OSError) when it holds no whole number."""
    # Bytes, not read_text: its newline translation would take a lone "\r" as a line break.
    first, _, rest = path.read_bytes().decode().strip().partition("\n")
    return CapRequest(units=int(first.strip()), token=rest.strip())


def write_cap_answer(exp: ExpDir, answer: CapAnswer) -> None:
    atomic_write_json(exp.max_compute_answer,
                      {"token": answer.token, "taken": answer.taken, "line": answer.line})


def read_cap_answer(exp: ExpDir) -> CapAnswer | None:
    """The master's last answer (to whichever request its token names); None before any."""
    obj, _ = read_json(exp.max_compute_answer)
    if not isinstance(obj, dict) or not isinstance(obj.get("token"), str):
        return None
    return CapAnswer(token=obj["token"], taken=obj.get("taken") is True,
                     line=str(obj.get("line", "")))


def write_cancel_request(exp: ExpDir) -> None:
    atomic_write(exp.cancel_request, f"{time.time()}\n".encode())


def cancel_asked_at(exp: ExpDir) -> float | None:
    """When the waiting cancel request was made (the file's time when its text is not a time);
    None when none waits."""
    try:
        text = exp.cancel_request.read_bytes().decode(errors="replace").strip()
        asked = exp.cancel_request.stat().st_mtime
    except OSError:
        return None
    try:
        written = float(text)
    except ValueError:
        return asked
    return written if 0 < written < 1e10 else asked  # a time: not NaN, not past year 2286

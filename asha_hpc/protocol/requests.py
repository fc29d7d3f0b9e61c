"""What ``asha-hpc resume``, ``cancel`` and ``pause`` ask a running master, and the master's
answers.

    <exp>/max_compute.request   written by ``resume --max-compute``: ``<units>\\n<token>\\n``
    <exp>/max_compute.answer    written by the master: ``{"token": ..., "taken": ..., "line": ...}``
    <exp>/readmit.request       written by ``resume --readmit-node``: ``<node> [<node> ...]\\n<token>\\n``
    <exp>/readmit.answer        written by the master, as max_compute.answer
    <exp>/cancel.request        written by the CLI:   ``<time asked>\\n``; the master removes it
                                once it has cancelled the jobs and journaled the cancel
    <exp>/pause.request         written by the CLI:   ``<time asked>\\n``; the master removes it
                                once it has told the jobs to stop (it journals the pause once
                                they have)

The master removes a request once it has journaled what it asks, or refused it, and answers
with the request's token, so the command that asked can tell its own answer from an older one,
or from the answer to a request that replaced its own, and print what the master did. A
max_compute request without a token (the release that introduced the file wrote only the
number) is still taken; its answer carries an empty token.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from .expdir import ExpDir, atomic_write, atomic_write_json, read_json


@dataclass(frozen=True)
class Request:
    body: str  # the first line: what is asked
    token: str


@dataclass(frozen=True)
class Answer:
    token: str
    taken: bool  # journaled (or already so); False: refused, nothing changed
    line: str  # what the master said, as in its own log


@dataclass(frozen=True)
class CapRequest:
    units: int
    token: str


CapAnswer = Answer  # the name tests and earlier code use


def write_request(path: Path, body: str) -> str:
    """Leave the running master ``body``; returns the token its answer will carry."""
    token = f"{os.getpid()}-{time.time_ns()}"
    atomic_write(path, f"{body}\n{token}\n".encode())
    return token


def read_request(path: Path) -> Request:
    # Bytes, not read_text: its newline translation would take a lone "\r" as a line break.
    first, _, rest = path.read_bytes().decode().strip().partition("\n")
    return Request(body=first.strip(), token=rest.strip())


def write_answer(path: Path, answer: Answer) -> None:
    atomic_write_json(path, {"token": answer.token, "taken": answer.taken, "line": answer.line})


def read_answer(path: Path) -> Answer | None:
    """The master's last answer (to whichever request its token names); None before any."""
    obj, _ = read_json(path)
    if not isinstance(obj, dict) or not isinstance(obj.get("token"), str):
        return None
    return Answer(token=obj["token"], taken=obj.get("taken") is True,
                  line=str(obj.get("line", "")))


def write_cap_request(exp: ExpDir, units: int) -> str:
    """Ask the running master for ``units``; returns the token its answer will carry."""
    return write_request(exp.max_compute_request, str(units))


def read_cap_request(path: Path) -> CapRequest:
    """The request in ``path``; ValueError (or OSError) when it holds no whole number."""
    req = read_request(path)
    return CapRequest(units=int(req.body), token=req.token)


def write_cap_answer(exp: ExpDir, answer: Answer) -> None:
    write_answer(exp.max_compute_answer, answer)


def read_cap_answer(exp: ExpDir) -> Answer | None:
    return read_answer(exp.max_compute_answer)


def write_readmit_request(exp: ExpDir, nodes: list[str]) -> str:
    """Ask the running master to take back the excluded ``nodes``; returns the answer's token."""
    return write_request(exp.readmit_request, " ".join(nodes))


def read_readmit_request(path: Path) -> tuple[list[str], str]:
    """The nodes a request asks back, and its token (OSError: no request, or unreadable)."""
    req = read_request(path)
    return req.body.split(), req.token


def write_cancel_request(exp: ExpDir) -> None:
    atomic_write(exp.cancel_request, f"{time.time()}\n".encode())


def write_pause_request(exp: ExpDir) -> None:
    atomic_write(exp.pause_request, f"{time.time()}\n".encode())


def cancel_asked_at(exp: ExpDir) -> float | None:
    """When the waiting cancel request was made; None when none waits."""
    return asked_at(exp.cancel_request)


def asked_at(request: Path) -> float | None:
    """When the waiting cancel or pause ``request`` was made (the file's time when its text is
    not a time); None when none waits."""
    try:
        text = request.read_bytes().decode(errors="replace").strip()
        asked = request.stat().st_mtime
    except OSError:
        return None
    try:
        written = float(text)
    except ValueError:
        return asked
    return written if 0 < written < 1e10 else asked  # a time: not NaN, not past year 2286

"""Warnings the trial's code earns (a report short of the segment's length, a report every
epoch, Ray's result keys, a Trainer's output_dir outside the trial): printed in the job's log
as they happen, and the first few of each attempt go with its result to the master, which
says each kind once for the search. People watch the master's lines; a job's log is read
after something went wrong, and these mistakes cost compute without failing anything."""
from __future__ import annotations

import sys
from collections.abc import Callable

PER_RESULT = 3  # warnings one result carries (each said once per attempt)

_pending: list[str] = []
# in a command's own process (command_trial.py): how a warning reaches its job, which sends it
forward: Callable[[str], None] | None = None


def warn(text: str) -> None:
    """Say ``text`` in the job's log now, and send it with the attempt's result."""
    print(f"asha_hpc: warning: {text}", file=sys.stderr, flush=True)
    if forward is not None:
        forward(text)
    else:
        carry(text)


def carry(text: str) -> None:
    """Send ``text`` with the attempt's result (a command's, said in its log already)."""
    if text not in _pending:
        _pending.append(text)


def take() -> list[str]:
    """The warnings since the last call (at most PER_RESULT), for the result being published."""
    out = _pending[:PER_RESULT]
    _pending.clear()
    return out

"""torch DataLoader worker processes outlive the first SIGTERM in a job.

Slurm's ``scancel`` and its preemption send SIGTERM to every process of a job. torch's loader
worker installs a C handler that ends the worker at once unless its parent sent the signal; the
training process then fails on the batch it waits for ("DataLoader worker (pid N) is killed by
signal: Terminated"), or on the SIGCHLD that follows, before its code can checkpoint. In a job,
a worker ignores its first SIGTERM instead: the training code saves where it is and stops, and
its loader ends its workers as it always does. A second SIGTERM ends a worker as torch's handler
would, and a worker whose parent is gone leaves by itself (torch's watchdog).

``keep_through_sigterm()`` puts this in torch's worker loop for the process (it is called where
a trial's code runs: the job, a command's ``AshaCallback()``, the Determined shim); it does
nothing until the code has imported ``torch.utils.data``, so code without torch never imports
it."""
from __future__ import annotations

import signal
import sys
from typing import Any

_torch_loop: Any = None  # torch's worker loop, once this process has put ours in its place


def keep_through_sigterm() -> None:
    """Loader workers started from now on in this process ignore their first SIGTERM (and
    those of any process forked from it)."""
    global _torch_loop
    worker = sys.modules.get("torch.utils.data._utils.worker")
    if worker is None or _torch_loop is not None:
        return
    loop = getattr(worker, "_worker_loop", None)
    if loop is None or loop is _worker_loop:
        return
    _torch_loop = loop
    worker._worker_loop = _worker_loop  # type: ignore[attr-defined]


def _worker_loop(*args: Any, **kwargs: Any) -> Any:
    """torch's worker loop, with its signal handlers followed by ours. Runs in the worker: a
    forked one finds torch's loop in ``_torch_loop``; a spawned one (``multiprocessing_context=
    "spawn"``, Python 3.14's forkserver) imports this module anew, where torch's module was never
    changed."""
    from torch.utils.data._utils import signal_handling, worker

    loop = _torch_loop if _torch_loop is not None else worker._worker_loop
    torch_sets = getattr(signal_handling, "_set_worker_signal_handlers", None)
    if torch_sets is not None:
        def torch_then_ours(*a: Any, **k: Any) -> Any:
            out = torch_sets(*a, **k)
            signal.signal(signal.SIGTERM, _second_sigterm_ends)
            return out

        signal_handling._set_worker_signal_handlers = torch_then_ours
    return loop(*args, **kwargs)


def _second_sigterm_ends(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

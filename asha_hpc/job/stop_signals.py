"""Stop signals in a command's own process (the user's script: the Determined shim, the
command side of ``asha_hpc.Trial``). On Slurm, ``scancel`` (``asha-hpc cancel``, a preemption)
sends SIGTERM, and a time limit SIGUSR2, to every process of the job, the command's included;
their default action ends the script before it can checkpoint (``asha-hpc pause`` sends
SIGURG, which ends nobody: protocol/signals.py). Once a script has
asked whether to stop (``should_preempt()`` / ``should_stop()``), a stop signal only makes that
answer true, so it checkpoints and returns, as it does for the job's stop file. A script that
never asks, and a second signal, end the process as the default action would, so ``kill``
still stops a script that does not listen. A second signal within ``SAME_STOP_S`` of the first
is the same stop, not a second one: on Slurm, a script under torchrun gets scancel's SIGTERM
and, at once, torchrun's own, which it sends its workers when it is signalled."""
from __future__ import annotations

import os
import signal
import time
from typing import Any

from . import loader_workers

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR2)
SAME_STOP_S = 5.0

_received: str | None = None  # the first stop signal's name (set in the handler: no locks)
_received_at = 0.0  # ... and when (time.monotonic())
_listening = False  # the script asked whether to stop at least once
_installed: dict[int, Any] = {}  # signal -> the handler before ours


def _handler(signum: int, frame: Any) -> None:
    global _received, _received_at
    if _received is not None and time.monotonic() - _received_at < SAME_STOP_S:
        return
    if _received is not None or not _listening:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _received, _received_at = signal.Signals(signum).name, time.monotonic()


def install() -> None:
    """Catch the stop signals whose handler is the default one (not a framework's own, such
    as Lightning's); only the main thread can. The script's DataLoader workers, which get
    Slurm's SIGTERM too, outlive it (``loader_workers``)."""
    loader_workers.keep_through_sigterm()
    for sig in STOP_SIGNALS:
        try:
            if sig not in _installed and signal.getsignal(sig) == signal.SIG_DFL:
                _installed[sig] = signal.signal(sig, _handler)
        except ValueError:  # not the main thread
            return


def uninstall() -> None:
    for sig, before in list(_installed.items()):
        try:
            if signal.getsignal(sig) is _handler:
                signal.signal(sig, before)
        except ValueError:
            return
        del _installed[sig]


def received() -> str | None:
    """The stop signal that arrived (``SIGTERM``), once the script listens; None before."""
    global _listening
    _listening = True
    return _received

"""A job ends even where its trial's code left threads running.

Python exits only once every non-daemon thread has ended: a thread the code started and never
stopped (an uploader, a prefetcher, a metrics pusher, a ``Timer``) kept the job's process alive
after its last result was out, and on Slurm held the job's GPUs until its time limit. Once the
job's main thread is done, such threads get the grace that code whose segments are over gets
to return (``trial.rank_exit_grace``: 300 s, ``ASHA_RANK_EXIT_GRACE_S`` in the job's
environment; 0: for ever), room for a last upload that such a thread exists for; then the job
says which were left and ends without them, as Slurm's end of a job would.
"""
from __future__ import annotations

import os
import sys
import threading
import time

from .trial import rank_exit_grace

_LOOK_S = 0.2


def end_despite_threads(failed: bool) -> None:
    """From the job's main thread, as it finishes: watch for threads that outlive it.
    ``failed``: the job's main code ended by an exception (the exit status says so)."""
    watch = threading.Thread(target=_watch, args=(threading.main_thread(), failed),
                             name="asha-leftover-threads", daemon=True)
    watch.start()


def _left(main: threading.Thread) -> list[threading.Thread]:
    return [t for t in threading.enumerate()
            if t.is_alive() and not t.daemon and t is not main
            and t is not threading.current_thread()]


def _watch(main: threading.Thread, failed: bool) -> None:
    while main.is_alive():  # until the interpreter's shutdown, which waits for the rest
        time.sleep(_LOOK_S)
    grace = rank_exit_grace()
    if grace <= 0:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _left(main):
            return
        time.sleep(_LOOK_S)
    left = _left(main)
    if not left:
        return
    names = ", ".join(repr(t.name) for t in left[:5]) + (", ..." if len(left) > 5 else "")
    sys.stderr.write(
        f"asha_hpc: the trial's code left {len(left)} thread{'s' if len(left) > 1 else ''} "
        f"running ({names}), {grace:g} s after the job's work was done; the job ends "
        f"without {'them' if len(left) > 1 else 'it'} (make such threads daemon=True, or "
        f"join them before the function returns; ASHA_RANK_EXIT_GRACE_S sets the grace)\n")
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(1 if failed else 0)

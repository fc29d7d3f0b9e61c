"""torch DataLoader worker processes outlive the first SIGTERM in a job.

Slurm's ``scancel`` and its preemption send SIGTERM to every process of a job. torch's loader
worker installs a C handler that ends the worker at once unless its parent sent the signal; the
training process then fails on the batch it waits for ("DataLoader worker (pid N) is killed by
signal: Terminated"), or on the SIGCHLD that follows, before its code can checkpoint. In a job,
a worker ignores its first SIGTERM instead: the training code saves where it is and stops, and
its loader ends its workers as it always does. A second SIGTERM ends a worker as torch's handler
would, and a worker whose parent is gone leaves by itself (torch's watchdog). Workers still alive
when the training process exits (held by an error's traceback, or by a loader with
``persistent_workers``) are ended by it: multiprocessing's own exit sends each one SIGTERM, which
it would ignore, and waits for it without end.

A forked worker has its parent's handler until torch's loop sets its own. A worker of
``multiprocessing_context="spawn"`` starts as a new program, and one of a forkserver (Python
3.14's default start method on Linux) as a fork of that server: until it reaches torch's loop
(seconds: importing torch, unpickling the dataset; at every epoch without
``persistent_workers``) it would have the default SIGTERM, which ends it. A SIGTERM meanwhile
is the one it ignores:
- a spawned worker's program, the ``-c`` line of multiprocessing's command, ignores SIGTERM
  first thing. Only an ignored signal outlives exec, and setting that in the training process
  itself would lose a SIGTERM another of its threads takes meanwhile;
- a worker unpickles the loop it runs before the dataset, and ours ignores SIGTERM as it is
  unpickled. A forkserver's worker is covered from there: its server must keep the default
  (the program's own processes come from it too). Until then it has the default: the server
  forks it at once, and it waits for what the loader sends it. That is milliseconds on an
  idle node; on a loaded one (traced with strace, two CPU burners beside it) the second worker
  still waited after 4 s, the SIGTERM ended it, the loader failed, and the first worker then
  found its queue's semaphore unlinked. The segment is then interrupted without a checkpoint
  and retried from the last one. The server itself also ends on Slurm's SIGTERM; the next
  loader starts a new one.

``keep_through_sigterm()`` puts this in torch's loader for the process (it is called where
a trial's code runs: the job, a command's ``AshaCallback()``, the Determined shim); it does
nothing until the code has imported ``torch.utils.data``, so code without torch never imports
it."""
from __future__ import annotations

import atexit
import functools
import signal
import sys
import threading
import weakref
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
    if loop is None or loop is WORKER_LOOP:
        return
    _torch_loop = loop
    worker._worker_loop = WORKER_LOOP  # type: ignore[attr-defined]
    loader = sys.modules.get("torch.utils.data.dataloader")
    starts = getattr(loader, "_MultiProcessingDataLoaderIter", None)
    if starts is not None:
        import multiprocessing.spawn

        starts.__init__ = _starting_workers(starts.__init__)
        multiprocessing.spawn.get_command_line = _ignoring_sigterm(
            multiprocessing.spawn.get_command_line)
        # registered after multiprocessing's exit function (torch imported multiprocessing), so
        # it runs before it: that one would send each worker one SIGTERM and wait for it to end
        atexit.register(_end_workers_left)


_starting = threading.local()  # .workers: this thread is in a loader's start of its workers
_loaders: weakref.WeakSet[Any] = weakref.WeakSet()  # the loaders' iterators that started workers
IGNORE_SIGTERM = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); "


def _starting_workers(start: Any) -> Any:
    """``start`` (the loader's, which starts its workers) marking this thread meanwhile."""
    @functools.wraps(start)
    def marked(self: Any, *args: Any, **kwargs: Any) -> Any:
        _starting.workers = True
        try:
            out = start(self, *args, **kwargs)
        finally:
            _starting.workers = False
        _loaders.add(self)
        return out

    return marked


def _end_workers_left() -> None:
    """At the exit of the training process: the workers of loaders still alive then are
    ended at once, as torch's own handler ends a worker whose parent signals it."""
    iterators = list(_loaders)
    torch_c = getattr(sys.modules.get("torch"), "_C", None)
    for it in iterators:
        # as torch's own shutdown does first: its SIGCHLD handler would take the end of a
        # worker it still watches for a crash, and raise that over the error being reported
        if getattr(it, "_worker_pids_set", False) and torch_c is not None:
            try:
                torch_c._remove_worker_pids(id(it))
                it._worker_pids_set = False
            except (RuntimeError, AttributeError):
                pass
    workers = [w for it in iterators for w in getattr(it, "_workers", ())]
    for w in workers:
        try:
            if w.is_alive():
                w.kill()
        except (OSError, ValueError, AssertionError):  # gone, closed, or not this process's
            continue
    for w in workers:
        try:
            w.join(timeout=5)
        except (OSError, ValueError, AssertionError):
            continue


def _ignoring_sigterm(command_line: Any) -> Any:
    """multiprocessing's spawn command, whose ``-c`` program ignores SIGTERM first where a
    loader starts its workers (any other process this program spawns is left as it was)."""
    @functools.wraps(command_line)
    def command(*args: Any, **kwargs: Any) -> Any:
        cmd = command_line(*args, **kwargs)
        if getattr(_starting, "workers", False) and "-c" in cmd[:-1]:
            i = cmd.index("-c") + 1
            cmd = [*cmd[:i], IGNORE_SIGTERM + cmd[i], *cmd[i + 1:]]
        return cmd

    return command


class _WorkerLoop:
    """torch's worker loop as the loader hands it to its workers (``_worker_loop``): a forked
    worker calls it; a spawned or forkserver one unpickles it first."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _worker_loop(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_unpickled_in_worker, ())


def _unpickled_in_worker() -> _WorkerLoop:
    """In a started worker, before the dataset is unpickled: SIGTERM is ignored until the
    loop sets its handler."""
    try:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except ValueError:  # not the main thread: not a worker starting
        pass
    return WORKER_LOOP


WORKER_LOOP = _WorkerLoop()


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
    else:  # a spawned worker must not ignore SIGTERM for good
        signal.signal(signal.SIGTERM, _second_sigterm_ends)
    return loop(*args, **kwargs)


def _second_sigterm_ends(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

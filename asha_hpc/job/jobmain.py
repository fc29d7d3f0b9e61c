"""The job side: run one attempt of one trial segment and publish its result.

``run_segment(spec)`` is what every backend runs inside its job (pickled by submitit). It never
raises for the user's errors: whatever happens, rank 0 publishes exactly one result message
``inbox/<key>.result.json`` with a status:

- ``completed``   the segment reached its length and reported the metric;
- ``interrupted`` the job was told to stop (time limit, preemption) and left early: the master
                  continues the segment from its latest checkpoint without counting a failure;
- ``invalid_hp``  the code raised InvalidHP: the trial is replaced;
- ``error``       anything else, with the traceback: retried up to ``max_restarts``.

A job killed outright (SIGKILL, OOM, node loss) publishes nothing; the master learns that from
the backend's job state. In a trial of several ranks, each rank touches a heartbeat file in the
run folder while it lives: that is how the other ranks tell a dead peer from a slow one.

Command entrypoints (any executable) get the same through environment variables:

==========================  ================================================================
ASHA_EXP_DIR                the experiment directory
ASHA_TRIAL_ID               the trial id
ASHA_TRIAL_SEED             the trial's seed (experiment_seed + trial id): the same on retry
ASHA_TRIAL_DIR              the trial's folder (checkpoints live below it)
ASHA_RUN_DIR                this attempt's folder (scratch, logs)
ASHA_SEGMENT                segment index (0, 1, ...)
ASHA_TARGET_LENGTH          train until the total length is this
ASHA_LENGTH_UNIT            epochs | batches | records | units
ASHA_MAX_LENGTH             the searcher's max_length: the longest any trial trains
ASHA_METRIC                 the metric the searcher needs in the report
ASHA_HPARAMS                the hyperparameters as JSON (also in ASHA_HPARAMS_FILE)
ASHA_LATEST_CHECKPOINT      folder of the last complete checkpoint, or empty
ASHA_CHECKPOINT_DIR         an empty folder: files left in it are published as a checkpoint
ASHA_REPORT_FILE            append JSON lines here (or use ``python -m asha_hpc.report``)
ASHA_STOP_FILE              exists once the job should checkpoint and exit
ASHA_FREE_PORT              a free TCP port on the node, for a launcher the command starts
==========================  ================================================================

Report lines: ``{"metrics": {"val_loss": 0.3}}`` for the segment's result,
``{"step": 10, "metrics": {...}}`` for a learning-curve point, ``{"invalid_hp": "why"}`` to
reject the hyperparameters, ``{"reached": 37}``: the length the checkpoint left in
ASHA_CHECKPOINT_DIR holds (optional; after a stop it tells the master how far the segment got).

Every result carries ``job_started`` (the job's start: ``ASHA_JOB_T0`` from the batch script,
else the process start) and ``reached`` (the segment's length when completed, else the length
the latest checkpoint was saved at, if the code said so): run times for the time-limit model.
"""
from __future__ import annotations

import collections
import faulthandler
import json
import os
import pickle
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends.base import SegmentSpec, WorkerSpec
from ..errors import (
    DISK_FULL_ERRNOS,
    AttemptSuperseded,
    FatalTrialError,
    InvalidHP,
    MetricNotReported,
    TrainingEndedEarly,
    ended_early_by_optuna,
    shown,
)
from ..protocol import signals
from ..protocol.checkpoints import (
    DETERMINED_RESTORE_HINT,
    RESTORE_HINT,
    checkpoint_bytes,
    newest_checkpoint,
)
from ..protocol.command_args import fill as fill_command
from ..protocol.diskfull import disk_full_in
from ..protocol.expdir import (
    CHECKPOINTS,
    METRICS,
    WORKERS,
    ExpDir,
    atomic_write_json,
    publish,
    result_name,
    superseded,
)
from ..protocol.fswatch import FolderWatch
from ..protocol.handoff import EXIT, claim, slot_path, wait_slot
from ..protocol.handoff import VERSION as HANDOFF_VERSION
from ..protocol.logmarks import banner
from ..protocol.messages import COMMAND_STDERR
from ..protocol.metrics import as_number
from ..protocol.pids import kill_tree
from . import command_trial, loader_workers, notes
from .command_trial import PARTIAL
from .job_report import WHOLE_FOLDER, ReportFile, ReportReader
from .leftover_threads import end_despite_threads
from .ports import free_port
from .ranks import Group, PeerGone, current_ranks, job_id, node_name
from .trial import Trial, TrialControl, _names, rank_exit_grace

# A rank whose code raised waits up to this many heartbeats to learn whether a peer died
# silently first (one on another host is judged dead after 6 beats without a change)
BLAME_BEATS = 8
# how long a job waits, after its command ended on a stop signal, for the processes the command
# started (a script below a shell, saving): under Slurm's default KillWait (30 s), after which
# every process of the job is killed, the job's own too, with the result it had to write
STOPPED_TREE_WAIT_S = 25.0


def _gpu_count() -> int | None:
    """GPUs this job may use (ids in CUDA_VISIBLE_DEVICES), or None when it is not set."""
    v = os.environ.get("CUDA_VISIBLE_DEVICES")
    if v is None:
        return None
    if v.strip() == "NoDevFiles":
        return 0
    return len([x for x in v.split(",") if x.strip()])


class _Heartbeat(threading.Thread):
    def __init__(self, path: Path, every: float) -> None:
        super().__init__(daemon=True, name="asha-heartbeat")
        self.path, self.every = path, every
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                self.path.write_text(f"{time.time()}\n")
            except OSError:
                pass
            self.halt.wait(self.every)


class _PeerWatch(threading.Thread):
    """A rank's watch over its attempt's other ranks (``Group.watched``) while its code runs:
    a peer that failed (its marker says so), or one found dead on two looks in a row, ends
    the attempt (``_Session._peer_died``). Twice: one look may fall right after a stall of
    the shared filesystem that held the peer's heartbeat back. Quiet once this rank's own
    code ended: its own result says how."""

    def __init__(self, session: _Session, att: _Attempt, every: float) -> None:
        super().__init__(daemon=True, name="asha-peer-watch")
        self.session, self.att, self.every = session, att, every
        self.halt = threading.Event()

    def run(self) -> None:
        group = self.att.group
        assert group is not None
        watched = group.watched()
        # peers on this host are looked at every ``every`` (their pids: no shared file read);
        # all watched peers' files once a heartbeat, as often as they can change
        full_every = max(1, round(group.heartbeat_s / self.every))
        suspect: int | None = None
        looks = 0
        while not self.halt.wait(self.every):
            if group.has_ended:
                return
            looks += 1
            # a failed peer on this node rings: its marker is read now, not at the next beat
            full = looks % full_every == 0 or group.rang(watched)
            dead = group.given_up(watched) if full else group.dead_peers(watched, local_only=True)
            if not dead and not full:
                continue  # a look at this host's peers says nothing of the others
            rank = min(dead) if dead else None
            gone = group.gone(rank, dead[rank]) if rank is not None else None
            if gone is not None and (rank == suspect or not gone.silent):  # a failure says so
                self.session._peer_died(self.att, gone)
            suspect = rank


def _job_start_time() -> float | None:
    """When this job started: ``ASHA_JOB_T0`` (the Slurm backend sets it first thing in the
    batch script, before the setup lines), else this process's start time (Linux), else None."""
    try:
        return float(os.environ["ASHA_JOB_T0"])
    except (KeyError, ValueError):
        pass
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def run_segment(spec: SegmentSpec) -> str:
    """Run one segment attempt (see module doc) and, when ``spec.continue_s`` > 0, the
    trial's next segments in place for as long as the master hands them over. Returns the
    status of the last segment it published."""
    early = _catch_stop_signals()
    session = _Session(ExpDir(Path(spec.exp_dir)), early,
                       worker=spec.key if spec.continue_s > 0 else None, wait_s=spec.continue_s)
    return session.loop(spec)


def run_worker(wspec: WorkerSpec) -> str:
    """A worker of the pool: announce itself, then run the segments the master assigns (the
    user's function is called in this process for each: imports, CUDA context and data
    caches stay warm) until the master says exit, the job is told to stop, or it sat idle for
    ``idle_timeout_s``. With ``lanes`` > 1 the job runs that many workers as processes that
    share its GPUs (``trials_per_gpu``)."""
    if wspec.lanes > 1 and "ASHA_WORKER_LANE" not in os.environ:
        return _run_lanes(wspec)
    early = _catch_stop_signals()
    exp = ExpDir(Path(wspec.exp_dir))
    _set_environment(wspec.env)
    worker = wspec.lane_id(int(os.environ.get("ASHA_WORKER_LANE", "0")))
    session = _Session(exp, early, worker=worker, wait_s=wspec.idle_timeout_s)
    if session.ranks.rank == 0:  # the job's other ranks follow rank 0's slots
        publish(exp.root, f"{worker}.ready-{0:06d}.json", dict(
            session.ident(), type="ready", worker=worker, slot=0, job_started=_job_start_time(),
            time=time.time(), handoff=HANDOFF_VERSION))
    return session.loop(session.wait_next())


def run_job(spec: SegmentSpec | WorkerSpec) -> str:
    """What every backend runs in its job: a segment (per-segment mode) or a pool worker."""
    try:
        if isinstance(spec, WorkerSpec):
            return run_worker(spec)
        return run_segment(spec)
    finally:
        # Slurm's time-limit warning comes by the clock, and may land while this process exits
        # after its last result is out. Python's finalization gives the signals it caught back
        # their default action, which for SIGUSR2 is death (sacct: FAILED), but leaves an
        # ignored one ignored
        signal.signal(getattr(signal, signals.TIME_LIMIT), signal.SIG_IGN)
        end_despite_threads(failed=sys.exc_info()[0] is not None)


def _run_lanes(wspec: WorkerSpec) -> str:
    """Run ``lanes`` workers of one job as processes sharing its GPUs; the job ends with the
    last of them. A lane that dies takes only its own segment down."""
    procs = []
    for lane in range(wspec.lanes):
        env = dict(os.environ, ASHA_WORKER_LANE=str(lane))
        code = ("import pickle,sys;from asha_hpc.job.jobmain import run_job;"
                "run_job(pickle.loads(sys.stdin.buffer.read()))")
        p = subprocess.Popen([sys.executable, "-u", "-c", code], env=env, stdin=subprocess.PIPE)
        assert p.stdin is not None
        p.stdin.write(pickle.dumps(wspec))
        p.stdin.close()
        procs.append(p)

    def forward(signum, frame):  # Slurm signals the job step; pass stop signals on to lanes
        for p in procs:
            try:
                p.send_signal(signum)
            except OSError:
                pass

    for name in signals.CAUGHT:
        signal.signal(getattr(signal, name), forward)
    codes = [p.wait() for p in procs]
    return "exit" if not any(codes) else f"lanes exited with {codes}"


def _set_environment(env: dict[str, str]) -> None:
    """The config's ``environment_variables``, set in this running interpreter: a
    ``PYTHONPATH`` among them also goes onto ``sys.path``, in its order, where the interpreter
    would have put it had it been set at start (right after the script's folder). Hydra's
    errors end with its hint to set HYDRA_FULL_ERROR, the same line for any error, which
    would stand for every failure (status, fail-fast): set here, they end with the error.
    The config's variables come after, and may say otherwise."""
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    os.environ.update(env)
    entries = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    for i, entry in enumerate(p for p in entries if p not in sys.path):
        sys.path.insert(min(1 + i, len(sys.path)), entry)


def _catch_stop_signals() -> list[str]:
    """Stop signals from the start (a rendezvous can take a while): noted, then handed to the
    trial; ASHA_EARLY_STOP holds one that came before this function (slurm.JOB_BOOT)."""
    early = [os.environ.pop("ASHA_EARLY_STOP", "")]
    for name in signals.CAUGHT:
        signal.signal(getattr(signal, name), lambda s, f: early.append(signal.Signals(s).name))
    return early


class _Session:
    """One job's run of one or more segments. ``worker`` set: after each segment the job
    waits (at most ``wait_s``) for the master to hand it the next one through its slots
    (handoff.py); a trial whose code loops over ``trial.segments()`` gets its next segment
    right there, model in memory; otherwise the function is called again.

    A job of several ranks waits as one: rank 0 deals with the master (ready, results, closing
    a slot when it leaves); the other ranks read the same slots and follow, so every rank runs
    the same segments in the same order. A rank that died ends the worker: rank 0 leaves
    instead of taking more work, and the others leave when rank 0 is gone (``peers``)."""

    def __init__(self, exp: ExpDir, early: list[str], worker: str | None, wait_s: float) -> None:
        self.exp = exp
        self.early = early  # stop signals seen before a trial existed
        self.worker = worker
        self.wait_s = wait_s
        self.slot = 0
        self.control: TrialControl | None = None  # the trial now running (its job side)
        self.pending: SegmentSpec | None = None  # assignment taken inside segments()
        self.first = True
        self.worked = 0  # calls of the user's code that returned without an error here
        self.raised_last = False  # the last of them raised
        self.status = "exit"
        self.ranks = current_ranks()
        self.watch: FolderWatch | None = None  # of this job's slot folder (fswatch.py)
        self.peers: Group | None = None  # the job's ranks (several ranks that wait)
        self._peers_beat: _Heartbeat | None = None
        self._peers_looked = 0.0
        if self.worker is not None and self.ranks.world_size > 1:
            # every rank registers (host, pid) and beats where the others can check it
            self.peers = Group(exp.root / WORKERS / self.worker / "ranks", self.ranks)
            self.peers.run_dir.mkdir(parents=True, exist_ok=True)
            self.peers.register()
            self._peers_beat = _Heartbeat(self.peers.heartbeat_file(), self.peers.heartbeat_s)
            self._peers_beat.start()
        self.handed = False  # segments now come through slots (no ``started`` message)
        self.code: dict[str, int] = {}  # the user's modules imported here: file -> mtime
        self._code_looked = 0.0
        self.stale: str | None = None  # a file of them changed since: this worker leaves
        self._said_stale = False

    def ident(self) -> dict[str, Any]:
        return {"host": node_name(), "pid": os.getpid(), "job_id": job_id()}

    def stopping(self) -> bool:
        return any(self.early) or (self.control is not None and self.control.stop_requested)

    def loop(self, spec: SegmentSpec | None) -> str:
        try:
            done = 0
            while spec is not None:
                spec = self.run(spec)
                done += 1
                if spec is not None and not self._ranks_free(done):
                    return "exit"
            return self.status
        finally:
            if self.watch is not None:
                self.watch.close()
            if self._peers_beat is not None:
                self._peers_beat.halt.set()

    def _ranks_free(self, done: int) -> bool:
        """Several ranks that take one assignment after another: before the next, every rank
        must have returned from the last one's code. A rank that is gone (its teardown hung,
        and ``trial._exit_if_stuck`` ended it) makes the others leave too: the next
        assignment would wait for it for ever. The master gives that assignment to another
        job, as for any job that died."""
        if self.peers is None:
            return True
        folder = self.peers.run_dir
        try:
            self.peers.barrier(folder, f"free-{done}")
        except (PeerGone, RuntimeError) as e:
            print(f"asha_hpc: {e}: this job leaves; its next segment goes to another job",
                  file=sys.stderr, flush=True)
            return False
        (folder / f".free-{done - 1}-rank{self.ranks.rank}").unlink(missing_ok=True)
        return True

    def _peer_dead(self, rank: int | None = None, now: bool = False) -> bool:
        """A rank of this job is gone (``rank``: that one). While waiting it is looked up at
        most once a second; ``now``: look now (before taking more work)."""
        if self.peers is None or (not now and time.monotonic() - self._peers_looked < 1.0):
            return False
        self._peers_looked = time.monotonic()
        dead = self.peers.dead_peers()
        return bool(dead) if rank is None else rank in dead

    def wait_next(self) -> SegmentSpec | None:
        """The next assignment, or None (exit / timeout / stop)."""
        assert self.worker is not None
        path = slot_path(self.exp.root, self.worker, self.slot)
        if self.watch is None:  # made once, before the first look: no slot goes unnoticed
            path.parent.mkdir(parents=True, exist_ok=True)
            self.watch = FolderWatch(path.parent)
        if self.ranks.rank == 0:
            body = wait_slot(path, self.wait_s, watch=self.watch,
                             stop=lambda: self.stopping() or self._peer_dead() or self._stale())
        else:  # rank 0 or the master fills every slot; leave only if rank 0 is gone
            body = wait_slot(path, float("inf"), stop=lambda: self._peer_dead(0),
                             watch=self.watch, close=False)
        self.slot += 1
        if body.get("type") == "segment":  # (run() hands back one that came as the code changed)
            self._stale(now=True)
        if self.stale is not None and not self._said_stale:
            self._said_stale = True
            print(f"asha_hpc: {self.stale} changed since this worker imported it: this job "
                  f"leaves, and the next segments run the new code in new jobs",
                  file=sys.stderr, flush=True)
        if body.get("type") != "segment" or not isinstance(body.get("spec"), dict):
            return None
        try:
            spec = SegmentSpec(**body["spec"])
        except TypeError as e:  # a master of another release, which should not have sent it
            print(f"asha_hpc: a segment this release cannot read ({e}): this job leaves",
                  file=sys.stderr, flush=True)
            return None
        self.handed = True
        return spec

    def _note_code(self, spec: SegmentSpec) -> None:
        """A worker notes the user's modules it has imported, with their times then."""
        if self.worker is not None and not isinstance(spec.entrypoint, list):
            from .entrypoint import code_files

            code_files(spec.context_dir, self.code)

    def _stale(self, now: bool = False) -> bool:
        """The user's code changed on disk since this process imported it (looked at once a
        second at most while waiting; ``now``: look now)."""
        if self.stale is None and self.code and \
                (now or time.monotonic() - self._code_looked >= 1.0):
            self._code_looked = time.monotonic()
            from .entrypoint import changed_code

            self.stale = changed_code(self.code)
        return self.stale is not None

    def run(self, spec: SegmentSpec) -> SegmentSpec | None:
        """Run ``spec`` (and the trial's next segments when they are handed over inside its
        loop); publish its result; return the next assignment, if any."""
        why = superseded(self.exp.run_dir(spec.trial_id, spec.key))
        if why is not None:  # submitted late (its master froze inside the submission): retried
            print(f"asha_hpc: the master took this attempt ({spec.key}) for dead ({why}) "
                  f"before it started: this job does nothing and ends", file=sys.stderr, flush=True)
            return None
        att = self._setup(spec)
        # a process where the code worked before: a failure now may be what it left behind
        # (a command runs in a process of its own each time: it leaves nothing here)
        att.reused = self.worked > 0 and not isinstance(spec.entrypoint, list)
        if self.stale is not None and self.worker is not None:
            # handed over as the code changed on disk: not run with the old code; given back
            # as a stop (counted as no failure), and the trial goes on in a new job
            att.control.stop("the code changed since this worker imported it")
            out = _Outcome(status="interrupted")
        else:
            out = self._execute(att)
        self._note_code(spec)  # and what the call imported on its way
        try:
            return self._end(att, out, spec)
        finally:
            _release_child_signal(att.child_signal)

    def _end(self, att: _Attempt, out: _Outcome, spec: SegmentSpec) -> SegmentSpec | None:
        """What ``run`` does once the code returned or raised: publish the attempt's end."""
        for thread in (att.beat, att.watch):
            if thread is not None:
                thread.halt.set()
        _leave_process_group()
        if att.spec is None:  # its last result went out inside segments(): nothing left here
            self.worked += 1
            if out.status == "error":
                print(_AFTER_RESULT.format(trial=spec.trial_id, error=out.error),
                      file=sys.stderr, flush=True)
            if self.worker is not None:
                _close_tracker_runs(failed=out.status == "error")
            return self.pending
        self._keep_if_done(att, out)
        self._classify(att, out)
        self.worked += out.status != "error"
        if out.status == "interrupted" and att.group is not None and self.ranks.world_size > 1:
            # told to stop because a rank died (Slurm ends the step): the trial's failure, on
            # that rank's node, not a preemption to retry for free
            dead = att.group.dead_peers()
            if dead:
                gone = att.group.gone(min(dead), dead[min(dead)])
                out.status, out.failed_node = "error", gone.node
                out.error = f"{gone}; this rank was told to stop ({att.control.stop_reason})"
        with att.lock:  # the peer watch may have published this attempt's end already
            if att.over:
                return None
            att.over = True
        waits = self._publish(att, out)
        if out.status == "error":
            print(out.error, file=sys.stderr, flush=True)
        if waits:
            _close_tracker_runs(failed=out.status == "error")
        return self.wait_next() if waits else None

    def _setup(self, spec: SegmentSpec) -> _Attempt:
        """The run folder, the ranks' rendezvous, the Trial the user's code gets, stop signals
        routed to it, and (rank 0) the ``started`` message."""
        exp, rank = self.exp, self.ranks.rank
        _set_environment(spec.env)
        _say_segment(spec)
        run_dir = exp.run_dir(spec.trial_id, spec.key)
        run_dir.mkdir(parents=True, exist_ok=True)
        group = Group(run_dir, self.ranks, spec.heartbeat_s)
        beat: _Heartbeat | None = None
        if self.ranks.world_size > 1:  # the trial's other ranks read heartbeats often
            beat = _Heartbeat(group.heartbeat_file(), spec.heartbeat_s)
            beat.start()
            group.register()
            group.rendezvous()
        else:  # the master, to find a job frozen or gone that the scheduler still runs
            beat = _Heartbeat(group.heartbeat_file(), spec.solo_beat_s)
            beat.start()
        trial = Trial(trial_id=spec.trial_id, hparams=spec.hparams,
                      trial_dir=exp.trial_dir(spec.trial_id), run_dir=run_dir,
                      segments=[spec.length], first_segment=spec.segment, metric=spec.metric,
                      key=spec.key, length_unit=spec.length_unit,
                      max_length=spec.max_length, rank=rank,
                      world_size=self.ranks.world_size, local_rank=self.ranks.local_rank,
                      group=group, seed=spec.seed)
        control = TrialControl(trial)
        self.control = control
        self.pending = None
        for name in signals.CAUGHT:
            signal.signal(getattr(signal, name),
                          lambda s, f: control.stop(signal.Signals(s).name))
        if any(self.early):
            control.stop(next(e for e in self.early if e))
        att = _Attempt(spec=spec, started=time.time(), trial=trial, control=control,
                       run_dir=run_dir, beat=beat, group=group)
        if self.ranks.world_size > 1:
            # looks at the same pace as peers beat, and at least every 2 s (a dead process on
            # this host is known at once)
            att.watch = _PeerWatch(self, att, min(spec.heartbeat_s, 2.0))
            att.watch.start()
        if self.worker is not None and not isinstance(spec.entrypoint, list):
            control.continue_with(lambda seg: self._continue(att, seg))
        if rank == 0:
            hp_file = exp.trial_dir(spec.trial_id) / "hparams.json"
            if not hp_file.exists():  # for people: the journal holds the hyperparameters
                try:
                    atomic_write_json(hp_file, spec.hparams, durable=False)
                except OSError as e:  # a full disk: the next attempt writes it; this one
                    if e.errno not in DISK_FULL_ERRNOS:  # goes on (its own writes say so)
                        raise
            if not self.handed:  # a hand-over counts as started (state.py): no message
                self._started(spec, att.started)
        return att

    def _execute(self, att: _Attempt) -> _Outcome:
        """Call the user's function (or run the command) once; how it ended. Never raises for
        the user's errors: the job must always publish a result."""
        spec = att.spec
        assert spec is not None
        out = _Outcome()
        notes.take()  # a warm worker's earlier call's are not this attempt's
        if self.ranks.rank == 0:  # newer checkpoints it cannot go on from (status says so)
            att.skipped = newest_checkpoint(att.trial.dir / CHECKPOINTS)[1]
        start, start_length = att.control.latest_checkpoint()
        att.restored = start is not None
        if start is not None:
            att.unread = start  # until the code asks for it (a command: its curve tells)
        try:
            if isinstance(spec.entrypoint, list):
                out.metrics = _run_command(spec, att.trial, att.run_dir)
            else:
                from .entrypoint import resolve_entrypoint

                command_trial.in_function_trial = True  # AshaCallback() there: say what to pass
                fn = resolve_entrypoint(spec.entrypoint, spec.context_dir)
                loader_workers.keep_through_sigterm()  # its module has imported torch, or not
                self._note_code(spec)  # as imported now: a later look would see an edit's time
                # importing the code's module (and its libraries) is start-up, which a warm
                # worker pays once, not training (workers: auto weighs the two)
                att.started = time.time()
                try:
                    out.returned = fn(att.trial)
                except Exception as e:
                    ended = ended_early_by_optuna(e)
                    if ended is None:
                        raise
                    raise ended from e
                finally:
                    att.child_signal = _hold_child_signal()
        except InvalidHP as e:
            out.status, out.error = "invalid_hp", str(e) or "InvalidHP"
        except TrainingEndedEarly as e:  # the code ended the trial: a retry would end alike
            out.status, out.error, out.ends_trial = "error", str(e), True
            out.reached = e.reached if isinstance(e.reached, int) else None
            # reported first (a library's own early stopping, e.g. boosting rounds): the model
            # is final, and its result stands for this segment and any promotion (state.py)
            cur = att.spec  # the segment it was in: a warm worker's call runs several
            got = e.reported if isinstance(e.reported, dict) else None if cur is None else \
                att.control.segment_metrics(cur.segment, cur.length)
            point = None if got is not None or cur is None else att.control.last_point(cur.segment)
            if point is not None and cur is not None:
                # ended before the segment's report (Optuna's TrialPruned, a divergence check
                # in the loop): its last value of the metric is its result, as a pruned
                # trial's last intermediate value is Optuna's; not a failure
                step, got = point
                if out.reached is None and isinstance(step, int) and 0 < step <= cur.length:
                    out.reached = step
                print(f"asha_hpc: TrainingEndedEarly before segment.report(): the trial's "
                      f"result is its last curve point of '{spec.metric}' (step {step}: "
                      f"{got[spec.metric]})", file=sys.stderr, flush=True)
            if self.ranks.rank == 0 and got is not None and spec.metric in got:
                out.status, out.metrics = "completed", got
        except FatalTrialError as e:  # every trial would fail the same: the search stops
            out.status, out.error, out.fatal = "error", str(e), True
            if isinstance(e, MetricNotReported) and not isinstance(spec.entrypoint, list):
                # raised in the user's code: show where
                out.error += "\n" + _error_text(e)
        except AttemptSuperseded:  # _publish says so, and publishes nothing
            out.status = "superseded"
        except _StoppedCommand as e:  # continued later from its last complete checkpoint
            print(f"asha_hpc: {e}\nasha_hpc: the segment goes on later from the last checkpoint",
                  file=sys.stderr, flush=True)
            out.status = "interrupted"
        except BaseException as e:  # noqa: BLE001 - the job must always publish a result
            # an exception is an error even while a stop was requested: "interrupted" means the
            # code checkpointed and returned (a rank that died sends SIGTERM to the others too)
            out.status, out.error = "error", _error_text(e)
            if att.control.stop_requested and _STOP_KILLED_WORKERS.search(out.error):
                # Slurm's scancel and preemption signal every process of the job: the stop
                # killed the DataLoader's workers before the loop could look at should_stop().
                # The machine's doing, not the code's: continued later from the last checkpoint
                print(f"asha_hpc: the stop signal also ended the DataLoader's workers, and the "
                      f"loop raised before it could checkpoint; the segment goes on later from "
                      f"the last checkpoint:\n{out.error}", file=sys.stderr, flush=True)
                out.status, out.error = "interrupted", None
            elif att.control.stop_requested and type(e).__name__ == "SIGTERMException" and (
                    att.group is None or self.ranks.world_size == 1 or not att.group.given_up()):
                # Lightning's answer to SIGTERM (scancel, preemption, cancel) where its handler
                # still holds the signal (before training starts, when AshaCallback takes it
                # over): its loops raise. Not the code's failure (unless a peer's: a rank that
                # failed gets the others a SIGTERM too)
                print(f"asha_hpc: Lightning stopped on the stop signal "
                      f"({att.control.stop_reason}); the segment goes on later from the last "
                      f"checkpoint", file=sys.stderr, flush=True)
                out.status, out.error = "interrupted", None
            else:
                if start_length is not None and start_length >= spec.length:
                    out.error = _NOTHING_TO_TRAIN.format(length=spec.length) + out.error
                out.disk_full = disk_full_in(e, att.trial.dir)  # the machine's fault: counts against nothing
                if out.disk_full is not None:  # how much room a checkpoint of this trial takes
                    out.disk_full["need"] = max(att.trial.failed_save_bytes,
                                                checkpoint_bytes(att.control.latest_checkpoint()[0]))
                if att.group is not None and self.ranks.world_size > 1:
                    att.group.mark_ended(out.error)
                    # a peer killed mid-collective shows here as this rank's error ("connection
                    # closed by peer"): the failure is the dead peer's node's
                    gone = att.group.blame(e, wait_s=BLAME_BEATS * spec.heartbeat_s,
                                           stop=lambda: att.control.stop_requested)
                    if gone is not None:
                        out.error = f"{gone}; then this rank failed:\n{out.error}"
                        out.failed_node = gone.node
        faulthandler.cancel_dump_traceback_later()  # the code returned (trial._exit_if_stuck)
        if att.group is not None and self.ranks.world_size > 1 and not att.group.has_ended:
            att.group.mark_ended(out.error if out.status in ("error", "invalid_hp") else None)
        return out

    def _keep_if_done(self, att: _Attempt, out: _Outcome) -> None:
        """Code that raised after its segment was done (reported, with a checkpoint at the
        segment's length: ``trainer.test()`` after ``fit``, for one) completed the segment: the
        error is printed, the result stands. A job that continues in place has published such a
        result already, before the code went on, and must not tell another story."""
        spec = att.spec
        assert spec is not None
        if out.status != "error" or out.fatal or out.ends_trial or out.disk_full is not None \
                or self.ranks.world_size > 1:
            return
        metrics = att.control.segment_metrics(spec.segment, spec.length)
        if metrics is None or att.control.latest_checkpoint()[1] != spec.length:
            return
        print(_AFTER_RESULT.format(trial=spec.trial_id, error=out.error), file=sys.stderr,
              flush=True)
        out.status, out.error, out.metrics = "completed", None, metrics

    def _classify(self, att: _Attempt, out: _Outcome) -> None:
        """A segment whose code returned: completed with its metrics (rank 0 reads them: reports
        count from rank 0 only), interrupted (told to stop, nothing reported), or an error
        naming what it did report."""
        spec = att.spec
        assert spec is not None
        if out.status != "completed" or self.ranks.rank != 0:
            return
        if out.metrics is None:
            out.metrics = att.control.segment_metrics(spec.segment, spec.length)
        if out.metrics is not None:
            return
        if att.control.stop_requested:
            out.status = "interrupted"
        elif spec.until_exit:  # a run-to-the-end trial that reported nothing: worst
            out.metrics = {spec.metric: float("nan")}
        else:
            out.status, out.fatal = "error", True
            names = att.trial.reported_names()
            if isinstance(spec.entrypoint, list):  # a command: its report file is the way
                out.error = (
                    f"the command exited 0 without a result for the segment to length "
                    f"{spec.length}: write a line {{\"metrics\": {{\"{spec.metric}\": ...}}}} "
                    f"to the file $ASHA_REPORT_FILE names, at the segment's end (a Determined "
                    f"Core API script: core_context.train.report_validation_metrics("
                    f"steps_completed, {{\"{spec.metric}\": ...}}))"
                    + (f" (it wrote {_names(names)} as learning-curve points only)" if names else "")
                    + "; if its training ended early on purpose, a line {\"ended_early\": \"why\"} "
                      "after its last result ends the trial with the results it reported")
                return
            if spec.metric in names:  # a Ray Tune or Optuna habit: every epoch a point
                out.error = (f"the searcher's metric '{spec.metric}' was reported only as "
                             f"learning-curve points (trial.report_metrics), never as a "
                             f"segment's result: call segment.report({spec.metric}=...) at the "
                             f"end of each segment, inside `for segment in trial.segments()` "
                             f"(the segment to length {spec.length} got none)")
            else:
                out.error = (f"the searcher's metric '{spec.metric}' was never reported: the "
                             f"code returned without reporting it (segment.report) for the "
                             f"segment to length {spec.length}"
                             + (f"; it reported {_names(names)}" if names else
                                "; it reported no metric at all"))
            if out.returned is not None:  # Ray Tune's old function API, Optuna's objective
                out.error += (f"; the function returned {shown(out.returned)}, and a "
                              f"return value is not read: report it with segment.report")
            out.error += _ENDED_ON_PURPOSE

    def _started(self, spec: SegmentSpec, at: float) -> None:
        publish(self.exp.root, f"{spec.key}.started.json", dict(
            self.ident(), type="started", trial=spec.trial_id, segment=spec.segment,
            attempt=spec.attempt, key=spec.key, time=at))

    def _publish(self, att: _Attempt, out: _Outcome, leaving: bool = False) -> bool:
        """Publish the segment's result; True if this job then waits for another segment
        (never when ``leaving``: this process ends right after)."""
        spec = att.spec
        assert spec is not None
        why = superseded(att.trial.run_dir)
        if why is not None:  # its retry runs elsewhere; this job is being cancelled
            print(f"asha_hpc: the master took this attempt ({spec.key}) for dead ({why}) and "
                  f"retries it: this job publishes nothing more and ends", file=sys.stderr,
                  flush=True)
            return False
        ident = dict(self.ident(), trial=spec.trial_id, segment=spec.segment,
                     attempt=spec.attempt, key=spec.key)
        if att.restored:
            ident["restored"] = True
        if att.reused:
            ident["reused"] = True
        if self.ranks.rank != 0:
            if out.status in ("error", "invalid_hp"):  # another rank failed: the segment fails, once
                publish(self.exp.root, result_name(spec.key, self.ranks.rank), dict(
                    ident, type="result", status=out.status, metrics=None, length=spec.length,
                    error=f"rank {self.ranks.rank}: {out.error}", checkpoint=None,
                    started=att.started, ended=time.time(),
                    **({"failed_node": out.failed_node} if out.failed_node is not None else {}),
                    **({"fatal": True} if out.fatal else {}),
                    **({"ends_trial": True} if out.ends_trial else {})))
            return self.worker is not None  # follow rank 0 to the next slot (or its exit)
        ckpt, ckpt_length = att.control.latest_checkpoint()
        reached = spec.length if out.status == "completed" and not out.ends_trial else ckpt_length
        if out.ends_trial and out.reached is not None:  # said by a command that saved nothing
            reached = max(min(out.reached, spec.length), ckpt_length or 0)
        # code that raised may have left this process unfit for the next call (a library set
        # up once per process, GlobalHydra, Accelerate's state, a CUDA error): a warm worker
        # whose calls raised twice in a row leaves, and the next trial runs in a fresh process
        # (the master retries a segment that failed in a reused process in a job of its own)
        raised = out.status == "error" and not out.ends_trial and not isinstance(spec.entrypoint, list)
        unfit = raised and self.raised_last
        self.raised_last = raised
        waits = self.worker is not None and not leaving and not self.stopping() \
            and not self._peer_dead(now=True) and not unfit
        if unfit and self.worker is not None and not leaving:
            print("asha_hpc: this warm worker's last two calls raised: it leaves, so that "
                  "nothing the code left in its process fails the next call; the pool starts "
                  "another", file=sys.stderr, flush=True)
        body = dict(ident, type="result", status=out.status, metrics=out.metrics,
                    length=spec.length, error=out.error, checkpoint=str(ckpt) if ckpt else None,
                    started=att.started, ended=time.time(), stop_reason=att.control.stop_reason,
                    gpus=_gpu_count(), job_started=_job_start_time() if self.first else att.started,
                    reached=reached)
        if self.worker is not None:
            body.update(worker=self.worker, slot=self.slot, waiting=waits, handoff=HANDOFF_VERSION)
        if out.fatal:
            body["fatal"] = True
        if out.ends_trial:
            body["ends_trial"] = True
        if out.disk_full is not None:
            body["disk_full"] = out.disk_full
        if out.failed_node is not None:
            body["failed_node"] = out.failed_node
        if att.skipped:
            body["skipped_checkpoints"] = att.skipped[:3]
        warned = notes.take()
        if warned:  # the master says each kind once: people watch it, not this log
            body["warnings"] = warned
        if att.unread is not None and out.status == "completed" and (
                _curve_started_again(att.trial) if isinstance(spec.entrypoint, list)
                else not att.trial.asked_for_checkpoint):
            body["ignored_checkpoint"] = str(att.unread)
            said = IGNORED_BY_COMMAND if isinstance(spec.entrypoint, list) else IGNORED_CHECKPOINT
            print(said.format(trial=spec.trial_id, path=att.unread, length=spec.length,
                              step=att.trial.first_step), file=sys.stderr, flush=True)
        att.unread = None  # a call that goes on in place trains on from its own model
        if out.status == "completed" and not out.ends_trial and spec.max_length is not None \
                and spec.length < spec.max_length and att.control.latest_checkpoint()[0] is None:
            body["no_checkpoint"] = True
            if not isinstance(spec.entrypoint, list):  # a command's is said where it ran
                print(NO_CHECKPOINT.format(trial=spec.trial_id, length=spec.length),
                      file=sys.stderr, flush=True)
        self.first = False
        publish(self.exp.root, result_name(spec.key), body)
        self.status = out.status
        if not waits and self.peers is not None and self.worker is not None:  # several ranks that wait
            # the master hands nothing more to a job that does not wait: close the next slot
            # so that the other ranks, which follow the slots, leave with rank 0
            claim(slot_path(self.exp.root, self.worker, self.slot),
                  {"type": EXIT, "by": "job", "why": "rank 0 leaves"})
        return waits

    def _peer_died(self, att: _Attempt, gone: PeerGone) -> None:
        """From the peer watch: a peer died while this rank's code runs. The code may be
        blocked in a collective that waits for it (NCCL: up to its timeout, 10 minutes by
        default) while every GPU of the trial idles, so this rank publishes the attempt's
        failure, naming the dead peer's node, and ends its process. Nothing is done when the
        attempt's end is out already, or its last result went out inside ``segments()`` (the
        job waits for the master then, and the wait watches for dead peers)."""
        with att.lock:
            if att.over or att.spec is None:
                return
            att.over = True
        out = _Outcome(status="error", failed_node=gone.node,
                       error=f"{gone} while this rank's code ran: this rank stopped "
                             "waiting for it (a collective would wait for it until its timeout)")
        # rank 0 speaks for the attempt; another rank only when rank 0 died without a word.
        # One that leaves quietly marks a plain end: its exit must not read as a death
        speaks = self.ranks.rank == 0 or (gone.rank == 0 and gone.silent)
        try:
            print(out.error, file=sys.stderr, flush=True)
            if att.group is not None:
                att.group.mark_ended(str(gone) if speaks else None)
            if speaks:
                self._publish(att, out, leaving=True)
        finally:
            os._exit(1)

    def _continue(self, att: _Attempt, seg: Any) -> tuple[int, int] | None:
        """Inside ``trial.segments()``, after a reported segment: publish its result, wait for
        the master's decision; the same trial's next segment continues right here (its length
        is returned with its index), anything else ends the loop (kept for ``run``)."""
        spec = att.spec
        assert spec is not None
        with att.lock:  # not while the peer watch publishes this segment's failure
            if att.over:
                return None
            waits = self._publish(att, _Outcome(metrics=seg.reported))
            att.spec = None
        if waits:
            self._note_code(spec)  # before waiting: what the code imported lazily, as it was
        nxt = self.wait_next() if waits else None
        if nxt is None or nxt.trial_id != spec.trial_id or self.stale is not None:
            self.pending = nxt  # (as the code changed: run() gives it back, not run in place)
            return None
        att.spec, att.started = nxt, time.time()
        att.control.start_attempt(nxt.key, self.exp.run_dir(nxt.trial_id, nxt.key))
        _say_segment(nxt)
        return nxt.length, nxt.segment


@dataclass
class _Attempt:
    """One call of the user's function by a job: the segment it now runs (it moves on inside
    ``segments()`` when the next one is handed over in place; None once its last result went
    out there), when that segment started, and the trial."""

    spec: SegmentSpec | None
    started: float
    trial: Trial
    control: TrialControl
    run_dir: Path
    beat: _Heartbeat | None = None
    group: Group | None = None  # the attempt's ranks (several ranks)
    watch: _PeerWatch | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    over: bool = False  # its end is published (by the job, or by the peer watch)
    # this call of the code started from a checkpoint: its results tell whether the trial's
    # restore path works (fail-fast, state.py)
    restored: bool = False
    # the code worked in this process before (a warm worker): an error may be the state it left
    reused: bool = False
    # "path (why)" of the trial's newer checkpoints, incomplete, that this attempt could not
    # go on from
    skipped: list[str] = field(default_factory=list)
    # the checkpoint this call of a function could go on from, while its code has not asked
    # for it (trial.latest_checkpoint) by its first result
    unread: Path | None = None
    # the SIGCHLD handler the code had installed, held off while the job ends the attempt
    child_signal: Any = None


@dataclass
class _Outcome:
    """How a segment ended, as its result message says."""

    status: str = "completed"  # completed | interrupted | invalid_hp | error | superseded
    error: str | None = None
    metrics: dict[str, Any] | None = None
    fatal: bool = False  # every trial would fail the same: the search stops
    ends_trial: bool = False  # the code ended this trial's training: failed, not retried
    disk_full: dict[str, Any] | None = None  # where the disk was full (the machine's fault)
    failed_node: str | None = None  # a peer's node, when its silent death failed the segment
    returned: Any = None  # what the training function returned (nothing reads it)
    reached: int | None = None  # how far a command that ended its training early said it got


# said first, so that the exception stays the error's last line (status, fail-fast)
_NOTHING_TO_TRAIN = ("this attempt started from a checkpoint already at the segment's length "
                     "{length} (the job before was stopped right after its last step): the "
                     "training loop had nothing to do, and the code must still evaluate and "
                     "report, e.g. after the loop. The error:\n")

IGNORED_CHECKPOINT = (
    "asha_hpc: trial {trial} had a checkpoint to go on from ({path}) and its code never read "
    "trial.latest_checkpoint: it trained from scratch, spending again what earlier segments "
    "trained (and where it trained only this segment's part, its result at length {length} is "
    "for less training than that). " + RESTORE_HINT)

IGNORED_BY_COMMAND = (
    "asha_hpc: warning: trial {trial} had a checkpoint to go on from ({path}), and the command's "
    "curve started again at step {step}, where its first run's did: it trained from scratch "
    "(and where it trained only this segment's part, its result at length {length} is for less "
    "training than that). Pass \"${{ASHA_LATEST_CHECKPOINT}}\" to the command and load the "
    "model, the optimizer and the epoch from it when it is not empty. " + DETERMINED_RESTORE_HINT)

NO_CHECKPOINT = (
    "asha_hpc: warning: trial {trial} reported its segment to length {length} and has no "
    "checkpoint: where it is promoted in a new job, it trains again from the start. Save one "
    "at each segment's end (with trial.save_checkpoint(length=...) as d: ...), and go on from "
    "trial.latest_checkpoint")

_AFTER_RESULT = ("asha_hpc: trial {trial}'s code raised after its segment was done (reported, "
                 "with its checkpoint): the segment's result stands; the error, for you to "
                 "fix:\n{error}")


# what a function trial whose own early stopping returned without a result is told
_ENDED_ON_PURPOSE = ("; if the code ended the trial early on purpose (its own early stopping), "
                     "raise asha_hpc.TrainingEndedEarly('why') instead: the trial ends with the "
                     "results it reported, and is not retried")


class _StoppedCommand(Exception):
    """A command that ended with an error after the job's stop signal reached it too."""


# torch's DataLoader, when a signal killed one of its worker processes
_STOP_KILLED_WORKERS = re.compile(r"DataLoader worker \(pid\(?s?\)? [^)]*\) (is killed by signal: "
                                  r"(Terminated|Interrupt|Killed)|exited unexpectedly)")


def _leave_process_group() -> None:
    """A torch.distributed process group the trial's code left behind (it raised before its
    ``destroy_process_group()``, or never calls it) is destroyed: in a warm worker the next
    trial's ``init_process_group`` would fail ("trying to initialize the default process group
    twice")."""
    from .trial import _torch_dist

    dist = _torch_dist()
    if dist is None:
        return
    try:
        dist.destroy_process_group()
    except Exception as e:  # noqa: BLE001 - a broken group is gone all the same
        print(f"asha_hpc: destroying the trial's process group: {e}", file=sys.stderr, flush=True)


def _say_segment(spec: SegmentSpec) -> None:
    """Open the segment's part of this job's logs (``asha-hpc logs`` shows one trial's part of
    a log that several segments share)."""
    line = banner(spec.key, spec.trial_id, spec.segment, spec.length, spec.length_unit)
    print(line, flush=True)
    print(line, file=sys.stderr, flush=True)


# signals a process dies of without a word of its own (SIGABRT's C++ "terminate called ..."
# and a KeyboardInterrupt's traceback do say why: their stderr stays the error)
_MUTE_DEATHS = {9: "SIGKILL", 4: "SIGILL", 7: "SIGBUS", 8: "SIGFPE", 11: "SIGSEGV"}


def _killed_by(rc: int) -> str | None:
    """What a command's exit status says of a signal that ended it without a word: -9 (the
    process itself), 137 (128 + 9: a shell's child, by the shell's convention); None for any
    other status."""
    if rc < 0 and -rc in _MUTE_DEATHS:
        # a guess, worded so that nodes.out_of_memory does not take it for a sure one
        why = " (a memory limit? the kernel's OOM killer, or Slurm's)" if rc == -9 else ""
        return f"the command was killed by {_MUTE_DEATHS[-rc]}{why}"
    if rc - 128 in _MUTE_DEATHS:
        return (f"a process it ran was killed by {_MUTE_DEATHS[rc - 128]} (status {rc} = 128 + "
                f"{rc - 128})")
    return None


def _close_tracker_runs(failed: bool) -> None:
    """Ends the W&B and MLflow runs the training function left open, before a warm worker
    calls it for another trial: their current run is the process's, and Lightning's
    ``WandbLogger``, the Trainer's ``report_to`` and ``wandb.init()`` go on logging into a run
    in progress, another trial's. A job that ends with its trial needs none of this: the
    libraries end their runs as the process exits."""
    wandb = sys.modules.get("wandb")
    try:
        if wandb is not None and getattr(wandb, "run", None) is not None:
            wandb.finish(exit_code=1 if failed else 0)
    except Exception as e:  # noqa: BLE001 - the tracker's trouble is not the next trial's
        print(f"asha_hpc: warning: wandb.finish() between trials failed: {e}", file=sys.stderr)
    mlflow = sys.modules.get("mlflow")
    try:
        for _ in range(16):  # nested runs: each end_run() closes the innermost
            if mlflow is None or mlflow.active_run() is None:
                break
            mlflow.end_run(status="FAILED" if failed else "FINISHED")
    except Exception as e:  # noqa: BLE001
        print(f"asha_hpc: warning: mlflow.end_run() between trials failed: {e}", file=sys.stderr)


def _curve_started_again(trial: Trial) -> bool:
    """A command's first curve point of this attempt lies at or before the first point of
    the trial's first run: it counted from the start again (it never loaded the checkpoint in
    ASHA_LATEST_CHECKPOINT). A command's steps are its own, in any unit: only its own earlier
    curve tells where it would go on from."""
    runs = sorted(p for p in trial.run_dir.parent.iterdir()
                  if p.name < trial.run_dir.name and (p / METRICS).is_file())
    if trial.first_step is None or not runs:
        return False
    try:
        with open(runs[0] / METRICS) as f:
            first = as_number(json.loads(f.readline()).get("step"))
    except (OSError, ValueError, AttributeError):
        return False
    return first is not None and trial.first_step <= first


def _hold_child_signal() -> Any:
    """The code's SIGCHLD handler, replaced by the default until the attempt's end is
    published (``_release_child_signal``). PyTorch's DataLoader installs one that raises in
    whatever runs when a worker died; after the code raised for that very reason, the next
    worker to exit raised it again inside the job's own handling of the error, which ended
    the job (a warm worker too) without a result."""
    try:
        return signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # SIG_DFL: children stay waitable
    except (ValueError, OSError):  # not the main thread: nothing to hold
        return None


def _release_child_signal(handler: Any) -> None:
    """The code's SIGCHLD handler back, for its next call in this process (a warm worker)."""
    if handler is None or handler is signal.SIG_DFL:
        return
    try:
        signal.signal(signal.SIGCHLD, handler)
    except (ValueError, OSError, TypeError):
        pass


def _error_text(e: BaseException) -> str:
    """The traceback; a GPU out-of-memory error says so first (the worker frees the cached
    memory, so neighbours sharing the card are not starved by it)."""
    text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    if type(e).__name__ == "OutOfMemoryError" or "out of memory" in str(e).lower():
        torch = sys.modules.get("torch")
        try:
            if torch is not None and torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:  # noqa: BLE001
            pass
        text = f"OOM: the trial ran out of GPU memory ({type(e).__name__}); retried per max_restarts\n{text}"
    return text


def _await_command_tree(tail: _StderrTail) -> None:
    """The command ended after the job's stop signal, and what it started may not have: Slurm's
    SIGTERM ends a ``sh -c`` wrapper at once, while the script below it is still saving. Its
    stderr closes when every process that holds it has exited; the job waits for that, within
    Slurm's default KillWait, before it reads what the script reported."""
    tail.join(timeout=STOPPED_TREE_WAIT_S)
    if tail.is_alive():
        print(f"asha_hpc: the command's own processes still ran {STOPPED_TREE_WAIT_S:g} s after "
              f"it ended on the stop signal: the job goes on with what they saved",
              file=sys.stderr, flush=True)


def _wait_command(proc: subprocess.Popen, follower: _ReportFollower) -> int:
    """The command's exit status. One that reported its segment's result and has not exited
    the rank-exit grace later (trial.RANK_EXIT_GRACE_S: a torchrun worker hung in torch's gloo
    teardown would hold the job, and its GPUs, for ever) is killed with every process below
    it, and its result stands (0)."""
    grace = rank_exit_grace()
    reported_at: float | None = None
    while True:
        try:
            return proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            pass
        if grace <= 0 or follower.reader.got.metrics is None:
            continue
        reported_at = reported_at or time.monotonic()
        if time.monotonic() - reported_at >= grace:
            print(f"asha_hpc: the command reported its result {grace:g} s ago and has not exited "
                  f"(a hung process-group teardown?): killed, with its processes; the result "
                  f"stands (ASHA_RANK_EXIT_GRACE_S sets the grace)", file=sys.stderr, flush=True)
            kill_tree(proc.pid, group=False)
            proc.wait()
            return 0


class _ReportFollower(threading.Thread):
    """Passes a running command's learning-curve points on to the trial's curve as they are
    reported, so ``status`` and the live views see a long segment progress (a look at the
    report file's size every ``every`` seconds: one stat while nothing changes)."""

    def __init__(self, reader: ReportReader, trial: Trial, every: float = 2.0) -> None:
        super().__init__(daemon=True, name="asha-command-report")
        self.reader, self.trial, self.every = reader, trial, every
        self.halt = threading.Event()
        self._size = 0
        self.start()

    def run(self) -> None:
        while not self.halt.wait(self.every):
            try:
                size = self.reader.path.stat().st_size
            except OSError:
                continue
            if size != self._size:
                self._size = size
                self._forward(self.reader.read())

    def _forward(self, points: list[tuple[Any, dict[str, Any]]]) -> None:
        for step, point in points:
            self.trial.report_metrics(step, point)

    def finish(self) -> None:
        """After the command exited: the lines it wrote last, a last one without its newline
        included."""
        self.halt.set()
        self.join()
        self._forward(self.reader.read(final=True))


class _StderrTail(threading.Thread):
    """Copies a command's stderr to this job's, keeping its last lines for the error, and the
    script's own exception line: a launcher's summary (torchrun's frame of "=" rules and its
    ChildFailedError) pushes it out of the last lines, and with several ranks the rank that
    failed first (torchrun's "Root Cause") is the one to name, not a peer that lost it."""

    LINES = 20
    EXCEPTION = re.compile(r"^(?:\[rank(\d+)\]:\s*)?"
                           r"([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)\b.*)$")
    ROOT_RANK = re.compile(r"^rank\s*:\s*(\d+)")

    def __init__(self, proc: subprocess.Popen) -> None:
        super().__init__(daemon=True, name="asha-command-stderr")
        self.proc = proc
        self.last: collections.deque[bytes] = collections.deque(maxlen=self.LINES)
        self.exceptions: dict[int | None, str] = {}  # rank (None: unprefixed) -> its last one
        self.latest: str | None = None
        self._root: int | None = None
        self._in_root = False
        self._launcher = False  # torchrun's summary came: its children's errors are above it
        self._aborted = False  # a C++ std::terminate: a thread still running as the process ended
        self.start()

    def run(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        out = getattr(sys.stderr, "buffer", None)
        for line in iter(stream.readline, b""):
            self.last.append(line)
            self._read(line.decode(errors="replace").strip())
            try:
                if out is not None:
                    out.write(line)
                    out.flush()
                else:
                    sys.stderr.write(line.decode(errors="replace"))
            except (OSError, ValueError):
                pass

    def _read(self, text: str) -> None:
        if text.endswith("terminate called without an active exception"):
            self._aborted = True
        m = self.EXCEPTION.match(text)
        if m and "ChildFailedError" in m.group(2):
            self._launcher = True
        elif m:
            rank = int(m.group(1)) if m.group(1) is not None else None
            self.exceptions[rank] = self.latest = m.group(2)
        if text.startswith("Root Cause"):
            self._in_root = True
        elif self._in_root and (r := self.ROOT_RANK.match(text)):
            self._root, self._in_root = int(r.group(1)), False

    def join(self, timeout: float | None = 10.0) -> None:
        super().join(timeout)

    def exception(self) -> str | None:
        return self.exceptions.get(self._root, self.latest) if self._root is not None \
            else self.latest

    def text(self) -> str:
        """The last lines, ending with the script's exception where a launcher's summary, or
        a line without words, ends them instead (an exception the script caught and went on
        from is not made its error)."""
        text = b"".join(self.last).decode(errors="replace").strip()
        exc = self.exception()
        last = text.splitlines()[-1] if text else ""
        if exc and not text.endswith(exc) and (
                self._launcher or not any(c.isalnum() for c in last)):
            text += f"\n{exc}"
        elif exc is None and self._aborted:
            text += ("\nthe process aborted with no Python error (\"terminate called without an "
                     "active exception\": a library's thread still ran as it exited); a "
                     "torch.distributed process group left alive does this: call "
                     "torch.distributed.destroy_process_group() at the end of the script")
        return text


def _publish_command_checkpoint(spec: SegmentSpec, trial: Trial, out_ckpt: Path, rc: int,
                                got: ReportFile) -> None:
    """Publish what the command left in its checkpoint folder (rank 0's job, for every rank).

    What a command that failed left there may be half-written (killed in the middle of a save):
    the trial's latest checkpoint stays the one before, unless the command said the folder (or
    an entry of it) was complete (``saved``). Not after an ended_early line either: written once
    the final model was saved, it says training is over, and a TrainingEndedEarly that then
    left the script (command_trial.py) fails nothing."""
    ended_early = got.ended_early is not None
    left = [item for item in out_ckpt.iterdir() if item.name != PARTIAL]
    with trial.publishing_alone():
        if (rc == 0 or ended_early or got.saved == WHOLE_FOLDER) and left:
            with trial.save_checkpoint(length=got.reached if rc == 0 or ended_early
                                       else got.saved_reached) as path:
                for item in left:
                    shutil.move(str(item), str(path / item.name))
        elif rc == 0 and spec.max_length is not None and spec.length < spec.max_length:
            # a checkpoint callback left at its default path (Keras's, the script's own folder)
            # (the master says "no checkpoint" itself, from the result's no_checkpoint)
            print(f"asha_hpc: warning: the command left ASHA_CHECKPOINT_DIR ({out_ckpt}) empty: "
                  f"this segment has no checkpoint, and a promoted trial trains again from the "
                  f"start. Save the model there (a checkpoint callback's path, torch.save(...)); "
                  f"a path of your own is shared by every trial", file=sys.stderr, flush=True)
        elif rc != 0 and got.saved not in (None, WHOLE_FOLDER) and \
                (out_ckpt / got.saved).exists():
            # an entry it said was complete before it failed is kept: its retry goes on from there
            with trial.save_checkpoint(length=got.saved_reached) as path:
                shutil.move(str(out_ckpt / got.saved), str(path / got.saved))


def _run_command(spec: SegmentSpec, trial: Trial, run_dir: Path) -> dict[str, Any] | None:
    """Run a command entrypoint for one segment; return the segment's metrics (or None)."""
    out_ckpt = run_dir / "checkpoint_out"  # the ranks' jobs share it: rank 0's job publishes it
    if trial.rank == 0:
        shutil.rmtree(out_ckpt, ignore_errors=True)
    out_ckpt.mkdir(parents=True, exist_ok=True)
    report = run_dir / "report.jsonl"
    stop_file = run_dir / "STOP"
    hp_file = run_dir / "hparams.json"
    hp_file.write_text(json.dumps(spec.hparams))
    latest = trial.latest_checkpoint
    env = dict(os.environ, ASHA_EXP_DIR=spec.exp_dir, ASHA_TRIAL_ID=str(spec.trial_id),
               ASHA_TRIAL_SEED=str(spec.seed),
               ASHA_TRIAL_DIR=str(trial.dir), ASHA_RUN_DIR=str(run_dir),
               ASHA_SEGMENT=str(spec.segment), ASHA_TARGET_LENGTH=str(spec.length),
               ASHA_LENGTH_UNIT=spec.length_unit, ASHA_METRIC=spec.metric,
               ASHA_HPARAMS=json.dumps(spec.hparams), ASHA_HPARAMS_FILE=str(hp_file),
               ASHA_LATEST_CHECKPOINT=str(latest) if latest else "",
               ASHA_CHECKPOINT_DIR=str(out_ckpt), ASHA_REPORT_FILE=str(report),
               ASHA_STOP_FILE=str(stop_file), ASHA_FREE_PORT=str(free_port()),
               ASHA_MAX_LENGTH=str(spec.max_length) if spec.max_length is not None else "")
    # Slurm sends the time-limit USR2 to every process of the job step; its default action
    # would kill the command. Ignored signals stay ignored across exec: the command learns of
    # the coming stop from ASHA_STOP_FILE instead (as of a pause's SIGURG, ignored by default).
    time_limit = getattr(signal, signals.TIME_LIMIT)
    command = fill_command(list(spec.entrypoint), spec.hparams, env)  # ${hparams.lr}, ${args}
    # as run, in the job's log: errors name the config's template, the same for every trial
    print(f"asha_hpc: command: {shlex.join(command)}", file=sys.stderr, flush=True)
    try:
        proc = subprocess.Popen(command, cwd=spec.context_dir, env=env,
                                stderr=subprocess.PIPE,
                                preexec_fn=lambda: signal.signal(time_limit, signal.SIG_IGN))
    except FileNotFoundError:
        raise FatalTrialError(f"command: {spec.entrypoint[0]} not found (in {spec.context_dir} "
                              f"and on the job's PATH)") from None
    except PermissionError:
        raise FatalTrialError(f"command: {spec.entrypoint[0]} is not executable (chmod +x)") from None

    told: list[str] = []  # the stop signals, in order (a pause's SIGURG, then the SIGTERM
    # of the cancel that follows once its grace is over)

    def on_signal(signum, frame):  # tell the script through the stop file; let it finish
        told.append(signal.Signals(signum).name)
        trial.request_stop(told[-1])
        stop_file.touch()

    for name in signals.CAUGHT:
        signal.signal(getattr(signal, name), on_signal)
    if trial.should_stop():  # told before the command started
        stop_file.touch()
    tail = _StderrTail(proc)
    follower = _ReportFollower(ReportReader(report), trial)
    rc = _wait_command(proc, follower)
    stopped = rc != 0 and trial._stop_reason in (signals.TERMINATE, "SIGINT", signals.PAUSE)
    if stopped:
        _await_command_tree(tail)
    else:
        tail.join()
    follower.finish()
    got = follower.reader.got
    for text in got.warnings:  # the command's log has them: they go with the result too
        notes.carry(text)
    metrics = got.metrics
    ended_early = got.ended_early is not None
    if trial.rank == 0:
        _publish_command_checkpoint(spec, trial, out_ckpt, rc, got)
    if got.invalid is not None:
        raise InvalidHP(got.invalid)
    if got.fatal is not None:
        raise FatalTrialError(got.fatal)
    if ended_early:
        ended = TrainingEndedEarly(got.ended_early)
        ended.reached = got.reached
        if metrics is not None and as_number(metrics.get(spec.metric)) is not None:
            trial.result_point(spec.length, metrics)
            ended.reported = metrics
        raise ended
    if rc in (126, 127):  # the shell's "not executable" / "command not found"
        raise FatalTrialError(f"command {spec.entrypoint!r} exited with status {rc}: a command it "
                              f"runs was {'not found' if rc == 127 else 'not executable'} "
                              f"(see the job's log)")
    if stopped:
        # Slurm's scancel and preemption signal every process of the job, the command too: it
        # died of the signal or failed on it (a pause ends in a scancel when the command has
        # not stopped within its grace). The machine's doing, not the code's
        named = ", then ".join(dict.fromkeys(told)) or trial._stop_reason
        raise _StoppedCommand(f"command {spec.entrypoint!r} exited with status {rc} after the "
                              f"job's stop signal ({named})"
                              + (f"{COMMAND_STDERR}\n{tail.text()}" if tail.text() else ""))
    killed = _killed_by(rc)
    if killed is not None:
        # a signal's death: what the command printed last says nothing of it (a tracker's
        # "View this run ..."), so the kill is the last line, the one status and fail-fast read
        raise RuntimeError(f"command {spec.entrypoint!r} exited with status {rc}"
                           + (f"{COMMAND_STDERR}\n{tail.text()}\n" if tail.text() else ": ")
                           + killed)
    if rc != 0:
        # the end of its stderr: its own error (a traceback's last line) tells one failure from
        # another, to the user and to fail-fast
        raise RuntimeError(f"command {spec.entrypoint!r} exited with status {rc}"
                           + (f"{COMMAND_STDERR}\n{tail.text()}" if tail.text() else ""))
    if metrics is not None:
        if spec.metric not in metrics:
            raise MetricNotReported(
                f"the searcher's metric '{spec.metric}' was not reported: the command reported "
                f"{_names(metrics)}; fix the name in the command or searcher.metric in the config")
        if as_number(metrics[spec.metric]) is None:
            raise MetricNotReported(f"the command reported the searcher's metric '{spec.metric}' "
                                    f"as {metrics[spec.metric]!r}: it must be a number")
        # (Determined's report_validation_metrics is a point and then the result made of it)
        trial.result_point(spec.length, metrics)
    return metrics

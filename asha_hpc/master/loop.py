"""The master loop: reconcile -> collect results -> watch jobs -> submit -> journal -> sleep.

The master is light (no training, no torch import) and stateless between polls: everything it
knows is ``replay(journal)``. It can be SIGKILLed at any instant: every step journals *before*
it acts (an intent before a submission, a result before its inbox file is removed), so a
resumed master redoes nothing twice and loses nothing:

- an inbox message is applied once: a message for an attempt the trial no longer waits for is
  dropped (the journal already holds it, or the trial moved on);
- a submission whose job id never reached the journal is looked up (``backend.find``) before
  anything is resubmitted;
- a trial is only resubmitted once its previous job is known to be over.
"""
from __future__ import annotations

import errno
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import replace as dataclasses_replace
from pathlib import Path
from typing import Any

from ..backends import log_files, make_backend
from ..backends.base import (
    STUCK,
    Backend,
    Capabilities,
    JobSpec,
    JobState,
    Pending,
    SegmentSpec,
    SubmitError,
    TimeCap,
    WorkerSpec,
    for_jobs,
    jobs_text,
)
from ..config import ExperimentConfig, trial_seed
from ..errors import DISK_FULL_ERRNOS, AshaError, JournalFull, MasterDiskFull, shell_word
from ..protocol import messages, records
from ..protocol.checkpoints import latest_checkpoint
from ..protocol.diskfull import DiskFull, mount_point
from ..protocol.expdir import (
    FILE_MODE,
    NODE_LOCAL_FS,
    ExpDir,
    attempt_key,
    filesystem_type,
    prune_oldest,
    remove_trees,
    result_key,
    scan_inbox,
)
from ..protocol.fswatch import FolderWatch
from ..protocol.handoff import VERSION as HANDOFF_VERSION
from ..protocol.journal import Journal
from ..protocol.queue import Queue, QueuedJob, SubmitWait, read_queue, write_queue
from ..protocol.records import (
    Aborted,
    Cancelled,
    CheckpointsRemoved,
    Done,
    Init,
    Intent,
    JobDead,
    Kind,
    MaxCompute,
    NodesReadmitted,
    Record,
    Result,
    Resumed,
    RetryFailed,
    Sampled,
    Started,
    Stopped,
    SubmitFailed,
    Submitted,
    WarmStart,
    WorkerGone,
    WorkerReady,
    Workers,
    WorkersSubmitted,
)
from ..protocol.requests import Answer, Request, cancel_asked_at, read_request, write_answer
from ..views.livereport import LiveReport
from ..views.observe import fmt_duration
from ..views.status import held_back
from . import autoworkers, pool
from .lease import Lease
from .retention import removable_checkpoints
from .state import (
    BEFORE_CODE,
    FAILED,
    LEFT_STATE,
    LEFT_STATE_SEGMENTS,
    PENDING,
    QUEUED,
    RULES,
    RUNNING,
    SAME_ERROR_TRIALS,
    STOPPED,
    ExperimentState,
    TrialState,
    cap_change,
    config_hash,
    config_pin,
    error_signature,
    error_summary,
    replay,
)
from .warmstart import describe as describe_warm_start
from .warmstart import read_warm_start

log = logging.getLogger("asha_hpc")
SUBMIT_BACKOFF_S = 10.0  # the first wait after the scheduler could not take a job; doubles
SUBMIT_BACKOFF_MAX_S = 300.0  # up to this
#: with a limit on the user's jobs at once met: one more job is tried this often
JOBS_PROBE_S = 60.0
# a streak of pool jobs that ended before their code ran (pool.UNREADY_STREAK) slows the pool:
# one new job per POOL_BACKOFF_S, doubling up to POOL_BACKOFF_MAX_S, until one starts
POOL_BACKOFF_S = 30.0
POOL_BACKOFF_MAX_S = 1800.0
# a pool job that ended so by these says nothing about its node or the environment
NOT_UNREADY = (JobState.LOST, JobState.CANCELLED, JobState.PREEMPTED)
# a job pending for asking too long a time limit that was not withdrawn (the limits could not be
# read, or were read as allowing it) is judged again this often, with the limits read anew
TOO_LONG_AGAIN_S = 300.0

PROGRESS_EVERY_S = 5.0  # the progress line at most this often (where it changed)


def progress_every(quiet: bool) -> float:
    """The master's progress interval: ``PROGRESS_EVERY_S``, or never but at the end (``--quiet``)."""
    return math.inf if quiet else PROGRESS_EVERY_S


ABORT_AFTER_FAILED = 3  # give up when this many trials failed for good and none ever worked
# checkpoint retention at most this often: a pass walks every trial (milliseconds at 10,000),
# and freeing hopeless trials as they appear leaves little to remove when the search ends
RETAIN_EVERY_S = 2.0
# a running job whose heartbeat is hung_after_s old is hung (_hung): its job beats at least 4
# times in that span (SOLO_BEAT_S, 30 s, at most), which covers a long stall of a shared file
# system or of the GIL; the master looks every HUNG_LOOK_S at most (a stat per running trial)
SOLO_BEAT_S = 30.0
HUNG_LOOK_S = 60.0
KEEP_REJECTED = 100  # rejected inbox files kept aside (.rejected-*), the oldest removed first
DISK_LOOK_S = 5.0  # while a filesystem is full: how often to look for room


def max_compute_problem(cfg: ExperimentConfig, st: ExperimentState, units: int,
                        root: Path) -> str | None:
    """Why ``--max-compute units`` cannot serve the search ``st`` (one line), or None."""
    unit = cfg.searcher.length_unit
    started = st.searcher.compute_started()
    if units < cfg.searcher.max_length:
        return (f"--max-compute {units} is less than max_length ({cfg.searcher.max_length} "
                f"{unit}): no trial could reach it")
    if units < started:
        over = st.lifecycle in ("completed", "failed")
        return (f"--max-compute {units}: the search has already started {started} {unit} of "
                "training; give at least that"
                + ("" if over else f" (to stop it now: `asha-hpc cancel {shell_word(root)}`)"))
    return None


def readmit_problem(st: ExperimentState, hosts: list[str]) -> str | None:
    """Why ``--readmit-node`` cannot take back ``hosts`` (one line), or None."""
    not_out = [h for h in hosts if h not in st.nodes.bad]
    if not hosts or not not_out:
        return None if hosts else "no node named"
    out = ", ".join(sorted(st.nodes.bad)) or "none"
    return (f"--readmit-node: node {', '.join(not_out)} is not excluded (excluded: {out}); "
            "give the name `asha-hpc status` shows")


def last_line(path: Path) -> str:
    """``: LAST LINE`` of a job's log file (its last 4 KB; '' when empty or unreadable)."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - 4096))
            lines = [x for x in f.read().decode(errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return f": {lines[-1].strip()[:200]}" if lines else ""


class _StderrLines:
    """Progress lines on stderr. A terminal that is gone (the SSH session closed: EIO, a
    closed pipe) ends the printing, not the master."""

    def __init__(self) -> None:
        self.gone = False

    def __call__(self, line: str) -> None:
        if self.gone:
            return
        try:
            print(line, file=sys.stderr, flush=True)
        except (OSError, ValueError):
            self.gone = True


def job_trials(live: Iterable[TrialState]) -> dict[str, list[int]]:
    """Job id -> the trials it runs, for the lines that name jobs (``jobs_text``)."""
    out: dict[str, list[int]] = {}
    for t in live:
        out.setdefault(str(t.job_id), []).append(t.id)
    return out


def paused_text(done: Stopped) -> str:
    """What a pause did (its ``stopped`` record), as the master says it and ``asha-hpc pause``
    repeats it."""
    def n(k: int, what: str) -> str:
        return f"{k} {what}{'s' if k != 1 else ''}"

    parts = []
    if done.jobs:
        parts.append(n(done.jobs, "running job") + " told to save and stop"
                     + (f" ({len(done.cancelled)} cancelled after the grace: "
                        f"{', '.join(done.cancelled)})" if done.cancelled else ""))
    if done.queued:
        parts.append(n(done.queued, "queued job") + " cancelled (submitted again at resume)")
    if done.workers:
        parts.append(n(done.workers, "waiting worker") + " told to leave")
    return ", ".join(parts) or "no job of it was running"


class Master:
    def __init__(self, exp: ExpDir, cfg: ExperimentConfig, backend: Backend | None = None,
                 force: bool = False, progress: Callable[[str], None] | None = None,
                 progress_every_s: float = PROGRESS_EVERY_S, report_every_s: float | None = None,
                 retry_failed: bool = False, warm_start: list[WarmStart] | None = None,
                 max_compute: int | None = None, readmit: list[str] | None = None,
                 on_lease: Callable[[], None] | None = None,
                 disk_full: DiskFull | None = None) -> None:
        self.exp = exp
        self._on_lease = on_lease  # the command's own lines, once this master holds the folder
        # and its journal replays
        self.resume_hint: str | None = None  # how the search goes on after a stop, if not by hand
        self.resume_call: str | None = None  # by hand, where not `asha-hpc resume` (Python's)
        self.max_compute = max_compute  # resume --max-compute: the cap from here on
        self.readmit = readmit or []  # resume --readmit-node: excluded nodes taken back
        # searcher.warm_start's records as ``run`` read them to check them (read here when None)
        self._warm_start = warm_start
        self.retry_failed = retry_failed  # resume --retry-failed: the code was fixed
        self.cfg = cfg
        self.backend = backend or make_backend(cfg, exp.root)
        self.caps = self.backend.capabilities(cfg)  # what it does: the master never asks its name
        self.clock = self.backend.clock
        self.force = force
        self.progress = progress or _StderrLines()
        self.progress_every_s = progress_every_s
        self.grace_s = (cfg.result_grace_s if cfg.result_grace_s is not None
                        else self.caps.result_grace_s)
        self.lease = Lease(exp.lease, timeout_s=max(120.0, 10 * cfg.poll_interval_s))
        self.journal: Journal | None = None
        self.state: ExperimentState | None = None
        self._stop_reason: str | None = None
        self._dead_since: dict[str, float] = {}
        self._queue_seen: dict[str, str] = {}  # pending job -> the scheduler's reason
        self._queue_since: dict[str, float] = {}  # pending job -> since when, for that reason
        # what an earlier master left in queue.json (job -> (reason, since)); None until read
        self._queue_before: dict[str, tuple[str, float]] | None = None
        self._queue = Queue(jobs=[], submissions_wait=None)  # as last written to queue.json
        self._submit_failures = 0  # refusals in a row (a third aborts)
        self._too_long_at = float("-inf")  # when jobs that ask too long a limit are judged again
        # trials (None: pool workers) whose jobs go to any node: the scheduler refused them
        # with the nodes they were to avoid excluded (no other node of their partition left)
        self._anywhere: set[int | None] = set()
        self._submit_after = float("-inf")  # after a transient refusal: no submission before
        self._submit_backoff = 0.0
        # the most jobs this search keeps submitted at once, once the scheduler refused more
        # (SubmitError.too_many; None: no such limit met); and when to try one more
        self._jobs_most: int | None = None
        self._jobs_probe_at = float("-inf")
        self._jobs_said = False
        self._pool_slow_said: float | None = None  # the streak of dead pool jobs last said
        self._submit_waiting_since: float | None = None  # since when the scheduler cannot take jobs
        self._last_beat = 0.0
        self._last_progress = self._progress_looked = 0.0
        self._progress_said = ""
        self._last_retain = 0.0
        self._hung_looked = 0.0  # the last look for hung jobs (_hung)
        self._said_left_state = False  # state.LEFT_STATE, said once
        self._said_checkpoint_advice = False  # state.checkpoint_advice, said once
        self._awake_since = time.time()  # since when this master has polled without a stall
        self._unjournaled_said = False
        self._started_at = time.time()
        self._not_removed: set[int] = set()  # trials whose checkpoints would not go (said once)
        self._levels: list[int] | None = None
        self._caps_said: set[tuple[str, str]] = set()  # time-limit caps named in the log
        self._lost_said: set[tuple[int, int]] = set()  # (trial, segment): its checkpoint is gone
        self._consumed: list[Path] = []  # inbox files journaled in this step, removed at its end
        self._inbox_watch: FolderWatch | None = None  # wakes the loop when a message lands
        # <exp>/report.html rendered by a child process every report_every_s (None: never)
        self._live = LiveReport(exp.root, report_every_s) if report_every_s else None
        self._rejected = 0  # inbox files rejected by this master
        self._unreadable: dict[str, str] = {}  # attempt key -> why its result could not be read
        # a full filesystem: no new work until room (``disk_full``: already said, by a master
        # of this process that stopped for it)
        self._full: DiskFull | None = disk_full
        self.waits_for_room = False  # stopped by its own full disk
        self.keep_lease_when_full = False  # then close() keeps the lease (run_master waits)
        self._warned: set[str] = set()  # kinds of the code's warnings said (_code_warnings)
        self._full_looked = 0.0

    # ------------------------------------------------------------------ journal
    def _record(self, *recs: Record, sync: bool = True) -> None:
        """Journal, then apply: the only way state changes. ``sync=False`` (results read from
        the inbox) defers the fsync to the next record that acts on them, or to the end of the
        step (``_flush``), before their inbox files go: one fsync per hand-off, not two."""
        assert self.journal is not None and self.state is not None
        now = self.clock.time()
        bad = len(self.state.nodes.bad)
        for r in self.journal.append((dict(r.to_record(), time=now) for r in recs), sync):
            self.state.apply(r)
        if len(self.state.nodes.bad) > bad:  # said once, when it happens (replay says nothing)
            after_h = self.cfg.readmit_nodes_after_h
            back = self.state.nodes.readmit_at(after_h) if after_h else {}
            for host, why in list(self.state.nodes.bad.items())[bad:]:
                auto = (f"; the master takes it back on its own after {back[host][1]:g} h "
                        f"(readmit_nodes_after_h)" if host in back else "")
                self.progress(f"node {host} excluded: {why}. Its jobs go elsewhere and any "
                              f"restarts its failures counted are given back; tell your "
                              f"cluster's administrators, and once it is repaired: `asha-hpc "
                              f"resume {shell_word(self.exp.root)} --readmit-node {host}`{auto}")
        drawn = self.state.searcher.take_sampled()  # model draws (tpe, gp): journaled, so that
        if drawn:  # replay never fits them again; before any job sees them (write-ahead)
            for r in self.journal.append([dict(Sampled(trial=t, hparams=hp).to_record(), time=now)
                                          for t, hp in sorted(drawn.items())], sync):
                self.state.apply(r)

    def _flush(self) -> None:
        """End of a step: make the journal durable, then remove the inbox files it holds (a
        crash in between leaves files that the next master drops as already applied)."""
        assert self.journal is not None
        self.journal.sync()
        if self._consumed and self.journal.fence is not None:
            self._fence()  # a stale master removes nothing the new one may need
        for p in self._consumed:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
        self._consumed = []

    # ------------------------------------------------------------------ lifecycle
    def request_stop(self, reason: str) -> None:
        self._stop_reason = reason

    @property
    def stop_reason(self) -> str | None:
        return self._stop_reason

    @property
    def disk_full(self) -> DiskFull | None:
        """The full filesystem that holds new work back now (said once), if any."""
        return self._full

    def _install_signals(self) -> dict[int, Any]:
        """SIGINT/SIGTERM/SIGUSR2, and SIGHUP unless ignored (``nohup``), stop the master
        cleanly at its next step (a second Ctrl-C interrupts at once). SIGHUP is a closed SSH
        session or terminal, and the kernel's to a stopped job (Ctrl-Z) when its shell exits:
        by default it killed the master between two records. Returns the previous handlers,
        restored when run() ends."""
        def handler(signum, frame):
            if self._stop_reason is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.request_stop(signal.Signals(signum).name)

        return on_stop_signals(handler)

    def run(self) -> ExperimentState:
        """Run (or resume) until the search is done, cancelled or stopped."""
        old_handlers: dict[int, Any] = {}
        try:
            if self.start():
                old_handlers = self._install_signals()
                self._loop()
            assert self.state is not None
            return self.state
        finally:
            for sig, h in old_handlers.items():
                signal.signal(sig, h)
            self.close()
            # after the last record: the report shows how it ended (nothing to show when this
            # master never took the lease, e.g. a folder it cannot write, or its journal would
            # not replay: a changed config, a lost record)
            if self._live is not None and self.state is not None \
                    and not isinstance(sys.exc_info()[1], KeyboardInterrupt):
                self._live.final()

    def _fence(self) -> None:
        """Raise LeaseHeldError unless this master still holds the lease and the journal is as
        it left it (journal.py): before an act that no record of this master's precedes."""
        self.lease.check()
        if self.journal is not None:
            self.journal.check_unchanged()

    def start(self) -> bool:
        """Take the lease, replay the journal, and journal the start (or the resumption, after
        reconciling). False if the experiment is already over. ``run`` = start, then ``step``
        until it says stop, then ``close``; tests and benchmarks drive the steps themselves."""
        note = self.lease.acquire(force=self.force)
        if note:
            log.warning("%s: %s", self.exp.root, note)
        try:  # an earlier master's wait for room is over: this one looks for itself
            self.exp.room_wait.unlink(missing_ok=True)
        except OSError:
            pass
        upgraded = self.exp.mark_format()  # before the first record an older release misreads
        if upgraded:
            self.progress(upgraded)
        self.journal = j = Journal(self.exp.journal, durable=not self.caps.virtual_time)
        # fencing (journal.py): an epoch above any written, stamped on every record, and the
        # lease checked before each write
        self.lease.set_epoch(max(j.max_epoch, self.lease.previous_epoch()) + 1)
        j.epoch, j.fence = self.lease.epoch, self.lease.check
        prune_oldest(self.exp.inbox, ".rejected-", KEEP_REJECTED)  # earlier masters' (bounded)
        if not self.caps.virtual_time:  # before the first look: no message is missed
            self._inbox_watch = FolderWatch(self.exp.inbox)
        self.state = st = replay(self.cfg, self.journal.records)
        if self._on_lease is not None:  # once the folder is this master's and its journal reads
            self._on_lease()
        # `submit --retry-failed` leaves it for the master its job starts, once: a requeue of
        # that job must not retry what failed after the fix
        asked = self.exp.retry_failed_request.exists()
        self.retry_failed = self.retry_failed or asked
        if self.retry_failed and st.lifecycle not in ("new", "cancelled"):
            failed = sorted(t.id for t in st.trials.values() if t.status == FAILED)
            # and the live ones whose last attempt failed (fail-fast stopped their retries)
            shown = sorted(t.id for t in st.trials.values() if st.status_of(t) == FAILED)
            if failed or st.lifecycle != "completed":
                self._record(RetryFailed(trials=failed, before_fix_free=True))
                self.progress(
                    (f"retrying {len(shown)} failed trial(s) from their latest checkpoints "
                     f"({', '.join(map(str, shown))})" if shown else
                     "no trial had failed for good: the search goes on, its interrupted trials "
                     "from their latest checkpoints") + "; every trial's restarts count from zero")
        if asked:
            self.exp.retry_failed_request.unlink(missing_ok=True)
        if self.exp.max_compute_request.exists() and st.lifecycle != "new":
            self._take_max_compute_request()  # left for this master (the last one stopped
            # first), even where the cap it asks for continues a search that had ended
        if self.max_compute is not None and st.lifecycle not in ("new", "cancelled"):
            self.progress(self._set_max_compute(self.max_compute))
        if self.exp.readmit_request.exists() and st.lifecycle != "new":
            self._take_readmit_request()
        if self.readmit and st.lifecycle not in ("new", "cancelled"):
            self.progress(self._readmit(self.readmit))
        if st.lifecycle in ("completed", "cancelled", "failed"):
            hint = ""
            if st.lifecycle == "failed":
                root = shell_word(self.exp.root)
                hint = (f"; once the cause is fixed, continue it with `asha-hpc resume {root} "
                        f"--retry-failed` (or as a Slurm job: `asha-hpc submit "
                        f"{shell_word(self.exp.config)} --exp-dir {root} --retry-failed`)")
            elif st.lifecycle == "completed" and self.retry_failed:
                hint = " (no failed trial to retry)"
            elif st.lifecycle == "completed" and cancel_asked_at(self.exp) is None:
                # Optuna's load_if_exists, then optimize more
                root = shell_word(self.exp.root)
                hint = (f"; to search on: a new experiment with `searcher.warm_start: [{root}]` "
                        f"learns from this one's results, and `asha-hpc resume {root} "
                        f"--max-compute N` continues one that max_compute ended")
            if cancel_asked_at(self.exp) is not None:  # nothing left to cancel: a later
                self.exp.cancel_request.unlink(missing_ok=True)  # resume must not find it
                hint += "; no job to cancel"
            if self.exp.pause_request.exists():
                self.exp.pause_request.unlink(missing_ok=True)
                hint += "; nothing to pause"
            self.progress(f"experiment already {st.lifecycle}; nothing to do{hint}")
            return False
        if st.lifecycle == "new":
            # the earlier searches' results reach the searcher before Init draws the first
            # trials: one group, one write; a master that stopped after a folder's record does
            # not read that folder again (a torn write may have kept some records, not all)
            journaled = [r for r in self.journal.records if r["kind"] == Kind.WARM_START]
            if self._warm_start is not None and not journaled:
                warm = self._warm_start
            else:
                warm = read_warm_start(self.cfg, journaled)[0]
            init = Init(seed=self.cfg.experiment_seed, config_hash=config_hash(self.cfg),
                        pinned=config_pin(self.cfg), rules=RULES)
            self._record(*warm, init)
            if warm:
                assert st.warm is not None  # set by the records just applied
                why = next((w.why for w in warm if w.why), "")
                self.progress(describe_warm_start(st.warm)
                              + (f"; first left out: {why}" if why else ""))
        else:
            self._record(Resumed(pid=os.getpid()))
            self._reconcile()
        return True

    def _take_max_compute_request(self) -> None:
        """``resume --max-compute`` while this master runs: the cap it asks for, checked and
        journaled as at a resume (a crash before the request goes: the next master finds the
        cap already set, and says so)."""
        def cap(req: Request) -> str:
            units = int(req.body)  # ValueError: refused
            if self.state is not None and self.state.lifecycle == "cancelled":
                raise AshaError("the search was cancelled: a cap changes nothing")
            return self._set_max_compute(units)

        self._take_request(self.exp.max_compute_request, self.exp.max_compute_answer, cap,
                           "not a whole number of units")

    def _take_readmit_request(self) -> None:
        """``resume --readmit-node`` while this master runs: the nodes it takes back."""
        self._take_request(self.exp.readmit_request, self.exp.readmit_answer,
                           lambda req: self._readmit(req.body.split()), "unreadable")

    def _take_request(self, path: Path, answer_at: Path, act: Callable[[Request], str],
                      unreadable: str) -> None:
        """A request a command left for this master (requests.py): ``act`` journals what it
        asks and says what changed, or refuses it (AshaError, ValueError: nothing changed).
        Either way the answer goes to the command that asked, then the request goes."""
        token = ""
        try:
            req = read_request(path)
            token = req.token
            line, taken = act(req), True
        except (OSError, ValueError) as e:
            line, taken = f"{unreadable} ({e})", False
        except AshaError as e:
            line, taken = str(e), False
        self.progress(line if taken else f"ignored {path}: {line}")
        write_answer(answer_at, Answer(token=token, taken=taken, line=line))
        path.unlink(missing_ok=True)

    def _readmit_on_time(self) -> None:
        """``readmit_nodes_after_h``: excluded nodes whose wait is over take work again."""
        st = self.state
        assert st is not None
        after_h = self.cfg.readmit_nodes_after_h
        if after_h is None or not st.nodes.bad:
            return
        for host, wait_h in sorted(st.nodes.readmit_due(self.clock.time(), after_h).items()):
            self._record(NodesReadmitted(hosts=[host], after_h=wait_h))
            self.progress(f"node {host} taken back {wait_h:g} h after its exclusion "
                          f"(readmit_nodes_after_h): jobs may run there again, and it is judged "
                          f"afresh; excluded again, it is taken back after {2 * wait_h:g} h")

    def _readmit(self, hosts: list[str]) -> str:
        """Journal that the excluded ``hosts`` take work again; returns what changed, in one
        line. AshaError: refused (a node that is not excluded), nothing journaled."""
        st = self.state
        assert st is not None
        problem = readmit_problem(st, hosts)
        if problem:
            raise AshaError(problem)
        self._record(NodesReadmitted(hosts=sorted(set(hosts))))
        return (f"node {', '.join(sorted(set(hosts)))} taken back: jobs may run there again, "
                "and it is judged afresh")

    def _set_max_compute(self, units: int) -> str:
        """``resume --max-compute``: journal the new cap (checked here: it needs the search's
        state); returns what it changed, in one line. AshaError: refused, nothing journaled."""
        st = self.state
        assert st is not None
        problem = max_compute_problem(self.cfg, st, units, self.exp.root)
        if problem:
            raise AshaError(problem)
        unit = self.cfg.searcher.length_unit
        started = st.searcher.compute_started()
        was = st.max_compute
        if units == was:
            return f"max_compute is already {units} {unit}"
        stopped = {t.id for t in st.trials.values() if t.status == STOPPED}
        self._record(MaxCompute(units=units, was=was))
        again = sum(st.trials[t].status != STOPPED for t in stopped)
        line = f"max_compute {cap_change(was, units)} {unit} ({started} started so far)"
        if again:
            line += f"; {again} trial(s) that had ended unpromoted may be promoted again"
        if st.searcher.done and (was is None or units > was):
            held = held_back(st)
            if held:
                line += (f"; still too little: {held['trials_not_created']} trial(s) not "
                         f"created and {held['promotions_not_made']} promotion(s) not made each "
                         f"need more than the {units - started} {unit} left; give more")
            else:
                line += ("; nothing more to train: every bracket has created its max_trials "
                         "trials and no trial that ended can go on")
        return line

    def close(self) -> None:
        """Release the journal, the backend and the lease (running jobs are left alone). A
        master stopped by a full disk under ``run_master`` keeps its lease: that holds it while
        it waits for room, so that no one takes the search for stopped meanwhile."""
        if self.journal is not None:
            self.journal.close()
        if self._inbox_watch is not None:
            self._inbox_watch.close()
            self._inbox_watch = None
        self.backend.close()
        if not (self.waits_for_room and self.keep_lease_when_full):
            self.lease.release()

    def _reconcile(self) -> None:
        """After a restart: intents whose job id never reached the journal are looked up."""
        st = self.state
        assert st is not None
        lost: list[JobSpec] = []  # submitted, maybe, but never found: any job of theirs is a stray
        for t in list(st.trials.values()):
            if t.status in (PENDING, RUNNING) and t.worker is not None:
                self._hand_over_again(t)
                continue
            if t.status in (PENDING, RUNNING) and t.job_id is None:
                spec = self._spec(t)
                jid = self.backend.find(spec)
                if jid is not None:
                    self._record(Submitted(trial=t.id, segment=t.segment, attempt=t.attempt,
                                           job_id=jid))
                else:
                    lost.append(spec)
                    why, key = "not submitted before the master stopped", t.key
                    self._record(SubmitFailed(trial=t.id, segment=t.segment, attempt=t.attempt,
                                              error=why))
                    # a master frozen inside the submission may still submit it when it wakes
                    self.exp.mark_superseded(t.id, key, f"{why}; retried", unstarted=True)

        for w in st.pool.alive(pool.POOL):
            if w.job_id is None:
                wspec = self._worker_spec(w.id.split(".")[0])
                jid = self.backend.find(wspec)
                if jid is not None:
                    self._record(WorkersSubmitted(jobs={w.id: jid}))
                else:
                    lost.append(wspec)
                    self._record(WorkerGone(workers=[w.id],
                                            why="not submitted before the master stopped"))
        strays = self.backend.cancel_strays(lost) if lost else []
        if strays:
            which = f"job {strays[0]}" if len(strays) == 1 else f"jobs {' '.join(strays)}"
            self.progress(f"cancelled {which}: submitted as the last master stopped, before it "
                          f"could take {'it' if len(strays) == 1 else 'them'} over; what "
                          f"{'it was' if len(strays) == 1 else 'they were'} to run is "
                          f"submitted again")

    def _hand_over_again(self, t) -> None:
        """After a restart: a segment journaled as handed to a waiting job reaches its slot
        (again: a slot is created once, so a second try is harmless)."""
        body = self.backend.handed(t.worker, t.slot)
        if body is not None and body.get("type") == "segment" and \
                (body.get("spec") or {}).get("attempt") == t.attempt and \
                (body.get("spec") or {}).get("trial_id") == t.id:
            return
        if body is None and self.backend.hand_over(t.worker, t.slot, self._segment_body(t)):
            return
        self._record(SubmitFailed(trial=t.id, segment=t.segment, attempt=t.attempt, worker=t.worker,
                                  error=f"worker {t.worker} left before taking the segment"))

    def _loop(self) -> None:
        while self.step():
            self._sleep(self.cfg.poll_interval_s)

    def _sleep(self, seconds: float) -> None:
        """Sleep until the next poll, waking early when a message lands in the inbox (so a
        waiting job gets its next segment in milliseconds, not a poll interval later)."""
        if self.caps.virtual_time:
            self.clock.sleep(seconds)
            return
        if self._inbox_watch is None:  # steps driven without start()
            self._inbox_watch = FolderWatch(self.exp.inbox)
        self._inbox_watch.wait(seconds)

    def step(self) -> bool:
        """One poll of the loop; False once the master should exit. An idle step costs one
        listdir of the inbox, a stat each for a cancel, a max_compute and a readmit request,
        and the backend's (rate-limited) job query: nothing that grows with the number of trials.
        Waiting jobs get their next segment before the step's housekeeping (inbox files,
        retention, progress)."""
        try:
            go = self._step()
            self._flush()
        except (OSError, JournalFull) as e:
            if isinstance(e, OSError) and e.errno not in DISK_FULL_ERRNOS:
                raise
            # the master's own writes (its journal, job scripts, pickles, slots) hit a full
            # disk: stop here; what was journaled stands, and a resumed master finds the rest
            # (reconcile), as run_master starts one once there is room
            self.waits_for_room = True
            self._mark_room_wait()
            if isinstance(e, JournalFull):  # its own line names the journal
                raise MasterDiskFull(str(e), str(self.exp.journal), e.quota) from None
            where = str(e.filename or self.exp.root)
            what = f"writing {where}" if e.filename else f"writing in {where}"
            raise MasterDiskFull(f"{mount_point(Path(where))}: {e.strerror} ({what}); the "
                                 f"master stops, nothing is lost: free space or raise the quota, "
                                 f"then `asha-hpc resume {shell_word(self.exp.root)}`",
                                 where, e.errno == errno.EDQUOT) from None
        return go

    def _mark_room_wait(self) -> None:
        """Leave ``status`` the one mark it can read of a wait nothing could journal: an empty
        file takes an inode and no block, so a full disk or an exhausted block quota still
        takes it (where it does not, status says nothing more than before)."""
        try:
            os.close(os.open(self.exp.room_wait, os.O_CREAT | os.O_WRONLY, FILE_MODE))
        except OSError:
            pass

    def _step(self) -> bool:
        st = self.state
        assert st is not None
        self._heartbeat()
        cancel = self.exp.cancel_request.exists()  # seen before the results: none is left out
        pause = self.exp.pause_request.exists()
        self._collect()
        if st.passed_fresh >= LEFT_STATE_SEGMENTS and not self._said_left_state:
            self._said_left_state = True
            self.progress(LEFT_STATE.format(n=st.passed_fresh))
        if st.checkpoint_advice is not None and not self._said_checkpoint_advice:
            self._said_checkpoint_advice = True
            self.progress(st.checkpoint_advice)
        if cancel:
            self._cancel()
            return False
        if pause:
            self._pause()
            return False
        self._check_jobs()
        self._carry_ended_early()
        if self.exp.max_compute_request.exists():
            self._take_max_compute_request()
        if self.exp.readmit_request.exists():
            self._take_readmit_request()
        self._readmit_on_time()
        if self._should_abort():
            return False
        if self._stop_reason is None and self._room():
            warm = self._warm_workers()
            self._hand_over()
            if self.clock.time() < self._submit_after:
                pass  # the scheduler could not take jobs: wait out the backoff
            elif warm:
                self._grow_pool()
                self._submit(fresh_only=True)
            else:
                self._submit()
        self._show_progress()
        if self._live is not None:
            self._live.poll()
        self._retain()
        if st.searcher_done and not st.todo and not st.live():
            self._release_workers(list(st.pool.alive()), "the search is done")
            self._retain(force=True)
            self._finish()
            return False
        if self._stop_reason is not None:
            self._release_workers(st.pool.idle(), "the master stopped")
            self._record(Stopped(reason=self._stop_reason))
            self.progress(f"master stopped ({self._stop_reason}); jobs keep running. "
                          + (self.resume_hint or f"Continue with: asha-hpc resume "
                                                 f"{shell_word(self.exp.root)}"))
            return False
        return True

    def _hung(self, live: list[TrialState], states: dict[str, JobState]
              ) -> list[tuple[JobDead, str]]:
        """Running jobs whose heartbeat (jobmain.py: rank 0 rewrites it every SegmentSpec's
        solo_beat_s) stopped hung_after_s ago by the file system's clock while the scheduler
        still runs them: a process frozen (SIGSTOP, a hung node) or gone with the scheduler
        none the wiser (its step daemon killed). Each is journaled dead, not counted against
        its trial (the machine's doing), and cancelled. Not while this master itself was
        stalled in the last hung_after_s (a file system's outage holds every heartbeat back),
        nor when most running jobs are quiet at once (the same, seen from here); jobs of a
        release without heartbeats are never judged."""
        now, hung_s = time.time(), self.cfg.hung_after_s
        look_s = min(HUNG_LOOK_S, hung_s / 8)
        if self.caps.virtual_time or now - self._hung_looked < look_s:
            return []
        if now - self._hung_looked > 3 * look_s:
            self._awake_since = now  # stalled (or just started): the jobs get hung_s to beat
        self._hung_looked = now
        if now - self._awake_since < hung_s:
            return []
        try:
            fs_now = self.exp.lease.stat().st_mtime  # renewed every few seconds
        except OSError:
            return []
        running = [t for t in live if t.status == RUNNING and t.job_id is not None
                   and states.get(t.job_id) == JobState.RUNNING]
        quiet: list[tuple[TrialState, float]] = []
        for t in running:
            beat = self.exp.last_heartbeat(t.id)
            if beat is None or t.attempt_started is None or fs_now - beat <= hung_s:
                continue
            # its own job beat at all (a beat from before it started, this host's clock, is
            # an earlier job's: this one may be of a release without heartbeats)
            if beat + (now - fs_now) >= t.attempt_started - look_s:
                quiet.append((t, fs_now - beat))
        if len(quiet) > 1 and 2 * len(quiet) > len(running):
            log.warning("%s: %d of %d running jobs wrote no heartbeat for over %.0f s: the "
                        "shared file system, not the jobs? none is cancelled", self.exp.root,
                        len(quiet), len(running), hung_s)
            return []
        return [(JobDead(trial=t.id, segment=t.segment, attempt=t.attempt, job_id=t.job_id,
                         state=JobState.RUNNING.value, counts=False,
                         hung=f"no heartbeat for {age:.0f} s while the scheduler runs it",
                         host=self.backend.node_of(str(t.job_id))), str(t.job_id))
                for t, age in quiet]

    def _heartbeat(self) -> None:
        now = time.time()
        if now - self._last_beat >= 5.0:
            self.lease.heartbeat()
            self._last_beat = now

    # ------------------------------------------------------------------ steps
    def _collect(self) -> None:
        """Apply new inbox messages: one listdir, O(new messages)."""
        st = self.state
        assert st is not None
        recs: list[Record] = []
        consumed = []
        settled = set()  # attempts whose result is in this batch: a second one is dropped
        adopted: list[str | None] = []  # job ids of retries made unnecessary by a result
        for m in scan_inbox(self.exp.inbox):
            try:  # every field checked once, here, before anything acts on it
                msg = messages.from_json(m.body, str(self.exp.root), m.name) if m.problem is None \
                    else None
            except messages.MessageError as e:
                self._reject(m.path, str(e))
                continue
            if msg is None:
                self._reject(m.path, m.problem or "not an asha_hpc message")
                continue
            consumed.append(m.path)
            if isinstance(msg, messages.Ready):
                self._on_ready(msg, recs)
                continue
            attempt = msg.key
            if isinstance(msg, messages.Result) and attempt not in settled and self._adoptable(msg):
                settled.add(attempt)
                adopted.append(st.trials[msg.trial].job_id)
                recs.append(dataclasses_replace(msg.record(), adopted=True))
                continue
            if attempt in settled or not st.awaiting(*attempt):
                if isinstance(msg, messages.Result):
                    log.info("%s: result of an attempt no longer awaited; dropped", m.name)
                    if msg.ready is not None:  # its job waits all the same: not for nothing
                        self._on_ready(msg.ready, recs)
                continue
            if isinstance(msg, messages.Result):
                settled.add(attempt)
                self._dismiss_if_gone(msg)
            elif st.trials[attempt[0]].code_ran:
                continue  # its job already said its code runs: nothing new
            recs.append(msg.record())
        # said before the batch is journaled: the journal is often on the filesystem the job
        # found full, and its append then waits for room, which the operator is only asked for
        # by this line
        for r in recs:
            if isinstance(r, records.Result) and r.disk_full:
                self._disk_full(r.disk_full)
            if isinstance(r, records.Result) and r.warnings:
                self._code_warnings(r.trial, r.warnings)
        if recs:
            self._record(*recs, sync=False)
        if any(adopted):  # the retries that had not started are not needed any more
            self.journal.sync()  # type: ignore[union-attr]
            self.backend.cancel([j for j in adopted if j])
        self._consumed += consumed  # removed once the journal holding them is durable

    def _adoptable(self, msg: messages.Result) -> bool:
        """A completed result of an earlier attempt of the trial's current segment, whose
        retry nobody has started (a job whose controller died while its task finished): it
        is valid and nobody else took the segment, so it is applied, not dropped."""
        t = self.state.trials.get(msg.trial) if self.state is not None else None
        return (t is not None and msg.status == "completed" and msg.ready is None
                and not (msg.extra or {}).get("worker") and t.worker is None
                and t.segment == msg.segment and msg.attempt < t.attempt
                and t.status in (QUEUED, PENDING))

    def _reject(self, path: Path, why: str) -> None:
        """A torn, corrupt or foreign inbox file: warn, move it aside (the first KEEP_REJECTED
        of a master's run, for a person to look at; later ones are removed: a flood of
        garbage must not fill the disk), never crash."""
        self._rejected += 1
        target = path.with_name(f".rejected-{path.name}")
        key = result_key(path.name)
        if key is not None:
            # the attempt's job sent a result the master cannot read: when that job is found
            # ended, its trial trains again without counting it
            self._unreadable[key] = f"{why}; set aside as inbox/{target.name}"
        try:
            if self._rejected > KEEP_REJECTED:
                path.unlink()
            else:
                os.replace(path, target)
        except OSError:
            pass
        if self._rejected <= KEEP_REJECTED:
            log.warning("%s: %s; moved to %s", path, why, target.name)
        elif self._rejected == KEEP_REJECTED + 1:
            log.warning("%s: more than %d rejected inbox files: the next are removed, unlogged",
                        self.exp.inbox, KEEP_REJECTED)

    def _code_warnings(self, trial: int, said: list[str]) -> None:
        """What a trial's job noticed about its code (job/notes.py): each kind once per master
        (the same mistake in every trial differs only in its numbers and paths)."""
        for text in said:
            kind = error_signature(text)
            if kind in self._warned:
                continue
            self._warned.add(kind)
            self.progress(f"warning from trial {trial}'s code (said once; more in `asha-hpc logs "
                          f"{shell_word(self.exp.root)} {trial} --err`): {text}")

    def _disk_full(self, full: dict[str, Any]) -> None:
        """A job hit a full disk or quota: hand out no work until there is room (said once)."""
        if self._full is None:
            seen = DiskFull(Path(full["path"]), bool(full.get("quota")), self.exp.root,
                            free_at=full.get("free"))  # as the job saw it, not now
            seen.needs(full.get("need"))
            if seen.has_room():  # made since (a result that waited for room to be written)
                return
            self._full = seen
            self._full_looked = time.time()
            self.progress(self._full.line(self.exp.root))
            return
        self._full.needs(full.get("need"))

    def _room(self) -> bool:
        """False while a full filesystem holds new work back (looked at every few seconds)."""
        if self._full is None:
            return True
        now = time.time()
        if now - self._full_looked < DISK_LOOK_S:
            return False
        self._full_looked = now
        if not self._full.has_room():
            return False
        self.progress(f"{self._full.mount}: there is room again; segments start again")
        self._full = None
        return True

    def _check_jobs(self) -> None:
        """Ask the backend about live jobs; a job that ended without a result is dead once the
        grace period for late results has passed."""
        st = self.state
        assert st is not None
        self.backend.tick()
        live = [t for t in st.live() if t.job_id]
        pool_jobs = st.pool.job_ids()
        now = self.clock.time()
        if not live and not pool_jobs:
            if self._queue_seen or self._queue_before is None:
                self._see_queue([], {}, now)
            return
        states = self.backend.states(sorted({t.job_id for t in live if t.job_id} | set(pool_jobs)))
        self._see_queue(live, states, now)
        recs: list[Record] = []
        for t in live:
            s = states.get(t.job_id, JobState.UNKNOWN)  # type: ignore[arg-type]
            if s == JobState.RUNNING and t.status == PENDING:
                recs.append(Started(trial=t.id, segment=t.segment, attempt=t.attempt,
                                    job_id=t.job_id, host=self.backend.node_of(str(t.job_id)),
                                    by_scheduler=True))
            if not s.terminal:
                continue
            first = self._dead_since.setdefault(t.key, now)
            if now - first < self.grace_s:
                continue
            self._dead_since.pop(t.key, None)
            unreadable = self._unreadable.pop(t.key, "")
            recs.append(JobDead(trial=t.id, segment=t.segment, attempt=t.attempt, job_id=t.job_id,
                                state=s.value, counts=(s.counts_as_restart or s == JobState.COMPLETED)
                                and not unreadable, disk_full=self._full is not None,
                                host=self.backend.node_of(str(t.job_id)), unreadable=unreadable))
        for jid in pool_jobs:  # a pool job that ended: its workers are gone (a segment it ran
            s = states.get(jid, JobState.UNKNOWN)  # is retried through its trial, above)
            if not s.terminal:
                continue
            first = self._dead_since.setdefault(f"job:{jid}", now)
            if now - first >= self.grace_s:
                self._dead_since.pop(f"job:{jid}", None)
                lanes = st.pool.lanes_of_job(jid)
                why = f"job {jid} ended ({s.value})"
                if s not in NOT_UNREADY and all(st.pool.live[w].status == pool.STARTING
                                                for w in lanes):
                    recs.append(WorkerGone(workers=lanes, why=why, unready=True, job_id=jid,
                                           host=self.backend.node_of(jid)))
                else:
                    recs.append(WorkerGone(workers=lanes, why=why))
        hung = self._hung(live, states)
        recs += [r for r, _ in hung]
        if recs:
            self._record(*recs)
        if hung:  # journaled first: a result the job may still send is not this attempt's
            for r, _ in hung:  # and told, should it wake before the kill lands (Slurm's cancel
                # sends SIGCONT, then SIGTERM): it would checkpoint beside its retry
                self.exp.mark_superseded(r.trial, attempt_key(r.trial, r.segment, r.attempt),
                                         r.hung or "hung")
            self.backend.kill([jid for _, jid in hung])

    def _see_queue(self, live: list[TrialState], states: dict[str, JobState], now: float) -> None:
        """Why the scheduler keeps jobs pending, for ``status`` (queue.json, written when it
        changed); a job that will not start as submitted is said once, in the log."""
        waiting = sorted(j for j, s in states.items() if s == JobState.PENDING)
        pending = self.backend.pending(waiting) if waiting else {}
        seen = {j: p.reason for j, p in pending.items()}
        first = self._queue_before is None
        if first:  # an earlier master's file: its times go on, and it is rewritten once
            before = read_queue(self.exp)
            self._queue_before = {j.job: (j.reason, j.since) for j in before.jobs} if before else {}
        # jobs that pend for asking too long a limit but stayed (the limits could not be read,
        # or read as allowing them) are judged again now and then, their reason unchanged
        again = now >= self._too_long_at and any(p.too_long for p in pending.values())
        if seen == self._queue_seen and not again and not (first and self.exp.queue.exists()):
            return
        trials = job_trials(live)
        for jid in self._withdraw_too_long(pending, live, trials, again):
            del pending[jid], seen[jid]
        if again:
            self._too_long_at = now + TOO_LONG_AGAIN_S
        since = {}
        stuck: dict[str, list[str]] = {}  # reason -> jobs newly seen pending for it
        for jid, p in pending.items():
            again = self._queue_seen.get(jid) == p.reason
            earlier = (self._queue_before or {}).get(jid)
            since[jid] = (self._queue_since.get(jid, now) if again
                          else earlier[1] if earlier and earlier[0] == p.reason and earlier[1] <= now
                          else now)
            if not again and p.kind == STUCK:
                stuck.setdefault(p.reason, []).append(jid)
        for reason, jids in stuck.items():
            log.warning("%s: %s will not start as submitted: the scheduler keeps %s pending for "
                        "%s: %s", self.exp.root, jobs_text(jids, trials),
                        "it" if len(jids) == 1 else "them", reason,
                        for_jobs(pending[jids[0]].means, jids[0], jids))
        self._queue_seen, self._queue_since = seen, since
        self._queue = Queue(jobs=[QueuedJob(job=j, trials=trials.get(j, []), reason=p.reason,
                                            kind=p.kind, means=p.means, since=since[j])
                                  for j, p in sorted(pending.items())],
                            submissions_wait=self._queue.submissions_wait)
        write_queue(self.exp, self._queue)

    def _withdraw_too_long(self, pending: dict[str, Pending], live: list[TrialState],
                           trials: dict[str, list[int]], again: bool = False) -> list[str]:
        """Jobs that pend because they ask for more time than the cluster allows (its limits
        could not be read, or were lowered after the job was submitted) are cancelled while
        queued: a segment is planned again under the limits read anew (a retry that counts
        nothing), a pool worker is replaced by one that asks for no more. Returns their ids; a
        job whose limit fits what is read stays (stuck) and is judged again (``again``) every
        TOO_LONG_AGAIN_S."""
        new = [j for j, p in pending.items()
               if p.too_long and (again or self._queue_seen.get(j) != p.reason)]
        if not new:
            return []
        st = self.state
        assert st is not None
        self.backend.forget_limits()
        by_job = {str(t.job_id): t for t in live if t.worker is None}
        pool_jobs = set(st.pool.job_ids())
        recs: list[Record] = []
        said: dict[tuple[str, str], list[str]] = {}  # (cap, reason) -> jobs
        for jid in new:
            t = by_job.get(jid)
            lanes = st.pool.lanes_of_job(jid) if jid in pool_jobs else []
            if t is not None:
                asked = st.times.planned(t.id)[0]
                cap = self._time_cap(self.backend.rung_resources(self.cfg, self._level(t.target)))
            elif lanes:  # a pool worker's job, still queued: it takes the pool's limit
                asked = st.pool.workers[lanes[0]].limit_min
                cap = self._time_cap({})
            else:
                continue
            if asked is None or cap.minutes is None or asked <= cap.minutes:
                continue
            reason = pending[jid].reason
            why = f"it asked for {asked} min, more than {cap.text()} ({reason})"
            recs.append(self._withdrawn(jid, why))
            said.setdefault((cap.text(), reason), []).append(jid)
        out = [j for jobs in said.values() for j in jobs]
        if out:
            self.backend.cancel(out)
            self._record(*recs)
        for (cap_text, reason), jobs in said.items():
            self.progress(f"{jobs_text(jobs, trials)} asked for more time than {cap_text} and "
                          f"would pend for ever ({reason}): cancelled while queued; submitted "
                          f"again within the limit")
        return out

    def _withdrawn(self, jid: str, why: str) -> Record:
        """The record of a queued job this master cancels (``why``): a trial's segment is
        submitted again at once, counting nothing (the job never ran); a pool job's workers
        are gone."""
        st = self.state
        assert st is not None
        t = next((t for t in st.live() if t.worker is None and str(t.job_id) == jid), None)
        if t is not None:
            return JobDead(trial=t.id, segment=t.segment, attempt=t.attempt, job_id=jid,
                           state=JobState.CANCELLED.value, counts=False, withdrawn=why)
        return WorkerGone(workers=st.pool.lanes_of_job(jid), why=f"cancelled while queued: {why}")

    def _spec(self, t) -> SegmentSpec:
        cfg = self.cfg
        assert self.state is not None
        return SegmentSpec(exp_dir=str(self.exp.root), experiment=cfg.name, trial_id=t.id,
                           segment=t.segment, attempt=t.attempt, length=t.target,
                           hparams=t.hparams, entrypoint=cfg.entrypoint,
                           context_dir=cfg.config_dir, metric=cfg.searcher.metric,
                           length_unit=cfg.searcher.length_unit,
                           max_length=cfg.searcher.max_length,
                           until_exit=cfg.searcher.until_exit,
                           timeout_min=self.state.times.planned(t.id)[0],
                           resources=self._resources(
                               self.backend.rung_resources(cfg, self._level(t.target)), t.id),
                           continue_s=cfg.continue_wait, env=dict(cfg.environment_variables),
                           seed=trial_seed(cfg.experiment_seed, t.id),
                           heartbeat_s=min(10.0, cfg.hung_after_s / 4),
                           solo_beat_s=min(SOLO_BEAT_S, cfg.hung_after_s / 4))

    def _resources(self, resources: dict[str, Any], trial: int | None) -> dict[str, Any]:
        """``resources`` with the nodes the job should avoid (nodes.py) added to the
        configured ``exclude``."""
        return self.backend.excluding(self.cfg, resources, self._avoid(trial))

    def _avoid(self, trial: int | None) -> set[str]:
        """The nodes the next job of ``trial`` (None: a pool worker) should not run on."""
        if self.state is None or trial in self._anywhere:
            return set()
        return self.state.nodes.avoid(trial)

    def _no_node_left(self, e: SubmitError, trials: list[int | None]) -> bool:
        """After a refusal: whether it refused jobs only because of the nodes they were to
        avoid (then they go to any node from now on, and this is said)."""
        assert self.state is not None
        placed = [t for t in trials if self._avoid(t)]
        if not e.no_node or not placed:
            return False
        nodes = sorted(set().union(*(self._avoid(t) for t in placed)))
        self._anywhere.update(placed)
        self.progress(f"the scheduler has no node for a job that avoids {', '.join(nodes)} "
                      f"(none other left in its partition?): such jobs go to any node")
        return True

    def _level(self, target: int) -> int:
        """The rung level of a target length (timelimits.rung_levels)."""
        from .timelimits import rung_level, rung_levels

        if self._levels is None:
            assert self.state is not None
            self._levels = rung_levels(b.rung_lengths for b in self.state.searcher.brackets())
        return rung_level(self._levels, target)

    def _time_limit(self, t) -> dict[str, Any]:
        """The planned time limit of ``t``'s next attempt, as ``Intent`` fields ({} when the
        backend takes no time limits)."""
        limits = self.caps.time_limits
        if limits is None:
            return {}
        from .timelimits import plan_limit

        st = self.state
        assert st is not None
        level = self._level(t.target)
        cap = self._time_cap(self.backend.rung_resources(self.cfg, level))
        lim = plan_limit(st.times, limits, trial=t.id, target=t.target,
                         units=st.times.units_left(t.id, t.target, t.length), level=level,
                         max_time_min=cap.minutes, cap_source=cap.source)
        if lim.basis.endswith(cap.text()):
            self._say_cap(cap)
        return lim.record()

    def _time_cap(self, resources: dict[str, Any]) -> TimeCap:
        """The longest time limit jobs with these resources (a rung's partition, QOS and
        account over the slurm section's) may ask for."""
        s = self.caps.time_limits
        get = resources.get
        return self.backend.time_cap(get("partition") or getattr(s, "partition", None),
                                     get("qos") or getattr(s, "qos", None),
                                     get("account") or getattr(s, "account", None))

    def _say_cap(self, cap: TimeCap) -> None:
        """Say once per cap that jobs are held to it (segments longer are split)."""
        if ("segment", cap.source) not in self._caps_said:
            self._caps_said.add(("segment", cap.source))
            self.progress(f"time limits: jobs ask for at most {cap.minutes} min ({cap.source}); "
                          f"a longer segment stops there and continues from its checkpoint")

    def _carry_ended_early(self) -> None:
        """A promoted trial whose code ended its training on purpose (state.TrialState.
        ended_early) needs no job: the model is final, and its result is journaled again at the
        promoted length, which may promote it again."""
        st = self.state
        assert st is not None
        while True:
            carry = [st.trials[i] for i in st.todo
                     if st.trials[i].ended_early is not None and st.trials[i].status == QUEUED]
            if not carry:
                return
            self._record(*(Result(trial=t.id, segment=t.segment, attempt=t.attempt, host=None,
                                  job_id=None, status="completed", metrics=t.last_metrics,
                                  length=t.target, error=None, checkpoint=t.checkpoint,
                                  started=None, ended=None, stop_reason=None, ends_trial=True,
                                  reached=t.ended_early, carried=True) for t in carry))

    def _say_lost_checkpoints(self, trials: list[Any]) -> None:
        """Say so where a trial that trained goes on without its checkpoint (the folder was
        deleted or moved by hand, a scratch purge): its job starts from nothing."""
        for t in trials:
            if t.checkpoint is None or (t.id, t.segment) in self._lost_said \
                    or Path(t.checkpoint).exists() or latest_checkpoint(self.exp.checkpoints(t.id)):
                continue
            self._lost_said.add((t.id, t.segment))
            # named by where the folder is now (it may have been moved since the result)
            self.progress(f"trial {t.id}: its checkpoint {Path(t.checkpoint).name} is gone from "
                          f"{self.exp.checkpoints(t.id)} (deleted or moved?) and no other is "
                          f"left: it trains again from the start to length {t.target}; its "
                          f"results so far stand")

    def _set_aside_unjournaled(self, trials: list[Any]) -> None:
        """Before their intents: move aside what trials' folders hold from attempts that the
        journal does not know (the journal lost records: restored from an older copy), so that
        nothing of a search it forgot is taken for these attempts' own; said once, then
        logged per trial."""
        for t in trials:
            found = self.exp.unjournaled(t.id, t.segment, t.attempt)
            if not found:
                continue
            try:
                dest = self.exp.set_aside(found, self._started_at)
            except OSError as e:  # the attempt's job would fail on them: say what to do
                raise AshaError(f"{found[0]}: left by a run that {self.exp.journal.name} does "
                                f"not know, and it cannot be moved aside ({e.strerror}): move "
                                f"{self.exp.trial_dir(t.id)} away by hand and resume") from e
            what = ", ".join(p.name for p in found[:3]) + (", ..." if len(found) > 3 else "")
            line = (f"trial {t.id}: its folder holds files of attempts that "
                    f"{self.exp.journal.name} does not know ({what}; the journal was restored "
                    f"from an older copy, or cut short?): moved to {dest}, and the trial goes on "
                    f"from what the journal knows")
            if self._unjournaled_said:
                log.warning("%s", line)
            else:
                self.progress(line)
                self._unjournaled_said = True

    def _submit(self, fresh_only: bool = False) -> None:
        """Submit the next segments as a job each (with the pool on, ``fresh_only``: those
        that need a process of their own, TrialState.fresh)."""
        st = self.state
        assert st is not None
        todo = self._todo()
        if fresh_only:
            todo = [i for i in todo if st.trials[i].fresh]
        todo = todo[:self._jobs_room(len(todo))]
        if not todo:
            return
        trials = [st.trials[i] for i in todo]
        self._set_aside_unjournaled(trials)
        self._say_lost_checkpoints(trials)
        self._record(*(Intent(trial=t.id, segment=t.segment, attempt=t.attempt, length=t.target,
                              **self._time_limit(t)) for t in trials))
        specs = [self._spec(t) for t in trials]
        self._fence()  # a master frozen since the intents were written must not submit them
        try:
            ids = self.backend.submit(specs)
        except SubmitError as e:
            placed = self._no_node_left(e, [s.trial_id for s in specs])
            self._record(*(SubmitFailed(trial=s.trial_id, segment=s.segment, attempt=s.attempt,
                                        error=str(e), transient=e.transient or placed)
                           for s in specs))
            if placed:
                return
            if e.too_many:
                self._too_many(e, len(specs))
            else:
                self._refused(e)
            return
        self._went_through()
        self._record(*(Submitted(trial=s.trial_id, segment=s.segment, attempt=s.attempt, job_id=jid)
                       for s, jid in zip(specs, ids)))

    # ------------------------------------------------------------------ waiting jobs
    def _on_ready(self, msg: messages.Ready, recs: list[Record]) -> None:
        """A job waits on a slot: journal it (a known worker), or tell a stranger to leave."""
        assert self.state is not None
        w = self.state.pool.workers.get(msg.worker)
        if w is not None and w.status != pool.GONE:
            if w.status == pool.BUSY and msg.slot <= w.slot:
                return  # stale: an inbox file a stopped master had not removed yet
            recs.append(WorkerReady(worker=msg.worker, slot=msg.slot, job_started=msg.job_started,
                                    ready_at=msg.time, host=msg.host, handoff=msg.handoff))
        else:
            self.backend.hand_over(msg.worker, msg.slot, {"type": "exit", "why": "unknown to the master"})

    def _dismiss_if_gone(self, msg: messages.Result) -> None:
        """A result from a worker already journaled gone (released while a segment was on its
        way to it, e.g. by a master that took over) that now waits: tell it to leave, or it
        would hold its GPU until its idle timeout."""
        assert self.state is not None
        r = msg.ready
        w = self.state.pool.workers.get(r.worker) if r is not None else None
        if r is not None and w is not None and w.status == pool.GONE:
            self.backend.hand_over(w.id, r.slot, {"type": "exit", "why": "released"})

    def _segment_body(self, t) -> dict[str, Any]:
        spec = dataclasses_replace(self._spec(t), timeout_min=None, resources={}, continue_s=0.0)
        return {"type": "segment", "spec": dict(vars(spec))}  # flat: no deep copy, it goes to JSON

    def _estimate(self, t, w) -> float | None:
        """Seconds ``t``'s next segment should take in a warm job (no start-up); None where
        worker ``w`` has no time limit (nothing to fit, so nothing to estimate)."""
        st = self.state
        assert st is not None
        if w.deadline is None:
            return None
        r = st.times.rate(t.target, t.id)
        return None if r is None else r[0] * st.times.units_left(t.id, t.target, t.length)

    def _hand_over(self) -> None:
        """Give waiting jobs their next segment (pool.match decides which job gets which) and
        journal it before the job sees it. Jobs with nothing to do are released at once when no
        segment can come for them (pool.surplus): no GPU is held idle at the search's tail."""
        st = self.state
        assert st is not None
        idle = st.pool.idle()
        # the pool's jobs avoid excluded nodes, unless the scheduler had no other node for them
        avoid_all = self._avoid(None)
        broken = [w for w in idle if w.host in avoid_all]
        if broken:
            self._release_workers(broken, "its node was excluded (it failed the work sent to it)")
            idle = [w for w in idle if w not in broken]
        # a job of another release (it ran on through an upgrade) could not read the segment
        foreign = [w for w in idle if w.handoff != HANDOFF_VERSION]
        if foreign:
            fmt = foreign[0].handoff
            self._release_workers(foreign, "a job of another release of asha_hpc ("
                                  + ("an older one" if fmt is None else f"hand-off format {fmt}")
                                  + f"; this master's is {HANDOFF_VERSION}): it could not read "
                                  "the segments, new jobs run them")
            idle = [w for w in idle if w not in foreign]
        if not idle:
            return
        now = self.clock.time()
        # a job without a time limit (none planned, no default) takes any segment
        safety = self.caps.time_limits.time_safety_factor if self.caps.time_limits else 1.0
        warn = self.caps.stop_warning_s

        hosts = {w.host for w in st.pool.alive(pool.POOL)}  # None: not started yet
        avoided: set[str] = set()
        bad = set(st.nodes.bad)

        def fit(w: pool.Worker, trial: int) -> bool:
            # a retry waits for a pool job on another node than the one it last failed on,
            # where the pool has one (the job here stays for other segments)
            avoid = self._avoid(trial) - bad
            if w.host in avoid and hosts - avoid:
                avoided.add(w.id)
                return False
            return pool.fits(w, now, self._estimate(st.trials[trial], w), safety, warn)

        decided = pool.match(idle, self._pool_todo(), fit)
        stay = [w for w in decided.release if w.id in avoided and w.kind == pool.POOL]
        decided.release = [w for w in decided.release if w not in stay]
        decided.waiting += stay
        plan = [(w, st.trials[tid]) for w, tid in decided.plan]
        if plan:
            self._set_aside_unjournaled([t for _, t in plan])
            self._say_lost_checkpoints([t for _, t in plan])
            self._record(*(Intent(trial=t.id, segment=t.segment, attempt=t.attempt, length=t.target,
                                  worker=w.id, slot=w.slot, job_id=w.job_id) for w, t in plan))
            failed = []
            for w, t in plan:
                if not self.backend.hand_over(w.id, w.slot, self._segment_body(t)):
                    failed.append(SubmitFailed(trial=t.id, segment=t.segment, attempt=t.attempt,
                                               worker=w.id,
                                               error=f"worker {w.id} left before taking the segment"))
            if failed:
                self._record(*failed)
        self._release_workers(decided.release, "nothing for it to do")
        if decided.waiting:
            self._release_workers(self._surplus(decided.waiting), "no segment can come for it")

    def _surplus(self, spare: list) -> list:
        """Of the idle pool workers given nothing (``spare``), those no segment can come for
        (pool.surplus), after this step's hand-overs are journaled: segments still queued
        wait for a worker, and so do those of running segment jobs and of jobs that continue
        only their own trial when they end. Not those of jobs still queued: the scheduler may
        be holding them for the very GPUs these workers keep idle (a queue or a QOS limit that
        the workers fill; the local backend's max_parallel), and when they end the pool grows
        again."""
        st = self.state
        assert st is not None
        workers = st.pool.workers
        unfreed = sum(1 for t in st.live()
                      if t.status == RUNNING and (t.worker is None or t.worker not in workers
                                                  or workers[t.worker].kind != pool.POOL))
        busy = {w.job_id for w in st.pool.alive(pool.POOL)
                if w.status == pool.BUSY and w.job_id}
        waiting = sum(1 for i in st.todo if not st.trials[i].fresh)  # these run in a job of their own
        return pool.surplus(spare, waiting=waiting, unfreed=unfreed,
                                   more_work=not st.searcher_done, busy_jobs=busy)

    def _release_workers(self, workers, why: str) -> None:
        """Tell idle workers to exit and cancel those still queued; journal them gone. A
        starting worker also finds an exit in its first slot: one that is past the queue may
        miss the cancel (submitit's job process ignores SIGTERM while it starts up)."""
        if not workers:
            return
        assert self.journal is not None
        self.journal.sync()  # what made them idle is durable before they act on it
        queued = sorted({w.job_id for w in workers if w.status == pool.STARTING and w.job_id})
        for w in workers:
            if w.status in (pool.IDLE, pool.STARTING):
                self.backend.hand_over(w.id, w.slot, {"type": "exit", "why": why})
        if queued:
            self.backend.cancel(queued)
        gone = [w.id for w in workers if w.status in (pool.IDLE, pool.STARTING)]
        if gone:
            self._record(WorkerGone(workers=gone, why=why))

    def _waiting_workers(self) -> list:
        """Pool workers that wait for a segment or are on their way (not running one)."""
        assert self.state is not None
        return [w for w in self.state.pool.alive(pool.POOL)
                if w.status in (pool.IDLE, pool.STARTING)]

    def _warm_workers(self) -> bool:
        """Warm workers (the pool) for the next segments, or a job each: the configured
        number, or ``workers: auto``'s decision (autoworkers.py), journaled with its numbers
        when it changes. A job per segment releases the pool's workers that wait or start."""
        cfg, st = self.cfg, self.state
        assert st is not None
        if not cfg.workers_auto:
            return bool(cfg.pool_size)
        d = autoworkers.decide_for(cfg, st.auto, self._pool_caps())
        if d.mode != st.auto.mode or d.measured != st.auto.measured:
            self._record(d.record())
            self.progress(f"workers: auto: {d.line()}")
        if d.mode == autoworkers.POOL:
            return True
        self._release_workers(self._waiting_workers(), "workers: auto chose a job per segment")
        return False

    def _pool_caps(self) -> Capabilities:
        """The backend's capabilities, with a pool worker's time limit held to what the
        cluster allows."""
        caps = self.caps
        if caps.default_limit_min is None:
            return caps
        cap = self._time_cap({})
        if cap.minutes is None or cap.minutes >= caps.default_limit_min:
            return caps
        if ("pool", cap.source) not in self._caps_said:
            self._caps_said.add(("pool", cap.source))
            self.progress(f"workers: slurm.timeout_min {caps.default_limit_min} is more than "
                          f"{cap.text()}: pool workers ask for {cap.minutes} min")
        return dataclasses_replace(caps, default_limit_min=cap.minutes)

    def _worker_spec(self, worker: str) -> WorkerSpec:
        cfg = self.cfg
        return WorkerSpec(exp_dir=str(self.exp.root), experiment=cfg.name, worker=worker,
                          lanes=cfg.lanes_per_job, timeout_min=self._pool_caps().default_limit_min,
                          idle_timeout_s=cfg.worker_idle_timeout_s,
                          resources=self._resources({}, None), env=dict(cfg.environment_variables))

    def _grow_pool(self) -> None:
        """Keep enough pool workers for the segments waiting to be handed over, up to the
        pool's size: replaces workers that died or reached their time limit."""
        st = self.state
        assert st is not None
        alive = st.pool.alive(pool.POOL)
        coming = sum(1 for w in alive if w.status in (pool.STARTING, pool.IDLE))
        n = pool.to_start(len(self._pool_todo()), self.cfg.pool_size, len(alive), coming)
        lanes = self.cfg.lanes_per_job
        jobs = self._pool_room(-(-n // lanes))
        if jobs <= 0:
            return
        specs = [self._worker_spec(wid) for wid in pool.worker_ids(st.pool.started, jobs)]
        self._record(Workers(workers=[lid for s in specs for lid in s.lane_ids],
                             timeout_min=specs[0].timeout_min, started=st.pool.started + jobs))
        self._fence()
        try:
            ids = self.backend.submit(specs)
        except SubmitError as e:
            self._record(WorkerGone(workers=[lid for s in specs for lid in s.lane_ids],
                                    why=f"submission failed: {e}"))
            if not self._no_node_left(e, [None]):
                self._refused(e)
            return
        self._went_through()
        self._record(WorkersSubmitted(jobs={lid: jid for s, jid in zip(specs, ids) for lid in s.lane_ids}))

    def _live_jobs(self) -> int:
        """This search's jobs the scheduler holds (queued or running)."""
        st = self.state
        assert st is not None
        return len({t.job_id for t in st.live() if t.job_id} | set(st.pool.job_ids()))

    def _jobs_room(self, n: int) -> int:
        """How many of ``n`` segments may be submitted now: all of them, unless the scheduler
        refused more of this user's jobs at once (``SubmitError.too_many``). Then as many as
        keep this search's jobs at the most it took, and one more every JOBS_PROBE_S (the
        user's other jobs count too, and they end; and a job that just sent its result may
        still count for a moment, so the most it took may be short of the limit)."""
        if self._jobs_most is None:
            return n
        live = self._live_jobs()
        if self.clock.time() >= self._jobs_probe_at:
            self._jobs_most = max(self._jobs_most, live) + 1
            self._jobs_probe_at = self.clock.time() + JOBS_PROBE_S
        return max(0, min(n, self._jobs_most - live))

    def _too_many(self, e: SubmitError, n: int) -> None:
        """The scheduler took none of ``n`` jobs: the user has as many submitted as it may.
        Half of them go next, and with one refused none until one of this search's ends."""
        live = self._live_jobs()
        self._jobs_most = live + n // 2
        self._jobs_probe_at = self.clock.time() + JOBS_PROBE_S
        if not self._jobs_said:
            self._jobs_said = True
            self.progress(f"the scheduler takes no more of your jobs at once ({e}): this search "
                          f"submits fewer at a time, and the others as jobs end")

    def _went_through(self) -> None:
        self._submit_failures = 0
        self._submit_backoff, self._submit_after = 0.0, float("-inf")
        if self._submit_waiting_since is not None:
            waited = self.clock.time() - self._submit_waiting_since
            self._submit_waiting_since = None
            self._queue = dataclasses_replace(self._queue, submissions_wait=None)
            write_queue(self.exp, self._queue)
            self.progress(f"the scheduler takes jobs again: submissions go through (they waited "
                          f"{fmt_duration(waited)})")

    def _refused(self, e: SubmitError) -> None:
        """The backend refused a submission (segments or pool workers). A transient refusal (the
        scheduler cannot take jobs now: its controller is down or restarting) waits and tries
        again, less often the longer it lasts, while running jobs go on and their results are
        read; a third other refusal in a row aborts with the error, since nothing can run until
        its cause is fixed."""
        if e.transient:
            now = self.clock.time()
            self._submit_backoff = min(SUBMIT_BACKOFF_MAX_S,
                                       max(SUBMIT_BACKOFF_S, 2 * self._submit_backoff))
            self._submit_after = now + self._submit_backoff
            first = self._submit_waiting_since is None
            if self._submit_waiting_since is None:  # (a virtual clock may start at 0)
                self._submit_waiting_since = now
            self._queue = dataclasses_replace(self._queue, submissions_wait=SubmitWait(
                since=self._submit_waiting_since, error=str(e)))
            write_queue(self.exp, self._queue)
            if first:
                log.warning("%s: the scheduler cannot take jobs now (%s): submissions wait and "
                            "are tried again in %.0f s, then less often (at most every %.0f s); "
                            "running jobs go on", self.exp.root, e, self._submit_backoff,
                            SUBMIT_BACKOFF_MAX_S)
            return
        self._submit_failures += 1
        if self._submit_failures < 3:
            return
        self._record(Aborted(message=f"the {self.backend.name} backend refused 3 submissions "
                                     f"in a row; last error: {e}"))
        raise AshaError(f"{self.exp.root}: the {self.backend.name} backend refused 3 "
                        f"submissions in a row: {e}. Fix the cause (resume reads the job "
                        f"options from {shell_word(self.exp.root / 'experiment.yaml')}: edit "
                        f"them there), then `asha-hpc resume {shell_word(self.exp.root)} "
                        f"--retry-failed`") from None

    def _pool_todo(self) -> list[int]:
        """The segments the pool's workers may take: not those that need a fresh process."""
        st = self.state
        assert st is not None
        return [i for i in self._todo() if not st.trials[i].fresh]

    def _todo(self) -> list[int]:
        """Trials whose next attempt may start now. Until a segment has worked (since the start
        or ``--retry-failed``), at most ``probe_jobs`` attempts run at once: a bug that every
        trial shares costs that many jobs (fail fast, state.hopeless), not one per slot. While
        nothing has failed a free slot is filled at once (a worker that becomes ready a little
        after the others does not wait for the first segments to end). The first failures of
        SAME_ERROR_TRIALS different trials decide whether a bug is shared; after a first
        failure only as many attempts run as are still needed to decide, trials that have not
        failed before restarts of those that have, so a shared bug costs probe_jobs jobs
        whatever the order in which workers start and jobs fail."""
        st = self.state
        assert st is not None
        n = self.cfg.probe_jobs
        if not n or st.worked or self.caps.virtual_time or not st.todo:
            return st.todo
        live = len(st.live())
        todo, room = st.todo, n
        need = SAME_ERROR_TRIALS - len(st.first_errors)
        if st.first_errors and need > 0:
            failed = {tid for tid, _ in st.first_errors}
            todo = [tid for tid in todo if tid not in failed] or todo  # restarts when nothing else
            room = min(n, need)
        return todo[:max(room - live, 0)]

    def _fail_fast(self) -> bool:
        """Stop at the first failure every trial would repeat (state.hopeless), naming it and
        the job's log file."""
        st = self.state
        assert st is not None
        h = st.hopeless()
        if h is None:
            return False
        tid, why = h
        from ..protocol.journal import read_journal
        from ..views.observe import latest_logs

        job = latest_logs(self.exp, read_journal(self.exp.journal)[0], [tid]).get(tid) or {}
        log_file = job.get("err") or job.get("out")
        if log_file and BEFORE_CODE in why:  # no traceback of the trial's: what the job said
            log_file += last_line(Path(log_file))
        self.backend.cancel(sorted({t.job_id for t in st.live() if t.job_id} | set(st.pool.job_ids())))
        where = f"; log: {log_file}" if log_file else (self._no_log() if BEFORE_CODE in why else "")
        msg = (f"{why} (trial {tid}{where}). Fix it, then "
               f"`asha-hpc resume {shell_word(self.exp.root)} --retry-failed`")
        if BEFORE_CODE not in why:  # the fix may be the config's: resume refuses a new searcher
            msg += (f"; a fix in `command`, `entrypoint` or `environment_variables` goes into "
                    f"{shell_word(str(self.exp.config))}, the copy the search reads; one in the "
                    f"searcher or the hyperparameters needs a new experiment (`asha-hpc run "
                    f"CONFIG`)")
        # one line, printed once by whoever ran the master (cli._drive, the Slurm master job)
        self._record(Aborted(message=msg))
        return True

    def _pool_hopeless(self) -> bool:
        """Stop when the first ``pool.UNREADY_STREAK`` pool jobs all ended before their code
        ran and nothing ever worked: every next one would too (unless they all ended on one
        node while the search has seen others: its streak gets it excluded)."""
        st = self.state
        assert st is not None
        dead = st.unready_streak()
        if len(dead) < pool.UNREADY_STREAK or st.pool.ever_ready or st.segments_completed \
                or st.worked:
            return False
        hosts = {str(r["host"]) for r in dead if r.get("host")}
        if len(hosts) == 1 and st.nodes.elsewhere(hosts):
            return False
        self.backend.cancel(sorted({t.job_id for t in st.live() if t.job_id} | set(st.pool.job_ids())))
        where = f" on node {next(iter(hosts))}" if len(hosts) == 1 else (
            f" on nodes {', '.join(sorted(hosts))}" if hosts else "")
        msg = (f"the first {len(dead)} pool jobs all ended before their code ran{where} (the "
               f"last: {dead[-1]['why']}{self._job_log(dead[-1]) or self._no_log()}): the "
               "job's setup (slurm.setup), the Python environment or a mount is missing where "
               f"the jobs run. Fix it, then `asha-hpc resume {shell_word(self.exp.root)} --retry-failed`")
        self._record(Aborted(message=msg))
        return True

    def _no_log(self) -> str:
        """What a job on another node that ended before its code ran without a log in jobs/
        tells: Slurm could not open the log there, so the node does not see the folder as this
        one does ('' where jobs run here or on a virtual clock)."""
        if not self.caps.jobs_on_other_nodes:
            return ""
        fs = filesystem_type(self.exp.root)
        here = (f" ({shell_word(self.exp.root)} is on {fs} here, usually a disk of this "
                "machine alone)") if fs in NODE_LOCAL_FS else ""
        return (f"; it left no log in {self.exp.jobs}, so its node could not write there: the "
                f"experiment folder must be on a filesystem every compute node mounts{here}")

    def _job_log(self, rec: dict[str, Any]) -> str:
        """``; its log: FILE: LAST LINE`` for the job of a worker_gone record ('' without one)."""
        jid = rec.get("job_id")
        err = log_files(self.exp.jobs, str(jid))[1] if jid else None
        return "" if err is None else f"; its log: {err}{last_line(err)}"

    def _pool_room(self, jobs: int) -> int:
        """How many of ``jobs`` new pool jobs may go now: all of them, unless a streak of pool
        jobs that ended before their code ran holds them back; then one at a time, each
        waiting longer (said once per streak). The first pool job that starts ends it."""
        st = self.state
        assert st is not None
        dead = st.unready_streak()
        if len(dead) < pool.UNREADY_STREAK:
            return jobs
        wait = min(POOL_BACKOFF_S * 2 ** (len(dead) - pool.UNREADY_STREAK), POOL_BACKOFF_MAX_S)
        if self.clock.time() >= float(dead[-1].get("time", 0.0)) + wait:
            return min(jobs, 1)
        if self._pool_slow_said != dead[0].get("time"):
            self._pool_slow_said = dead[0].get("time")
            last = dead[-1]
            on = f" on node {last['host']}" if last.get("host") else ""
            self.progress(f"{len(dead)} pool jobs in a row ended before their code ran (the last: "
                          f"{last['why']}{on}{self._job_log(last)}): one new one goes at a time, "
                          f"at most every {POOL_BACKOFF_S:g} s, doubling up to "
                          f"{POOL_BACKOFF_MAX_S / 60:g} min, until one starts; look at that log, "
                          "`slurm.setup`, the environment and the mounts where they ran")
        return 0

    def _should_abort(self) -> bool:
        """Every trial failing and none ever completing a segment means broken code: stop
        early instead of burning max_trials x max_restarts jobs."""
        st = self.state
        assert st is not None
        if self._fail_fast() or self._pool_hopeless():
            return True
        c = st.counts()
        if c["failed"] < min(ABORT_AFTER_FAILED, self.cfg.searcher.max_trials):
            return False
        if st.segments_completed:
            return False
        last = next((t for t in reversed(list(st.trials.values())) if t.error), None)
        self._release_workers(self._waiting_workers(), "the search failed")
        self.backend.cancel(sorted({t.job_id for t in st.live() if t.job_id} | set(st.pool.job_ids())))
        # one line, as fail-fast's: a command's error can hold hundreds of lines of usage
        root = shell_word(self.exp.root)
        why = (f"; the last error, trial {last.id}'s: {error_summary(last.error)} (all of it: "
               f"`asha-hpc logs {root} {last.id} --err`)" if last is not None else "")
        msg = (f"{c['failed']} trial{'s' if c['failed'] != 1 else ''} failed and none completed "
               f"a segment{why}. Fix it, then `asha-hpc resume {root} --retry-failed`")
        self._record(Aborted(message=msg))
        self.progress(f"experiment failed: {msg}")
        return True

    def _cancel(self) -> None:
        st = self.state
        assert st is not None
        self._release_workers(self._waiting_workers(), "the search was cancelled")
        self.backend.cancel(sorted({t.job_id for t in st.live() if t.job_id} | set(st.pool.job_ids())))
        asked = cancel_asked_at(self.exp)
        self._record(Cancelled())
        try:
            self.exp.cancel_request.unlink()
        except FileNotFoundError:
            pass
        when = "" if asked is None else \
            f" (`asha-hpc cancel` at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(asked))})"
        self.progress(f"experiment cancelled{when}; running jobs were cancelled")

    def _pause(self) -> None:
        """``asha-hpc pause``: stop the running jobs (each saves where it is, as before a time
        limit; Backend.pause) and this master, without ending the search. Their results reach
        the inbox after it exits; ``resume`` takes them and goes on from the checkpoints,
        counting no failure. The GPUs are free once the jobs are gone."""
        st = self.state
        assert st is not None
        waiting = self._waiting_workers()
        self._release_workers(waiting, "the search was paused")
        jobs = sorted({t.job_id for t in st.live() if t.job_id} | set(st.pool.job_ids()))
        # queued for all we know (the scheduler's last answer, and nothing heard from the job):
        # it never ran, so it is withdrawn and its segment goes out again at resume, at once.
        # Backend.pause cancels only what is still queued when it acts: one that started
        # meanwhile is told to save, and its result, coming after all, is taken
        states = self.backend.states(jobs)
        heard = {str(t.job_id) for t in st.live() if st.status_of(t) != PENDING} | {
            str(w.job_id) for w in st.pool.live.values() if w.status != pool.STARTING}
        queued = [j for j in jobs if states.get(j) == JobState.PENDING and j not in heard]
        if queued:
            self._record(*[self._withdrawn(j, "the search was paused") for j in queued])
        running = [j for j in jobs if j not in queued]
        asked = self.backend.pause(jobs)
        # taken: `asha-hpc pause` now waits for this master to stop
        self.exp.pause_request.unlink(missing_ok=True)
        cancelled = self._await_saves(asked)
        done = Stopped(reason="paused", jobs=len(running), queued=len(queued),
                       workers=len(waiting), cancelled=cancelled or None)
        self._record(done)
        resume = self.resume_call or f"`asha-hpc resume {shell_word(self.exp.root)}`"
        self.progress(f"search paused: {paused_text(done)}; {resume} goes on from "
                      + ("their checkpoints" if running else "its trials' checkpoints"))

    def _await_saves(self, jobs: list[str]) -> list[str]:
        """Wait for paused jobs to save and leave, at most ``caps.stop_warning_s``; cancel those
        still there then (a command that never looks at its stop file), as Slurm ends a job
        at its time limit, and return them. A signal to this master stops the wait: they are
        told already."""
        if not jobs:
            return []
        grace = self.caps.stop_warning_s  # as long as before a time limit: a checkpoint's time
        self.progress(f"{len(jobs)} job{'s' if len(jobs) != 1 else ''} told to save and stop; "
                      f"waiting up to {grace:g} s for {'them' if len(jobs) != 1 else 'it'}")
        deadline = self.clock.time() + grace
        while jobs and self._stop_reason is None:
            states = self.backend.states(jobs)
            jobs = [j for j in jobs if not states.get(j, JobState.UNKNOWN).terminal]
            if not jobs or self.clock.time() >= deadline:
                break
            self._heartbeat()
            self.clock.sleep(min(self.cfg.poll_interval_s, 2.0))
        if jobs and self._stop_reason is None:
            self.backend.cancel(jobs)
            assert self.state is not None
            named = jobs_text(jobs, job_trials(self.state.live()))
            goes = "they go" if len(jobs) > 1 else "it goes"
            self.progress(f"{named} had not stopped {grace:g} s after the pause: cancelled; "
                          f"{goes} on from the last checkpoint (code that looks at trial.should_stop() or "
                          f"$ASHA_STOP_FILE saves where it is)")
            return jobs
        return []

    def _retain(self, force: bool = False) -> None:
        """Checkpoint retention for disk quotas: remove the checkpoints retention.py chooses
        (all but those of live trials, of paused trials that may still be promoted, of failed
        ones and of the best ``save_experiment_best`` trials) as the search goes, at most every
        RETAIN_EVERY_S. Files go first, the journal record after: a crash in between only
        leaves the removal to be redone."""
        now = time.time()
        if not force and now - self._last_retain < RETAIN_EVERY_S:
            return
        self._last_retain = now
        st = self.state
        assert st is not None
        chosen = removable_checkpoints(st, self.cfg.save_experiment_best,
                                       keep_every=self.cfg.save_trial_latest > 0)
        if chosen and self.journal is not None and self.journal.fence is not None:
            self._fence()  # a stale master removes no checkpoint the new one's trials need
        kept = remove_trees([self.exp.checkpoints(i) for i in chosen])
        gone = [i for i in chosen if self.exp.checkpoints(i) not in kept]
        for i in chosen:
            path = self.exp.checkpoints(i)
            if path in kept and i not in self._not_removed:
                self._not_removed.add(i)  # said once; tried again at every pass
                log.warning("%s: trial %d's checkpoints could not be removed (%s): they keep "
                            "their space until the folder can be written; the master tries "
                            "again as the search goes", path, i, kept[path])
        if gone:
            self._record(CheckpointsRemoved(trials=gone))

    def _finish(self) -> None:
        st = self.state
        assert st is not None
        best = st.ranked()
        # a search without lengths (Determined 0.38's single) may run scripts that report
        # nothing: it completed if they did
        if best or (self.cfg.searcher.until_exit and st.counts()["completed"]):
            self._record(Done(state="completed"))
        else:
            self._record(Done(state="failed", message="the search ended without a single reported metric"))
        self._show_progress(force=True)

    # ------------------------------------------------------------------ progress
    def _show_progress(self, force: bool = False) -> None:
        """The progress line every ``progress_every_s`` where it changed, and once a minute
        where it did not (the master is alive): a long wait in a notebook cell or a log is not
        a page of the same line."""
        now = time.time()
        if not force and now - self._progress_looked < self.progress_every_s:
            return
        self._progress_looked = now
        line = progress_line(self.state, self.clock.time())
        if not force and line == self._progress_said and now - self._last_progress < 60.0:
            return
        self._last_progress, self._progress_said = now, line
        self.progress(line)


def on_stop_signals(handler: Callable[[int, Any], None]) -> dict[int, Any]:
    """``handler`` for the signals that stop a master: SIGINT, SIGTERM, SIGUSR2 (Slurm's before
    a master job's time limit), and SIGHUP unless ignored (``nohup``). The previous handlers,
    to restore (none outside the main thread, where there are no signals)."""
    old: dict[int, Any] = {}
    hup = [signal.SIGHUP] if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN else []
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2, *hup):
        try:
            old[s] = signal.signal(s, handler)
        except ValueError:  # not the main thread: no signals
            break
    return old


def progress_line(st: ExperimentState | None, now: float) -> str:
    assert st is not None
    c = st.counts()
    brackets: dict[int, list[str]] = {}  # length:results per rung, one [...] per bracket
    for r in st.searcher.rungs():
        brackets.setdefault(r.bracket, []).append(f"{r.length}:{r.results}")
    rung = " ".join(f"[{' '.join(b)}]" for _, b in sorted(brackets.items()))
    best = st.ranked()
    metric = st.cfg.searcher.metric
    b = (f"best {metric}={best[0].metric:.6g} (trial {best[0].id}, length {best[0].length})"
         if best else "no result yet")
    return (f"trials {c['total']}/{st.cfg.searcher.max_trials if st.cfg.searcher.name != 'grid' else '?'} "
            f"| running {c['running']} pending {c['pending'] + c['queued']} paused {c['paused']} "
            f"done {c['completed'] + c['stopped']} failed {c['failed']}"
            + (f" invalid {c['invalid']}" if c["invalid"] else "") + f" | rungs {rung} | {b}")

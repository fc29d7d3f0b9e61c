"""The experiment's state as a pure function of its journal: ``state = replay(records)``.

The master builds a record, appends it to the journal, then applies it here; after a crash it
applies the same records again and arrives at the same state, searcher included (the searcher is
fed only from here, so it sees the same events in the same order). ``status``, ``best`` and
``export`` replay the journal read-only, with no master running.

Journal record kinds (``kind``; the enum ``records.Kind``, dispatched by ``HANDLERS``; each is
built by its constructor in records.py):
    init        the search starts (the searcher's first actions); ``seed`` and ``config_hash``
                pin the config: replay refuses an experiment.yaml that changed since
    intent      about to submit (trial, segment, attempt)     -- before the backend is called
                (``timeout_min``, ``split``, ``basis``, ``estimate_s``: its planned time limit)
    submitted   ... with this job id                          -- after it returned
    submit_failed  the backend refused (no job exists)
    started     the job's own "I am running" message
    result      the job's result message (completed / interrupted / invalid_hp / error;
                ``disk_full``: {path, quota}: an error of a full disk or quota, never counted;
                ``adopted``: a completed result of an earlier attempt whose retry had not
                started: applied, the retry dropped;
                ``started``/``ended`` times, ``gpus``: ids in its CUDA_VISIBLE_DEVICES, if set;
                ``job_started``: the job's start; ``reached``: the length its checkpoint holds)
    job_dead    the job ended without a result (killed, OOM, node failure, lost;
                ``disk_full``: while the disk was full, never counted)
                (a trial that fails for good has no record of its own: replay derives it from
                the result or job_dead that used up its restarts)
    checkpoints_removed  retention removed these trials' checkpoints (disk quota)
    workers     pool jobs about to be submitted (worker ids, time limit)  -- pool.py
    workers_submitted  ... with these job ids
    worker_ready  a waiting job announced the slot it waits on (a ``result`` with ``waiting``
                says the same for the job that sent it)
    worker_gone  workers that exited, died, or were told to exit (``unready``: their job ended
                before any of them was ready, on ``host``: evidence against that node)
    sampled     a configuration a model drew (searcher.sampler: tpe or gp): ``trial``, ``hparams``;
                replay hands these to the searcher before anything else, so it never re-fits
    workers_mode  ``workers: auto`` chose warm workers or a job per segment, with its numbers
                (autoworkers.py; optional: older journals have none)
                (an ``intent`` with ``worker``/``slot`` hands the segment to a waiting job)
    retry_failed  ``resume --retry-failed``: these failed trials go back into the search, and
                every trial gets a fresh restart allowance (the code was fixed)
    max_compute  ``resume --max-compute``: the cap on all training from here on (``units``;
                ``was``: the one before); a raised cap continues what the old one had ended
    nodes_readmitted  ``resume --readmit-node``: excluded nodes (``hosts``) take work again,
                judged afresh (nodes.py)
    stopped / resumed / cancelled / done / aborted   lifecycle of the master
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, cast

from ..backends import capabilities
from ..backends.base import JobState
from ..config import ExperimentConfig
from ..errors import AshaError
from ..protocol import signals
from ..protocol.checkpoints import DETERMINED_RESTORE_HINT, RESTORE_HINT
from ..protocol.expdir import attempt_key
from ..protocol.messages import COMMAND_STDERR
from ..protocol.metrics import metric_float
from ..protocol.records import Kind
from ..searcher import (
    CreateTrial,
    FinishTrial,
    ResumeTrial,
    SearchDone,
    SegmentCompleted,
    TrialFailed,
    TrialInvalid,
    TrialRetried,
    make_searcher,
)
from ..space import flat_hparams
from .autoworkers import AutoMeasure
from .nodes import Excluded, NodeHealth, out_of_memory
from .pool import Pool
from .timelimits import SegmentTimes

# Trial statuses
QUEUED = "queued"  # decided, waiting to be submitted
PENDING = "pending"  # submitted, not started
RUNNING = "running"
PAUSED = "paused"  # completed a rung, waiting for promotion (holds no resources)
COMPLETED = "completed"  # trained to the top rung
STOPPED = "stopped"  # ended early by the searcher (never promoted)
FAILED = "failed"
INVALID = "invalid"
CANCELLED = "cancelled"
LIVE = (QUEUED, PENDING, RUNNING)

MAX_INFRA_RETRIES = 20  # resubmissions that are not the trial's fault (lost, preempted, ...)
SAME_ERROR_TRIALS = 3  # first failures of this many trials, all alike and nothing worked: stop
# rejected trials (InvalidHP) while no segment worked, and ten times as many as the trials
# whose code accepted theirs: the code rejects whatever the search draws (a type or range the
# config gets wrong), and the search would go on creating trials for ever
ALL_INVALID_TRIALS = 50
LEFT_STATE_SEGMENTS = 3  # failed in a reused warm worker, passed in a fresh process: say why
# said once per search, by the master and in status's events
IGNORED_CHECKPOINT = ("trial {trial} had a checkpoint to go on from ({name}) and its code never "
                      "read trial.latest_checkpoint: promoted trials train from scratch. "
                      + RESTORE_HINT)
# a command's: its curve started again where its first run's did
IGNORED_BY_COMMAND = ("trial {trial} had a checkpoint to go on from ({name}) and its command "
                      "counted its steps from the start again: it never loaded the checkpoint "
                      "in ASHA_LATEST_CHECKPOINT, and promoted trials train from scratch. Pass "
                      "it to the command (--resume \"${{ASHA_LATEST_CHECKPOINT}}\") and load the "
                      "model, the optimizer and the epoch from it when it is not empty. "
                      + DETERMINED_RESTORE_HINT)

NO_CHECKPOINT = ("trial {trial} completed a segment short of max_length and has no checkpoint "
                 "(its code never called trial.save_checkpoint): promoted trials train again "
                 "from the start, unless a warm worker continues them in place. Save one at "
                 "each segment's end, and go on from trial.latest_checkpoint (README: Writing "
                 "a trial)")

LEFT_STATE = ("{n} segments failed in a warm worker's process that had run other trials and then "
              "passed in a fresh process: the code leaves state behind in its process (a library "
              "set up once per process, such as Hydra's initialize() without `with`, or "
              "Accelerate's AcceleratorState; a CUDA error), so each such segment runs twice. "
              "Undo that state before the function returns, or set workers: 0 (a job per segment)")


BEFORE_CODE = "its job ended before its code ran"  # a trial's error for such a job (fail-fast)


@dataclass
class TrialState:
    id: int
    bracket: int
    hparams: dict[str, Any]
    status: str = QUEUED
    segment: int = -1  # index of the current (or last) segment
    target: int = 0  # length the current segment trains to
    attempt: int = 0
    job_id: str | None = None
    submitted_at: float | None = None
    length: int = 0  # length reached (last completed segment)
    restarts: int = 0  # failures that count against max_restarts
    infra_retries: int = 0
    rung_metrics: dict[int, float] = field(default_factory=dict)  # length -> metric
    diverged: bool = False  # its metric came back NaN or infinite: the worst of its rung
    last_metrics: dict[str, Any] | None = None
    checkpoint: str | None = None
    error: str | None = None
    compute_s: float = 0.0  # wall seconds of all its segment attempts
    gpu_s: float | None = None  # GPU-seconds, where results said how many GPUs (``gpus``)
    host: str | None = None
    worker: str | None = None  # the waiting job its current attempt was handed to
    slot: int = 0  # ... in this slot of that job
    code_ran: bool = False  # its current attempt's job reached the attempt's code
    # the length at which its code ended its training on purpose after reporting (a library's
    # own early stopping): the model is final, and each promotion carries its result up
    ended_early: int | None = None
    gave_up: bool = False  # its code ended it (early stopping, no result): a retry ends alike
    last_failed: bool = False  # its last attempt failed (counted against max_restarts)
    restore_error: str | None = None  # the error its last attempt from a checkpoint failed with
    # its last attempt failed in a warm worker's process that had run other calls: the next
    # runs in a job of its own, a fresh process, to tell the code's error from the process's
    fresh: bool = False
    # when the master heard that its current attempt started (the journal's clock): a job that
    # dies without a result has no times of its own, and its run time still counts
    attempt_started: float | None = None
    intent_seq: int = 0  # the journal position of its current attempt's intent
    # wall-clock span of its segments' code (results' own times): export's started / ended
    first_started: float | None = None
    last_ended: float | None = None

    @property
    def key(self) -> str:
        return attempt_key(self.id, self.segment, self.attempt)

    @property
    def trained(self) -> int:
        """How far its model trained: its length, or where its code ended its training."""
        return self.length if self.ended_early is None else min(self.length, self.ended_early)

    @property
    def metric(self) -> float | None:
        """The metric at the longest length reached, or None."""
        if not self.rung_metrics:
            return None
        return self.rung_metrics[max(self.rung_metrics)]


def spent(rec: dict[str, Any]) -> tuple[float | None, float | None]:
    """A result record's job-seconds (started to ended) and GPU-seconds (where it says how
    many GPUs the job had); None where it does not say."""
    started, ended = rec.get("started"), rec.get("ended")
    if not isinstance(started, (int, float)) or not isinstance(ended, (int, float)):
        return None, None
    job_s = max(0.0, ended - started)
    gpus = rec.get("gpus")
    return job_s, (gpus * job_s if isinstance(gpus, int) and not isinstance(gpus, bool) else None)


class ExperimentState:
    """Everything the master knows, rebuilt from journal records by ``apply``."""

    def __init__(self, cfg: ExperimentConfig) -> None:
        self.cfg = cfg
        self.searcher = make_searcher(cfg.searcher, cfg.space(), cfg.experiment_seed)
        self.trials: dict[int, TrialState] = {}
        self.todo: list[int] = []  # trials whose next attempt must be submitted, in order
        self.lifecycle = "new"  # new | running | stopped | completed | cancelled | failed
        self.stopped_by: str | None = None  # while stopped: "paused", or the master's signal
        self.searcher_done = False
        self.model_drawn: set[int] = set()  # trials whose configuration a model drew (sampled)
        self.warm: dict[str, Any] | None = None  # searcher.warm_start: sources and counts
        # the cap on all training: the config's until a max_compute record (resume --max-compute)
        self.max_compute: int | None = cfg.searcher.max_compute
        self.checkpoints_removed: set[int] = set()  # trials whose checkpoints retention removed
        self.seq = 0
        self.events: list[tuple[float, str]] = []  # (time, text) of notable events, recent last
        self.message: str | None = None  # why the experiment failed / was aborted
        self.results_applied = 0
        self.segments_completed = 0
        self._counts: Counter = Counter()
        self.never_started = 0  # trials created, never given a job, dropped by a cancel
        self._live: dict[int, TrialState] = {}
        self.times = SegmentTimes()  # asked time limits and measured run times (timelimits.py)
        self.pool = Pool()  # jobs that wait for their next segment (pool.py)
        # fail fast: a failure every trial will repeat (the job said so), or the first failures
        # of SAME_ERROR_TRIALS trials all alike, before any segment worked since the start or
        # the last --retry-failed. (trial, error) lists; see ``hopeless``
        self.worked = 0  # segments completed since the start or the last retry_failed
        self.retried_at = 0  # the journal position of the last retry_failed (0: none)
        self.fatal: tuple[int, str] | None = None
        self.first_errors: list[tuple[int, str]] = []
        self.early_hosts: dict[str, set[str]] = {}  # error signature -> nodes it came from
        # the same after the first segments worked, for the code that continues from a
        # checkpoint: the first errors of attempts that started from one, until one succeeds
        self.restores_worked = 0
        self.rules = 0  # those of the journal's Init record (RULES)
        self.passed_fresh = 0  # segments that failed in a reused warm worker, passed in a fresh one
        # said once: the first result whose code never read the checkpoint it could go on
        # from, or that left its trial with none (IGNORED_CHECKPOINT, NO_CHECKPOINT)
        self.checkpoint_advice: str | None = None
        self.damaged: str | None = None  # replay(salvage=True): why it stopped short
        self.restore_errors: list[tuple[int, str]] = []
        self.caps = capabilities(cfg)  # what its backend does (no backend needed to replay)
        self.auto = AutoMeasure(count_queue=self.caps.queue_waits)  # workers: auto's numbers
        self.nodes = NodeHealth()  # nodes that fail the work sent to them (nodes.py)

    # ------------------------------------------------------------------ queries
    def _set_status(self, t: TrialState, status: str) -> None:
        """The only place a trial's status changes: keeps counts and the live set O(1)."""
        if t.status == status:
            return
        self._counts[t.status] -= 1
        self._live.pop(t.id, None)
        t.status = status
        self._counts[status] += 1
        if status in (PENDING, RUNNING):
            self._live[t.id] = t

    def live(self) -> list[TrialState]:
        """Trials with a submitted job (pending or running), in submission order."""
        return list(self._live.values())

    def unready_streak(self) -> list[dict[str, Any]]:
        """Pool jobs that ended before their code ran since one was last ready (their
        worker_gone records), but for those on nodes excluded since: these say nothing more
        about the jobs to come."""
        return [r for r in self.pool.unready if r.get("host") not in self.nodes.bad]

    def awaiting(self, trial: int, segment: int, attempt: int) -> bool:
        """True if a message for this attempt is the one the trial is waiting for."""
        t = self.trials.get(trial)
        return (t is not None and t.status in (PENDING, RUNNING) and t.segment == segment
                and t.attempt == attempt)

    def may_create_trials(self) -> bool:
        """True while the searcher may still create trials (invalid ones are replaced)."""
        cap = sum(b.max_trials for b in self.searcher.brackets())
        return len(self.trials) - self._counts.get(INVALID, 0) < cap

    def counts(self) -> dict[str, int]:
        c = {k: self._counts.get(k, 0) for k in ("queued", "pending", "running", "paused",
                                                  "completed", "stopped", "failed", "invalid",
                                                  "cancelled")}
        c["total"] = len(self.trials) - c["invalid"]
        c["interrupted"] = 0
        if self.lifecycle == "failed":  # its jobs were cancelled: nothing runs or waits now
            errored = sum(1 for t in self.trials.values()  # as status_of shows them
                          if t.status in LIVE and t.last_failed)
            c["failed"] += errored
            c["interrupted"] = c["queued"] + c["pending"] + c["running"] - errored
            c["queued"] = c["pending"] = c["running"] = 0
        return c

    def status_of(self, t: TrialState) -> str:
        """A trial's status as shown: a live trial of a failed experiment is 'interrupted'
        (``resume --retry-failed`` continues it), or 'failed' where its last attempt failed
        (fail-fast stopped the search while it waited for its retry)."""
        if self.lifecycle == "failed" and t.status in LIVE:
            return "failed" if t.last_failed else "interrupted"
        return t.status

    def sampled_by(self, trial_id: int) -> str | None:
        """Where a trial's configuration came from: ``given`` (searcher.points_to_evaluate),
        ``model`` (tpe, gp: a ``sampled`` record) or ``random``; None when every trial is
        random (sampler: random, no points)."""
        s = self.cfg.searcher
        given = len(s.points_to_evaluate)
        if s.sampler == "random" and not given:
            return None
        return "given" if trial_id <= given else "model" if trial_id in self.model_drawn \
            else "random"

    def ranked(self) -> list[TrialState]:
        """Trials with a metric, best first: longest length reached first (a trial that went
        further beat its rivals to get there), then by metric."""
        sign = 1.0 if self.cfg.searcher.smaller_is_better else -1.0
        have = [t for t in self.trials.values() if t.metric is not None and math.isfinite(t.metric)]
        return sorted(have, key=lambda t: (-t.length, sign * cast(float, t.metric), t.id))

    def _few_at_once(self) -> bool:
        """Fewer trials can train at once than fail-fast compares (max_concurrent_trials 1 or
        2), in a search that will have that many."""
        b = self.searcher.brackets()
        return (sum(min(x.max_concurrent_trials, x.max_trials) for x in b) < SAME_ERROR_TRIALS
                <= sum(x.max_trials for x in b))

    def hopeless(self) -> tuple[int, str] | None:
        """(trial, why) when the search should stop now because every trial would fail the
        same way, else None."""
        if self.fatal is not None:
            return self.fatal
        # a segment worked since (while the search waited for a second node): not the first
        alike = None if self.worked else self._alike(self.first_errors, self._twice_each())
        if alike is not None:
            tid, ids, where, error = alike
            n = len(self.first_errors)
            first = (f"the first {n} trials ({ids})" if n == SAME_ERROR_TRIALS else
                     f"the search's {'only trial' if n == 1 else f'{n} trials'} ({ids}), "
                     f"twice each,")
            return tid, (f"{first} all failed with the same error before any segment "
                         f"succeeded{where}: {error}")
        # the code that continues from a checkpoint is broken (its first segments worked)
        alike = None if self.restores_worked else self._alike(self.restore_errors)
        if alike is not None:
            tid, ids, where, error = alike
            return tid, (f"the first {SAME_ERROR_TRIALS} trials that continued from a checkpoint ({ids}) "
                         f"all failed with the same error, and none continued from one "
                         f"successfully{where}: {error.rstrip('.')}. The code that restores a checkpoint "
                         f"fails")
        return None if self.worked else self._all_invalid()

    def _all_invalid(self) -> tuple[int, str] | None:
        """The code rejects (``InvalidHP``) whatever the search draws: ALL_INVALID_TRIALS."""
        invalid = [t for t in self.trials.values() if t.status == INVALID]
        accepted = sum(1 for t in self.trials.values() if t.status != INVALID and t.code_ran)
        if len(invalid) < max(ALL_INVALID_TRIALS, 10 * accepted):
            return None
        last = max(invalid, key=lambda t: t.id)
        return last.id, (f"{len(invalid)} trials raised InvalidHP and no segment of any trial "
                         f"succeeded: the code rejects the configurations the search draws (the "
                         f"last: {error_summary(last.error or 'InvalidHP')}). Check the "
                         f"hyperparameters' types and ranges in the config against what the code "
                         f"accepts (an integer the library needs, declared double; a range past "
                         f"the library's limits)")

    def _twice_each(self) -> int | None:
        """A search of fewer trials than fail-fast compares (max_trials 1 or 2): how many it
        has, each to fail twice alike (once could be the machine's); None otherwise."""
        planned = sum(x.max_trials for x in self.searcher.brackets())
        return planned if planned < SAME_ERROR_TRIALS else None

    def _alike(self, errs: list[tuple[int, str]],
               twice_each: int | None = None) -> tuple[int, str, str, str] | None:
        """(the trial whose error is shown, the trials' ids, " (all on node N)" or "", the
        error) when the first failures ``errs`` of SAME_ERROR_TRIALS trials are all the same
        error. The error is the first trial's, as it wrote it: the line names that trial and
        its log, whose paths the error quotes."""
        if len(errs) < (twice_each or SAME_ERROR_TRIALS) or len({e for _, e in errs}) != 1:
            return None
        if twice_each is not None and not all(
                self.trials[t].restarts >= 2 and self.trials[t].error is not None
                and error_signature(self.trials[t].error or "", self.trials[t].hparams) == e
                for t, e in errs):
            return None
        # the node's fault or the code's? While the search has seen other nodes, it waits
        # until one of these trials failed on a second node: their retries go elsewhere
        # (nodes.py) and tell, where a broken node would fail them all alike
        hosts = self.early_hosts.get(errs[0][1], set())
        if self.nodes.elsewhere(hosts) and not self.nodes.failed_twice({t for t, _ in errs}):
            return None
        where = f" (all on node {next(iter(hosts))})" if len(hosts) == 1 else ""
        # shown as the first trial wrote it (its clock time, addresses), where it still holds it
        first = self.trials.get(errs[0][0])
        shown = error_summary(first.error) if first is not None and first.error and \
            error_signature(first.error, first.hparams) == errs[0][1] else errs[0][1]
        return errs[0][0], ", ".join(str(t) for t, _ in errs), where, shown

    # ------------------------------------------------------------------ apply
    def apply(self, rec: dict[str, Any]) -> None:
        self.seq = rec.get("seq", self.seq)
        kind = rec["kind"]
        handler = self.HANDLERS.get(kind)
        if handler is None:
            raise AshaError(f"journal record {rec.get('seq')}: kind {kind!r} is unknown to this "
                            f"release of asha-hpc (written by a newer one?); upgrade to resume")
        handler(self, rec)

    def _note(self, rec: dict[str, Any], text: str) -> None:
        self.events.append((rec.get("time", 0.0), text))
        if len(self.events) > 200:
            del self.events[:100]

    def _actions(self, actions) -> None:
        for a in actions:
            if isinstance(a, CreateTrial):
                t = TrialState(id=a.trial_id, bracket=a.bracket, hparams=a.hparams)
                self.trials[a.trial_id] = t
                self._counts[t.status] += 1
                self._next_segment(t, a.length)
            elif isinstance(a, ResumeTrial):
                self._next_segment(self.trials[a.trial_id], a.length)
            elif isinstance(a, FinishTrial):
                t = self.trials[a.trial_id]
                if t.status not in (FAILED, INVALID, CANCELLED):
                    self._set_status(t, COMPLETED if a.reason == "top" else STOPPED)
            elif isinstance(a, SearchDone):
                self.searcher_done = True
                for t in self.trials.values():  # never promoted: ended early by the search
                    if t.status == PAUSED:
                        self._set_status(t, STOPPED)

    def _next_segment(self, t: TrialState, length: int) -> None:
        t.segment += 1
        t.attempt = 0
        t.target = length
        t.job_id = None
        self._set_status(t, QUEUED)
        self.todo.append(t.id)

    def _retry(self, t: TrialState, rec: dict[str, Any], counts: bool, why: str,
               free: bool = False, note: bool = True) -> None:
        """The attempt ended without completing its segment: try again from the latest
        checkpoint, or give the trial up. ``free``: no retry is counted at all (a segment
        split at the longest time limit allowed that stopped where planned, after progress; a full
        disk or quota, a fault of the machine)."""
        t.job_id = None
        t.last_failed = counts and not free
        if counts and not free:
            t.restarts += 1
        elif not free:
            t.infra_retries += 1
        t.error = why
        if t.restarts > self.cfg.max_restarts or t.infra_retries > MAX_INFRA_RETRIES:
            n = t.restarts if t.restarts > self.cfg.max_restarts else t.infra_retries
            counted = (f"failed attempt{'s' if n != 1 else ''} (max_restarts "
                       f"{self.cfg.max_restarts})" if t.restarts > self.cfg.max_restarts else
                       f"attempts lost to the cluster, none counted (at most {MAX_INFRA_RETRIES})")
            self._give_up(t, rec, f"trial {t.id} failed for good after {n} {counted}: "
                                  f"{error_summary(why)}")
            return
        if counts and not free and t.restarts >= 2 and not self.worked and self._few_at_once() \
                and all(o.restarts for o in self.trials.values() if o.status in LIVE and o is not t):
            # fail-fast compares the first failures of SAME_ERROR_TRIALS trials, and no new
            # trial starts while this one holds its slot: it makes way after its second failure
            # (unless a trial that has not failed yet still runs: its result tells first)
            self._give_up(t, rec, f"trial {t.id} failed twice before any segment of the search "
                                  f"worked: given up, so that another trial shows whether every "
                                  f"trial fails so: {error_summary(why)}")
            return
        if note:
            self._note(rec, f"trial {t.id} retried ({why.splitlines()[0][:80] if why else 'no reason'})")
        t.attempt += 1
        self._set_status(t, QUEUED)
        self.todo.append(t.id)

    def _give_up(self, t: TrialState, rec: dict[str, Any], note: str) -> None:
        """The trial fails for good: the searcher goes on without it."""
        self._note(rec, note)
        self._set_status(t, FAILED)
        self._actions(self.searcher.on_event(TrialFailed(t.id)))

    def _on_init(self, rec: dict[str, Any]) -> None:
        pinned = {"seed": rec.get("seed"), "config_hash": rec.get("config_hash")}
        now = {"seed": self.cfg.experiment_seed, "config_hash": config_hash(self.cfg)}
        changed = [k for k in pinned if pinned[k] is not None and pinned[k] != now[k]]
        if changed:  # trials would be replayed (and exported) with hyperparameters never trained
            if "seed" in changed:
                what = f"seed {pinned['seed']} in the journal, {now['seed']} now"
            elif isinstance(rec.get("pinned"), dict):
                what = describe_changes(rec["pinned"], config_pin(self.cfg))
            else:  # a journal of an earlier release keeps the hash only
                what = "searcher or hyperparameters changed"
            where = self.cfg.source or "experiment.yaml"
            raise AshaError(
                f"{where} no longer matches the config this experiment started with ({what}); "
                f"restore the original, or start a new experiment with `asha-hpc run` (a "
                f"search's trials mean what its searcher and hyperparameters said)")
        self.rules = int(rec.get("rules") or 0)
        self.lifecycle = "running"
        self._actions(self.searcher.start())

    def _on_resumed(self, rec: dict[str, Any]) -> None:
        self.lifecycle = "running"
        self.stopped_by = None
        self.auto.on_resumed(rec)

    def _on_stopped(self, rec: dict[str, Any]) -> None:
        self.lifecycle = "stopped"
        self.stopped_by = rec.get("reason")

    def _on_intent(self, rec: dict[str, Any]) -> None:
        t = self.trials[rec["trial"]]
        t.attempt = rec["attempt"]
        t.intent_seq = self.seq
        t.submitted_at = rec.get("time")
        if t.id in self.todo:
            self.todo.remove(t.id)
        self._set_status(t, PENDING)
        t.job_id = rec.get("job_id")  # set at once when handed to a waiting job
        t.worker, t.slot = rec.get("worker"), int(rec.get("slot", 0))
        t.code_ran = t.worker is not None
        t.attempt_started = None
        if t.worker is not None:  # a job that waits takes it within milliseconds: it runs
            self.pool.on_assigned(rec)  # (the job sends no ``started`` for a hand-over)
            self._set_status(t, RUNNING)
            t.attempt_started = rec.get("time")
            w = self.pool.workers.get(t.worker)
            t.host = w.host if w is not None else None
        self.times.on_intent(t.id, t.target, rec)
        self.auto.on_intent(rec)

    def _on_submitted(self, rec: dict[str, Any]) -> None:
        t = self.trials[rec["trial"]]
        if t.segment == rec["segment"] and t.attempt == rec["attempt"]:
            t.job_id = rec["job_id"]

    def _on_submit_failed(self, rec: dict[str, Any]) -> None:
        t = self.trials[rec["trial"]]
        if rec.get("worker"):  # the waiting job had left: it takes no more
            self.pool.on_gone({"workers": [rec["worker"]]})
        # a submission the scheduler could not take now: said once by the master and shown
        # by status while it lasts, not once per trial and try in the events
        waits = bool(rec.get("transient"))
        self._retry(t, rec, counts=False, free=waits, note=not waits,
                    why=f"submission failed: {rec.get('error')}")

    def _on_started(self, rec: dict[str, Any]) -> None:
        t = self.trials[rec["trial"]]
        if self.awaiting(t.id, rec["segment"], rec["attempt"]):
            self._set_status(t, RUNNING)
            t.host = rec.get("host")
            self.nodes.saw(t.host)
            t.code_ran = t.code_ran or not rec.get("by_scheduler")
            if t.attempt_started is None and isinstance(rec.get("time"), (int, float)):
                t.attempt_started = rec["time"]

    def _on_result(self, rec: dict[str, Any]) -> None:
        t = self.trials[rec["trial"]]
        self.results_applied += 1
        carried = bool(rec.get("carried"))  # no job: an ended-early trial's result, promoted
        if carried and t.id in self.todo:
            self.todo.remove(t.id)
        if not carried:
            self.auto.on_result(rec)
        if rec.get("adopted"):  # an earlier attempt's job finished after all: its result stands
            if t.id in self.todo:  # and the retry nobody took yet is dropped
                self.todo.remove(t.id)
            self._set_status(t, RUNNING)
        if rec.get("worker"):
            self.pool.on_result(rec, t.job_id, self._job_limit(t))
        t.attempt_started = None
        job_s, gpu_s = spent(rec)
        if job_s is not None:
            started, ended = rec["started"], rec["ended"]
            t.compute_s += job_s
            t.first_started = started if t.first_started is None else min(t.first_started, started)
            t.last_ended = ended if t.last_ended is None else max(t.last_ended, ended)
            if gpu_s is not None:
                t.gpu_s = (t.gpu_s or 0.0) + gpu_s
        progressed = rec["status"] == "interrupted" and self.times.made_progress(t.id, rec)
        planned_split = progressed and self.times.planned(t.id)[1]
        if not carried:
            self.times.on_result(t.id, t.target, rec)
        if rec.get("checkpoint"):
            t.checkpoint = rec["checkpoint"]
        status = rec["status"]
        repeated = False  # its restore failed as the one before did (below)
        # an attempt started before ``resume --retry-failed`` ran the code as it was before
        # the fix: its failure tells nothing about the fixed code (fail-fast starts over)
        before_fix = status == "error" and t.intent_seq < self.retried_at
        # an error in a warm worker's process that had run other calls (fatal ones aside): the
        # process's or the code's? Not counted; a fresh process tells. Once the trial failed
        # in a fresh process too, its failures count wherever they happen (a trial that always
        # fails uses its restarts, not twice as many)
        reused = status == "error" and bool(rec.get("reused")) and not rec.get("fatal") \
            and not rec.get("ends_trial") and not rec.get("disk_full") and not before_fix \
            and t.restarts == 0
        if status == "completed" and t.fresh:
            self._passed_fresh(rec)
        if status == "completed" and self.checkpoint_advice is None and (
                rec.get("ignored_checkpoint") or rec.get("no_checkpoint")):
            if rec.get("no_checkpoint"):
                said = NO_CHECKPOINT
            else:
                said = IGNORED_BY_COMMAND if isinstance(self.cfg.entrypoint, list) else IGNORED_CHECKPOINT
            self.checkpoint_advice = said.format(
                trial=t.id, name=PurePath(rec.get("ignored_checkpoint") or "").name)
            self._note(rec, self.checkpoint_advice)
        t.fresh = False
        if status == "error" and not self.worked and not before_fix and not reused:
            self._early_error(t, rec)
        if rec.get("restored") and status == "error" and not self.restores_worked \
                and not rec.get("ends_trial") and not rec.get("disk_full") and not before_fix:
            # the same error twice in a trial: a restore that a retry repeats (an out-of-memory
            # kill, a node's fault, is not the code's, and a retry gets past it)
            sig = error_signature(rec.get("error") or "error", t.hparams)
            # the same error twice in the trial; or once, an error every trial would repeat
            # (it is not retried: the trial is given up below)
            repeated = t.restore_error == sig
            if repeated or rec.get("fatal"):
                self._early_error(t, rec, self.restore_errors)
            t.restore_error = sig
        if status == "completed":
            self.worked += not carried
            self.restores_worked += bool(rec.get("restored"))
            if rec.get("ends_trial") and t.ended_early is None:
                t.ended_early = int(rec.get("reached") or t.target)
                self._note(rec, f"trial {t.id} ended its training at {t.ended_early} "
                                f"({error_summary(rec.get('error')) or 'TrainingEndedEarly'}): the "
                                f"model is final, its result stands at {t.target} and at any "
                                f"length it is promoted to, without training")
            metrics = rec.get("metrics") or {}
            value = metric_float(metrics.get(self.cfg.searcher.metric))
            t.length = t.target
            t.rung_metrics[t.target] = value
            t.diverged = not math.isfinite(value)
            if t.diverged:  # NaN is the searcher's worst: -inf must not be its best
                self._note(rec, f"trial {t.id} diverged: {self.cfg.searcher.metric}={value} at "
                                f"length {t.target} (ranked last, never promoted)")
                value = math.nan
            self.segments_completed += 1
            t.last_metrics = metrics
            t.last_failed = False
            self._set_status(t, PAUSED)
            t.job_id = None
            t.error = None
            for ex in self.nodes.succeeded(rec.get("host") or t.host, t.id):
                self._exclude(ex, rec)
            self._actions(self.searcher.on_event(SegmentCompleted(t.id, t.target, value,
                                                                  trained=not carried)))
        elif status == "interrupted":
            # one that got further (a newer checkpoint) counts nothing: a trial preempted again
            # and again on a preemptible partition still finishes, however many times it takes
            stop = signals.cause(rec.get("stop_reason"))
            why = (f"split at the longest time limit allowed ({stop}); continues" if planned_split
                   else f"interrupted ({stop}); continues from its checkpoint" if progressed
                   else f"interrupted ({stop})")
            self._retry(t, rec, counts=False, why=why, free=progressed)
        elif status == "invalid_hp":
            self._set_status(t, INVALID)
            t.error = rec.get("error")
            t.job_id = None
            self._note(rec, f"trial {t.id} rejected its hyperparameters: {error_summary(t.error)}")
            self._actions(self.searcher.on_event(TrialInvalid(t.id)))
        elif before_fix:
            self._retry(t, rec, counts=False, free=True,
                        why=f"failed with the code before --retry-failed: "
                            f"{error_summary(rec.get('error'))}; trains again")
        elif rec.get("disk_full"):
            self._retry(t, rec, counts=False, free=True,
                        why=f"the disk is full: {error_summary(rec.get('error'))}")
        elif reused:
            # a peer rank's death (failed_node) is the machine's or a kill's, not state the
            # code left in its process: a fresh process passing after it tells nothing
            t.fresh = not rec.get("failed_node")
            self._retry(t, rec, counts=False,
                        why=f"{error_summary(rec.get('error'))} (in a warm worker that had "
                            f"run other trials: retried in a fresh process, not counted)")
        elif rec.get("ends_trial") or (rec.get("fatal") and self.worked):
            # its code ended it (early stopping): it would again. Or an error every trial would
            # repeat, said by a job after other segments worked: this trial's alone, and its own
            t.job_id = None
            t.error = rec.get("error") or "error"
            # (the code's own wrong use is a failure to fix: --retry-failed, once fixed)
            t.gave_up = bool(rec.get("ends_trial"))
            self._give_up(t, rec, f"trial {t.id} failed, not retried: {error_summary(t.error)}")
        else:
            self._failed(t, rec, _node_to_blame(rec, t), rec.get("error") or "error",
                         restore_repeated=repeated)

    def _passed_fresh(self, rec: dict[str, Any]) -> None:
        """A segment that failed in a reused warm worker's process passed in a fresh one."""
        self.passed_fresh += 1
        if self.passed_fresh == LEFT_STATE_SEGMENTS:
            self._note(rec, LEFT_STATE.format(n=self.passed_fresh))

    def _early_error(self, t: TrialState, rec: dict[str, Any],
                     errs: list[tuple[int, str]] | None = None) -> None:
        """Keep a trial's first failure in ``errs`` (first_errors, the default, or
        restore_errors), for ``hopeless``."""
        errs = self.first_errors if errs is None else errs
        err = rec.get("error") or "error"
        host = _node_to_blame(rec, t)
        if host:
            self.early_hosts.setdefault(error_signature(err, t.hparams), set()).add(host)
        if rec.get("fatal") and self.fatal is None and errs is self.first_errors:
            self.fatal = (t.id, err.strip().splitlines()[0] if err.strip() else err)
        if len(errs) < SAME_ERROR_TRIALS and all(tid != t.id for tid, _ in errs):
            errs.append((t.id, error_signature(err, t.hparams)))

    def _on_retry_failed(self, rec: dict[str, Any]) -> None:
        """The code was fixed: failed trials train again from their latest checkpoints, and
        every trial's restarts count from zero; fail-fast starts over."""
        self.lifecycle = "running"
        self.message = None
        self.retried_at = self.seq if rec.get("before_fix_free") else 0
        self.fatal, self.first_errors, self.worked = None, [], 0
        self.restore_errors, self.restores_worked = [], 0
        self.early_hosts = {}
        self.pool.unready.clear()
        for t in self.trials.values():
            if t.status in LIVE or t.id in rec["trials"]:
                t.restarts = t.infra_retries = 0
        for tid in rec["trials"]:
            t = self.trials[tid]
            if t.status != FAILED:
                continue
            t.error, t.gave_up, t.last_failed = None, False, False
            self._note(rec, f"trial {tid} retried after the fix (--retry-failed)")
            self._actions(self.searcher.on_event(TrialRetried(tid, t.target)))
        self.searcher_done = self.searcher.done

    def _on_max_compute(self, rec: dict[str, Any]) -> None:
        """A new cap from here on. Raised, it continues what it had ended: the trials stopped
        unpromoted when their bracket ended wait for a promotion again where their checkpoints
        are still there, and the brackets create trials again up to their max_trials."""
        again = sorted(t.id for t in self.trials.values()
                       if t.status == STOPPED and t.id not in self.checkpoints_removed)
        actions = self.searcher.set_max_compute(rec["units"], reopen=again)
        self.max_compute = rec["units"]
        for tid in again:
            if self.searcher.trial_status(tid) in ("paused", "running"):
                self._set_status(self.trials[tid], PAUSED)
        if not self.searcher.done:
            self.searcher_done = False
            if self.lifecycle == "completed":
                self.lifecycle = "running"
        self._note(rec, f"max_compute {cap_change(rec.get('was'), rec['units'])} "
                        "(resume --max-compute)")
        self._actions(actions)

    def _on_job_dead(self, rec: dict[str, Any]) -> None:
        """The restart rule (README, "What survives what"): a job that ran and died without a
        result counts against max_restarts, whichever master started it; a job that never
        started (lost while queued: the backend has no trace of it; or cancelled by the master
        while queued, to submit it again) counts nothing, nor does one that died while the
        disk was full."""
        t = self.trials[rec["trial"]]
        self.times.on_job_dead(t.id, t.target, rec)
        if t.attempt_started is not None and isinstance(rec.get("time"), (int, float)):
            # from when the master heard it started to when it found it dead: an upper bound
            # by at most a poll, where nothing would be a lower bound by the whole run
            t.compute_s += max(0.0, rec["time"] - t.attempt_started)
        t.attempt_started = None
        never_ran = t.status == PENDING and (rec.get("state") == "lost" or bool(rec.get("withdrawn")))
        # started before --retry-failed: it ran the code before the fix, and the failed search's
        # master cancelled it as it stopped (found dead by the resumed one), as an error is free
        before_fix = self.rules >= 2 and t.intent_seq < self.retried_at
        if rec.get("withdrawn"):
            why = f"job {rec.get('job_id')} cancelled while queued: {rec['withdrawn']}"
        elif rec.get("hung"):
            why = f"job {rec.get('job_id')} hung ({rec['hung']}): cancelled"
        elif rec.get("unreadable"):
            why = (f"job {rec.get('job_id')} ended, and its result message could not be read "
                   f"({rec['unreadable']}): trains again, not counted")
        else:
            why = (f"job {rec.get('job_id')} ended without a result ({rec.get('state')}"
                   + ("; the disk was full" if rec.get("disk_full") else "") + ")")
        ran = rec.get("counts") or rec.get("state") == JobState.ENDED.value  # how: not known
        if ran and not rec.get("disk_full") and not never_ran and not t.code_ran \
                and not self.worked and not before_fix:  # every job may end so: fail-fast judges
            self._early_error(t, {"error": f"{BEFORE_CODE} ({rec.get('state')})",
                                  "host": rec.get("host")})
        if rec.get("counts") and not rec.get("disk_full") and not never_ran and not before_fix:
            self._failed(t, rec, rec.get("host") or t.host, why)
        else:
            self._retry(t, rec, counts=bool(rec.get("counts")) and not before_fix,
                        free=bool(rec.get("disk_full")) or never_ran or before_fix, why=why)

    def _failed(self, t: TrialState, rec: dict[str, Any], host: str | None, why: str,
                restore_repeated: bool = False) -> None:
        """An attempt failed in a way that counts against its trial, unless its node is to
        blame (nodes.py): it ran on an excluded node, or this failure gets its node excluded.
        ``restore_repeated``: it continued from a checkpoint and failed as its last such
        attempt did, and none has continued from one successfully."""
        if host is not None and host in self.nodes.bad:
            self._retry(t, rec, counts=False, why=f"on node {host}, excluded: {why}")
            return
        ex = self.nodes.failed(host, t.id, why, out_of_memory(why, rec.get("state")))
        if ex is None:
            if restore_repeated and self.rules >= 1 and self._few_at_once():
                # fail-fast's restore rule compares SAME_ERROR_TRIALS promoted trials, and no
                # other trial trains toward its promotion while this one retries in its slot
                t.restarts += 1
                self._give_up(t, rec, f"trial {t.id} failed twice with the same error "
                                      f"continuing from its checkpoint, before any trial "
                                      f"continued from one: given up, so that another trial "
                                      f"shows whether every restore fails so (`resume "
                                      f"--retry-failed` takes it back): {error_summary(why)}")
                return
            self._retry(t, rec, counts=True, why=why)
            return
        ex.refund.remove(t.id)  # this failure is not counted in the first place
        self._exclude(ex, rec)
        self._retry(t, rec, counts=False, why=f"on node {host}, excluded: {why}")

    def _exclude(self, ex: Excluded, rec: dict[str, Any]) -> None:
        """The node ``ex.host`` is excluded: the restarts its failures counted are given back."""
        given = 0
        for tid in ex.refund:
            t = self.trials[tid]
            if t.status in LIVE + (PAUSED,) and t.restarts > 0:
                t.restarts -= 1
                given += 1
        self.nodes.excluded(ex.host, rec.get("time", 0.0))
        self._note(rec, f"node {ex.host} excluded: {ex.why}"
                        + (f"; {given} restart(s) counted there given back" if given else ""))

    def _job_limit(self, t: TrialState) -> int | None:
        """The time limit (minutes) of the job running ``t``'s attempt, where known."""
        planned = self.times.planned(t.id)[0]
        if planned is not None:
            return planned
        return self.caps.default_limit_min

    def _on_workers(self, rec: dict[str, Any]) -> None:
        self.pool.on_workers(rec)
        self.auto.on_workers(rec)

    def _on_workers_submitted(self, rec: dict[str, Any]) -> None:
        self.pool.on_workers_submitted(rec)

    def _on_worker_ready(self, rec: dict[str, Any]) -> None:
        self.pool.on_ready(rec)
        for ex in self.nodes.job_started(rec.get("host")):
            self._exclude(ex, rec)
        self.auto.on_worker_ready(rec)

    def _on_worker_gone(self, rec: dict[str, Any]) -> None:
        self.pool.on_gone(rec)
        self.auto.on_gone(rec)
        if rec.get("unready"):
            ex = self.nodes.job_died(rec.get("host"), str(rec.get("job_id")), rec["why"])
            if ex is not None:
                self._exclude(ex, rec)

    def _on_workers_mode(self, rec: dict[str, Any]) -> None:
        self.auto.on_mode(rec)

    def _on_sampled(self, rec: dict[str, Any]) -> None:
        # the searcher already has it: replay() preloads them; live, the searcher drew it itself
        self.model_drawn.add(int(rec["trial"]))

    def _on_warm_start(self, rec: dict[str, Any]) -> None:
        self.searcher.warm_start(rec["trials"])
        w = self.warm or {"sources": [], "trials": 0, "results": 0, "left_out": 0, "inherited": 0}
        w["sources"].append(rec["source"])
        w["source"] = ", ".join(w["sources"])
        w["trials"] += len(rec["trials"])
        w["results"] += sum(len(t["losses"]) for t in rec["trials"])
        w["left_out"] += rec.get("left_out", 0)
        w["inherited"] += rec.get("inherited", 0)
        needs = self.searcher.model_fit_needs()
        if needs is not None:  # whether the model can fit on them before this search's own
            w["model_needs"], w["most_at_one_length"], w["at_length"] = needs
        self.warm = w

    def _on_checkpoints_removed(self, rec: dict[str, Any]) -> None:
        for tid in rec["trials"]:
            self.trials[tid].checkpoint = None
        self.checkpoints_removed.update(rec["trials"])

    def _on_nodes_readmitted(self, rec: dict[str, Any]) -> None:
        for host in rec["hosts"]:
            self.nodes.readmit(host)
        if rec.get("after_h") is not None:
            self._note(rec, f"node {', '.join(rec['hosts'])} taken back after {rec['after_h']:g} h "
                            "(readmit_nodes_after_h): judged afresh")

    def _on_cancelled(self, rec: dict[str, Any]) -> None:
        self.lifecycle = "cancelled"
        self.todo.clear()
        self.pool.on_gone({"workers": [w.id for w in self.pool.alive()]})
        for t in list(self.trials.values()):
            if t.status in LIVE:
                if t.status == QUEUED and t.segment == 0 and t.attempt == 0:
                    # created by the searcher (often from the results the cancel journaled
                    # first) and never given a job: no trial of this search, listed nowhere
                    self._counts[t.status] -= 1
                    del self.trials[t.id]
                    self.never_started += 1
                    continue
                self._set_status(t, CANCELLED)
                t.job_id = None

    def _on_done(self, rec: dict[str, Any]) -> None:
        self.lifecycle = rec.get("state", "completed")
        self.message = rec.get("message")

    HANDLERS: dict[str, Callable[[ExperimentState, dict[str, Any]], None]] = {
        Kind.INIT: _on_init, Kind.RESUMED: _on_resumed, Kind.STOPPED: _on_stopped,
        Kind.INTENT: _on_intent, Kind.SUBMITTED: _on_submitted,
        Kind.SUBMIT_FAILED: _on_submit_failed, Kind.STARTED: _on_started,
        Kind.RESULT: _on_result, Kind.RETRY_FAILED: _on_retry_failed,
        Kind.MAX_COMPUTE: _on_max_compute, Kind.NODES_READMITTED: _on_nodes_readmitted,
        Kind.JOB_DEAD: _on_job_dead,
        Kind.WORKERS: _on_workers, Kind.WORKERS_SUBMITTED: _on_workers_submitted,
        Kind.WORKER_READY: _on_worker_ready, Kind.WORKER_GONE: _on_worker_gone,
        Kind.WORKERS_MODE: _on_workers_mode, Kind.SAMPLED: _on_sampled,
        Kind.WARM_START: _on_warm_start,
        Kind.CHECKPOINTS_REMOVED: _on_checkpoints_removed, Kind.CANCELLED: _on_cancelled,
        Kind.DONE: _on_done, Kind.ABORTED: _on_done,
    }


def error_signature(error: str, hparams: dict[str, Any] | None = None) -> str:
    """What makes two failures the same error: the exception line of the traceback
    (``error_summary``), with what differs between the trials of one bug left out: object
    addresses, clock times (a library's log prefix, XGBoost's "[06:32:28]"), the trial's own
    text values (``hparams``: "unknown activation gelu", Hydra's "+model.act=relu"), paths (a
    trial's own folder) and numbers (a sampled value the message quotes, a size). An
    out-of-memory error keeps its numbers: its sizes are its trial's, and trials too large for
    the GPU are not a bug that every trial shares."""
    line = _CLOCK.sub("?", re.sub(r"0x[0-9a-fA-F]+", "0x?", error_summary(error)))
    texts = {v for v in flat_hparams(hparams or {}).values() if isinstance(v, str) and len(v) > 1}
    for text in sorted(texts, key=len, reverse=True):  # "gelu_new" before "gelu"
        line = re.sub(rf"(?<!\w){re.escape(text)}(?!\w)", "<value>", line)
    line = _PATH.sub("<path>", line)
    if not out_of_memory(line):
        line = _NUMBER.sub("#", line)
    # numpy and torch print arrays with their columns aligned: the spaces depend on the values
    return _INNER_SPACE.sub("", _SPACES.sub(" ", line)).strip()


_CLOCK = re.compile(r"\b(\d{4}-\d\d-\d\d[T ])?\d\d:\d\d:\d\d(\.\d+)?\b")
_PATH = re.compile(r"(?<![\w.])(?:~|\.{1,2})?(?:/[^\s'\",:;()\[\]{}<>]+)+")
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")  # numpy's "0." too
_SPACES = re.compile(r"\s+")
_INNER_SPACE = re.compile(r"(?<=[\[(]) | (?=[\]),])")


def _node_to_blame(rec: dict[str, Any], t: TrialState) -> str | None:
    """The node a failed attempt is held against: that of the rank that died or failed first,
    when the result names one (several ranks), else where the reporting rank ran."""
    return rec.get("failed_node") or rec.get("host") or t.host


# The rules a journal is replayed with. A rule that changes what the master decides would
# replay an older journal into decisions it never made (a trial given up that its journal
# goes on training): it applies to experiments started under it, named in their Init record.
# 1: a trial whose restore failed twice alike makes way (``_retry``)
# 2: a job found dead that ran the code from before --retry-failed counts nothing (_on_job_dead)
RULES = 2

SUMMARY_MAX = 600  # characters of an error's one-line form


def error_summary(s: str | None) -> str:
    """A failure in one line, up to SUMMARY_MAX characters. For a Python traceback: its
    exception, with every line of a message that spans several (torch.load's names what it
    refused in the middle and ends with a line that is the same for every refusal), but not a
    native backtrace after it (XGBoost's "Stack trace: [bt] ...", torch's "frame #0: ...").
    Otherwise, and when the script printed an error of its own after a traceback it caught:
    the last line with words. A longer line is cut in the middle: the exception's name is at
    its start, and our own errors end with what to do."""
    if not s:
        return ""
    # a line of only rules ("=====", torchrun's frame) says nothing
    lines = [x for x in _ANSI.sub("", s).strip().splitlines() if any(c.isalnum() for c in x)]
    if not lines:
        return ""
    line = _exception_message(lines) or lines[-1].rstrip()
    if len(lines) > 1 and _PEER_HEADLINE.match(lines[0]):
        # what a dead or failed peer left this rank with ("Connection closed by peer") says
        # less than which peer it was: both, the headline first
        line = lines[0].rstrip() + " " + line
    if len(line) <= SUMMARY_MAX:
        return line
    start, end = line[:SUMMARY_MAX // 3], line[-(SUMMARY_MAX - SUMMARY_MAX // 3 - 3):]
    # at a space, where there is one near: no word cut in two
    start = start[:start.rindex(" ")] if " " in start[-30:] else start
    end = end[end.index(" ") + 1:] if " " in end[:30] else end
    return start.rstrip() + " … " + end.lstrip()


# the job's headline over a rank's traceback, when a peer is to blame (job/ranks.py: gone)
_PEER_HEADLINE = re.compile(r"(rank \d+: )?rank \d+( on node \S+)? (died|failed) \(.*\); then")

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # torch's bold "do those steps only if you trust"
_BACKTRACE = re.compile(r"Stack trace|frame #\d|Exception raised from|.*\[bt\]")
# a line that starts an error of its own: argparse's, or another exception's
_HEADLINE = re.compile(r"([\w.-]+: )?error: |[A-Za-z_][\w.]*(Error|Exception)(:|$)")


def _exception_message(lines: list[str]) -> str | None:
    """The last Python traceback's exception with its whole message, on one line; None when
    there is no traceback, or when the script went on to print something else after it."""
    start = max((i for i, x in enumerate(lines) if x.startswith("Traceback (most recent call")),
                default=None)
    if start is None:
        return None
    head = next((i for i in range(start + 1, len(lines)) if not lines[i][:1].isspace()), None)
    if head is None or COMMAND_STDERR in lines[head]:
        return None  # (a command's: its own last line, or its own traceback, is the story)
    end = next((i for i in range(head + 1, len(lines)) if _BACKTRACE.match(lines[i])), len(lines))
    if not all(_BACKTRACE.match(x) or x[:1].isspace() for x in lines[end:]):
        return None  # the script caught it and went on
    if any(_HEADLINE.match(x) for x in lines[head + 1:end]):
        return None  # an error printed after it is the last word
    return " ".join(x.strip() for x in lines[head:end])


def cap_change(was: int | None, units: int) -> str:
    """"set to 900", "raised from 700 to 900": what a ``max_compute`` record did."""
    return (f"set to {units}" if was is None
            else f"{'raised' if units > was else 'lowered'} from {was} to {units}")


def _pinned_json(cfg: ExperimentConfig) -> str:
    """What a journal's trials mean: the searcher, the hyperparameter space and the seed (not
    the backend or paths, which ``resume --backend`` or a moved folder may change), as JSON."""
    import json

    d = cfg.to_dict()
    pin = {k: d.get(k) for k in ("searcher", "hyperparameters", "reproducibility")}
    return json.dumps(pin, sort_keys=True, default=str)


def config_pin(cfg: ExperimentConfig) -> dict[str, Any]:
    """``_pinned_json`` as the journal's Init keeps it, for a refusal to name what changed."""
    import json

    return json.loads(_pinned_json(cfg))


def config_hash(cfg: ExperimentConfig) -> str:
    """A short hash of ``_pinned_json``: the journal's Init keeps it."""
    import hashlib

    return hashlib.sha256(_pinned_json(cfg).encode()).hexdigest()[:16]


def describe_changes(was: Any, now: Any, path: str = "", most: int = 3) -> str:
    """``searcher.max_trials: 16 then, 32 now; ...``: the settings that differ, by their
    dotted names (at most ``most``, then how many more)."""
    found: list[str] = []

    def walk(a: Any, b: Any, p: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b), key=str):
                walk(a.get(k, _UNSET), b.get(k, _UNSET), f"{p}.{k}" if p else str(k))
        elif a != b:
            found.append(f"{p}: {_json_short(a)} then, {_json_short(b)} now")

    walk(was, now, path)
    more = f"; and {len(found) - most} more" if len(found) > most else ""
    return "; ".join(found[:most]) + more if found else "changed"


_UNSET = object()  # a setting one side of describe_changes lacks


def _json_short(v: Any, width: int = 40) -> str:
    import json

    text = "(unset)" if v is _UNSET else json.dumps(v, default=str)
    return text if len(text) <= width else text[:width - 3] + "..."


def replay(cfg: ExperimentConfig, records: list[dict[str, Any]],
           salvage: bool = False) -> ExperimentState:
    """The state the records lead to. A record that cannot be applied (the journal lost one
    it depends on: a corrupt line, skipped) raises AshaError saying so; with ``salvage`` (the
    read-only views) the state is the one before it instead, with ``damaged`` set."""
    st = ExperimentState(cfg)
    st.searcher.preload_sampled({r["trial"]: r["hparams"] for r in records
                                 if r["kind"] == Kind.SAMPLED})
    prev = 0
    for i, r in enumerate(records):
        try:
            st.apply(r)
        except (KeyError, ValueError, TypeError, IndexError, AttributeError) as e:
            why = _damaged(r, e, records, prev)
            if why is None:  # nothing was lost: not the journal's doing
                raise
            if not salvage:
                raise AshaError(why) from None
            st = replay(cfg, records[:i])
            st.damaged = why
            return st
        prev = r.get("seq", prev)
    why = _ended_with_trials_live(st, records)
    if why is not None:
        if not salvage:
            raise AshaError(why)
        st.damaged = why
    return st


def _ended_with_trials_live(st: ExperimentState, records: list[dict[str, Any]]) -> str | None:
    """A search the journal says completed while some of its trials still train: a record it
    lost (the last result of a trial) that nothing after it needed to replay, but the end did;
    None where the state is whole."""
    if st.lifecycle != "completed":
        return None
    live = sorted(t.id for t in st.trials.values() if t.status in LIVE)
    last = max((s for r in records if isinstance(s := r.get("seq"), int)), default=0)
    lost = _lost_records(records, last)
    if not live or not lost:
        return None
    return (f"the journal says the search completed, but trial{'s' if len(live) > 1 else ''} "
            f"{_some(live)} never ended in it: it lost {_records_text(lost)} (a corrupt line, "
            f"skipped), which the end depends on (a result: the trial's files still hold its "
            f"checkpoint and learning curve). "
            f"Restore journal.jsonl from a backup or a filesystem snapshot; what is shown is "
            f"the search without it")


def _lost_records(records: list[dict[str, Any]], before: int) -> list[int]:
    """The journal positions below ``before`` that no record holds (lines skipped as corrupt)."""
    seqs = {r.get("seq") for r in records}
    return [s for s in range(1, before) if s not in seqs]


def _some(ids: list[int]) -> str:
    return ", ".join(map(str, ids[:5])) + ("..." if len(ids) > 5 else "")


def _records_text(lost: list[int]) -> str:
    return f"record{'s' if len(lost) > 1 else ''} {_some(lost)}"


def _damaged(rec: dict[str, Any], e: Exception, records: list[dict[str, Any]],
             prev: int) -> str | None:
    """What a record that cannot be replayed says about the journal, and what to do; None
    where no record before it is missing."""
    lost = _lost_records(records, rec.get("seq") or 0)
    if not lost:
        return None
    cause = (f"the journal lost {_records_text(lost)} before it (a corrupt line, skipped), "
             f"which it depends on")
    return (f"journal record {rec['seq']} ({rec.get('kind')}) cannot be replayed ({type(e).__name__}: "
            f"{e}): {cause}. What the journal says is known up to record {prev}; restore "
            f"journal.jsonl from a backup or a filesystem snapshot, then resume (the trials' "
            f"folders and checkpoints are untouched)")

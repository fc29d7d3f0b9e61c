"""What the user's training code sees: the job side of asha_hpc.

    def train(trial: asha_hpc.Trial) -> None:
        hp = trial.hparams
        ckpt = trial.latest_checkpoint          # Path or None
        for segment in trial.segments():
            ...train until the absolute length segment.length...
            if trial.should_stop(): ...         # time limit / preemption: checkpoint and return
            with trial.save_checkpoint() as path:
                ...write files into path...
            segment.report(val_loss=0.31)

Checkpoints are published atomically: files go into a hidden temporary folder, a manifest
listing them is written last, and the folder is renamed into place. A checkpoint counts once its
manifest is there, so a job killed mid-save leaves the previous checkpoint as the latest.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AttemptSuperseded, FatalTrialError, MetricNotReported, shown
from ..protocol.checkpoints import MANIFEST, checkpoint_length, latest_checkpoint
from ..protocol.expdir import CHECKPOINTS, METRICS, fsync_dir, superseded, sync_data
from ..protocol.metrics import as_number, merge_metrics, plain_metrics
from . import notes
from .ranks import PeerGone

if TYPE_CHECKING:
    from .ranks import Group

# how long rank 0 looks for the other ranks' checkpoint markers after torch.distributed's
# barrier (a network filesystem can show another node's new file that late)
MARKER_WAIT_S = 60.0
# what Ray Tune's train.report reads from its dict (ending a trial, a checkpoint to keep)
RAY_RESULT_KEYS = ("done", "checkpoint", "should_checkpoint")


@dataclass
class Segment:
    """One stretch of training: train until the trial's total length is ``length``, then
    ``report`` the metrics (the searcher's metric must be among them).

    ``segment.report(val_loss=0.3, step=1200, epoch=3)``; names that are not Python
    identifiers go in a dict: ``segment.report({"val/loss": 0.3, "acc,top1": 0.9})``. Values:
    anything number-like (int, float, bool, numpy and 0-d torch scalars, ``__float__``);
    other values (strings) are kept in metrics.jsonl and ignored by the numeric views."""

    length: int
    index: int
    _trial: Trial = field(repr=False)
    reported: dict[str, Any] | None = None
    short_of: int | None = field(default=None, repr=False)  # reported past its checkpoint's length
    # a framework callback ends the segment at the framework's first event at or past its
    # length (an optimizer step that counts two): a checkpoint a little past it is no mistake
    at_event: bool = field(default=False, repr=False)

    def report(self, metrics: Mapping[str, Any] | None = None, /, **named: Any) -> None:
        if metrics is not None and not isinstance(metrics, Mapping):
            # Optuna's trial.report(value, step), Ray's session.report(value): every trial
            # would repeat it, so the search stops at the first
            raise MetricNotReported(
                f"segment.report({shown(metrics)}): metrics are reported by name, "
                f"segment.report({self._trial.metric}=...) for the searcher's metric (a dict "
                f"or keywords; points along the way: trial.report_metrics(step, name=value))")
        self._trial._report_segment(self, merge_metrics(metrics, named))


class Trial:
    """One trial as seen from inside its job. Built by the job wrapper, not by users."""

    # a trial is its job's: a copy is the trial itself, and no other process gets one
    def __copy__(self) -> Trial:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Trial:
        return self

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise FatalTrialError(
            "the trial cannot be pickled for another process (Lightning's strategy='ddp_spawn' "
            "or 'fsdp_spawn', multiprocessing's spawn, a notebook launcher): a trial's "
            "processes are asha_hpc's to start. Use strategy='ddp' with local.tasks_per_node "
            "(slurm.tasks_per_node, slurm.nodes) = the Trainer's devices x num_nodes, and give "
            "other processes the values they need (trial.hparams, str(trial.dir)), not the trial")

    def __init__(self, *, trial_id: int, hparams: dict[str, Any], trial_dir: Path, run_dir: Path,
                 segments: list[int], first_segment: int, metric: str, key: str,
                 length_unit: str = "units", max_length: int | None = None, rank: int = 0,
                 world_size: int = 1,
                 local_rank: int = 0, group: Group | None = None, seed: int = 0) -> None:
        self.id = trial_id
        # experiment_seed + id (Determined's trial seed): the same in every job of the trial
        self.seed = seed
        self.hparams = hparams
        self.dir = Path(trial_dir)
        self.run_dir = Path(run_dir)
        self.metric = metric
        self.length_unit = length_unit
        # the searcher's max_length: no segment goes further (a learning-rate schedule's end)
        self.max_length = max_length
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self._lengths = list(segments)
        self._first = first_segment
        self._key = key
        # set from signal handlers: a plain flag, since a lock taken there (threading.Event)
        # deadlocks when a second signal lands while the first handler holds it
        self._stop = False
        self._stop_reason = ""
        self._reports: list[Segment] = []
        self._n_ckpt = 0
        self._saved_length: int | None = None  # the length the last checkpoint said it holds
        self._saving_length: int | None = None  # ... and the one being saved (in its block)
        self._saved: tuple[Path, int | None] | None = None  # last checkpoint saved here
        self._alone = False  # save_checkpoint() is rank 0's alone (publishing_alone)
        # the code asked where to go on from (trial.latest_checkpoint): code that saves
        # checkpoints and never asks trains a promoted trial from scratch (jobmain says so)
        self.asked_for_checkpoint = False
        self.failed_save_bytes = 0  # what a checkpoint that failed (a full disk) had written
        self._metrics_path = self.run_dir / METRICS
        self._names: dict[str, None] = {}  # metric names reported by this process, in order
        self._said_again = False  # the warning about a segment reported twice, said once
        self._said_foreign = False  # ... and about Ray's result keys in a report
        self._said_past = False  # ... and about a checkpoint a little past its segment
        self._said_stopped_report = False  # ... and about a report after the job's stop
        self._current: Segment | None = None  # the segment the loop is in
        self._last_point: dict[str, Any] | None = None  # the metrics of the last curve point
        self._last_step: Any = None  # ... and its step
        self.first_step: Any = None  # the step of this process's first curve point
        # the last point that held the searcher's metric: (its segment, step, metrics), the
        # result of a segment that its code ended before reporting (Optuna's TrialPruned)
        self._metric_point: tuple[Segment, Any, dict[str, Any]] | None = None
        self._group = group
        # the job's (TrialControl.continue_with): (reported segment) -> (length, index) or None
        self._next_segment: Callable[[Segment], tuple[int, int] | None] | None = None

    # ----------------------------------------------------------------- reading
    def __getattr__(self, name: str) -> Any:
        """Only for names the object lacks: Optuna's and Ray's, said in ours (every trial
        would repeat the mistake, so the search stops at the first)."""
        hint = FOREIGN_NAMES.get("suggest_" if name.startswith("suggest_") else name)
        if hint is None or name.startswith("__"):
            raise AttributeError(f"'Trial' object has no attribute {name!r}")
        raise ForeignTrialName(f"trial.{name}: {hint} (README: Moving from Ray Tune or Optuna)")

    def __getitem__(self, name: Any) -> Any:
        raise TypeError(f"trial[{name!r}]: a Trial is not its hyperparameters: read "
                        f"trial.hparams[{name!r}] (Ray Tune's config, Optuna's trial.params)")

    @property
    def latest_checkpoint(self) -> Path | None:
        """Path of the last complete checkpoint of this trial, or None (a fresh trial)."""
        self.asked_for_checkpoint = True
        return self._newest_checkpoint()

    def _newest_checkpoint(self) -> Path | None:
        """``latest_checkpoint`` for asha_hpc's own bookkeeping (not the code asking)."""
        return latest_checkpoint(self.dir / CHECKPOINTS)

    def segments(self) -> Iterator[Segment]:
        """The segments this job trains, in order. Usually one; where the job continues in
        place (``continue_in_place``, worker pool), the loop goes on with the trial's next
        segment as soon as the searcher decides it continues: keep the model in memory."""
        i, length, index = 0, self._lengths[0], self._first
        while True:
            seg = Segment(length=length, index=index, _trial=self)
            self._current = seg
            yield seg
            self._note_short(seg)  # the loop went on: no TrainingEndedEarly after the report
            if self._segment_over(seg):
                break
            i += 1
            if i < len(self._lengths):
                length, index = self._lengths[i], self._first + i
                continue
            nxt = self._next_segment(seg) if self._next_segment is not None else None
            if nxt is None:  # no more: the job publishes and exits (or takes other work)
                break
            length, index = nxt
        if self.world_size > 1:
            _exit_if_stuck(self.rank)

    def should_stop(self) -> bool:
        """True once the job was told to leave (time limit near, preemption, cancel): save a
        checkpoint and return; the segment continues later from it, and it counts as no
        failure.

        With several ranks and torch.distributed initialised, this is a collective (an
        all-reduce of every rank's flag), so all ranks turn true together: call it on every
        rank at the same point of the loop."""
        dist = _torch_dist() if self.world_size > 1 else None
        if dist is None:
            return self._stop
        return _summed(dist, [1 if self._stop else 0])[0] > 0

    def _segment_over(self, seg: Segment) -> bool:
        """After a segment's body, on every rank: the loop ends unless the segment was reported
        and no rank was told to stop. With torch.distributed this is one collective that every
        rank makes, reported or not, so the ranks also learn whether they all reported: a
        rank that reported (and goes on) would otherwise wait forever in a collective that a
        rank that did not (and leaves) never joins."""
        reported = seg.reported is not None
        dist = _torch_dist() if self.world_size > 1 else None
        if dist is None:
            return not reported or self._stop
        mine = [0] * (self.world_size + 1)
        mine[0], mine[1 + self.rank] = int(self._stop), int(reported)
        got = _summed(dist, mine)
        if 0 < sum(got[1:]) < self.world_size:
            did = [r for r in range(self.world_size) if got[1 + r]]
            not_ = [r for r in range(self.world_size) if not got[1 + r]]
            raise FatalTrialError(
                f"segment.report() was called on {_ranks(did)} but not on {_ranks(not_)} for "
                f"the segment to length {seg.length}: call it on every rank, at the same point "
                f"(rank 0's values are the result; the others may pass the same)")
        return not reported or got[0] > 0

    def _barrier(self, folder: Path, phase: str) -> None:
        """Wait until every rank reached this point: torch.distributed's barrier when it is
        initialised, else marker files in the (shared) folder, watching for dead peers.

        With torch.distributed, every rank also drops its marker before the barrier, and rank 0
        looks for them after it: a rank that passed the barrier without one was in a
        collective of its own code (the tutorials' ``if rank == 0: save``, with a
        ``dist.barrier()`` after it), and the ranks have fallen out of step."""
        if self.world_size <= 1:
            return
        dist = _torch_dist()
        if dist is None:
            if self._group is not None:
                self._group.barrier(folder, phase)
            return
        (folder / f".{phase}-rank{self.rank}").touch()
        dist.barrier()
        if self.rank != 0 or self._group is None:
            return

        def missing() -> list[int]:
            try:
                names = set(os.listdir(folder))
            except FileNotFoundError:
                return []
            return [r for r in range(self.world_size) if f".{phase}-rank{r}" not in names]

        # a network filesystem may show another node's new file a little late; this node's
        # ranks' files are there at once
        one_node = len(self._group.on_this_node()) == self.world_size - 1
        try:
            self._group.wait(lambda: not missing(), f"every rank's {phase} marker in {folder}",
                             timeout_s=0.0 if one_node else MARKER_WAIT_S)
        except PeerGone:  # a peer that died: the attempt's failure, retried, not the code's
            raise
        except RuntimeError:  # timed out
            late = missing()
            if not late:
                return
            raise FatalTrialError(
                f"{_ranks(late)} did not call trial.save_checkpoint() where "
                f"rank 0 did, but passed a collective of rank 0's there (its own dist.barrier(), "
                f"say): call save_checkpoint on every rank at the same point, and write rank 0's "
                f"files inside it with `if rank == 0:` (README: Distributed trials)") from None

    def request_stop(self, reason: str) -> None:
        """Called from the job's signal handler: assignments only, no locks."""
        self._stop_reason = self._stop_reason or reason
        self._stop = True

    # ----------------------------------------------------------------- writing
    @contextlib.contextmanager
    def save_checkpoint(self, length: int | None = None) -> Iterator[Path]:
        """A fresh directory to write a checkpoint into, published atomically on exit. If the
        block raises, the partial checkpoint is removed and the previous one stays latest.

        ``length``: the total length trained when it was taken (optional). When a job stops
        early (time limit), it tells the master how far the segment got: the next job's time
        limit is planned for the rest, and the run time teaches the time-limit estimate."""
        root = self.dir / CHECKPOINTS
        root.mkdir(parents=True, exist_ok=True)
        self._n_ckpt += 1
        name = f"{self._key}-{self._n_ckpt:04d}"  # the same on every rank
        tmp = root / f".tmp-{name}"
        together = self.world_size > 1 and not self._alone
        tmp.mkdir(exist_ok=together)
        # a report inside the block (Ray's train.report(..., checkpoint=) ported as it is) is
        # judged against the length being saved
        self._saving_length = length if isinstance(length, int) else None
        try:
            yield tmp
        except BaseException:
            if self.rank == 0:
                self.failed_save_bytes = max(self.failed_save_bytes, sum(_sizes(tmp).values()))
                _rmtree(tmp)
            raise
        finally:
            self._saving_length = None
        if together:
            self._barrier(tmp, "saved")  # a sharded checkpoint is complete, or absent
        if self.rank != 0:  # rank 0 publishes; wait so every rank sees the same latest
            if self._group is not None:
                self._group.wait(lambda: not tmp.exists(), f"rank 0 to publish {tmp}")
            return
        for marker in tmp.glob(".saved-rank*"):
            marker.unlink()
        files: dict[str, int] = {}
        for dirpath, _, filenames in os.walk(tmp):
            for fn in filenames:
                p = Path(dirpath) / fn
                try:
                    with open(p, "rb") as f:
                        sync_data(f.fileno())
                    files[str(p.relative_to(tmp))] = p.stat().st_size
                except FileNotFoundError:
                    raise self._still_written(tmp, f"{p.relative_to(tmp)} went away") from None
        unfinished = [r for r in files if ASYNC_TEMPORARY in r]
        if unfinished:
            raise self._still_written(tmp, f"{unfinished[0]} is a temporary file")
        if _sizes(tmp) != files:  # looked at again once every file was synced
            raise self._still_written(tmp, "files changed as they were read")
        man: dict[str, Any] = {"trial": self.id, "key": self._key, "files": files,
                               "created": time.time()}
        if isinstance(length, int) and not isinstance(length, bool):
            man["length"] = length
            self._saved_length = length
            last = self._reports[-1] if self._reports else None
            if last is not None and last is self._current and not last.at_event \
                    and self._too_far(last, length):  # reported first, then saved past it
                _rmtree(tmp)
                raise self._past(last, length)
        # The folder is private until renamed: the manifest needs no rename of its own. Its
        # entry (and the files') is in the same folder, created before the rename, which a
        # journaling filesystem (or NFS, synchronous for metadata) makes durable in that order;
        # fsyncing the data, then the rename, is what a crash needs (3 fsyncs, not 5).
        with open(tmp / MANIFEST, "w") as f:
            f.write(json.dumps(man, sort_keys=True) + "\n")
            f.flush()
            sync_data(f.fileno())
        why = superseded(self.run_dir)
        if why is not None:  # its retry may be writing this folder: not a file more from here
            _rmtree(tmp)
            raise AttemptSuperseded(f"the master took this attempt ({self._key}) for dead "
                                    f"({why}) and retries it: its checkpoint is not published")
        os.rename(tmp, root / name)
        fsync_dir(root)  # the checkpoint is durable before a result names it, or the old goes
        self._saved = (root / name, man.get("length"))
        self._prune(root, keep=name)

    @contextlib.contextmanager
    def publishing_alone(self) -> Iterator[None]:
        """``save_checkpoint()`` here is rank 0's alone, the other ranks take no part: the job's
        publish of the folder a command left, which the command's own ranks agreed on (its rank
        0 wrote it) while the jobs of the other ranks have nothing to add."""
        assert self.rank == 0
        self._alone = True
        try:
            yield
        finally:
            self._alone = False

    def _still_written(self, tmp: Path, what: str) -> FatalTrialError:
        """Something wrote into a checkpoint after its ``with`` block ended: an asynchronous
        checkpointer. What it published would be skipped as incomplete, and the trial would
        train again from the start without a word: the search stops at the first."""
        _rmtree(tmp)
        return FatalTrialError(
            f"trial.save_checkpoint(): the checkpoint's folder changed while asha_hpc "
            f"published it ({what}): something wrote into it after the `with` block ended, "
            f"an asynchronous checkpointer (Orbax's CheckpointManager or StandardCheckpointer, "
            f"torch.distributed.checkpoint.async_save): wait for it inside the block "
            f"(checkpointer.wait_until_finished(), the future's result())")

    def _prune(self, root: Path, keep: str) -> None:
        """Only the newest checkpoint is ever resumed from: remove older ones and temporary
        folders left by killed attempts (this job is the trial folder's only writer). A newer
        temporary folder stays: with several ranks, another rank may already be writing the
        next checkpoint into it (removing it lost that rank's shard and marker, and the two
        ranks then waited for each other in different checkpoints until the 30 min timeout)."""
        for other in os.listdir(root):
            name = other[len(".tmp-"):] if other.startswith(".tmp-") else other
            if other != keep and name < keep:
                _rmtree(root / other)

    def report_metrics(self, step: Any = None, metrics: Mapping[str, Any] | None = None, /,
                       **named: Any) -> None:
        """A point of the learning curve; rank 0 only. ``step`` (the x axis): positional, or
        a metric named ``step`` when it is left out. Metrics as in ``Segment.report``:
        ``trial.report_metrics(120, loss=0.4)``, ``trial.report_metrics(step=120, loss=0.4)``,
        ``trial.report_metrics(120, {"train/loss": 0.4})``."""
        if metrics is not None and not isinstance(metrics, Mapping):
            # Optuna's trial.report(value, step): the value first, the step second
            raise MetricNotReported(
                f"trial.report_metrics({shown(step)}, {shown(metrics)}): the step comes first "
                f"and the metrics are named: trial.report_metrics(step, {self.metric}=value) "
                f"(Optuna's trial.report(value, step) is trial.report_metrics(step, "
                f"{self.metric}=value))")
        self._write_point(step, plain_metrics(merge_metrics(metrics, named)))

    def result_point(self, length: int, metrics: dict[str, Any]) -> None:
        """A segment's result as a point of the curve, at its length, unless the last point
        written holds the same values (the code reported them as a point at its own step, then
        as the result, or a part of them: one point, not two)."""
        last, at = self._last_point, self._last_step
        same = last == metrics or (
            last is not None and as_number(at) == length
            and all(k in last and last[k] == v for k, v in metrics.items()))
        if not same:
            self._write_point(length, metrics)

    def _write_point(self, step: Any, metrics: dict[str, Any]) -> None:
        if self.rank != 0:
            return
        self._last_point = metrics
        self._names.update(dict.fromkeys(metrics))
        if step is None:
            step = metrics.get("step")
        self._last_step = step
        if self.first_step is None:
            self.first_step = as_number(step)
        if self._current is not None and as_number(metrics.get(self.metric)) is not None:
            self._metric_point = (self._current, step, metrics)
        x = as_number(step)
        # the user's names live under "metrics": no name of theirs meets "step" or "time"
        line = json.dumps({"step": x if x is None or isinstance(x, int) else float(x),
                           "time": time.time(), "metrics": metrics})
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self._metrics_path, "a") as f:
            f.write(line + "\n")

    def _report_segment(self, seg: Segment, metrics: dict[str, Any]) -> None:
        plain = plain_metrics(metrics)
        if self.metric not in plain:
            raise MetricNotReported(
                f"the searcher's metric '{self.metric}' was not reported: segment.report() got "
                f"{_names(plain)}; fix the name in the code or searcher.metric in the config")
        value = plain[self.metric]
        if as_number(value) is None:
            raise MetricNotReported(
                f"segment.report(): the searcher's metric '{self.metric}' must be a number (a "
                f"float, an int, a numpy or one-element torch value), got "
                f"{type(metrics[self.metric]).__name__} {shown(metrics[self.metric])}: report "
                f"the value itself")
        if self._saved_length is not None and not seg.at_event \
                and self._too_far(seg, self._saved_length):
            raise self._past(seg, self._saved_length)
        foreign = [k for k in RAY_RESULT_KEYS if k in plain and k != self.metric]
        if foreign and not self._said_foreign and self.rank == 0:
            self._said_foreign = True
            notes.warn(f"segment.report() got {_names(foreign)}: Ray Tune's words, metrics like "
                       f"any other here. To end the trial's training, raise "
                       f"asha_hpc.TrainingEndedEarly after the report; its checkpoint is what "
                       f"trial.save_checkpoint() published")
        if seg.reported is not None and not self._said_again:
            self._said_again = True
            notes.warn(f"segment.report() again for the segment to length {seg.length}: the "
                       f"last call's metrics are the segment's result. Report once, at the "
                       f"segment's end; points along the way (every epoch, as Ray's train.report "
                       f"or Optuna's trial.report) go to trial.report_metrics(step, ...)")
        lengths = [x for x in (self._saved_length, self._saving_length) if x is not None]
        saved = max(lengths) if lengths else None
        short = saved is not None and saved < seg.length
        if short and self._stop and not seg.at_event:
            # the job's stop cut the segment (a time limit, a preemption, a pause) and the code
            # reported anyway (a callback that stops the library's loop, then the usual
            # evaluate-and-report): not the rung's result; the segment goes on from the save
            if not self._said_stopped_report and self.rank == 0:
                self._said_stopped_report = True
                notes.warn(f"segment.report() after the job's stop, with the checkpoint at "
                           f"{saved} of the segment's {seg.length}: not ranked as the segment's "
                           f"result; the trial goes on from {saved}. On trial.should_stop(), "
                           f"save and return before evaluating")
            return
        seg.short_of = saved if short and self.rank == 0 else None
        seg.reported = plain
        if seg not in self._reports:
            self._reports.append(seg)
        self.result_point(seg.length, plain)

    def _too_far(self, seg: Segment, saved: int) -> bool:
        """Whether a checkpoint of ``saved`` for ``seg`` is past it by a mistake (a Ray port's
        range(MAX_EPOCHS), steps given for epochs: the trial's next length or twice the
        segment's). Less is a library that trains in whole chunks of its own (Stable-Baselines3
        rounds learn() up to n_steps): said once, and the trial goes on from there."""
        if saved <= seg.length:
            return False
        last = self.max_length is not None and seg.length >= self.max_length
        if saved >= 2 * seg.length or (not last and self.max_length is not None
                                       and saved >= self.max_length):
            return True
        if not self._said_past and self.rank == 0:
            self._said_past = True
            notes.warn(f"a checkpoint of {saved} {self.length_unit} for the segment to length "
                       f"{seg.length}: the result counts at {seg.length} and the trial goes on "
                       f"from {saved}, so trials are compared a little past their rung (a "
                       f"library that trains whole chunks, such as Stable-Baselines3's n_steps "
                       f"x n_envs per rollout). To compare at the rung's length, stop at "
                       f"segment.length (a callback), or choose chunks that divide the rung "
                       f"lengths (asha-hpc plan lists them)")
        return False

    def _past(self, seg: Segment, saved: int) -> FatalTrialError:
        """The error of a segment trained past its length (a Ray port's range(MAX_EPOCHS))."""
        return FatalTrialError(
            f"segment.report() for the segment to length {seg.length}, and a checkpoint "
            f"saved for it holds {saved} (save_checkpoint(length={saved})): the code trained "
            f"past the segment, and the result would count at {seg.length}. Train each segment "
            f"to segment.length (`for segment in trial.segments():` then train until "
            f"segment.length, report, and return to the loop): the search decides at each rung "
            f"whether the trial goes on. Or give save_checkpoint(length=) in the searcher's "
            f"unit ({self.length_unit}), not in steps. (A little past it, under twice the "
            f"segment's length and short of the next, is taken: a library's whole rollouts.)")

    def _note_short(self, seg: Segment) -> None:
        """Said once the loop went on after a report past the last checkpoint's length (a
        report followed by TrainingEndedEarly is a final model's, and gets no note)."""
        if seg.reported is None or seg.short_of is None:
            return
        notes.warn(f"segment.report() for the segment to length {seg.length}, but the checkpoint "
                   f"saved last holds {seg.short_of}: the result counts at {seg.length}, and the "
                   f"trial goes on from {seg.short_of}. Report once the loop reached the "
                   f"segment's length, and give save_checkpoint(length=) the units trained (epoch "
                   f"+ 1 in a 0-based loop); if training ended early on purpose (a library's early "
                   f"stopping), raise asha_hpc.TrainingEndedEarly right after the report: the "
                   f"model is final, and its result stands for any promotion")
        seg.short_of = None

    @property
    def reports(self) -> list[Segment]:
        return list(self._reports)

    def reported_names(self) -> list[str]:
        """Metric names this process reported so far (learning curve and segments)."""
        return list(self._names)


class TrialControl:
    """The job wrapper's side of a ``Trial`` (jobmain.py), kept apart from what user code
    calls: the job tells the trial when to stop and how to go on to its next segment in
    place, and reads back what it needs for the segment's result.

    ``Trial.request_stop`` stays on the Trial (integrations' tests stop a trial the way a
    signal would); everything else the job touches is here."""

    def __init__(self, trial: Trial) -> None:
        self.trial = trial

    def continue_with(self, next_segment: Callable[[Segment], tuple[int, int] | None]) -> None:
        """Where the job may continue in place: after each reported segment ``segments()``
        asks ``next_segment(segment)`` for the next (length, index), None to end its loop."""
        self.trial._next_segment = next_segment

    def start_attempt(self, key: str, run_dir: Path) -> None:
        """A new attempt (the next segment handed over in place) runs from here: checkpoints
        are named after its key, and its learning-curve points go to its own run folder."""
        self.trial._key = key
        run_dir.mkdir(parents=True, exist_ok=True)
        self.trial.run_dir = run_dir
        self.trial._metrics_path = run_dir / METRICS

    def stop(self, reason: str) -> None:
        """The job was told to leave (a stop signal): ``should_stop()`` turns true."""
        self.trial.request_stop(reason)

    @property
    def stop_requested(self) -> bool:
        """This process was told to stop. Not the collective ``should_stop`` (rank 0 alone in
        an all-reduce would wait forever)."""
        return self.trial._stop

    @property
    def stop_reason(self) -> str | None:
        """The first stop signal's name (``SIGUSR2``), None while not told to stop."""
        return self.trial._stop_reason or None

    def segment_metrics(self, index: int, length: int) -> dict[str, Any] | None:
        """What segment ``index`` reported on this process, where it reached ``length``."""
        reports = [r for r in self.trial._reports if r.index == index]
        return reports[-1].reported if reports and reports[-1].length == length else None

    def last_point(self, index: int) -> tuple[Any, dict[str, Any]] | None:
        """(step, metrics) of segment ``index``'s last curve point that held the searcher's
        metric, on this process."""
        got = self.trial._metric_point
        return (got[1], got[2]) if got is not None and got[0].index == index else None

    def latest_checkpoint(self) -> tuple[Path | None, int | None]:
        """(latest checkpoint, the length it holds) for the segment's result: the one this
        process saved last if it saved any (no listing or manifest to read; this job is the
        trial's only writer), else what is on disk."""
        t = self.trial
        if t._saved is not None and t._saved[0].exists():
            return t._saved
        ckpt = t._newest_checkpoint()
        return ckpt, checkpoint_length(ckpt)


class ForeignTrialName(FatalTrialError, AttributeError):
    """Another library's name for what a Trial does in its own words."""


# Optuna's Trial and Ray's session, in this Trial's words
FOREIGN_NAMES = {
    "suggest_": "hyperparameters are drawn from the config's `hyperparameters`; read them as "
                "trial.hparams['name']",
    "params": "trial.hparams",
    "number": "trial.id (from 1)",
    "report": "a curve point is trial.report_metrics(step, name=value); the segment's result, "
              "which the searcher ranks, is segment.report(name=value) at its end",
    "should_prune": "the searcher stops trials between segments: train each to "
                    "segment.length; to end one yourself, raise asha_hpc.TrainingEndedEarly",
    "set_user_attr": "values of your own go to trial.report_metrics(step, name=value), or to "
                     "files in trial.dir",
}


def _ranks(ranks: list[int]) -> str:
    """"rank 1", "ranks 1, 3"."""
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(map(str, ranks))


def _names(names: Any) -> str:
    """``'a', 'b'`` for a message (``nothing`` when empty)."""
    shown = [repr(n) for n in names]
    return ", ".join(shown[:20]) + (", ..." if len(shown) > 20 else "") if shown else "nothing"


def _summed(dist: Any, values: list[int]) -> list[int]:
    """``values`` summed over every rank (a collective: every rank calls it at the same
    point), on the device the process group's backend needs."""
    import torch

    t = torch.tensor(values, dtype=torch.int32,
                     device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t)
    return [int(x) for x in t.tolist()]


RANK_EXIT_GRACE_S = 300.0  # ASHA_RANK_EXIT_GRACE_S in the job's environment overrides it
# in the name of a file an asynchronous checkpointer has not finished (Orbax's folder, renamed
# to its own name when the save is complete)
ASYNC_TEMPORARY = ".orbax-checkpoint-tmp"


def _sizes(folder: Path) -> dict[str, int]:
    """Each file below ``folder`` (relative name) and its size; one that went away meanwhile
    is left out."""
    out = {}
    for dirpath, _, filenames in os.walk(folder):
        for fn in filenames:
            p = Path(dirpath) / fn
            try:
                out[str(p.relative_to(folder))] = p.stat().st_size
            except FileNotFoundError:
                pass
    return out


def rank_exit_grace() -> float:
    """How long code whose segments are over may take to return (0: for ever)."""
    try:
        return float(os.environ.get("ASHA_RANK_EXIT_GRACE_S", RANK_EXIT_GRACE_S))
    except ValueError:
        return RANK_EXIT_GRACE_S


def _exit_if_stuck(rank: int) -> None:
    """A rank of a multi-rank trial whose segments are over (its results are published) exits
    if the trial's code has not returned within the grace: torch 2.x's gloo teardown (a DDP
    reducer or process group freed after a peer has left) can hang for ever, holding the job
    and its GPUs. A C-level timer (faulthandler's), which fires even while that teardown holds
    the GIL; the job cancels it once the code returns (jobmain: ``_execute``)."""
    import faulthandler

    grace = rank_exit_grace()
    if grace > 0:
        print(f"asha_hpc: rank {rank}: the trial's segments are over; if its code has not "
              f"returned in {grace:g} s (a hung process-group teardown), this process exits "
              f"then, printing where it was", file=sys.stderr, flush=True)
        faulthandler.dump_traceback_later(grace, exit=True)


def _torch_dist():
    """torch.distributed if the user's code imported torch and initialised a process group."""

    torch = sys.modules.get("torch")
    if torch is None:
        return None
    dist = torch.distributed
    return dist if dist.is_available() and dist.is_initialized() else None


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)

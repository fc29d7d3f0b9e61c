"""What the framework callbacks share: walking a trial's segments from inside a training loop
that the framework owns (the callback sees positions, the loop keeps going until told to stop).

At each segment's length a callback calls ``SegmentWalk.finish``: the framework's checkpoint is
published as the trial's checkpoint (with the metrics it reports, so that a job that died after
publishing it reports them without training again), the metrics are reported, and the walk moves
to the trial's next segment when the job continues in place, or ends (the loop stops).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import FatalTrialError, TrainingEndedEarly
from ..job import loader_workers
from ..job.trial import Segment, Trial
from ..protocol.checkpoints import checkpoint_length

METRICS_FILE = "asha_metrics.json"  # in each checkpoint the callbacks publish


class IntegrationError(FatalTrialError):
    """A callback used in a way that cannot work (the message says what to change). The
    training script is the same for every trial, so every trial would fail alike: the search
    stops at the first one."""


def ended_early(who: str, position: int, unit: str, target: int, what: str,
                reported: bool = False) -> TrainingEndedEarly:
    """The error for training that something other than the callback ended (``what``: the
    framework's usual suspects) at ``position``, before the segment's length ``target``;
    ``reported``: the final model's metrics were reported for the segment."""
    if reported:
        return TrainingEndedEarly(
            f"{who}: training stopped at {position} {unit}, before the segment's length "
            f"{target} ({what}): the model is final, and its result at {position} stands for "
            f"this segment and any promotion, without more training")
    return TrainingEndedEarly(
        f"{who}: training stopped at {position} {unit}, before the segment's length {target}: "
        f"something else ended it ({what}). ASHA itself stops the trials that fall behind: "
        f"remove it. This trial ends with the results it reported, and is not retried")


def saved_metrics(ckpt: Path | None) -> dict[str, Any] | None:
    """The metrics a callback reported with this checkpoint, or None."""
    if ckpt is None:
        return None
    try:
        with open(ckpt / METRICS_FILE) as f:
            v = json.load(f)
    except (OSError, ValueError):
        return None
    return v if isinstance(v, dict) else None


def scalar_metrics(logged: Mapping[str, Any]) -> dict[str, Any]:
    """The one-number values among a framework's logged metrics (tensors of one element,
    numbers); the rest (histograms, strings) are left out."""
    out: dict[str, Any] = {}
    for k, v in logged.items():
        numel = getattr(v, "numel", None)
        if callable(numel):
            if numel() != 1:
                continue
            v = v.item()
        if isinstance(v, (int, float)):
            out[str(k)] = v
    return out


class SegmentWalk:
    """The trial's segments as a training callback meets them. ``monitor``: the logged metric
    that the searcher ranks by (reported under the searcher's metric name as well);
    ``who``: how the callback is named in messages."""

    def __init__(self, trial: Trial, monitor: str, who: str) -> None:
        # the framework has imported torch by now, where the job's look found none yet (code
        # that imports it inside its function)
        loader_workers.keep_through_sigterm()
        self.trial = trial
        self.monitor = monitor
        self.who = who
        self._segments: Iterator[Segment] | None = None
        self.segment: Segment | None = None  # the one being trained; None: no more
        self.interrupted = False  # stopped early (time limit, preemption): ignore what follows

    @property
    def target(self) -> int | None:
        return self.segment.length if self.segment is not None and not self.interrupted else None

    @property
    def started(self) -> bool:
        """``start`` was called: training (re)started and the walk knows where."""
        return self._segments is not None

    def start(self, position: int, resume_hint: str) -> bool:
        """Training (re)starts at ``position``. Segments the trial's latest checkpoint already
        reached are reported from the metrics saved with it. False: nothing is left to train."""
        ckpt = self.trial.latest_checkpoint
        reached = checkpoint_length(ckpt)
        unit = self.trial.length_unit
        if position == 0 and reached:
            raise IntegrationError(
                f"{self.who}: trial {self.trial.id} has a checkpoint at length {reached} "
                f"({ckpt}) but training started from scratch: {resume_hint}")
        # a start anywhere else is another trial's or run's checkpoint (a shared output folder
        # and "resume from the last checkpoint there"): its weights and optimizer would be
        # trained and reported as this trial's
        if ckpt is None and position > 0:
            raise IntegrationError(
                f"{self.who}: trial {self.trial.id} is new but training resumed at {position} "
                f"{unit}, from a checkpoint that is not this trial's (of another trial or an "
                f"earlier run, found in a shared output folder?): {resume_hint} (None for a new "
                f"trial)")
        if reached is not None and position not in (0, reached):
            raise IntegrationError(
                f"{self.who}: training resumed at {position} {unit}, but trial "
                f"{self.trial.id}'s latest checkpoint is at {reached} ({ckpt}): {resume_hint}")
        if self._segments is None:
            self._segments = self.trial.segments()
            self.segment = next(self._segments)
        while self.segment is not None and position >= self.segment.length:
            saved = saved_metrics(ckpt) if reached == position else None
            if saved is None:
                raise IntegrationError(
                    f"{self.who}: training resumed at {position} {self.trial.length_unit}, past "
                    f"the segment's length {self.segment.length}, from a checkpoint without the "
                    f"metrics it was taken with ({ckpt}): keep the trial's checkpoints to the ones "
                    f"the callback saves")
            self._report(saved)
        return self.segment is not None

    def due(self, position: int) -> bool:
        """The segment ends at ``position``."""
        t = self.target
        return t is not None and position >= t

    def finish(self, position: int, logged: Mapping[str, Any],
               save: Callable[[Path], None]) -> bool:
        """End the segment at ``position``: publish the checkpoint ``save(folder)`` writes,
        report ``logged`` (the monitored metric among them). True: the next segment continues
        in place (the loop goes on); False: the loop stops."""
        report = self._result(position, logged)
        self.checkpoint(position, save, report)
        self._report(report)
        return self.segment is not None

    def final(self, position: int, logged: Mapping[str, Any],
              save: Callable[[Path], None]) -> None:
        """Training ended for good at ``position``, before the segment's length (the
        framework's early stopping, after a validation there): checkpoint and report the final
        model's metrics for this segment; the caller then raises ``ended_early`` and the
        model's result stands for any promotion."""
        assert self.segment is not None
        report = self._result(position, logged)
        self.checkpoint(position, save, report)
        self.segment.report(report)

    def _result(self, position: int, logged: Mapping[str, Any]) -> dict[str, Any]:
        """What a segment that ends at ``position`` reports of ``logged``."""
        metrics = scalar_metrics(logged)
        if self.monitor not in metrics:
            shown = ", ".join(sorted(map(repr, logged))) or "nothing"
            raise IntegrationError(
                f"{self.who}: the monitored metric '{self.monitor}' was never logged (at "
                f"{position} {self.trial.length_unit}); logged: {shown}. Log it, or monitor "
                f"one of these")
        own = self.trial.metric
        if own != self.monitor and own in metrics and metrics[own] != metrics[self.monitor]:
            raise IntegrationError(
                f"{self.who}: the searcher's metric '{own}' is logged too "
                f"({metrics[own]!r}), and the callback would replace it with the monitored "
                f"'{self.monitor}' ({metrics[self.monitor]!r}): the search would rank trials by "
                f"'{self.monitor}' under '{own}''s name. Drop monitor= to rank by the logged "
                f"'{own}', or set searcher.metric to '{self.monitor}'")
        report = dict(metrics)
        report[own] = metrics[self.monitor]
        return report

    def checkpoint(self, position: int, save: Callable[[Path], None],
                   report: dict[str, Any] | None = None) -> None:
        with self.trial.save_checkpoint(length=position) as folder:
            save(folder)
            if report is not None and self.trial.rank == 0:
                with open(folder / METRICS_FILE, "w") as f:
                    json.dump(report, f)

    def interrupt(self, position: int, save: Callable[[Path], None]) -> None:
        """The job must leave (``trial.should_stop()``): checkpoint where training is; the
        segment continues from there in a later job."""
        self.checkpoint(position, save)
        self.interrupted = True

    def curve(self, position: int, logged: Mapping[str, Any]) -> None:
        """A learning-curve point between segment ends."""
        metrics = scalar_metrics(logged)
        if metrics:
            self.trial.report_metrics(position, metrics)

    def _report(self, metrics: dict[str, Any]) -> None:
        assert self.segment is not None and self._segments is not None
        self.segment.at_event = True
        self.segment.report(metrics)
        # the next segment: in place when the master hands it over, else the walk ends
        self.segment = next(self._segments, None)

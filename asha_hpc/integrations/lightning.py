"""PyTorch Lightning: a LightningModule's ``Trainer`` runs as an asha_hpc trial.

    from asha_hpc.integrations.lightning import AshaCallback

    def train(trial):
        cb = AshaCallback(trial, monitor="val_loss")
        trainer = L.Trainer(max_epochs=cb.max_epochs, callbacks=[cb], ...)
        trainer.fit(model, train_loader, val_loader, ckpt_path=cb.ckpt_path)

At each segment's length (after that epoch's validation) the callback saves the Trainer's own
checkpoint as the trial's checkpoint, reports the logged metrics, and goes on in place when the
master hands the trial its next segment (worker pool, ``continue_in_place``), else stops the
Trainer. ``trial.should_stop()`` (time limit, preemption) is looked at after every batch: the
callback checkpoints there and stops. Works with ``lightning`` and ``pytorch_lightning`` alike
(the callback is an instance of whichever the code imported), and under DDP with asha_hpc's
ranks (``tasks_per_node``): every rank saves its part, rank 0 reports.

The callback is the Trainer's checkpointing (a Lightning ``Checkpoint``): the Trainer then adds
no ModelCheckpoint of its own; leave ``enable_checkpointing`` at its default.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..job.trial import Trial
from .segments import IntegrationError, SegmentWalk

CKPT_FILE = "lightning.ckpt"  # the Trainer's checkpoint inside the trial's checkpoint folder
UNITS = ("epochs", "steps")
_classes: dict[tuple[type, ...], type] = {}

if TYPE_CHECKING:  # for type checkers a Lightning callback; at run time see __new__
    from lightning.pytorch.callbacks import Checkpoint as _Base
else:
    _Base = object


def _lightning_bases() -> tuple[type, ...]:
    """Lightning's Checkpoint class of each Lightning package the code imported (of both when
    both are: a Trainer accepts only its own package's callbacks); else the one installed."""
    names = [p for p in ("lightning.pytorch", "pytorch_lightning") if p in sys.modules]
    if not names:
        for p in ("lightning.pytorch", "pytorch_lightning"):
            try:
                importlib.import_module(p)
            except ImportError:
                continue
            names = [p]
            break
    if not names:
        raise IntegrationError("AshaCallback needs PyTorch Lightning: pip install 'asha-hpc[lightning]'")
    return tuple(importlib.import_module(f"{p}.callbacks").Checkpoint for p in names)


class AshaCallback(_Base):
    """``AshaCallback(trial, monitor="val_loss", unit="epochs")``.

    ``monitor``: the logged metric (``self.log``) the searcher ranks trials by; it is reported
    under the searcher's metric name too (default: the searcher's metric). ``unit``: what a
    segment's length counts, ``"epochs"`` or optimizer ``"steps"`` (``trainer.global_step``);
    by default steps when the searcher's ``max_length`` is in batches, else epochs.
    Pass ``max_epochs=cb.max_epochs`` (or ``max_steps=cb.max_steps``) and ``callbacks=[cb]`` to
    the Trainer and ``ckpt_path=cb.ckpt_path`` to ``fit``."""

    def __new__(cls, *args: Any, **kwargs: Any) -> AshaCallback:
        bases = _lightning_bases()
        if not issubclass(cls, bases):
            key = (cls,) + bases
            if key not in _classes:
                _classes[key] = type(cls.__name__, key, {"__module__": cls.__module__,
                                                         "__qualname__": cls.__qualname__})
            cls = _classes[key]
        return object.__new__(cls)

    def __init__(self, trial: Trial, monitor: str | None = None, unit: str | None = None) -> None:
        super().__init__()
        if unit is None:
            unit = "steps" if trial.length_unit == "batches" else "epochs"
        if unit not in UNITS:
            raise IntegrationError(f"AshaCallback(unit={unit!r}): give 'epochs' or 'steps'")
        if {"epochs": "batches", "steps": "epochs"}[unit] == trial.length_unit:
            raise IntegrationError(
                f"AshaCallback(unit={unit!r}) but the searcher's max_length is in "
                f"{trial.length_unit}: give unit='{'steps' if unit == 'epochs' else 'epochs'}' "
                f"or change searcher.max_length")
        self.trial = trial
        self.unit = unit
        self.monitor = monitor or trial.metric
        self._walk = SegmentWalk(trial, self.monitor, f"AshaCallback(monitor={self.monitor!r})")
        self._pending: int | None = None  # steps: the segment ends after this validation

    # ------------------------------------------------------------------ for the Trainer
    @property
    def max_epochs(self) -> int | None:
        """The Trainer's ``max_epochs``: the searcher's max_length in epochs; -1 (no limit:
        the callback ends training) with unit steps."""
        return self.trial.max_length if self.unit == "epochs" else -1

    @property
    def max_steps(self) -> int:
        """The Trainer's ``max_steps``: the searcher's max_length with unit steps, else -1."""
        if self.unit == "steps" and self.trial.max_length is not None:
            return self.trial.max_length
        return -1

    @property
    def ckpt_path(self) -> str | None:
        """The trial's latest Lightning checkpoint file for ``trainer.fit(ckpt_path=...)``,
        or None for a new trial."""
        latest = self.trial.latest_checkpoint
        if latest is None or not (latest / CKPT_FILE).is_file():
            return None
        return str(latest / CKPT_FILE)

    # ------------------------------------------------------------------ Lightning hooks
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage != "fit" or self.trial.max_length is None:
            return
        want = self.trial.max_length
        ours, other = ("max_epochs", "max_steps") if self.unit == "epochs" else ("max_steps", "max_epochs")
        if getattr(trainer, ours) != want:
            raise IntegrationError(
                f"AshaCallback: Trainer({ours}={getattr(trainer, ours)}) but the searcher's "
                f"max_length is {want} {self.unit}: pass Trainer({ours}=cb.{ours})")
        if getattr(trainer, other) not in (-1, None):
            raise IntegrationError(
                f"AshaCallback: Trainer({other}={getattr(trainer, other)}) would end training "
                f"before the segments do: leave {other} unset (segments are in {self.unit})")

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if not self._walk.start(self._position(trainer),
                                "pass trainer.fit(..., ckpt_path=cb.ckpt_path)"):
            trainer.should_stop = True  # every segment was already done: nothing to train

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        walk = self._walk
        if walk.target is None or self._pending is not None:
            return
        if self.unit == "steps" and walk.due(trainer.global_step):
            if self._validates(trainer):
                # Lightning validates after this batch when should_stop is set (as for early
                # stopping); the segment ends in on_validation_end, with its metrics
                self._pending = trainer.global_step
                trainer.should_stop = True
            else:
                self._finish(trainer, trainer.global_step)
            return
        if self.trial.should_stop():  # a collective under DDP: every rank calls it here
            walk.interrupt(self._position(trainer), lambda d: trainer.save_checkpoint(d / CKPT_FILE))
            trainer.should_stop = True

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking or self._walk.target is None:
            return
        if self._pending is not None:
            position, self._pending = self._pending, None
            self._finish(trainer, position)
        elif self.unit == "steps":
            self._walk.curve(trainer.global_step, trainer.callback_metrics)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self.unit != "epochs" or self._walk.target is None:
            return
        epochs = trainer.current_epoch + 1  # this epoch is done; Lightning counts it after the hook
        if self._walk.due(epochs):
            self._finish(trainer, epochs)
        else:
            self._walk.curve(epochs, trainer.callback_metrics)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        walk = self._walk
        if walk.target is not None:
            raise IntegrationError(
                f"AshaCallback: the Trainer stopped at {self._position(trainer)} {self.unit}, "
                f"before the segment's length {walk.target}: something else ended training "
                f"(EarlyStopping, max_time, limits on the Trainer); let the callback end it")

    # ------------------------------------------------------------------ helpers
    def _position(self, trainer: Any) -> int:
        return trainer.current_epoch if self.unit == "epochs" else trainer.global_step

    @staticmethod
    def _validates(trainer: Any) -> bool:
        n = trainer.check_val_every_n_epoch
        return bool(trainer.enable_validation) and (n is None or (trainer.current_epoch + 1) % n == 0)

    def _finish(self, trainer: Any, position: int) -> None:
        goes_on = self._walk.finish(position, trainer.callback_metrics,
                                    lambda d: trainer.save_checkpoint(Path(d) / CKPT_FILE))
        trainer.should_stop = not goes_on

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

from ..job.command_trial import command_trial, outside_any_job
from ..job.trial import Trial
from .segments import IntegrationError, SegmentWalk, ended_early

CKPT_FILE = "lightning.ckpt"  # the Trainer's checkpoint inside the trial's checkpoint folder
UNITS = ("epochs", "steps")
_classes: dict[tuple[type, ...], type] = {}
_inert_classes: dict[tuple[type, ...], type] = {}  # AshaCallback() outside any job, per bases

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


def _rng_states() -> dict[str, Any]:
    """Python's, numpy's, torch's (and CUDA's, once used) random states, in types a checkpoint
    loaded with ``weights_only`` accepts (lists, ints, tensors)."""
    import random

    import numpy as np
    import torch

    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    version, internal, gauss_next = random.getstate()
    out: dict[str, Any] = {"python": [version, list(internal), gauss_next],
                           "numpy": [str(kind), np.asarray(keys).tolist(), int(pos),
                                     int(has_gauss), float(gauss)],
                           "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def _set_rng_states(rng: dict[str, Any]) -> None:
    import random

    import numpy as np
    import torch

    version, internal, gauss_next = rng["python"]
    random.setstate((version, tuple(internal), gauss_next))
    kind, keys, pos, has_gauss, gauss = rng["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


class AshaCallback(_Base):
    """``AshaCallback(trial, monitor="val_loss", unit="epochs")``.

    ``monitor``: the logged metric (``self.log``) the searcher ranks trials by; it is reported
    under the searcher's metric name too (default: the searcher's metric). ``unit``: what a
    segment's length counts, ``"epochs"`` or optimizer ``"steps"`` (``trainer.global_step``);
    by default steps when the searcher's ``max_length`` is in batches, else epochs.
    Pass ``max_epochs=cb.max_epochs`` (or ``max_steps=cb.max_steps``) and ``callbacks=[cb]`` to
    the Trainer and ``ckpt_path=cb.ckpt_path`` to ``fit``. In a script run as a command
    entrypoint, leave out ``trial`` (it is read from the job's variables) and pass the
    Trainer ``max_epochs`` (or ``max_steps``) ``${ASHA_MAX_LENGTH}``."""

    def __new__(cls, *args: Any, **kwargs: Any) -> AshaCallback:
        bases = _lightning_bases()
        if (args[0] if args else kwargs.get("trial")) is None and outside_any_job():
            # a script run by hand (LightningCLI's --help, a debugging run): as before
            return _inert(bases)
        if not issubclass(cls, bases):
            key = (cls,) + bases
            if key not in _classes:
                _classes[key] = type(cls.__name__, key, {"__module__": cls.__module__,
                                                         "__qualname__": cls.__qualname__})
            cls = _classes[key]
        return object.__new__(cls)

    def __init__(self, trial: Trial | None = None, monitor: str | None = None,
                 unit: str | None = None) -> None:
        super().__init__()
        if trial is None:  # a script the job runs as a command: its trial, from the environment
            trial = command_trial()
        if unit is None:
            unit = "steps" if trial.length_unit in ("batches", "steps") else "epochs"
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
        # (global step, monitored value) at the last validation: a segment that ends where none
        # ran must not be ranked by an older one
        self._validated: tuple[int, Any] | None = None

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
    def state_dict(self) -> dict[str, Any]:
        """Kept in the Trainer's checkpoint: the random-number states when it was taken, which
        Lightning does not save. A trial resumed from it in a new job then draws the shuffles
        and dropout masks it would have drawn going on in place (its code seeds again at its
        start). One rank's states only: with several ranks each keeps its own."""
        return {"rng": _rng_states()} if self.trial.world_size == 1 else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        rng = state_dict.get("rng")
        if isinstance(rng, dict) and self.trial.world_size == 1:
            _set_rng_states(rng)

    def __reduce_ex__(self, protocol: Any) -> Any:
        # Lightning's ddp_spawn (and any spawn) pickles the Trainer for processes it starts;
        # a trial's processes are asha_hpc's to start
        raise IntegrationError(
            "AshaCallback cannot go to processes Lightning spawns (strategy='ddp_spawn', "
            "'fsdp_spawn', or the notebook launcher): use strategy='ddp' and let asha_hpc start "
            "the processes, local.tasks_per_node (slurm.tasks_per_node, slurm.nodes) = the "
            "Trainer's devices x num_nodes")

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if trainer.world_size != self.trial.world_size:
            # Lightning's own launcher (devices=2 in a trial of one process) re-runs the job's
            # command: a second copy of the job, and two trials' worth of files in one
            raise IntegrationError(
                f"AshaCallback: the Trainer runs {trainer.world_size} processes (devices x "
                f"num_nodes) but asha_hpc started {self.trial.world_size} for the trial: "
                f"asha_hpc starts a trial's processes itself, so set local.tasks_per_node "
                f"(slurm.tasks_per_node, slurm.nodes) to the Trainer's devices x num_nodes, "
                f"and devices=trial.world_size // num_nodes")
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
        for name in ("min_epochs", "min_steps"):
            if (getattr(trainer, name) or 0) > 1:  # Lightning: 1 when min_steps alone is set
                raise IntegrationError(
                    f"AshaCallback: Trainer({name}={getattr(trainer, name)}) would train past "
                    f"the end of a shorter segment, and the extra training would be thrown away "
                    f"(the next segment continues from the segment's end): leave {name} unset")
        mine = next(i for i, c in enumerate(trainer.callbacks) if c is self)
        later = [type(c).__name__ for c in trainer.callbacks[mine + 1:]
                 if isinstance(c, _lightning_bases())]
        if later:  # Lightning runs checkpoint callbacks last, in the order given
            raise IntegrationError(
                f"AshaCallback comes before {', '.join(later)} in the Trainer's callbacks: the "
                f"checkpoint it saves at a segment's end would hold what {later[0]} recorded "
                f"one epoch or validation before (its best and top-k files), and a resumed "
                f"trial would go on from that: put AshaCallback last, callbacks=[..., cb]")
        every = trainer.check_val_every_n_epoch
        if every not in (None, 1) and trainer.enable_validation:
            raise IntegrationError(
                f"AshaCallback: Trainer(check_val_every_n_epoch={every}) skips the validation at "
                f"segment ends that fall between, and the trial would be ranked by an older "
                f"validation, or by none: leave it at 1 (the callback makes the Trainer validate "
                f"at each segment's end whatever val_check_interval says)")

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        _stop_signals_to_the_trial(trainer)
        if not self._walk.start(self._position(trainer),
                                "pass trainer.fit(..., ckpt_path=cb.ckpt_path)"):
            trainer.should_stop = True  # every segment was already done: nothing to train

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        # Lightning skips the training loop, on_train_start included, when the checkpoint it
        # resumes is already at max_epochs / max_steps: the last segment's, published by a job
        # killed before it reported. The walk reports the metrics saved with it
        if not self._walk.started:
            self._walk.start(self._position(trainer), "pass trainer.fit(..., ckpt_path=cb.ckpt_path)")

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
        self._validated = (trainer.global_step, self._monitored(trainer))
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
            # Trainer(max_time=...) is a Timer callback; the others name themselves
            present = [("Trainer(max_time=...)" if type(cb).__name__ == "Timer" else
                        type(cb).__name__) for cb in getattr(trainer, "callbacks", [])
                       if any(c.__name__ in ("EarlyStopping", "Timer") for c in type(cb).__mro__)]
            position = self._position(trainer)
            seen = self._validated
            # validated where it stopped (EarlyStopping decides on a validation): the model is
            # final, and that validation is its result
            final = seen is not None and seen[0] == trainer.global_step and \
                seen[1] is not None and position > 0
            if final:
                walk.final(position, trainer.callback_metrics,
                           lambda d: trainer.save_checkpoint(Path(d) / CKPT_FILE))
            raise ended_early("AshaCallback", position, self.unit, walk.target,
                              f"{' or '.join(present)}, in the Trainer's callbacks" if present else
                              "EarlyStopping, Trainer(max_time=...), or trainer.should_stop "
                              "set in the model", reported=final)

    # ------------------------------------------------------------------ helpers
    def _position(self, trainer: Any) -> int:
        return trainer.current_epoch if self.unit == "epochs" else trainer.global_step

    @staticmethod
    def _validates(trainer: Any) -> bool:
        n = trainer.check_val_every_n_epoch
        return bool(trainer.enable_validation) and (n is None or (trainer.current_epoch + 1) % n == 0)

    def _monitored(self, trainer: Any) -> Any:
        v = trainer.callback_metrics.get(self.monitor)
        return v.item() if hasattr(v, "item") else v

    def _finish(self, trainer: Any, position: int) -> None:
        seen = self._validated
        if seen is not None and seen[0] != trainer.global_step and seen[1] is not None \
                and seen[1] == self._monitored(trainer):  # unchanged since an older validation
            raise IntegrationError(
                f"AshaCallback: no validation ran at this segment's end ({position} {self.unit}, "
                f"step {trainer.global_step}): '{self.monitor}' is the one validated at step "
                f"{seen[0]}. With segments in epochs, validate at the end of every epoch: leave "
                f"val_check_interval at 1.0, or give a whole number of batches that divides an "
                f"epoch; or give max_length in batches (segments in steps)")
        goes_on = self._walk.finish(position, trainer.callback_metrics,
                                    lambda d: trainer.save_checkpoint(Path(d) / CKPT_FILE))
        trainer.should_stop = not goes_on


def _stop_signals_to_the_trial(trainer: Any) -> None:
    """A SIGTERM goes back to the handler the trial had before the Trainer's, which only marks
    the stop: the callback sees it after a batch (``trial.should_stop()``, on which the ranks
    agree together under DDP), saves, and ends training. Lightning's own handler makes its loop
    raise at the end of the batch the signal came in, whether the callback has looked or not: a
    signal that lands after the callback's hook of that batch (the model's own hooks run later)
    would end the training with nothing saved. Under DDP, Lightning's handler also broadcasts a
    tensor from inside the signal handler, which runs on each rank wherever its training is:
    one rank's broadcast meets another's gradient all-reduce, and every rank hangs until Slurm
    kills the job (Lightning issue 20806). The Trainer puts its handlers back as before when it
    tears down."""
    import signal

    connector = getattr(trainer, "_signal_connector", None)
    before = getattr(connector, "_original_handlers", {}).get(signal.SIGTERM)
    if callable(before):
        signal.signal(signal.SIGTERM, before)


def _inert(bases: tuple[type, ...]) -> Any:
    """``AshaCallback()`` outside any asha_hpc job: a Lightning callback that does nothing,
    with nothing to resume and no length to impose."""
    if bases not in _inert_classes:
        _inert_classes[bases] = type("AshaCallback", bases, {
            "__module__": __name__, "ckpt_path": None, "max_epochs": None, "max_steps": -1,
            "__doc__": _inert.__doc__})
    return _inert_classes[bases]()

"""Keras 3: ``model.fit`` runs as an asha_hpc trial.

    from asha_hpc.integrations.keras import AshaCallback

    def train(trial):
        cb = AshaCallback(trial, monitor="val_loss")
        model = keras.models.load_model(cb.restore_path) if cb.restore_path else build(trial)
        model.fit(x, y, validation_split=0.2, initial_epoch=cb.initial_epoch, epochs=cb.epochs,
                  callbacks=[..., cb])

Segments count epochs. At each segment's length the callback saves the model (``model.keras``:
weights, optimizer, compile settings) as the trial's checkpoint, reports that epoch's ``logs``,
and goes on in place when the master hands the trial its next segment (warm workers), else
stops ``fit``. Every epoch's ``logs`` make the learning curve. ``trial.should_stop()`` (time
limit, preemption) is looked at after every epoch: the callback checkpoints there and stops.
Training that something else stopped before the segment's length (``EarlyStopping``) ends the
trial with that epoch's result, final. ``fit`` without ``initial_epoch=cb.initial_epoch`` on a
restored trial, or with other ``epochs``, stops the search at the first trial with what to
change: otherwise a promoted trial would train more epochs than the search counts.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..job import notes
from ..job.command_trial import command_trial, outside_any_job
from ..job.trial import Trial
from ..protocol.checkpoints import checkpoint_length
from .segments import IntegrationError, SegmentWalk, ended_early

MODEL_FILE = "model.keras"  # the model inside the trial's checkpoint folder
_classes: dict[type, type] = {}
_inert_classes: dict[type, type] = {}  # AshaCallback() outside any job, per Keras Callback

if TYPE_CHECKING:  # for type checkers a Keras callback; at run time see __new__
    from keras.callbacks import Callback as _Base
else:
    _Base = object


def _keras_callback() -> type:
    try:
        keras = importlib.import_module("keras")
    except ImportError:
        raise IntegrationError("AshaCallback needs Keras 3: pip install keras (and set "
                               "KERAS_BACKEND in environment_variables)") from None
    return keras.callbacks.Callback


class AshaCallback(_Base):
    """``AshaCallback(trial, monitor="val_loss")``.

    ``monitor``: the logged metric (a key of Keras's ``logs``) the searcher ranks trials by;
    it is reported under the searcher's metric name too (default: the searcher's metric).
    Give ``fit`` ``initial_epoch=cb.initial_epoch``, ``epochs=cb.epochs`` and the callback, and
    start from ``keras.models.load_model(cb.restore_path)`` when it is not None. In a script
    run as a command entrypoint, leave out ``trial`` (it is read from the job's variables)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> AshaCallback:
        base = _keras_callback()
        if (args[0] if args else kwargs.get("trial")) is None and outside_any_job():
            return _inert(base)  # a script run by hand: as before
        if not issubclass(cls, base):
            if cls not in _classes:
                _classes[cls] = type(cls.__name__, (cls, base), {
                    "__module__": cls.__module__, "__qualname__": cls.__qualname__})
            cls = _classes[cls]
        return object.__new__(cls)

    def __init__(self, trial: Trial | None = None, monitor: str | None = None) -> None:
        super().__init__()
        if trial is None:  # a script the job runs as a command: its trial, from the environment
            trial = command_trial()
        if trial.length_unit in ("batches", "records", "steps"):
            raise IntegrationError(
                f"AshaCallback: the searcher's max_length is in {trial.length_unit}, and the "
                f"Keras callback counts epochs: give max_length in epochs")
        self.trial = trial
        self.monitor = monitor or trial.metric
        self._walk = SegmentWalk(trial, self.monitor, f"AshaCallback(monitor={self.monitor!r})")
        self._epoch = 0  # epochs done
        self._logs: dict[str, Any] | None = None  # the last epoch's
        # each epoch's weights' fingerprint and logs: EarlyStopping(restore_best_weights=True),
        # listed before this callback, puts an earlier epoch's weights back before on_train_end
        self._seen: dict[int, tuple[str, dict[str, Any]]] = {}

    # ------------------------------------------------------------------ for fit
    @property
    def restore_path(self) -> str | None:
        """The trial's latest saved model for ``keras.models.load_model``, or None (a new
        trial: build the model)."""
        latest = self.trial.latest_checkpoint
        if latest is None or not (latest / MODEL_FILE).is_file():
            return None
        return str(latest / MODEL_FILE)

    @property
    def initial_epoch(self) -> int:
        """``fit(initial_epoch=...)``: the epochs the restored model has trained (0: new)."""
        return checkpoint_length(self.trial.latest_checkpoint) or 0 \
            if self.restore_path is not None else 0

    @property
    def epochs(self) -> int | None:
        """``fit(epochs=...)``: the searcher's max_length; the callback stops ``fit`` at the
        end of each segment that does not go on in place."""
        return self.trial.max_length

    # ------------------------------------------------------------------ Keras hooks
    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._walk.started:
            return
        want = self.trial.max_length
        if want is not None and self.params.get("epochs") != want:
            raise IntegrationError(
                f"AshaCallback: fit(epochs={self.params.get('epochs')}) but the searcher's "
                f"max_length is {want} epochs: pass fit(epochs=cb.epochs) (the callback ends "
                f"each segment)")
        self._epoch = epoch
        if not self._walk.start(epoch, "pass fit(..., initial_epoch=cb.initial_epoch) and start "
                                       "from keras.models.load_model(cb.restore_path)"):
            self.model.stop_training = True  # every segment was already done

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        walk = self._walk
        self._epoch, self._logs = epoch + 1, dict(logs or {})
        if walk.target is None:
            return
        self._seen[self._epoch] = (_fingerprint(self.model), self._logs)
        if walk.due(self._epoch):
            if not walk.finish(self._epoch, self._logs, self._save):
                self.model.stop_training = True
            # else the next segment goes on in place, unless EarlyStopping stopped fit here
            # (then on_train_end makes this epoch the trial's final result)
            return
        walk.curve(self._epoch, self._logs)
        if self.trial.should_stop():
            walk.interrupt(self._epoch, self._save)
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        walk = self._walk
        if not walk.started:  # initial_epoch at epochs: fit ran no epoch (the last segment's
            # model, published by a job killed before it reported)
            walk.start(self.initial_epoch, "pass fit(..., initial_epoch=cb.initial_epoch)")
            return
        if walk.target is None:
            return
        # something else ended fit before the segment's length: EarlyStopping decides on an
        # epoch's logs, so the model is final and that epoch is its result
        final = self._logs is not None and self.monitor in self._logs and self._epoch > 0
        if final:
            walk.final(self._epoch, self._restored_logs(), self._save)
        raise ended_early("AshaCallback", self._epoch, "epochs", walk.target,
                          "EarlyStopping, or model.stop_training set by a callback", reported=final)

    def _save(self, folder: Path) -> None:
        self.model.save(Path(folder) / MODEL_FILE)

    def _restored_logs(self) -> dict[str, Any]:
        """The logs of the epoch whose weights the model holds now: the last epoch's, or the
        one EarlyStopping(restore_best_weights=True) put back (the saved model's result)."""
        last = self._logs or {}
        now = _fingerprint(self.model) if self._seen else ""
        if not self._seen or self._seen.get(self._epoch, ("", {}))[0] == now:
            return last
        back = [e for e, (f, _) in self._seen.items() if f == now]
        if not back:
            notes.warn(f"AshaCallback: the model's weights changed after epoch {self._epoch} "
                       f"(a callback before this one set them): the saved model is not the one "
                       f"the result was measured on; list AshaCallback first in callbacks")
            return last
        epoch = max(back)
        print(f"asha_hpc: EarlyStopping restored epoch {epoch}'s weights: the trial's result is "
              f"that epoch's ({self.monitor}={self._seen[epoch][1].get(self.monitor)}), the "
              f"model saved", file=sys.stderr, flush=True)
        return self._seen[epoch][1]


def _fingerprint(model: Any) -> str:
    """A digest of the model's first and last weights: which epoch's weights it holds."""
    import hashlib

    import keras
    import numpy as np

    weights = model.weights
    h = hashlib.blake2b(digest_size=16)
    for w in (weights[:1] + weights[-1:]) if weights else []:
        h.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w)).tobytes())
    return h.hexdigest()


def _inert(base: type) -> Any:
    """``AshaCallback()`` outside any asha_hpc job: a Keras callback that does nothing, with
    nothing to restore and no length to impose (``epochs=cb.epochs or args.epochs``)."""
    if base not in _inert_classes:
        _inert_classes[base] = type("AshaCallback", (base,), {
            "__module__": __name__, "restore_path": None, "initial_epoch": 0, "epochs": None,
            "__doc__": _inert.__doc__})
    return _inert_classes[base]()

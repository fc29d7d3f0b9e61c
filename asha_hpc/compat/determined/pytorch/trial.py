"""What a user's ``PyTorchTrial`` subclasses and returns: the trial base class, callbacks, the
LR-scheduler wrapper and metric reducers, with Determined's names and signatures."""
from __future__ import annotations

import abc
import enum
from collections.abc import Callable
from typing import Any

import numpy as np


class TrialDefinitionError(ValueError):
    """A mistake in how the trial is written (no optimizer wrapped, both evaluation methods,
    a torch DataLoader, an unknown hyperparameter): every trial would repeat it, so in a
    search it stops the search at once (a ``fatal`` report line) instead of being retried."""


class PyTorchTrial:
    """Subclass it: ``__init__(self, context)`` wraps the models and optimizers,
    ``build_training_data_loader``, ``build_validation_data_loader``, ``train_batch`` and one
    of ``evaluate_batch`` / ``evaluate_full_dataset``."""

    def __init__(self, context: Any) -> None:
        self.context = context

    def train_batch(self, batch: Any, epoch_idx: int, batch_idx: int) -> Any:
        """Train on one batch; return a dict of metrics (or the loss tensor)."""
        raise NotImplementedError("PyTorchTrial.train_batch() is not defined")

    def build_training_data_loader(self) -> Any:
        raise NotImplementedError("PyTorchTrial.build_training_data_loader() is not defined")

    def build_validation_data_loader(self) -> Any:
        raise NotImplementedError("PyTorchTrial.build_validation_data_loader() is not defined")

    def build_callbacks(self) -> dict[str, PyTorchCallback]:
        return {}

    def evaluate_batch(self, batch: Any, batch_idx: int) -> dict[str, Any]:
        raise NotImplementedError

    def evaluation_reducer(self) -> Reducer | dict[str, Reducer]:
        """How ``evaluate_batch``'s per-batch values become one (per metric, or for all)."""
        return Reducer.AVG

    def evaluate_full_dataset(self, data_loader: Any) -> dict[str, Any]:
        raise NotImplementedError

    def get_batch_length(self, batch: Any) -> int:
        """The number of records in ``batch`` (its first tensor's first dimension)."""
        first: Any = batch
        while isinstance(first, (list, tuple, dict)) and first:
            first = next(iter(first.values())) if isinstance(first, dict) else first[0]
        shape = getattr(first, "shape", None)
        return int(shape[0]) if shape else 1


class PyTorchCallback:
    """Hooks the Trainer calls (every one optional); ``state_dict`` / ``load_state_dict`` make a
    callback's state part of the trial's checkpoint."""

    def on_trial_startup(self, first_batch_idx: int, checkpoint_uuid: str | None) -> None: ...
    def on_trial_shutdown(self) -> None: ...
    def on_training_start(self) -> None: ...
    def on_training_epoch_start(self, epoch_idx: int) -> None: ...
    def on_training_epoch_end(self, epoch_idx: int) -> None: ...
    def on_training_workload_end(self, avg_metrics: dict[str, Any],
                                 batch_metrics: list[dict[str, Any]]) -> None: ...
    def on_validation_start(self) -> None: ...
    def on_validation_epoch_start(self) -> None: ...
    def on_validation_epoch_end(self, outputs: list[Any]) -> None: ...
    def on_validation_end(self, metrics: dict[str, Any]) -> None: ...
    def on_checkpoint_load_start(self, checkpoint: dict[str, Any]) -> None: ...
    def on_checkpoint_save_start(self, checkpoint: dict[str, Any]) -> None: ...
    def on_checkpoint_end(self, checkpoint_dir: str) -> None: ...
    def on_checkpoint_write_end(self, checkpoint_dir: str) -> None: ...
    def on_checkpoint_upload_end(self, uuid: str) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


class LRScheduler:
    """A torch LR scheduler and when the Trainer steps it (``wrap_lr_scheduler``)."""

    class StepMode(enum.Enum):
        STEP_EVERY_EPOCH = 1
        STEP_EVERY_BATCH = 2
        MANUAL_STEP = 3
        STEP_EVERY_OPTIMIZER_STEP = 4

    def __init__(self, scheduler: Any, step_mode: LRScheduler.StepMode, frequency: int = 1) -> None:
        if not isinstance(step_mode, LRScheduler.StepMode):
            raise TypeError(f"wrap_lr_scheduler(): step_mode must be a "
                            f"LRScheduler.StepMode, got {type(step_mode).__name__}")
        if int(frequency) < 1:
            raise ValueError(f"wrap_lr_scheduler(): frequency must be at least 1, got {frequency}")
        self._scheduler = scheduler
        self._step_mode = step_mode
        self._frequency = int(frequency)

    def step(self, *args: Any, **kwargs: Any) -> None:
        self._scheduler.step(*args, **kwargs)

    def get_last_lr(self) -> list[float]:
        return list(self._scheduler.get_last_lr())

    def state_dict(self) -> dict[str, Any]:
        return dict(self._scheduler.state_dict())

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._scheduler.load_state_dict(state_dict)


class Reducer(enum.Enum):
    """How per-batch validation values become one."""

    AVG = 1
    SUM = 2
    MAX = 3
    MIN = 4


def reduce_values(reducer: Reducer, values: list[Any], weights: list[int]) -> Any:
    """``values`` (one per batch; arrays allowed) reduced as ``reducer`` says; AVG weighs each
    batch by its record count, so a short last batch counts for what it holds."""
    arr = np.asarray(values, dtype=np.float64)
    if reducer == Reducer.AVG:
        w = np.asarray(weights, dtype=np.float64)
        w = w.reshape((-1,) + (1,) * (arr.ndim - 1))
        return (arr * w).sum(axis=0) / max(float(w.sum()), 1.0)
    if reducer == Reducer.SUM:
        return arr.sum(axis=0)
    if reducer == Reducer.MAX:
        return arr.max(axis=0)
    return arr.min(axis=0)


class MetricReducer(metaclass=abc.ABCMeta):
    """A metric computed over a whole pass (``context.wrap_reducer``): ``update`` it from
    ``train_batch`` / ``evaluate_batch``; the Trainer calls ``reset``, ``per_slot_reduce`` and
    ``cross_slot_reduce``."""

    @abc.abstractmethod
    def reset(self) -> None: ...

    @abc.abstractmethod
    def per_slot_reduce(self) -> Any: ...

    @abc.abstractmethod
    def cross_slot_reduce(self, per_slot_metrics: list[Any]) -> Any: ...


class _SimpleReducer(MetricReducer):
    """``wrap_reducer(fn)``: ``update(value)`` collects, ``fn(values)`` reduces them all."""

    def __init__(self, fn: Callable[[list[Any]], Any]) -> None:
        self.fn = fn
        self.values: list[Any] = []

    def reset(self) -> None:
        self.values = []

    def update(self, value: Any) -> None:
        self.values.append(value)

    def per_slot_reduce(self) -> Any:
        return self.values

    def cross_slot_reduce(self, per_slot_metrics: list[Any]) -> Any:
        return self.fn([v for slot in per_slot_metrics for v in slot])

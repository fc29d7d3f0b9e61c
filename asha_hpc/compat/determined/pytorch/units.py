"""Lengths and periods of ``det.pytorch``'s Trainer: ``Batch(n)`` and ``Epoch(n)`` (a period,
or a schedule when given a container: ``Batch([5, 30, 45])``), as Determined defines them."""
from __future__ import annotations

from collections import abc
from typing import Any


class TrainUnit:
    def __init__(self, value: int | abc.Container[int]) -> None:
        self.value = value

    def should_stop(self, step_num: int) -> bool:
        """Whether ``step_num`` (batches or epochs trained) ends a period of this unit: a
        multiple of an int value (below 1: every step), a member of a container."""
        if isinstance(self.value, int):
            if self.value < 1:
                return True
            return step_num > 0 and step_num % self.value == 0
        return step_num in self.value

    def __repr__(self) -> str:
        return f"{type(self).__name__}(value={self.value!r})"

    def __eq__(self, other: Any) -> bool:
        return type(self) is type(other) and self.value == other.value

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self.value)))


class Batch(TrainUnit):
    """A number of batches (the per-slot batches each rank trains)."""

    @staticmethod
    def _from_records(records: int, global_batch_size: int) -> Batch:
        return Batch(max(records // global_batch_size, 1))


class Epoch(TrainUnit):
    """A number of passes over the training data loader (its ``len``)."""


class _ShouldExit(Exception):
    """Leaves the training loop from inside it (preemption, the rung reached, a stop request)."""

    def __init__(self, skip_exit_checkpoint: bool = False) -> None:
        super().__init__()
        self.skip_exit_checkpoint = skip_exit_checkpoint

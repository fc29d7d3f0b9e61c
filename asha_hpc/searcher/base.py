"""The searcher's vocabulary: events in, actions out.

A searcher is a pure, deterministic state machine. It never touches files, clocks or global
random state; the master feeds it events in a journaled order and carries out its actions. The
same config, seed and event order always give the same actions, so the master's state after a
crash is ``replay(journal)``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


# ----------------------------------------------------------------------------- actions
@dataclass(frozen=True)
class CreateTrial:
    """Start a new trial with these hyperparameters and train it from scratch to ``length``."""

    trial_id: int
    bracket: int
    hparams: dict[str, Any]
    length: int


@dataclass(frozen=True)
class ResumeTrial:
    """Continue an existing trial from its latest checkpoint until its total length is ``length``."""

    trial_id: int
    length: int


@dataclass(frozen=True)
class FinishTrial:
    """The trial will train no more. ``reason``: ``top`` (completed the top rung) or ``stopped``
    (stop_once: not good enough to continue)."""

    trial_id: int
    reason: str


@dataclass(frozen=True)
class SearchDone:
    """Nothing in flight and nothing left to start: the search is over."""


Action = CreateTrial | ResumeTrial | FinishTrial | SearchDone


# ----------------------------------------------------------------------------- events
@dataclass(frozen=True)
class SegmentCompleted:
    """The trial trained to ``length`` and reported ``metric`` (as the user reported it; the
    searcher negates it itself when ``smaller_is_better`` is false). NaN counts as the worst."""

    trial_id: int
    length: int
    metric: float
    # False: no training went into it (a final model's result carried to the promoted length):
    # the units the promotion reserved are given back to max_compute
    trained: bool = True


@dataclass(frozen=True)
class TrialFailed:
    """The trial failed for good (``max_restarts`` exhausted, or cancelled by the user)."""

    trial_id: int


@dataclass(frozen=True)
class TrialInvalid:
    """The training code raised InvalidHP: the trial does not count and is replaced."""

    trial_id: int


@dataclass(frozen=True)
class TrialRetried:
    """A trial that failed for good while training toward ``length`` goes back into the
    search (``resume --retry-failed``, once its bug is fixed): its failure leaves the rungs and
    it trains toward ``length`` again, from its latest checkpoint."""

    trial_id: int
    length: int


Event = SegmentCompleted | TrialFailed | TrialInvalid | TrialRetried

_EVENT_TYPES = {"segment_completed": SegmentCompleted, "trial_failed": TrialFailed,
                "trial_invalid": TrialInvalid, "trial_retried": TrialRetried}
_EVENT_NAMES = {v: k for k, v in _EVENT_TYPES.items()}


def event_to_dict(ev: Event) -> dict[str, Any]:
    """A JSON-able dict for the journal (``kind`` plus the fields)."""
    d = asdict(ev)
    d["kind"] = _EVENT_NAMES[type(ev)]
    return d


def event_from_dict(d: dict[str, Any]) -> Event:
    d = dict(d)
    cls = _EVENT_TYPES[d.pop("kind")]
    return cls(**d)


# ----------------------------------------------------------------------------- status
@dataclass
class RungInfo:
    """One rung of one bracket, for status displays."""

    bracket: int
    rung: int
    length: int
    completed: int  # entries in the rung: results, and failures ranked there as the worst
    promoted: int  # trials that went on from this rung to the next
    best_metric: float | None = None  # as reported (not negated)
    failed: int = 0  # of ``completed``: trials that failed toward this rung

    @property
    def results(self) -> int:
        """Results recorded in the rung (what status and progress lines count)."""
        return self.completed - self.failed


@dataclass
class BracketInfo:
    """One bracket's plan: what ``plan --json`` prints per bracket."""

    num_rungs: int
    max_trials: int
    max_concurrent_trials: int
    rung_lengths: list[int] = field(default_factory=list)


class Searcher(Protocol):
    """What every searcher offers the master."""

    def start(self) -> list[Action]:
        """The first actions (initial trials). Call once, before any event."""

    def on_event(self, event: Event) -> list[Action]:
        """Apply one event; return the actions it causes (possibly none)."""

    @property
    def done(self) -> bool:
        """True once SearchDone has been emitted."""

    def snapshot(self) -> dict[str, Any]:
        """Canonical JSON-able state: equal snapshots mean equal states (replay tests)."""

    def rungs(self) -> list[RungInfo]:
        """Per bracket and rung counts, for status."""

    def brackets(self) -> list[BracketInfo]:
        """The bracket plan."""

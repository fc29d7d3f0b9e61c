"""Searchers: pure, deterministic state machines from events to actions (see base.py).

    searcher = make_searcher(cfg.searcher, space, seed)
    actions = searcher.start()
    actions = searcher.on_event(SegmentCompleted(trial_id, length, metric))

Every searcher is a ``BracketSearcher`` and offers, besides the ``Searcher`` protocol,
``trial_target(id)``, ``is_paused(id)``, ``trial_status(id)``, ``trial_bracket(id)`` and
``in_flight(bracket=None)``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .asha import AdaptiveASHASearcher, AsyncHalvingSearcher, BracketSearcher
from .base import (
    Action,
    BracketInfo,
    CreateTrial,
    Event,
    FinishTrial,
    ResumeTrial,
    RungInfo,
    SearchDone,
    Searcher,
    SegmentCompleted,
    TrialFailed,
    TrialInvalid,
    TrialRetried,
    event_from_dict,
    event_to_dict,
)
from .brackets import bracket_plan
from .simple import GridSearcher, RandomSearcher, SingleSearcher

if TYPE_CHECKING:  # pragma: no cover
    from ..config import SearcherConfig
    from ..space import Space

SEARCHERS = {
    "adaptive_asha": AdaptiveASHASearcher,
    "async_halving": AsyncHalvingSearcher,
    "random": RandomSearcher,
    "grid": GridSearcher,
    "single": SingleSearcher,
}


def make_searcher(cfg: SearcherConfig, space: Space, seed: int) -> BracketSearcher:
    """The searcher ``cfg.name`` names, its hyperparameter stream seeded with ``seed``."""
    try:
        cls = SEARCHERS[cfg.name]
    except KeyError:
        raise ValueError(f"unknown searcher {cfg.name!r}; one of {', '.join(SEARCHERS)}") from None
    return cls(cfg, space, seed)


__all__ = [
    "TrialRetried",
    "Action", "BracketInfo", "CreateTrial", "Event", "FinishTrial", "ResumeTrial", "RungInfo",
    "SearchDone", "Searcher", "SegmentCompleted", "TrialFailed", "TrialInvalid",
    "event_from_dict", "event_to_dict", "make_searcher", "bracket_plan", "BracketSearcher",
    "AdaptiveASHASearcher", "AsyncHalvingSearcher", "RandomSearcher", "GridSearcher",
    "SingleSearcher", "SEARCHERS",
]

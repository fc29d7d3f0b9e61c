"""``random``, ``grid`` and ``single`` (spec section 3): one bracket with one rung at
``max_length`` on the same state machine as ASHA, so they share its events, actions, snapshot
and failure handling.

- random: ``max_trials`` trials, ``max_concurrent_trials`` at a time (0: all at once); a trial
  with invalid hyperparameters is replaced by a fresh draw.
- grid: one trial per grid point, in ``Space.grid()`` order (``max_trials`` ignored); an invalid
  point is not replaced (it is one point of the grid, tried once).
- single: one trial, its hyperparameters drawn once; not replaced if invalid.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .asha import BracketSearcher, sampling
from .brackets import bracket_plan

if TYPE_CHECKING:  # pragma: no cover
    from ..config import SearcherConfig
    from ..space import Space


class RandomSearcher(BracketSearcher):
    """T trials sampled from the space, each straight to max_length; InvalidHP is replaced."""

    name = "random"
    replace_invalid = True

    def __init__(self, cfg: SearcherConfig, space: Space, seed: int) -> None:
        draw, rng, model = sampling(cfg, space, seed)
        super().__init__(bracket_plan(cfg, space), cfg.divisor, cfg.smaller_is_better, False,
                         draw, replace_invalid=self.replace_invalid, rng=rng, model=model,
                         max_compute=cfg.max_compute)


class SingleSearcher(RandomSearcher):
    """One trial to max_length (an invalid one is not replaced: the search just ends)."""

    name = "single"
    replace_invalid = False


class GridSearcher(BracketSearcher):
    name = "grid"

    def __init__(self, cfg: SearcherConfig, space: Space, seed: int) -> None:
        points = space.grid()

        def point(i: int) -> dict[str, Any]:
            return points[i]

        super().__init__(bracket_plan(cfg, space), cfg.divisor, cfg.smaller_is_better, False,
                         point, replace_invalid=False, rng=None, max_compute=cfg.max_compute)

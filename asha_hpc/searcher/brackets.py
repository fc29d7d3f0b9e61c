"""Bracket arithmetic (spec section 1 and the top of section 2), exactly as Determined does it.

Every function here is pure and small so that each rule of the spec can be tested on its own.
``bracket_plan(cfg, space)`` gives the brackets of any searcher; ``plan`` and ``make_searcher``
both use it, so what ``plan`` prints is what runs.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .base import BracketInfo

if TYPE_CHECKING:  # pragma: no cover
    from ..config import SearcherConfig
    from ..space import Space


def auto_num_rungs(max_length: int, max_trials: int, divisor: float, max_rungs: int) -> int:
    """``R = min(max_rungs, int(log(L)/log(d)) + 1, int(log(T)/log(d)) + 1)``, in floating point
    and truncated: ``log(1000)/log(10)`` is 2.9999999999999996, so it counts 2."""
    return min(max_rungs,
               int(math.log(max_length) / math.log(divisor)) + 1,
               int(math.log(max_trials) / math.log(divisor)) + 1)


def mode_bracket_sizes(mode: str, num_rungs: int) -> list[int]:
    """Bracket sizes for a mode, before sorting: aggressive ``[R]``, standard
    ``[(R-1)//2 + 1 .. R]``, conservative ``[1 .. R]``."""
    R = num_rungs
    if mode == "aggressive":
        return [R]
    if mode == "standard":
        return list(range((R - 1) // 2 + 1, R + 1))
    if mode == "conservative":
        return list(range(1, R + 1))
    raise ValueError(f"unknown mode {mode!r}")


def bracket_sizes(max_length: int, max_trials: int, divisor: float, max_rungs: int, mode: str,
                  bracket_rungs: Sequence[int] | None = None) -> list[int]:
    """Rungs per bracket, most aggressive (most rungs) first."""
    if bracket_rungs:
        sizes = [int(n) for n in bracket_rungs]
        if any(n < 1 for n in sizes):
            raise ValueError(f"bracket_rungs must be integers >= 1, got {list(bracket_rungs)}")
    else:
        sizes = mode_bracket_sizes(mode, auto_num_rungs(max_length, max_trials, divisor, max_rungs))
    return sorted(sizes, reverse=True)


def trials_per_bracket(max_trials: int, divisor: float, sizes: Sequence[int]) -> list[int]:
    """``w(n) = d**(n-1)/n``; ``t_i = max(int(w_i/sum(w) * T), 1)``; the first bracket gets
    the remainder ``max(T - sum(t), 0)``. (With more brackets than trials the sum exceeds T,
    as in Determined; ``plan`` warns about it.)"""
    weights = [divisor ** (n - 1) / n for n in sizes]
    total = sum(weights)
    t = [max(int(w / total * max_trials), 1) for w in weights]
    t[0] += max(max_trials - sum(t), 0)
    return t


def concurrency_per_bracket(max_concurrent: int, divisor: float, trials: Sequence[int]) -> list[int]:
    """``C == 0``: every bracket gets ``max(t_last, int(d))``. Otherwise ``C' = max(C, n)``,
    each bracket ``C' // n`` and the first ``C' % n`` one more."""
    n = len(trials)
    if max_concurrent == 0:
        return [max(trials[-1], int(divisor))] * n
    c = max(max_concurrent, n)
    return [c // n + (1 if i < c % n else 0) for i in range(n)]


def rung_lengths(num_rungs: int, divisor: float, max_length: int) -> list[int]:
    """``units[i] = max(int(L / d**(n-1-i)), 1)``; the top rung is ``L``."""
    return [max(int(max_length / divisor ** (num_rungs - 1 - i)), 1) for i in range(num_rungs)]


def initial_trials(num_rungs: int, divisor: float, max_trials: int, max_concurrent: int) -> int:
    """``min(c, t)`` if ``c > 0``, else ``clamp(int(d**(n-1)), 1, t)``."""
    if max_concurrent > 0:
        return min(max_concurrent, max_trials)
    return min(max(int(divisor ** (num_rungs - 1)), 1), max_trials)


def effective_concurrency(num_rungs: int, divisor: float, max_trials: int, max_concurrent: int) -> int:
    """The in-flight limit of one ASHA bracket. ``c == 0`` means Determined's one-out-one-in:
    the initial number of trials stays the limit."""
    if max_concurrent > 0:
        return max_concurrent
    return initial_trials(num_rungs, divisor, max_trials, max_concurrent)


def adaptive_brackets(max_length: int, max_trials: int, divisor: float, max_rungs: int, mode: str,
                      max_concurrent: int,
                      bracket_rungs: Sequence[int] | None = None) -> list[BracketInfo]:
    """All of section 1: the brackets of ``adaptive_asha``."""
    sizes = bracket_sizes(max_length, max_trials, divisor, max_rungs, mode, bracket_rungs)
    trials = trials_per_bracket(max_trials, divisor, sizes)
    conc = concurrency_per_bracket(max_concurrent, divisor, trials)
    return [BracketInfo(n, t, c, rung_lengths(n, divisor, max_length))
            for n, t, c in zip(sizes, trials, conc)]


def bracket_plan(cfg: SearcherConfig, space: Space | None = None) -> list[BracketInfo]:
    """The brackets of any searcher, with effective concurrency limits (never 0):

    - ``adaptive_asha``: section 1.
    - ``async_halving``: one bracket of ``num_rungs``, ``max_trials``, ``max_concurrent_trials``.
    - ``random``: one bracket, one rung at ``max_length``, ``max_trials`` trials; concurrency 0
      means all at once.
    - ``grid``: likewise with one trial per grid point (``max_trials`` ignored).
    - ``single``: one trial.
    """
    L, d, C = cfg.max_length, float(cfg.divisor), cfg.max_concurrent_trials
    name = cfg.name
    if name == "adaptive_asha":
        return adaptive_brackets(L, cfg.max_trials, d, cfg.max_rungs, cfg.mode, C, cfg.bracket_rungs)
    if name == "async_halving":
        n, t = cfg.num_rungs, cfg.max_trials
        return [BracketInfo(n, t, effective_concurrency(n, d, t, C), rung_lengths(n, d, L))]
    if name == "random":
        t = cfg.max_trials
    elif name == "grid":
        if space is None:
            raise ValueError("the grid searcher needs the space")
        t = space.grid_size()
    elif name == "single":
        t = 1
    else:
        raise ValueError(f"unknown searcher {name!r}")
    return [BracketInfo(1, t, min(C, t) if C > 0 else t, [L])]

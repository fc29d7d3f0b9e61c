"""What every model-based sampler (``searcher.sampler: tpe | gp``) shares: the configurations and
results it learns from, encoded as points of the unit cube, and its place in the journal.

    sampler = TPESampler(space, seed, random_fraction=1/3, rng=rng)   # or GPSampler
    hp = sampler.sample(trial_id)                  # at each created trial, in creation order
    sampler.observe(trial_id, length, loss)        # at each result (loss: lower is better)

Every leaf of the space is one dimension: double and int on [0, 1] (int as cells of equal
width), log on its exponent, categorical by index; constants take no dimension.

Deterministic: the random draws come from the same numpy stream ``random`` uses (so before a
model exists a model sampler creates the same trials as random), the choice "random or model"
and the model draw from a Generator seeded with (seed, trial id). A configuration drawn from a
model is also kept in ``fresh`` until the master journals it; replay hands the journaled ones
back through ``preload``, and a trial found there is never re-fitted. The first trials of
``searcher.points_to_evaluate`` take the values given over a random draw: never fitted, and
nothing to journal (the config holds them). ``prior`` adds an earlier search's results
(``searcher.warm_start``) as rows that are no trial of this one: the model can be fitted from
the first trial on.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..space import Categorical, Const, Double, Int, Log, Space

MAX_REJECTED = 64  # rejected configurations a model keeps (a draw's cost stays bounded)
_MODEL_STREAM = 0x7E5  # separates the model's per-trial Generators from other uses of the seed


class _Results:
    """The results at one length: trial row (into the encoded matrix) and loss, growing."""

    __slots__ = ("rows", "loss", "n", "own")

    def __init__(self) -> None:
        self.rows = np.empty(16, np.int64)
        self.loss = np.empty(16, np.float64)
        self.n = 0
        self.own = 0  # of them this search's (the rest: ``prior``)

    def add(self, row: int, loss: float, own: bool = True) -> None:
        self.own += own
        if self.n == len(self.rows):
            self.rows = np.concatenate([self.rows, np.empty_like(self.rows)])
            self.loss = np.concatenate([self.loss, np.empty_like(self.loss)])
        self.rows[self.n] = row
        self.loss[self.n] = loss
        self.n += 1


class ModelSampler:
    """Draws configurations of ``space``: at random, or from the model a subclass fits
    (``_model``: its data or None; ``_draw``: one encoded point from it)."""

    def __init__(self, space: Space, seed: int, random_fraction: float, rng: Any,
                 points: list[dict[str, Any]] | None = None) -> None:
        self.space = space
        self.points = points or []  # searcher.points_to_evaluate: trials 1.. take these
        self.seed = int(seed)
        self.random_fraction = float(random_fraction)
        self.rng = rng  # the random searcher's stream (random draws)
        self.leaves = space.leaves()
        self.dims: list[tuple[int, Any]] = [(i, p) for i, (_, p) in enumerate(self.leaves)
                                            if not isinstance(p, Const)]
        d = len(self.dims)
        self.cat = np.array([isinstance(p, Categorical) for _, p in self.dims], bool)
        self.ncat = np.array([len(p.vals) if isinstance(p, Categorical) else 0
                              for _, p in self.dims], np.float64)
        # row prior_rows + i: the encoded configuration of trial i + 1; rows before it: an
        # earlier search's configurations (``prior``)
        self.X = np.empty((16, d), np.float64)
        self.prior_rows = 0
        self.created = 0
        self.results: dict[int, _Results] = {}  # length -> results
        self.known: dict[int, dict[str, Any]] = {}  # journaled model draws (replay)
        self.fresh: dict[int, dict[str, Any]] = {}  # model draws not yet journaled
        self.model_draws = 0  # configurations drawn from a model (fitted or journaled)
        self.rejected: list[int] = []  # rows whose configuration the trial's code rejected

    # ------------------------------------------------------------------ protocol
    def sample(self, trial_id: int) -> dict[str, Any]:
        journaled = self.known.pop(trial_id, None)
        if journaled is not None:
            self.model_draws += 1
            self._store(trial_id, self.encode(journaled))
            return journaled
        g = np.random.default_rng([self.seed, trial_id, _MODEL_STREAM])
        given = self.points[trial_id - 1] if trial_id <= len(self.points) else None
        fit = self._model() if given is None and g.random() >= self.random_fraction else None
        if fit is None:  # a random draw (with a given point's values: never fitted)
            hp = self.space.sample(self.rng, given)
            self._store(trial_id, self.encode(hp))
            return hp
        hp = self.decode(self._draw(g, *fit))
        self._store(trial_id, self.encode(hp))  # as replay will see it: from the value alone
        self.model_draws += 1
        self.fresh[trial_id] = hp
        return hp

    def observe(self, trial_id: int, length: int, loss: float | None) -> None:
        """A result: ``loss`` lower is better; None or NaN (failed, diverged) is the worst."""
        if not 0 < trial_id <= self.created:
            return
        self._result(self.prior_rows + trial_id - 1, length, loss)

    def reject(self, trial_id: int) -> None:
        """The trial's code rejected its configuration (``InvalidHP``): whatever the length,
        the model counts it among the worst (``_rejected``); a model that never heard of it
        draws there again and again, most of all next to the best results."""
        if 0 < trial_id <= self.created:
            self.rejected.append(self.prior_rows + trial_id - 1)

    def _rejected(self) -> np.ndarray:
        """Rows of the rejected configurations, at most MAX_REJECTED (the newest)."""
        return np.asarray(self.rejected[-MAX_REJECTED:], np.int64)

    def prior(self, trials: list[dict[str, Any]]) -> None:
        """An earlier search's results, before this one creates a trial: per trial its
        ``hparams`` (values of this space: the master checked them) and ``losses``, [[length,
        loss or None], ...]; they count as this search's results at the same length."""
        if self.created:
            raise ValueError("prior results after trial 1 was drawn")
        for t in trials:
            row = self.prior_rows
            self._grow(row + 1)
            self.X[row] = self.encode(t["hparams"])
            self.prior_rows += 1
            for length, loss in t["losses"]:
                self._result(row, int(length), loss, own=False)

    def _result(self, row: int, length: int, loss: float | None, own: bool = True) -> None:
        if loss is None or loss != loss:
            loss = math.inf
        r = self.results.get(length)
        if r is None:
            r = self.results[length] = _Results()
        r.add(row, float(loss), own)

    def _enough(self, n: int) -> bool:
        """Whether ``n`` results at one length are enough to fit the model on (a subclass's)."""
        raise NotImplementedError

    def fit_needs(self) -> tuple[int, int, int | None]:
        """(results at one length the model needs, the most at any length now, that length):
        ``status`` says when an earlier search's results are too few to fit on."""
        need = next(n for n in range(1, 10_000) if self._enough(n))
        most = max(self.results.items(), key=lambda kv: kv[1].n, default=None)
        return need, (most[1].n if most else 0), (most[0] if most else None)

    def _fit_length(self, enough: Callable[[int], bool]) -> _Results | None:
        """The results the model is fitted on: those of the longest length at which this
        search has ``enough(count)`` results of its own, an earlier search's at that length
        included (``prior``); before any, the longest length with enough counting both."""
        for own in (True, False):
            for length in sorted(self.results, reverse=True):
                r = self.results[length]
                if enough(r.own if own else r.n):
                    return r
        return None

    def preload(self, configs: dict[int, dict[str, Any]]) -> None:
        """Model draws journaled earlier: ``sample`` returns them instead of fitting again."""
        self.known.update(configs)

    def take_fresh(self) -> dict[int, dict[str, Any]]:
        """Model draws since the last call (for the journal)."""
        out, self.fresh = self.fresh, {}
        return out

    # ------------------------------------------------------------------ encoding
    def encode(self, hp: dict[str, Any]) -> np.ndarray:
        """A configuration as a point of the unit cube (categoricals: the value's index)."""
        out = np.empty(len(self.dims), np.float64)
        for j, (i, p) in enumerate(self.dims):
            v: Any = hp
            for name in self.leaves[i][0]:
                v = v[name]
            out[j] = _encode(p, v)
        return out

    def decode(self, u: np.ndarray) -> dict[str, Any]:
        values: list[Any] = []
        it = iter(u.tolist())
        for _, p in self.leaves:
            values.append(p.sample(None) if isinstance(p, Const) else _decode(p, next(it)))
        return self.space._build(values)

    def _store(self, trial_id: int, x: np.ndarray) -> None:
        if trial_id != self.created + 1:  # the searcher creates trials 1, 2, 3, ... in order
            raise ValueError(f"trial {trial_id} drawn after trial {self.created}")
        row = self.prior_rows + self.created
        self._grow(row + 1)
        self.X[row] = x
        self.created += 1

    def _grow(self, rows: int) -> None:
        while len(self.X) < rows:
            self.X = np.concatenate([self.X, np.empty_like(self.X)])

    # ------------------------------------------------------------------ the model
    def _model(self) -> tuple[Any, ...] | None:
        """The model's data at this point of the search, or None: draw at random."""
        raise NotImplementedError

    def _draw(self, g: Any, *model: Any) -> np.ndarray:
        """One encoded point from ``model`` (what ``_model`` returned), drawing from ``g``."""
        raise NotImplementedError


def _encode(p: Any, v: Any) -> float:
    if isinstance(p, Categorical):
        for k, w in enumerate(p.vals):
            if w == v and type(w) is type(v):
                return float(k)
        for k, w in enumerate(p.vals):
            if w == v:
                return float(k)
        return 0.0
    try:
        x = float(v)
    except (TypeError, ValueError, OverflowError):
        return 0.5
    if isinstance(p, Int) and p.log:
        lo, hi = p.log_bounds()
        u = (math.log(x) - lo) / (hi - lo) if x > 0 else 0.0
    elif isinstance(p, Int):
        u = (x - p.minval + 0.5) / (p.maxval - p.minval + 1)
    elif isinstance(p, Log):
        if x <= 0 or p.base <= 0 or p.base == 1.0:
            return 0.5
        u = (math.log(x) / math.log(p.base) - p.minval) / (p.maxval - p.minval)
    else:
        u = (x - p.minval) / (p.maxval - p.minval)
    return min(max(u, 0.0), 1.0) if u == u else 0.5


def _decode(p: Any, u: float) -> Any:
    if isinstance(p, Categorical):
        v = p.vals[min(int(u), len(p.vals) - 1)]
        return v if isinstance(v, (str, int, float, bool, type(None))) else copy.deepcopy(v)
    if isinstance(p, Int) and p.log:
        lo, hi = p.log_bounds()
        return int(min(max(round(math.exp(lo + u * (hi - lo))), p.minval), p.maxval))
    if isinstance(p, Int):
        span = p.maxval - p.minval + 1
        return int(min(p.minval + int(math.floor(u * span)), p.maxval))
    x = p.minval + u * (p.maxval - p.minval)
    if isinstance(p, Log):
        return float(min(max(p.base ** x, min(p.base ** p.minval, p.base ** p.maxval)),
                         max(p.base ** p.minval, p.base ** p.maxval)))
    assert isinstance(p, Double)
    return float(min(max(x, p.minval), p.maxval))

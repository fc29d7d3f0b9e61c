"""``searcher.sampler: gp``: new trials drawn where a Gaussian process expects the most
improvement (Bayesian optimisation on the rungs of ASHA, as MOBSTER does in Syne Tune), numpy
only. The plumbing (encoding, results, journal) is model_sampler.py's.

The model is fitted on the longest length (rung) with at least ``2 (d + 2)`` results, for ``d``
searched hyperparameters; shorter lengths stand in until then, and before any length has
enough the draw is random (``searcher.warm_start``: see ``ModelSampler._fit_length``).
A ``random_fraction`` of the draws stays random whatever the model says. At most
``MAX_POINTS`` results: the best half of them and an even stride through the rest. A draw
made before the fitted length has a new result reuses the last fit (the same numbers).

- Configurations the code rejected (``InvalidHP``) join the results at any length as the
  worst: where the GP knows nothing its expected improvement is highest, and without them it
  drew there again and again.
- The losses become normal scores of their ranks (a Gaussian copula): the model sees the order
  of the results, not their scale, so a diverged trial (inf, NaN) or a loss that spans decades
  does not flatten everything else.
- Kernel: Matérn 5/2 with one lengthscale per dimension; a categorical counts a different
  value as distance 1. Lengthscales, signal and noise variance maximise the marginal
  likelihood (with a log-normal prior on the lengthscales, centred at 0.3 of the range) in
  ``FIT_STEPS`` Adam steps from the same start every time: the fit is a function of the data
  alone, so a draw does not depend on what the master computed before a restart.
- The draw: the candidate with the largest expected improvement over the best posterior mean,
  among ``CANDIDATES`` points drawn uniformly and as many around the five best results
  (a Gaussian step of 0.02 or 0.1 of the range; a categorical keeps its value with chance 0.8).

The constants were chosen on development seeds of benchmarks/search_quality.py (100-323 of
Branin and Hartmann-6, 100-111 of the real tasks), never on the seeds of the published table.
"""
from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np

from .model_sampler import ModelSampler

MAX_POINTS = 64  # results the GP is fitted on, at most (the fit is cubic in them)
FIT_STEPS = 15
FIT_RATE = 0.25  # Adam's step on the log-hyperparameters
LENGTHSCALE = 0.3  # the fit's start and the centre of its prior, in units of the range
CANDIDATES = 256  # drawn uniformly; as many again around the best results
LOCAL_STEPS = (0.02, 0.1)
_ROOT5 = math.sqrt(5.0)
_NORMAL = NormalDist()


def min_results(d: int) -> int:
    """Results a length needs before the GP is fitted on it, for ``d`` dimensions."""
    return 2 * (d + 2)


class GPSampler(ModelSampler):
    """Draws configurations of ``space`` by expected improvement; see the module docstring."""

    _fitted: tuple[tuple[int, int, int], tuple[Any, ...]] | None = None  # (data's key, its fit)

    def _enough(self, n: int) -> bool:
        return n >= min_results(len(self.dims))

    def _model(self) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]] | None:
        """(points, normal scores of their losses, a key of that data) at the longest length
        with enough results; None when there is none (or nothing to search). Results at a
        length only grow, so (length, count, rejections) names the data: the fit is reused while it
        stands (the same numbers as fitting again)."""
        d = len(self.dims)
        if d == 0:
            return None
        r = self._fit_length(self._enough)
        if r is None:
            return None
        # rows in loss order, then the configurations the code rejected: the worst of all
        rejected = self._rejected()
        rows = np.concatenate([r.rows[np.argsort(r.loss[:r.n], kind="stable")], rejected])
        if len(rows) > MAX_POINTS:
            k = MAX_POINTS // 2
            rest = rows[k:][np.linspace(0, len(rows) - k - 1, MAX_POINTS - k).astype(np.int64)]
            rows = np.concatenate([rows[:k], rest])
        # the kept results in loss order: the i-th of m scores Phi^-1((i + 0.5) / m)
        m = len(rows)
        y = np.array([_NORMAL.inv_cdf((i + 0.5) / m) for i in range(m)])
        length = next(k for k, v in self.results.items() if v is r)
        return self.X[rows], y, (length, r.n, len(self.rejected))

    def _draw(self, g: Any, X: np.ndarray, y: np.ndarray, key: tuple[int, int, int]) -> np.ndarray:
        if self._fitted is None or self._fitted[0] != key:
            ls, amp, noise = _fit(self._sqdiff(X[:, None, :], X[None, :, :]), y)
            K = self._kernel(X, X, ls, amp)
            self._fitted = (key, (ls, amp, K, *_factor(K, noise, y)))
        ls, amp, K, L, alpha = self._fitted[1]
        d = X.shape[1]
        best = X[:5]  # X is in loss order
        centers = best[g.integers(len(best), size=CANDIDATES)]
        step = np.where(g.random((CANDIDATES, 1)) < 0.5, *LOCAL_STEPS)
        local = np.clip(centers + g.normal(size=(CANDIDATES, d)) * step, 0.0, 1.0)
        uniform = g.random((CANDIDATES, d))
        if self.cat.any():
            k = np.maximum(self.ncat, 1)
            uniform = np.where(self.cat, np.minimum(np.floor(uniform * k), k - 1), uniform)
            keep = g.random((CANDIDATES, d)) < 0.8
            other = np.minimum(np.floor(g.random((CANDIDATES, d)) * k), k - 1)
            local = np.where(self.cat, np.where(keep, centers, other), local)
        cand = np.concatenate([uniform, local])
        Ks = self._kernel(cand, X, ls, amp)
        mu = Ks @ alpha
        v = np.linalg.solve(L, Ks.T)
        sd = np.sqrt(np.maximum(amp - (v * v).sum(axis=0), 1e-12))
        incumbent = float((K @ alpha).min())
        return cand[int(np.argmax(_expected_improvement(incumbent, mu, sd)))]

    def _sqdiff(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Squared differences per dimension (broadcast); a categorical: 0 if equal, else 1."""
        diff = a - b
        if self.cat.any():
            diff = np.where(self.cat, (np.abs(diff) > 0.5).astype(np.float64), diff)
        return diff * diff

    def _kernel(self, a: np.ndarray, b: np.ndarray, ls: np.ndarray, amp: float) -> np.ndarray:
        """Matérn 5/2 between the rows of ``a`` and ``b``: the continuous part of the distance
        as one matrix product, a categorical's mismatches added per dimension."""
        cont = ~self.cat
        x, z = a[:, cont] / ls[cont], b[:, cont] / ls[cont]
        r2 = (x * x).sum(axis=1)[:, None] + (z * z).sum(axis=1)[None, :] - 2.0 * (x @ z.T)
        for j in np.flatnonzero(self.cat):
            r2 += (a[:, j, None] != b[None, :, j]) / (ls[j] * ls[j])
        r = np.sqrt(np.maximum(r2, 0.0))
        return amp * (1.0 + _ROOT5 * r + 5.0 / 3.0 * r * r) * np.exp(-_ROOT5 * r)


def _factor(K: np.ndarray, noise: float, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cholesky factor of K + noise I and (K + noise I)^-1 y; jitter grows until it factors
    (duplicate points with almost no noise)."""
    n = len(K)
    jitter = 1e-6
    while True:
        try:
            L = np.linalg.cholesky(K + (noise + jitter) * np.eye(n))
            break
        except np.linalg.LinAlgError:
            jitter *= 10.0
    return L, np.linalg.solve(L.T, np.linalg.solve(L, y))


def _fit(sq: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(lengthscales, signal variance, noise variance) by Adam on the negative log marginal
    likelihood (plus the lengthscales' prior), from the same start each time; ``sq``: the
    squared differences of the points per dimension, (n, n, d)."""
    n, _, d = sq.shape
    theta = np.concatenate([np.full(d, math.log(LENGTHSCALE)), [0.0, math.log(1e-2)]])
    low = np.concatenate([np.full(d, math.log(0.01)), [math.log(0.1), math.log(1e-4)]])
    high = np.concatenate([np.full(d, math.log(10.0)), [math.log(10.0), 0.0]])
    m1, m2 = np.zeros(d + 2), np.zeros(d + 2)
    best: tuple[float, np.ndarray] | None = None
    eye = np.eye(n)
    for t in range(1, FIT_STEPS + 1):
        ls, amp, noise = np.exp(theta[:d]), math.exp(theta[d]), math.exp(theta[d + 1])
        inv2 = 1.0 / (ls * ls)
        r = np.sqrt(sq @ inv2)
        e = np.exp(-_ROOT5 * r)
        k0 = (1.0 + _ROOT5 * r + 5.0 / 3.0 * r * r) * e
        try:
            L = np.linalg.cholesky(amp * k0 + (noise + 1e-6) * eye)
        except np.linalg.LinAlgError:
            theta[d + 1] = min(theta[d + 1] + 1.0, high[d + 1])
            continue
        Linv = np.linalg.inv(L)
        Kinv = Linv.T @ Linv
        alpha = Kinv @ y
        nll = 0.5 * float(y @ alpha) + float(np.log(np.diag(L)).sum())
        if best is None or nll < best[0]:
            best = (nll, theta.copy())
        W = np.outer(alpha, alpha) - Kinv  # d(log likelihood) = 0.5 tr(W dK)
        grad = np.empty(d + 2)
        grad[:d] = -0.5 * inv2 * np.einsum("ij,ijk->k", W * (amp * 5.0 / 3.0 * (1.0 + _ROOT5 * r) * e), sq)
        grad[:d] += 0.5 * (theta[:d] - math.log(LENGTHSCALE))
        grad[d] = -0.5 * float((W * (amp * k0)).sum())
        grad[d + 1] = -0.5 * float(np.trace(W)) * noise
        m1 = 0.9 * m1 + 0.1 * grad
        m2 = 0.999 * m2 + 0.001 * grad * grad
        step = FIT_RATE * (m1 / (1 - 0.9 ** t)) / (np.sqrt(m2 / (1 - 0.999 ** t)) + 1e-8)
        theta = np.clip(theta - step, low, high)
    if best is not None:
        theta = best[1]
    return np.exp(theta[:d]), math.exp(theta[d]), math.exp(theta[d + 1])


def _expected_improvement(incumbent: float, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """E[max(incumbent - f, 0)] for f ~ N(mu, sd^2) (lower is better)."""
    z = (incumbent - mu) / sd
    cdf = 0.5 * np.array([math.erfc(-v / math.sqrt(2.0)) for v in z.tolist()])
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return sd * (z * cdf + pdf)

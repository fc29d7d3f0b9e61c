"""Multi-fidelity test functions as learning curves: ``simulated.curve: landscapes:branin``.

Each is a curve ``(hparams, length, seed) -> metric`` (lower is better) whose fidelity is
``s = log(length) / log(MAX_LENGTH)`` (0 at one unit, 1 from ``MAX_LENGTH`` on: the log scale
on which successive halving spaces its rungs, so rungs 1, 4, 16, 64 see s = 0, 1/3, 2/3, 1):
at full length it is the standard function, shorter trials see a biased version of it, as in
the multi-fidelity literature (the augmented
Branin and Hartmann functions of BoTorch, after Kandasamy et al., 2017, "Multi-fidelity
Bayesian optimisation with continuous approximations"):

- ``branin``: x1 in [-5, 10], x2 in [0, 15];
  B(x, s) = (x2 - (b - 0.1 (1 - s)) x1^2 + c x1 - r)^2 + 10 (1 - t) cos(x1) + 10,
  b = 5.1 / (4 pi^2), c = 5 / pi, r = 6, t = 1 / (8 pi); minimum 0.397887 (three minimizers).
- ``hartmann6``: x1 .. x6 in [0, 1];
  H(x, s) = -sum_i (alpha_i - 0.1 (1 - s) [i = 1]) exp(-sum_j A_ij (x_j - P_ij)^2);
  minimum -3.32237.

The seed is not used: the functions are deterministic (a noisy variant would hide what a
sampler learns behind what it is lucky with). ``SPACES`` holds each one's hyperparameters in
asha_hpc's format and ``OPTIMUM`` its minimum at full fidelity.

    # experiment.yaml, next to this file
    searcher: {name: adaptive_asha, metric: loss, max_length: 64, max_trials: 256, sampler: tpe}
    hyperparameters: {x1: {type: double, minval: -5, maxval: 10},
                      x2: {type: double, minval: 0, maxval: 15}}
    backend: simulated
    simulated: {curve: landscapes:branin, unit_seconds: 60, workers: 16}
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

MAX_LENGTH = 64  # the length at which the fidelity is 1

_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
               [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]], dtype=float)
_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                      [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]],
                     dtype=float)
_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def fidelity(length: int) -> float:
    if length <= 1:
        return 0.0
    return min(math.log(length) / math.log(MAX_LENGTH), 1.0)


def branin(hparams: dict[str, Any], length: int, seed: int = 0) -> float:
    x1, x2 = float(hparams["x1"]), float(hparams["x2"])
    s = fidelity(length)
    b, c, r, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 6.0, 1 / (8 * math.pi)
    return (x2 - (b - 0.1 * (1 - s)) * x1 ** 2 + c * x1 - r) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def hartmann6(hparams: dict[str, Any], length: int, seed: int = 0) -> float:
    x = np.array([float(hparams[f"x{i}"]) for i in range(1, 7)])
    alpha = _ALPHA.copy()
    alpha[0] -= 0.1 * (1 - fidelity(length))
    return float(-(alpha * np.exp(-(_A * (x - _P) ** 2).sum(axis=1))).sum())


SPACES = {
    "branin": {"x1": {"type": "double", "minval": -5, "maxval": 10},
               "x2": {"type": "double", "minval": 0, "maxval": 15}},
    "hartmann6": {f"x{i}": {"type": "double", "minval": 0, "maxval": 1} for i in range(1, 7)},
}
OPTIMUM = {"branin": 0.39788735772973816, "hartmann6": -3.322368011415515}

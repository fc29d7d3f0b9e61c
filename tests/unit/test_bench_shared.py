"""What the search benchmarks share. benchmarks/virtual_pool.py, the event simulation both run
their systems in: results arrive in the order equally fast workers would deliver them, a work
item holds a worker for its cost (at least one step), and a stop condition ends the run between
results. benchmarks/peers.py: the Ray peer's configurations."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from virtual_pool import run_pool  # noqa: E402


class Chain:
    """Each finished item ("name", cost, left) hands out its next one until ``left`` runs out;
    records the order in which items finish."""

    def __init__(self, items):
        self.items = items
        self.finished = []

    def start(self):
        return self.items

    def cost(self, w):
        return w[1]

    def done(self, w):
        name, cost, left = w
        self.finished.append(name)
        return [(name, cost, left - 1)] if left > 1 else []


def test_results_arrive_in_virtual_time_order():
    s = Chain([("slow", 5, 2), ("fast", 2, 4), ("zero", 0, 1)])
    run_pool(s)
    # finish times: zero 1 (cost 0 holds a worker one step), fast 2, 4, slow 5, fast 6, 8,
    # slow 10
    assert s.finished == ["zero", "fast", "fast", "slow", "fast", "fast", "slow"]


def test_ties_finish_in_start_order_and_runs_repeat():
    a = Chain([("a", 3, 3), ("b", 3, 3), ("c", 3, 3)])
    run_pool(a)
    assert a.finished == ["a", "b", "c"] * 3
    again = Chain([("a", 3, 3), ("b", 3, 3), ("c", 3, 3)])
    run_pool(again)
    assert again.finished == a.finished


def test_stop_ends_the_run_between_results():
    s = Chain([("x", 1, 100), ("y", 1, 100)])
    run_pool(s, stop=lambda: len(s.finished) >= 7)
    assert len(s.finished) == 7


def test_ray_sample_gives_plain_values_in_the_domains():
    """The Ray peer's configurations: drawn from its own ``tune`` domains with the seed's
    RandomState (the same seed, the same configurations), as plain Python values."""
    pytest.importorskip("ray.tune")
    from peers import RayTrial, ray_sample
    from ray import tune

    domains = {"lr": tune.loguniform(1e-4, 1e-1), "width": tune.randint(16, 129),
               "act": tune.choice(["relu", "tanh"])}
    a = [ray_sample(domains, np.random.RandomState(3)) for _ in range(2)]
    assert a[0] == a[1]
    rs = np.random.RandomState(4)
    draws = [ray_sample(domains, rs) for _ in range(50)]
    assert len({cfg["lr"] for cfg in draws}) == 50
    for cfg in [a[0]] + draws:
        assert type(cfg["lr"]) is float and 1e-4 <= cfg["lr"] <= 1e-1
        assert type(cfg["width"]) is int and 16 <= cfg["width"] <= 128
        assert cfg["act"] in ("relu", "tanh")
    t = RayTrial(7, a[0])
    assert (t.trial_id, t.n, t.step, t.config) == ("7", 7, 0, a[0])


def test_peer_domains_keep_the_space_bounds():
    """An asha_hpc spec in a peer's domains: log bounds as values (base ** exponent), ``int``
    with both bounds inclusive, categoricals as lists; a type it cannot map is named."""
    from peers import peer_domains

    ctors = {name: (lambda *a, name=name: (name, *a))
             for name in ("uniform", "loguniform", "randint", "choice")}
    spec = {"lr": {"type": "log", "minval": -3, "maxval": 0, "base": 10},
            "x": {"type": "double", "minval": -5, "maxval": 10},
            "width": {"type": "int", "minval": 16, "maxval": 128},
            "act": {"type": "categorical", "vals": ("relu", "tanh")}}
    got = peer_domains(spec, **ctors)
    assert got == {"lr": ("loguniform", 10 ** -3, 1), "x": ("uniform", -5, 10),
                   "width": ("randint", 16, 128), "act": ("choice", ["relu", "tanh"])}
    with pytest.raises(ValueError, match="'n'.*'count'"):
        peer_domains({"n": {"type": "count"}}, **ctors)

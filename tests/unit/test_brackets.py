"""Spec section 5: Determined's own test vectors and the worked example, as tests."""
import math

import pytest

from asha_hpc.config import SearcherConfig
from asha_hpc.plan import plan
from asha_hpc.searcher import make_searcher
from asha_hpc.searcher.brackets import (
    adaptive_brackets,
    auto_num_rungs,
    bracket_plan,
    bracket_sizes,
    concurrency_per_bracket,
    initial_trials,
    mode_bracket_sizes,
    rung_lengths,
    trials_per_bracket,
)
from asha_hpc.space import parse_space

SPACE, _ = parse_space({"x": {"type": "double", "minval": 0, "maxval": 1}})


def test_trials_per_bracket_vectors():
    assert trials_per_bracket(20, 3.0, [3, 2, 1]) == [12, 5, 3]
    assert trials_per_bracket(100, 4.0, [4, 3, 2]) == [70, 22, 8]


def test_concurrency_vectors():
    assert concurrency_per_bracket(0, 3.0, [9, 3, 1]) == [3, 3, 3]
    assert concurrency_per_bracket(11, 3.0, [1, 1, 1]) == [4, 4, 3]
    assert concurrency_per_bracket(2, 3.0, [5, 3, 1]) == [1, 1, 1]  # C' = max(C, n)


def test_rung_targets_vector():
    assert rung_lengths(4, 2.0, 10) == [1, 2, 5, 10]
    assert rung_lengths(3, 4.0, 1000) == [62, 250, 1000]
    assert rung_lengths(5, 4.0, 1000) == [3, 15, 62, 250, 1000]


def test_float_truncation_of_rung_count():
    assert math.log(1000) / math.log(10) == 2.9999999999999996
    assert auto_num_rungs(1000, 10**6, 10.0, 5) == 3  # int(2.999...) + 1
    assert auto_num_rungs(10**6, 1000, 10.0, 5) == 3
    assert auto_num_rungs(1000, 16, 4.0, 5) == 3
    assert auto_num_rungs(1000, 256, 4.0, 5) == 5
    assert auto_num_rungs(1, 1, 4.0, 5) == 1


def test_modes():
    assert mode_bracket_sizes("aggressive", 5) == [5]
    assert mode_bracket_sizes("standard", 5) == [3, 4, 5]
    assert mode_bracket_sizes("standard", 3) == [2, 3]
    assert mode_bracket_sizes("conservative", 3) == [1, 2, 3]
    assert bracket_sizes(1000, 256, 4.0, 5, "standard") == [5, 4, 3]  # descending
    assert bracket_sizes(1000, 256, 4.0, 5, "standard", [2, 4, 1]) == [4, 2, 1]


def test_initial_trials():
    assert initial_trials(3, 4.0, 16, 16) == 16
    assert initial_trials(3, 4.0, 10, 16) == 10
    assert initial_trials(3, 4.0, 100, 0) == 16
    assert initial_trials(3, 4.0, 5, 0) == 5
    assert initial_trials(1, 4.0, 5, 0) == 1


# the worked example: L=1000, T=16, d=4, max_rungs=5, C=16
WORKED = {
    "aggressive": ([(3, 16, 16, [62, 250, 1000])], {"62": 12, "250": 3, "1000": 1}, 2494),
    "standard": ([(3, 12, 8, [62, 250, 1000]), (2, 4, 8, [250, 1000])],
                 {"62": 9, "250": 5, "1000": 2}, 3808),
    "conservative": ([(3, 12, 6, [62, 250, 1000]), (2, 3, 5, [250, 1000]), (1, 1, 5, [1000])],
                     {"62": 9, "250": 4, "1000": 3}, 4558),
}


@pytest.mark.parametrize("mode", sorted(WORKED))
def test_worked_example(mode):
    brackets, preview, total = WORKED[mode]
    cfg = SearcherConfig(max_length=1000, max_trials=16, divisor=4, max_rungs=5,
                         max_concurrent_trials=16, mode=mode)
    got = [(b.num_rungs, b.max_trials, b.max_concurrent_trials, b.rung_lengths)
           for b in bracket_plan(cfg)]
    assert got == brackets
    p = plan(cfg, SPACE)
    assert p["preview"] == preview
    assert p["total_units"] == total
    s = make_searcher(cfg, SPACE, 0)  # the searcher runs what plan prints
    assert [(b.num_rungs, b.max_trials, b.max_concurrent_trials, b.rung_lengths)
            for b in s.brackets()] == brackets


def test_worked_example_t256_standard():
    cfg = SearcherConfig(max_length=1000, max_trials=256, divisor=4, max_rungs=5,
                         max_concurrent_trials=16, mode="standard")
    got = [(b.num_rungs, b.max_trials, b.max_concurrent_trials) for b in bracket_plan(cfg)]
    assert got == [(5, 182, 6), (4, 56, 5), (3, 18, 5)]
    assert bracket_plan(cfg)[0].rung_lengths == [3, 15, 62, 250, 1000]
    p = plan(cfg, SPACE)
    assert p["preview"] == {"3": 137, "15": 76, "62": 34, "250": 6, "1000": 3}


def test_adaptive_brackets_c0():
    bs = adaptive_brackets(1000, 100, 3.0, 5, "conservative", 0)
    assert all(b.max_concurrent_trials == max(bs[-1].max_trials, 3) for b in bs)


def test_other_searchers_one_bracket():
    sp, _ = parse_space({"a": {"type": "categorical", "vals": [1, 2, 3]},
                         "b": {"type": "int", "minval": 0, "maxval": 9, "count": 2}})
    for name, t, c in [("random", 7, 3), ("grid", 6, 3), ("single", 1, 1)]:
        cfg = SearcherConfig(name=name, max_length=50, max_trials=7, max_concurrent_trials=3)
        (b,) = bracket_plan(cfg, sp)
        assert (b.num_rungs, b.max_trials, b.max_concurrent_trials, b.rung_lengths) == (1, t, c, [50])
    cfg = SearcherConfig(name="random", max_length=50, max_trials=7, max_concurrent_trials=0)
    assert bracket_plan(cfg, sp)[0].max_concurrent_trials == 7  # 0: all at once
    cfg = SearcherConfig(name="async_halving", max_length=64, max_trials=40, num_rungs=3,
                         max_concurrent_trials=5, divisor=4)
    (b,) = bracket_plan(cfg, sp)
    assert (b.num_rungs, b.max_trials, b.max_concurrent_trials, b.rung_lengths) == (3, 40, 5, [4, 16, 64])


def test_bracket_rungs_given_and_async_halving_c0():
    cfg = SearcherConfig(max_length=1000, max_trials=20, divisor=3, bracket_rungs=[1, 3, 2],
                         max_concurrent_trials=0)
    bs = bracket_plan(cfg)
    assert [(b.num_rungs, b.max_trials, b.max_concurrent_trials) for b in bs] == [
        (3, 12, 3), (2, 5, 3), (1, 3, 3)]
    cfg = SearcherConfig(name="async_halving", max_length=64, max_trials=40, num_rungs=3,
                         max_concurrent_trials=0, divisor=4)
    (b,) = bracket_plan(cfg)
    assert b.max_concurrent_trials == 16  # one out, one in: the initial clamp(int(d**(n-1)), 1, t)
    assert len(make_searcher(cfg, SPACE, 0).start()) == 16

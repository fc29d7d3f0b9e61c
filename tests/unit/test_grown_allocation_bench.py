"""benchmarks/grown_allocation.py: a search ended by half the allocation, then continued with the
cap raised to the whole of it, as ``resume --max-compute`` continues one."""
from __future__ import annotations

from pathlib import Path

import pytest
from bench_loader import load_benchmark

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ga():
    return load_benchmark("grown_allocation")


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_the_raised_search_goes_on_from_where_the_half_ended(ga, sampler):
    task = ga.make_task("branin")
    task.trials = 48
    budget = ga.run_system(ga.RANDOM, task, 3, None)["spent"]
    half = ga.Run(task, budget // 2)
    ours = ga.Ours(task, half, 3, sampler)
    ga.run_pool(ours, stop=half.over)
    assert ours.s.done and half.spent <= budget // 2
    trials, spent = len(ours.hp), half.spent
    half.budget = budget
    raised = ga.Raised(ours, budget)
    assert raised.first  # the raise lets work start at once
    ga.run_pool(raised, stop=half.over)
    assert ours.s.done and spent < half.spent <= budget
    assert len(ours.hp) > trials  # new trials under the larger cap
    assert ours.s.compute_started() <= budget
    row = ga.one(task, 3, sampler, budget)
    assert set(row) == set(ga.WAYS)
    assert row[ga.WAYS[3]][1] <= 0.5 and all(row[w][1] <= 1.0 for w in ga.WAYS)
    assert row[ga.WAYS[1]][1] > row[ga.WAYS[3]][1] and row[ga.WAYS[2]][1] > row[ga.WAYS[3]][1]

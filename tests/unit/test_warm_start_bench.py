"""benchmarks/warm_start.py: a second search after a first, started over, from the first's best
configurations, or warm-started from its results; the starts must be what the product does."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from bench_loader import load_benchmark

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ws():
    return load_benchmark("warm_start")


def test_the_second_search_starts_from_the_first(ws):
    task = ws.sq.make_task("branin")
    task.trials = 40
    first, fs = ws.one(task, 0, None, "random")
    prior = fs.prior()
    # every trial the first search created has its results there, as the warm_start record
    # holds them: [length, metric] by length
    assert len(prior) == len(fs.hp)
    for t in prior:
        lengths = [k for k, _ in t["losses"]]
        assert lengths == sorted(lengths) and lengths[0] >= 1
        assert all(v == task.curve(t["hparams"], k) for k, v in t["losses"])
    top = max(max(r) for r in fs.results.values())
    best = fs.best(3)
    at_top = sorted((r[top], t) for t, r in fs.results.items() if top in r)
    assert best[0] is fs.hp[at_top[0][1]]
    budget = ws.one(task, 5000, None, "random")[0]["spent"]
    points, _ = ws.one(task, 5000, budget, "random", points=best)
    _, with_points = ws.one(task, 5000, budget, "random", points=best)
    assert [with_points.hp[t] for t in (1, 2, 3)] == best
    assert points["spent"] <= budget
    _, warm = ws.one(task, 5000, budget, "tpe", prior=prior)
    _, cold = ws.one(task, 5000, budget, "tpe")
    assert warm.from_model & {1, 2, 3, 4} and not cold.from_model & {1, 2, 3, 4}


def test_the_table(ws, tmp_path, monkeypatch, capsys):
    out = tmp_path / "w.json"
    monkeypatch.setattr(sys, "argv", ["warm_start.py", "--tasks", "branin", "--seeds", "2",
                                      "--out", str(out)])
    assert ws.main() == 0
    res = json.loads(out.read_text())["tasks"]["branin"]
    assert set(res["systems"]) == set(ws.SYSTEMS)
    for label, s in res["systems"].items():
        runs = res["runs"][label]
        assert len(runs) == 2 and 0 <= s["improved"] <= 2
        assert s["best_of_both"] <= s["second"] + 1e-12  # the better of two is no worse
    assert "tpe + warm_start" in capsys.readouterr().out

"""benchmarks/wall_time.py's bookkeeping: the pool configs it runs are valid, and the ratio to
Optuna pairs each run with Optuna's run of the same repeat."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from bench_loader import load_benchmark

from asha_hpc.config import parse_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wt():
    return load_benchmark("wall_time")


def test_pool_configs_are_accepted(wt, tmp_path):
    assert wt.asha_pool_available() is None
    a = argparse.Namespace(trials=8, seed=0, poll_interval=None)
    cfg = parse_config(wt.asha_config(a, tmp_path, True, "aggressive"), wt.HERE)
    assert cfg.pool_size == 2 and cfg.searcher.mode == "aggressive"


def test_paired_ratios_match_runs_by_repeat(wt):
    runs = [{"system": "optuna", "seed": 0, "wall_s": 10.0, "rc": 0},
            {"system": "asha_pool_aggr", "seed": 0, "wall_s": 9.0, "rc": 0},
            {"system": "optuna", "seed": 1, "wall_s": 5.0, "rc": 0},
            {"system": "asha_pool_aggr", "seed": 1, "wall_s": 6.0, "rc": 0},
            {"system": "asha_pool_aggr", "seed": 2, "wall_s": 1.0, "rc": 0},  # no Optuna pair
            {"system": "optuna", "seed": 3, "wall_s": 4.0, "rc": "timeout"},
            {"system": "asha_pool_aggr", "seed": 3, "wall_s": 4.0, "rc": 0}]
    assert wt.paired_ratios(runs, "asha_pool_aggr") == [0.9, 1.2]
    assert wt.paired_ratios(runs, "optuna") == []

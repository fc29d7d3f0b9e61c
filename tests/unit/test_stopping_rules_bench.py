"""The search-quality benchmark's shared-config mode compares early-stopping rules on the same
configs: the stream it hands to the peers must be exactly the configs asha_hpc's searchers create
with that seed, and the peers must train exactly what they are handed."""
from __future__ import annotations

from pathlib import Path

import pytest
from bench_loader import load_benchmark

from asha_hpc.config import SearcherConfig
from asha_hpc.searcher import CreateTrial, ResumeTrial, SegmentCompleted, make_searcher
from asha_hpc.space import parse_space

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sq():
    return load_benchmark("stopping_rules")


class _NoTraining:
    """Stands in for the benchmark's Objective: records what a system trains, trains nothing."""

    def __init__(self) -> None:
        self.seen = {}
        self.pos = {}

    def train(self, key, hp, length):
        self.seen.setdefault(key, hp)
        self.pos[key] = length
        return 1.0

    def trained(self, key):
        return self.pos.get(key, 0)

    def drop(self, key):
        self.pos.pop(key, None)


@pytest.mark.parametrize("mode", ["aggressive", "standard", "conservative"])
def test_stream_is_the_searchers_config_sequence(sq, mode):
    seed, T = 3, 40
    cfg = SearcherConfig(name="adaptive_asha", metric="m", max_length=64, max_trials=T,
                         max_concurrent_trials=0, divisor=4, mode=mode)
    s = make_searcher(cfg, parse_space(sq.SPACE_SPEC)[0], seed)
    created, pending = [], list(s.start())
    while pending:  # report every segment (the metric does not matter here)
        a = pending.pop(0)
        if isinstance(a, CreateTrial):
            created.append(a)
        if isinstance(a, (CreateTrial, ResumeTrial)):
            pending += s.on_event(SegmentCompleted(a.trial_id, a.length, float(a.trial_id % 7)))
    assert len(created) == T
    stream = sq.Stream(seed)
    by_id = sorted(created, key=lambda a: a.trial_id)
    assert [a.hparams for a in by_id] == [stream() for _ in range(T)]


def test_random_search_uses_the_stream(sq):
    r = sq.Random(_NoTraining(), 5, 7)
    stream = sq.Stream(7)
    r.start()
    assert [r.hp[i] for i in range(1, 6)] == [stream() for _ in range(5)]


def test_optuna_trains_the_shared_configs(sq):
    pytest.importorskip("optuna")
    obj = _NoTraining()
    system = sq.OptunaSys(obj, 6, 1, "sha", "random", sq.Stream(1))
    sq.run_pool(system)
    stream = sq.Stream(1)
    want = [stream() for _ in range(6)]
    assert [obj.seen[n] for n in sorted(obj.seen)] == want


def test_ray_trains_the_shared_configs(sq):
    pytest.importorskip("ray.tune")
    obj = _NoTraining()
    system = sq.RaySys(obj, 6, 1, sq.Stream(1))
    sq.run_pool(system)
    stream = sq.Stream(1)
    assert [obj.seen[n] for n in sorted(obj.seen)] == [stream() for _ in range(6)]

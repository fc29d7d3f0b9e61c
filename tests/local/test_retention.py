"""Checkpoint retention: hopeless and finished trials lose their checkpoints, the best keep them."""
import json
import os
from pathlib import Path

import numpy as np
import pytest

from asha_hpc.config import SearcherConfig
from asha_hpc.searcher import CreateTrial, ResumeTrial, SegmentCompleted, make_searcher
from asha_hpc.space import parse_space

from helpers import cli, final_state, make_experiment


@pytest.mark.parametrize("seed", range(6))
def test_a_trial_declared_hopeless_is_never_promoted(seed):
    cfg = SearcherConfig(name="adaptive_asha", metric="m", max_length=256, max_trials=120,
                         max_concurrent_trials=6, mode="standard", divisor=3.0)
    space, _ = parse_space({"x": {"type": "double", "minval": 0, "maxval": 1}})
    s = make_searcher(cfg, space, seed)
    rng = np.random.default_rng(seed)
    flight = {}
    hopeless = set()
    promoted_after = []

    def take(actions):
        for a in actions:
            if isinstance(a, CreateTrial):
                flight[a.trial_id] = a.length
            elif isinstance(a, ResumeTrial):
                if a.trial_id in hopeless:
                    promoted_after.append(a.trial_id)
                flight[a.trial_id] = a.length

    take(s.start())
    while flight:
        tid = list(flight)[rng.integers(len(flight))]
        take(s.on_event(SegmentCompleted(tid, flight.pop(tid), float(rng.random()))))
        for t in range(1, 200):
            if s.is_paused(t) and not s.may_be_promoted(t):
                hopeless.add(t)
    assert hopeless and not promoted_after


def test_checkpoints_of_hopeless_and_stopped_trials_are_removed(tmp_path):
    cfg_path = make_experiment(tmp_path, searcher={"max_trials": 8},
                               checkpoint_storage={"save_experiment_best": 2})
    exp = tmp_path / "run"
    cli("run", cfg_path, "--exp-dir", exp)
    cfg, st = final_state(exp)
    with_ckpt = sorted(int(p.name) for p in (exp / "trials").iterdir()
                       if (p / "checkpoints").is_dir() and os.listdir(p / "checkpoints"))
    best2 = sorted(t.id for t in st.ranked()[:2])
    assert with_ckpt == best2
    best = json.loads(cli("best", exp, "--top", "3", "--json").stdout)
    assert all(Path(b["checkpoint"]).is_dir() for b in best[:2]) and best[2]["checkpoint"] is None
    # each kept trial holds only its newest checkpoint
    assert all(len(os.listdir(exp / "trials" / f"{t:05d}" / "checkpoints")) == 1 for t in best2)


@pytest.mark.parametrize("storage", [{"save_trial_latest": 1},  # ours
                                     # Determined's defaults, written out in its own config
                                     {"type": "shared_fs", "save_experiment_best": 0,
                                      "save_trial_best": 1, "save_trial_latest": 1}])
def test_save_trial_latest_keeps_every_trials_newest_checkpoint(tmp_path, storage):
    cfg_path = make_experiment(tmp_path, searcher={"max_trials": 8}, checkpoint_storage=storage)
    exp = tmp_path / "run"
    r = cli("run", cfg_path, "--exp-dir", exp)
    assert "ignored" not in r.stderr  # honoured
    cfg, st = final_state(exp)
    assert cfg.save_trial_latest == 1 and len(st.trials) == 8
    for t in st.trials.values():
        assert len(os.listdir(exp / "trials" / f"{t.id:05d}" / "checkpoints")) == 1, t.id
    best = json.loads(cli("best", exp, "--top", "8", "--json").stdout)
    assert all(Path(b["checkpoint"]).is_dir() for b in best)

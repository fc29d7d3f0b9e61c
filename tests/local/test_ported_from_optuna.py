"""An Optuna user's port (tests/foreign/optuna_port.py), real jobs on the local backend. Its
objective prunes itself in the middle of a segment, as Optuna's examples do: a pruned trial is
ended with its last reported accuracy as its result (Optuna keeps a pruned trial's last
intermediate value), not failed with no result."""
from pathlib import Path

import pytest
import yaml

from asha_hpc.protocol.journal import read_journal

from conftest import require_module
from helpers import cli, final_state

require_module("torch")
require_module("sklearn")
FOREIGN = Path(__file__).parent.parent / "foreign"


@pytest.mark.parametrize("prune_with", ["asha", "optuna"])
def test_trials_the_objective_prunes_mid_segment_end_with_their_last_value(tmp_path, prune_with):
    if prune_with == "optuna":  # `raise optuna.TrialPruned()` kept: it means the same here
        require_module("optuna", "test")
    units = {f"n_units_l{i}": {"type": "int", "minval": 4, "maxval": 128, "log": True}
             for i in range(3)}
    dropout = {f"dropout_l{i}": {"type": "double", "minval": 0.2, "maxval": 0.5}
               for i in range(3)}
    cfg = {
        "name": "optuna_port", "entrypoint": str(FOREIGN / "optuna_port.py") + ":objective",
        "searcher": {"name": "async_halving", "metric": "accuracy", "smaller_is_better": False,
                     "max_length": 8, "num_rungs": 2, "divisor": 2, "max_trials": 4,
                     "max_concurrent_trials": 2},
        # SGD at lr 1e-5..1e-3 stays near chance: the objective prunes those trials at epoch 2
        "hyperparameters": {"n_layers": {"type": "int", "minval": 1, "maxval": 3}, **units,
                            **dropout,
                            "optimizer": {"type": "categorical", "vals": ["Adam", "SGD"]},
                            "lr": {"type": "double", "minval": 1e-5, "maxval": 1e-1, "log": True},
                            "prune_with": prune_with},
        "reproducibility": {"experiment_seed": 3}, "poll_interval_s": 0.2,
        # warm workers: a pruned trial's worker takes the next trial (a job per segment that
        # ends early is the Keras, Lightning and library early-stopping tests' case)
        "local": {"gpus": [], "max_parallel": 2, "workers": 2},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    exp = tmp_path / "e"
    r = cli("run", tmp_path / "c.yaml", "--exp-dir", exp, timeout=400)
    _, st = final_state(exp)
    assert st.counts()["failed"] == 0, r.stderr
    pruned = [t for t in st.trials.values() if t.ended_early is not None]
    assert pruned, "no trial was pruned: the test's search space no longer has a bad corner"
    for t in pruned:
        assert t.ended_early == 2, (t.id, t.ended_early)  # pruned after its second epoch of 4
        assert t.rung_metrics[t.target] < 0.5  # its last accuracy, as reported
    assert st.ranked()[0].rung_metrics[8] > 0.9  # promoted trials went on from checkpoints
    assert "stopped (final at 2)" in cli("status", exp).stdout
    if prune_with == "optuna":  # the journal says what it took the exception for
        # (a pruned trial promoted while the rung held only pruned ones is carried there
        # without a job, and says nothing of its own)
        ended = [r for r in read_journal(exp / "journal.jsonl")[0]
                 if r.get("ends_trial") and not r.get("carried")]
        assert {r["error"] for r in ended} == {
            "optuna.TrialPruned (ended as asha_hpc.TrainingEndedEarly is)"}

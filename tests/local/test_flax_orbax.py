"""A Flax NNX classifier checkpointed with Orbax, as Flax's tutorial and checkpoint guide write
them (tests/foreign/flax_digits.py), made a trial as the README's "JAX, Flax and Orbax"
paragraph says, in a real search with a job per segment: the promoted trial goes on from its
Orbax checkpoint in a new process and ends exactly where the same trial trained straight
through in one process ends (parameters, optimizer state, the dropout stream and the PRNG key
that shuffles the data all restored)."""
import sys
from pathlib import Path

import yaml

from asha_hpc.config import trial_seed
from asha_hpc.testing import try_trial

from conftest import require_module
from helpers import cli, final_state

FOREIGN = Path(__file__).parent.parent / "foreign"


def test_a_promoted_flax_trial_goes_on_from_its_orbax_checkpoint_as_if_never_stopped(tmp_path):
    for name, package in (("jax", "jax"), ("flax", "flax"), ("optax", "optax"),
                          ("orbax.checkpoint", "orbax-checkpoint"),
                          ("sklearn", "scikit-learn")):
        require_module(name, package=package)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "flax", "entrypoint": str(FOREIGN / "flax_digits.py") + ":train",
        "searcher": {"name": "async_halving", "metric": "val_loss", "smaller_is_better": True,
                     "max_length": {"epochs": 4}, "num_rungs": 2, "divisor": 2,
                     "max_trials": 2, "max_concurrent_trials": 2},
        "hyperparameters": {"learning_rate": {"type": "log", "minval": -3, "maxval": -2},
                            "momentum": 0.9, "hidden": {"type": "int", "minval": 32, "maxval": 64},
                            "batch_size": 32},
        "reproducibility": {"experiment_seed": 11}, "max_restarts": 0, "poll_interval_s": 0.2,
        "local": {"gpus": [], "max_parallel": 2, "workers": 0}}))
    exp = tmp_path / "run"
    r = cli("run", tmp_path / "c.yaml", "--exp-dir", exp, timeout=600)
    _, st = final_state(exp)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0, r.stderr
    (promoted,) = [t for t in st.trials.values() if t.length == 4]
    logs = "".join(p.read_text() for p in (exp / "jobs").glob("*_log.out"))
    assert "restored at epoch 2" in logs, logs  # the second segment's job read the checkpoint
    sys.path.insert(0, str(FOREIGN))
    try:
        import flax_digits
    finally:
        sys.path.remove(str(FOREIGN))
    straight = try_trial(flax_digits.train, promoted.hparams, [2, 4], metric="val_loss",
                         seed=trial_seed(11, promoted.id), in_place=True, folder=tmp_path / "t")
    assert promoted.metric == straight[-1]["metrics"]["val_loss"], (promoted.metric, straight)

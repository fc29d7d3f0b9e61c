"""Lightning Fabric code as the README writes it (tests/foreign/fabric_digits.py), real jobs:
a promoted trial goes on from its Fabric checkpoint with the batches an uninterrupted run
would have drawn, and keeps one TensorBoard run."""
from pathlib import Path

import yaml

from conftest import require_module
from helpers import cli, final_state

require_module("lightning")
require_module("sklearn")
FOREIGN = Path(__file__).parent.parent / "foreign"


def search(tmp_path, name, max_length, rungs, workers, trials=2):
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({
        "name": name, "entrypoint": str(FOREIGN / "fabric_digits.py") + ":train",
        "searcher": {"name": "async_halving", "metric": "val_loss", "max_length": max_length,
                     "num_rungs": rungs, "divisor": 2, "max_trials": trials,
                     "max_concurrent_trials": 2},
        "hyperparameters": {"lr": 0.1, "hidden": 32},  # one config: every trial alike
        "reproducibility": {"experiment_seed": 7}, "poll_interval_s": 0.2,
        "local": {"gpus": [], "max_parallel": 2, "workers": workers}}))
    exp = tmp_path / name
    cli("run", tmp_path / f"{name}.yaml", "--exp-dir", exp, timeout=400)
    return exp, final_state(exp)[1]


def test_a_promoted_fabric_trial_goes_on_as_if_never_stopped(tmp_path):
    exp, st = search(tmp_path, "halving", max_length=4, rungs=2, workers=0)
    (promoted,) = [t for t in st.trials.values() if t.length == 4]
    # trials up to the promoted one's number: its twin has that number, hence its seed
    straight_exp, straight = search(tmp_path, "straight", max_length=4, rungs=1, workers=0,
                                    trials=promoted.id)
    twin = straight.trials[promoted.id]  # the same seed: the same trial, in one job
    batches = (exp / "trials" / f"{promoted.id:05d}" / "batches").read_text()
    assert batches == (straight_exp / "trials" / f"{twin.id:05d}" / "batches").read_text()
    assert [line.split()[0] for line in batches.splitlines()] == ["0", "1", "2", "3"]
    assert abs(promoted.rung_metrics[4] - twin.rung_metrics[4]) < 1e-6
    runs = list((exp / "trials" / f"{promoted.id:05d}" / "tb").rglob("events.out.tfevents.*"))
    assert {p.parent.name for p in runs} == {"version_0"}

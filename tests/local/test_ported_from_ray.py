"""A Ray Tune user's first port (tests/foreign/ray_tune_port.py), real jobs on the local
backend: the right port completes with every epoch trained once; the two first-port mistakes
stop the search at the first trial with one line that says what to change, instead of a
search that ranks 6-epoch models as 1-epoch results, or retries a string six times."""
from pathlib import Path

import pytest
import yaml

from conftest import require_module
from helpers import cli, final_state, journal

require_module("torch")
FOREIGN = Path(__file__).parent.parent / "foreign"


def search(tmp_path, how):
    cfg = {
        "name": "ray_port", "entrypoint": str(FOREIGN / "ray_tune_port.py") + ":train_mnist",
        "searcher": {"name": "async_halving", "metric": "mean_accuracy", "smaller_is_better": False,
                     "max_length": 4, "num_rungs": 3, "divisor": 2, "max_trials": 4,
                     "max_concurrent_trials": 2},
        "hyperparameters": {"lr": {"type": "double", "minval": 1e-3, "maxval": 0.1, "log": True},
                            "momentum": {"type": "double", "minval": 0.1, "maxval": 0.9}},
        "reproducibility": {"experiment_seed": 1}, "poll_interval_s": 0.2,
        "local": {"gpus": [], "max_parallel": 2}, "environment_variables": {"RAY_PORT_HOW": how},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return cli("run", tmp_path / "c.yaml", "--exp-dir", tmp_path / "e", check=False, timeout=300)


def test_the_right_port_trains_every_epoch_once(tmp_path):
    r = search(tmp_path, "segments")
    assert r.returncode == 0, r.stderr
    _, st = final_state(tmp_path / "e")
    assert st.counts()["failed"] == 0 and st.lifecycle == "completed"
    assert max(t.length for t in st.trials.values()) == 4


@pytest.mark.parametrize("how", ["max_epochs", "max_epochs_report_first"])
def test_a_loop_that_trains_past_the_segment_stops_the_search(tmp_path, how):
    r = search(tmp_path, how)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert ("segment.report() for the segment to length 1, and a checkpoint saved for it holds 6 "
            "(save_checkpoint(length=6)): the code trained past the segment") in out, out
    assert "Train each segment to segment.length" in out
    _, st = final_state(tmp_path / "e")
    assert not any(t.rung_metrics for t in st.trials.values())  # nothing ranked at a wrong length
    assert retries(tmp_path / "e") == 0  # stopped at the first failure, nothing retried


def test_a_metric_reported_as_text_stops_the_search_in_one_line(tmp_path):
    r = search(tmp_path, "str_metric")
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert ("the searcher's metric 'mean_accuracy' must be a number (a float, an int, a numpy or "
            "one-element torch value), got str '0.") in out, out
    assert retries(tmp_path / "e") == 0


def test_a_function_that_returns_its_metrics_is_told_they_are_not_read(tmp_path):
    r = search(tmp_path, "return_dict")
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "never as a segment's result: call segment.report(mean_accuracy=...)" in out, out
    assert "; the function returned {'mean_accuracy': 0." in out
    assert "a return value is not read: report it with segment.report" in out
    assert retries(tmp_path / "e") == 0


def retries(exp):
    """Attempts started after a failure (the two trials that ran at once may both fail)."""
    return sum(r["kind"] == "intent" and r["attempt"] > 0 for r in journal(exp))

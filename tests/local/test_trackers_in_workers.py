"""Experiment trackers whose current run is the process's (W&B's ``wandb.run``, MLflow's
active run), in warm workers that train one trial after another: each call of the training
function logs into a run of its own. Before, a worker's second trial went on logging into the
first trial's W&B run (Lightning's ``WandbLogger`` reuses a run in progress), with its
hyperparameters overwritten, and MLflow's quickstart failed the second trial ("Run ... is
already active")."""
import json
from pathlib import Path

import pytest
import yaml

from conftest import require_module
from helpers import cli, final_state, journal

FOREIGN = Path(__file__).parent.parent / "foreign"


def config(tmp_path, entrypoint, hparams, **top):
    cfg = {
        "name": "trackers", "entrypoint": entrypoint,
        "searcher": {"name": "async_halving", "metric": "val_loss", "max_length": 4,
                     "num_rungs": 2, "divisor": 2, "max_trials": 6, "max_concurrent_trials": 2},
        "hyperparameters": hparams, "reproducibility": {"experiment_seed": 2},
        "poll_interval_s": 0.2, "local": {"gpus": [], "max_parallel": 2, "workers": 2}, **top}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_mlflows_quickstart_gets_one_run_per_call_in_warm_workers(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.search_experiments()  # the store's tables, made once (two workers at once race)
    # as the README says: two jobs that make a new experiment at once race in set_experiment,
    # and MLflow 3 leaves the loser's run in Default (CI saw trial 1's run go there)
    client.create_experiment("asha-quickstart")
    cfg = config(tmp_path, str(FOREIGN / "mlflow_tutorial.py") + ":train",
                 {"lr": {"type": "double", "minval": 0.01, "maxval": 0.2, "log": True}},
                 environment_variables={"MLFLOW_TRACKING_URI": uri})
    cli("run", cfg, "--exp-dir", tmp_path / "e", timeout=600)
    _, st = final_state(tmp_path / "e")
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0
    assert sum(r["kind"] == "intent" and r["attempt"] > 0 for r in journal(tmp_path / "e")) == 0
    (experiment,) = [e for e in client.search_experiments() if e.name == "asha-quickstart"]
    runs = client.search_runs([experiment.experiment_id])
    assert {int(r.data.params["trial"]) for r in runs} == set(st.trials)
    for r in runs:
        t = st.trials[int(r.data.params["trial"])]
        assert r.info.run_name == f"trial-{t.id}" and r.info.status == "FINISHED"
        assert float(r.data.params["lr"]) == pytest.approx(t.hparams["lr"])
        steps = [m.step for m in client.get_metric_history(r.info.run_id, "val_loss")]
        assert steps == sorted(steps) and len(steps) == len(set(steps)) and max(steps) <= t.length


@pytest.mark.slow
def test_lightnings_wandb_logger_logs_each_trial_into_its_own_run_in_warm_workers(tmp_path):
    require_module("pytorch_lightning")
    pytest.importorskip("wandb")
    cfg = config(tmp_path, str(FOREIGN / "pl_regression.py") + ":train",
                 {"lr": {"type": "log", "minval": -3, "maxval": -1, "base": 10},
                  "width": {"type": "int", "minval": 4, "maxval": 32}, "logger": "wandb"},
                 environment_variables={"WANDB_SILENT": "true"})
    spec = yaml.safe_load(cfg.read_text())
    spec["searcher"].update(metric="val/mse", max_length={"batches": 10})
    cfg.write_text(yaml.safe_dump(spec))
    cli("run", cfg, "--exp-dir", tmp_path / "e", timeout=600)
    _, st = final_state(tmp_path / "e")
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0
    owner = {}
    pids = set()
    for t in st.trials.values():
        for line in (tmp_path / "e" / "trials" / f"{t.id:05d}" / "wandb_runs.jsonl").read_text().splitlines():
            w = json.loads(line)
            assert w["lr"] == pytest.approx(t.hparams["lr"]), (t.id, w)  # its own hyperparameters
            assert owner.setdefault(w["run"], t.id) == t.id, (w["run"], owner[w["run"]], t.id)
            pids.add(w["pid"])
    assert len(pids) <= 2 < len(st.trials)  # warm workers trained several trials each



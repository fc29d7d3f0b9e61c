"""Mistakes that cost compute without failing anything, made in every trial the way an Optuna
user's port makes them: a 0-based epoch given as the checkpoint's length, and segment.report()
every epoch. The job noticed them in its log only, which people read after something failed;
the master now says each kind once, whatever number of trials repeat it."""
import yaml

from helpers import run_cli

OPTUNA_HABITS = '''
import json


def objective(trial):
    epoch = 0
    if trial.latest_checkpoint is not None:
        epoch = json.loads((trial.latest_checkpoint / "state.json").read_text())["epoch"]
    for segment in trial.segments():
        for epoch in range(epoch, segment.length):
            accuracy = 1.0 - 0.5 * (trial.hparams["x"] - 0.3) ** 2 - 1.0 / (2 + epoch)
            segment.report(accuracy=accuracy)              # as trial.report(accuracy, epoch)
        with trial.save_checkpoint(length=epoch) as path:  # 0-based: one short of the length
            (path / "state.json").write_text(json.dumps({"epoch": epoch + 1}))
        segment.report(accuracy=accuracy)                  # and the final value once more
        epoch += 1
'''


def test_each_kind_of_mistake_is_said_once_by_the_master(tmp_path):
    (tmp_path / "port.py").write_text(OPTUNA_HABITS)
    cfg = {"name": "habits", "entrypoint": "port:objective",
           "searcher": {"name": "async_halving", "metric": "accuracy", "smaller_is_better": False,
                        "max_length": 8, "num_rungs": 2, "divisor": 2, "max_trials": 6,
                        "max_concurrent_trials": 2},
           "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
           "reproducibility": {"experiment_seed": 5}, "poll_interval_s": 0.2,
           "local": {"gpus": [], "max_parallel": 2, "workers": 0}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    exp = tmp_path / "run"
    r = run_cli("run", tmp_path / "c.yaml", "--exp-dir", exp)
    assert r.returncode == 0, r.stderr
    said = [ln for ln in r.stderr.splitlines() if "'s code (said once" in ln]
    again = [ln for ln in said if "segment.report() again for the segment" in ln]
    short = [ln for ln in said if "but the checkpoint saved last holds" in ln]
    assert len(again) == 1 and len(short) == 1, "\n".join(said)
    assert len(said) == 2, "\n".join(said)
    assert "epoch + 1 in a 0-based loop" in short[0]
    assert f"asha-hpc logs {exp} " in short[0]

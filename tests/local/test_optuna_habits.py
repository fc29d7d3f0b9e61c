"""An Optuna user's first ports, mistakes as they come: the search stops at the first trial
(every trial would repeat them) with one line in this library's words, where each cost 3
trials and up to 5 jobs with "'Trial' object has no attribute 'suggest_int'" or "report():
metrics must be a dict ..., got int"."""
import pytest
import yaml

from helpers import cli, journal

OBJECTIVE = '''
import math


def objective(trial):
    x = MISTAKE
    for segment in trial.segments():
        for epoch in range(segment.length):
            accuracy = 1.0 - 1.0 / (epoch + 2) - abs(trial.hparams["x"] - 0.3)
            REPORT
        segment.report(accuracy=accuracy)
'''

CASES = {
    "suggest": ('trial.suggest_float("x", 0.0, 1.0)', "trial.report_metrics(epoch + 1, accuracy=accuracy)",
                "trial.suggest_float: hyperparameters are drawn from the config's `hyperparameters`; "
                "read them as trial.hparams['name']"),
    "report": ('trial.hparams["x"]', "trial.report(accuracy, epoch)",
               "trial.report: a curve point is trial.report_metrics(step, name=value)"),
    "swapped": ('trial.hparams["x"]', "trial.report_metrics(accuracy, epoch)",
                "the step comes first and the metrics are named: trial.report_metrics(step, "
                "accuracy=value)"),
    "prune": ('trial.hparams["x"]', "trial.should_prune()",
              "trial.should_prune: the searcher stops trials between segments"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_optuna_habit_stops_the_search_at_once_in_its_words(tmp_path, case):
    mistake, report, said = CASES[case]
    (tmp_path / "objective.py").write_text(
        OBJECTIVE.replace("MISTAKE", mistake).replace("REPORT", report))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "optuna", "entrypoint": "objective:objective",
        "searcher": {"name": "async_halving", "metric": "accuracy", "smaller_is_better": False,
                     "max_length": 4, "num_rungs": 2, "divisor": 2, "max_trials": 8,
                     "max_concurrent_trials": 4},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
        "poll_interval_s": 0.2, "local": {"gpus": [], "max_parallel": 4, "workers": 0}}))
    exp = tmp_path / "run"
    r = cli("run", tmp_path / "c.yaml", "--exp-dir", exp, check=False)
    assert r.returncode == 1
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("asha-hpc: experiment failed:")]
    assert said in line, line
    results = [x for x in journal(exp) if x["kind"] == "result"]
    assert all(x["status"] == "error" and x["attempt"] == 0 for x in results)  # none retried
    assert len([x for x in journal(exp) if x["kind"] == "intent"]) <= 3  # probe_jobs

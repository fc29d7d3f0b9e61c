"""A library's own early stopping (gradient boosting with boosting iterations as the length):
the code reports, then raises asha_hpc.TrainingEndedEarly. The model is final, so its result
stands at the segment's length, and each promotion carries it up without a job. Written the
way scikit-learn's docs use HistGradientBoostingClassifier (warm_start, early_stopping)."""
import json
import pickle
import sys
from pathlib import Path

import pytest
import yaml

from helpers import cli, final_state, journal

pytest.importorskip("sklearn")

FUNCTION = '''
import pickle

import asha_hpc
from sklearn.datasets import load_digits
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split


def train(trial):
    X, y = load_digits(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.25, random_state=0)
    if trial.latest_checkpoint is not None:
        with open(trial.latest_checkpoint / "model.pkl", "rb") as f:
            clf = pickle.load(f)
    else:
        clf = HistGradientBoostingClassifier(
            learning_rate=trial.hparams["learning_rate"],
            max_leaf_nodes=trial.hparams["max_leaf_nodes"], warm_start=True,
            early_stopping=True, n_iter_no_change=3, validation_fraction=0.2, random_state=0)
    for segment in trial.segments():
        clf.set_params(max_iter=segment.length)
        clf.fit(X_train, y_train)
        with trial.save_checkpoint(length=clf.n_iter_) as path:
            with open(path / "model.pkl", "wb") as f:
                pickle.dump(clf, f)
        segment.report(accuracy=clf.score(X_val, y_val), n_iter=clf.n_iter_)
        if clf.n_iter_ < segment.length:
            raise asha_hpc.TrainingEndedEarly(f"early stopping after {clf.n_iter_} iterations")
'''

# the same as a command: it reads its segment from the environment and writes report lines
COMMAND = '''
import json, os, pickle, sys
from pathlib import Path

from sklearn.datasets import load_digits
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split

hp = json.loads(os.environ["ASHA_HPARAMS"])
target = int(os.environ["ASHA_TARGET_LENGTH"])
latest = os.environ["ASHA_LATEST_CHECKPOINT"]
X, y = load_digits(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.25, random_state=0)
if latest:
    clf = pickle.loads((Path(latest) / "model.pkl").read_bytes())
else:
    clf = HistGradientBoostingClassifier(
        learning_rate=hp["learning_rate"], max_leaf_nodes=hp["max_leaf_nodes"], warm_start=True,
        early_stopping=True, n_iter_no_change=3, validation_fraction=0.2, random_state=0)
clf.set_params(max_iter=target)
clf.fit(X_train, y_train)
(Path(os.environ["ASHA_CHECKPOINT_DIR"]) / "model.pkl").write_bytes(pickle.dumps(clf))
with open(os.environ["ASHA_REPORT_FILE"], "a") as f:
    f.write(json.dumps({"metrics": {"accuracy": clf.score(X_val, y_val), "n_iter": clf.n_iter_},
                        "reached": clf.n_iter_}) + "\\n")
    if clf.n_iter_ < target:
        f.write(json.dumps({"ended_early": f"early stopping after {clf.n_iter_} iterations"}) + "\\n")
'''


def write(tmp_path, entry):
    if entry == "function":
        (tmp_path / "boost.py").write_text(FUNCTION)
        how = {"entrypoint": "boost:train"}
    else:
        (tmp_path / "boost_cmd.py").write_text(COMMAND)
        how = {"command": [sys.executable, "boost_cmd.py"]}
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(dict(how, **{
        "name": "boost",
        "searcher": {"name": "adaptive_asha", "metric": "accuracy", "smaller_is_better": False,
                     "max_length": {"batches": 64}, "max_trials": 6,
                     "max_concurrent_trials": 2, "mode": "aggressive", "divisor": 2},
        "hyperparameters": {"learning_rate": {"type": "log", "base": 10, "minval": -1.3,
                                              "maxval": 0},
                            "max_leaf_nodes": {"type": "int", "minval": 4, "maxval": 31}},
        "reproducibility": {"experiment_seed": 3}, "poll_interval_s": 0.2,
        "local": {"gpus": [], "max_parallel": 2}})))
    return cfg


@pytest.mark.parametrize("entry", ["function", "command"])
def test_a_model_that_stopped_early_keeps_its_result_and_climbs_without_training(tmp_path, entry):
    exp = tmp_path / "run"
    cli("run", write(tmp_path, entry), "--exp-dir", exp, timeout=600)
    cfg, st = final_state(exp)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0
    results = [r for r in journal(exp) if r["kind"] == "result"]
    ended = [r for r in results if r.get("ends_trial")]
    stopped = [r for r in ended if not r.get("carried")]
    assert stopped, "no trial stopped early: the test's learning rates no longer make it"
    for r in stopped:  # the result of where training ended, with the length it ended at
        assert r["status"] == "completed" and r["reached"] == r["metrics"]["n_iter"] < r["length"]
    carried = [r for r in results if r.get("carried")]
    assert carried, "no trial that stopped early was promoted"
    intents = {(r["trial"], r["segment"], r["attempt"]) for r in journal(exp)
               if r["kind"] == "intent"}
    for r in carried:  # promoted without a job, with the model's one result
        assert (r["trial"], r["segment"], r["attempt"]) not in intents
        first = next(s for s in stopped if s["trial"] == r["trial"])
        assert r["metrics"] == first["metrics"] and r["reached"] == first["reached"]
        assert r["checkpoint"] == first["checkpoint"]
    # the best trial's metric is its checkpoint's model's, whether or not it stopped early
    best = json.loads(cli("best", exp, "--json").stdout)[0]
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    _, X_val, _, y_val = train_test_split(X, y, test_size=0.25, random_state=0)
    model = pickle.loads((Path(best["checkpoint"]) / "model.pkl").read_bytes())
    assert model.score(X_val, y_val) == pytest.approx(best["metric"])
    assert best["length"] == 64
    if best.get("trained") is not None:
        assert best["trained"] == model.n_iter_ < 64
        assert f"its code ended training at {model.n_iter_}" in cli("best", exp).stdout
    status = cli("status", exp).stdout  # the top trials that stopped early say where
    top = json.loads(cli("status", exp, "--json").stdout)["top"]
    for tr in top:
        t = st.trials[tr["trial_id"]]
        assert tr.get("trained") == t.ended_early
        if t.ended_early is not None:
            assert f"{tr['status']} (final at {t.ended_early})" in status
    assert any(tr.get("trained") for tr in top), "no top trial ended early: the test shows nothing"
    rows = cli("export", exp, "--format", "csv").stdout.splitlines()
    assert "trained" in rows[0].split(",") and "metrics.n_iter" in rows[0].split(",")
    for r in carried:  # the searcher took the carried results: the trial got that far
        assert st.trials[r["trial"]].length >= r["length"]
        assert st.trials[r["trial"]].rung_metrics[r["length"]] == r["metrics"]["accuracy"]

    # what was trained, counted: the carried promotions cost max_compute and progress nothing
    reached, units = {}, 0
    for r in journal(exp):
        if r["kind"] == "intent":
            units += r["length"] - reached.get(r["trial"], 0)
        elif r["kind"] == "result" and r["status"] == "completed":
            reached[r["trial"]] = r["length"]
    assert st.searcher.compute_started() == units
    status = json.loads(cli("status", exp, "--json").stdout)
    trained = sum(t.length if t.ended_early is None else t.ended_early
                  for t in st.trials.values())
    assert status["progress"]["units_done"] == trained < sum(t.length for t in st.trials.values())
    # the logs of a trial whose last result was carried are its last job's
    tid = carried[-1]["trial"]
    logs = cli("logs", exp, tid, "--err")
    assert logs.returncode == 0 and "Traceback" not in logs.stderr
    (row,) = [b for b in json.loads(cli("best", exp, "--top", "10", "--json").stdout)
              if b["trial_id"] == tid]
    assert row["logs"]["err"] and Path(row["logs"]["err"]).exists()
    pd = pytest.importorskip("pandas")
    from asha_hpc.views.results import dataframe

    df = dataframe(exp)
    assert df["trained"].dtype.kind in "iuf" and isinstance(df, pd.DataFrame)
    assert (df["trained"] <= df["length"]).all()


def test_early_stopping_not_said_to_be_final_shows_in_best_and_status(tmp_path):
    """The same function without ``raise TrainingEndedEarly``: the search cannot know the model
    is final, and ranks its result as trained to the segment's length. What the checkpoint
    holds is in the manifest: ``best`` and ``status`` say it is short, and what to raise."""
    cfg = write(tmp_path, "function")
    without = FUNCTION.split("        if clf.n_iter_ < segment.length")[0]
    assert "TrainingEndedEarly" not in without and "segment.report(" in without
    (tmp_path / "boost.py").write_text(without)
    exp = tmp_path / "run"
    cli("run", cfg, "--exp-dir", exp, timeout=600)
    _, st = final_state(exp)
    rows = json.loads(cli("best", exp, "--json", "--top", "10").stdout)
    short = [r for r in rows if r.get("checkpoint_length") is not None]
    assert short, "no trial stopped early: the test's learning rates no longer make it"
    for r in short:
        model = pickle.loads((Path(r["checkpoint"]) / "model.pkl").read_bytes())
        assert r["checkpoint_length"] == model.n_iter_ < r["length"] and "trained" not in r
    text = cli("best", exp, "--top", "10").stdout
    r = short[0]
    assert (f"(holds length {r['checkpoint_length']}, short of its result's {r['length']}: the "
            f"code reported after its last save; if its training ended there on purpose, raise "
            f"asha_hpc.TrainingEndedEarly after the report)") in text
    top = json.loads(cli("status", exp, "--json").stdout)["top"]
    status = cli("status", exp).stdout
    for tr in top:
        if tr.get("checkpoint_length") is not None:
            assert f"{tr['status']} (checkpoint at {tr['checkpoint_length']})" in status
    assert {tr["trial_id"] for tr in top if tr.get("checkpoint_length")} == {
        r["trial_id"] for r in rows[:len(top)] if r.get("checkpoint_length")}

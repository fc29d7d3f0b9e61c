"""A model sampler (``searcher.sampler: tpe`` or ``gp``) on the local backend with real jobs: a
scikit-learn script written the way its tutorials write one (``SGDClassifier.partial_fit`` on
digits, accuracy to maximise, a pickled checkpoint), the master killed once mid-search and
resumed. Every job must have trained the configuration the journal holds for its trial."""
import json
import signal
import subprocess
import sys
import time

import pytest
import yaml

from helpers import cli, final_state, journal

pytest.importorskip("sklearn", reason="pip install scikit-learn")

SCRIPT = '''
import json
import pickle

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split


def train(trial):
    hp = trial.hparams
    with open(trial.dir / "seen.jsonl", "a") as f:
        f.write(json.dumps(hp) + "\\n")
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.25, random_state=0)
    clf = SGDClassifier(loss=hp["loss"], penalty=hp["penalty"], alpha=hp["alpha"],
                        learning_rate="constant", eta0=hp["eta0"], random_state=0)
    epoch = 0
    if trial.latest_checkpoint is not None:
        with open(trial.latest_checkpoint / "model.pkl", "rb") as f:
            clf, epoch = pickle.load(f)
    rng = np.random.default_rng(epoch)
    for segment in trial.segments():
        while epoch < segment.length:
            order = rng.permutation(len(X_train))
            for start in range(0, len(order), hp["batch_size"]):
                idx = order[start:start + hp["batch_size"]]
                clf.partial_fit(X_train[idx], y_train[idx], classes=np.arange(10))
            epoch += 1
        accuracy = clf.score(X_val, y_val)
        with trial.save_checkpoint(length=epoch) as path:
            with open(path / "model.pkl", "wb") as f:
                pickle.dump((clf, epoch), f)
        segment.report({"accuracy": accuracy}, epoch=epoch)
'''

SPACE = {
    "alpha": {"type": "log", "minval": -6, "maxval": -1, "base": 10},
    "eta0": {"type": "log", "minval": -4, "maxval": 0, "base": 10},
    "loss": {"type": "categorical", "vals": ["hinge", "log_loss", "modified_huber"]},
    "penalty": {"type": "categorical", "vals": ["l2", "l1", "elasticnet"]},
    "batch_size": {"type": "int", "minval": 16, "maxval": 128},
}


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_model_draws_reach_their_jobs_through_a_master_kill(tmp_path, sampler):
    (tmp_path / "train.py").write_text(SCRIPT)
    cfg = {"name": f"sgd-digits-{sampler}", "entrypoint": "train:train",
           "searcher": {"name": "adaptive_asha", "metric": "accuracy", "smaller_is_better": False,
                        "max_length": {"epochs": 9}, "max_trials": 40,
                        "max_concurrent_trials": 4, "mode": "aggressive", "divisor": 3,
                        "sampler": sampler},
           "hyperparameters": SPACE, "reproducibility": {"experiment_seed": 7},
           "backend": "local", "poll_interval_s": 0.2}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    exp = tmp_path / "run"

    # the master is killed once the model has drawn a few trials, then resumed
    p = subprocess.Popen([sys.executable, "-m", "asha_hpc.cli", "run", str(path), "--exp-dir",
                          str(exp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        if exp.joinpath("journal.jsonl").exists() and \
                sum(r["kind"] == "sampled" for r in journal(exp)) >= 3:
            break
        time.sleep(0.05)
    assert p.poll() is None, "the search ended before the model drew three trials"
    p.send_signal(signal.SIGKILL)
    p.wait()
    before = {r["trial"]: r["hparams"] for r in journal(exp) if r["kind"] == "sampled"}
    cli("resume", exp)

    cfg_, st = final_state(exp)
    assert st.lifecycle == "completed"
    recs = journal(exp)
    sampled: dict[int, list[dict]] = {}
    for r in recs:
        if r["kind"] == "sampled":
            sampled.setdefault(r["trial"], []).append(r["hparams"])
    # a draw journaled before the kill is never drawn again, and the model kept drawing after
    assert all(sampled[t] == [hp] for t, hp in before.items())
    assert len(sampled) > len(before)
    assert all(len(v) == 1 for v in sampled.values())
    # every run of every trial trained its own configuration: the journaled one for model draws
    for t in st.trials.values():
        seen = [json.loads(line) for line in (exp / "trials" / f"{t.id:05d}" / "seen.jsonl")
                .read_text().splitlines()]
        assert seen and all(s == t.hparams for s in seen), t.id
        if t.id in sampled:
            assert t.hparams == sampled[t.id][0]
        assert t.hparams["loss"] in SPACE["loss"]["vals"] and 16 <= t.hparams["batch_size"] <= 128
        assert isinstance(t.hparams["batch_size"], int)
    best = json.loads(cli("best", exp, "--json").stdout)
    assert best[0]["length"] == 9 and best[0]["metric"] > 0.8


def test_given_configurations_reach_their_jobs(tmp_path):
    """``points_to_evaluate`` from a user's YAML: scikit-learn's own defaults for
    SGDClassifier first, then a partial point; real jobs train exactly those values, status and
    export say so, and a point outside the space is refused before anything runs."""
    (tmp_path / "train.py").write_text(SCRIPT)
    points = [{"alpha": 0.0001, "loss": "hinge", "penalty": "l2"},  # sklearn's defaults
              {"eta0": 0.01, "batch_size": 32}]
    cfg = {"name": "sgd-digits-given", "entrypoint": "train:train",
           "searcher": {"name": "adaptive_asha", "metric": "accuracy", "smaller_is_better": False,
                        "max_length": {"epochs": 3}, "max_trials": 8,
                        "max_concurrent_trials": 4, "mode": "aggressive", "divisor": 3,
                        "sampler": "tpe", "points_to_evaluate": points},
           "hyperparameters": SPACE, "reproducibility": {"experiment_seed": 7},
           "backend": "local", "poll_interval_s": 0.2}
    path = tmp_path / "exp.yaml"
    bad = dict(cfg, searcher=dict(cfg["searcher"], points_to_evaluate=[{"alpha": 0.5}]))
    path.write_text(yaml.safe_dump(bad))
    r = cli("run", path, "--exp-dir", tmp_path / "bad", check=False)
    assert r.returncode != 0
    assert "searcher.points_to_evaluate[0].alpha: 0.5 is outside 1e-06 .. 0.1" in r.stderr
    assert not (tmp_path / "bad" / "trials").exists()

    path.write_text(yaml.safe_dump(cfg))
    exp = tmp_path / "run"
    cli("run", path, "--exp-dir", exp)
    _, st = final_state(exp)
    assert st.lifecycle == "completed"
    for tid, point in ((1, points[0]), (2, points[1])):
        seen = [json.loads(line) for line in (exp / "trials" / f"{tid:05d}" / "seen.jsonl")
                .read_text().splitlines()]
        assert seen and all({k: s[k] for k in point} == point for s in seen), tid
    rows = [json.loads(line) for line in
            cli("export", exp, "--format", "jsonl").stdout.splitlines()]
    assert [r["sampled_by"] for r in rows[:2]] == ["given", "given"]
    assert {r["sampled_by"] for r in rows[2:]} <= {"model", "random"}
    assert "sampler tpe (" in cli("status", exp).stdout


@pytest.mark.slow
def test_a_second_search_warm_started_from_a_real_first_one(tmp_path):
    """A random first search with real jobs (accuracy, larger is better), then a tpe search
    with ``warm_start`` and a narrower batch size: the model gets the first search's results as
    losses (minus the accuracy), leaves out the trials outside the new range, draws from its
    first trials on, and real jobs train exactly what the journal holds."""
    (tmp_path / "train.py").write_text(SCRIPT)
    base = {"entrypoint": "train:train",
            "searcher": {"name": "adaptive_asha", "metric": "accuracy",
                         "smaller_is_better": False, "max_length": {"epochs": 3},
                         "max_trials": 24, "max_concurrent_trials": 4, "mode": "aggressive",
                         "divisor": 3},
            "hyperparameters": SPACE, "reproducibility": {"experiment_seed": 7},
            "backend": "local", "poll_interval_s": 0.2}
    (tmp_path / "first.yaml").write_text(yaml.safe_dump(dict(base, name="first")))
    cli("run", tmp_path / "first.yaml", "--exp-dir", tmp_path / "runs" / "first")
    _, first = final_state(tmp_path / "runs" / "first")

    narrow = dict(SPACE, batch_size={"type": "int", "minval": 16, "maxval": 100})
    second = dict(base, name="second", hyperparameters=narrow,
                  searcher=dict(base["searcher"], sampler="tpe", max_trials=8,
                                warm_start="runs/first"))
    (tmp_path / "second.yaml").write_text(yaml.safe_dump(second))
    exp = tmp_path / "runs" / "second"
    cli("run", tmp_path / "second.yaml", "--exp-dir", exp)
    _, st = final_state(exp)
    assert st.lifecycle == "completed"
    recs = journal(exp)
    warm = recs[0]
    assert warm["kind"] == "warm_start"
    inside = [t for t in sorted(first.trials.values(), key=lambda t: t.id)
              if t.rung_metrics and t.hparams["batch_size"] <= 100]
    assert warm["left_out"] > 0 and warm["left_out"] == sum(1 for t in first.trials.values()
                                   if t.rung_metrics and t.hparams["batch_size"] > 100)
    assert [t["hparams"] for t in warm["trials"]] == [t.hparams for t in inside]
    assert [dict(t["losses"]) for t in warm["trials"]] == \
        [{k: -v for k, v in t.rung_metrics.items()} for t in inside]
    sampled = {r["trial"]: r["hparams"] for r in recs if r["kind"] == "sampled"}
    assert sampled.keys() & {1, 2, 3, 4}  # drawn from the model before any result of its own
    for t in st.trials.values():
        seen = [json.loads(line) for line in (exp / "trials" / f"{t.id:05d}" / "seen.jsonl")
                .read_text().splitlines()]
        assert seen and all(s == t.hparams for s in seen), t.id
        assert 16 <= t.hparams["batch_size"] <= 100
    assert "warm-started from " in cli("status", exp).stdout

"""XGBoost's and LightGBM's native APIs as their docs write them (tests/foreign/
xgboost_docs_style.py, lightgbm_docs_style.py), written for asha_hpc as the README says, in
real searches with a job per segment (``workers: 0``: every promotion goes on from its
checkpoint): a continued booster predicts exactly what the straight run predicts, a booster
that stopped early ends its trial and climbs without a job, LightGBM's booster that trained its
whole segment is not taken for one that stopped, and a retry after a crash right after the
checkpoint was saved (the segment is in it: nothing to train) completes."""
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from asha_hpc.config import trial_seed

from conftest import require_module
from helpers import cli, final_state, journal

require_module("sklearn")
FOREIGN = Path(__file__).parent.parent / "foreign"
SEGMENT = 16  # the first rung: async_halving, max_length 64, divisor 2, 3 rungs

# trial 1 trains its segments whole and is killed once right after its first save; trial 2's
# early stopping fires before round 16 with a result good enough to be promoted; LightGBM's
# trial 3 trains its 16 rounds whole, its best iteration before the last
LIBS = {
    "xgboost": {
        "file": "xgboost_docs_style.py",
        "space": {"eta": {"type": "log", "base": 10, "minval": -2, "maxval": 0},
                  "max_depth": {"type": "int", "minval": 2, "maxval": 6}},
        "points": [{"eta": 0.2, "max_depth": 2}, {"eta": 1.0, "max_depth": 6},
                   {"eta": 0.5, "max_depth": 2}, {"eta": 0.03, "max_depth": 3},
                   {"eta": 0.05, "max_depth": 4}, {"eta": 0.1, "max_depth": 2}],
    },
    "lightgbm": {
        "file": "lightgbm_docs_style.py",
        "space": {"learning_rate": {"type": "log", "base": 10, "minval": -2, "maxval": 0},
                  "num_leaves": {"type": "int", "minval": 4, "maxval": 16}},
        "points": [{"learning_rate": 0.2, "num_leaves": 4},
                   {"learning_rate": 0.7, "num_leaves": 16},
                   {"learning_rate": 0.7, "num_leaves": 4},
                   {"learning_rate": 0.03, "num_leaves": 8},
                   {"learning_rate": 0.05, "num_leaves": 16},
                   {"learning_rate": 0.1, "num_leaves": 4}],
    },
}


def data():
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0)


def checkpoint_and_straight(lib, hparams, seed, checkpoint):
    """What the checkpoint's booster predicts, its rounds, and what a booster of the same
    hyperparameters trained straight to those rounds in one call predicts."""
    X_train, X_valid, y_train, _ = data()
    if lib == "xgboost":
        import xgboost as xgb

        saved = xgb.Booster(model_file=Path(checkpoint) / "model.json")
        rounds = saved.num_boosted_rounds()
        params = {"objective": "binary:logistic", "eval_metric": "logloss",
                  "eta": hparams["eta"], "max_depth": hparams["max_depth"], "nthread": 1,
                  "seed": seed}
        straight = xgb.train(params, xgb.DMatrix(X_train, label=y_train), rounds)
        dvalid = xgb.DMatrix(X_valid)
        return saved.predict(dvalid), rounds, straight.predict(dvalid)
    import lightgbm as lgb

    saved = lgb.Booster(model_file=Path(checkpoint) / "model.txt")
    rounds = saved.current_iteration()
    params = {"objective": "binary", "metric": "binary_logloss",
              "learning_rate": hparams["learning_rate"], "num_leaves": hparams["num_leaves"],
              "num_threads": 1, "seed": seed, "verbose": -1}
    straight = lgb.train(params, lgb.Dataset(X_train, label=y_train), rounds)
    return saved.predict(X_valid), rounds, straight.predict(X_valid)


@pytest.mark.parametrize("lib", ["xgboost", "lightgbm"])
def test_native_boosters_go_on_stop_early_and_survive_a_crash(tmp_path, lib):
    require_module(lib, package={"xgboost": "xgboost-cpu", "lightgbm": "lightgbm"}[lib])
    from sklearn.metrics import log_loss

    spec = LIBS[lib]
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": lib, "entrypoint": str(FOREIGN / spec["file"]) + ":train",
        "searcher": {"name": "async_halving", "metric": "logloss", "smaller_is_better": True,
                     "max_length": 64, "num_rungs": 3, "divisor": 2, "max_trials": 6,
                     "max_concurrent_trials": 2, "points_to_evaluate": spec["points"]},
        "hyperparameters": spec["space"], "reproducibility": {"experiment_seed": 11},
        "environment_variables": {"CRASH_ONCE_TRIAL": "1"}, "max_restarts": 1,
        "checkpoint_storage": {"save_trial_latest": 1},  # every trial's model, to compare
        "poll_interval_s": 0.2, "local": {"gpus": [], "max_parallel": 2, "workers": 0}}))
    exp = tmp_path / "run"
    cli("run", cfg, "--exp-dir", exp, timeout=300)
    _, st = final_state(exp)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0
    recs = journal(exp)
    results = [r for r in recs if r["kind"] == "result"]
    intents = {(r["trial"], r["segment"], r["attempt"]) for r in recs if r["kind"] == "intent"}
    _, X_valid, _, y_valid = data()

    # (d) trial 1 was killed right after saving its first segment; the retry found the
    # segment in the checkpoint, trained nothing, and its result stands
    assert (exp / "trials" / "00001" / "crashed").exists()
    first = [r for r in results if r["trial"] == 1 and r["segment"] == 0]
    assert [r["status"] for r in first][-1] == "completed" and first[-1]["attempt"] >= 1
    assert first[-1]["metrics"]["rounds"] == SEGMENT and st.trials[1].status != "failed"
    assert st.trials[1].ended_early is None
    assert "-a00-" in Path(first[-1]["checkpoint"]).name  # the killed attempt's checkpoint

    # (b) trial 2's early stopping fired in its first segment: final there, and promoted
    # without a job, with the same result
    stopped = st.trials[2].ended_early
    assert stopped is not None and stopped < SEGMENT, "trial 2 no longer stops early"
    carried = [r for r in results if r["trial"] == 2 and r.get("carried")]
    assert carried, "trial 2 stopped early but was not promoted"
    own = next(r for r in results if r["trial"] == 2 and not r.get("carried"))
    assert own["metrics"]["rounds"] == stopped
    for r in carried:
        assert (r["trial"], r["segment"], r["attempt"]) not in intents
        assert r["metrics"] == own["metrics"] and r["checkpoint"] == own["checkpoint"]
    if lib == "xgboost":  # the model keeps early_stopping_rounds (5) rounds past its best one
        import xgboost as xgb

        saved = xgb.Booster(model_file=Path(own["checkpoint"]) / "model.json")
        assert saved.best_iteration + 1 + 5 == saved.num_boosted_rounds() == stopped

    # (c) every trial not ended early trained each segment whole: its last result and its
    # checkpoint are at its length (LightGBM's keep_training_booster=True: trial 3's best
    # iteration of its first segment came before round 16, and it was not cut there)
    for t in st.trials.values():
        last = [r for r in results if r["trial"] == t.id and r["status"] == "completed"][-1]
        if t.ended_early is None:
            assert last["metrics"]["rounds"] == t.length, t.id
    if lib == "lightgbm":  # trial 3's first segment, trained alone as the code trains it
        import lightgbm as lgb

        X_train, _, y_train, _ = data()

        def first_segment(**keep):
            train_data = lgb.Dataset(X_train, label=y_train)
            return lgb.train({"objective": "binary", "metric": "binary_logloss",
                              "learning_rate": 0.7, "num_leaves": 4, "num_threads": 1,
                              "seed": trial_seed(11, 3), "verbose": -1}, train_data, SEGMENT,
                             valid_sets=[lgb.Dataset(X_valid, label=y_valid,
                                                     reference=train_data)],
                             callbacks=[lgb.early_stopping(5, verbose=False)], **keep)

        kept = first_segment(keep_training_booster=True)
        assert kept.current_iteration() == SEGMENT and kept.best_iteration < SEGMENT
        assert first_segment().current_iteration() == kept.best_iteration  # the default: cut
        (seg0,) = [r for r in results if r["trial"] == 3 and r["segment"] == 0]
        assert seg0["metrics"]["rounds"] == SEGMENT and not seg0.get("ends_trial")
        assert st.trials[3].ended_early is None or st.trials[3].ended_early > SEGMENT

    # (a) every checkpoint's booster, the top trial's and those continued from a checkpoint
    # included, predicts exactly what the straight run to its rounds predicts, and its
    # reported logloss is that booster's
    top = json.loads(cli("best", exp, "--json").stdout)[0]
    continued = 0
    for t in st.trials.values():
        saved, rounds, straight = checkpoint_and_straight(
            lib, t.hparams, trial_seed(11, t.id), t.checkpoint)
        assert np.array_equal(saved, straight), (t.id, rounds)
        assert t.last_metrics["logloss"] == log_loss(y_valid, saved)
        assert rounds == (t.ended_early or t.length)
        continued += rounds > SEGMENT
        if t.id == top["trial_id"]:
            assert top["metric"] == t.last_metrics["logloss"]
    assert continued, "no trial went on from its checkpoint"

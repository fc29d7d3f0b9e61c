"""LightGBM's native API as its docs write it (lgb.Dataset, lgb.train with valid_sets,
the early_stopping and log_evaluation callbacks, init_model) on scikit-learn's breast cancer
data, written for asha_hpc as the README's LightGBM paragraph says: keep_training_booster=True
(else the booster comes back cut to its best iteration, though it trained the whole segment),
the boosting rounds are the length, a booster that stopped early ends the trial, and a retry
whose checkpoint already holds the segment trains nothing. ``CRASH_ONCE_TRIAL`` (tests only)
kills that trial's job once, right after its first checkpoint is saved."""
import os
import signal

import lightgbm as lgb
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

import asha_hpc


def train(trial):
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.25, random_state=0)
    params = {"objective": "binary", "metric": "binary_logloss",
              "learning_rate": trial.hparams["learning_rate"],
              "num_leaves": trial.hparams["num_leaves"],
              "num_threads": 1, "seed": trial.seed, "verbose": -1}
    booster = None
    if trial.latest_checkpoint is not None:
        booster = lgb.Booster(model_file=trial.latest_checkpoint / "model.txt")
    for segment in trial.segments():
        done = booster.current_iteration() if booster is not None else 0
        if done < segment.length:  # a retry may find the segment saved already: train nothing
            train_data = lgb.Dataset(X_train, label=y_train)
            valid_data = lgb.Dataset(X_valid, label=y_valid, reference=train_data)
            evals_result = {}
            try:
                booster = lgb.train(params, train_data, num_boost_round=segment.length - done,
                                    valid_sets=[valid_data], valid_names=["valid"],
                                    init_model=booster, keep_training_booster=True,
                                    callbacks=[lgb.early_stopping(stopping_rounds=5),
                                               lgb.log_evaluation(period=10),
                                               lgb.record_evaluation(evals_result)])
            except lgb.basic.LightGBMError as e:
                raise asha_hpc.InvalidHP(str(e).splitlines()[0]) from e
            for i, value in enumerate(evals_result["valid"]["binary_logloss"]):
                trial.report_metrics(done + i + 1, logloss=value)
            with trial.save_checkpoint(length=booster.current_iteration()) as path:
                booster.save_model(path / "model.txt", num_iteration=-1)
            crashed = trial.dir / "crashed"  # the test's node failure, once
            if os.environ.get("CRASH_ONCE_TRIAL") == str(trial.id) and not crashed.exists():
                crashed.write_text("x")
                os.kill(os.getpid(), signal.SIGKILL)
        rounds = booster.current_iteration()
        proba = booster.predict(X_valid, num_iteration=-1)  # every round the model has
        segment.report(logloss=log_loss(y_valid, proba),
                       accuracy=float(((proba > 0.5) == y_valid).mean()),
                       rounds=rounds)
        if rounds < segment.length:
            raise asha_hpc.TrainingEndedEarly(f"early stopping after {rounds} rounds")

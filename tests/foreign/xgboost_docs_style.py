"""XGBoost's native API as its docs write it (xgb.DMatrix, xgb.train with evals,
early_stopping_rounds and xgb_model) on scikit-learn's breast cancer data, written for
asha_hpc as the README's XGBoost paragraph says: the rounds are the length, the booster goes on
from the trial's checkpoint, a booster that stopped early ends the trial, and a retry whose
checkpoint already holds the segment trains nothing. ``CRASH_ONCE_TRIAL`` (tests only) kills
that trial's job once, right after its first checkpoint is saved."""
import os
import signal

import xgboost as xgb
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

import asha_hpc


def train(trial):
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_valid, y_train, y_valid = train_test_split(X, y, test_size=0.25, random_state=0)
    dtrain = xgb.DMatrix(X_train, label=y_train)
    dvalid = xgb.DMatrix(X_valid, label=y_valid)
    params = {"objective": "binary:logistic", "eval_metric": "logloss",
              "eta": trial.hparams["eta"], "max_depth": trial.hparams["max_depth"],
              "nthread": 1, "seed": trial.seed}
    booster = None
    if trial.latest_checkpoint is not None:
        booster = xgb.Booster(model_file=trial.latest_checkpoint / "model.json")
    for segment in trial.segments():
        done = booster.num_boosted_rounds() if booster is not None else 0
        if done < segment.length:  # a retry may find the segment saved already: train nothing
            evals_result = {}
            try:
                booster = xgb.train(params, dtrain, num_boost_round=segment.length - done,
                                    evals=[(dvalid, "valid")], evals_result=evals_result,
                                    early_stopping_rounds=5, xgb_model=booster,
                                    verbose_eval=False)
            except xgb.core.XGBoostError as e:
                raise asha_hpc.InvalidHP(str(e).splitlines()[0]) from e
            for i, value in enumerate(evals_result["valid"]["logloss"]):
                trial.report_metrics(done + i + 1, logloss=value)
            with trial.save_checkpoint(length=booster.num_boosted_rounds()) as path:
                booster.save_model(path / "model.json")
            crashed = trial.dir / "crashed"  # the test's node failure, once
            if os.environ.get("CRASH_ONCE_TRIAL") == str(trial.id) and not crashed.exists():
                crashed.write_text("x")
                os.kill(os.getpid(), signal.SIGKILL)
        rounds = booster.num_boosted_rounds()
        proba = booster.predict(dvalid)  # every round the model has, as saved
        segment.report(logloss=log_loss(y_valid, proba),
                       accuracy=float(((proba > 0.5) == y_valid).mean()),
                       rounds=rounds)
        if rounds < segment.length:
            raise asha_hpc.TrainingEndedEarly(f"early stopping after {rounds} rounds")

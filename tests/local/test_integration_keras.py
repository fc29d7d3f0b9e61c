"""Keras 3 (PyTorch backend) with asha_hpc's callback, the way Keras's guides write a training
script: a Sequential model, compile with an optimizer object and metrics, fit with
validation_split and callbacks, EarlyStopping. Real Keras in real jobs."""
import json
import os
import subprocess
import sys

import pytest
import yaml

from conftest import require_module
from helpers import cli, final_state, journal

MODEL = '''
import keras
import numpy as np
from sklearn.datasets import load_digits

from asha_hpc.integrations.keras import AshaCallback


def get_data():
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype("float32"), y


def build(lr, units):
    model = keras.Sequential([keras.Input(shape=(64,)),
                              keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def train(trial):
    keras.utils.set_random_seed(trial.seed)
    x, y = get_data()
    hp = trial.hparams
    cb = AshaCallback(trial, monitor="val_accuracy")
    model = keras.models.load_model(cb.restore_path) if cb.restore_path else build(hp["lr"], hp["units"])
    callbacks = [cb]
    if hp.get("patience"):
        callbacks.insert(0, keras.callbacks.EarlyStopping(monitor="val_loss", patience=hp["patience"],
                                                          min_delta=hp.get("min_delta", 0.0),
                                                          restore_best_weights=hp.get("restore", False)))
    with open(trial.dir / "fits", "a") as f:
        f.write(f"{cb.initial_epoch}\\n")
    model.fit(x, y, validation_split=0.2, batch_size=64, verbose=0,
              initial_epoch=0 if hp.get("forget_initial_epoch") else cb.initial_epoch,
              epochs=cb.epochs, callbacks=callbacks)
'''


def _search(tmp_path, workers, max_length=4, trials=3, **hp):
    os.environ.setdefault("KERAS_BACKEND", "torch")  # for this process's import check only
    require_module("keras", "keras")
    require_module("sklearn")
    (tmp_path / "keras_model.py").write_text(MODEL)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "keras", "entrypoint": "keras_model:train",
        "searcher": {"name": "async_halving", "metric": "val_accuracy", "smaller_is_better": False,
                     "max_length": {"epochs": max_length}, "num_rungs": 2, "divisor": 2,
                     "max_trials": trials, "max_concurrent_trials": 1},
        "hyperparameters": dict({"lr": {"type": "double", "minval": 0.003, "maxval": 0.03,
                                        "log": True},
                                 "units": {"type": "int", "minval": 16, "maxval": 32}}, **hp),
        "environment_variables": {"KERAS_BACKEND": "torch"},
        "max_restarts": 0, "poll_interval_s": 0.2, "local": {"gpus": [], "workers": workers}}))
    return tmp_path / "c.yaml"


@pytest.mark.parametrize("workers", [0, 1], ids=["a job per segment", "a warm worker"])
def test_a_keras_search_resumes_promoted_trials_and_ranks_by_val_accuracy(tmp_path, workers):
    exp = tmp_path / "run"
    cli("run", _search(tmp_path, workers, trials=2), "--exp-dir", exp, timeout=600)  # 1 promoted
    _, st = final_state(exp)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0
    promoted = [t for t in st.trials.values() if t.length == 4]
    assert promoted, "no trial reached the second rung"
    for t in promoted:
        curve = [json.loads(x)["step"] for p in (exp / "trials" / f"{t.id:05d}" / "runs").glob("*")
                 for x in (p / "metrics.jsonl").read_text().splitlines()]
        assert sorted(curve) == [1, 2, 3, 4]  # every epoch once: none trained twice or skipped
        assert 0.5 < t.metric <= 1.0  # val_accuracy, as the searcher ranks it
    fits = [x for t in promoted for x in (exp / "trials" / f"{t.id:05d}" / "fits").read_text().split()]
    if workers == 0:  # the promoted segment's job restored the model at epoch 2
        assert fits.count("2") == len(promoted)
    best = json.loads(cli("best", exp, "--json").stdout)[0]
    assert (exp / best["checkpoint"] / "model.keras").is_file()


def test_keras_early_stopping_ends_a_trial_with_its_final_model(tmp_path):
    exp = tmp_path / "run"
    # every epoch after a fit's first is no better: it stops at 2 of the first segment's 4
    cfg = _search(tmp_path, 0, max_length=8, trials=2, patience=1, min_delta=10.0)
    cli("run", cfg, "--exp-dir", exp, timeout=600)
    _, st = final_state(exp)
    assert st.lifecycle == "completed"
    ended = [t for t in st.trials.values() if t.ended_early is not None]
    assert len(ended) == 2 and all(t.ended_early == 2 and t.status != "failed" for t in ended)
    recs = journal(exp)
    results = [r for r in recs if r["kind"] == "result" and r.get("ends_trial")
               and not r.get("carried")]  # a carried one is a promotion without a job
    assert len(results) == 2 and all("EarlyStopping" in r["error"] for r in results)
    assert [r for r in recs if r["kind"] == "result" and r.get("carried")]  # the better one's


def test_early_stopping_that_restores_the_best_weights_reports_what_the_saved_model_scores(
        tmp_path):
    """EarlyStopping(restore_best_weights=True) listed before the callback, as the README's
    order has it: fit stops at epoch 2 and puts epoch 1's weights back. The result was epoch
    2's val_accuracy while the model saved held epoch 1's weights; now it is epoch 1's: what
    the checkpoint scores on the same validation split."""
    exp = tmp_path / "run"
    cfg = _search(tmp_path, 0, max_length=8, trials=2, patience=1, min_delta=10.0, restore=True)
    cli("run", cfg, "--exp-dir", exp, timeout=600)
    _, st = final_state(exp)
    import keras
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    cut = int(len(x) * (1 - 0.2))  # fit's validation_split: the last 20%
    for t in st.trials.values():
        assert t.ended_early == 2, t.id
        model = keras.models.load_model(t.checkpoint + "/model.keras")
        _, accuracy = model.evaluate(x[cut:], y[cut:], verbose=0)
        assert accuracy == pytest.approx(t.rung_metrics[t.target], abs=1e-6), t.id


def test_fit_without_initial_epoch_fails_the_restored_trial_with_what_to_pass(tmp_path):
    """Keras's guides call fit(epochs=...) alone: a restored trial would train its epochs again
    from 0 while the search counts from its checkpoint. The callback says what to pass, as an
    error every restore would repeat: not retried, and counted at once toward fail-fast's
    restore rule, so three such trials stop the search (test_fail_fast.py's
    test_an_error_every_restore_repeats_counts_at_once_toward_the_restore_rule)."""
    exp = tmp_path / "run"
    cfg = _search(tmp_path, 0, trials=2, forget_initial_epoch=True)  # one promoted, restored
    r = cli("run", cfg, "--exp-dir", exp, timeout=600, check=False)
    (failed,) = [x for x in journal(exp) if x["kind"] == "result" and x["status"] == "error"]
    assert failed["restored"] and failed["fatal"] and failed["segment"] == 1, failed
    assert "pass fit(..., initial_epoch=cb.initial_epoch)" in failed["error"]
    _, st = final_state(exp)
    t = st.trials[failed["trial"]]
    assert t.status == "failed" and t.restarts == 0 and t.attempt == 0
    assert "1 trial failed" in r.stderr and "says why" in r.stderr, r.stderr
    said = cli("status", exp).stdout  # where the run's last line sends the user
    assert "pass fit(..., initial_epoch=cb.initial_epoch)" in said, said


SCRIPT = '''
import argparse

import keras
from keras_model import build, get_data

from asha_hpc.integrations.keras import AshaCallback

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=1e-3)
parser.add_argument("--units", type=int, default=32)
parser.add_argument("--epochs", type=int, default=2)
args = parser.parse_args()
x, y = get_data()
cb = AshaCallback(monitor="val_accuracy")
model = keras.models.load_model(cb.restore_path) if cb.restore_path else build(args.lr, args.units)
model.fit(x, y, validation_split=0.2, batch_size=64, verbose=2,
          initial_epoch=cb.initial_epoch, epochs=cb.epochs or args.epochs, callbacks=[cb])
'''


def test_a_keras_script_run_as_a_command_gets_its_trial_from_the_job(tmp_path):
    cfg = _search(tmp_path, 0)
    (tmp_path / "train.py").write_text(SCRIPT)
    raw = yaml.safe_load(cfg.read_text())
    del raw["entrypoint"]
    raw["command"] = [sys.executable, "train.py", "${args}"]
    raw["searcher"]["max_trials"] = 2
    cfg.write_text(yaml.safe_dump(raw))
    exp = tmp_path / "run"
    cli("run", cfg, "--exp-dir", exp, timeout=600)
    _, st = final_state(exp)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0
    (promoted,) = [t for t in st.trials.values() if t.length == 4]
    curve = sorted(json.loads(x)["step"] for p in (exp / "trials" / f"{promoted.id:05d}" / "runs").glob("*")
                   for x in (p / "metrics.jsonl").read_text().splitlines())
    assert curve == [1, 2, 3, 4]
    # run by hand, outside any job, the script trains as it did before the search
    r = subprocess.run([sys.executable, "train.py", "--lr", "0.01"], cwd=tmp_path, capture_output=True,
                       text=True, env=dict(os.environ, KERAS_BACKEND="torch"), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Epoch 2/2" in r.stdout and not (tmp_path / "checkpoints").exists()


PREEMPTED = '''
import os, time

import keras
import numpy as np

from asha_hpc.integrations.keras import AshaCallback


class SlowEpochs(keras.callbacks.Callback):
    def __init__(self, trial):
        super().__init__()
        self.trial = trial

    def on_epoch_end(self, epoch, logs=None):
        (self.trial.dir / "pgid").write_text(str(os.getpgid(0)))
        (self.trial.dir / "training").touch()
        time.sleep(0.4)


def train(trial):
    keras.utils.set_random_seed(trial.seed)
    x = np.random.default_rng(0).normal(size=(256, 8)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("int64")
    cb = AshaCallback(trial)  # ranks by the searcher's metric, loss
    if cb.restore_path:
        model = keras.models.load_model(cb.restore_path)
    else:
        model = keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(2, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    with open(trial.dir / "fits", "a") as f:
        f.write(f"{cb.initial_epoch}\\n")
    model.fit(x, y, validation_split=0.25, batch_size=64, verbose=0, initial_epoch=cb.initial_epoch,
              epochs=cb.epochs, callbacks=[SlowEpochs(trial), cb])
'''


def test_a_preempted_keras_trial_saves_where_it_is_and_goes_on_from_there(tmp_path):
    """SIGTERM to the job mid-segment (Slurm's preemption, scancel): the callback sees
    ``trial.should_stop()`` at the epoch's end, saves the model there and stops ``fit``; the
    next job goes on from that epoch, not from the segment's start, and no restart counts."""
    import time

    from helpers import one_trial_training, preempt_then_finish

    os.environ.setdefault("KERAS_BACKEND", "torch")
    require_module("keras", "keras")
    (tmp_path / "keras_preempted.py").write_text(PREEMPTED)
    exp, p = one_trial_training(tmp_path, {"entrypoint": "keras_preempted:train",
                                           "environment_variables": {"KERAS_BACKEND": "torch"}}, 12)
    time.sleep(1.0)  # a few epochs in
    preempt_then_finish(exp, p)
    first, last = [r for r in journal(exp) if r["kind"] == "result"]
    assert first["status"] == "interrupted" and first["stop_reason"] == "SIGTERM", first
    assert last["status"] == "completed", last
    fits = [int(x) for x in (exp / "trials" / "00001" / "fits").read_text().split()]
    assert fits[0] == 0 and 0 < fits[1] < 12, fits  # the second fit starts where the first saved
    _, st = final_state(exp)
    assert st.trials[1].restarts == 0 and st.trials[1].length == 12 and st.lifecycle == "completed"

"""Foreign-style: MLflow's tracking quickstart in a training function (``mlflow.set_experiment``,
``mlflow.start_run()`` without a ``with`` block and no ``end_run()``, as notebooks and scripts
that exit at the end write it; ``log_params``, ``log_metric`` every epoch), training a tiny
numpy model. The store is the SQLite file named by ``MLFLOW_TRACKING_URI``."""
import mlflow
import numpy as np


def train(trial):
    params = {"lr": trial.hparams["lr"], "trial": trial.id}
    mlflow.set_experiment("asha-quickstart")
    mlflow.start_run(run_name=f"trial-{trial.id}")
    mlflow.log_params(params)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    y = x @ np.array([1.0, -2.0, 0.5])
    w = np.zeros(3)
    epoch = 0
    if trial.latest_checkpoint is not None:
        saved = np.load(trial.latest_checkpoint / "w.npz")
        w, epoch = saved["w"], int(saved["epoch"])
    for segment in trial.segments():
        while epoch < segment.length:
            w -= params["lr"] * 2 * x.T @ (x @ w - y) / len(x)
            epoch += 1
            loss = float(np.mean((x @ w - y) ** 2))
            mlflow.log_metric("val_loss", loss, step=epoch)
        with trial.save_checkpoint(length=epoch) as path:
            np.savez(path / "w.npz", w=w, epoch=epoch)
        segment.report(val_loss=loss)

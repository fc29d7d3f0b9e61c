"""Foreign-style: a ``pytorch_lightning`` script as its tutorials write one (``import
pytorch_lightning as pl``, a LightningModule with training_step/validation_step/self.log, a
Trainer), counted in optimizer steps. The asha_hpc diff is the ``train(trial)`` function; the
``TrainedLog`` callback is the test's own witness of what was really trained."""
import json
import os

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from asha_hpc.integrations.lightning import AshaCallback


class RegressionModel(pl.LightningModule):
    def __init__(self, lr=0.01, width=16):
        super().__init__()
        self.save_hyperparameters()
        self.layer = nn.Sequential(nn.Linear(8, width), nn.Tanh(), nn.Linear(width, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/mse", nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


def make_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = x @ torch.linspace(-1, 1, 8).unsqueeze(1) + 0.1 * torch.randn(n, 1, generator=g)
    return TensorDataset(x, y)


class TrainedLog(pl.Callback):
    """For the test: one line per optimizer step really trained, in the trial's folder."""

    def __init__(self, path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": trainer.global_step, "pid": os.getpid()}) + "\n")


class RunWitness(pl.Callback):
    """For the test: the W&B run each fit logs into, and the hyperparameters it holds."""

    def __init__(self, path):
        self.path = path

    def on_train_end(self, trainer, pl_module):
        run = trainer.logger.experiment
        with open(self.path, "a") as f:
            f.write(json.dumps({"run": run.id, "lr": run.config.get("lr"),
                                "step": trainer.global_step, "pid": os.getpid()}) + "\n")


def train(trial):
    pl.seed_everything(trial.id)
    model = RegressionModel(lr=trial.hparams["lr"], width=trial.hparams["width"])
    train_loader = DataLoader(make_data(256, 0), batch_size=32, shuffle=True)
    val_loader = DataLoader(make_data(128, 1), batch_size=128)
    cb = AshaCallback(trial, monitor="val/mse", unit="steps")
    callbacks = [cb, TrainedLog(trial.dir / "trained.jsonl")]
    if "min_delta" in trial.hparams:  # the tutorials' early stopping, asked for by the test
        callbacks.append(EarlyStopping(monitor="val/mse", mode="min", patience=1,
                                       min_delta=trial.hparams["min_delta"]))
    logger = False
    if trial.hparams.get("logger") == "wandb":  # the tutorials' W&B logger, offline on a cluster
        from pytorch_lightning.loggers import WandbLogger

        logger = WandbLogger(project="asha-pl", save_dir=str(trial.dir), offline=True,
                             log_model=False)
        callbacks.append(RunWitness(trial.dir / "wandb_runs.jsonl"))
    trainer = pl.Trainer(max_steps=cb.max_steps, callbacks=callbacks,
                         logger=logger, enable_progress_bar=False, enable_model_summary=False,
                         accelerator="cpu", val_check_interval=5)
    trainer.fit(model, train_loader, val_loader, ckpt_path=cb.ckpt_path)
    if trial.hparams.get("then_test"):  # the tutorials' habit; this model has no test_step
        trainer.test(model, val_loader)

"""Foreign-style: a LightningCLI project as Lightning's docs write one (a LightningModule and a
LightningDataModule whose __init__ arguments are the CLI's flags, a config.yaml), run as a
command. The asha_hpc diff is the ``trainer_defaults`` and ``save_config_kwargs`` of the
``LightningCLI`` call; ``epochs.log`` and ``steps.log`` are the tests' own witnesses of what was
really trained."""
import json
import os
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.cli import LightningCLI
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from asha_hpc.integrations.lightning import AshaCallback


class RegressionModel(L.LightningModule):
    def __init__(self, hidden: int = 16, lr: float = 0.01):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(4, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.net(x), y))

    def on_train_batch_end(self, outputs, batch, batch_idx):
        trial_dir = os.environ.get("ASHA_TRIAL_DIR")
        if trial_dir and self.global_step % 100 == 0:
            with open(Path(trial_dir) / "steps.log", "a") as f:
                f.write(json.dumps({"step": self.global_step, "run": os.environ["ASHA_RUN_DIR"]})
                        + "\n")

    def on_train_epoch_end(self):
        trial_dir = os.environ.get("ASHA_TRIAL_DIR")
        if trial_dir:
            with open(Path(trial_dir) / "epochs.log", "a") as f:
                f.write(json.dumps({"epoch": self.current_epoch + 1}) + "\n")

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.trainer.max_epochs)
        return [opt], [sched]


class SineDataModule(L.LightningDataModule):
    def __init__(self, batch_size: int = 32, n: int = 256, num_workers: int = 0):
        super().__init__()
        self.batch_size, self.n, self.num_workers = batch_size, n, num_workers

    def _data(self, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(self.n, 4, generator=g) * 2 - 1
        return TensorDataset(x, torch.sin(3 * x).sum(1, keepdim=True))

    def train_dataloader(self):
        return DataLoader(self._data(0), batch_size=self.batch_size, shuffle=True,
                          num_workers=self.num_workers)

    def val_dataloader(self):
        return DataLoader(self._data(1), batch_size=self.batch_size)


def cli_main():
    LightningCLI(RegressionModel, SineDataModule, seed_everything_default=7,
                 trainer_defaults={"callbacks": [AshaCallback()]},
                 save_config_kwargs={"overwrite": True})


if __name__ == "__main__":
    cli_main()

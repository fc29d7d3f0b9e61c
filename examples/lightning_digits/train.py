"""A LightningModule written as the Lightning tutorials write one, searched by asha_hpc.

scikit-learn's bundled 8x8 digits (no download), an MLP, ``self.log("val_loss", ...)``. The
asha_hpc part is the ``train(trial)`` function at the end: the callback, ``max_epochs`` and
``ckpt_path`` from it, and the hyperparameters from ``trial.hparams``.
"""
import lightning as L
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from asha_hpc.integrations.lightning import AshaCallback


class DigitsDataModule(L.LightningDataModule):
    def __init__(self, batch_size: int = 64):
        super().__init__()
        self.batch_size = batch_size

    def setup(self, stage=None):
        x, y = load_digits(return_X_y=True)
        x = torch.tensor(x / 16.0, dtype=torch.float32)
        y = torch.tensor(y, dtype=torch.long)
        xtr, xva, ytr, yva = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
        self.train_set = TensorDataset(xtr, ytr)
        self.val_set = TensorDataset(xva, yva)

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=256)


class LitClassifier(L.LightningModule):
    def __init__(self, hidden: int = 64, dropout: float = 0.1, lr: float = 1e-3):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y), prog_bar=True)
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def train(trial):
    hp = trial.hparams
    L.seed_everything(trial.id)
    model = LitClassifier(hidden=hp["hidden"], dropout=hp["dropout"], lr=hp["lr"])
    data = DigitsDataModule(batch_size=hp["batch_size"])
    cb = AshaCallback(trial, monitor="val_loss")
    trainer = L.Trainer(max_epochs=cb.max_epochs, callbacks=[cb], accelerator="auto",
                        devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(model, datamodule=data, ckpt_path=cb.ckpt_path)

"""Foreign-style: the Lightning digits module trained with ``strategy="ddp"`` on the ranks that
asha_hpc starts (``tasks_per_node``): Lightning sees RANK/LOCAL_RANK/WORLD_SIZE and joins them
instead of launching processes. ``TrainedLog`` is the test's witness of each rank's epochs."""
import importlib.util
import json
import os
import sys
from pathlib import Path

import lightning as L
import torch

from asha_hpc.integrations.lightning import AshaCallback

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lightning_digits" / "train.py"
_spec = importlib.util.spec_from_file_location("lightning_digits_example", EXAMPLE)
example = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = example  # picklable by name, as a module of one's own is
_spec.loader.exec_module(example)


class TrainedLog(L.Callback):
    def __init__(self, path):
        self.path = path

    def on_train_epoch_end(self, trainer, pl_module):
        with open(self.path, "a") as f:
            f.write(json.dumps({"epoch": trainer.current_epoch, "rank": trainer.global_rank}) + "\n")


class Probe(L.Callback):
    """A callback of the user's own that keeps the trial (for trial.dir), listed first."""

    def __init__(self, trial):
        self.trial = trial


def train(trial):
    torch.set_num_threads(1)
    L.seed_everything(trial.id)
    model = example.LitClassifier(hidden=trial.hparams["hidden"], lr=trial.hparams["lr"])
    cb = AshaCallback(trial, monitor="val_loss")
    mine = [Probe(trial)] if os.environ.get("PROBE") else []
    trainer = L.Trainer(max_epochs=cb.max_epochs,
                        callbacks=[*mine, cb, TrainedLog(trial.dir / "trained.jsonl")],
                        accelerator="cpu", devices=int(os.environ.get("DEVICES", trial.world_size)),
                        strategy=os.environ.get("STRATEGY", "ddp"),
                        logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=example.DigitsDataModule(batch_size=64), ckpt_path=cb.ckpt_path)

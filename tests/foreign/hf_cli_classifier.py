"""Foreign-style: a text-classification script as the Transformers examples write one
(``run_glue.py``'s shape: dataclasses of arguments read by ``HfArgumentParser`` with
``TrainingArguments``, a model built from a config, ``Trainer``), run as a command. The asha_hpc
diff is the ``AshaCallback()`` line and ``resume_from_checkpoint=cb.resume_from``;
``TrainedLog`` is the test's own witness of the steps really trained."""
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    EarlyStoppingCallback,
    HfArgumentParser,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from asha_hpc.integrations.transformers import AshaCallback


@dataclass
class ModelArguments:
    hidden_size: int = field(default=16, metadata={"help": "width of the encoder"})
    early_stopping_patience: int = field(default=0, metadata={"help": "0: no early stopping"})
    early_stopping_threshold: float = field(default=0.0)


class Parity(Dataset):
    """Token sequences labelled by whether token 1 appears more often than token 2."""

    def __init__(self, n, seq_len=12, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 8, (n, seq_len), generator=g)
        self.labels = ((self.ids == 1).sum(1) > (self.ids == 2).sum(1)).long()

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": torch.ones_like(self.ids[i]),
                "labels": self.labels[i]}


def compute_metrics(eval_pred):
    logits, labels = eval_pred
    return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}


class TrainedLog(TrainerCallback):
    def __init__(self, path):
        self.path = path

    def on_step_end(self, args, state, control, **kwargs):
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": state.global_step,
                                "lr": state.log_history[-1].get("learning_rate")
                                if state.log_history else None}) + "\n")


def main():
    parser = HfArgumentParser((ModelArguments, TrainingArguments))
    model_args, training_args = parser.parse_args_into_dataclasses()
    config = BertConfig(vocab_size=8, hidden_size=model_args.hidden_size, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=16,
                        num_labels=2)
    model = BertForSequenceClassification(config)
    cb = AshaCallback(metric="eval_loss")
    callbacks = [cb, TrainedLog(Path(os.environ["ASHA_TRIAL_DIR"]) / "trained.jsonl")]
    if model_args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(model_args.early_stopping_patience,
                                               model_args.early_stopping_threshold))
    trainer = Trainer(model=model, args=training_args, train_dataset=Parity(512),
                      eval_dataset=Parity(64, seed=1), compute_metrics=compute_metrics,
                      callbacks=callbacks)
    trainer.train(resume_from_checkpoint=cb.resume_from)


if __name__ == "__main__":
    main()

"""A Hugging Face ``Trainer`` script as the Transformers tutorials write one, searched by asha_hpc.

A tiny BERT built from a ``BertConfig`` (no download) learns a made-up task on synthetic token
sequences: is token 5 more frequent than token 6? The asha_hpc part is the ``train(trial)``
function at the end: the callback, ``max_steps`` and ``resume_from_checkpoint`` from it, and
the hyperparameters from ``trial.hparams``.
"""
import numpy as np
import torch
from torch.utils.data import Dataset
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from asha_hpc.integrations.transformers import AshaCallback


class CountingDataset(Dataset):
    def __init__(self, n, seq_len=16, vocab_size=32, seed=0):
        rng = np.random.default_rng(seed)
        self.input_ids = rng.integers(3, vocab_size, size=(n, seq_len))
        self.labels = ((self.input_ids == 5).sum(1) > (self.input_ids == 6).sum(1)).astype(np.int64)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": torch.tensor(self.input_ids[i]),
                "attention_mask": torch.ones(len(self.input_ids[i]), dtype=torch.long),
                "labels": torch.tensor(self.labels[i])}


def compute_metrics(eval_pred):
    logits, labels = eval_pred
    return {"accuracy": float((logits.argmax(-1) == labels).mean())}


def train(trial):
    hp = trial.hparams
    config = BertConfig(vocab_size=32, hidden_size=hp["hidden_size"], num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=2 * hp["hidden_size"],
                        max_position_embeddings=32, num_labels=2)
    torch.manual_seed(trial.id)
    model = BertForSequenceClassification(config)
    cb = AshaCallback(trial, metric="eval_loss")
    args = TrainingArguments(
        output_dir=str(trial.dir / "hf"),
        max_steps=cb.max_steps,
        learning_rate=hp["learning_rate"],
        weight_decay=hp["weight_decay"],
        per_device_train_batch_size=32,
        per_device_eval_batch_size=128,
        logging_steps=10,
        save_strategy="no",
        report_to=[],
        use_cpu=not torch.cuda.is_available(),
        seed=trial.id,
    )
    trainer = Trainer(model=model, args=args, train_dataset=CountingDataset(1024, seed=0),
                      eval_dataset=CountingDataset(256, seed=1), compute_metrics=compute_metrics,
                      callbacks=[cb])
    trainer.train(resume_from_checkpoint=cb.resume_from)

"""Foreign-style: a Hugging Face causal-LM fine-tuning script as the Transformers tutorials
write one (a config object, ``AutoModelForCausalLM.from_config``, a Dataset, a data collator,
``TrainingArguments`` with eval every 7 steps and the default save_steps, ``Trainer``). The
asha_hpc diff is the ``train(trial)`` function; ``TrainedLog`` is the test's own witness of the
steps really trained."""
import json

import torch
from tokenizers import Tokenizer, models
from torch.utils.data import Dataset
from transformers import (
    AutoModelForCausalLM,
    DataCollatorForLanguageModeling,
    EarlyStoppingCallback,
    GPT2Config,
    PreTrainedTokenizerFast,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from asha_hpc.integrations.transformers import AshaCallback


class ArithmeticSequences(Dataset):
    """Token sequences that count up by a fixed stride (mod the vocabulary): learnable."""

    def __init__(self, n, seq_len=24, vocab=40, seed=0):
        g = torch.Generator().manual_seed(seed)
        start = torch.randint(0, vocab, (n, 1), generator=g)
        stride = torch.randint(1, 4, (n, 1), generator=g)
        self.ids = (start + stride * torch.arange(seq_len)) % vocab

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i]}


class TrainedLog(TrainerCallback):
    def __init__(self, path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def on_step_end(self, args, state, control, **kwargs):
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": state.global_step}) + "\n")


def make_tokenizer():
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(
        {str(i): i for i in range(40)} | {"<pad>": 40}, unk_token="<pad>")), pad_token="<pad>")


def train(trial):
    tokenizer = make_tokenizer()
    config = GPT2Config(vocab_size=41, n_positions=32, n_embd=trial.hparams["n_embd"],
                        n_layer=2, n_head=2, pad_token_id=40)
    model = AutoModelForCausalLM.from_config(config)
    cb = AshaCallback(trial, metric="eval_loss")
    callbacks = [cb, TrainedLog(trial.dir / "trained.jsonl")]
    patience = trial.hparams.get("early_stopping_patience")
    if patience is not None:  # the tutorials' early stopping on the evaluation loss
        callbacks.append(EarlyStoppingCallback(
            early_stopping_patience=patience,
            early_stopping_threshold=trial.hparams.get("early_stopping_threshold", 0.0)))
    training_args = TrainingArguments(
        output_dir="gpt2-arith",
        max_steps=cb.max_steps,
        per_device_train_batch_size=16,
        learning_rate=trial.hparams["lr"],
        lr_scheduler_type="cosine",
        eval_strategy="steps",
        eval_steps=7,
        logging_steps=5,
        metric_for_best_model="eval_loss" if patience is not None else None,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=ArithmeticSequences(512, seed=0),
        eval_dataset=ArithmeticSequences(64, seed=1),
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        callbacks=callbacks,
    )
    trainer.train(resume_from_checkpoint=cb.resume_from)

"""A Transformers ``run_*_no_trainer.py``-shaped Accelerate loop that counts optimizer steps
(``--max_train_steps``, ``--checkpointing_steps 5``, ``step_{k}`` folders, ``resume_step`` and
``accelerator.skip_first_batches`` for the epoch it stopped in), on scikit-learn's digits, with
the diff the README's Accelerate paragraph gives for a length in batches:

- ``--max_train_steps ${ASHA_MAX_LENGTH}``: the schedule spans the search's ``max_length``, and
  training stops at the segment's target ``ASHA_TARGET_LENGTH``, mid-epoch if it falls there;
- ``--output_dir ${ASHA_CHECKPOINT_DIR}``: ``step_{k}`` every ``--checkpointing_steps`` and at
  the target; the main process reports ``{"saved": "step_k", "reached": k}`` and removes the
  folder before;
- ``--resume_from_checkpoint ${ASHA_LATEST_CHECKPOINT}``: the latest ``step_*`` folder there.

Each optimizer step appends ``<process> <step> <first labels of its batch>`` to
``ASHA_TRIAL_DIR/batches`` (a test compares a promoted trial with one trained straight through).
"""
import argparse
import json
import math
import os
import re
import shutil

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import set_seed
from sklearn.datasets import load_digits
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader, TensorDataset


def report(line):
    with open(os.environ["ASHA_REPORT_FILE"], "a") as f:
        f.write(json.dumps(line) + "\n")


def main():
    parser = argparse.ArgumentParser(description="Train on digits with Accelerate, in steps.")
    parser.add_argument("--learning_rate", type=float, default=5e-2)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--per_device_train_batch_size", type=int, default=64)
    parser.add_argument("--max_train_steps", type=int, default=None)
    parser.add_argument("--num_train_epochs", type=int, default=3)
    parser.add_argument("--checkpointing_steps", type=str, default=None)
    parser.add_argument("--output_dir", type=str, default=None)
    parser.add_argument("--resume_from_checkpoint", type=str, default=None)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()

    accelerator = Accelerator(
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True))
    if args.seed is not None:
        set_seed(args.seed)
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    train_dataloader = DataLoader(TensorDataset(x[:1400], y[:1400]), shuffle=True,
                                  batch_size=args.per_device_train_batch_size)
    eval_dataloader = DataLoader(TensorDataset(x[1400:], y[1400:]), batch_size=64)
    model = torch.nn.Sequential(torch.nn.Linear(64, args.hidden), torch.nn.ReLU(),
                                torch.nn.Linear(args.hidden, 10))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate)

    num_update_steps_per_epoch = len(train_dataloader)
    if args.max_train_steps is None:
        args.max_train_steps = args.num_train_epochs * num_update_steps_per_epoch
    args.num_train_epochs = math.ceil(args.max_train_steps / num_update_steps_per_epoch)
    # a linear decay over max_train_steps (get_scheduler("linear") without warmup)
    lr_scheduler = LambdaLR(optimizer, lambda s: max(0.0, 1 - s / args.max_train_steps))
    model, optimizer, train_dataloader, eval_dataloader, lr_scheduler = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader, lr_scheduler)

    checkpointing_steps = args.checkpointing_steps
    if checkpointing_steps is not None and checkpointing_steps.isdigit():
        checkpointing_steps = int(checkpointing_steps)
    stop_at = int(os.environ.get("ASHA_TARGET_LENGTH", args.max_train_steps))

    completed_steps = 0
    starting_epoch = 0
    resume_step = None
    if args.resume_from_checkpoint:
        # the latest step_{k} folder where the search keeps this trial's checkpoint
        steps = [int(m.group(1)) for m in (re.fullmatch(r"step_(\d+)", d)
                                           for d in os.listdir(args.resume_from_checkpoint)) if m]
        path = f"step_{max(steps)}"
        accelerator.print(f"Resumed from checkpoint: {path}")
        accelerator.load_state(os.path.join(args.resume_from_checkpoint, path))
        resume_step = int(path.replace("step_", ""))
        starting_epoch = resume_step // len(train_dataloader)
        completed_steps = resume_step
        resume_step -= starting_epoch * len(train_dataloader)

    def save(step):
        accelerator.save_state(os.path.join(args.output_dir, f"step_{step}"))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            report({"saved": f"step_{step}", "reached": step})
            for old in os.listdir(args.output_dir):
                if old.startswith("step_") and old != f"step_{step}":
                    shutil.rmtree(os.path.join(args.output_dir, old), ignore_errors=True)

    for epoch in range(starting_epoch, args.num_train_epochs):
        model.train()
        train_dataloader.set_epoch(epoch)
        if args.resume_from_checkpoint and epoch == starting_epoch and resume_step is not None:
            # skip the batches of this epoch that the checkpoint has trained
            active_dataloader = accelerator.skip_first_batches(train_dataloader, resume_step)
        else:
            active_dataloader = train_dataloader
        for inputs, labels in active_dataloader:
            loss = torch.nn.functional.cross_entropy(model(inputs), labels)
            accelerator.backward(loss)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad()
            completed_steps += 1
            with open(os.path.join(os.environ["ASHA_TRIAL_DIR"], "batches"), "a") as f:
                f.write(f"{accelerator.process_index} {completed_steps} {labels[:8].tolist()}\n")
            if isinstance(checkpointing_steps, int) and completed_steps < stop_at \
                    and completed_steps % checkpointing_steps == 0:
                save(completed_steps)
            if completed_steps >= min(stop_at, args.max_train_steps):
                break
        if completed_steps >= min(stop_at, args.max_train_steps):
            break

    model.eval()
    eval_loss, num_elems = 0.0, 0
    for inputs, labels in eval_dataloader:
        with torch.no_grad():
            outputs = model(inputs)
        outputs, labels = accelerator.gather_for_metrics((outputs, labels))
        eval_loss += torch.nn.functional.cross_entropy(outputs, labels, reduction="sum").item()
        num_elems += labels.shape[0]
    save(completed_steps)  # at the target: what the next segment goes on from
    if accelerator.is_main_process:
        report({"metrics": {"eval_loss": eval_loss / num_elems}})
    accelerator.end_training()


if __name__ == "__main__":
    main()

"""Accelerate's checkpointing example (examples/by_feature/checkpointing.py and
complete_cv_example.py: argparse, a config dict, ``--checkpointing_steps epoch``,
``accelerator.save_state`` into ``output_dir/epoch_{i}``, ``--resume_from_checkpoint``) on
scikit-learn's digits, with the diff a user makes for asha_hpc as the README's Accelerate
paragraph says:

- the hyperparameters come as flags (``${args}``), the schedule's length is the search's
  ``max_length`` (``--num_epochs ${ASHA_MAX_LENGTH}``) and training stops at the segment's
  target (``ASHA_TARGET_LENGTH``);
- ``--output_dir ${ASHA_CHECKPOINT_DIR}``, and ``--resume_from_checkpoint
  ${ASHA_LATEST_CHECKPOINT}`` takes the latest ``epoch_*`` folder in it (the example's own
  "most recent checkpoint" branch, pointed at the folder given);
- the main process appends the epochs' results to ``ASHA_REPORT_FILE``, and each saved
  ``epoch_*`` folder once every process has written its part (``saved``: the search keeps it
  when the job is stopped before its end, by a preemption or a ``scancel``), and removes the
  folder before it.

Each process appends its first eight labels of every epoch to ``ASHA_TRIAL_DIR/batches`` (a
test compares a promoted trial with one trained straight through).
"""
import argparse
import json
import os
import re
import shutil

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import set_seed
from sklearn.datasets import load_digits
from torch.optim.lr_scheduler import OneCycleLR
from torch.utils.data import DataLoader, TensorDataset


def report(line):
    with open(os.environ["ASHA_REPORT_FILE"], "a") as f:
        f.write(json.dumps(line) + "\n")


def training_function(config, args):
    accelerator = Accelerator(cpu=args.cpu, mixed_precision=args.mixed_precision,
                              dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True))
    lr = config["lr"]
    num_epochs = int(config["num_epochs"])
    seed = int(config["seed"])
    batch_size = int(config["batch_size"])
    stop_at = int(os.environ.get("ASHA_TARGET_LENGTH", num_epochs))

    set_seed(seed)
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    train_dataloader = DataLoader(TensorDataset(x[:1400], y[:1400]), shuffle=True,
                                  batch_size=batch_size)
    eval_dataloader = DataLoader(TensorDataset(x[1400:], y[1400:]), shuffle=False,
                                 batch_size=64)

    model = torch.nn.Sequential(torch.nn.Linear(64, config["hidden"]), torch.nn.ReLU(),
                                torch.nn.Linear(config["hidden"], 10))
    optimizer = torch.optim.Adam(params=model.parameters(), lr=lr / 25)
    lr_scheduler = OneCycleLR(optimizer=optimizer, max_lr=lr, epochs=num_epochs,
                              steps_per_epoch=len(train_dataloader))
    model, optimizer, train_dataloader, eval_dataloader, lr_scheduler = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader, lr_scheduler)

    starting_epoch = 0
    if args.resume_from_checkpoint:
        # the latest epoch_{i} folder where the search keeps this trial's checkpoint
        epochs = [int(m.group(1)) for m in (re.fullmatch(r"epoch_(\d+)", d)
                                            for d in os.listdir(args.resume_from_checkpoint)) if m]
        path = os.path.join(args.resume_from_checkpoint, f"epoch_{max(epochs)}")
        accelerator.print(f"Resumed from checkpoint: {path}")
        accelerator.load_state(path)
        starting_epoch = max(epochs) + 1

    for epoch in range(starting_epoch, min(num_epochs, stop_at)):
        model.train()
        train_dataloader.set_epoch(epoch)
        for step, (inputs, labels) in enumerate(train_dataloader):
            if step == 0:
                with open(os.path.join(os.environ["ASHA_TRIAL_DIR"], "batches"), "a") as f:
                    f.write(f"{accelerator.process_index} {epoch} {labels[:8].tolist()}\n")
            loss = torch.nn.functional.cross_entropy(model(inputs), labels)
            accelerator.backward(loss)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad()

        model.eval()
        accurate, num_elems, eval_loss = 0, 0, 0.0
        for inputs, labels in eval_dataloader:
            with torch.no_grad():
                outputs = model(inputs)
            outputs, labels = accelerator.gather_for_metrics((outputs, labels))
            eval_loss += torch.nn.functional.cross_entropy(outputs, labels,
                                                           reduction="sum").item()
            accurate += (outputs.argmax(dim=-1) == labels).long().sum().item()
            num_elems += labels.shape[0]
        metrics = {"eval_loss": eval_loss / num_elems, "accuracy": accurate / num_elems}
        accelerator.print(f"epoch {epoch}: {100 * metrics['accuracy']:.2f}")
        if accelerator.is_main_process:
            report({"step": epoch + 1, "metrics": metrics})

        if args.checkpointing_steps == "epoch":
            accelerator.save_state(os.path.join(args.output_dir, f"epoch_{epoch}"))
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:  # kept if the job is stopped before its end
                report({"saved": f"epoch_{epoch}", "reached": epoch + 1})
                # one whole state is enough to go on from: the one before goes
                shutil.rmtree(os.path.join(args.output_dir, f"epoch_{epoch - 1}"),
                              ignore_errors=True)
    if accelerator.is_main_process:
        report({"metrics": metrics})
    accelerator.end_training()


def main():
    parser = argparse.ArgumentParser(description="Simple example of training script.")
    parser.add_argument("--mixed_precision", type=str, default="no",
                        choices=["no", "fp16", "bf16"])
    parser.add_argument("--cpu", action="store_true", help="If passed, will train on the CPU.")
    parser.add_argument("--checkpointing_steps", type=str, default=None)
    parser.add_argument("--output_dir", type=str, default=".")
    parser.add_argument("--resume_from_checkpoint", type=str, default=None)
    parser.add_argument("--lr", type=float, default=3e-2)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--num_epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    config = {"lr": args.lr, "num_epochs": args.num_epochs, "seed": args.seed,
              "batch_size": args.batch_size, "hidden": args.hidden}
    training_function(config, args)


if __name__ == "__main__":
    main()

"""An MLP on scikit-learn's digits, trained in segments with checkpoint/resume.

The data ships with scikit-learn (no download). Runs on the GPU that asha_hpc assigns through
CUDA_VISIBLE_DEVICES, or on the CPU.
"""
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import asha_hpc


def data(device):
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    xtr, xva, ytr, yva = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    t = lambda a, dt: torch.tensor(a, dtype=dt, device=device)  # noqa: E731
    return t(xtr, torch.float32), t(ytr, torch.long), t(xva, torch.float32), t(yva, torch.long)


def model(hp):
    return nn.Sequential(nn.Linear(64, hp["hidden"]), nn.ReLU(), nn.Dropout(hp["dropout"]),
                         nn.Linear(hp["hidden"], hp["hidden"]), nn.ReLU(), nn.Dropout(hp["dropout"]),
                         nn.Linear(hp["hidden"], 10))


def train(trial: asha_hpc.Trial) -> None:
    hp = trial.hparams
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(trial.id)
    xtr, ytr, xva, yva = data(device)
    net = model(hp).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    epoch = 0
    gen = torch.Generator(device="cpu").manual_seed(trial.id)  # the batches' order
    if trial.latest_checkpoint is not None:
        state = torch.load(trial.latest_checkpoint / "state.pt", map_location=device)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        epoch = state["epoch"]
        # the random streams go on where they were: a promoted trial trains as one run would
        gen.set_state(state["shuffle"].cpu())  # map_location moved them to the device
        torch.set_rng_state(state["rng"].cpu())  # dropout (on the CPU; on a GPU, CUDA's stream)
        if device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"].cpu())
    loss_fn = nn.CrossEntropyLoss()
    for segment in trial.segments():
        while epoch < segment.length and not trial.should_stop():
            net.train()
            perm = torch.randperm(len(xtr), generator=gen).to(device)
            for i in range(0, len(xtr), hp["batch_size"]):
                idx = perm[i:i + hp["batch_size"]]
                opt.zero_grad()
                loss_fn(net(xtr[idx]), ytr[idx]).backward()
                opt.step()
            epoch += 1
            val_loss, acc = evaluate(net, xva, yva, loss_fn)
            trial.report_metrics(epoch, val_loss=val_loss, val_accuracy=acc)
        with trial.save_checkpoint(length=epoch) as path:
            torch.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                        "shuffle": gen.get_state(), "rng": torch.get_rng_state(),
                        **({"cuda_rng": torch.cuda.get_rng_state()} if device.type == "cuda" else {})},
                       path / "state.pt")
        if epoch < segment.length:
            return  # stopped early: the segment continues from this checkpoint
        val_loss, acc = evaluate(net, xva, yva, loss_fn)
        segment.report(val_loss=val_loss, val_accuracy=acc, device=str(device))


@torch.no_grad()
def evaluate(net, x, y, loss_fn):
    net.eval()
    out = net(x)
    return float(loss_fn(out, y)), float((out.argmax(1) == y).float().mean())

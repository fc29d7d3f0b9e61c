"""DistributedDataParallel on scikit-learn's digits: every rank runs this function.

asha_hpc sets MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE and LOCAL_RANK (a free port per trial),
so init_process_group("env://") just works. Every rank calls trial.should_stop() (a collective)
and enters trial.save_checkpoint() (a barrier: the checkpoint is published once all ranks left
the block); rank 0 writes the weights, which are the same on every rank.
"""
import os

import numpy as np
import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

import asha_hpc


def train(trial: asha_hpc.Trial) -> None:
    hp = trial.hparams
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device(f"cuda:{trial.local_rank}" if cuda else "cpu")
    if not cuda:  # ranks share the CPU cores: one thread each, not all of them each
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // trial.world_size))
    try:
        _train(trial, hp, device)
    finally:
        dist.destroy_process_group()


def _train(trial, hp, device):
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    xtr, xva, ytr, yva = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    shard = slice(trial.rank, None, trial.world_size)  # each rank its share of the training data
    xtr, ytr = torch.tensor(xtr[shard], device=device), torch.tensor(ytr[shard], device=device)
    xva, yva = torch.tensor(xva, device=device), torch.tensor(yva, device=device)

    torch.manual_seed(trial.id)  # same initial weights on every rank
    net = nn.Sequential(nn.Linear(64, hp["hidden"]), nn.ReLU(), nn.Linear(hp["hidden"], 10)).to(device)
    model = DDP(net, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.SGD(model.parameters(), lr=hp["lr"] * 10, momentum=0.9)
    epoch = 0
    if trial.latest_checkpoint is not None:
        state = torch.load(trial.latest_checkpoint / "state.pt", map_location=device)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        epoch = state["epoch"]
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(trial.id * 1000 + trial.rank)
    for segment in trial.segments():
        while epoch < segment.length:
            model.train()
            perm = torch.randperm(len(xtr), generator=gen).to(device)
            for i in range(0, len(xtr), hp["batch_size"]):
                idx = perm[i:i + hp["batch_size"]]
                opt.zero_grad()
                loss_fn(model(xtr[idx]), ytr[idx]).backward()
                opt.step()
            epoch += 1
            if trial.should_stop():  # collective: every rank agrees
                break
        with trial.save_checkpoint() as path:  # every rank enters; rank 0 writes
            if trial.rank == 0:
                torch.save({"model": net.state_dict(), "optimizer": opt.state_dict(),
                            "epoch": epoch}, path / "state.pt")
        if epoch < segment.length:
            return
        net.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(net(xva), yva))
        segment.report(val_loss=val_loss)  # counted from rank 0 only

"""The PyTorch "Getting Started with Distributed Data Parallel" tutorial's toy model and
training step, run by asha_hpc's ranks instead of mp.spawn: a user's DDP script as written for
torch, with asha_hpc's trial loop around it (one checkpoint per epoch, rank 0 writes it)."""
import os
import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.optim as optim
from torch.nn.parallel import DistributedDataParallel as DDP


class ToyModel(nn.Module):
    def __init__(self):
        super(ToyModel, self).__init__()
        self.net1 = nn.Linear(10, 10)
        self.relu = nn.ReLU()
        self.net2 = nn.Linear(10, 5)

    def forward(self, x):
        return self.net2(self.relu(self.net1(x)))


def train(trial):
    rank = trial.rank
    dist.init_process_group("gloo", rank=rank, world_size=trial.world_size)
    torch.manual_seed(0)
    model = ToyModel()
    ddp_model = DDP(model)
    loss_fn = nn.MSELoss()
    optimizer = optim.SGD(ddp_model.parameters(), lr=trial.hparams["lr"])
    epoch = 0
    if trial.latest_checkpoint is not None:
        state = torch.load(trial.latest_checkpoint / "model.pt")
        model.load_state_dict(state["model"])
        epoch = state["epoch"]
    (trial.dir / f"pid-rank{rank}").write_text(str(os.getpid()))  # for the test's OOM killer
    try:
        for segment in trial.segments():
            while epoch < segment.length:
                for _ in range(20):
                    optimizer.zero_grad()
                    outputs = ddp_model(torch.randn(20, 10))
                    labels = torch.randn(20, 5)
                    loss = loss_fn(outputs, labels)
                    loss.backward()
                    optimizer.step()
                    time.sleep(0.01)
                epoch += 1
                with trial.save_checkpoint() as path:
                    if rank == 0:
                        torch.save({"model": model.state_dict(), "epoch": epoch}, path / "model.pt")
            segment.report(loss=float(loss))
    finally:
        dist.destroy_process_group()

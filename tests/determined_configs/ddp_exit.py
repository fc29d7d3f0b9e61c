"""A DDP script written as users write it from Determined's guide, ending the way torch's own
docs end theirs: ``dist.destroy_process_group()`` after training, no ``gc.collect()``. The DDP
model is garbage in a reference cycle by then; freed after the group is gone, it aborted the
rank now and then ("terminate called without an active exception") before the shim collected
first. The lines marked ``# test`` are the test's, not a user's: the script prints when the
model is freed and when the group is gone, and automatic collection is off, so the order depends
on the shim alone in every run (with it on, a collection that happened to come in time is why
only some trials aborted)."""
import gc
import logging
import weakref

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from asha_hpc.compat import determined as det


def main(core_context, hparams):
    model = DDP(torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(),
                                    torch.nn.Linear(16, 1)))
    weakref.finalize(model, print, f"rank {core_context.distributed.rank}: DDP model freed",  # test
                     flush=True)
    opt = torch.optim.SGD(model.parameters(), lr=hparams["lr"])
    x = torch.randn(32, 8) + core_context.distributed.rank
    for step in range(1, 11):
        loss = torch.nn.functional.mse_loss(model(x), x.sum(dim=1, keepdim=True))
        opt.zero_grad()
        loss.backward()
        opt.step()
    if core_context.distributed.rank == 0:
        core_context.train.report_validation_metrics(
            steps_completed=step, metrics={"val_loss": loss.item()})


if __name__ == "__main__":
    gc.disable()  # test
    logging.basicConfig(level=logging.INFO, format=det.LOG_FORMAT)
    dist.init_process_group("gloo")
    info = det.get_cluster_info()
    distributed = det.core.DistributedContext.from_torch_distributed()
    with det.core.init(distributed=distributed) as core_context:
        main(core_context, info.trial.hparams)
    rank = dist.get_rank()
    dist.destroy_process_group()
    print(f"rank {rank}: process group destroyed", flush=True)  # test

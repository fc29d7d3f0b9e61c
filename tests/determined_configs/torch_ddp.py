"""A Core API script with torch.distributed (after Determined's "Distributed training with the
Core API" guide): torchrun starts the ranks, DistributedContext.from_torch_distributed() wraps
them, the model is wrapped in DDP, only the chief reports and checkpoints."""
import gc
import logging

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from asha_hpc.compat import determined as det


def main(core_context, hparams):
    torch.manual_seed(0)
    model = DDP(torch.nn.Linear(4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=hparams["lr"])
    rank, size = core_context.distributed.rank, core_context.distributed.size
    x = torch.randn(64, 4) + rank  # each rank its own shard
    y = x.sum(dim=1, keepdim=True)
    for step in range(1, 31):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 0:
            losses = core_context.distributed.gather(loss.item())
            if rank == 0:
                core_context.train.report_validation_metrics(
                    steps_completed=step, metrics={"val_loss": sum(losses) / size, "ranks": size})
                with core_context.checkpoint.store_path({"steps_completed": step}) as (path, _):
                    torch.save(model.module.state_dict(), path / "model.pt")
            if core_context.preempt.should_preempt():
                return


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format=det.LOG_FORMAT)
    dist.init_process_group("gloo")
    info = det.get_cluster_info()
    distributed = det.core.DistributedContext.from_torch_distributed()
    with det.core.init(distributed=distributed) as core_context:
        main(core_context, info.trial.hparams)
    # DDP's reducer sits in reference cycles: collect it while the group is alive, or gloo's
    # threads may be torn down at interpreter exit and abort the rank (SIGABRT, torch 2.x)
    gc.collect()
    dist.destroy_process_group()

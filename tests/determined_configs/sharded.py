"""Every rank stores its own shard (``store_path(shard=True)``, as FSDP and DeepSpeed scripts
do) and restores its own shard when the trial is promoted."""
import logging

import torch.distributed as dist

from asha_hpc.compat import determined as det


def main(core_context, latest_checkpoint):
    rank = core_context.distributed.rank
    start = 0
    if latest_checkpoint is not None:
        with core_context.checkpoint.restore_path(latest_checkpoint) as path:
            start = int((path / f"shard-rank{rank}.txt").read_text())
            logging.info(f"rank {rank} resumed at batch {start}")
    for batch in range(start, 100):
        steps_completed = batch + 1
        if steps_completed % 20 == 0:
            if rank == 0:
                core_context.train.report_validation_metrics(
                    steps_completed=steps_completed,
                    metrics={"validation_loss": 1.0 / steps_completed, "batches": steps_completed,
                             "resumed_at": start})
            with core_context.checkpoint.store_path({"steps_completed": steps_completed},
                                                    shard=True) as (path, storage_id):
                (path / f"shard-rank{rank}.txt").write_text(str(steps_completed))
            if core_context.preempt.should_preempt():
                return


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format=det.LOG_FORMAT)
    dist.init_process_group("gloo")  # never destroyed, as in Determined's examples
    info = det.get_cluster_info()
    distributed = det.core.DistributedContext.from_torch_distributed()
    with det.core.init(distributed=distributed) as core_context:
        main(core_context, info.latest_checkpoint)

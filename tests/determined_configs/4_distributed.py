"""Core API stage 4 (after core_api/4_distributed.py): the script is its own launcher, starting
one worker process per slot; the workers build a DistributedContext by hand and use its
collectives; only the chief reports and checkpoints."""
import logging
import pathlib
import subprocess
import sys

from asha_hpc.compat import determined as det


def save_state(total, steps_completed, trial_id, checkpoint_directory):
    checkpoint_directory.joinpath("state").write_text(f"{total},{steps_completed},{trial_id}")


def load_state(trial_id, checkpoint_directory):
    t, steps, ckpt_trial = pathlib.Path(checkpoint_directory).joinpath("state").read_text().split(",")
    return (int(t), int(steps)) if int(ckpt_trial) == trial_id else (int(t), 0)


def main(core_context, latest_checkpoint, trial_id, step_size):
    total, starting_batch = 0, 0
    max_length = 30
    if latest_checkpoint is not None:
        with core_context.checkpoint.restore_path(latest_checkpoint) as path:
            total, starting_batch = load_state(trial_id, path)
    for batch in range(starting_batch, max_length):
        total += sum(core_context.distributed.allgather(step_size))
        steps_completed = batch + 1
        if steps_completed % 10 == 0:
            if core_context.distributed.rank == 0:
                core_context.train.report_training_metrics(
                    steps_completed=steps_completed, metrics={"total": total})
                core_context.train.report_validation_metrics(
                    steps_completed=steps_completed,
                    metrics={"total": total, "ranks": core_context.distributed.size})
                with core_context.checkpoint.store_path({"steps_completed": steps_completed}) as (path, uuid):
                    save_state(total, steps_completed, trial_id, path)
            if core_context.preempt.should_preempt():
                return
    gathered = core_context.distributed.gather(core_context.distributed.rank)
    if core_context.distributed.rank == 0:
        assert gathered == list(range(core_context.distributed.size)), gathered


def launcher_main(slots_per_node):
    procs = [subprocess.Popen([sys.executable, __file__, "worker", str(rank)])
             for rank in range(slots_per_node)]
    codes = [p.wait() for p in procs]
    return next((c for c in codes if c), 0)


def worker_main(slots_per_node, chief_ip, rank, info):
    distributed = det.core.DistributedContext(
        rank=rank, size=slots_per_node, local_rank=rank, local_size=slots_per_node,
        cross_rank=0, cross_size=1, chief_ip=chief_ip)
    with det.core.init(distributed=distributed) as core_context:
        main(core_context, info.latest_checkpoint, info.trial.trial_id,
             step_size=info.trial.hparams["step_size"])
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format=det.LOG_FORMAT)
    info = det.get_cluster_info()
    assert info is not None, "this example only runs inside an asha_hpc job"
    slots_per_node = len(info.slot_ids)
    chief_ip = info.container_addrs[0]
    if sys.argv[1] == "launcher":
        sys.exit(launcher_main(slots_per_node))
    if sys.argv[1] == "worker":
        sys.exit(worker_main(slots_per_node, chief_ip, int(sys.argv[2]), info))
    raise ValueError(f"unrecognized first argument: {sys.argv[1]}")

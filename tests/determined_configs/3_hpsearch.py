"""Core API stage 3, Determined 0.38 style (after core_api/3_hpsearch.py): the script trains to
its own end, reports validation metrics with the time metric ("batches") now and then, stores
a checkpoint and leaves when should_preempt() says so; a promoted trial comes back from that
checkpoint."""
import logging
import pathlib

from asha_hpc.compat import determined as det


def save_state(weight, steps_completed, trial_id, checkpoint_directory):
    checkpoint_directory.joinpath("state").write_text(f"{weight},{steps_completed},{trial_id}")


def load_state(trial_id, checkpoint_directory):
    w, steps, ckpt_trial = pathlib.Path(checkpoint_directory).joinpath("state").read_text().split(",")
    return (float(w), int(steps)) if int(ckpt_trial) == trial_id else (float(w), 0)


def main(core_context, latest_checkpoint, trial_id, step_size):
    weight, starting_batch = 10.0, 0
    max_length = 90
    if latest_checkpoint is not None:
        with core_context.checkpoint.restore_path(latest_checkpoint) as path:
            weight, starting_batch = load_state(trial_id, path)
    for batch in range(starting_batch, max_length):
        weight -= 0.02 * step_size * weight  # bigger steps learn faster here
        steps_completed = batch + 1
        if steps_completed % 10 == 0:
            core_context.train.report_training_metrics(
                steps_completed=steps_completed, metrics={"weight": weight})
            core_context.train.report_validation_metrics(
                steps_completed=steps_completed,
                metrics={"total": weight + 0.5 * step_size, "batches": steps_completed})
            with core_context.checkpoint.store_path({"steps_completed": steps_completed}) as (path, uuid):
                save_state(weight, steps_completed, trial_id, path)
            if core_context.preempt.should_preempt():
                return


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format=det.LOG_FORMAT)
    info = det.get_cluster_info()
    assert info is not None, "this example only runs inside an asha_hpc job"
    with det.core.init() as core_context:
        main(core_context, info.latest_checkpoint, info.trial.trial_id,
             step_size=info.trial.hparams["step_size"])

"""Core API stage 2 (after core_api/2_checkpoints.py): checkpoints and preemption. The state
file holds the trial id, so a checkpoint of another trial restores the weight but not the
batch count."""
import logging
import pathlib
import sys

from asha_hpc.compat import determined as det


def save_state(total, steps_completed, trial_id, checkpoint_directory):
    checkpoint_directory.joinpath("state").write_text(f"{total},{steps_completed},{trial_id}")


def load_state(trial_id, checkpoint_directory):
    text = pathlib.Path(checkpoint_directory).joinpath("state").read_text()
    total, steps_completed, ckpt_trial_id = [int(x) for x in text.split(",")]
    return (total, steps_completed) if ckpt_trial_id == trial_id else (total, 0)


def main(core_context, latest_checkpoint, trial_id, step_size, max_length=40):
    total, starting_batch = 0, 0
    if latest_checkpoint is not None:
        with core_context.checkpoint.restore_path(latest_checkpoint) as path:
            total, starting_batch = load_state(trial_id, path)
            logging.info(f"resumed at batch {starting_batch}")
    for batch in range(starting_batch, max_length):
        total += step_size
        steps_completed = batch + 1
        if steps_completed % 10 == 0:
            core_context.train.report_training_metrics(
                steps_completed=steps_completed, metrics={"total": total})
            with core_context.checkpoint.store_path({"steps_completed": steps_completed}) as (path, uuid):
                save_state(total, steps_completed, trial_id, path)
            if core_context.preempt.should_preempt():
                return
    core_context.train.report_validation_metrics(
        steps_completed=steps_completed, metrics={"total": total})


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format=det.LOG_FORMAT)
    info = det.get_cluster_info()
    assert info is not None, "this example only runs inside an asha_hpc job"
    with det.core.init() as core_context:
        main(core_context, info.latest_checkpoint, info.trial.trial_id, step_size=1,
             max_length=int(sys.argv[1]) if len(sys.argv) > 1 else 40)

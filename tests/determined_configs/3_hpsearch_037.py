"""Core API stage 3, Determined 0.37 style (after core_api/3_hpsearch.py of 0.37): the searcher's
operations say how far to train; each ends with op.report_completed(metric)."""
import logging
import pathlib

from asha_hpc.compat import determined as det


def save_state(score, steps_completed, trial_id, checkpoint_directory):
    checkpoint_directory.joinpath("state").write_text(f"{score},{steps_completed},{trial_id}")


def load_state(trial_id, checkpoint_directory):
    s, steps, ckpt_trial = pathlib.Path(checkpoint_directory).joinpath("state").read_text().split(",")
    return (float(s), int(steps)) if int(ckpt_trial) == trial_id else (float(s), 0)


def main(core_context, latest_checkpoint, trial_id, step_size):
    score, batch = 0.0, 0
    if latest_checkpoint is not None:
        with core_context.checkpoint.restore_path(latest_checkpoint) as path:
            score, batch = load_state(trial_id, path)
    last_checkpoint_batch = None
    steps_completed = batch
    for op in core_context.searcher.operations():
        while batch < op.length:
            score += step_size / (1.0 + abs(step_size - 4))  # step_size 4 is best
            steps_completed = batch + 1
            if steps_completed % 10 == 0:
                core_context.train.report_training_metrics(
                    steps_completed=steps_completed, metrics={"score": score})
                op.report_progress(batch)
                with core_context.checkpoint.store_path({"steps_completed": steps_completed}) as (path, uuid):
                    save_state(score, steps_completed, trial_id, path)
                last_checkpoint_batch = steps_completed
                if core_context.preempt.should_preempt():
                    return
            batch += 1
        core_context.train.report_validation_metrics(
            steps_completed=steps_completed, metrics={"total": score})
        op.report_completed(score)
    if last_checkpoint_batch != steps_completed:
        with core_context.checkpoint.store_path({"steps_completed": steps_completed}) as (path, uuid):
            save_state(score, steps_completed, trial_id, path)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format=det.LOG_FORMAT)
    info = det.get_cluster_info()
    assert info is not None, "this example only runs inside an asha_hpc job"
    with det.core.init() as core_context:
        main(core_context, info.latest_checkpoint, info.trial.trial_id,
             step_size=info.trial.hparams["step_size"])

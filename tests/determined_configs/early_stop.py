"""A 0.38 script with its own early stopping (after Determined's docs on report_early_exit):
when the validation loss stops improving it reports USER_REQUESTED_STOP and returns. The
trial then ends as completed, its last validation its result."""
import logging

from asha_hpc.compat import determined as det


def main(core_context, info):
    plateau_at = info.trial.hparams["plateau_at"]  # where this trial's loss stops improving
    batches = info.trial.steps_completed
    while batches < info.trial._config["searcher"]["max_time"]:
        batches += 10
        loss = 1.0 / min(batches, plateau_at or batches)
        core_context.train.report_validation_metrics(
            steps_completed=batches, metrics={"loss": loss, "batches": batches})
        with core_context.checkpoint.store_path({"steps_completed": batches}) as (path, _):
            path.joinpath("batches").write_text(str(batches))
        if plateau_at and batches >= plateau_at + 20:  # no better for two validations
            core_context.train.report_early_exit(det.core.EarlyExitReason.USER_REQUESTED_STOP)
            return
        if core_context.preempt.should_preempt():
            return


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format=det.LOG_FORMAT)
    info = det.get_cluster_info()
    with det.core.init() as core_context:
        main(core_context, info)

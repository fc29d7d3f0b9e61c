"""Core API stage 1 (after Determined's examples/tutorials/core_api/1_metrics.py): a plain loop
that reports training metrics, its progress, and one validation metric at the end."""
import logging

from asha_hpc.compat import determined as det


def main(core_context, step_size):
    total = 0
    max_length = 40
    for batch in range(max_length):
        total += step_size
        steps_completed = batch + 1
        if steps_completed % 10 == 0:
            core_context.train.report_training_metrics(
                steps_completed=steps_completed, metrics={"total": total})
            core_context.train.report_progress(steps_completed / float(max_length))
    core_context.train.report_validation_metrics(
        steps_completed=steps_completed, metrics={"total": total})


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format=det.LOG_FORMAT)
    with det.core.init() as core_context:
        main(core_context=core_context, step_size=1)

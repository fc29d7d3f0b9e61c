"""The rest of Determined's Core API that scripts call, as its docs call it: the trial's own
config (``info.trial._config``: the length in code, from ``searcher.max_time``; the ``data``
section), ``train.set_status``, ``train.set_metadata`` / ``get_metadata`` (kept across the
trial's runs), ``checkpoint.delete`` (keep only the newest), ``preempt.start`` / ``close``,
``trial_run_id``, ``get_experiment_best_validation``. The first run fails once after its
checkpoint at batch 20 (a node lost); the retry goes on from there."""
import logging

from asha_hpc.compat import determined as det


def main(core_context, info):
    config = info.trial._config
    max_time = config["searcher"]["max_time"]
    step = config["data"]["validate_every"]
    run = info.trial.trial_run_id
    core_context.train.set_status(f"training, run {run}")
    runs = core_context.train.get_metadata().get("runs", []) + [run]
    core_context.train.set_metadata({"runs": runs})
    batches, previous = 0, None
    if info.latest_checkpoint is not None:
        with core_context.checkpoint.restore_path(info.latest_checkpoint) as path:
            batches = int(path.joinpath("batches").read_text())
        previous = info.latest_checkpoint
    while batches < max_time:
        batches += step
        best = core_context.train.get_experiment_best_validation()
        core_context.train.report_validation_metrics(steps_completed=batches, metrics={
            "loss": 100.0 / batches, "batches": batches, "run": run, "runs_seen": len(runs),
            "best_before": -1.0 if best is None else best,
            "slots": config["resources"]["slots_per_trial"]})
        with core_context.checkpoint.store_path({"steps_completed": batches}) as (path, sid):
            path.joinpath("batches").write_text(str(batches))
        if previous is not None:
            core_context.checkpoint.delete(previous)
        previous = sid
        if batches == 20 and run == 1:
            raise RuntimeError("node lost at batch 20")
        if core_context.preempt.should_preempt():
            return


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format=det.LOG_FORMAT)
    info = det.get_cluster_info()
    with det.core.init() as core_context:
        core_context.preempt.start()
        main(core_context, info)
        core_context.preempt.close()

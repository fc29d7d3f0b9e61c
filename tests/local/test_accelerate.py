"""Accelerate's checkpointing example as the README's Accelerate paragraph adapts it
(tests/foreign/accelerate_checkpointing.py), run as the README's command line: ``accelerate
launch`` with two processes (``--multi_gpu`` and ``ACCELERATE_USE_CPU=1`` on a machine without
GPUs, ``--main_process_port 0``), ``save_state`` into the trial's checkpoint folder,
``load_state`` of the latest ``epoch_*`` folder there. A promoted trial must go on where it
stopped, in both processes, with the batches and the result an uninterrupted run gives."""
from pathlib import Path

import yaml

from conftest import require_module
from helpers import cli, final_state, journal

require_module("torch")
require_module("accelerate", extra="transformers")
require_module("sklearn")
FOREIGN = Path(__file__).parent.parent / "foreign"


def _search(tmp_path: Path, name: str, trials: int, rungs: int) -> Path:
    launch = str(Path(__import__("sys").executable).parent / "accelerate")  # on the venv's PATH
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({
        "name": name,
        "entrypoint": {"command": [
            launch, "launch", "--num_processes", "2", "--multi_gpu", "--main_process_port", "0",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            str(FOREIGN / "accelerate_checkpointing.py"), "${args}", "--seed", "7",
            "--num_epochs", "${ASHA_MAX_LENGTH}", "--checkpointing_steps", "epoch",
            "--output_dir", "${ASHA_CHECKPOINT_DIR}",
            "--resume_from_checkpoint", "${ASHA_LATEST_CHECKPOINT}"]},
        "environment": {"environment_variables": ["ACCELERATE_USE_CPU=1", "OMP_NUM_THREADS=1"]},
        # one configuration and one seed: every trial alike, so the straight run's trial 1 is
        # the twin of whichever trial the halving search promotes
        "hyperparameters": {"lr": 0.05, "hidden": 32, "batch_size": 64},
        "searcher": {"name": "async_halving", "metric": "eval_loss", "max_length": 4,
                     "num_rungs": rungs, "divisor": 2, "max_trials": trials,
                     "max_concurrent_trials": trials},
        "max_restarts": 0, "poll_interval_s": 0.2,
        "local": {"gpus": [], "max_parallel": trials, "workers": 0}}))
    exp = tmp_path / name
    cli("run", tmp_path / f"{name}.yaml", "--exp-dir", exp, timeout=400)
    return exp


def test_a_promoted_accelerate_trial_goes_on_in_both_processes_as_if_never_stopped(tmp_path):
    exp = _search(tmp_path, "halving", trials=2, rungs=2)
    _, st = final_state(exp)
    assert st.lifecycle == "completed"
    (promoted,) = [t for t in st.trials.values() if t.length == 4]
    folder = exp / "trials" / f"{promoted.id:05d}"
    # the second segment loaded the first's last epoch and trained epochs 2 and 3 only, in
    # each of the two processes
    batches = sorted((folder / "batches").read_text().splitlines())
    assert [line.split()[:2] for line in batches] == \
        [[rank, epoch] for rank in "01" for epoch in "0123"]
    results = [r for r in journal(exp) if r["kind"] == "result" and r["trial"] == promoted.id]
    assert [r["status"] for r in results] == ["completed", "completed"]

    straight = _search(tmp_path, "straight", trials=1, rungs=1)
    _, twin = final_state(straight)
    assert sorted((straight / "trials" / "00001" / "batches").read_text().splitlines()) == batches
    assert abs(promoted.rung_metrics[4] - twin.trials[1].rung_metrics[4]) < 1e-6

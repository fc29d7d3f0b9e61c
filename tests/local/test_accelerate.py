"""Accelerate's checkpointing example as the README's Accelerate paragraph adapts it
(tests/foreign/accelerate_checkpointing.py), run as the README's command line: ``accelerate
launch`` with two processes (``--multi_gpu`` and ``ACCELERATE_USE_CPU=1`` on a machine without
GPUs, ``--main_process_port ${ASHA_FREE_PORT}``), ``save_state`` into the trial's checkpoint
folder each epoch, ``load_state`` of the latest ``epoch_*`` folder there. A promoted trial must
go on where it stopped, in both processes, with the batches and the result an uninterrupted
run gives, and so must a job stopped halfway by SIGTERM to all its processes (Slurm's
preemption and ``scancel``): from the last epoch the script said it saved, not from the
segment's start."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from conftest import require_module
from helpers import final_state, journal

require_module("torch")
require_module("accelerate", extra="transformers")
require_module("sklearn")
FOREIGN = Path(__file__).parent.parent / "foreign"
EPOCHS = 16  # max_length; the first rung is 8
KILL_AT = 9  # the promoted job is stopped once it starts this epoch: epoch 8 is saved


LAUNCH = [str(Path(sys.executable).parent / "accelerate"), "launch",  # on the venv's PATH
          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
CHECKPOINTS = ["--output_dir", "${ASHA_CHECKPOINT_DIR}",
               "--resume_from_checkpoint", "${ASHA_LATEST_CHECKPOINT}"]


def _start(tmp_path: Path, name: str, command: list[str], hparams: dict, max_length: object,
           trials: int, rungs: int) -> tuple[Path, subprocess.Popen]:
    """Search ``name``, its master started in the background (what it prints kept in
    ``NAME.master.log``). One configuration and one seed: every trial alike, so a straight
    run's trial 1 is the twin of whichever trial a halving search promotes."""
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({
        "name": name,
        "entrypoint": {"command": command},
        "environment": {"environment_variables": ["ACCELERATE_USE_CPU=1", "OMP_NUM_THREADS=1"]},
        "hyperparameters": hparams,
        "searcher": {"name": "async_halving", "metric": "eval_loss", "max_length": max_length,
                     "num_rungs": rungs, "divisor": 2, "max_trials": trials,
                     "max_concurrent_trials": trials},
        "max_restarts": 0, "poll_interval_s": 0.2,  # a preemption is no failure
        "local": {"gpus": [], "max_parallel": trials, "workers": 0}}))
    exp = tmp_path / name
    with open(tmp_path / f"{name}.master.log", "w") as out:
        master = subprocess.Popen([sys.executable, "-m", "asha_hpc.cli", "run",
                                   str(tmp_path / f"{name}.yaml"), "--exp-dir", str(exp)],
                                  stdout=out, stderr=subprocess.STDOUT)
    return exp, master


def _search(tmp_path: Path, name: str, trials: int, rungs: int) -> tuple[Path, subprocess.Popen]:
    """The checkpointing example in epochs, two processes."""
    return _start(tmp_path, name, [
        # the shell notes the job's process group for the test, then is the launcher
        "sh", "-c", 'ps -o pgid= -p $$ > "$ASHA_TRIAL_DIR/pgid"; exec "$@"', "sh",
        *LAUNCH, "--num_processes", "2", "--multi_gpu", "--main_process_port", "${ASHA_FREE_PORT}",
        str(FOREIGN / "accelerate_checkpointing.py"), "${args}", "--seed", "7",
        "--num_epochs", "${ASHA_MAX_LENGTH}", "--checkpointing_steps", "epoch", *CHECKPOINTS],
        {"lr": 0.05, "hidden": 32, "batch_size": 64}, EPOCHS, trials, rungs)


def _finished(exp: Path, master: subprocess.Popen) -> None:
    """The search ended well, or the test fails with what the master and the trials' last jobs
    printed."""
    if master.wait(timeout=300) == 0:
        return
    told = [f"the master exited {master.returncode}:",
            (exp.parent / f"{exp.name}.master.log").read_text()[-4000:]]
    for trial in sorted((exp / "trials").glob("0000?")):
        for stream in ([], ["--err"]):
            r = subprocess.run([sys.executable, "-m", "asha_hpc.cli", "logs", str(exp),
                                str(int(trial.name)), "--tail", "40", *stream],
                               capture_output=True, text=True, timeout=60)
            told += [f"trial {trial.name} {stream}:", r.stdout + r.stderr]
    raise AssertionError("\n".join(told))


def _epochs(folder: Path, rank: str = "0") -> list[int]:
    """The epochs process ``rank`` started, in order, over all the trial's jobs."""
    lines = (folder / "batches").read_text().splitlines() if (folder / "batches").exists() else []
    return [int(x.split()[1]) for x in lines if x.split()[0] == rank]


def test_a_promoted_then_preempted_accelerate_trial_trains_as_if_never_stopped(tmp_path):
    exp, master = _search(tmp_path, "halving", trials=2, rungs=2)
    try:
        # the promoted segment (epochs 8-15) has saved epoch 8: SIGTERM to every process of
        # its job, as Slurm sends it
        deadline = time.time() + 300
        while True:
            late = [d for d in (exp / "trials").glob("0000?") if KILL_AT in _epochs(d)]
            if late:
                break
            assert time.time() < deadline and master.poll() is None, "no trial was promoted"
            time.sleep(0.05)
        os.killpg(int((late[0] / "pgid").read_text()), signal.SIGTERM)
        _finished(exp, master)
    finally:
        if master.poll() is None:
            master.kill()
    _, st = final_state(exp)
    (promoted,) = [t for t in st.trials.values() if t.length == EPOCHS]
    folder = exp / "trials" / f"{promoted.id:05d}"
    results = [(r["status"], r.get("stop_reason"))
               for r in journal(exp) if r["kind"] == "result" and r["trial"] == promoted.id]
    assert results == [("completed", None), ("interrupted", "SIGTERM"), ("completed", None)]
    for rank in "01":
        epochs = _epochs(folder, rank)
        # the second job went on from the first's last epoch, the third from the last epoch
        # the second said it saved (8 at least): epochs before the stop are trained once,
        # and the stop cost at most the epoch it came in and the one being saved
        assert epochs[:KILL_AT] == list(range(KILL_AT)), epochs
        assert sorted(set(epochs)) == list(range(EPOCHS)) and epochs[-1] == EPOCHS - 1, epochs
        assert epochs.count(KILL_AT - 1) == 1 and len(epochs) - EPOCHS <= 2, epochs

    # the script removes each epoch's folder once the next is saved: every checkpoint the
    # trial keeps is one whole state
    kept = [sorted(e.name for e in c.iterdir() if e.name.startswith("epoch_"))
            for c in (folder / "checkpoints").iterdir()]
    assert kept and all(len(k) == 1 for k in kept) and [f"epoch_{EPOCHS - 1}"] in kept, kept

    straight, master = _search(tmp_path, "straight", trials=1, rungs=1)
    _finished(straight, master)
    _, twin = final_state(straight)
    lines = (straight / "trials" / "00001" / "batches").read_text().splitlines()
    # an epoch trained again after the stop draws the batches it drew before
    assert sorted(set((folder / "batches").read_text().splitlines())) == sorted(lines)
    assert abs(promoted.rung_metrics[EPOCHS] - twin.trials[1].rung_metrics[EPOCHS]) < 1e-6


def _steps_search(tmp_path: Path, name: str, trials: int, rungs: int) -> tuple[Path, subprocess.Popen]:
    """A ``*_no_trainer.py``-shaped script counting optimizer steps (max_length in batches),
    one process: what is tested is the resume mid-epoch, ``skip_first_batches``."""
    return _start(tmp_path, name, [
        *LAUNCH, "--num_processes", "1",
        str(FOREIGN / "accelerate_no_trainer_steps.py"), "${args}", "--seed", "7",
        "--max_train_steps", "${ASHA_MAX_LENGTH}", "--checkpointing_steps", "5", *CHECKPOINTS],
        {"learning_rate": 0.05, "hidden": 32}, {"batches": STEPS}, trials, rungs)


STEPS = 30  # max_length in optimizer steps: an epoch is 22 batches, the first rung 15


def test_a_trial_counted_in_steps_goes_on_mid_epoch_as_if_never_stopped(tmp_path):
    """The README's recipe for a length in optimizer steps: a promoted trial stops at step 15,
    in its first epoch, and the next job skips the 15 batches that epoch has trained, then
    crosses into the second epoch: every batch in the order, and the result, of a trial
    trained straight through."""
    exp, master = _steps_search(tmp_path, "halving", trials=2, rungs=2)
    _finished(exp, master)
    _, st = final_state(exp)
    (promoted,) = [t for t in st.trials.values() if t.length == STEPS]
    straight, master = _steps_search(tmp_path, "straight", trials=1, rungs=1)
    _finished(straight, master)
    _, twin = final_state(straight)

    def batches(folder: Path) -> list[str]:
        return (folder / "batches").read_text().splitlines()

    resumed = batches(exp / "trials" / f"{promoted.id:05d}")
    assert [int(x.split()[1]) for x in resumed] == list(range(1, STEPS + 1))  # each step once
    assert resumed == batches(straight / "trials" / "00001")
    assert abs(promoted.rung_metrics[STEPS] - twin.trials[1].rung_metrics[STEPS]) < 1e-6
    # the second job began from the step_15 folder the first left
    log = subprocess.run([sys.executable, "-m", "asha_hpc.cli", "logs", str(exp),
                          str(promoted.id)], capture_output=True, text=True, timeout=60).stdout
    assert "Resumed from checkpoint: step_15" in log, log[-2000:]

"""Slurm's preemption and ``scancel`` send SIGTERM to every process of a job, and a training
command is rarely one process: the README's LightningCLI line runs under ``sh -c``, and a
Transformers or Lightning script's DataLoader has worker processes. The shell dies of the signal
at once; the workers would too (torch's worker ends on a SIGTERM its parent did not send), and
the script would fail on its next batch before it could save. Here the SIGTERM goes to the job's
whole process group, as Slurm sends it: the script must save where it is, the job must keep that
checkpoint although the shell above the script ended with an error, and the next job must go on
from there, not from the segment's start. (The LightningCLI recipe gets plain ``scancel`` on the
real Slurm cluster: tests/slurm/test_slurm_pause.py.)"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from conftest import require_module
from helpers import final_state, journal, one_trial_training, preempt_then_finish

require_module("torch")

FOREIGN = Path(__file__).parent.parent / "foreign"
# the command's shell writes its process group (the job's) where the test finds it
PGID = 'ps -o pgid= -p $$ > "$ASHA_TRIAL_DIR/pgid"; '


def _sigterm_when(exp: Path, master, ready) -> None:
    """SIGTERM to the job's whole process group once ``ready()``; the search must then go on
    to its end."""
    deadline = time.time() + 180
    while not ready():
        assert time.time() < deadline and master.poll() is None, "the command never trained"
        time.sleep(0.1)
    preempt_then_finish(exp, master)


def _results(exp: Path) -> list[tuple[str, str | None, bool]]:
    return [(r["status"], r.get("stop_reason"), bool(r["checkpoint"]))
            for r in journal(exp) if r["kind"] == "result"]


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_a_transformers_command_behind_sh_with_loader_workers_trains_each_step_once(tmp_path):
    pytest.importorskip("transformers")
    require_module("accelerate")
    exp, master = one_trial_training(tmp_path, {
        "entrypoint": {"command": [
            "sh", "-c", PGID + f'{sys.executable} {FOREIGN / "hf_cli_classifier.py"} "$@"', "sh",
            "${args}", "--output_dir", "${ASHA_TRIAL_DIR}/out", "--max_steps", "${ASHA_MAX_LENGTH}",
            "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none",
            "--use_cpu", "true", "--disable_tqdm", "true", "--per_device_train_batch_size", "16",
            "--dataloader_num_workers", "2"]},
        "hyperparameters": {"learning_rate": 0.001},
        "environment": {"environment_variables": ["OMP_NUM_THREADS=1"]}},
        {"batches": 600}, metric="eval_loss", started="pgid")
    trained = exp / "trials" / "00001" / "trained.jsonl"
    _sigterm_when(exp, master, lambda: any(x["step"] >= 150 for x in _lines(trained)))
    assert _results(exp) == [("interrupted", "SIGTERM", True), ("completed", None, True)]
    steps = [x["step"] for x in _lines(trained)]
    assert steps == list(range(1, 601)), [s for i, s in enumerate(steps) if s != i + 1][:5]
    _, st = final_state(exp)
    assert st.trials[1].restarts == 0 and st.lifecycle == "completed"


SLOW_SAVER = '''import json, os, signal, subprocess, sys, time
stop = []
signal.signal(signal.SIGTERM, lambda s, f: stop.append(s))
out = os.environ["ASHA_CHECKPOINT_DIR"]
latest = os.environ["ASHA_LATEST_CHECKPOINT"]
step = json.load(open(os.path.join(latest, "state.json")))["step"] if latest else 0
with open(os.path.join(os.environ["ASHA_TRIAL_DIR"], "starts"), "a") as f:
    f.write(f"{step}\\n")
while step < 40 and not stop:
    step += 1
    time.sleep(0.05)
if stop:  # a big model's save: longer than the job's usual wait for a command's stderr
    time.sleep(12)
json.dump({"step": step}, open(os.path.join(out, "state.json"), "w"))
report = [sys.executable, "-m", "asha_hpc.report"]
if stop:
    subprocess.run(report + ["--saved", ".", "--reached", "0"], check=True)
    sys.exit(1)
subprocess.run(report + ["loss=0.5"], check=True)
'''


def test_a_script_whose_save_outlasts_its_shell_keeps_the_whole_folder_it_said_saved(tmp_path):
    """A plain script (no callback) behind ``sh -c``, which takes 12 s to save after the
    signal and says so with ``python -m asha_hpc.report --saved .``: the job waits for it
    although the shell ended at once, and keeps the folder; the next job starts from it."""
    (tmp_path / "slow_saver.py").write_text(SLOW_SAVER)
    exp, master = one_trial_training(tmp_path, {"entrypoint": {"command": [
        "sh", "-c", PGID + f"{sys.executable} slow_saver.py"]}}, 1, started="starts")
    _sigterm_when(exp, master, lambda: True)
    assert _results(exp) == [("interrupted", "SIGTERM", True), ("completed", None, True)]
    starts = [int(x) for x in (exp / "trials" / "00001" / "starts").read_text().split()]
    assert starts[0] == 0 and 0 < starts[1] < 40, starts

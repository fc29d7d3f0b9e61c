"""``asha-hpc pause`` on the real local Slurm cluster. Slurm signals every process of a job, and
a training command is rarely one process: the README's LightningCLI line runs under ``sh -c``,
and its DataLoader has worker processes. A pause must end none of them before the script has
saved: the job gets SIGURG (ignored by default), its Python writes the stop file, and the
script's callback saves where it is."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import require_module
from slurm_helpers import (
    cli,
    exp_name,
    final_state,
    journal,
    make_experiment,
    run_search,
    wait_until,
)

pytestmark = pytest.mark.slurm

PROJECT = Path(__file__).parent.parent / "foreign" / "lightning_cli"


def _steps(trial_dir: Path) -> list[tuple[str, int]]:
    log = trial_dir / "steps.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [(Path(x["run"]).name, x["step"]) for x in map(json.loads, lines)]


def _lightning_cli_search(tmp_path: Path, cleanup, name: str, batches: int, flags: str = "",
                          **slurm):
    """The README's LightningCLI recipe behind ``sh -c``, one trial of one epoch of
    ``batches`` steps on each rank, with two DataLoader workers: (the experiment folder, the
    master)."""
    pytest.importorskip("jsonargparse")
    require_module("lightning")
    for file in ("main.py", "config.yaml"):
        shutil.copy(PROJECT / file, tmp_path / file)
    return run_search(tmp_path, {
        "name": f"{name}-{uuid.uuid4().hex[:6]}",
        "entrypoint": {"command": [
            "sh", "-c", f'{sys.executable} main.py fit --config config.yaml {flags}'
            '--trainer.max_epochs "$ASHA_MAX_LENGTH" --trainer.default_root_dir "$ASHA_TRIAL_DIR" '
            f'--trainer.limit_train_batches {batches} '
            f'--data.n {4 * batches * slurm.get("tasks_per_node", 1)} --data.batch_size 4 '
            '--data.num_workers 2 '
            '"$@" ${ASHA_LATEST_CHECKPOINT:+--ckpt_path "$ASHA_LATEST_CHECKPOINT/lightning.ckpt"}',
            "sh", "${args}"]},
        "hyperparameters": {"model": {"lr": 0.01}},
        "searcher": {"name": "single", "metric": "val_loss", "max_length": {"epochs": 1}},
        "environment": {"environment_variables": ["OMP_NUM_THREADS=1"]}},
        cleanup, timeout_min=10, **slurm)


def test_pause_of_a_lightning_cli_command_behind_sh_keeps_where_it_was(tmp_path, cleanup):
    """The README's LightningCLI recipe (``sh -c '... ${ASHA_LATEST_CHECKPOINT:+--ckpt_path
    ...}'``) with two DataLoader workers, paused mid-epoch: the job's ``sh``, the script and
    its workers live on until the callback has saved; the checkpoint is published, and after
    ``resume`` the next job goes on from the step the pause stopped at, not from step 0."""
    batches = 2000  # the pause lands 300-400 steps after its witness (200) on a quiet machine
    exp, master = _lightning_cli_search(tmp_path, cleanup, "plpause", batches=batches)
    trial_dir = exp / "trials" / "00001"
    wait_until(lambda: [s for _, s in _steps(trial_dir) if s >= 200], 300,
               "trial 1 to train 200 steps")
    out = cli("pause", exp)
    assert "paused the search" in out.stdout, out.stdout
    master.communicate(timeout=120)
    paused_at = max(s for _, s in _steps(trial_dir))
    assert paused_at < batches, "the pause came too late to be mid-epoch"

    cli("resume", exp)
    _, st, recs = final_state(exp)
    results = [(r["status"], r.get("stop_reason")) for r in recs if r["kind"] == "result"]
    assert results == [("interrupted", "SIGURG"), ("completed", None)]
    t1 = st.trials[1]
    assert st.lifecycle == "completed" and t1.status == "completed"
    assert t1.restarts == 0 and st.counts()["failed"] == 0
    again = [s for run, s in _steps(trial_dir) if run.endswith("-a01")]
    # the second job restored the paused job's checkpoint: its steps count on from there
    assert again and min(again) > paused_at, (paused_at, again[:3])


@pytest.mark.parametrize("ranks", [1, 2], ids=["one process", "DDP on two ranks"])
def test_scancel_of_a_lightning_cli_command_behind_sh_keeps_where_it_was(tmp_path, cleanup, ranks):
    """``scancel``'s SIGTERM (a cancel's, a preemption's) to every process of the job, the
    ``sh``, the script and its DataLoader workers. The shell dies at once; the workers outlive
    their first SIGTERM and the script saves where it is; the job waits for the script and keeps
    that checkpoint, and the segment goes on from its step in the next job, counting no
    failure. Under DDP (``tasks_per_node: 2``, the srun-per-task style) the two ranks' jobs
    publish that checkpoint once, from rank 0's."""
    ddp = f"--trainer.devices {ranks} --trainer.strategy ddp " if ranks > 1 else ""
    # seconds of training left after the first witness (a DDP step takes several times as
    # long): a signal after the epoch's end would be no preemption
    batches = 800 if ranks > 1 else 1500
    exp, master = _lightning_cli_search(tmp_path, cleanup, "plterm", batches=batches, flags=ddp,
                                        tasks_per_node=ranks)
    trial_dir = exp / "trials" / "00001"
    # at its first witness: the signal must land well before the epoch's end (a DDP step is
    # slow on a busy machine, and a signal after training is no preemption)
    wait_until(lambda: _steps(trial_dir), 300, "trial 1 to train 100 steps")
    jobs = [str(r["job_id"]) for r in journal(exp) if r["kind"] in ("submitted", "started")
            and r.get("trial") == 1 and re.fullmatch(r"\d+(_\d+)?", str(r["job_id"]))]
    # the same SIGTERM to every process of the job step, without the SIGKILL that a plain
    # scancel sends 5 s later on this cluster (KillWait=5; Slurm's default is 30 s, a
    # preemptible partition's GraceTime often more): on a busy CI machine Lightning's save and
    # teardown took longer than 5 s, in one process as in two
    subprocess.run(["scancel", "--signal=TERM", jobs[-1]], check=True)
    _, err = master.communicate(timeout=600)
    assert master.returncode == 0, err[-3000:]
    _, st, recs = final_state(exp)
    results = [(r["status"], r.get("stop_reason"), bool(r["checkpoint"]))
               for r in recs if r["kind"] == "result"]
    assert results == [("interrupted", "SIGTERM", True), ("completed", None, True)], \
        (results, [r for r in recs if r["kind"] == "job_dead"])
    first = [s for run, s in _steps(trial_dir) if run.endswith("-a00")]
    again = [s for run, s in _steps(trial_dir) if run.endswith("-a01")]
    assert again and min(again) > max(first), (first, again)
    assert st.trials[1].restarts == 0 and st.lifecycle == "completed"


DEAF = '''import json, os, time
if os.environ["ASHA_RUN_DIR"].endswith("-a00"):  # the first job trains on, deaf to its stop
    time.sleep(600)
with open(os.environ["ASHA_REPORT_FILE"], "a") as f:
    f.write(json.dumps({"metrics": {"loss": 0.5}}) + "\\n")
'''


def test_pause_cancels_a_job_still_running_after_its_grace(tmp_path, cleanup):
    """A command that never looks at its stop: the master waits ``signal_delay_s`` for it,
    then cancels it and says so; the trial goes on after ``resume``, counting no failure."""
    (tmp_path / "deaf.py").write_text(DEAF)
    exp, master = run_search(tmp_path, {
        "name": f"deaf-{uuid.uuid4().hex[:6]}",
        "entrypoint": {"command": [sys.executable, "deaf.py"]},
        "hyperparameters": {"x": 1},
        "searcher": {"name": "single", "metric": "loss", "max_length": {"epochs": 1}}},
        cleanup, signal_delay_s=6)
    wait_until(lambda: (exp / "trials/00001/runs/t00001-s000-a00/hparams.json").exists(), 120,
               "trial 1's command to start")
    out = cli("pause", exp)
    assert "is pausing the search: its running jobs save and stop (at most 6 s, then they are " \
           "cancelled)" in out.stdout, out.stdout
    assert "paused the search: 1 running job told to save and stop (1 cancelled after the " \
           "grace: " in out.stdout, out.stdout
    _, err = master.communicate(timeout=60)
    assert "told to save and stop; waiting up to 6 s" in err, err
    assert "had not stopped 6 s after the pause: cancelled" in err, err
    logs = "".join(f.read_text(errors="replace") for f in (exp / "jobs").rglob("*.err"))
    assert "after the job's stop signal (SIGURG, then SIGTERM)" in logs, logs[-3000:]
    cli("resume", exp)
    _, st, recs = final_state(exp)
    results = [(r["status"], r.get("stop_reason")) for r in recs if r["kind"] == "result"]
    assert results == [("interrupted", "SIGURG"), ("completed", None)]
    assert st.trials[1].restarts == 0 and st.lifecycle == "completed"
    assert any("interrupted (SIGURG: asha-hpc pause)" in e for _, e in st.events), st.events


def test_a_paused_master_job_is_not_a_finished_one_for_slurm(tmp_path, cleanup):
    """``asha-hpc submit``'s master job, paused: it ends with exit status 75 (as ``run``), so
    Slurm records it FAILED and a job behind it (``--dependency=afterok``) never runs on a
    search that is not done."""
    cfg_path = make_experiment(tmp_path, "pausesub", hp={"sleep": 0.3})
    cleanup[0].append(exp_name(cfg_path))
    exp = tmp_path / "run"
    out = cli("submit", cfg_path, "--exp-dir", exp).stdout
    master_job = re.search(r"Slurm job (\d+)", out).group(1)
    wait_until(lambda: (exp / "journal.jsonl").exists()
               and any(r["kind"] == "result" for r in journal(exp)), 120, "a first result")
    assert "paused the search" in cli("pause", exp).stdout
    wait_until(lambda: subprocess.run(["squeue", "-h", "-j", master_job], capture_output=True,
                                      text=True).stdout.strip() == "", 60, "the master job to end")
    rows = wait_until(lambda: [r for r in subprocess.run(
        ["sacct", "-X", "-n", "--parsable2", "-o", "JobID,State,ExitCode", "-j", master_job],
        capture_output=True, text=True).stdout.split() if not r.split("|")[1].startswith("RUN")],
        30, "the master job in sacct")
    assert rows[-1].split("|")[1:] == ["FAILED", "75:0"], rows

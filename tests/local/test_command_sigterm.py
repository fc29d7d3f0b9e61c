"""Slurm's scancel and preemption send SIGTERM to every process of a job: a command trial's
script gets it too and dies of it (exit status -15) before it can look at its stop file. That
is the stop's doing, not the script's: the segment is interrupted and goes on from the last
checkpoint, and no restart is counted (a trial on a preemptible partition would otherwise fail
for good after max_restarts preemptions). Here the SIGTERM goes to the local job's whole process
group, as Slurm signals the step."""
import sys

from helpers import final_state, journal, one_trial_training, preempt_then_finish

SCRIPT = '''
import json, os, pathlib, time

trial_dir = pathlib.Path(os.environ["ASHA_TRIAL_DIR"])
(trial_dir / "pgid").write_text(str(os.getpgid(0)))
latest = os.environ["ASHA_LATEST_CHECKPOINT"]
epoch = json.loads((pathlib.Path(latest) / "state.json").read_text())["epoch"] if latest else 0
target = int(os.environ["ASHA_TARGET_LENGTH"])
out = pathlib.Path(os.environ["ASHA_CHECKPOINT_DIR"])
while epoch < target:  # a script that never looks at ASHA_STOP_FILE: the default SIGTERM kills it
    time.sleep(0.3)
    epoch += 1
    (trial_dir / "training").touch()
(out / "state.json").write_text(json.dumps({"epoch": epoch}))
with open(os.environ["ASHA_REPORT_FILE"], "a") as f:
    f.write(json.dumps({"metrics": {"loss": 1.0 / epoch}}) + "\\n")
'''


def test_a_command_killed_by_the_jobs_sigterm_is_interrupted_not_failed(tmp_path):
    (tmp_path / "train.py").write_text(SCRIPT)
    exp, p = one_trial_training(tmp_path, {"command": [sys.executable, "train.py"]}, 12)
    preempt_then_finish(exp, p)
    first, last = [r for r in journal(exp) if r["kind"] == "result"]
    assert first["status"] == "interrupted" and first["stop_reason"] == "SIGTERM", first
    assert last["status"] == "completed"
    _, st = final_state(exp)
    assert st.trials[1].restarts == 0 and st.lifecycle == "completed"
    err = "".join(f.read_text() for f in (exp / "jobs").glob("*_log.err"))
    assert "after the job's stop signal (SIGTERM)" in err
    assert f"asha_hpc: command: {sys.executable} train.py\n" in err  # as run, in the job's log

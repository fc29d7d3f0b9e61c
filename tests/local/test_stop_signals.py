"""Stop signals (a cancel, a time limit) may come in bursts: the master's cancel and Slurm's
signal both land, or a cancel is sent twice. The handler must not take a lock, or a second
signal landing inside the first handler deadlocks the job, which then holds its slot (on Slurm:
its GPUs) until the time limit."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import yaml

from helpers import cli

CHILD = r'''
import signal, sys, time
from pathlib import Path
from asha_hpc.job.trial import Trial

d = Path(sys.argv[1])
trial = Trial(trial_id=1, hparams={}, trial_dir=d, run_dir=d / "run", segments=[1],
              first_segment=0, metric="loss", key="t00001-s000-a00")
for name in ("SIGTERM", "SIGUSR2"):  # as jobmain installs them while a segment runs
    signal.signal(getattr(signal, name), lambda s, f: trial.request_stop(signal.Signals(s).name))
print("ready", flush=True)
deadline = time.monotonic() + 60
while not trial.should_stop() and time.monotonic() < deadline:
    time.sleep(0.0005)
time.sleep(0.5)  # the rest of the burst lands while the job winds down
print("stopped", trial._stop_reason, flush=True)
'''


def test_a_burst_of_stop_signals_stops_the_job(tmp_path):
    for _ in range(5):
        p = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE,
                             text=True)
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for i in range(400):
            try:
                p.send_signal(signal.SIGTERM if i % 2 else signal.SIGUSR2)
            except ProcessLookupError:
                break
        try:
            out, _ = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            raise AssertionError("the job hung in its stop-signal handler") from None
        assert p.returncode == 0 and out.startswith("stopped SIG"), out
        time.sleep(0.05)


# a command's script (the Determined shim, AshaCallback() in a command) that asks whether to
# stop and takes a while to save once told
LISTENING = r'''
import sys, time
from asha_hpc.job import stop_signals

stop_signals.SAME_STOP_S = float(sys.argv[1])
stop_signals.install()
stop_signals.received()  # the script asks once: from now on a stop signal only tells it
print("ready", flush=True)
while stop_signals.received() is None:
    time.sleep(0.01)
print("told", flush=True)
time.sleep(1.0)  # saving
print("saved", flush=True)
'''


def _listening(same_stop_s: float) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", LISTENING, str(same_stop_s)],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


def test_scancels_sigterm_and_torchruns_copy_of_it_are_one_stop():
    """On Slurm a script under torchrun gets scancel's SIGTERM and, at once, the one torchrun
    sends its workers when it is signalled: the script still saves, then exits."""
    p = _listening(5.0)
    p.send_signal(signal.SIGTERM)
    assert p.stdout is not None and p.stdout.readline().strip() == "told"
    p.send_signal(signal.SIGTERM)  # torchrun's, once it has handled its own
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0 and out.split() == ["saved"], (p.returncode, out)


def test_a_later_second_sigterm_ends_a_script_that_listens():
    """``kill`` again, once the first stop had its time: the script ends as SIGTERM's default
    would, so a script stuck in its save can still be stopped."""
    p = _listening(0.2)
    p.send_signal(signal.SIGTERM)
    assert p.stdout is not None and p.stdout.readline().strip() == "told"
    time.sleep(0.4)
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=30)
    assert p.returncode == -signal.SIGTERM and "saved" not in out, (p.returncode, out)


# a job's last moments: Slurm's time-limit warning comes by the clock, and may come after the
# job's last result is out, while its Python exits
AT_EXIT = r'''
import atexit, os, signal

def _say_how_usr2_ends():
    with open(os.path.join(os.path.dirname(__file__), f"exit-{os.getpid()}"), "w") as f:
        f.write(str(signal.getsignal(signal.SIGUSR2)))

atexit.register(_say_how_usr2_ends)  # after submitit has written the job's result

def train(trial):
    for seg in trial.segments():
        seg.report(loss=trial.hparams["x"])
'''


@pytest.mark.parametrize("workers", [0, 1], ids=["a job per segment", "a warm worker"])
def test_a_time_limit_signal_after_the_jobs_last_result_does_not_kill_it(tmp_path, workers):
    """Python's exit gives the signals it caught their default action back, and SIGUSR2's
    kills: Slurm counted a job that had completed its segment as FAILED. Once its work is
    done the job ignores the warning, which its exit keeps."""
    (tmp_path / "at_exit.py").write_text(AT_EXIT)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "exit", "entrypoint": "at_exit:train",
        "searcher": {"name": "async_halving", "metric": "loss", "max_length": 2, "num_rungs": 2,
                     "divisor": 2, "max_trials": 2, "max_concurrent_trials": 1},
        "hyperparameters": {"x": {"type": "double", "minval": 0.0, "maxval": 1.0}},
        "poll_interval_s": 0.2, "local": {"gpus": [], "workers": workers}}))
    cli("run", tmp_path / "c.yaml", "--exp-dir", tmp_path / "e", cwd=tmp_path, timeout=120)
    said = [p.read_text() for p in tmp_path.glob("exit-*")]
    assert len(said) == (3 if workers == 0 else 1), said  # every job's process said it
    assert set(said) == {str(signal.SIG_IGN)}

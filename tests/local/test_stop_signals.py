"""Stop signals (a cancel, a time limit) may come in bursts: the master's cancel and Slurm's
signal both land, or a cancel is sent twice. The handler must not take a lock, or a second
signal landing inside the first handler deadlocks the job, which then holds its slot (on Slurm:
its GPUs) until the time limit."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

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

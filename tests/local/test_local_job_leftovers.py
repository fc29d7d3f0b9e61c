"""Processes a local job's code starts and never ends (a server, a logger, a forgotten
`subprocess.Popen`) are ended with the job, as Slurm's end of a job ends them (its cgroup):
on a workstation they piled up under init, one per job, for ever."""
import os
import random
import signal
import time

from helpers import cli, make_experiment


def _leftovers(marker: str) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cmd = open(f"/proc/{name}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if cmd[:2] == [b"sleep", marker.encode()]:
                out.append(int(name))
    return out


def test_what_a_job_left_running_ends_with_it(tmp_path):
    marker = f"{3000 + random.random():.6f}"  # this test's own sleeps
    (tmp_path / "leaky.py").write_text(f'''
import subprocess
from model import train as train_model

def train(trial):
    subprocess.Popen(["sleep", "{marker}"])  # started, never waited for
    train_model(trial)
''')
    cfg = make_experiment(tmp_path, searcher={"max_trials": 6, "max_concurrent_trials": 2},
                          local={"gpus": [], "max_parallel": 2, "workers": 0})
    text = cfg.read_text().replace("entrypoint: model:train", "entrypoint: leaky:train")
    cfg.write_text(text)
    exp = tmp_path / "run"
    try:
        r = cli("run", cfg, "--exp-dir", exp)
        jobs = len(list((exp / "jobs").glob("*_0_log.out")))
        left = _leftovers(marker)
        # the jobs still finishing as the master ended (at most one per slot) may keep theirs
        assert jobs >= 6 and len(left) <= 2, (jobs, left)
        assert "left 1 process of its own running: killed" in r.stderr, r.stderr[-2000:]
    finally:
        for pid in _leftovers(marker):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)

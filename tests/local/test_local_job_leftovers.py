"""Processes a local job's code starts and never ends (a server, a logger, a forgotten
`subprocess.Popen`) are ended with the job, as Slurm's end of a job ends them (its cgroup):
on a workstation they piled up under init, one per job, for ever."""
import os
import random
import signal
import time

import pytest

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


def _job_processes(exp) -> list[str]:
    out = []
    for name in os.listdir("/proc"):
        try:
            cmd = open(f"/proc/{name}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(exp / "jobs") in cmd:
            out.append(f"{name} {cmd}")
    return out


@pytest.mark.parametrize("upload_s", [3600, 2], ids=["never ends", "ends within the grace"])
def test_a_thread_the_code_never_stopped_does_not_keep_the_job(tmp_path, upload_s):
    """A non-daemon thread left running (an uploader that never ends): Python waits for it at
    exit, and the job outlived its result (on Slurm, holding its GPUs until its time limit).
    The job ends the grace after its work (ASHA_RANK_EXIT_GRACE_S, 300 s by default; 5 s
    here), naming the thread in its log."""
    (tmp_path / "uploads.py").write_text('''
import threading
import time

from model import train as train_model


def train(trial):
    threading.Thread(target=time.sleep, args=(UPLOAD_S,), name="uploader").start()  # not joined
    train_model(trial)
'''.replace("UPLOAD_S", str(upload_s)))
    cfg = make_experiment(tmp_path, searcher={"max_trials": 2, "max_concurrent_trials": 2},
                          local={"gpus": [], "max_parallel": 2, "workers": 0})
    cfg.write_text(cfg.read_text().replace("entrypoint: model:train", "entrypoint: uploads:train")
                   + "environment_variables: {ASHA_RANK_EXIT_GRACE_S: '5'}\n")
    exp = tmp_path / "run"
    try:
        cli("run", cfg, "--exp-dir", exp)
        deadline = time.time() + 5 + 30
        while _job_processes(exp) and time.time() < deadline:
            time.sleep(0.5)
        assert not _job_processes(exp), _job_processes(exp)
        logs = [p.read_text() for p in (exp / "jobs").glob("*_0_log.err")]
        # a thread that ends within the grace (a last upload) is waited for, as Python would
        said = upload_s > 5
        assert len(logs) == 2 and all(
            ("the trial's code left 1 thread running ('uploader'), 5 s after" in text) == said
            for text in logs), logs
    finally:
        for line in _job_processes(exp):
            os.kill(int(line.split()[0]), signal.SIGKILL)

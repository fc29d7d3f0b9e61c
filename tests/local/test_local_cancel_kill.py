"""Local backend's cancel: SIGTERM first (a job checkpoints and leaves), then SIGKILL for a job
still there after the grace (one stuck in a collective whose peer is gone never looks at its
stop), from a detached watcher; a pid that another process took meanwhile is left alone."""
import signal
import subprocess
import sys
import time

from asha_hpc.backends.local import _kill_later
from asha_hpc.protocol.pids import descendants, pid_alive, start_ticks

DEAF = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"


def _deaf():
    p = subprocess.Popen([sys.executable, "-c", DEAF], start_new_session=True)
    time.sleep(0.5)  # its handler is in place
    return p


def test_a_job_deaf_to_sigterm_is_killed_after_the_grace():
    p = _deaf()
    ticks = start_ticks(p.pid)
    import os

    os.killpg(p.pid, signal.SIGTERM)
    time.sleep(0.5)
    assert p.poll() is None  # it ignored the polite stop
    _kill_later([(p.pid, ticks)], [], 1.0)
    assert p.wait(timeout=15) == -signal.SIGKILL


def test_a_pid_taken_by_another_process_is_left_alone():
    p = _deaf()
    try:
        _kill_later([(p.pid, str(int(start_ticks(p.pid)) - 1))], [], 0.5)  # "another" process
        time.sleep(3)
        assert p.poll() is None and pid_alive(p.pid)
    finally:
        p.kill()
        p.wait()


# a launcher (torchrun) whose worker runs in a session of its own, deaf to SIGTERM: the job's
# process group does not hold it, and once the launcher is gone it is init's
LAUNCHER = """
import os, subprocess, sys, time
deaf = subprocess.Popen([sys.executable, "-c", {deaf!r}], start_new_session=True)
with open({pids!r}, "w") as f:
    f.write(str(deaf.pid))
time.sleep(120)
"""


def test_a_cancelled_jobs_processes_in_sessions_of_their_own_are_killed_too(tmp_path):
    pids = tmp_path / "pids"
    leader = subprocess.Popen([sys.executable, "-c", LAUNCHER.format(deaf=DEAF, pids=str(pids))],
                              start_new_session=True)
    for _ in range(100):
        if pids.exists() and pids.read_text():
            break
        time.sleep(0.1)
    worker = int(pids.read_text())
    assert worker in [p for p, _ in descendants(leader.pid)]
    _kill_later([(leader.pid, start_ticks(leader.pid))], descendants(leader.pid), 1.0)
    assert leader.wait(timeout=15) == -signal.SIGKILL
    for _ in range(100):
        if not pid_alive(worker):
            break
        time.sleep(0.1)
    assert not pid_alive(worker)

"""Local backend's cancel: SIGTERM first (a job checkpoints and leaves), then SIGKILL for a job
still there after the grace (one stuck in a collective whose peer is gone never looks at its
stop), from a detached watcher; a pid that another process took meanwhile is left alone."""
import signal
import subprocess
import sys
import time

from asha_hpc.backends.local import _kill_later, _start_ticks
from asha_hpc.protocol.pids import pid_alive

DEAF = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"


def _deaf():
    p = subprocess.Popen([sys.executable, "-c", DEAF], start_new_session=True)
    time.sleep(0.5)  # its handler is in place
    return p


def test_a_job_deaf_to_sigterm_is_killed_after_the_grace():
    p = _deaf()
    ticks = _start_ticks(p.pid)
    import os

    os.killpg(p.pid, signal.SIGTERM)
    time.sleep(0.5)
    assert p.poll() is None  # it ignored the polite stop
    _kill_later([(p.pid, ticks)], 1.0)
    assert p.wait(timeout=15) == -signal.SIGKILL


def test_a_pid_taken_by_another_process_is_left_alone():
    p = _deaf()
    try:
        _kill_later([(p.pid, str(int(_start_ticks(p.pid)) - 1))], 0.5)  # "another" process
        time.sleep(3)
        assert p.poll() is None and pid_alive(p.pid)
    finally:
        p.kill()
        p.wait()

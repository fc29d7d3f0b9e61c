"""The live report's child process: a render that fails is said once; one killed by the
signal that stopped its master too (a terminal's Ctrl-C, a notebook kernel's restart) is not
a failure of the report and says nothing."""
import logging
import signal
import subprocess
import sys
import tempfile

import pytest

from asha_hpc.views.livereport import LiveReport


def _child(lr: LiveReport, code: str) -> subprocess.Popen:
    lr._err = tempfile.TemporaryFile()
    lr._child = subprocess.Popen([sys.executable, "-c", code], stderr=lr._err,
                                 stdout=subprocess.PIPE, text=True)
    return lr._child


# a render as the master starts one: Ctrl-C's default (a pytest-xdist worker, whose children
# inherit it, ignores SIGINT), said ready once it would take the signal
SLEEPS = ("import signal, time; signal.signal(signal.SIGINT, signal.default_int_handler); "
          "print('ready', flush=True); time.sleep(60)")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_render_stopped_with_its_master_says_nothing(tmp_path, caplog, sig):
    lr = LiveReport(tmp_path)
    child = _child(lr, SLEEPS)
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    child.send_signal(sig)
    child.wait(timeout=30)
    with caplog.at_level(logging.WARNING, logger="asha_hpc"):
        assert lr._reap()
    assert not caplog.records


def test_a_render_that_fails_is_said_once(tmp_path, caplog):
    lr = LiveReport(tmp_path)
    with caplog.at_level(logging.WARNING, logger="asha_hpc"):
        for _ in range(2):
            _child(lr, "import sys; sys.exit('no journal here')").wait(timeout=30)
            assert lr._reap()
    assert [r.getMessage() for r in caplog.records] == [
        f"the live report {tmp_path / 'report.html'} was not updated (exit 1): no journal here"]

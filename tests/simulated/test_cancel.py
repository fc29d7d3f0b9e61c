"""``asha-hpc cancel`` while a master runs: the command waits for that master to cancel the
search (it removes the request once the jobs are cancelled and the cancel journaled) and says
so, or says that the master has not polled yet."""
from __future__ import annotations

import threading
import time

from asha_hpc.cli import main
from asha_hpc.master.state import replay
from asha_hpc.protocol.journal import read_journal

from helpers import running


def test_cancel_waits_for_the_running_master(tmp_path, capsys):
    cfg, exp, m = running(tmp_path)
    capsys.readouterr()
    assert main(["cancel", str(exp.root), "--wait", "0.3"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("asha-hpc: asked the master (host ")
    assert out[-1].endswith(f"to cancel; not done yet: it cancels the jobs at its next poll "
                            f"(`asha-hpc status {exp.root}` shows it)")
    assert exp.cancel_request.exists()

    def poll_soon():  # the master's next poll, while the command waits
        time.sleep(0.3)
        assert m.step() is False  # cancelled: the master stops

    poll = threading.Thread(target=poll_soon)
    poll.start()
    try:
        assert main(["cancel", str(exp.root), "--wait", "30"]) == 0
    finally:
        poll.join()
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("asha-hpc: the master (host ")
    assert out[-1].endswith(") cancelled the search and its running jobs")
    m.close()
    st = replay(cfg, read_journal(exp.journal)[0])
    assert st.lifecycle == "cancelled" and not st.live()

"""``asha-hpc pause`` while a master runs: the command waits for that master to take the
request (it removes it once it has told the jobs to stop), then for it to stop, and says what
it did from the ``stopped`` record; a request no master took is shown by ``status`` with what
to do."""
from __future__ import annotations

import json
import threading
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.cli import main
from asha_hpc.master.state import replay
from asha_hpc.protocol.journal import read_journal

from helpers import running


def test_pause_waits_for_the_running_master_and_says_what_it_did(tmp_path, capsys):
    cfg, exp, m = running(tmp_path)
    live = len(replay(cfg, read_journal(exp.journal)[0]).live())
    assert live > 0
    capsys.readouterr()
    assert main(["pause", str(exp.root), "--wait", "0.3"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("asha-hpc: asked the master (host ")
    assert out[-1].endswith(f"to pause; not done yet: it stops the jobs at its next poll "
                            f"(`asha-hpc status {exp.root}` shows it)")
    assert main(["status", str(exp.root)]) == 0
    shown = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("pause asked")]
    assert len(shown) == 1 and shown[0].endswith(
        "by `asha-hpc pause`, not done yet: the master pauses the search at its next poll")
    assert main(["status", str(exp.root), "--json"]) == 0
    asked = json.loads(capsys.readouterr().out)["progress"]["pause_request"]
    assert asked["file"] == str(exp.pause_request) and abs(asked["asked"] - time.time()) < 60

    def poll_soon():  # the master's next poll, while the command waits; then it exits
        time.sleep(0.3)
        assert m.step() is False
        m.close()

    poll = threading.Thread(target=poll_soon)
    poll.start()
    try:
        assert main(["pause", str(exp.root), "--wait", "30"]) == 0
    finally:
        poll.join()
    (stopped,) = [r for r in read_journal(exp.journal)[0] if r["kind"] == "stopped"]
    n = stopped["jobs"]  # those still running at the poll (the poll took results first)
    assert stopped["reason"] == "paused" and 0 < n <= live
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("asha-hpc: the master (host ")
    assert out[-1].endswith(f") paused the search: {n} running job{'s' if n > 1 else ''} "
                            f"told to save and stop; `asha-hpc resume {exp.root}` goes on")
    assert main(["status", str(exp.root)]) == 0
    out = capsys.readouterr().out
    assert "pause asked" not in out and "  [stopped: paused]  " in out.splitlines()[0]
    assert main(["status", str(exp.root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stopped_by"] == "paused"


def test_a_pause_no_master_took_is_shown_with_what_to_do(tmp_path, capsys):
    """The master stopped before its next poll (killed, frozen then killed): the jobs it left
    run on; status says that nothing paused them, and how to."""
    cfg, exp, m = running(tmp_path)
    assert main(["pause", str(exp.root), "--wait", "0"]) == 0
    m.close()
    capsys.readouterr()
    assert main(["status", str(exp.root)]) == 0
    out = capsys.readouterr().out
    assert (f"by `asha-hpc pause`, not done yet: no master runs to do it: `asha-hpc pause "
            f"{exp.root}` stops the jobs it left (`asha-hpc resume` drops the request and goes "
            f"on)") in out, out


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=40))
def test_any_request_file_reads_as_a_time(tmp_path_factory, body):
    """A pause or cancel request torn, edited or written by hand: ``status`` shows when it was
    asked (the text's time where it is one, else the file's) and never fails on it."""
    import math

    from asha_hpc.protocol.expdir import ExpDir
    from asha_hpc.views.status import pending_stop

    root = tmp_path_factory.mktemp("req")
    request = ExpDir(root).pause_request
    request.write_bytes(body)
    shown = pending_stop(request, "stopped")
    assert shown is not None and shown["file"] == str(request)
    assert math.isfinite(shown["asked"]) and 0 < shown["asked"] < 1e10
    assert pending_stop(request, "completed") is None  # an ended search waits for nothing

"""``asha-hpc cancel`` while a master runs: the command waits for that master to cancel the
search (it removes the request once the jobs are cancelled and the cancel journaled) and says
so, or says that the master has not polled yet."""
from __future__ import annotations

import json
import math
import os
import threading
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.cli import build_parser, main
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
    assert main(["status", str(exp.root)]) == 0
    shown = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("cancel asked")]
    assert len(shown) == 1 and shown[0].endswith(
        "by `asha-hpc cancel`, not done yet: the master cancels the search at its next poll")
    assert main(["status", str(exp.root), "--json"]) == 0
    asked = json.loads(capsys.readouterr().out)["progress"]["cancel_request"]
    assert asked["file"] == str(exp.cancel_request) and abs(asked["asked"] - time.time()) < 60

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
    assert main(["status", str(exp.root)]) == 0
    assert "cancel asked" not in capsys.readouterr().out


def test_a_cancel_no_master_took_is_shown_with_what_resume_does(tmp_path, capsys):
    """The master stopped before its next poll (killed, time limit): the request waits in the
    folder, and status says that the next resume cancels, and which file to remove instead."""
    cfg, exp, m = running(tmp_path)
    m.close()
    exp.cancel_request.write_text("not a time\n")  # torn or edited: the file's time is shown
    capsys.readouterr()
    assert main(["status", str(exp.root)]) == 0
    out = capsys.readouterr().out
    assert f"`asha-hpc resume {exp.root}` cancels the search (remove {exp.cancel_request} " \
           f"to keep it)" in out
    exp.cancel_request.unlink()
    assert main(["status", str(exp.root)]) == 0
    assert "cancel asked" not in capsys.readouterr().out

    exp.cancel_request.write_text("not a time\n")
    os.utime(exp.cancel_request, (time.time() - 7200, time.time() - 7200))
    asked = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - 7200))
    assert main(["resume", str(exp.root)]) == 0
    out = capsys.readouterr().err
    assert f"experiment cancelled (`asha-hpc cancel` at {asked}); running jobs were cancelled" in out
    assert replay(cfg, read_journal(exp.journal)[0]).lifecycle == "cancelled"
    assert not exp.cancel_request.exists()


@settings(max_examples=300, deadline=None)
@given(command=st.sampled_from([["cancel", "exp"], ["pause", "exp"],
                                 ["resume", "exp", "--max-compute", "900"]]),
       text=st.one_of(st.text(max_size=12), st.floats(allow_nan=True).map(str),
                      st.integers(-10**6, 10**6).map(str),
                      st.sampled_from(["nan", "inf", "-inf", "1e400", "0", "2.5", " 3 "])))
def test_any_wait_argument_is_finite_seconds_or_refused(command, text):
    """Whatever follows --wait (cancel, pause, resume --max-compute): a number 0 or more and finite is
    taken as that many seconds; anything else, a NaN or an infinity included (a wait that
    would never end), is argparse's usage error."""
    try:
        want: float | None = float(text)
    except ValueError:
        want = None
    if text.startswith("-") and want is None:
        return  # argparse reads "-x" as an option, not as this option's value
    try:
        got = build_parser().parse_args(command + ["--wait", text]).wait
    except SystemExit as e:
        assert e.code == 2 and (want is None or not 0 <= want < math.inf)
        return
    assert want is not None and 0 <= want < math.inf and got == want


def test_cancel_of_a_finished_search_leaves_nothing_behind(tmp_path, capsys):
    """A search that ended (here: completed) has nothing to cancel: the command says so, and no
    request stays behind for a later `resume --max-compute` or `--retry-failed` to carry out."""
    cfg, exp, m = running(tmp_path)
    while m.step():
        m._sleep(cfg.poll_interval_s)
    m.close()
    assert replay(cfg, read_journal(exp.journal)[0]).lifecycle == "completed"
    capsys.readouterr()
    assert main(["cancel", str(exp.root)]) == 0
    assert "experiment already completed; nothing to do; no job to cancel" in capsys.readouterr().out
    assert not exp.cancel_request.exists()
    assert replay(cfg, read_journal(exp.journal)[0]).lifecycle == "completed"

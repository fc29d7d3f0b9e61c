"""A result message that reaches the inbox torn or corrupted (a bad disk block, a hostile
edit, an NFS client that wrote garbage) is set aside with a warning; the job that sent it is
then found ended without a result. That is the message's fault, not the trial's: the segment
trains again without counting against max_restarts (0 here: counted, the trial would fail
for good)."""
import signal
import time

from helpers import UNTIL_GO, cli, final_state, journal, one_trial_training


def test_a_corrupt_result_message_costs_no_restart(tmp_path):
    (tmp_path / "quick_model.py").write_text(UNTIL_GO)
    exp, p = one_trial_training(tmp_path, {"entrypoint": "quick_model:train"}, 4)
    try:
        p.send_signal(signal.SIGTERM)  # the master stops; the job goes on and sends its result
        assert p.wait(timeout=60) == 128 + signal.SIGTERM
        (tmp_path / "go").write_text("x")
    finally:
        if p.poll() is None:
            p.kill()
    result = exp / "inbox" / "t00001-s000-a00.result.json"
    deadline = time.time() + 60
    while not result.exists():
        assert time.time() < deadline, "the job sent no result"
        time.sleep(0.2)
    result.write_text('{"type": "result", "trial": 1, "segm')  # torn on its way
    r = cli("resume", exp)
    assert "t00001-s000-a00.result.json" in r.stderr  # the warning names the file
    dead = [x for x in journal(exp) if x["kind"] == "job_dead"]
    assert len(dead) == 1 and dead[0]["counts"] is False, dead
    assert "t00001-s000-a00.result.json" in dead[0]["unreadable"], dead
    _, st = final_state(exp)
    assert st.lifecycle == "completed" and st.trials[1].restarts == 0
    assert any("its result message could not be read" in text for _, text in st.events), \
        st.events

"""``asha-hpc resume DIR --max-compute UNITS`` through the real master and CLI on the simulated
backend: a raised cap continues a search the old cap ended (trials it kept from promotion go on,
new trials up to max_trials), survives a master stopped after the change, shows in ``status``,
and bad values are refused with one line before anything is journaled."""
from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.cli import main
from asha_hpc.launch import create_experiment
from asha_hpc.master.loop import Master
from asha_hpc.master.retention import removable_checkpoints
from asha_hpc.master.state import replay
from asha_hpc.protocol.journal import read_journal
from asha_hpc.protocol.requests import (
    CapAnswer,
    read_cap_answer,
    read_cap_request,
    write_cap_request,
)
from asha_hpc.testing.invariants import check_invariants
from asha_hpc.views.status import status_dict
from asha_hpc.views.text import render_status_text

from helpers import running as running_search
from helpers import sim_cfg, stepped

CAP = 700


def capped(tmp_path, cap=CAP):
    """A search that its cap ended (60 trials planned, fewer created), as `run` leaves it."""
    cfg = sim_cfg(trials=60, failure_rate=0.0)
    cfg.searcher.max_compute = cap
    exp = create_experiment(cfg, tmp_path / "exp")
    st = Master(exp, cfg, progress=lambda s: None).run()
    assert st.lifecycle == "completed" and len(st.trials) < 60
    return cfg, exp, st


def final(cfg, exp):
    recs = read_journal(exp.journal)[0]
    assert check_invariants(cfg, recs) == []
    return replay(cfg, recs), recs


def running(tmp_path, cap=CAP, progress=lambda s: None):
    return running_search(tmp_path, cap, progress)


def test_a_raised_cap_continues_a_completed_search(tmp_path, capsys):
    cfg, exp, before = capped(tmp_path)
    held = [t.id for t in before.trials.values() if before.searcher.held_by_cap(t.id)]
    assert held, "the cap kept no trial from a promotion: the test shows nothing"
    trained = {t.id: t.length for t in before.trials.values()}
    recs = read_journal(exp.journal)[0]
    text = render_status_text(status_dict(exp, cfg, before, recs))
    assert (f"max_compute (700 units) ended it: {60 - len(before.trials)} trial(s) not created, "
            f"{len(held)} promotion(s) not made; with more, `asha-hpc resume {exp.root} "
            "--max-compute N` continues it") in text
    assert main(["resume", str(exp.root), "--max-compute", "100000"]) == 0
    err = capsys.readouterr().err
    assert "max_compute raised from 700 to 100000" in err
    assert "ended the search" not in err  # the larger cap did not bind
    assert "may be promoted again" in err
    st, recs = final(cfg, exp)
    assert [r["units"] for r in recs if r["kind"] == "max_compute"] == [100000]
    assert st.lifecycle == "completed" and st.max_compute == 100000
    assert len(st.trials) == 60  # the trials the old cap did not let it create
    assert any(st.trials[t].length > trained[t] for t in held)  # promoted from where they stopped
    assert sum(t.length for t in st.trials.values()) > CAP
    d = status_dict(exp, cfg, st, recs)
    assert d["progress"]["max_compute"] == 100000 and not d["progress"]["capped"]
    assert d["progress"]["held_back"] is None and "ended it" not in render_status_text(d)
    assert "max_compute: 100000 chaos" not in render_status_text(d)
    assert "max_compute: 100000 units, set by `resume --max-compute` (the config's: 700)" \
        in render_status_text(d)


def test_the_new_cap_holds_after_the_master_is_stopped(tmp_path):
    cfg, exp, before = capped(tmp_path)
    # stopped part-way through what the raise allowed
    stepped(Master(exp, cfg, progress=lambda s: None, max_compute=1500), cfg, 5).close()
    mid, _ = final(cfg, exp)
    assert mid.lifecycle == "running" and mid.max_compute == 1500
    st = Master(exp, cfg, progress=lambda s: None).run()  # a plain resume keeps the new cap
    assert st.lifecycle == "completed" and st.max_compute == 1500
    spent = st.searcher.compute_started()
    assert before.searcher.compute_started() < spent <= 1500
    assert sum(t.length for t in st.trials.values()) <= 1500
    final(cfg, exp)


def test_a_lowered_cap_ends_the_search_sooner(tmp_path):
    cfg = sim_cfg(trials=60, failure_rate=0.0)
    exp = create_experiment(cfg, tmp_path / "exp")
    stepped(Master(exp, cfg, progress=lambda s: None), cfg, 4).close()
    started = replay(cfg, read_journal(exp.journal)[0]).searcher.compute_started()
    cap = started + 100
    st = Master(exp, cfg, progress=lambda s: None, max_compute=cap).run()
    assert st.lifecycle == "completed" and st.max_compute == cap
    assert st.searcher.compute_started() <= cap and len(st.trials) < 60
    final(cfg, exp)


def test_retention_keeps_the_checkpoints_a_raise_would_continue(tmp_path):
    cfg, exp, st = capped(tmp_path)
    for t in st.trials.values():  # the simulated backend writes none: as if each had one
        t.checkpoint = f"trials/{t.id}/checkpoint"
    gone = set(removable_checkpoints(st, keep_best=0))
    held = {t.id for t in st.trials.values() if st.searcher.held_by_cap(t.id)}
    stopped = {t.id for t in st.trials.values() if t.status == "stopped"}
    assert held and held <= stopped
    assert not held & gone and stopped - held <= gone


def test_a_promotion_whose_checkpoint_is_gone_is_not_said_to_wait_for_a_cap(tmp_path):
    """A trial that entered its rung's top after its checkpoint was removed (more results
    came with a raised cap) cannot go on: no cap makes that promotion, and status and run
    said "with more, resume --max-compute N continues it" for ever."""
    from asha_hpc.views.status import held_back

    cfg, exp, st = capped(tmp_path)
    held = sorted(t.id for t in st.trials.values() if st.searcher.held_by_cap(t.id))
    assert held and held_back(st)["promotions_not_made"] == len(held)
    recs = read_journal(exp.journal)[0]
    gone = {"kind": "checkpoints_removed", "trials": held[:1], "seq": recs[-1]["seq"] + 1,
            "time": recs[-1]["time"]}
    again = replay(cfg, recs + [gone])
    assert (held_back(again) or {}).get("promotions_not_made", 0) == len(held) - 1


@pytest.mark.parametrize("units, words", [
    ("10", "less than max_length (64"),
    ("100", "has already started 696 units of training; give at least that"),
])
def test_a_cap_that_cannot_serve_is_refused_in_one_line(tmp_path, capsys, units, words):
    cfg, exp, _ = capped(tmp_path)
    n = len(read_journal(exp.journal)[0])
    capsys.readouterr()
    assert main(["resume", str(exp.root), "--max-compute", units]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # refused before `resuming ...` and the live report's line
    assert words in err[-1] and "--max-compute" in err[-1] and "cancel" not in err[-1]
    assert len(read_journal(exp.journal)[0]) == n  # nothing journaled


@pytest.mark.parametrize("units", ["0", "-5", "1e4", "lots"])
def test_the_option_takes_a_whole_number_above_zero(tmp_path, capsys, units):
    with pytest.raises(SystemExit) as e:
        main(["resume", str(tmp_path), "--max-compute", units])
    assert e.value.code == 2
    assert "--max-compute" in capsys.readouterr().err


def test_the_same_cap_again_changes_nothing(tmp_path, capsys):
    cfg, exp, _ = capped(tmp_path)
    n = len(read_journal(exp.journal)[0])
    assert main(["resume", str(exp.root), "--max-compute", str(CAP)]) == 0
    assert f"max_compute is already {CAP}" in capsys.readouterr().err
    assert not [r for r in read_journal(exp.journal)[0][n:] if r["kind"] == "max_compute"]


def test_run_says_when_the_cap_ended_the_search(tmp_path, capsys):
    import yaml

    raw = sim_cfg(trials=60, failure_rate=0.0).to_dict()
    raw["searcher"]["max_compute"] = CAP
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["run", str(path), "--exp-dir", str(tmp_path / "q1")]) == 0
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"asha-hpc: max_compute ({CAP} units) ended the search: ")
    assert last.endswith(f"`asha-hpc resume {tmp_path / 'q1'} --max-compute N` continues it")


def test_a_search_that_ran_its_whole_plan_has_nothing_more_to_train(tmp_path, capsys):
    cfg = sim_cfg(trials=12, failure_rate=0.0)
    exp = create_experiment(cfg, tmp_path / "exp")
    st = Master(exp, cfg, progress=lambda s: None).run()
    assert st.lifecycle == "completed" and st.max_compute is None
    spent = st.searcher.compute_started()
    assert main(["resume", str(exp.root), "--max-compute", str(spent * 10)]) == 0
    err = capsys.readouterr().err
    assert (f"max_compute set to {spent * 10} units ({spent} started so far); nothing more to "
            "train: every bracket has created its max_trials trials and no trial that ended can "
            "go on") in err
    assert "experiment already completed; nothing to do" in err
    # what an Optuna user's load_if_exists and optimize(n_trials=more) are here
    assert f"a new experiment with `searcher.warm_start: [{exp.root}]`" in err
    after, _ = final(cfg, exp)
    assert after.lifecycle == "completed" and after.max_compute == spent * 10
    assert {t.id: t.length for t in after.trials.values()} == {t.id: t.length for t in st.trials.values()}


def test_a_raise_too_small_for_any_held_work_says_so(tmp_path, capsys):
    cfg, exp, st = capped(tmp_path, cap=704)
    assert st.searcher.compute_started() == 704  # one unit more serves no segment (4 at least)
    held = sum(1 for t in st.trials.values() if st.searcher.held_by_cap(t.id))
    assert main(["resume", str(exp.root), "--max-compute", "705"]) == 0
    err = capsys.readouterr().err
    assert ("max_compute raised from 704 to 705 units (704 started so far); still too little: "
            f"{60 - len(st.trials)} trial(s) not created and {held} promotion(s) not made each "
            "need more than the 1 units left; give more") in err
    assert "every bracket has created its max_trials" not in err


def test_a_running_master_takes_a_request_at_its_next_poll(tmp_path):
    """What `resume --max-compute` leaves for a master that is running: the file is checked
    and journaled at the master's next poll, then removed; one that cannot serve is said and
    dropped, with nothing journaled."""
    said: list[str] = []
    cfg, exp, m = running(tmp_path, progress=said.append)
    for bad, words in (("lots", "not a whole number of units"),
                       ("10", "less than max_length (64 units)")):
        exp.max_compute_request.write_text(bad + "\n")  # the first release's format: no token
        m.step()
        assert not exp.max_compute_request.exists()
        assert said[-1].startswith(f"ignored {exp.max_compute_request}: ") and words in said[-1]
        assert read_cap_answer(exp) == CapAnswer(
            "", False, said[-1].removeprefix(f"ignored {exp.max_compute_request}: "))
    token = write_cap_request(exp, 1500)
    m.step()
    assert not exp.max_compute_request.exists()
    assert any(line.startswith("max_compute raised from 700 to 1500 units") for line in said)
    answer = read_cap_answer(exp)
    assert answer is not None and answer.token == token and answer.taken
    assert answer.line.startswith("max_compute raised from 700 to 1500 units (")
    while m.step():
        m._sleep(cfg.poll_interval_s)
    m.close()
    st, recs = final(cfg, exp)
    assert [(r["units"], r["was"]) for r in recs if r["kind"] == "max_compute"] == [(1500, CAP)]
    assert st.lifecycle == "completed" and CAP < st.searcher.compute_started() <= 1500


def test_a_request_the_master_ended_before_taking_is_taken_by_the_next_resume(tmp_path, capsys):
    """The master ended the search (its cap) before its next poll: the request waits in the
    folder, status says a resume takes it, and a plain resume does, continuing the search.
    On a cancelled search the next resume refuses it and removes it."""
    cfg, exp, before = capped(tmp_path)
    token = write_cap_request(exp, 1500)
    capsys.readouterr()
    assert main(["status", str(exp.root)]) == 0
    assert (f"max_compute 1500 units asked for by `resume --max-compute`, not taken yet: "
            f"`asha-hpc resume {exp.root}` takes it") in capsys.readouterr().out
    assert main(["resume", str(exp.root)]) == 0
    assert "max_compute raised from 700 to 1500 units" in capsys.readouterr().err
    assert not exp.max_compute_request.exists()
    answer = read_cap_answer(exp)
    assert answer is not None and answer.token == token and answer.taken
    st, recs = final(cfg, exp)
    assert st.lifecycle == "completed" and st.max_compute == 1500
    assert before.searcher.compute_started() < st.searcher.compute_started() <= 1500

    assert main(["cancel", str(exp.root)]) == 0  # completed: nothing changes
    cfg2, exp2, m = running(tmp_path / "second")
    m.close()
    assert main(["cancel", str(exp2.root)]) == 0
    token = write_cap_request(exp2, 3000)
    capsys.readouterr()
    assert main(["resume", str(exp2.root)]) == 0
    assert "the search was cancelled: a cap changes nothing" in capsys.readouterr().err
    assert not exp2.max_compute_request.exists()
    answer = read_cap_answer(exp2)
    assert answer is not None and answer.token == token and not answer.taken
    assert replay(cfg2, read_journal(exp2.journal)[0]).lifecycle == "cancelled"


def test_resume_waits_for_the_running_masters_answer_and_prints_it(tmp_path, capsys):
    """`resume --max-compute` with a master running: the command waits for that master's next
    poll and prints what it did; a refusal there is an error that says nothing changed; a
    master that does not poll within --wait leaves the request waiting, and says so."""
    cfg, exp, m = running(tmp_path)
    capsys.readouterr()

    assert main(["resume", str(exp.root), "--max-compute", "1500", "--wait", "0.3"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("asha-hpc: asked the running master (host ")
    assert "to take max_compute 1500; not taken yet (it takes it at its next poll); " \
        f"`asha-hpc status {exp.root}` shows the cap once it is set" in err[-1]
    assert exp.max_compute_request.exists()
    recs = read_journal(exp.journal)[0]
    d = status_dict(exp, cfg, replay(cfg, recs), recs)
    assert d["state"] == "running" and d["progress"]["max_compute_request"] == 1500
    assert "max_compute 1500 units asked for by `resume --max-compute`, not taken yet: the " \
        "master takes it at its next poll" in render_status_text(d).splitlines()
    m.step()  # the next poll takes the waiting request
    recs = read_journal(exp.journal)[0]
    assert replay(cfg, recs).max_compute == 1500
    d = status_dict(exp, cfg, replay(cfg, recs), recs)
    assert d["progress"]["max_compute_request"] is None
    assert "not taken yet" not in render_status_text(d)

    def asked():  # the command wrote its request (a loaded machine may take a while)
        deadline = time.monotonic() + 20
        while not exp.max_compute_request.exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    def answer_soon():  # the master's next poll, once the command asked and while it waits
        asked()
        m.step()

    def ask(units: str, master=answer_soon) -> tuple[int, list[str]]:
        poll = threading.Thread(target=master)
        poll.start()
        try:
            rc = main(["resume", str(exp.root), "--max-compute", units, "--wait", "30"])
        finally:
            poll.join()
        return rc, capsys.readouterr().err.strip().splitlines()

    rc, err = ask("3000")
    assert rc == 0 and err[-1].startswith("asha-hpc: the running master (host ")
    assert ") took it: max_compute raised from 1500 to 3000 units (" in err[-1]
    started = replay(cfg, read_journal(exp.journal)[0]).searcher.compute_started()
    # passes the command's check, then the master's fails: segments started meanwhile
    m.state.searcher.compute_started = lambda: started + 10**6  # type: ignore[method-assign]
    rc, err = ask(str(started))
    del m.state.searcher.compute_started
    assert rc != 0 and err[-1].startswith("asha-hpc: error: the running master (host ")
    assert f") refused max_compute {started}: --max-compute {started}: the search has already " \
        f"started {started + 10**6} units of training; give at least that" in err[-1]
    assert err[-1].endswith("; nothing changed")
    assert replay(cfg, read_journal(exp.journal)[0]).max_compute == 3000

    def older_release():  # journals the cap and removes the request, but writes no answer
        asked()
        m._set_max_compute(read_cap_request(exp.max_compute_request).units)
        exp.max_compute_request.unlink()

    rc, err = ask("4000", older_release)
    assert rc == 0 and ") took the request for max_compute 4000 without an answer (a release " \
        f"before answers); `asha-hpc status {exp.root}` shows whether the cap changed" in err[-1]
    assert replay(cfg, read_journal(exp.journal)[0]).max_compute == 4000

    def replaced():  # a second command's request lands before the master's poll
        asked()
        write_cap_request(exp, 5000)
        m.step()

    rc, err = ask("4500", replaced)
    assert rc != 0 and "error: another `resume --max-compute` replaced the request for " \
        "max_compute 4500 before the running master (host " in err[-1]
    assert ") took it; it answered that one: max_compute raised from 4000 to 5000 units (" \
        in err[-1]
    assert replay(cfg, read_journal(exp.journal)[0]).max_compute == 5000
    while m.step():
        m._sleep(cfg.poll_interval_s)
    m.close()
    st, _ = final(cfg, exp)
    assert st.lifecycle == "completed" and st.max_compute == 5000


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(st.text(max_size=12), st.integers(-10**12, 10**12).map(str),
                      st.floats(allow_nan=True).map(str)))
def test_any_max_compute_argument_is_a_whole_number_above_zero_or_refused(text):
    """Whatever follows --max-compute on a command line: a whole number above 0 is taken as
    that number, anything else is argparse's usage error naming the option."""
    from asha_hpc.cli import build_parser

    try:
        want = int(text)
    except ValueError:
        want = None
    if text.startswith("-") and want is None:
        return  # argparse reads "-x" as an option, not as this option's value
    try:
        got = build_parser().parse_args(["resume", "exp", "--max-compute", text]).max_compute
    except SystemExit as e:
        assert e.code == 2 and (want is None or want < 1)
        return
    assert want is not None and want >= 1 and got == want

"""``asha-hpc resume DIR --readmit-node NODE``: a node the search excluded (it failed the work
sent to it) is taken back once it is repaired, by a running master at its next poll or by the
resume itself. Jobs run there again, it is judged afresh (a node still broken is excluded
again, and no trial fails for good), and a name that is not excluded is refused with one line
before anything is journaled."""
from __future__ import annotations

import threading
import time

from asha_hpc.backends.simulated import SimulatedBackend
from asha_hpc.cli import main
from asha_hpc.launch import create_experiment
from asha_hpc.master.loop import Master
from asha_hpc.master.state import replay
from asha_hpc.protocol.journal import read_journal
from asha_hpc.protocol.requests import read_answer, write_readmit_request
from asha_hpc.testing.invariants import check_invariants
from asha_hpc.views.status import describe, status_dict
from asha_hpc.views.text import render_status_text

from helpers import sim_cfg


def _until_excluded(tmp_path, progress=lambda s: None):
    """A search on 4 simulated nodes, node01 broken, whose master runs until it has excluded
    node01: (cfg, exp, backend, master)."""
    cfg = sim_cfg(trials=60, concurrent=8, failure_rate=0.0, nodes=4, broken_nodes=1,
                  startup_seconds=20)
    cfg.max_restarts = 5
    exp = create_experiment(cfg, tmp_path / "exp")
    backend = SimulatedBackend.from_config(cfg, exp.root)
    m = Master(exp, cfg, backend=backend, progress=progress)
    assert m.start()
    for _ in range(2000):
        assert m.step()
        assert m.state is not None
        if m.state.nodes.bad:
            break
        m._sleep(cfg.poll_interval_s)
    assert m.state is not None and list(m.state.nodes.bad) == ["node01"]
    return cfg, exp, backend, m


def _finish(m, cfg):
    while m.step():
        m._sleep(cfg.poll_interval_s)
    m.close()


def test_a_running_master_takes_a_repaired_node_back(tmp_path):
    said: list[str] = []
    cfg, exp, backend, m = _until_excluded(tmp_path, said.append)
    [line] = [s for s in said if s.startswith("node node01 excluded")]
    assert line.endswith(f"once it is repaired: `asha-hpc resume {exp.root} --readmit-node node01`")
    recs = read_journal(exp.journal)[0]
    text = render_status_text(status_dict(exp, cfg, replay(cfg, recs), recs))
    assert f"once it is repaired: `asha-hpc resume {exp.root} --readmit-node node01`" in text

    backend.broken.clear()  # the administrators fixed it
    token = write_readmit_request(exp, ["node01"])
    recs = read_journal(exp.journal)[0]
    d = status_dict(exp, cfg, replay(cfg, recs), recs)
    assert d["progress"]["readmit_request"] == ["node01"]
    assert ("node node01 asked back by `resume --readmit-node`, not taken yet: the master takes "
            "it at its next poll") in render_status_text(d).splitlines()
    m.step()
    assert not exp.readmit_request.exists()
    answer = read_answer(exp.readmit_answer)
    assert answer is not None and answer.token == token and answer.taken
    assert answer.line == "node node01 taken back: jobs may run there again, and it is judged afresh"
    assert answer.line in said
    assert m.state is not None and m.state.nodes.bad == {}
    taken_back = len(backend.jobs)  # the jobs submitted since
    _finish(m, cfg)

    recs = read_journal(exp.journal)[0]
    assert check_invariants(cfg, recs) == []
    assert [r["hosts"] for r in recs if r["kind"] == "nodes_readmitted"] == [["node01"]]
    st = replay(cfg, recs)  # a resumed master judges the same
    assert st.lifecycle == "completed" and st.nodes.bad == {}
    assert not any(t.status == "failed" for t in st.trials.values())
    later = list(backend.jobs.values())[taken_back:]
    assert later and all("node01" not in str(j.spec.resources.get("exclude")) for j in later)
    worked = [r for r in recs if r["kind"] == "result" and r["status"] == "completed"
              and r.get("host") == "node01"]
    assert worked, "no segment ran on the node taken back"
    d = status_dict(exp, cfg, st, recs)
    text = render_status_text(d)
    assert "node01 excluded" not in text and "asked back" not in text
    [back] = [r for r in recs if r["kind"] == "nodes_readmitted"]
    assert describe(back, "loss") == "node node01 taken back (--readmit-node)"


def test_resume_takes_a_node_back_and_one_still_broken_is_excluded_again(tmp_path, capsys):
    """On a stopped search the resume itself journals it. The simulated node is still broken
    (the config says so): it fails again, is judged afresh, and is excluded again; no trial
    fails for good."""
    cfg, exp, backend, m = _until_excluded(tmp_path)
    m.close()
    capsys.readouterr()
    before = read_journal(exp.journal)[0]

    for name, words in (("node09", "node node09 is not excluded (excluded: node01)"),
                        ("node02", "node node02 is not excluded (excluded: node01)")):
        assert main(["resume", str(exp.root), "--readmit-node", name]) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"asha-hpc: error: --readmit-node: {words}; give the name "
                       "`asha-hpc status` shows"]
    assert read_journal(exp.journal)[0] == before  # nothing journaled

    assert main(["resume", str(exp.root), "--readmit-node", "node01", "--report-every", "0"]) == 0
    err = capsys.readouterr().err
    assert "node node01 taken back: jobs may run there again, and it is judged afresh" in err
    recs = read_journal(exp.journal)[0]
    assert check_invariants(cfg, recs) == []
    st = replay(cfg, recs)
    assert st.lifecycle == "completed" and not any(t.status == "failed" for t in st.trials.values())
    back = next(i for i, r in enumerate(recs) if r["kind"] == "nodes_readmitted")
    failed_after = [r for r in recs[back:] if r["kind"] == "result" and r["status"] == "error"]
    assert failed_after and {r["host"] for r in failed_after} == {"node01"}
    assert list(st.nodes.bad) == ["node01"]  # excluded again, on new evidence
    assert err.count("node node01 excluded:") == 1


def test_resume_asks_a_running_master_and_prints_its_answer(tmp_path, capsys):
    cfg, exp, backend, m = _until_excluded(tmp_path)
    backend.broken.clear()
    capsys.readouterr()

    def poll_soon():
        time.sleep(0.3)
        m.step()

    poll = threading.Thread(target=poll_soon)
    poll.start()
    try:
        rc = main(["resume", str(exp.root), "--readmit-node", "node01", "--wait", "30"])
    finally:
        poll.join()
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 0 and err[-1].startswith("asha-hpc: the running master (host ")
    assert err[-1].endswith(") took it: node node01 taken back: jobs may run there again, and "
                            "it is judged afresh")
    # asked again: refused by the command itself, nothing is left for the master
    assert main(["resume", str(exp.root), "--readmit-node", "node01", "--wait", "0"]) != 0
    assert "node node01 is not excluded (excluded: none)" in capsys.readouterr().err
    assert not exp.readmit_request.exists()
    _finish(m, cfg)
    st = replay(cfg, read_journal(exp.journal)[0])
    assert st.lifecycle == "completed" and st.nodes.bad == {}


def test_a_request_the_master_cannot_serve_is_answered_and_dropped(tmp_path):
    said: list[str] = []
    cfg, exp, backend, m = _until_excluded(tmp_path, said.append)
    m.state.nodes.readmit("node01")  # taken back meanwhile (as by a second request)
    token = write_readmit_request(exp, ["node01"])
    m.step()
    assert not exp.readmit_request.exists()
    answer = read_answer(exp.readmit_answer)
    assert answer is not None and answer.token == token and not answer.taken
    assert said[-1] == f"ignored {exp.readmit_request}: {answer.line}"
    assert "node node01 is not excluded (excluded: none)" in answer.line
    assert not any(r["kind"] == "nodes_readmitted" for r in read_journal(exp.journal)[0])
    m.close()


def _search_with(tmp_path, after_h, repaired_after_s=2500.0, trials=160):
    """4 simulated nodes, node01 broken until ``repaired_after_s`` (virtual seconds)."""
    cfg = sim_cfg(trials=trials, concurrent=8, failure_rate=0.0, nodes=4, broken_nodes=1,
                  startup_seconds=20, repaired_after_s=repaired_after_s)
    cfg.max_restarts = 5
    cfg.readmit_nodes_after_h = after_h
    exp = create_experiment(cfg, tmp_path / "exp")
    said: list[str] = []
    st = Master(exp, cfg, backend=SimulatedBackend.from_config(cfg, exp.root),
                progress=said.append).run()
    return cfg, exp, st, said, read_journal(exp.journal)[0]


def _exclusions_and_readmissions(cfg, recs):
    """(time, "excluded" | "readmitted") for node01, replaying the journal record by record."""
    from asha_hpc.master.state import ExperimentState

    st, out = ExperimentState(cfg), []
    for r in recs:
        was = "node01" in st.nodes.bad
        st.apply(r)
        now = "node01" in st.nodes.bad
        if now != was:
            out.append((r["time"], "excluded" if now else "readmitted"))
    return out


def test_an_excluded_node_is_taken_back_on_its_own_and_works_once_repaired(tmp_path):
    """``readmit_nodes_after_h: 0.25``: node01, broken for the first 2,500 s, is excluded,
    taken back after 15 minutes, excluded again (still broken), taken back after 30 more, and
    then trains like the others; no trial fails for good."""
    cfg, exp, st, said, recs = _search_with(tmp_path, after_h=0.25)
    assert st.lifecycle == "completed" and st.counts().get("failed", 0) == 0
    assert check_invariants(cfg, recs) == []
    events = _exclusions_and_readmissions(cfg, recs)
    kinds = [k for _, k in events]
    assert kinds[:4] == ["excluded", "readmitted", "excluded", "readmitted"], events
    (x1, _), (r1, _), (x2, _), (r2, _) = events[:4]
    assert 900 <= r1 - x1 < 900 + 60 and 1800 <= r2 - x2 < 1800 + 60  # the wait doubles
    assert [r["after_h"] for r in recs if r["kind"] == "nodes_readmitted"][:2] == [0.25, 0.5]
    assert st.nodes.bad == {} and replay(cfg, recs).nodes.bad == {}
    worked = [r for r in recs if r["kind"] == "result" and r.get("host") == "node01"
              and r["status"] == "completed"]
    assert worked and all(r["time"] >= 2500 for r in worked)
    assert any("node node01 taken back 0.25 h after its exclusion" in s for s in said)
    assert any("taken back after 1 h" in s for s in said)  # what comes next, said with it
    excluded = [s for s in said if s.startswith("node node01 excluded")]
    assert excluded[0].endswith("the master takes it back on its own after 0.25 h "
                                "(readmit_nodes_after_h)")
    assert excluded[1].endswith("on its own after 0.5 h (readmit_nodes_after_h)")
    lines = [describe(r, "loss") for r in recs if r["kind"] == "nodes_readmitted"]
    assert lines[:2] == ["node node01 taken back after 0.25 h (readmit_nodes_after_h)",
                         "node node01 taken back after 0.5 h (readmit_nodes_after_h)"]


def test_without_the_setting_an_excluded_node_stays_out(tmp_path):
    cfg, exp, st, said, recs = _search_with(tmp_path, after_h=None)
    assert st.lifecycle == "completed" and list(st.nodes.bad) == ["node01"]
    assert [k for _, k in _exclusions_and_readmissions(cfg, recs)] == ["excluded"]
    assert not [r for r in recs if r["kind"] == "nodes_readmitted"]


def test_status_says_when_the_master_takes_an_excluded_node_back(tmp_path):
    cfg = sim_cfg(trials=60, concurrent=8, failure_rate=0.0, nodes=4, broken_nodes=1,
                  startup_seconds=20)
    cfg.max_restarts = 5
    cfg.readmit_nodes_after_h = 0.25
    exp = create_experiment(cfg, tmp_path / "exp")
    m = Master(exp, cfg, backend=SimulatedBackend.from_config(cfg, exp.root), progress=lambda s: None)
    assert m.start()
    while m.step() and not m.state.nodes.bad:
        m._sleep(cfg.poll_interval_s)
    m.close()
    recs = read_journal(exp.journal)[0]
    [(excluded, _)] = _exclusions_and_readmissions(cfg, recs)
    d = status_dict(exp, cfg, replay(cfg, recs), recs)
    assert d["nodes_readmit_at"] == {"node01": excluded + 900}
    d["now"] = excluded + 300
    text = render_status_text(d)
    assert ("node node01 excluded (its jobs go elsewhere): " in text
            and "; the master takes it back on its own in 10m00s (readmit_nodes_after_h), or "
                "sooner once it is repaired: `asha-hpc resume" in text), text

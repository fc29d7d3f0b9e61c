"""A node that fails every segment sent to it (a broken GPU), on a simulated cluster of four:
it is free again first, so the scheduler keeps sending it the next job. The master sends
each failed trial's retry elsewhere, excludes the node once trials it failed work on other
nodes, gives back the restarts its failures counted, and no trial fails for good."""
from __future__ import annotations

from collections import Counter

import pytest

from asha_hpc.backends.simulated import BROKEN_ERROR, SimulatedBackend
from asha_hpc.launch import create_experiment
from asha_hpc.master.loop import Master
from asha_hpc.master.state import ExperimentState, TrialState, error_signature, replay
from asha_hpc.protocol.journal import read_journal
from asha_hpc.testing.invariants import check_invariants
from asha_hpc.views.status import open_experiment, status_dict
from asha_hpc.views.text import render_status_text

from helpers import sim_cfg


def _search(tmp_path, pool=0, nodes=4, broken=1, trials=40):
    cfg = sim_cfg(trials=trials, concurrent=8, failure_rate=0.0, nodes=nodes,
                  broken_nodes=broken, startup_seconds=20, pool=pool)
    cfg.max_restarts = 5
    exp = create_experiment(cfg, tmp_path / "exp")
    backend = SimulatedBackend.from_config(cfg, exp.root)
    said: list[str] = []
    st = Master(exp, cfg, backend=backend, progress=said.append).run()
    return cfg, exp, backend, st, said


@pytest.mark.parametrize("pool", [0, 4], ids=["segment jobs", "worker pool"])
def test_a_broken_node_is_excluded_and_fails_no_trial(tmp_path, pool):
    cfg, exp, backend, st, said = _search(tmp_path, pool=pool)
    assert st.lifecycle == "completed"
    assert Counter(t.status for t in st.trials.values())["failed"] == 0
    assert all(t.restarts == 0 for t in st.trials.values())  # given back
    assert list(st.nodes.bad) == ["node01"]
    why = st.nodes.bad["node01"]
    assert "then worked on other nodes" in why and BROKEN_ERROR in why
    [line] = [s for s in said if s.startswith("node node01 excluded")]
    assert "Its jobs go elsewhere" in line
    recs = read_journal(exp.journal)[0]
    assert check_invariants(cfg, recs) == []
    failed_there = [r for r in recs if r["kind"] == "result" and r["status"] == "error"]
    assert failed_there and {r["host"] for r in failed_there} == {"node01"}
    # without the rules every attempt it starts fails: 105 (segment jobs) and 186 (pool) here
    assert len(failed_there) <= 12
    # after the exclusion no job is placed there again
    late = [j for j in backend.jobs.values() if "node01" in str(j.spec.resources.get("exclude"))]
    assert late and all(j.host != "node01" for j in late)
    # a resumed master (and status) judge the same from the journal alone
    assert replay(cfg, recs).nodes.bad == st.nodes.bad
    exp2, cfg2, recs2, st2 = open_experiment(exp.root)
    d = status_dict(exp2, cfg2, st2, recs2)
    assert d["nodes_excluded"] == st.nodes.bad
    assert f"node node01 excluded (its jobs go elsewhere): {why}" in render_status_text(d)


def test_healthy_nodes_exclude_nothing_and_place_jobs_anywhere(tmp_path):
    cfg, exp, backend, st, said = _search(tmp_path, broken=0)
    assert st.lifecycle == "completed" and st.nodes.bad == {}
    assert {j.host for j in backend.jobs.values()} == {"node01", "node02", "node03", "node04"}
    assert all("exclude" not in j.spec.resources for j in backend.jobs.values())


def _early(cfg, failures, seen=()):
    """The state after the first failures (trial, host), before any segment worked."""
    st = ExperimentState(cfg)
    for h in seen:
        st.nodes.saw(h)
    for trial, host in failures:
        st.trials[trial] = TrialState(id=trial, hparams={}, bracket=0, target=1)
        st._early_error(st.trials[trial], {"error": f"Traceback\n{BROKEN_ERROR}", "host": host})
    return st


def test_fail_fast_waits_when_the_first_failures_all_come_from_one_node_of_several(tmp_path):
    cfg = sim_cfg()
    one_node = [(1, "gpu17"), (2, "gpu17"), (3, "gpu17")]
    # a cluster of one node (or the local machine): the code is to blame, as before
    [why] = [_early(cfg, one_node).hopeless()[1]]
    assert "the first 3 trials (1, 2, 3) all failed with the same error" in why
    assert "(all on node gpu17)" in why
    # other nodes were seen: the retries go there and tell which it is
    assert _early(cfg, one_node, seen=["gpu02"]).hopeless() is None
    # the same error from two nodes of three: a trial that fails on a second node tells
    spread = [(1, "gpu17"), (2, "gpu02"), (3, "gpu17")]
    st = _early(cfg, spread, seen=["gpu03"])
    assert st.hopeless() is None
    st.nodes.failed("gpu17", 1, BROKEN_ERROR)
    assert st.hopeless() is None
    st.nodes.failed("gpu03", 1, BROKEN_ERROR)  # its retry went elsewhere, and failed alike
    assert "the first 3 trials (1, 2, 3) all failed" in st.hopeless()[1]
    # from every node the search has seen: the code
    assert _early(cfg, spread, seen=["gpu02", "gpu17"]).hopeless() is not None


def test_a_node_whose_jobs_die_without_a_word_is_found_from_the_scheduler(tmp_path):
    """A broken node whose jobs die before the job's own code runs (a missing mount): they
    send no message at all; only the scheduler knows where they ran (``node_of``)."""
    cfg = sim_cfg(trials=40, concurrent=8, failure_rate=0.0, nodes=4, broken_nodes=1,
                  startup_seconds=20, broken_how="die")
    cfg.max_restarts = 5
    exp = create_experiment(cfg, tmp_path / "exp")
    backend = SimulatedBackend.from_config(cfg, exp.root)
    st = Master(exp, cfg, backend=backend, progress=lambda s: None).run()
    assert st.lifecycle == "completed"
    assert Counter(t.status for t in st.trials.values())["failed"] == 0
    assert list(st.nodes.bad) == ["node01"]
    recs = read_journal(exp.journal)[0]
    dead = [r for r in recs if r["kind"] == "job_dead"]
    assert dead and {r["host"] for r in dead} == {"node01"} and all(r["counts"] for r in dead)
    assert not [r for r in recs if r["kind"] == "result" and r["host"] == "node01"]
    assert replay(cfg, recs).nodes.bad == st.nodes.bad


def test_a_rank_that_died_silently_is_held_against_its_own_node(tmp_path):
    """A trial of several ranks: rank 0 reports the failure, but the result names the node of
    the rank that died (``failed_node``); that node collects the streak and the retries avoid
    it, never the reporting rank's node."""
    cfg = sim_cfg(nodes=4)
    st = ExperimentState(cfg)
    st.worked = 1  # past the first results: the node rules, not fail-fast, judge
    for h in ("gpu01", "gpu02", "gpu03", "gpu04"):
        st.nodes.saw(h)
    for trial, reporter in ((1, "gpu01"), (2, "gpu03"), (3, "gpu04")):
        st.trials[trial] = TrialState(id=trial, hparams={}, bracket=0, target=1, status="running")
        st.apply({"kind": "result", "trial": trial, "segment": 1, "attempt": 0, "host": reporter,
                  "status": "error", "failed_node": "gpu02", "metrics": None, "length": 1,
                  "error": "rank 1 on node gpu02 died (no heartbeat for 61 s) while this rank's "
                           "code ran", "checkpoint": None, "started": 0.0, "ended": 1.0,
                  "stop_reason": None})
        assert st.trials[trial].restarts == 1
        assert st.nodes.failed_on[trial] == {"gpu02"}
        assert "gpu02" in st.nodes.avoid(trial) and reporter not in st.nodes.avoid(trial)
    assert st.nodes.streak == {"gpu02": [1, 2, 3]}
    # fail-fast's view of the first errors names the same node
    early = ExperimentState(cfg)
    early.trials[1] = TrialState(id=1, hparams={}, bracket=0, target=1)
    early._early_error(early.trials[1], {"error": "x", "host": "gpu01", "failed_node": "gpu02"})
    assert early.early_hosts == {error_signature("x"): {"gpu02"}}

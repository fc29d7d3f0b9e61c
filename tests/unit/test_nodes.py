"""Which nodes the master stops sending work to (master/nodes.py): a node that fails the work
of trials that then work elsewhere is excluded; a configuration that fails everywhere, a node
that works between failures, and a cluster of one node never get a node excluded."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.master.nodes import FAILURES, TRIALS, NodeHealth, out_of_memory

CUDA = "Traceback ...\nRuntimeError: CUDA error: uncorrectable ECC error encountered"


def test_a_node_that_fails_trials_which_then_work_elsewhere_is_excluded():
    n = NodeHealth()
    n.saw("gpu02")
    assert n.failed("gpu17", 1, CUDA) is None
    assert n.avoid(1) == {"gpu17"}  # its retry goes elsewhere: another node was seen
    assert n.avoid(2) == set()
    assert n.failed("gpu17", 2, CUDA) is None
    assert n.failed("gpu17", 3, CUDA) is None  # 3 in a row, but nothing worked elsewhere yet
    assert n.succeeded("gpu02", 1) == []  # one trial cleared: not yet
    [ex] = n.succeeded("gpu03", 2)
    assert ex.host == "gpu17" and sorted(ex.refund) == [1, 2, 3]
    assert "3 attempts in a row failed there (trials 1, 2, 3)" in ex.why
    assert "trials 1, 2 then worked on other nodes" in ex.why
    assert ex.why.endswith("the last error: RuntimeError: CUDA error: uncorrectable ECC error "
                           "encountered")
    assert n.bad == {"gpu17": ex.why}
    assert n.avoid() == {"gpu17"} and n.avoid(3) == {"gpu17"}
    assert n.failed("gpu17", 4, CUDA) is None  # already out: judged once


def test_a_node_taken_back_is_judged_afresh():
    """``resume --readmit-node``: the node takes work again, retries no longer steer away from
    it for its old failures, and it takes a new streak of evidence to be excluded again."""
    n = NodeHealth()
    n.saw("gpu02")
    for t in (1, 2, 3):
        n.failed("gpu17", t, CUDA)
    n.failed("gpu17", 4, CUDA)
    n.succeeded("gpu02", 1)
    [ex] = n.succeeded("gpu02", 2)
    assert n.avoid(4) == {"gpu17"}  # trial 4 failed there, and the node is out
    n.readmit("gpu17")
    assert n.bad == {} and n.avoid() == set() and n.avoid(4) == set()
    assert not n.failed_twice({3, 4})
    for t in (5, 6):
        assert n.failed("gpu17", t, CUDA) is None
    assert n.succeeded("gpu02", 5) + n.succeeded("gpu02", 6) == []  # 2 failures: not yet
    again = n.failed("gpu17", 7, CUDA)  # the third, and trials 5 and 6 worked elsewhere
    assert again is not None and again.host == "gpu17" and sorted(again.refund) == [5, 6, 7]
    assert "trials 5, 6, 7" in again.why


def test_a_configuration_that_fails_everywhere_is_no_evidence_against_a_node():
    n = NodeHealth()
    for rnd in range(10):
        for host in ("a", "b", "c"):
            assert n.failed(host, 7, "CUDA out of memory") is None  # trial 7 fails on every node
            assert n.failed(host, 8, "CUDA out of memory") is None
        n.succeeded("a", 100 + rnd)  # other trials work, on one node or another
        n.succeeded("b", 200 + rnd)
    assert n.bad == {}


def test_running_out_of_memory_sends_the_retry_elsewhere_but_excludes_no_node():
    """A cluster of mixed GPUs: large configurations run out of memory on the small ones and
    work on the big ones. The small node is no broken node."""
    oom = ("Traceback ...\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate "
           "2.00 GiB (GPU 0; 15.77 GiB total capacity)")
    assert out_of_memory(oom) and out_of_memory("job 7 ended", "out_of_memory")
    assert not out_of_memory(CUDA) and not out_of_memory(None)
    n = NodeHealth()
    n.saw("a100-1")
    for t in (1, 2, 3, 4):
        assert n.failed("v100-1", t, oom, out_of_memory=True) is None
        assert n.avoid(t) >= {"v100-1"}  # its retry goes to another node
    assert n.succeeded("a100-1", 1) + n.succeeded("a100-1", 2) + n.succeeded("a100-1", 3) == []
    assert n.bad == {}


def test_a_node_that_works_between_failures_is_not_judged():
    n = NodeHealth()
    for i in range(20):
        n.failed("a", 2 * i, "flaky")
        n.failed("a", 2 * i + 1, "flaky")
        assert n.succeeded("b", 2 * i) == [] and n.succeeded("b", 2 * i + 1) == []
        n.succeeded("a", 1000 + i)  # a completes a segment now and then: its streak restarts
    assert n.bad == {}


def test_on_a_single_node_nothing_is_avoided_or_excluded():
    n = NodeHealth()
    for t in range(10):
        n.failed("only", t, CUDA)
        n.failed("only", t, CUDA)
        n.succeeded("only", t)
        assert n.avoid(t) == set()
    assert n.bad == {}


def test_the_last_usable_node_is_never_excluded():
    n = NodeHealth()
    for t in (1, 2, 3):
        n.failed("a", t, CUDA)
    assert [e.host for e in n.succeeded("b", 1) + n.succeeded("b", 2)] == ["a"]
    # b now fails trials that complete on a, a job that was still running there when excluded
    for t in (4, 5, 6):
        n.failed("b", t, CUDA)
    assert n.succeeded("a", 4) + n.succeeded("a", 5) == []
    assert set(n.bad) == {"a"}
    assert n.avoid(6) == {"a"}  # and b, the only node left, is not avoided either


events = st.lists(st.tuples(st.sampled_from(["n1", "n2", "n3", "n4"]), st.integers(0, 6),
                            st.booleans()), max_size=120)


def _play(evs):
    n, out = NodeHealth(), []
    for host, trial, ok in evs:
        if ok:
            out += [e.host for e in n.succeeded(host, trial)]
        elif (e := n.failed(host, trial, "boom")) is not None:
            out.append(e.host)
    return n, out


@settings(max_examples=300, deadline=None)
@given(evs=events)
def test_any_history_is_judged_the_same_on_replay_and_for_cause(evs):
    n, excluded = _play(evs)
    again, excluded_again = _play(evs)
    assert excluded == excluded_again and n.bad == again.bad  # deterministic: resume agrees
    assert excluded == list(n.bad) and len(set(excluded)) == len(excluded)  # each once
    seen = {h for h, _, _ in evs}
    assert not seen or seen - set(n.bad)  # some node seen is always left
    for host in n.bad:
        fails = [t for h, t, ok in evs if h == host and not ok]
        assert len(fails) >= FAILURES and len(set(fails)) >= TRIALS
        # at least TRIALS of the trials that failed there completed a segment on another node
        worked_elsewhere = {t for h, t, ok in evs if ok and h != host} & set(fails)
        assert len(worked_elsewhere) >= TRIALS
    for trial in range(7):
        avoid = n.avoid(trial)
        assert set(n.bad) <= avoid
        # beyond those: only for a trial that failed, only nodes where something failed
        assert not avoid - set(n.bad) or (n.failed_on.get(trial) and avoid - set(n.bad) <= {
            h for h, _, ok in evs if not ok})
        assert not seen or seen - avoid or len(seen) == 1  # a usable node is left


@settings(max_examples=200, deadline=None)
@given(evs=events)
def test_trials_that_never_work_anywhere_get_no_node_excluded(evs):
    # trials 0-2 only ever fail; trials 3-6 only ever work: no trial is cleared anywhere
    n, excluded = _play([(h, t, t >= 3) for h, t, _ in evs])
    assert excluded == [] and n.bad == {}


def test_a_node_where_pool_jobs_die_before_their_code_is_excluded_once_work_goes_well_elsewhere():
    n = NodeHealth()
    n.job_started("gpu02")
    for i in range(FAILURES):
        assert n.job_died("gpu17", f"10{i}", "job 10 ended (failed)") is None
    assert n.succeeded("gpu02", 1) == []  # one piece of work went well elsewhere: not yet
    [ex] = n.job_started("gpu03")
    assert ex.host == "gpu17" and ex.refund == []  # no trial paid for it
    assert ex.why.startswith(f"{FAILURES} pool jobs in a row ended there before their code ran "
                             "(jobs 100, 101, 102), while 2 segments or pool jobs went well on "
                             "other nodes; the last: job 10 ended (failed)")
    assert n.avoid() == {"gpu17"}
    n.readmit("gpu17")
    assert n.bad == {} and n.dead_jobs == {}


def test_pool_jobs_that_die_everywhere_get_no_node_excluded():
    n = NodeHealth()
    for i in range(20):
        for host in ("a", "b", "c"):
            assert n.job_died(host, f"{host}{i}", "ended (failed)") is None
    assert n.bad == {}


job_events = st.lists(st.tuples(st.sampled_from(["n1", "n2", "n3"]),
                                st.sampled_from(["died", "started", "worked"]),
                                st.integers(0, 4)), max_size=100)


@settings(max_examples=300, deadline=None)
@given(evs=job_events)
def test_any_history_of_pool_jobs_is_judged_the_same_on_replay_and_for_cause(evs):
    def play():
        n, out, when = NodeHealth(), [], {}
        for i, (host, what, trial) in enumerate(evs):
            if what == "died":
                e = n.job_died(host, str(i), "ended (failed)")
                now = [e.host] if e is not None else []
            elif what == "started":
                now = [e.host for e in n.job_started(host)]
            else:
                now = [e.host for e in n.succeeded(host, trial)]
            out += now
            when.update({h: i for h in now})
        return n, out, when

    n, out, when = play()
    again, out_again, _ = play()
    assert (n.bad, out) == (again.bad, out_again)  # deterministic: a resumed master agrees
    assert out == list(n.bad)
    seen = {h for h, _, _ in evs}
    assert not seen or seen - set(n.bad)  # some node seen is always left
    for host, at in when.items():
        # FAILURES pool jobs in a row died there (nothing went well there in between) ...
        mine = [(i, w) for i, (h, w, _) in enumerate(evs[:at + 1]) if h == host]
        streak = []
        for i, w in reversed(mine):
            if w != "died":
                break
            streak.append(i)
        assert len(streak) >= FAILURES
        # ... and since the first of them, TRIALS segments or pool jobs went well elsewhere
        good = [i for i, (h, w, _) in enumerate(evs[:at + 1]) if h != host and w != "died"
                and i > min(streak)]
        assert len(good) >= TRIALS

"""A rule that changes what the master decides applies to the experiments started under it
(the Init record's ``rules``): an older journal replays into the decisions its master made.

The rule here: with fewer slots than fail-fast compares, a promoted trial whose restore failed
twice with the same error makes way. An older master retried it instead, and its journal goes
on training the trial; replayed with the new rule, that trial would be given up, and its
later result would reach a searcher that holds it failed."""
import dataclasses

import pytest

from asha_hpc.config import parse_config
from asha_hpc.master.state import FAILED, RULES, replay

CFG = parse_config({"name": "s", "entrypoint": "m:f",
                    "searcher": {"name": "async_halving", "metric": "m", "max_length": 4,
                                 "num_rungs": 2, "divisor": 2, "max_trials": 4,
                                 "max_concurrent_trials": 2},
                    "hyperparameters": {"x": 1}, "max_restarts": 5}, "/tmp")


def journal(init: dict, restore_failures: int = 2, then_works: bool = False) -> list[dict]:
    """Trials 1 and 2 reach length 2; trial 1 is promoted and its restore fails alike."""
    recs = [init]
    recs += [{"kind": "intent", "trial": t, "segment": 0, "attempt": 0} for t in (1, 2)]
    recs += [{"kind": "result", "trial": t, "segment": 0, "attempt": 0, "status": "completed",
              "metrics": {"m": m}, "length": 2} for t, m in ((1, 1.0), (2, 2.0))]
    for a in range(restore_failures):
        recs += [{"kind": "intent", "trial": 1, "segment": 1, "attempt": a},
                 {"kind": "result", "trial": 1, "segment": 1, "attempt": a, "status": "error",
                  "restored": True, "error": "Traceback (most recent call last):\n"
                                             "KeyError: 'state'\n"}]
    if then_works:  # an older master's retry, which got past it
        a = restore_failures
        recs += [{"kind": "intent", "trial": 1, "segment": 1, "attempt": a},
                 {"kind": "result", "trial": 1, "segment": 1, "attempt": a, "restored": True,
                  "status": "completed", "metrics": {"m": 0.5}, "length": 4}]
    return recs


def test_under_the_rule_a_trial_whose_restore_failed_twice_alike_makes_way():
    st = replay(CFG, journal({"kind": "init", "rules": RULES}))
    t = st.trials[1]
    assert t.status == FAILED and t.restarts == 2
    assert any("given up, so that another trial shows" in text for _, text in st.events)
    assert len(st.trials) == 4  # the slot went to new trials
    once = replay(CFG, journal({"kind": "init", "rules": RULES}, restore_failures=1))
    assert once.trials[1].status != FAILED  # once is not yet the code's


@pytest.mark.parametrize("init", [{"kind": "init"}, {"kind": "init", "rules": 0}])
def test_an_older_journal_replays_as_its_master_decided(init):
    retried = replay(CFG, journal(init))
    assert retried.trials[1].status != FAILED and 1 in retried.todo
    st = replay(CFG, journal(init, then_works=True))
    assert st.trials[1].length == 4 and st.restores_worked == 1


def stopped_with_a_job_alive(init: dict) -> list[dict]:
    """Fail-fast stopped the search while trial 3's job ran; the master cancelled it as it
    stopped, and `resume --retry-failed` (the code fixed) finds that job dead."""
    recs = journal(init, restore_failures=0)
    recs += [{"kind": "intent", "trial": 3, "segment": 0, "attempt": 0},
             {"kind": "started", "trial": 3, "segment": 0, "attempt": 0},
             {"kind": "aborted", "state": "failed", "message": "the first 3 trials ..."},
             {"kind": "retry_failed", "trials": [], "before_fix_free": True},
             {"kind": "resumed", "pid": 1},
             {"kind": "job_dead", "trial": 3, "segment": 0, "attempt": 0, "state": "failed",
              "counts": True, "job_id": "local:t00003-s000-a00"}]
    return [dict(r, seq=i + 1) for i, r in enumerate(recs)]


def test_under_the_rule_a_job_from_before_retry_failed_found_dead_counts_nothing():
    """max_restarts 0: the trial failed for good after the fix, for a job of the code before
    it that its own master had cancelled (a fresh clone's test run met it)."""
    cfg = dataclasses.replace(CFG, max_restarts=0)
    st = replay(cfg, stopped_with_a_job_alive({"kind": "init", "rules": RULES}))
    assert st.trials[3].status != FAILED and st.trials[3].restarts == 0 and 3 in st.todo
    old = replay(cfg, stopped_with_a_job_alive({"kind": "init"}))
    assert old.trials[3].status == FAILED  # as the master of an older release decided

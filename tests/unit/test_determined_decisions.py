"""``searcher.asha_rule``: Determined's own promotion decisions, checked against the
expectations of Determined's Go searcher tests (master/pkg/searcher/asha_test.go at 0.37,
asha_stopping_test.go at 0.38.1), driven the way those tests drive a searcher.

0.37's tests run a FIFO of operations (util_test.go ``checkValueSimulation``): a created trial
trains to its first rung, each result's follow-up operations go to the back of the queue, and
the n-th trial created gets the n-th predefined metric. 0.38's ``TestSearchRunner`` runs the
trials one after the other, each reporting ever worse metrics until it is stopped.
"""
from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.config import SearcherConfig, parse_config
from asha_hpc.errors import ConfigError
from asha_hpc.searcher import (
    BracketInfo,
    CreateTrial,
    FinishTrial,
    ResumeTrial,
    SearchDone,
    SegmentCompleted,
    TrialFailed,
    make_searcher,
)
from asha_hpc.searcher.asha import DETERMINED_037, DETERMINED_038, PAPER, BracketSearcher
from asha_hpc.searcher.brackets import rung_lengths
from asha_hpc.space import parse_space

# (lengths the trial trains to, its constant metric, index of the op it exits early at)
Predefined = tuple[list[int], float, int | None]


def _one_bracket(num_rungs: int, max_length: int, max_trials: int, divisor: float,
                 rule: str, smaller_is_better: bool = True, concurrency: int = 0) -> BracketSearcher:
    """An async_halving bracket configured as Determined's tests configure theirs
    (max_concurrent_trials 0: clamp(d**(n-1), 1, max_trials))."""
    cfg = SearcherConfig(name="async_halving", metric="m", smaller_is_better=smaller_is_better,
                         max_length=max_length, max_trials=max_trials, divisor=divisor,
                         num_rungs=num_rungs, max_concurrent_trials=concurrency, asha_rule=rule)
    space, _ = parse_space({"x": {"type": "int", "minval": 0, "maxval": 10}})
    return make_searcher(cfg, space, seed=0)


def fifo_run(s: BracketSearcher, trials: list[Predefined]) -> dict[int, list[int]]:
    """Determined's checkValueSimulation: returns the lengths each predefined trial trained to
    (keyed by its index), failing if the searcher asks for more trials than given."""
    queue = deque(s.start())
    index: dict[int, int] = {}
    trained: dict[int, list[int]] = {}
    while queue:
        a = queue.popleft()
        if isinstance(a, (CreateTrial, ResumeTrial)):
            if isinstance(a, CreateTrial):
                assert len(index) < len(trials), "the searcher created too many trials"
                index[a.trial_id] = len(index)
            i = index[a.trial_id]
            lengths, metric, exit_at = trials[i]
            trained.setdefault(i, []).append(a.length)
            if exit_at is not None and len(trained[i]) - 1 == exit_at:
                queue.extend(s.on_event(TrialFailed(a.trial_id)))
            else:
                queue.extend(s.on_event(SegmentCompleted(a.trial_id, a.length, metric)))
        else:
            assert isinstance(a, (FinishTrial, SearchDone))
    assert s.done
    return trained


def _expect(s: BracketSearcher, trials: list[Predefined]) -> None:
    got = fifo_run(s, trials)
    assert len(got) == len(trials)
    for i, (lengths, _, _) in enumerate(trials):
        assert got[i] == lengths, f"trial {i + 1}: trained to {got[i]}, Determined {lengths}"


B3 = [1000, 3000, 9000]


def _trials(spec: list[tuple[int, float, int | None]]) -> list[Predefined]:
    return [(B3[:n], m, e) for n, m, e in spec]


# asha_test.go TestASHASearchMethod (0.37): 3 rungs, 9000 batches, 12 trials, divisor 3
SMALLER = _trials([(3, .01, None), (2, .02, None), (2, .03, None), (2, .04, None)]
                  + [(1, m, None) for m in (.05, .06, .07, .08, .09, .10, .11, .12)])
SMALLER_EARLY_EXIT = [SMALLER[0], SMALLER[1], (B3[:2], .03, 1)] + SMALLER[3:]
LARGER = _trials([(3, .12, None), (2, .11, None), (2, .10, None), (2, .09, None)]
                 + [(1, m, None) for m in (.08, .07, .06, .05, .04, .03, .02, .01)])
LARGER_EARLY_EXIT = [LARGER[0], LARGER[1], (B3[:2], .10, 1)] + LARGER[3:]
# "The first trial is promoted due to asynchronous promotions despite being below top 1/3"
ASYNC = _trials([(2, .10, None), (1, .11, None), (1, .12, 0), (3, .01, None), (2, .02, None),
                 (2, .03, None), (2, .04, None)]
                + [(1, m, None) for m in (.05, .06, .07, .08, .09)])


@pytest.mark.parametrize("trials, smaller", [
    (SMALLER, True), (SMALLER_EARLY_EXIT, True), (LARGER, False), (LARGER_EARLY_EXIT, False),
    (ASYNC, True)], ids=["smaller", "smaller-early-exit", "larger", "larger-early-exit", "async"])
def test_determined_037_value_simulations(trials, smaller):
    _expect(_one_bracket(3, 9000, 12, 3, DETERMINED_037, smaller), trials)


def test_determined_037_single_rung_bracket():
    trials = [([9000], m, None) for m in (.05, .06, .07, .08)]
    _expect(_one_bracket(1, 9000, 4, 3, DETERMINED_037), trials)


@pytest.mark.parametrize("max_length, unit_lengths", [
    (576000, [64000, 192000, 576000]),  # TestASHASearcherRecords
    (9000, [1000, 3000, 9000]),  # TestASHASearcherBatches
    (12, [1, 4, 12]),  # TestASHASearcherEpochs
])
def test_determined_037_constant_validation(max_length, unit_lengths):
    """Every trial reports the same metric: 8 trials end at the first rung, 3 at the second,
    1 reaches the top (Determined's checkSimulation compares them as a multiset)."""
    s = _one_bracket(3, max_length, 12, 3, DETERMINED_037)
    got = fifo_run(s, [(unit_lengths, 0.5, None)] * 12)  # lengths unchecked by the harness
    ends = sorted(len(v) for v in got.values())
    assert ends == [1] * 8 + [2] * 3 + [3]
    assert all(v == unit_lengths[:len(v)] for v in got.values())


def test_rung_lengths_match_determined_make_rungs():
    """asha_stopping_test.go TestMakeRungs (0.38.1)."""
    assert rung_lengths(3, 3, 9) == [1, 3, 9]
    assert rung_lengths(4, 2, 10) == [1, 2, 5, 10]
    assert rung_lengths(1, 3, 9) == [9]
    assert rung_lengths(3, 3, 900) == [100, 300, 900]


def test_determined_038_stopping_search_method():
    """asha_stopping_test.go TestASHAStoppingSearchMethod: 10 trials, 3 at a time, divisor 3,
    rungs 100/300/900 batches; the trials run one after the other reporting ever worse
    metrics: one trial reaches 900, nine are stopped at 100."""
    s = _one_bracket(3, 900, 10, 3, DETERMINED_038, concurrency=3)
    pending = deque(a for a in s.start() if isinstance(a, CreateTrial))
    target = {a.trial_id: a.length for a in pending}
    stopped_at: dict[int, int] = {}
    metric = 0.0
    order = [a.trial_id for a in pending]
    i = 0
    while i < len(order):
        tid = order[i]
        while tid not in stopped_at:
            metric += 1
            acts = s.on_event(SegmentCompleted(tid, target[tid], metric))
            for a in acts:
                if isinstance(a, CreateTrial):
                    order.append(a.trial_id)
                    target[a.trial_id] = a.length
                elif isinstance(a, ResumeTrial):
                    target[a.trial_id] = a.length
                elif isinstance(a, FinishTrial):
                    stopped_at[a.trial_id] = target[a.trial_id]
        i += 1
    assert len(stopped_at) == 10
    assert sorted(stopped_at.values()) == [100] * 9 + [900]


@pytest.mark.parametrize("second, goes_on", [(0.4, True), (0.6, False)])
def test_determined_038_stop_trials(second, goes_on):
    """asha_stopping_test.go TestStopTrials: rungs 1/3/9, divisor 3; the first result always
    continues, a second one continues only if better."""
    s = _one_bracket(3, 9, 10, 3, DETERMINED_038, concurrency=2)
    a, b = [x.trial_id for x in s.start()]
    assert s.on_event(SegmentCompleted(a, 1, 0.5)) == [ResumeTrial(a, 3)]
    acts = s.on_event(SegmentCompleted(b, 1, second))
    if goes_on:
        assert acts == [ResumeTrial(b, 3)]
    else:
        assert acts[0] == FinishTrial(b, "stopped")


@pytest.mark.parametrize("rule, goes_on", [(DETERMINED_038, True), (PAPER, False)])
def test_ties_determined_038_ranks_the_newcomer_first(rule, goes_on):
    """0.38's rung inserts a result before equal ones (sort.Search with >=); the paper rule
    (and 0.37) rank the earlier arrival first."""
    cfg_stop = rule == PAPER
    s = BracketSearcher([BracketInfo(3, 10, 2, [1, 3, 9])], 3, True, cfg_stop,
                        lambda i: {}, rule=rule)
    a, b = [x.trial_id for x in s.start()]
    s.on_event(SegmentCompleted(a, 1, 0.5))
    acts = s.on_event(SegmentCompleted(b, 1, 0.5))
    assert (acts[0] == ResumeTrial(b, 3)) == goes_on


def test_paper_and_determined_037_differ_on_failed_trials():
    """One result per event, the two rules promote the same trials (each arrival makes at
    most one entry promotable, and its slot is free). They part where Determined promotes a
    failed trial sitting at the boundary index: it enters the next rung at once as a worst
    result (its early-exit recursion), which the paper never does. Divisor 1.5, rungs 1 and 2:
    t1 fails, t2 = 5 goes up, t3 fails: floor(3/1.5) = 2 > floor(2/1.5) = 1, so Determined
    promotes the entry at index 1, failed t1, into the top rung."""
    def rung_counts(rule: str) -> list[int]:
        s = BracketSearcher([BracketInfo(2, 4, 1, [1, 2])], 1.5, True, False, lambda i: {},
                            rule=rule)
        (t1,) = s.start()
        (t2,) = s.on_event(TrialFailed(t1.trial_id))
        assert s.on_event(SegmentCompleted(t2.trial_id, 1, 5.0)) == [ResumeTrial(t2.trial_id, 2)]
        _, t3 = s.on_event(SegmentCompleted(t2.trial_id, 2, 4.0))
        (t4,) = s.on_event(TrialFailed(t3.trial_id))
        assert isinstance(t4, CreateTrial)
        return [r.completed for r in s.rungs()]
    assert rung_counts(DETERMINED_037) == [3, 2]
    assert rung_counts(PAPER) == [3, 1]


@settings(max_examples=60, deadline=None)
@given(metrics=st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=40),
       fails=st.sets(st.integers(0, 39), max_size=6), divisor=st.sampled_from([2.0, 3.0, 4.0]),
       conc=st.integers(1, 5))
def test_determined_037_never_more_than_one_promotion_per_result(metrics, fails, divisor, conc):
    """Whatever arrives: each result promotes at most one trial, every trial ends exactly
    once, and the search finishes."""
    n = len(metrics)
    s = BracketSearcher([BracketInfo(3, n, conc, rung_lengths(3, divisor, 27))], divisor, True,
                        False, lambda i: {}, rule=DETERMINED_037)
    queue = deque(s.start())
    seen = 0
    ended = []
    while queue:
        a = queue.popleft()
        if isinstance(a, (CreateTrial, ResumeTrial)):
            i = seen % n
            seen += 1
            ev = (TrialFailed(a.trial_id) if i in fails and isinstance(a, CreateTrial)
                  else SegmentCompleted(a.trial_id, a.length, metrics[i]))
            acts = s.on_event(ev)
            assert sum(isinstance(x, ResumeTrial) for x in acts) <= 1
            queue.extend(acts)
        elif isinstance(a, FinishTrial):
            ended.append(a.trial_id)
    assert s.done
    assert len(ended) == len(set(ended))


def test_asha_rule_config():
    base = {"entrypoint": "a:b", "searcher": {"name": "adaptive_asha", "metric": "x",
                                              "max_length": 9, "max_trials": 9}}
    raw = dict(base, searcher=dict(base["searcher"], asha_rule="determined_0.38"))
    cfg = parse_config(raw, "/tmp")
    assert cfg.searcher.stop_once and cfg.searcher.asha_rule == "determined_0.38"
    assert parse_config(cfg.to_dict(), "/tmp").searcher == cfg.searcher
    raw["searcher"]["stop_once"] = False
    with pytest.raises(ConfigError, match="searcher.stop_once: determined_0.38 is stopping-based"):
        parse_config(raw, "/tmp")
    raw = dict(base, searcher=dict(base["searcher"], asha_rule="determined_0.37", stop_once=True))
    with pytest.raises(ConfigError, match="searcher.asha_rule: determined_0.37 promotes"):
        parse_config(raw, "/tmp")
    raw = dict(base, searcher=dict(base["searcher"], asha_rule="determined"))
    with pytest.raises(ConfigError, match="did you mean"):
        parse_config(raw, "/tmp")

"""``searcher.max_compute``: a cap on the units every segment of the search trains, together.

The searcher must never start a segment that takes the total past the cap (retries aside), must
still end with one SearchDone and nothing paused, must replay to the same actions, and must make
exactly the uncapped decisions while the cap does not bind.
"""
from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asha_hpc.config import SearcherConfig, parse_config
from asha_hpc.errors import ConfigError
from asha_hpc.searcher import (
    CreateTrial,
    FinishTrial,
    ResumeTrial,
    SearchDone,
    SegmentCompleted,
    TrialFailed,
    TrialInvalid,
    TrialRetried,
    make_searcher,
)
from asha_hpc.space import parse_space

SPACE, _ = parse_space({"lr": {"type": "log", "base": 10, "minval": -5, "maxval": -1},
                        "layers": {"type": "int", "minval": 1, "maxval": 8},
                        "optimizer": {"type": "categorical", "vals": ["adam", "sgd"]}})


def cfg(**kw) -> SearcherConfig:
    base = dict(name="adaptive_asha", metric="val_loss", max_length=64, max_trials=40,
                max_concurrent_trials=8, divisor=4.0)
    base.update(kw)
    return SearcherConfig(**base)


def drive(c: SearcherConfig, seed: int, p_fail: float = 0.0, p_invalid: float = 0.0,
          p_retry: float = 0.0):
    """Run a search to its end on random results and event orders. Returns the searcher, the
    events, the action log and the units started (a segment from its trial's last length)."""
    s = make_searcher(c, SPACE, seed)
    rnd = random.Random(seed)
    at: dict[int, int] = {}  # trial -> length its checkpoint holds
    pool: dict[int, int] = {}  # in flight: trial -> target length
    started = 0
    retried: set[int] = set()
    events, log = [], []

    def apply(actions):
        nonlocal started
        log.append(actions)
        for a in actions:
            if isinstance(a, (CreateTrial, ResumeTrial)):
                started += a.length - at.get(a.trial_id, 0)
                pool[a.trial_id] = a.length
            elif isinstance(a, FinishTrial):
                pool.pop(a.trial_id, None)

    apply(s.start())
    while pool:
        tid = rnd.choice(sorted(pool))
        length = pool.pop(tid)
        u = rnd.random()
        if u < p_fail:
            ev = TrialFailed(tid)
            if tid not in retried and rnd.random() < p_retry:
                retried.add(tid)
                events.append(ev)
                apply(s.on_event(ev))
                ev = TrialRetried(tid, length)
                started += length - at.get(tid, 0)  # the retry trains the segment again
                pool[tid] = length
        elif u < p_fail + p_invalid:
            ev = TrialInvalid(tid)
            started -= length - at.get(tid, 0)  # rejected before it trained
        else:
            ev = SegmentCompleted(tid, length, rnd.random())
            at[tid] = length
        events.append(ev)
        acts = s.on_event(ev)
        if isinstance(ev, TrialRetried):
            acts = [a for a in acts if a != ResumeTrial(tid, length)]
            log.append([ResumeTrial(tid, length)])
        apply(acts)
    return s, events, log, started


def test_no_cap_binding_means_the_same_decisions():
    free = drive(cfg(), 7)
    capped = drive(cfg(max_compute=10**9), 7)
    assert capped[2] == free[2]
    snap = capped[0].snapshot()
    assert snap.pop("max_compute") == 10**9 and snap.pop("compute_started") == free[3]
    assert snap == free[0].snapshot()


def test_a_tight_cap_is_never_passed_and_the_search_ends():
    free = drive(cfg(), 3)[3]
    for cap in (64, 100, free // 4, free // 2, free - 1):
        s, _, log, started = drive(cfg(max_compute=cap), 3)
        assert started <= cap
        assert s.compute_started() == started
        assert sum(isinstance(a, SearchDone) for acts in log for a in acts) == 1
        assert all(s.trial_status(t) in ("top", "stopped") for t in range(1, s.snapshot()["next_trial_id"]))
        assert started > cap // 2, f"cap {cap}: only {started} units used"


def test_promotion_refused_when_it_does_not_fit_and_the_trial_stops():
    # async_halving, rungs 1-2-4 (segments 1, 1, 2), one trial at a time: a new trial is
    # expected to cost 1 + 1/2 + 2/4 = 2 units
    def run(cap):
        s = make_searcher(cfg(name="async_halving", num_rungs=3, max_length=4, max_trials=4,
                              max_concurrent_trials=1, divisor=2.0, max_compute=cap), SPACE, 0)
        acts = s.start()
        for ev in [SegmentCompleted(1, 1, 0.1), SegmentCompleted(2, 1, 0.2),
                   SegmentCompleted(1, 2, 0.1), SegmentCompleted(3, 1, 0.05),
                   SegmentCompleted(3, 2, 0.05)]:
            acts += s.on_event(ev)
        return s, acts

    s, acts = run(None)
    assert ResumeTrial(3, 4) in acts  # uncapped, the best trial goes on to the top
    s, acts = run(6)
    assert [a for a in acts if isinstance(a, (CreateTrial, ResumeTrial))] == [
        CreateTrial(1, 0, acts[0].hparams, 1), CreateTrial(2, 0, acts[1].hparams, 1),
        ResumeTrial(1, 2), CreateTrial(3, 0, acts[3].hparams, 1), ResumeTrial(3, 2)]
    # 5 units started; the 2-unit segment to the top would make 7: refused, and with nothing in
    # flight and no room for a fourth trial the search ends
    assert s.compute_started() == 5
    assert s.done and SearchDone() in acts
    assert s.trial_status(3) == "stopped" and FinishTrial(3, "stopped") in acts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["adaptive_asha", "adaptive_asha", "async_halving", "random"]),
       max_length=st.integers(1, 300), max_trials=st.integers(1, 80),
       conc=st.integers(0, 20), divisor=st.sampled_from([2.0, 3.0, 4.0]),
       stop_once=st.booleans(), rule=st.sampled_from(["paper", "paper", "determined_0.37"]),
       share=st.floats(0.0, 1.5), seed=st.integers(0, 2**31),
       p_fail=st.sampled_from([0.0, 0.1]), p_invalid=st.sampled_from([0.0, 0.1]))
def test_any_search_stays_within_its_cap(name, max_length, max_trials, conc, divisor, stop_once,
                                         rule, share, seed, p_fail, p_invalid):
    if rule == "determined_0.37":
        stop_once = False
    base = cfg(name=name, max_length=max_length, max_trials=max_trials,
               max_concurrent_trials=conc, divisor=divisor, stop_once=stop_once, asha_rule=rule,
               num_rungs=3)
    free = drive(base, seed, p_fail, p_invalid)[3]
    cap = max(max_length, int(free * share))
    c = cfg(**{**base.__dict__, "max_compute": cap})
    s, events, log, started = drive(c, seed, p_fail, p_invalid)
    assert started <= cap
    assert sum(isinstance(a, SearchDone) for acts in log for a in acts) == 1
    s2 = make_searcher(c, SPACE, seed)
    replayed = [s2.start()] + [s2.on_event(e) for e in events]
    assert [a for acts in replayed for a in acts] == [a for acts in log for a in acts]
    assert s2.snapshot() == s.snapshot()
    json.dumps(s.snapshot())


def test_a_retry_is_counted_but_never_refused():
    c = cfg(max_compute=300)
    s, _, log, started = drive(c, 11, p_fail=0.3, p_retry=1.0)
    assert s.compute_started() == started
    assert sum(isinstance(a, SearchDone) for acts in log for a in acts) == 1


def _raw(**searcher):
    return {"name": "x", "entrypoint": "m:f",
            "searcher": {"name": "adaptive_asha", "metric": "val_loss",
                         "max_length": {"epochs": 20}, "max_trials": 30, **searcher},
            "hyperparameters": {"lr": {"type": "double", "minval": 0.001, "maxval": 0.1}}}


def test_config_reads_max_compute_and_writes_it_back(tmp_path):
    c = parse_config(_raw(max_compute=400), tmp_path)
    assert c.searcher.max_compute == 400
    assert c.to_dict()["searcher"]["max_compute"] == 400
    assert parse_config(c.to_dict(), tmp_path).searcher.max_compute == 400
    assert "max_compute" not in parse_config(_raw(), tmp_path).to_dict()["searcher"]


@pytest.mark.parametrize("value, words", [
    (10, "less than max_length (20)"),
    (0, ">= 1"),
    (2.5, "an integer (units of epochs)"),
    ("100 GPU-hours", "an integer (units of epochs)"),
])
def test_config_rejects_a_bad_max_compute(tmp_path, value, words):
    with pytest.raises(ConfigError) as e:
        parse_config(_raw(max_compute=value), tmp_path)
    assert "searcher.max_compute" in str(e.value) and words in str(e.value)


def test_plan_says_what_the_cap_does(tmp_path):
    from asha_hpc.plan import plan, render_plan

    c = parse_config(_raw(max_compute=100), tmp_path)
    p = plan(c.searcher, c.space())
    text = render_plan(c.searcher, c.space(), p)
    assert p["max_compute"] == 100 and p["total_units"] > 100
    assert "max_compute 100 epochs, a cap on all training" in text
    assert f"the preview needs {p['total_units'] / 100:.2f}x that: expect fewer trials" in text
    roomy = parse_config(_raw(max_compute=10_000), tmp_path)
    text = render_plan(roomy.searcher, roomy.space(), plan(roomy.searcher, roomy.space()))
    assert "the preview fits" in text


@settings(max_examples=150, deadline=None)
@given(value=st.one_of(st.integers(-10**6, 10**9), st.floats(allow_nan=True), st.booleans(),
                       st.text(max_size=12), st.none(), st.lists(st.integers(), max_size=3),
                       st.dictionaries(st.sampled_from(["epochs", "batches"]), st.integers(),
                                       max_size=1)))
def test_any_max_compute_value_is_taken_or_named_in_one_line(value):
    """Whatever a user writes there: an integer of at least max_length is the cap, nothing
    (None) is no cap, anything else is one error naming searcher.max_compute."""
    try:
        c = parse_config(_raw(max_compute=value), "/tmp")
    except ConfigError as e:
        lines = [x for x in str(e).splitlines() if "searcher.max_compute" in x]
        assert len(lines) == 1
        assert not (isinstance(value, int) and not isinstance(value, bool) and value >= 20)
        return
    if value is None:
        assert c.searcher.max_compute is None
    else:
        assert isinstance(value, int) and not isinstance(value, bool) and value >= 20
        assert c.searcher.max_compute == value

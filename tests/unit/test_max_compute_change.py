"""``resume --max-compute``: a search's cap changed part-way (``set_max_compute``).

A raised cap must let the search go on where the old one ended it, mid-search or after it
completed: new trials up to ``max_trials``, and the trials stopped unpromoted (those the caller
names, whose checkpoints are still there) promoted again by the same rule. It must never pass
the new cap, end with exactly one more SearchDone when it went on, promote nothing twice, and
replay to the same actions from the same events and change.
"""
from __future__ import annotations

import json
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_max_compute import cfg  # the same searcher config as the cap's own tests

from asha_hpc.config import SearcherConfig
from asha_hpc.searcher import (
    CreateTrial,
    FinishTrial,
    ResumeTrial,
    SearchDone,
    SegmentCompleted,
    TrialFailed,
    make_searcher,
)
from asha_hpc.space import parse_space

SPACE, _ = parse_space({"lr": {"type": "log", "base": 10, "minval": -5, "maxval": -1},
                        "width": {"type": "int", "minval": 16, "maxval": 512}})


class Run:
    """Drives a searcher on random results; ``change(units, reopen)`` sets a new cap at the
    current point. ``steps`` (events and changes, in order) replay it on a fresh searcher."""

    def __init__(self, c: SearcherConfig, seed: int, p_fail: float = 0.0) -> None:
        self.c, self.seed, self.p_fail = c, seed, p_fail
        self.s = make_searcher(c, SPACE, seed)
        self.rnd = random.Random(seed)
        self.at: dict[int, int] = {}  # trial -> length its checkpoint holds
        self.pool: dict[int, int] = {}  # in flight: trial -> target
        self.started = 0
        self.steps: list = []
        self.log: list = []
        self.stopped: list[int] = []
        self._apply(self.s.start())

    def _apply(self, actions) -> None:
        self.log.append(actions)
        for a in actions:
            if isinstance(a, (CreateTrial, ResumeTrial)):
                assert a.length > self.at.get(a.trial_id, 0), f"{a}: trained there already"
                self.started += a.length - self.at.get(a.trial_id, 0)
                self.pool[a.trial_id] = a.length
            elif isinstance(a, FinishTrial):
                self.pool.pop(a.trial_id, None)

    def events(self, n: int | None = None) -> None:
        while self.pool and (n is None or n > 0):
            tid = self.rnd.choice(sorted(self.pool))
            length = self.pool.pop(tid)
            if self.rnd.random() < self.p_fail:
                ev = TrialFailed(tid)
            else:
                ev = SegmentCompleted(tid, length, self.rnd.random())
                self.at[tid] = length
            self.steps.append(ev)
            self._apply(self.s.on_event(ev))
            n = None if n is None else n - 1

    def change(self, units: int, reopen: list[int] | None = None) -> list:
        if reopen is None:
            reopen = [t for t in range(1, self.s.snapshot()["next_trial_id"])
                      if self.s.trial_status(t) == "stopped"]
        self.steps.append(("cap", units, reopen))
        acts = self.s.set_max_compute(units, reopen=reopen)
        self._apply(acts)
        return acts

    def replayed(self):
        s = make_searcher(self.c, SPACE, self.seed)
        out = [s.start()]
        for step in self.steps:
            if isinstance(step, tuple):
                out.append(s.set_max_compute(step[1], reopen=step[2]))
            else:
                out.append(s.on_event(step))
        return s, out

    def dones(self) -> int:
        return sum(isinstance(a, SearchDone) for acts in self.log for a in acts)

    def created(self) -> int:
        return sum(isinstance(a, CreateTrial) for acts in self.log for a in acts)


def test_raised_after_the_end_the_search_goes_on_to_its_max_trials():
    free = Run(cfg(), 5)
    free.events()
    r = Run(cfg(max_compute=free.started // 3), 5)
    r.events()
    assert r.s.done and r.dones() == 1 and r.created() < 40
    ended_at, n = r.started, len(r.log)
    stopped = [t for t in range(1, r.s.snapshot()["next_trial_id"])
               if r.s.trial_status(t) == "stopped"]
    acts = r.change(10**9)
    assert any(isinstance(a, (CreateTrial, ResumeTrial)) for a in acts)
    assert not r.s.done
    r.events()
    assert r.s.done and r.dones() == 2
    assert r.created() == 40  # every bracket's max_trials, as without a cap
    assert ended_at < r.started <= 10**9
    # trials stopped at the old cap's end were promoted again, from where they stopped
    assert {a.trial_id for acts in r.log[n:] for a in acts if isinstance(a, ResumeTrial)} & set(stopped)


def test_raised_mid_search_it_never_passes_the_new_cap():
    for seed in range(6):
        free = Run(cfg(), seed)
        free.events()
        low, high = free.started // 4, free.started // 2
        r = Run(cfg(max_compute=low), seed)
        r.events(12)
        assert not r.s.done
        r.change(high)
        r.events()
        assert r.s.done and r.dones() == 1
        assert low < r.started <= high
        assert r.s.compute_started() == r.started


def test_trials_whose_checkpoints_are_gone_stay_stopped():
    r = Run(cfg(max_compute=400), 2)
    r.events()
    stopped = [t for t in range(1, r.s.snapshot()["next_trial_id"])
               if r.s.trial_status(t) == "stopped"]
    assert stopped
    n = len(r.log)
    r.change(10**9, reopen=[])
    r.events()
    assert all(r.s.trial_status(t) == "stopped" for t in stopped)
    assert not any(isinstance(a, ResumeTrial) and a.trial_id in stopped
                   for acts in r.log[n:] for a in acts)
    assert r.created() == 40


def test_a_search_that_used_all_its_trials_has_nothing_to_continue():
    r = Run(cfg(max_trials=12), 1)
    r.events()  # no cap: it ends on its own
    n = len(r.log)
    assert r.change(10**9) == []
    assert r.s.done and r.dones() == 1 and len(r.log) == n + 1
    json.dumps(r.s.snapshot())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["adaptive_asha", "adaptive_asha", "async_halving", "random"]),
       max_trials=st.integers(1, 60), conc=st.integers(1, 16),
       divisor=st.sampled_from([2.0, 3.0, 4.0]), stop_once=st.booleans(),
       rule=st.sampled_from(["paper", "paper", "determined_0.37"]),
       first=st.floats(0.05, 1.2), second=st.floats(0.05, 2.0), at=st.integers(0, 200),
       keep=st.floats(0.0, 1.0), seed=st.integers(0, 2**31), p_fail=st.sampled_from([0.0, 0.1]))
def test_any_change_of_cap_keeps_the_search_whole(name, max_trials, conc, divisor, stop_once,
                                                  rule, first, second, at, keep, seed, p_fail):
    if rule == "determined_0.37":
        stop_once = False
    base = dict(name=name, max_trials=max_trials, max_concurrent_trials=conc, divisor=divisor,
                stop_once=stop_once, asha_rule=rule, num_rungs=3)
    free = Run(cfg(**base), seed, p_fail)
    free.events()
    cap1 = max(64, int(free.started * first))
    r = Run(cfg(**base, max_compute=cap1), seed, p_fail)
    r.events(at)
    before, was_done = r.started, r.s.done
    cap2 = max(64, int(free.started * second))
    stopped = [t for t in range(1, r.s.snapshot()["next_trial_id"])
               if r.s.trial_status(t) == "stopped"]
    reopen = [t for t in stopped if random.Random(seed + t).random() < keep]
    acts = r.change(cap2, reopen)
    r.events()
    assert r.s.done
    assert r.started <= max(cap2, before)  # nothing passes the new cap (what ran, ran)
    assert r.dones() == 1 + (was_done and any(isinstance(a, (CreateTrial, ResumeTrial))
                                              for a in acts))
    last_done = max(i for i, acts in enumerate(r.log) if any(isinstance(a, SearchDone) for a in acts))
    assert not any(isinstance(a, (CreateTrial, ResumeTrial)) for acts in r.log[last_done + 1:]
                   for a in acts)
    for t in stopped:  # a stopped trial not named stays stopped
        if t not in reopen:
            assert r.s.trial_status(t) == "stopped"
    assert all(r.s.trial_status(t) in ("top", "stopped", "failed")
               for t in range(1, r.s.snapshot()["next_trial_id"]))
    s2, replayed = r.replayed()
    assert [a for acts in replayed for a in acts] == [a for acts in r.log for a in acts]
    assert s2.snapshot() == r.s.snapshot()
    json.dumps(r.s.snapshot())

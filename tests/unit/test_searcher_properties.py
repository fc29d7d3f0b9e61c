"""Property tests: random configs driven by a simulated pool in random event orders.

The test keeps its own model of every rung (results in arrival order, promotions) and checks
each action against the spec's rules computed independently from that model:

- never more than a bracket's max_concurrent_trials in flight, never more valid trials than
  max_trials (when the brackets' trials add up to at most max_trials, which they do for d >= 2);
- a promotion from a rung with k results picks among its top floor(k/d) unpromoted entries, and
  only when no higher rung (below the top) has a promotable entry;
- a new trial is created only when nothing is promotable (promotions first);
- stop_once: a trial continues iff its rank < max(floor(k/d), 1);
- the search always ends with exactly one SearchDone, when nothing is in flight;
- replaying the same events into a fresh searcher gives the same actions and snapshot.
"""
from __future__ import annotations

import json
import math
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asha_hpc.config import SearcherConfig
from asha_hpc.searcher import (
    CreateTrial,
    FinishTrial,
    ResumeTrial,
    SearchDone,
    SegmentCompleted,
    TrialFailed,
    TrialInvalid,
    make_searcher,
)
from asha_hpc.space import parse_space

SPACE, _ = parse_space({"x": {"type": "double", "minval": 0, "maxval": 1, "count": 3},
                        "k": {"type": "categorical", "vals": ["a", "b"]},
                        "n": {"type": "int", "minval": 1, "maxval": 100, "count": 4}})


@st.composite
def configs(draw):
    name = draw(st.sampled_from(["adaptive_asha"] * 6 + ["async_halving"] * 3
                                + ["random", "grid", "single"]))
    divisor = draw(st.one_of(st.sampled_from([2.0, 3.0, 4.0, 5.0]),
                             st.floats(2.0, 5.0, allow_nan=False)))
    return SearcherConfig(
        name=name, metric="m", smaller_is_better=draw(st.booleans()),
        max_length=draw(st.integers(1, 2000)), max_trials=draw(st.integers(1, 300)),
        max_concurrent_trials=draw(st.integers(0, 50)),
        mode=draw(st.sampled_from(["aggressive", "standard", "conservative"])),
        divisor=divisor, max_rungs=draw(st.integers(1, 5)), num_rungs=draw(st.integers(1, 5)),
        stop_once=draw(st.booleans()))


class Model:
    """The test's own bookkeeping of one run."""

    def __init__(self, s, cfg: SearcherConfig) -> None:
        self.cfg = cfg
        self.d = float(cfg.divisor)
        self.sign = 1.0 if cfg.smaller_is_better else -1.0
        self.info = s.brackets()
        self.results: dict[tuple[int, int], list[tuple[int, float, int, int]]] = {}
        self.promoted: dict[tuple[int, int], set[int]] = {}
        self.bracket: dict[int, int] = {}
        self.rung: dict[int, int] = {}  # trial -> rung index it trains toward / last completed
        self.pool: dict[int, int] = {}  # in flight: trial -> length
        self.paused: set[int] = set()
        self.dead: set[int] = set()  # failed, invalid, finished
        self.valid = 0
        self.created = [0] * len(self.info)
        self.arrival = 0
        self.done = 0
        self.finished: dict[int, str] = {}

    # ------------------------------------------------------------------ rules
    def ranked(self, b: int, r: int):
        return sorted(self.results.get((b, r), []))

    def promotable(self, b: int, r: int) -> list[int]:
        res = self.ranked(b, r)
        top = res[: math.floor(len(res) / self.d)]
        done = self.promoted.get((b, r), set())
        return [e[3] for e in top if e[0] == 0 and e[3] not in done and e[3] in self.paused]

    def in_flight(self, b: int) -> int:
        return sum(1 for t in self.pool if self.bracket[t] == b)

    def record(self, tid: int, metric: float) -> None:
        b, r = self.bracket[tid], self.rung[tid]
        m = self.sign * metric
        entry = (1, 0.0, self.arrival, tid) if math.isnan(m) else (0, m, self.arrival, tid)
        self.arrival += 1
        self.results.setdefault((b, r), []).append(entry)
        return entry

    # ------------------------------------------------------------------ actions
    def apply(self, actions, event=None) -> None:
        for a in actions:
            assert self.done == 0, f"{a} after SearchDone"
            if isinstance(a, CreateTrial):
                b = a.bracket
                info = self.info[b]
                assert a.trial_id not in self.bracket
                assert a.trial_id == len(self.bracket) + 1, "trial ids sequential from 1"
                assert a.length == info.rung_lengths[0]
                assert self.created[b] < info.max_trials
                if not self.cfg.stop_once:
                    for r in range(info.num_rungs - 1):
                        assert not self.promotable(b, r), f"created {a.trial_id} while rung {r} could promote"
                self.bracket[a.trial_id] = b
                self.rung[a.trial_id] = 0
                self.pool[a.trial_id] = a.length
                self.created[b] += 1
                self.valid += 1
                assert json.loads(json.dumps(a.hparams)) == a.hparams
            elif isinstance(a, ResumeTrial):
                tid = a.trial_id
                b, r = self.bracket[tid], self.rung[tid]
                info = self.info[b]
                assert r + 1 < info.num_rungs
                assert a.length == info.rung_lengths[r + 1]
                if not self.cfg.stop_once:
                    assert tid in self.paused
                    assert tid in self.promotable(b, r), f"promoted {tid} from outside the top k/d"
                    best = min(e for e in self.results[(b, r)] if e[3] in self.promotable(b, r))
                    assert best[3] == tid, "the best promotable goes first"
                    for hr in range(r + 1, info.num_rungs - 1):
                        assert not self.promotable(b, hr), "higher rungs promote first"
                    self.paused.discard(tid)
                else:
                    assert isinstance(event, SegmentCompleted) and event.trial_id == tid
                self.promoted.setdefault((b, r), set()).add(tid)
                self.rung[tid] = r + 1
                self.pool[tid] = a.length
            elif isinstance(a, FinishTrial):
                tid = a.trial_id
                assert tid not in self.finished
                self.finished[tid] = a.reason
                if a.reason == "top":
                    assert self.rung[tid] == self.info[self.bracket[tid]].num_rungs - 1
                    assert isinstance(event, SegmentCompleted) and event.trial_id == tid
                else:
                    assert a.reason == "stopped"
                    self.paused.discard(tid)
                    self.pool.pop(tid, None)
                self.dead.add(tid)
            elif isinstance(a, SearchDone):
                assert not self.pool, "SearchDone with trials in flight"
                self.done += 1
            for b, info in enumerate(self.info):
                assert self.in_flight(b) <= info.max_concurrent_trials
        if sum(i.max_trials for i in self.info) <= self.cfg.max_trials or self.cfg.name == "grid":
            limit = self.cfg.max_trials if self.cfg.name != "grid" else self.info[0].max_trials
            assert self.valid <= limit


def run(cfg: SearcherConfig, seed: int, p_fail: float, p_invalid: float, p_cancel: float,
        ties: bool, p_nan: float):
    s = make_searcher(cfg, SPACE, seed)
    model = Model(s, cfg)
    rnd = random.Random(seed)
    events = []
    first = s.start()
    model.apply(first)
    log = [first]
    steps = 0
    while model.pool:
        steps += 1
        assert steps < 50_000
        if model.paused and rnd.random() < p_cancel:  # cancel a paused trial
            tid = rnd.choice(sorted(model.paused))
            ev = TrialFailed(tid)
            model.paused.discard(tid)
            model.dead.add(tid)
        else:
            tid = rnd.choice(sorted(model.pool))
            length = model.pool.pop(tid)
            u = rnd.random()
            if u < p_fail:
                ev = TrialFailed(tid)
                model.record(tid, math.nan)
                model.dead.add(tid)
            elif u < p_fail + p_invalid:
                ev = TrialInvalid(tid)
                b = model.bracket[tid]
                for r in range(model.info[b].num_rungs):
                    res = model.results.get((b, r), [])
                    model.results[(b, r)] = [e for e in res if e[3] != tid]
                    model.promoted.get((b, r), set()).discard(tid)
                model.dead.add(tid)
                if cfg.name not in ("grid", "single"):
                    model.created[b] -= 1
                model.valid -= 1
            else:
                if rnd.random() < p_nan:
                    metric = math.nan
                elif ties:
                    metric = rnd.choice([0.0, -0.0, 0.5, 1.0, math.inf, -math.inf])
                else:
                    metric = rnd.random()
                ev = SegmentCompleted(tid, length, metric)
                entry = model.record(tid, metric)
                b, r = model.bracket[tid], model.rung[tid]
                if r < model.info[b].num_rungs - 1 and not cfg.stop_once:
                    model.paused.add(tid)
        events.append(ev)
        acts = s.on_event(ev)
        if isinstance(ev, SegmentCompleted) and cfg.stop_once:
            b, r = model.bracket[ev.trial_id], model.rung[ev.trial_id]
            if r < model.info[b].num_rungs - 1:
                res = model.ranked(b, r)
                k = len(res)
                cont = entry[0] == 0 and res.index(entry) < max(math.floor(k / model.d), 1)
                got = [a for a in acts if getattr(a, "trial_id", None) == ev.trial_id]
                if cont:
                    assert got == [ResumeTrial(ev.trial_id, model.info[b].rung_lengths[r + 1])]
                else:
                    assert got == [FinishTrial(ev.trial_id, "stopped")]
                    model.pool.pop(ev.trial_id, None)
        model.apply(acts, ev)
        log.append(acts)
    assert model.done == 1 and s.done
    assert not model.paused
    for tid in model.bracket:  # every trial ended one way or another
        assert tid in model.dead
    return s, events, log


def replay(cfg, seed, events):
    s = make_searcher(cfg, SPACE, seed)
    log = [s.start()] + [s.on_event(ev) for ev in events]
    return s, log


@settings(max_examples=90, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs(), seed=st.integers(0, 2**32 - 1),
       p_fail=st.sampled_from([0.0, 0.0, 0.05, 0.2]), p_invalid=st.sampled_from([0.0, 0.0, 0.05, 0.2]),
       p_cancel=st.sampled_from([0.0, 0.0, 0.05]), ties=st.booleans(),
       p_nan=st.sampled_from([0.0, 0.0, 0.1]))
def test_random_configs_and_event_orders(cfg, seed, p_fail, p_invalid, p_cancel, ties, p_nan):
    s, events, log = run(cfg, seed, p_fail, p_invalid, p_cancel, ties, p_nan)
    s2, log2 = replay(cfg, seed, events)
    assert log2 == log
    assert s2.snapshot() == s.snapshot()
    json.dumps(s.snapshot())  # JSON-able


@settings(max_examples=30, deadline=None)
@given(cfg=configs(), seed=st.integers(0, 2**32 - 1))
def test_snapshot_tracks_state_midway(cfg, seed):
    """Equal event prefixes give equal snapshots; a different next event changes it."""
    s, events, _ = run(cfg, seed, 0.05, 0.05, 0.0, True, 0.05)
    cut = len(events) // 2
    a, _ = replay(cfg, seed, events[:cut])
    b, _ = replay(cfg, seed, events[:cut])
    assert a.snapshot() == b.snapshot()
    if cut < len(events):
        before = a.snapshot()
        a.on_event(events[cut])
        assert a.snapshot() != before

"""The ASHA state machine (spec section 2) on small hand-checked scenarios, and the simple
searchers (section 3)."""
import math
import random

import pytest

from asha_hpc.config import SearcherConfig
from asha_hpc.searcher import (
    CreateTrial,
    FinishTrial,
    ResumeTrial,
    SegmentCompleted,
    TrialFailed,
    TrialInvalid,
    make_searcher,
)
from asha_hpc.searcher.sortedlist import SortedKeys
from asha_hpc.space import parse_space

SPACE, _ = parse_space({"lr": {"type": "log", "minval": -4, "maxval": -1, "base": 10},
                        "n": {"type": "int", "minval": 1, "maxval": 8}})


def halving(t=8, c=1, n=3, d=2.0, L=4, **kw):
    cfg = SearcherConfig(name="async_halving", max_length=L, max_trials=t, num_rungs=n,
                         max_concurrent_trials=c, divisor=d, **kw)
    return make_searcher(cfg, SPACE, 7)


def kinds(actions):
    out = []
    for a in actions:
        if isinstance(a, CreateTrial):
            out.append(("create", a.trial_id, a.length))
        elif isinstance(a, ResumeTrial):
            out.append(("resume", a.trial_id, a.length))
        elif isinstance(a, FinishTrial):
            out.append((a.reason, a.trial_id))
        else:
            out.append(("done",))
    return out


def test_promotion_scenario_by_hand():
    s = halving(t=4, c=1)  # units [1, 2, 4]
    assert kinds(s.start()) == [("create", 1, 1)]
    # k=1 in rung 0: floor(1/2)=0, nothing promotable -> a new trial
    assert kinds(s.on_event(SegmentCompleted(1, 1, 0.5))) == [("create", 2, 1)]
    assert s.is_paused(1) and s.trial_target(2) == 1
    # k=2: top 1 is trial 2 (0.3) -> promoted before any new trial
    assert kinds(s.on_event(SegmentCompleted(2, 1, 0.3))) == [("resume", 2, 2)]
    assert s.trial_target(2) == 2
    # rung 1 k=1: nothing; rung 0 k=2: top 1 already promoted -> new trial 3
    assert kinds(s.on_event(SegmentCompleted(2, 2, 0.2))) == [("create", 3, 1)]
    # rung 0 k=3 -> floor 1, still only trial 2; new trial 4
    assert kinds(s.on_event(SegmentCompleted(3, 1, 0.9))) == [("create", 4, 1)]
    # k=4 -> top 2 = {4 (0.1), 2}: promote 4; rung 1 then k=2 -> top 1 = trial 2 ...
    assert kinds(s.on_event(SegmentCompleted(4, 1, 0.1))) == [("resume", 4, 2)]
    # rung 1 k=2: top 1 is trial 4 (0.05) -> promoted to the top rung
    assert kinds(s.on_event(SegmentCompleted(4, 2, 0.05))) == [("resume", 4, 4)]
    # top rung: finished; nothing left -> paused trials stop, search done
    assert kinds(s.on_event(SegmentCompleted(4, 4, 0.01))) == [
        ("top", 4), ("stopped", 1), ("stopped", 2), ("stopped", 3), ("done",)]
    assert s.done
    rungs = [(r.length, r.completed, r.promoted, r.best_metric) for r in s.rungs()]
    assert rungs == [(1, 4, 2, 0.1), (2, 2, 1, 0.05), (4, 1, 0, 0.01)]


def test_higher_rung_promotes_first():
    """An invalid trial leaves two rungs at once, making a trial promotable in each: with one
    free slot, the higher rung goes first."""
    s = halving(t=13, c=2)  # units [1, 2, 4]
    s.start()
    for ev in [SegmentCompleted(1, 1, 0.28), SegmentCompleted(2, 1, 0.72),
               SegmentCompleted(1, 2, 0.54), SegmentCompleted(3, 1, 0.39),
               SegmentCompleted(5, 1, 0.95), SegmentCompleted(4, 1, 0.06),
               SegmentCompleted(3, 2, 0.09), SegmentCompleted(4, 2, 0.42),
               SegmentCompleted(6, 1, 0.48), SegmentCompleted(7, 1, 0.64)]:
        s.on_event(ev)
    assert s.trial_target(3) == 4 and s.is_paused(4) and s.is_paused(6)
    # without trial 3: rung 1 = {4: .42, 1: .54} -> 4 promotable; rung 0 top 3 = {4, 1, 6} -> 6
    assert kinds(s.on_event(TrialInvalid(3))) == [("resume", 4, 4)]


def test_stop_once_scenario():
    s = halving(t=4, c=1, stop_once=True)
    s.start()
    # k=1: rank 0 < max(floor(1/2),1)=1 -> continues without pausing
    assert kinds(s.on_event(SegmentCompleted(1, 1, 0.5))) == [("resume", 1, 2)]
    assert kinds(s.on_event(SegmentCompleted(1, 2, 0.5))) == [("resume", 1, 4)]
    assert kinds(s.on_event(SegmentCompleted(1, 4, 0.5))) == [("top", 1), ("create", 2, 1)]
    # k=2, worse: rank 1 >= max(1,1) -> stops; a new trial takes the slot
    assert kinds(s.on_event(SegmentCompleted(2, 1, 0.9))) == [("stopped", 2), ("create", 3, 1)]
    # k=3, best: rank 0 < 1 -> continues
    assert kinds(s.on_event(SegmentCompleted(3, 1, 0.1))) == [("resume", 3, 2)]
    assert kinds(s.on_event(SegmentCompleted(3, 2, 0.9))) == [("stopped", 3), ("create", 4, 1)]
    # tie with the best (0.1): earlier arrival ranks first -> rank 1, k=4 -> floor 2 -> continues
    assert kinds(s.on_event(SegmentCompleted(4, 1, 0.1))) == [("resume", 4, 2)]
    assert kinds(s.on_event(SegmentCompleted(4, 2, 0.95))) == [("stopped", 4), ("done",)]


def test_ties_rank_earlier_arrival_first():
    s = halving(t=4, c=2, n=2, d=2.0, L=2)
    s.start()
    s.on_event(SegmentCompleted(2, 1, 0.5))  # -> create 3
    acts = s.on_event(SegmentCompleted(1, 1, 0.5))  # k=2, top 1: trial 2 (arrived first)
    assert kinds(acts) == [("resume", 2, 2)]


def test_larger_is_better():
    s = halving(t=4, c=1, n=2, d=2.0, L=2, smaller_is_better=False)
    s.start()
    s.on_event(SegmentCompleted(1, 1, 0.1))
    assert kinds(s.on_event(SegmentCompleted(2, 1, 0.9))) == [("resume", 2, 2)]
    assert s.rungs()[0].best_metric == 0.9


def test_nan_is_worst_and_never_promoted():
    s = halving(t=3, c=1, n=2, d=2.0, L=2)
    s.start()
    s.on_event(SegmentCompleted(1, 1, math.nan))
    acts = s.on_event(SegmentCompleted(2, 1, math.nan))  # k=2, top 1 is NaN: not promotable
    assert kinds(acts) == [("create", 3, 1)]
    assert s.rungs()[0].best_metric is None
    acts = s.on_event(SegmentCompleted(3, 1, 5.0))  # k=3, floor 1: trial 3 ranks first
    assert kinds(acts) == [("resume", 3, 2)]


def test_failed_trial_recorded_as_worst_and_counts():
    s = halving(t=3, c=1, n=2, d=2.0, L=2)
    s.start()
    acts = s.on_event(TrialFailed(1))
    assert kinds(acts) == [("create", 2, 1)]
    assert s.rungs()[0].completed == 1
    s.on_event(SegmentCompleted(2, 1, 1.0))  # k=2: top 1 = trial 2 -> promoted
    assert s.trial_target(2) == 2
    assert s.trial_status(1) == "failed"
    with pytest.raises(ValueError):
        s.on_event(TrialFailed(1))


def test_invalid_trial_replaced_and_not_counted():
    s = halving(t=2, c=1, n=2, d=2.0, L=2)
    s.start()
    acts = s.on_event(TrialInvalid(1))
    assert kinds(acts) == [("create", 2, 1)]
    s.on_event(SegmentCompleted(2, 1, 1.0))  # -> create 3 (only one valid so far)
    assert s.trial_target(3) == 1
    acts = s.on_event(SegmentCompleted(3, 1, 0.5))
    assert kinds(acts) == [("resume", 3, 2)]
    # invalid while training toward rung 1: it leaves rung 0 too and is replaced
    acts = s.on_event(TrialInvalid(3))
    assert kinds(acts) == [("create", 4, 1)]
    assert s.rungs()[0].completed == 1


def test_bad_events_raise():
    s = halving(t=2, c=1)
    s.start()
    with pytest.raises(ValueError):
        s.on_event(SegmentCompleted(1, 2, 0.5))  # wrong length
    with pytest.raises(ValueError):
        s.on_event(SegmentCompleted(99, 1, 0.5))  # unknown trial
    s.on_event(SegmentCompleted(1, 1, 0.5))
    with pytest.raises(ValueError):
        s.on_event(SegmentCompleted(1, 1, 0.5))  # paused, not training
    with pytest.raises(ValueError):
        s.on_event(TrialInvalid(42))


def test_trial_ids_global_and_initial_actions_in_bracket_order():
    cfg = SearcherConfig(max_length=1000, max_trials=16, divisor=4, max_concurrent_trials=16,
                         mode="conservative")
    s = make_searcher(cfg, SPACE, 3)
    acts = s.start()
    assert [a.trial_id for a in acts] == list(range(1, 1 + 6 + 3 + 1))
    assert [a.bracket for a in acts] == [0] * 6 + [1] * 3 + [2]
    assert [a.length for a in acts] == [62] * 6 + [250] * 3 + [1000]


def test_hparams_seeded_and_plain_python():
    cfg = SearcherConfig(max_length=16, max_trials=10, max_concurrent_trials=4)
    a = [x.hparams for x in make_searcher(cfg, SPACE, 5).start()]
    b = [x.hparams for x in make_searcher(cfg, SPACE, 5).start()]
    c = [x.hparams for x in make_searcher(cfg, SPACE, 6).start()]
    assert a == b and a != c
    assert all(type(h["lr"]) is float and type(h["n"]) is int for h in a)


def test_search_done_once_and_no_actions_after():
    s = halving(t=1, c=1, n=1, L=5)
    assert kinds(s.start()) == [("create", 1, 5)]
    assert kinds(s.on_event(SegmentCompleted(1, 5, 0.0))) == [("top", 1), ("done",)]
    assert s.done
    with pytest.raises(ValueError):
        s.on_event(SegmentCompleted(1, 5, 0.0))


def test_random_searcher():
    cfg = SearcherConfig(name="random", max_length=30, max_trials=5, max_concurrent_trials=2)
    s = make_searcher(cfg, SPACE, 1)
    acts = s.start()
    assert kinds(acts) == [("create", 1, 30), ("create", 2, 30)]
    assert kinds(s.on_event(TrialInvalid(1))) == [("create", 3, 30)]  # replaced
    seen = 0
    live = [2, 3]
    while live:
        t = live.pop(0)
        for a in s.on_event(SegmentCompleted(t, 30, 1.0)):
            if isinstance(a, CreateTrial):
                live.append(a.trial_id)
        seen += 1
    assert seen == 5 and s.done


def test_grid_searcher_tries_every_point_once():
    sp, _ = parse_space({"a": {"type": "categorical", "vals": ["x", "y"]},
                         "b": {"type": "int", "minval": 0, "maxval": 10, "count": 3}})
    cfg = SearcherConfig(name="grid", max_length=3, max_trials=1, max_concurrent_trials=0)
    s = make_searcher(cfg, sp, 0)
    acts = s.start()
    assert [a.hparams for a in acts] == sp.grid()
    assert len(acts) == 6
    assert kinds(s.on_event(TrialInvalid(1))) == []  # not replaced
    for t in range(2, 6):
        s.on_event(SegmentCompleted(t, 3, 0.0))
    assert kinds(s.on_event(SegmentCompleted(6, 3, 0.0))) == [("top", 6), ("done",)]


def test_single_searcher():
    cfg = SearcherConfig(name="single", max_length=9, max_trials=1)
    s = make_searcher(cfg, SPACE, 0)
    assert kinds(s.start()) == [("create", 1, 9)]
    assert kinds(s.on_event(SegmentCompleted(1, 9, 0.3))) == [("top", 1), ("done",)]


def test_sorted_keys_against_a_list():
    rnd = random.Random(0)
    sk, ref = SortedKeys(), []
    for i in range(5000):
        if ref and rnd.random() < 0.3:
            k = rnd.choice(ref)
            ref.remove(k)
            sk.remove(k)
        else:
            k = (rnd.randint(0, 1), rnd.randint(0, 300), i)
            ref.append(k)
            sk.add(k)
        if i % 97 == 0:
            ref.sort()
            assert list(sk) == ref and len(sk) == len(ref)
            probe = (0, rnd.randint(0, 300), rnd.randint(0, 5000))
            assert sk.rank(probe) == sum(1 for x in ref if x < probe)
            assert sk.count_le(probe) == sum(1 for x in ref if x <= probe)
            if ref:
                assert sk.first() == ref[0] and sk[len(ref) // 2] == ref[len(ref) // 2]
    with pytest.raises(ValueError):
        sk.remove((5, 5, 5))


def test_rung_keys_order_like_metric_then_arrival():
    from asha_hpc.searcher.asha import key_arrival, key_metric, key_trial, make_key, worst_key

    rnd = random.Random(3)
    special = [0.0, -0.0, math.inf, -math.inf, 5e-324, -5e-324, 1.7976931348623157e308,
               -1.7976931348623157e308, 1.0, -1.0]
    metrics = (special + [rnd.uniform(-1e6, 1e6) for _ in range(300)]
               + [rnd.choice(special) for _ in range(50)])
    entries = [(m, i, rnd.randint(1, 2**40 - 1)) for i, m in enumerate(metrics)]
    keys = [make_key(m, a, t) for m, a, t in entries]
    keys.append(worst_key(len(entries), 9))
    keys.append(make_key(math.nan, len(entries) + 1, 8))
    order = sorted(range(len(entries)), key=lambda i: (entries[i][0], entries[i][1]))
    assert sorted(keys) == [keys[i] for i in order] + keys[-2:]
    for (m, a, t), k in zip(entries, keys):
        assert key_metric(k) == m and key_arrival(k) == a and key_trial(k) == t
    assert key_metric(keys[-1]) is None and key_metric(keys[-2]) is None

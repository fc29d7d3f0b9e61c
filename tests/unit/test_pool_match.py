"""pool.match: which waiting job gets which trial's next segment (pure, no master)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.master.pool import CONTINUE, IDLE, POOL, Worker, match


def worker(i: int, kind: str = POOL, trial: int | None = None) -> Worker:
    return Worker(id=f"w{i:04d}", kind=kind, status=IDLE, slot=1, trial=trial)


def always(w: Worker, t: int) -> bool:
    return True


def test_a_pool_worker_takes_its_own_trial_first_then_the_first_waiting():
    a, b = worker(0, trial=7), worker(1, trial=3)
    out = match([a, b], [5, 7, 9], always)
    assert [(w.id, t) for w, t in out.plan] == [("w0000", 7), ("w0001", 5)]
    assert out.release == [] and out.waiting == []


def test_a_continuing_job_takes_only_its_own_trial():
    c = worker(0, CONTINUE, trial=4)
    assert match([c], [1, 2], always).release == [c]
    out = match([c], [1, 4], always)
    assert [(w.id, t) for w, t in out.plan] == [("w0000", 4)]


def test_a_segment_that_does_not_fit_is_left_for_another_worker():
    short, long = worker(0), worker(1)

    def fit(w: Worker, t: int) -> bool:
        return w is long or t != 8  # trial 8's segment is too long for w0000's time left

    out = match([short, long], [8], fit)
    assert [(w.id, t) for w, t in out.plan] == [("w0001", 8)]
    assert out.release == [short]  # segments wait, none fits it: it leaves


def test_a_pool_worker_given_nothing_waits_when_every_waiting_segment_was_handed_over():
    a, b = worker(0), worker(1)
    out = match([a, b], [3], always)
    assert [(w.id, t) for w, t in out.plan] == [("w0000", 3)]
    assert out.waiting == [b] and out.release == []  # pool.surplus decides whether b stays


workers_st = st.lists(
    st.tuples(st.sampled_from([POOL, CONTINUE]), st.one_of(st.none(), st.integers(0, 9))),
    max_size=8).map(lambda xs: [worker(i, k, t) for i, (k, t) in enumerate(xs)])
todo_st = st.lists(st.integers(0, 9), unique=True, max_size=8)


@settings(max_examples=300, deadline=None)
@given(workers_st, todo_st, st.sets(st.tuples(st.integers(0, 7), st.integers(0, 9))))
def test_match_hands_each_segment_once_and_each_worker_one_decision(idle, todo, misfits):
    def fit(w: Worker, t: int) -> bool:
        return (int(w.id[1:]), t) not in misfits

    out = match(idle, todo, fit)
    given_to = [t for _, t in out.plan]
    assert len(given_to) == len(set(given_to))  # no segment to two workers
    decided = [w.id for w, _ in out.plan] + [w.id for w in out.release + out.waiting]
    assert sorted(decided) == sorted(w.id for w in idle)  # each worker exactly one decision
    assert set(given_to) <= set(todo)
    for w, t in out.plan:
        assert fit(w, t)
        if w.kind == CONTINUE:
            assert t == w.trial
    taken: set[int] = set()
    plan = dict((w.id, t) for w, t in out.plan)
    for w in idle:  # in order: the rule each worker met with what was left at its turn
        left = [t for t in todo if t not in taken]
        own_ok = w.trial in left and fit(w, w.trial)
        if w.kind == CONTINUE:
            assert (w.id in plan) == own_ok
        elif own_ok:
            assert plan[w.id] == w.trial  # its own trial first
        else:
            fitting = [t for t in left if fit(w, t)]
            assert plan.get(w.id) == (fitting[0] if fitting else None)
        if w.id in plan:
            taken.add(plan[w.id])
        elif w in out.waiting:  # kept only when nothing is left for anyone
            assert w.kind == POOL and not left
        else:
            assert w.kind == CONTINUE or left

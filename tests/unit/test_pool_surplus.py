"""pool.surplus, the rule that releases idle pool workers no segment can come for, and what
the master counts for it (the search-level test: tests/local/test_pool_tail.py)."""
from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as hs

from asha_hpc.config import parse_config
from asha_hpc.master.loop import Master
from asha_hpc.master.pool import BUSY, CONTINUE, IDLE, POOL, Pool, Worker, surplus
from asha_hpc.master.state import PENDING, RUNNING
from asha_hpc.protocol.expdir import ExpDir


def W(i: int, job: str | None = None) -> Worker:
    return Worker(id=f"w{i:04d}", kind=POOL, job_id=job or f"j{i}", status=IDLE)


def ids(ws) -> list[str]:
    return [w.id for w in ws]


def test_once_the_searcher_hands_out_nothing_more_every_spare_worker_goes():
    spare = [W(0), W(1)]
    assert ids(surplus(spare, waiting=3, unfreed=2, more_work=False)) == ["w0000", "w0001"]


def test_a_pool_that_runs_every_segment_keeps_no_spare():
    # each running segment's end frees its own worker, which takes what that end brings
    assert ids(surplus([W(0), W(1), W(2)], waiting=0, unfreed=0, more_work=True)) == \
        ["w0000", "w0001", "w0002"]


def test_spares_stay_for_queued_segments_and_for_segment_jobs_that_will_end():
    spare = [W(0), W(1), W(2), W(3)]
    assert ids(surplus(spare, waiting=1, unfreed=0, more_work=True)) == ["w0001", "w0002", "w0003"]
    assert ids(surplus(spare, waiting=0, unfreed=2, more_work=True)) == ["w0002", "w0003"]
    assert surplus(spare, waiting=2, unfreed=3, more_work=True) == []


def test_lanes_of_a_job_that_runs_a_segment_are_kept_first_and_never_released():
    # w0001 and w0002 are lanes of job a, whose other lane runs a segment: they hold no GPU
    # of their own, so they are the spares kept, and the only ones kept beyond the need
    spare = [W(0, "x"), W(1, "a"), W(2, "a"), W(3, "y")]
    assert ids(surplus(spare, waiting=1, unfreed=0, more_work=True, busy_jobs={"a"})) == \
        ["w0000", "w0003"]
    assert ids(surplus(spare, waiting=0, unfreed=0, more_work=True, busy_jobs={"a"})) == \
        ["w0000", "w0003"]
    # a kept lane keeps its job's other idle lanes
    two = [W(0, "b"), W(1, "b"), W(2, "z")]
    assert ids(surplus(two, waiting=1, unfreed=0, more_work=True)) == ["w0002"]


workers_st = hs.lists(hs.tuples(hs.integers(0, 30), hs.sampled_from(["a", "b", "c", None])),
                      max_size=12, unique_by=lambda t: t[0])


@settings(max_examples=300, deadline=None)
@given(workers_st, hs.integers(-2, 6), hs.integers(0, 6), hs.booleans(),
       hs.sets(hs.sampled_from(["a", "b", "x"])))
def test_surplus_releases_only_what_no_segment_can_use(raw, waiting, unfreed, more, busy):
    spare = [Worker(id=f"w{i:04d}", kind=POOL, job_id=(j and f"{j}") or f"own{i}", status=IDLE)
             for i, j in raw]
    out = surplus(spare, waiting, unfreed, more, busy)
    assert surplus(spare, waiting, unfreed, more, busy) == out  # pure, deterministic
    assert len(ids(out)) == len(set(ids(out))) and set(ids(out)) <= set(ids(spare))
    kept = [w for w in spare if w not in out]
    if not more:
        assert kept == []
        return
    # never fewer spares than segments that may want one; a released worker's job runs nothing
    assert len(kept) >= min(len(spare), max(waiting + unfreed, 0))
    assert not any(w.job_id in busy for w in out)
    # beyond the need, only lanes of a job that is held anyway stay: the jobs kept for
    # themselves (not running a segment in another lane) are no more than the need
    assert len({w.job_id for w in kept if w.job_id not in busy}) <= max(waiting + unfreed, 0)


def test_the_master_keeps_spares_for_segment_jobs_and_continuing_jobs_only(tmp_path):
    """Running segments whose end frees no pool worker: a segment job (no worker) and a job
    that continues only its own trial; one on a pool worker frees that worker itself."""
    cfg = parse_config({"name": "x", "entrypoint": "m:f", "backend": "simulated",
                        "searcher": {"name": "random", "metric": "loss", "max_length": 4,
                                     "max_trials": 8, "max_concurrent_trials": 4},
                        "hyperparameters": {}, "simulated": {"workers": 4, "pool": 4}}, "/tmp")
    m = Master(ExpDir.create(tmp_path / "exp"), cfg, progress=lambda s: None)
    pool = Pool()
    for w in (Worker(id="w0000", kind=POOL, job_id="1", status=BUSY),
              Worker(id="w0001", kind=POOL, job_id="2", status=IDLE),
              Worker(id="w0002", kind=POOL, job_id="3", status=IDLE),
              Worker(id="w0003", kind=POOL, job_id="4", status=IDLE),
              Worker(id="c1", kind=CONTINUE, job_id="9", status=BUSY)):
        pool._set(w, w.status)
    live = [SimpleNamespace(worker="w0000", status=RUNNING),
            SimpleNamespace(worker=None, status=RUNNING), SimpleNamespace(worker="c1", status=RUNNING)]
    trials = {7: SimpleNamespace(fresh=False), 8: SimpleNamespace(fresh=True)}
    state = SimpleNamespace(pool=pool, live=lambda: live, todo=[], searcher_done=False,
                            trials=trials)
    m.state = state
    spare = [pool.workers[w] for w in ("w0001", "w0002", "w0003")]
    assert ids(m._surplus(spare)) == ["w0003"]  # two kept: the segment job's, the continuing one's
    state.todo = [7]  # a segment queued but held back: one more kept
    assert m._surplus(spare) == []
    state.todo = [8]  # one that runs in a fresh process, a job of its own: none kept for it
    assert ids(m._surplus(spare)) == ["w0003"]
    # a job of its own still queued: none kept for it. The scheduler may hold it for the very
    # GPUs the kept workers sit on idle (a QOS limit on jobs, local.max_parallel), and it
    # waited for them until their idle timeout
    live.append(SimpleNamespace(worker=None, status=PENDING))
    assert ids(m._surplus(spare)) == ["w0003"]
    live[-1].status = RUNNING  # once it runs, its end may bring a segment: one kept for it
    assert m._surplus(spare) == []
    state.searcher_done, state.todo = True, []
    assert ids(m._surplus(spare)) == ["w0001", "w0002", "w0003"]

"""The best-vs-compute curve (plot, report) names after each result the trial ``best`` would:
the longest length first, then the metric, diverged trials left out. Kept incrementally (the
live report draws it every 30 s for searches of 10,000 trials); any sequence of results gives
what ranking all the trials' latest results anew would."""
import math
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from asha_hpc.views.observe import best_vs_compute

VALUES = st.one_of(st.sampled_from([0.1, 0.2, 0.5]), st.floats(-1, 1), st.just(float("nan")))
RESULTS = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 2), VALUES,
                             st.sampled_from(["completed", "completed", "error"])), max_size=40)


def ranked_anew(smaller, results):
    sign = 1.0 if smaller else -1.0
    latest, out = {}, []
    for trial, length, v, status in results:
        if status != "completed":
            continue
        if math.isfinite(v):
            latest[trial] = (length, v)
        else:
            latest.pop(trial, None)
        if latest:
            out.append(min(latest.values(), key=lambda x: (-x[0], sign * x[1]))[1])
    return out


@given(smaller=st.booleans(), steps=RESULTS)
def test_any_sequence_of_results_gives_the_best_ranking_them_anew_gives(smaller, steps):
    cfg = SimpleNamespace(searcher=SimpleNamespace(smaller_is_better=smaller, metric="m"))
    lengths: dict[int, int] = {}
    results, records = [], []
    for trial, grow, v, status in steps:  # a trial's length only grows
        lengths[trial] = lengths.get(trial, 1) + grow
        results.append((trial, lengths[trial], v, status))
        records.append({"kind": "result", "trial": trial, "status": status,
                        "length": lengths[trial], "metrics": {"m": v}})
    assert [y for _, y in best_vs_compute(cfg, records)] == ranked_anew(smaller, results)

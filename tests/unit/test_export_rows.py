"""``export``'s rows from a replayed journal: every reported value as a column, one spelling
of a missing number, and why an invalid trial's code rejected it."""
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.config import parse_config
from asha_hpc.master.state import replay
from asha_hpc.views.status import export_rows

CFG = parse_config({"name": "s", "entrypoint": "m:f",
                    "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 4,
                                 "max_trials": 2, "max_concurrent_trials": 2,
                                 "mode": "aggressive", "divisor": 2},
                    "hyperparameters": {"x": 1}}, "/tmp")


def rows(extra, invalid_why="max_depth 0 with tree_method exact"):
    recs = [{"kind": "init"},
            {"kind": "intent", "trial": 1, "segment": 0, "attempt": 0},
            {"kind": "result", "trial": 1, "segment": 0, "attempt": 0, "status": "completed",
             "length": 1, "metrics": {"loss": 0.5, **extra}},
            {"kind": "intent", "trial": 2, "segment": 0, "attempt": 0},
            {"kind": "result", "trial": 2, "segment": 0, "attempt": 0, "status": "invalid_hp",
             "error": invalid_why}]
    return {r["trial_id"]: r for r in export_rows(replay(CFG, recs))}


def test_an_invalid_trial_says_why_its_code_rejected_it():
    got = rows({})
    assert got[2]["state"] == "invalid" and got[2]["error"] == "max_depth 0 with tree_method exact"
    assert got[1]["error"] == ""


@given(value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(),
                       st.booleans(), st.text(max_size=8)))
def test_any_other_reported_value_is_a_cell_and_no_number_is_nan(value):
    """A diverged run's other metrics (grad_norm NaN) are empty cells, as the searcher's
    metric's; before, they were written ``nan`` and read back as a number by pandas."""
    cell = rows({"grad_norm": value})[1]["metrics.grad_norm"]
    if isinstance(value, float) and not math.isfinite(value):
        assert cell is None
    else:
        assert cell == value and type(cell) is type(value)


def test_each_trial_has_its_seed_its_wall_span_and_where_its_configuration_came_from():
    """The seed its code got (ASHA_TRIAL_SEED: experiment_seed + id), when its code first
    started and last ended over all its results (a failed attempt's included), and
    sampled_by on every row, random sampling too: exports of two searches share columns."""
    import datetime

    recs = [{"kind": "init"},
            {"kind": "intent", "trial": 1, "segment": 0, "attempt": 0},
            {"kind": "result", "trial": 1, "segment": 0, "attempt": 0, "status": "error",
             "error": "boom", "started": 1000.0, "ended": 1010.0},
            {"kind": "intent", "trial": 1, "segment": 0, "attempt": 1},
            {"kind": "result", "trial": 1, "segment": 0, "attempt": 1, "status": "completed",
             "length": 1, "metrics": {"loss": 0.5}, "started": 1100.0, "ended": 1150.5},
            {"kind": "intent", "trial": 2, "segment": 0, "attempt": 0}]
    cfg = parse_config({"name": "s", "entrypoint": "m:f",
                        "reproducibility": {"experiment_seed": 41},
                        "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 4,
                                     "max_trials": 2, "max_concurrent_trials": 2, "divisor": 2},
                        "hyperparameters": {"x": 1}}, "/tmp")
    got = {r["trial_id"]: r for r in export_rows(replay(cfg, recs))}
    assert got[1]["seed"] == 42 and got[2]["seed"] == 43
    start = datetime.datetime.fromisoformat(got[1]["started"])
    end = datetime.datetime.fromisoformat(got[1]["ended"])
    assert start.timestamp() == 1000.0 and end.timestamp() == 1150.0  # to the second
    assert start.utcoffset() is not None  # an unambiguous time
    assert got[2]["started"] == got[2]["ended"] == ""  # no result yet
    assert got[1]["sampled_by"] == got[2]["sampled_by"] == "random"


@settings(deadline=None)  # the first call imports pandas
@given(values=st.lists(st.one_of(st.text(max_size=6), st.integers(), st.floats(allow_nan=False),
                                 st.booleans(), st.none()), min_size=1, max_size=6))
def test_the_dataframe_takes_only_empty_cells_for_missing(values):
    """A user's categorical value "", "NA", "None" or "nan", a metric 0 or False: only the empty
    string (an empty CSV cell: no checkpoint, no error) becomes NaN; every other value stays."""
    import pytest

    pd = pytest.importorskip("pandas")
    from asha_hpc.views.results import frame

    df = frame([{"trial_id": i, "hparams.v": v} for i, v in enumerate(values)])
    for i, v in enumerate(values):
        got = df["hparams.v"].iloc[i]
        if v == "" or v is None:
            assert pd.isna(got), (v, got)
        else:
            assert not pd.isna(got) and got == v, (v, got)

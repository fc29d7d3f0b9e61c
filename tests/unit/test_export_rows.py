"""``export``'s rows from a replayed journal: every reported value as a column, one spelling
of a missing number, and why an invalid trial's code rejected it."""
import math

from hypothesis import given
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

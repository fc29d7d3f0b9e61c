"""What Optuna and Ray users hand a Trial by habit: a bare value as a result, the value and
the step swapped, another library's method names. Each is refused with what to write instead
(a FatalTrialError: every trial would repeat it); any other missing name stays a plain
AttributeError, so that ``hasattr`` and libraries that probe objects work as before."""
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asha_hpc.errors import FatalTrialError, MetricNotReported
from asha_hpc.job.trial import FOREIGN_NAMES, Trial


def trial(tmp: Path) -> Trial:
    return Trial(trial_id=1, hparams={"lr": 0.1}, trial_dir=tmp, run_dir=tmp / "run",
                 segments=[2], first_segment=0, metric="val_acc", key="t00001-s000-a00")


SCALARS = st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=8),
                    st.lists(st.floats(allow_nan=False), max_size=3))


@given(value=SCALARS)
def test_any_value_that_is_not_a_mapping_is_refused_by_segment_report(tmp_path_factory, value):
    seg = next(trial(tmp_path_factory.mktemp("t")).segments())
    with pytest.raises(MetricNotReported, match=r"segment\.report\(val_acc=\.\.\.\)"):
        seg.report(value)


@given(value=SCALARS, step=st.integers(0, 10**6))
def test_optunas_report_order_is_refused_naming_the_right_one(tmp_path_factory, value, step):
    t = trial(tmp_path_factory.mktemp("t"))
    with pytest.raises(MetricNotReported, match=r"trial\.report_metrics\(step, val_acc=value\)"):
        t.report_metrics(value, step)


@given(name=st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True))
def test_any_other_missing_name_is_a_plain_attribute_error(tmp_path_factory, name):
    t = trial(tmp_path_factory.mktemp("t"))
    if hasattr(Trial, name) or name in vars(t):
        return
    foreign = name.startswith("suggest_") or name in FOREIGN_NAMES
    with pytest.raises(AttributeError) as got:
        getattr(t, name)
    assert isinstance(got.value, FatalTrialError) == foreign
    assert not hasattr(t, name)  # hasattr answers, whichever it is


@pytest.mark.parametrize("name", ["suggest_float", "suggest_categorical", "report",
                                  "should_prune", "params", "number", "set_user_attr"])
def test_optunas_names_say_ours(tmp_path, name):
    with pytest.raises(FatalTrialError, match=r"README: Moving from Ray Tune or Optuna"):
        getattr(trial(tmp_path), name)


def test_dunder_lookups_are_plain_attribute_errors(tmp_path):
    """copy, pickle and frameworks look up special names that a Trial lacks."""
    with pytest.raises(AttributeError) as got:
        trial(tmp_path).__suggest_report__  # noqa: B018
    assert not isinstance(got.value, FatalTrialError)

"""SegmentWalk, what both framework callbacks share, with arbitrary logged metrics (names and
values as frameworks log them): the scalars are reported, the monitored one under the
searcher's name too, the rest left out; the checkpoint carries them for a job that resumes at
the segment's end. No framework needed."""
from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.integrations.segments import (
    METRICS_FILE,
    IntegrationError,
    SegmentWalk,
    saved_metrics,
    scalar_metrics,
)
from asha_hpc.job.trial import Trial
from asha_hpc.protocol.expdir import ExpDir


class Tensor:
    """Duck-typed like a torch tensor: numel() and item()."""

    def __init__(self, values):
        self.values = values

    def numel(self):
        return len(self.values)

    def item(self):
        assert len(self.values) == 1
        return self.values[0]


def trial_in(root: Path, lengths, metric="score", key="t00001-s000-a00") -> Trial:
    exp = ExpDir(root) if root.exists() else ExpDir.create(root)
    return Trial(trial_id=1, hparams={}, trial_dir=exp.trial_dir(1), run_dir=exp.run_dir(1, key),
                 segments=lengths, first_segment=0, metric=metric, key=key, length_unit="epochs",
                 max_length=lengths[-1])


names = st.text(min_size=1, max_size=12)
scalars = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=32),
                    st.integers(-10**6, 10**6))
values = st.one_of(scalars, scalars.map(lambda v: Tensor([v])),
                   st.lists(scalars, min_size=2, max_size=3).map(Tensor), st.text(max_size=5))


@settings(max_examples=40, deadline=None)
@given(logged=st.dictionaries(names, values, max_size=6), monitor=names, value=scalars)
def test_finish_reports_the_scalars_and_the_monitor_under_the_searchers_name(logged, monitor, value):
    logged = dict(logged)
    logged[monitor] = Tensor([value])
    with tempfile.TemporaryDirectory() as d:
        t = trial_in(Path(d) / "exp", [2, 4])
        walk = SegmentWalk(t, monitor, "cb")
        assert walk.start(0, "resume") and walk.target == 2
        assert walk.finish(2, logged, lambda folder: (folder / "model.bin").write_bytes(b"x"))
        assert walk.target == 4  # the job's second segment, in place
        want = scalar_metrics(logged)
        assert set(want) == {k for k, v in logged.items()
                             if not isinstance(v, str) and not (isinstance(v, Tensor) and v.numel() != 1)}
        got = t.reports[0].reported
        assert got["score"] == value
        assert all(got[k] == v for k, v in want.items() if k != "score")
        saved = saved_metrics(t.latest_checkpoint)
        assert saved == json.loads(json.dumps(dict(want, score=value)))
        assert (t.latest_checkpoint / "model.bin").read_bytes() == b"x"


def test_a_job_resuming_at_the_segments_end_reports_what_was_saved(tmp_path):
    t = trial_in(tmp_path / "exp", [3])
    walk = SegmentWalk(t, "val", "cb")
    walk.start(0, "resume")
    walk.finish(3, {"val": 0.5, "acc": 0.9}, lambda folder: None)
    # the job died before its result went out: the retry starts where the checkpoint is
    t2 = trial_in(tmp_path / "exp", [3], key="t00001-s000-a01")
    walk2 = SegmentWalk(t2, "val", "cb")
    assert walk2.start(3, "resume") is False  # nothing left to train
    assert t2.reports[0].reported == {"val": 0.5, "acc": 0.9, "score": 0.5}


def test_a_checkpoint_from_elsewhere_past_the_segment_is_refused(tmp_path):
    t = trial_in(tmp_path / "exp", [3])
    with t.save_checkpoint(length=5) as folder:
        (folder / "x").write_text("")
    assert not (t.latest_checkpoint / METRICS_FILE).exists()
    with pytest.raises(IntegrationError, match="past the segment's length 3"):
        SegmentWalk(trial_in(tmp_path / "exp", [3], key="t00001-s000-a01"), "val", "cb").start(5, "r")


def test_nan_is_reported_as_is_not_dropped(tmp_path):
    t = trial_in(tmp_path / "exp", [1])
    walk = SegmentWalk(t, "val", "cb")
    walk.start(0, "resume")
    walk.finish(1, {"val": Tensor([float("nan")])}, lambda folder: None)
    assert math.isnan(t.reports[0].reported["score"])  # a diverged trial, the searcher's call

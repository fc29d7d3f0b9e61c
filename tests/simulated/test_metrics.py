"""Metrics as real training scripts report them (issue 17, part 1): any name, any number-like
value, through report -> metrics.jsonl / result -> journal -> status, best, export, plot, report.
"""
import csv
import io
import json
import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from asha_hpc import cli
from asha_hpc.backends.simulated import SimulatedBackend
from asha_hpc.config import parse_config
from asha_hpc.job.trial import Trial
from asha_hpc.master.loop import Master
from asha_hpc.master.state import PAUSED
from asha_hpc.protocol.expdir import ExpDir, atomic_write, atomic_write_json
from asha_hpc.protocol.metrics import as_number, diverged, plain_metrics, plain_value, read_point
from asha_hpc.views.observe import curve_rows, flat_curve_rows
from asha_hpc.views.status import open_experiment

torch = pytest.importorskip("torch")

# names real scripts use, and the awkward ones
NAMES = ["step", "time", "epoch", "self", "metrics", "val/loss", "acc,top1", "with space",
         'quo"te', "ünïcødé λ", "trial_id", "key", "state", "length", "", "metrics.step",
         "<b>&amp;</b>", "cost $\\bad{$ 50%", "a$b"]
names = st.one_of(st.sampled_from(NAMES), st.text(min_size=0, max_size=12))
finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
values = st.one_of(
    finite, st.integers(-10**6, 10**6), st.booleans(), st.just(math.nan), st.just(math.inf),
    st.just(-math.inf), st.text(max_size=8), finite.map(np.float32), finite.map(np.float64),
    st.integers(-1000, 1000).map(np.int64), finite.map(np.array), finite.map(torch.tensor),
    st.integers(-1000, 1000).map(torch.tensor), finite.map(Decimal),
    st.sampled_from([10**400, -10**400, 2**1024]),  # ints no float holds: Python's have no bound
)


def make_trial(tmp_path: Path, metric: str = "val_loss") -> Trial:
    exp = ExpDir.create(tmp_path / "exp")
    self_exp.append(exp)
    return Trial(trial_id=1, hparams={}, trial_dir=exp.trial_dir(1),
                 run_dir=exp.run_dir(1, "t00001-s000-a00"), segments=[4], first_segment=0,
                 metric=metric, key="t00001-s000-a00")


self_exp: list = []


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


# ----------------------------------------------------------------------------- values
def test_number_like_values_become_plain_numbers():
    assert plain_value(np.float32(0.5)) == 0.5 and type(plain_value(np.float32(0.5))) is float
    assert plain_value(np.int64(3)) == 3 and type(plain_value(np.int64(3))) is int
    assert plain_value(np.array(2.5)) == 2.5
    assert plain_value(np.bool_(True)) is True
    assert plain_value(torch.tensor(0.25)) == 0.25
    assert plain_value(torch.tensor(7)) == 7
    assert plain_value(torch.tensor(1.5, requires_grad=True) * 2) == 3.0
    assert plain_value(Decimal("0.125")) == 0.125 and plain_value(Fraction(1, 4)) == 0.25
    assert math.isnan(plain_value(float("nan")))
    assert plain_value("n/a") == "n/a" and plain_value(None) is None
    assert plain_value(np.array([1.0, 2.0])) == [1.0, 2.0]  # not a scalar: kept, not a number
    assert as_number(np.array([1.0, 2.0])) is None and as_number("0.5") is None
    assert isinstance(plain_value(object()), str)
    assert as_number(True) == 1 and as_number(torch.tensor(2.0)) == 2.0
    assert diverged(torch.tensor(float("inf"))) and diverged(np.float64("nan"))
    assert not diverged(1e308) and not diverged("nan")


def test_old_flat_metrics_lines_still_read():
    assert read_point({"step": 3, "time": 1.0, "loss": 0.5}) == {
        "step": 3, "time": 1.0, "metrics": {"loss": 0.5}}
    assert read_point({"step": 3, "time": 1.0, "metrics": {"step": 9}}) == {
        "step": 3, "time": 1.0, "metrics": {"step": 9}}
    assert read_point({"time": 1.0}) is None and read_point([1]) is None


# ----------------------------------------------------------------------------- the trial API
def test_report_takes_the_names_scripts_use(tmp_path):
    trial = make_trial(tmp_path, metric="val/loss")
    (seg,) = list(trial.segments())
    trial.report_metrics(1, loss=torch.tensor(0.9), step=100, time=12.5, epoch=0, self=1)
    trial.report_metrics(step=200, loss=0.8)  # the step as a keyword, as before
    trial.report_metrics(300, {"train/loss": np.float32(0.75)})
    with pytest.raises(ValueError, match="'val/loss'"):
        seg.report(loss=1.0)
    with pytest.raises(ValueError, match="must be a number"):
        seg.report({"val/loss": "low"})
    seg.report({"val/loss": torch.tensor(0.5), "acc,top1": np.float64(0.9)}, step=400,
               time="late", metrics=3)
    assert seg.reported == {"val/loss": 0.5, "acc,top1": 0.9, "step": 400, "time": "late",
                            "metrics": 3}
    rows = curve_rows(self_exp[-1])
    assert [r["step"] for r in rows] == [1, 200, 300, 4]
    assert rows[0]["metrics"] == {"loss": pytest.approx(0.9), "step": 100, "time": 12.5,
                                  "epoch": 0, "self": 1}
    assert rows[-1]["metrics"]["time"] == "late" and isinstance(rows[-1]["time"], float)
    flat = flat_curve_rows(rows)
    assert flat[0]["step"] == 1 and flat[0]["metrics.step"] == 100
    assert flat[0]["metrics.time"] == 12.5


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(metrics=st.dictionaries(names, values, max_size=6), value=values)
def test_any_name_and_value_survive_report_and_curves(tmp_path_factory, metrics, value):
    tmp = tmp_path_factory.mktemp("m")
    trial = make_trial(tmp, metric="val/loss")
    (seg,) = list(trial.segments())
    sent = dict(metrics)
    sent["val/loss"] = value
    trial.report_metrics(7, metrics)
    if as_number(value) is None:
        with pytest.raises(ValueError):
            seg.report(sent)
        return
    seg.report(sent)
    want = plain_metrics(sent)
    assert all(same(seg.reported[k], v) for k, v in want.items())
    rows = curve_rows(self_exp[-1])
    if plain_metrics(metrics) == want:  # the point already holds the result: one point
        assert len(rows) == 1 and rows[0]["step"] == 7
    else:
        assert len(rows) == 2 and rows[1]["step"] == 4
    assert set(rows[-1]["metrics"]) == set(want)
    assert all(same(rows[-1]["metrics"][k], v) for k, v in want.items())
    buf = io.StringIO()  # the curves as CSV: one column per name, whatever its characters
    flat = flat_curve_rows(rows)
    cols = list(dict.fromkeys(k for r in flat for k in r))
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(flat)
    back = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert list(back[0]) == cols and len(cols) >= 6 + len(want)


# ----------------------------------------------------------------------------- the whole way
class ScriptLikeBackend(SimulatedBackend):
    """The simulated backend, but each result carries the metrics a given report function
    returns (any names and values), and its curve point is written by the real Trial."""

    def __init__(self, *a, report, **kw) -> None:
        super().__init__(*a, **kw)
        self.report = report

    def _publish(self, job, spec, extra, broken):
        metrics = self.report(spec.trial_id, spec.length)
        trial = Trial(trial_id=spec.trial_id, hparams=spec.hparams,
                      trial_dir=self.exp_dir / "trials" / str(spec.trial_id),
                      run_dir=self.exp_dir / "trials" / str(spec.trial_id) / "runs" / spec.key,
                      segments=[spec.length], first_segment=spec.segment, metric=spec.metric,
                      key=spec.key)
        (seg,) = list(trial.segments())
        seg.report(metrics)
        atomic_write_json(self.exp_dir / "inbox" / f"{spec.key}.result.json", dict({
            "type": "result", "trial": spec.trial_id, "segment": spec.segment,
            "attempt": spec.attempt, "key": spec.key, "status": "completed",
            "metrics": seg.reported, "length": spec.length, "error": None,
            "checkpoint": None, "ended": job.end, "host": "simulated",
            "job_id": "sim-" + spec.key}, **extra), durable=False)


def run_search(root: Path, metric: str, report, smaller: bool = True) -> Path:
    exp = ExpDir.create(root)
    cfg = parse_config({
        "name": "names", "entrypoint": "unused:train",
        "searcher": {"name": "adaptive_asha", "metric": metric, "max_length": {"epochs": 16},
                     "max_trials": 8, "max_concurrent_trials": 4, "mode": "standard",
                     "divisor": 4, "smaller_is_better": smaller},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
        "reproducibility": {"experiment_seed": 3}, "backend": "simulated",
        "simulated": {"unit_seconds": 10, "startup_seconds": 5, "workers": 4}}, "/tmp")
    cfg.experiment_dir = str(exp.root)
    atomic_write(exp.config, yaml.safe_dump(cfg.to_dict(), sort_keys=False).encode())
    backend = ScriptLikeBackend(exp.root, cfg.simulated, seed=cfg.experiment_seed, report=report)
    st_ = Master(exp, cfg, backend=backend, progress=lambda s: None).run()
    assert st_.lifecycle == "completed"
    return exp.root


def cli_out(capsys, *args) -> str:
    rc = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    assert rc == 0, out.err
    return out.out


def strict_json(text: str):
    def bad(c):
        raise ValueError(f"not JSON: {c}")
    return json.loads(text, parse_constant=bad)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# a blank metric name (all whitespace, '\x85' included) is a config error (test_config.py)
@given(metric=names.filter(str.strip), extras=st.dictionaries(names, values, max_size=4),
       bad=st.sets(st.integers(1, 8), max_size=3), bad_value=st.sampled_from(
           [math.nan, math.inf, -math.inf, 10**400, -10**400]), smaller=st.booleans())
@example(metric="val\rloss", extras={"acc\r,top1": 1.0}, bad=set(), bad_value=math.nan,
         smaller=True)  # a lone '\r' in a CSV header or cell
@example(metric="loss", extras={"step": 10**400}, bad={2, 5}, bad_value=10**400,
         smaller=True)  # an int no float holds: it crashed the master, and each resume
def test_any_metric_name_through_every_view(tmp_path_factory, capsys, metric, extras, bad,
                                            bad_value, smaller):
    def report(tid, length):
        m = dict(extras)
        m[metric] = bad_value if tid in bad else torch.tensor(1.0 / (tid * length))
        return m

    root = run_search(tmp_path_factory.mktemp("e") / "exp", metric, report, smaller)
    exp, cfg, records, state = open_experiment(root)
    div = {t.id for t in state.trials.values() if t.diverged}
    assert div == bad & set(state.trials)
    for t in state.trials.values():  # a diverged trial is never promoted past its first rung
        if t.diverged:
            assert len(t.rung_metrics) == 1 and t.status != PAUSED
    ranked = state.ranked()
    assert ranked and not {t.id for t in ranked} & div
    status = strict_json(cli_out(capsys, "status", root, "--json"))
    assert status["metric"] == metric and status["best"]["trial_id"] not in div
    assert {d["trial_id"] for d in status["diverged"]} == div
    text = cli_out(capsys, "status", root)
    assert ("diverged (" in text) == bool(div)
    best = strict_json(cli_out(capsys, "best", root, "--json"))
    assert best[0]["trial_id"] == ranked[0].id
    rows = list(csv.DictReader(io.StringIO(cli_out(capsys, "export", root))))
    col = metric if metric not in ("trial_id", "bracket", "state", "diverged", "length",
                                   "restarts", "compute_s", "checkpoint") and not metric.startswith(
        "hparams.") else f"metrics.{metric}"
    assert len(rows) == len(state.trials) and col in rows[0]
    assert {r["trial_id"] for r in rows if r[col] == ""} >= {str(i) for i in div}
    assert {r["trial_id"] for r in rows if r["diverged"] == "True"} == {str(i) for i in div}
    curves = Path(root) / "curves.csv"
    cli_out(capsys, "export", root, "--curves", curves, "-o", Path(root) / "t.csv")
    with open(curves, newline="") as f:
        crow = list(csv.DictReader(f))
    assert len(crow) == len(curve_rows(exp)) == state.segments_completed
    assert len(crow[0]) == 6 + len(plain_metrics(report(1, 1)))
    cli_out(capsys, "plot", root, "-o", Path(root) / "p.png")
    assert (Path(root) / "p.png").stat().st_size > 1000
    cli_out(capsys, "report", root, "-o", Path(root) / "r.html", "--svg")
    html = (Path(root) / "r.html").read_text()
    assert "<b>&amp;</b>" not in html.replace("<b>&amp;</b> &middot;", "")


def test_ray_and_optuna_habits_get_one_line_each(tmp_path, capsys):
    """``config["lr"]`` on the trial (Ray's function trainables take a dict), and a result
    reported every epoch (Ray's train.report, Optuna's trial.report): the first is a TypeError
    naming trial.hparams, the second keeps the last call's metrics and says so, once."""
    trial = make_trial(tmp_path)
    with pytest.raises(TypeError, match=r"trial\['lr'\]: a Trial is not its hyperparameters: "
                                        r"read trial.hparams\['lr'\]"):
        trial["lr"]
    (seg,) = list(trial.segments())
    for epoch, loss in enumerate([0.9, 0.7, 0.6], 1):
        seg.report(val_loss=loss, epoch=epoch)
    assert seg.reported == {"val_loss": 0.6, "epoch": 3}
    err = capsys.readouterr().err
    assert err.count("segment.report() again for the segment to length 4: the last call's "
                     "metrics are the segment's result") == 1
    assert "trial.report_metrics(step, ...)" in err


def test_ray_tunes_result_keys_in_a_report_are_said_to_be_plain_metrics(tmp_path, capsys):
    """train.report({"loss": ..., "done": True}, checkpoint=...) ported as it is: Ray ends the
    trial on ``done``; here it is a metric, and the line says what ends a trial."""
    trial = make_trial(tmp_path)
    (seg,) = list(trial.segments())
    seg.report(val_loss=0.5, done=True, checkpoint=str(tmp_path))
    assert seg.reported == {"val_loss": 0.5, "done": True, "checkpoint": str(tmp_path)}
    err = capsys.readouterr().err
    assert "segment.report() got 'done', 'checkpoint': Ray Tune's words, metrics like any " \
        "other here. To end the trial's training, raise asha_hpc.TrainingEndedEarly" in err


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.none(), st.text(max_size=12), st.floats(allow_nan=True),
                       st.integers(-10**6, 10**6), st.booleans(), st.lists(st.floats(), max_size=2),
                       st.builds(np.float32, st.floats(width=32)), st.builds(str, st.floats())))
def test_any_value_of_the_searcher_metric_is_taken_or_one_line_that_stops_the_search(tmp_path_factory, value):
    """What a training function reports as the searcher's metric: a number-like value is the
    segment's result; anything else is a MetricNotReported (the search stops, nothing retried)
    whose one line names the metric and the type it got."""
    from asha_hpc.errors import MetricNotReported

    trial = make_trial(tmp_path_factory.mktemp("m"))
    (seg,) = list(trial.segments())
    if as_number(value) is not None:
        seg.report(val_loss=value)
        assert seg.reported is not None and "val_loss" in seg.reported
        return
    with pytest.raises(MetricNotReported) as e:
        seg.report(val_loss=value)
    text = str(e.value)
    assert "\n" not in text and "'val_loss' must be a number" in text
    assert f"got {type(value).__name__} " in text

"""An experiment's results from Python (a notebook's `dataframe("runs/q1")`, as Ray's
`ResultGrid.get_dataframe()` or Optuna's `study.trials_dataframe()`): the same rows `export`
writes, read while nothing else runs."""
import csv
import io

import pytest

from asha_hpc.views.results import dataframe, learning_curves, trials

from helpers import cli, final_state, make_experiment


def test_trials_and_curves_are_exports_rows(tmp_path):
    exp = tmp_path / "run"
    cli("run", make_experiment(tmp_path), "--exp-dir", exp)
    _, st = final_state(exp)
    rows = trials(exp)
    assert [r["trial_id"] for r in rows] == sorted(st.trials)
    exported = list(csv.DictReader(io.StringIO(cli("export", exp, "--format", "csv").stdout)))
    assert [str(r["trial_id"]) for r in rows] == [r["trial_id"] for r in exported]
    best = st.ranked()[0]
    (row,) = [r for r in rows if r["trial_id"] == best.id]
    assert row["length"] == best.length and row["state"] == st.status_of(best)
    assert row["hparams.x"] == best.hparams["x"] and row["hparams.fail"] == "never"
    points = learning_curves(exp)
    assert points and {p["trial_id"] for p in points} <= set(st.trials)
    curves_csv = tmp_path / "curves.csv"
    cli("export", exp, "--format", "csv", "--curves", curves_csv, "-o", tmp_path / "t.csv")
    assert len(points) == len(list(csv.DictReader(curves_csv.open())))

    pd = pytest.importorskip("pandas")
    df = dataframe(exp)
    assert isinstance(df, pd.DataFrame) and df.index.name == "trial_id"
    assert list(df.index) == sorted(st.trials) and df.loc[best.id, "length"] == best.length
    assert len(dataframe(exp, curves=True)) == len(points)
    # the frame pandas reads from the exported CSV, cell for cell: empty cells are NaN in both
    import pandas.testing

    from_csv = pd.read_csv(tmp_path / "t.csv", index_col="trial_id")
    pandas.testing.assert_frame_equal(df, from_csv, check_dtype=False, check_like=True)
    assert df["error"].isna().any() and df["started"].notna().all()
    assert (pd.to_datetime(df["ended"]) >= pd.to_datetime(df["started"])).all()
    assert (df["seed"] - df.index).nunique() == 1  # experiment_seed + id: ASHA_TRIAL_SEED


EPOCHS_AND_SEGMENTS = '''
def train(trial):
    epoch = 0
    for segment in trial.segments():
        while epoch < segment.length:
            epoch += 1
            trial.report_metrics(epoch, train_loss=1.0 / epoch)  # every epoch, as tutorials do
        segment.report(val_loss=2.0 / epoch, accuracy=epoch / 10)
'''


def test_an_epochs_point_and_its_segments_report_are_one_curve_point(tmp_path):
    """A notebook user's ``dataframe(exp, curves=True).groupby("trial_id").plot(x="step")``
    drew each segment's last epoch twice: ``report_metrics`` at step 2, then the segment's
    report at step 2 again. One point now, with both lines' metrics."""
    (tmp_path / "m.py").write_text(EPOCHS_AND_SEGMENTS)
    (tmp_path / "c.yaml").write_text(
        "name: c\nentrypoint: m:train\n"
        "searcher: {name: async_halving, metric: val_loss, max_length: 4, num_rungs: 2, "
        "divisor: 2, max_trials: 2, max_concurrent_trials: 1}\n"
        "poll_interval_s: 0.2\nlocal: {workers: 0, gpus: []}\n")
    exp = tmp_path / "run"
    cli("run", tmp_path / "c.yaml", "--exp-dir", exp)
    points = learning_curves(exp)
    steps = [(p["trial_id"], p["key"], p["step"]) for p in points]
    assert len(steps) == len(set(steps)), steps
    at_rung = [p for p in points if p["step"] == 2 and p["key"] == "t00001-s000-a00"]
    assert len(at_rung) == 1
    assert at_rung[0]["train_loss"] == 0.5 and at_rung[0]["val_loss"] == 1.0

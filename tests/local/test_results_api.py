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

"""An experiment's results from Python, for a notebook: what ``asha-hpc export`` writes, as
rows or as a pandas DataFrame (Ray Tune's ``ResultGrid.get_dataframe()``, Optuna's
``study.trials_dataframe()``). Read-only, like every view: it works while the search runs.

    from asha_hpc.views.results import dataframe
    df = dataframe("runs/q1")                     # one row per trial
    curves = dataframe("runs/q1", curves=True)    # one row per learning-curve point
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import AshaError


def trials(exp_dir: str | Path) -> list[dict[str, Any]]:
    """One dict per trial, in id order: ``export``'s columns (state, length reached, the
    searcher's metric and its value at every rung, the last result's other metrics as
    ``metrics.<name>``, ``hparams.<dotted name>``, started and ended (ISO 8601), seed,
    checkpoint, sampled_by, error)."""
    from .status import export_rows, open_experiment

    exp, _, _, st = open_experiment(exp_dir)
    return export_rows(st, exp)


def learning_curves(exp_dir: str | Path) -> list[dict[str, Any]]:
    """One dict per learning-curve point: ``trial_id, key, segment, attempt, step, time`` and
    one key per metric (``export --curves``)."""
    from ..protocol.expdir import ExpDir
    from .observe import curve_rows, flat_curve_rows

    return flat_curve_rows(curve_rows(ExpDir.open(Path(exp_dir), only_read=True)))


def dataframe(exp_dir: str | Path, curves: bool = False) -> Any:
    """``trials`` (or, with ``curves=True``, the learning curves) as a pandas DataFrame
    indexed by ``trial_id`` (curves: a plain index). Empty cells (no checkpoint, no error)
    are NaN, as ``pandas.read_csv`` reads them from ``export``'s CSV; every other value is
    kept as it is (read_csv would also take the strings "NA" or "null" for NaN)."""
    df = frame(learning_curves(exp_dir) if curves else trials(exp_dir))
    return df if curves else df.set_index("trial_id")


def frame(rows: list[dict[str, Any]]) -> Any:
    """``rows`` as a DataFrame, an empty string a missing value (NaN), as an empty cell of the
    exported CSV is."""
    try:
        import pandas as pd
    except ImportError:
        raise AshaError("dataframe() needs pandas (pip install pandas); trials() and "
                        "learning_curves() give the same rows as dicts") from None
    df = pd.DataFrame(rows)
    return df.mask(df.eq("")).infer_objects()

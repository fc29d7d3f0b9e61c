"""User metrics as real training scripts report them: any name, any number-like value.

Names are any strings (``step``, ``time``, ``val/loss``, ``acc,top1``, unicode); the project's
own files keep them under a key of their own (``metrics``), so no name of a user's ever meets a
field of ours. Values are made JSON-able once, where they enter (``plain_metrics``): numbers
stay numbers, numpy scalars and 0-d arrays and 0-d torch tensors (CPU or GPU) become Python
numbers through their ``item()`` (duck typing: torch is never imported here), anything with
``__float__`` becomes a float; strings and other values are kept as they are, or as their text,
for people to read, and the numeric views ignore them.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

Number = int | float


def merge_metrics(metrics: Mapping[str, Any] | None, named: Mapping[str, Any]) -> dict[str, Any]:
    """The dict form and the keyword form of ``report(...)`` together (keywords win)."""
    out: dict[str, Any] = {}
    if metrics is not None:
        if not isinstance(metrics, Mapping):
            raise TypeError(f"report(): metrics must be a dict of name -> value (or keywords), "
                            f"got {type(metrics).__name__}")
        out.update(metrics)
    out.update(named)
    return out


def plain_value(v: Any) -> Any:
    """``v`` as a JSON-able value (see module doc). Never raises."""
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        return str(v)
    item = getattr(v, "item", None)
    if callable(item) and not isinstance(v, (dict, list, tuple)):
        try:  # numpy scalar / 0-d array, torch tensor of one element (a GPU one syncs here)
            x = item()
        except Exception:  # noqa: BLE001 - not a scalar (an array of several): see below
            pass
        else:
            if isinstance(x, (bool, int, float, str)) or x is None:
                return plain_value(x)
    if hasattr(type(v), "__float__"):
        try:
            return float(v)
        except Exception:  # noqa: BLE001
            pass
    tolist = getattr(v, "tolist", None)
    if callable(tolist):
        try:
            v = tolist()
        except Exception:  # noqa: BLE001
            pass
    try:
        json.dumps(v)
        return v
    except Exception:  # noqa: BLE001 - kept as its text for people to read
        try:
            return str(v)
        except Exception:  # noqa: BLE001
            return f"<{type(v).__name__}>"


def plain_metrics(metrics: Mapping[Any, Any]) -> dict[str, Any]:
    """JSON-able copies: names as strings, values by ``plain_value``."""
    return {str(k): plain_value(v) for k, v in metrics.items()}


def as_number(v: Any) -> Number | None:
    """A plain value as a number (NaN and inf included; a bool as 0/1), or None when it is not
    number-like."""
    v = plain_value(v)
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return v
    return None


def metric_float(v: Any) -> float:
    """A value as the searcher sees it: a float; NaN for anything that is not a number."""
    x = as_number(v)
    if x is None:
        return math.nan
    try:
        return float(x)
    except OverflowError:  # an int beyond any float (Python's ints have no bound): diverged
        return math.inf if x > 0 else -math.inf


def finite_float(v: Any) -> float | None:
    """A finite number as a float, else None (NaN, inf, missing, a bool, not a number): what
    JSON can hold and a table or plot can show; a diverged value is reported apart."""
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) else None


def diverged(v: Any) -> bool:
    """A searcher metric that is NaN or infinite: the trial diverged."""
    x = as_number(v)
    return x is not None and not math.isfinite(metric_float(x))


def flat_columns(fixed: Mapping[str, Any], metrics: Mapping[str, Any]) -> dict[str, Any]:
    """One flat row (CSV): ``fixed`` columns, then the metrics; a metric whose name is taken
    by a fixed column becomes ``metrics.<name>`` (again, until it is free)."""
    row = dict(fixed)
    for k, v in metrics.items():
        name = k
        while name in row:
            name = f"metrics.{name}"
        row[name] = v
    return row


def read_point(rec: Any) -> dict[str, Any] | None:
    """A metrics.jsonl line as ``{"step", "time", "metrics"}``, or None. Lines of releases
    before the metrics were nested (``{"step", "time", <metric>: ...}``) read the same."""
    if not isinstance(rec, dict) or "step" not in rec:
        return None
    m = rec.get("metrics")
    if isinstance(m, dict):
        metrics = m
    else:  # the flat form: a metric was never a dict there (values were plain scalars)
        metrics = {k: v for k, v in rec.items() if k not in ("step", "time")}
    return {"step": rec.get("step"), "time": rec.get("time"), "metrics": metrics}

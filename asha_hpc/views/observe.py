"""What a search left in its folder besides the state, read-only: each trial's jobs and their
log files, the learning curves (``trials/<id>/runs/<key>/metrics.jsonl``) and the series the
plots draw. status.py builds ``status``'s data from these; plots.py, htmlreport.py and
trackers.py draw and export them. Pure functions of ``(exp dir, config, journal records,
replayed state)``, no optional package.

    rows = curve_rows(exp)                       # learning-curve points, one dict each
    jobs = trial_jobs(exp, records, trial_id)    # each attempt's job ids and log files
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from ..backends import log_files
from ..config import ExperimentConfig
from ..protocol.expdir import METRICS, RUNS, TRIALS, ExpDir, attempt_key, split_attempt_key
from ..protocol.metrics import finite_float, flat_columns, read_point
from ..protocol.records import Kind


def start_time(records: list[dict[str, Any]]) -> float | None:
    for r in records:
        if isinstance(r.get("time"), (int, float)):
            return float(r["time"])
    return None


# ----------------------------------------------------------------------------- logs
def _job_index(records: Iterable[dict[str, Any]], trial: int | None = None
               ) -> dict[int, dict[str, dict[str, Any]]]:
    """trial -> run key -> {segment, attempt, length, job_ids, host, status, started, ended}."""
    idx: dict[int, dict[str, dict[str, Any]]] = {}
    for r in records:
        if r.get("kind") not in (Kind.INTENT, Kind.SUBMITTED, Kind.STARTED, Kind.RESULT, Kind.JOB_DEAD,
                                 Kind.SUBMIT_FAILED):
            continue
        tid = r.get("trial")
        if not isinstance(tid, int) or (trial is not None and tid != trial):
            continue
        if r.get("carried"):  # a final model's result promoted by the master: no job ran
            continue
        key = attempt_key(tid, r.get("segment", 0), r.get("attempt", 0))
        j = idx.setdefault(tid, {}).setdefault(key, {
            "key": key, "segment": r.get("segment", 0), "attempt": r.get("attempt", 0),
            "length": None, "job_ids": [], "host": None, "status": "submitted",
            "started": None, "ended": None})
        if r["kind"] == Kind.INTENT:
            j["length"] = r.get("length")
        jid = r.get("job_id")
        if jid is not None and str(jid) not in j["job_ids"]:
            j["job_ids"].append(str(jid))
        if r.get("host"):
            j["host"] = r["host"]
        if r["kind"] == Kind.RESULT:
            j["status"] = r.get("status")
            j["started"], j["ended"] = r.get("started"), r.get("ended")
        elif r["kind"] == Kind.JOB_DEAD:
            j["status"] = f"dead ({r.get('state')})"
        elif r["kind"] == Kind.SUBMIT_FAILED:
            j["status"] = "submit failed"
        elif r["kind"] == Kind.STARTED and j["status"] == "submitted":
            j["status"] = "running"
    return idx


def find_logs(exp: ExpDir, job_ids: list[str]) -> dict[str, str | None]:
    """The stdout/stderr files of one job (of the first of its ids that has any), wherever
    its backend keeps them (``Backend.log_files``)."""
    for jid in job_ids:
        out, err = log_files(exp.jobs, jid)
        if out or err:
            return {"out": str(out) if out else None, "err": str(err) if err else None}
    return {"out": None, "err": None}


def trial_jobs(exp: ExpDir, records: list[dict[str, Any]], trial: int) -> list[dict[str, Any]]:
    """Every job of one trial, in order (index 0, 1, ...), with its log files (or None)."""
    jobs = list(_job_index(records, trial).get(trial, {}).values())
    jobs.sort(key=lambda j: (j["segment"], j["attempt"]))
    for i, j in enumerate(jobs):
        j["index"] = i
        j.update(find_logs(exp, j["job_ids"]))
    return jobs


def latest_logs(exp: ExpDir, records: list[dict[str, Any]], trials: list[int]
                ) -> dict[int, dict[str, Any]]:
    """trial -> its latest job (with ``out``/``err`` log paths), for a few trials."""
    idx = _job_index(records)
    out: dict[int, dict[str, Any]] = {}
    for tid in trials:
        jobs = sorted(idx.get(tid, {}).values(), key=lambda j: (j["segment"], j["attempt"]))
        if jobs:
            j = dict(jobs[-1], index=len(jobs) - 1)
            j.update(find_logs(exp, j["job_ids"]))
            out[tid] = j
    return out


# ----------------------------------------------------------------------------- curves
# a curve row's own columns, before the metrics' (export --curves)
CURVE_COLUMNS = ("trial_id", "key", "segment", "attempt", "step", "time")


def curve_rows(exp: ExpDir, trials: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """Every learning-curve point (``trials/<id>/runs/<key>/metrics.jsonl``): dicts with
    ``trial_id, key, segment, attempt, step, time`` and ``metrics`` (the user's names, nested:
    a metric may be called ``step``), in trial then run order. Unreadable lines are skipped;
    two in a row at one step of one run are one point (both lines' metrics) unless a metric
    has a different value in each."""
    want = None if trials is None else set(trials)
    rows: list[dict[str, Any]] = []
    base = exp.root / TRIALS
    if not base.is_dir():
        return rows
    for tdir in sorted(p for p in base.iterdir() if p.is_dir() and p.name.isdigit()):
        tid = int(tdir.name)
        if want is not None and tid not in want:
            continue
        runs = tdir / RUNS
        if not runs.is_dir():
            continue
        for rdir in sorted(p for p in runs.iterdir() if p.is_dir()):
            f = rdir / METRICS
            if not f.is_file():
                continue
            _, seg, att = split_attempt_key(rdir.name)
            try:
                text = f.read_text(errors="replace")
            except OSError:
                continue
            for line in text.splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                point = read_point(rec)
                if point is None:
                    continue
                last = rows[-1] if rows else None
                if last is not None and last["key"] == rdir.name and last["trial_id"] == tid \
                        and last["step"] == point["step"] and all(
                            last["metrics"].get(k, v) == v for k, v in point["metrics"].items()):
                    # the segment's report at the step a report_metrics point just had (the
                    # epoch's own values, then the segment's result): one point, not two (two
                    # where one name has two values there)
                    last["metrics"] = {**last["metrics"], **point["metrics"]}
                    last["time"] = point.get("time", last.get("time"))
                    continue
                rows.append({"trial_id": tid, "key": rdir.name, "segment": seg,
                             "attempt": att, **point})
    return rows


def flat_curve_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Curve rows for a table (``export --curves``): the fixed columns, then one column per
    metric (``metrics.<name>`` where a name is one of the fixed columns)."""
    return [flat_columns({k: v for k, v in r.items() if k != "metrics"}, r["metrics"])
            for r in rows]


def curve_metric_names(rows: list[dict[str, Any]]) -> list[str]:
    """Metric names of the curve rows, most frequent first (numbers only)."""
    counts: dict[str, int] = {}
    for r in rows:
        for k, v in r["metrics"].items():
            if finite_float(v) is not None:
                counts[k] = counts.get(k, 0) + 1
    return sorted(counts, key=lambda k: (-counts[k], k))


# what training loops log beside their metrics: counters, clocks, rates and learning rates
# (Lightning's LearningRateMonitor: "lr-Adam"; the Trainer's "train_runtime", "..._per_second")
_NOT_CURVES = re.compile(r"(global_)?step|epoch|iter(ation)?|batch(_idx)?|time|timestamp|"
                         r"learning_rate|lr|lr[-_/].*|.*_runtime|.*_per_second|total_flos|"
                         r"grad_norm", re.I)


def pick_curve_metric(rows: list[dict[str, Any]], metric: str) -> str | None:
    """The searcher's metric if it is reported about as often as anything else, else the most
    reported one (e.g. a training loss every epoch, the validation metric at rungs only);
    never a counter, a clock or a learning rate while a metric is there."""
    names = curve_metric_names(rows)
    if not names:
        return None
    curves = [k for k in names if not _NOT_CURVES.fullmatch(k)]
    if not curves:
        curves = [metric] if metric in names else names
    n = {k: sum(1 for r in rows if finite_float(r["metrics"].get(k)) is not None)
         for k in curves[:1] + [metric]}
    if metric in names and n[metric] * 2 >= n[curves[0]]:
        return metric
    return curves[0]


# ----------------------------------------------------------------------------- series for plots
def best_vs_compute(cfg: ExperimentConfig, records: list[dict[str, Any]]
                    ) -> list[tuple[float, float]]:
    """(job-hours spent so far, the best trial's metric so far) after each completed segment,
    the best ranked as ``best`` and ``status`` rank: the longest length first, then the
    metric (a trial's result at a rung it later left counts no more than the one it reached)."""
    sign = 1.0 if cfg.searcher.smaller_is_better else -1.0
    spent = 0.0
    latest: dict[Any, tuple[float, float]] = {}  # trial -> rank key (-length, signed metric)
    best: Any = None  # the trial whose key is the least
    targets: dict[tuple[Any, Any], Any] = {}
    out: list[tuple[float, float]] = []
    for r in records:
        if r.get("kind") == Kind.INTENT:
            targets[(r["trial"], r["segment"])] = r.get("length")
        if r.get("kind") != Kind.RESULT:
            continue
        s, e = r.get("started"), r.get("ended")
        if isinstance(s, (int, float)) and isinstance(e, (int, float)):
            spent += max(0.0, e - s) / 3600.0
        if r.get("status") == "completed":
            v = finite_float((r.get("metrics") or {}).get(cfg.searcher.metric))
            length = r.get("length") or targets.get((r.get("trial"), r.get("segment")))
            tid = r.get("trial")
            worse = tid == best  # the best's own key may only grow worse here
            if v is not None:
                key = (-float(length if isinstance(length, int) else 0), sign * v)
                worse = worse and key > latest[tid]
                latest[tid] = key
                if best is None or key < latest[best]:
                    best = tid
            else:  # diverged: ranked last, as ``best`` leaves it out
                latest.pop(tid, None)
            if worse or best not in latest:  # rare (a trial is promoted to a longer length)
                best = min(latest, key=latest.__getitem__, default=None)
            if best is not None:
                out.append((spent, sign * latest[best][1]))
    return out


def rung_counts_over_time(records: list[dict[str, Any]]) -> dict[int, list[tuple[float, int]]]:
    """length -> [(hours since the start, trials that completed that length so far)]."""
    t0 = start_time(records) or 0.0
    out: dict[int, list[tuple[float, int]]] = {}
    targets: dict[tuple[Any, Any], Any] = {}
    for r in records:
        if r.get("kind") == Kind.INTENT:
            targets[(r["trial"], r["segment"])] = r.get("length")
        if r.get("kind") != Kind.RESULT or r.get("status") != "completed":
            continue
        length = r.get("length") or targets.get((r.get("trial"), r.get("segment")))
        if not isinstance(length, int):
            continue
        series = out.setdefault(length, [])
        t = r.get("time", t0)
        series.append(((t - t0) / 3600.0, (series[-1][1] if series else 0) + 1))
    return dict(sorted(out.items()))


def fmt_duration(seconds: float | None) -> str:
    """``1d02h``, ``3h05m``, ``4m07s``, ``12s``; ``-`` for None."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = int(round(max(seconds, 0.0)))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d{h:02d}h"
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"

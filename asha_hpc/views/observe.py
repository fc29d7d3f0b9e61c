"""What a search looks like, from its journal and its folder, read-only: per-rung counts,
progress against the plan, compute spent, an ETA, recent events, learning curves, job logs.

Everything here is a pure function of ``(exp dir, config, journal records, replayed state)``
and needs no optional package; ``views`` (text, ``--watch``), ``plots`` (matplotlib) and
``htmlreport`` render it.

    exp, cfg, records, st = open_experiment("runs/q1")
    d = status_extra(exp, cfg, st, records)      # the keys ``status --json`` adds
    rows = curve_rows(exp)                       # learning-curve points, one dict each
    jobs = trial_jobs(exp, records, trial_id)    # each attempt's job ids and log files
"""
from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..config import ExperimentConfig, load_config
from ..master.state import (
    FAILED,
    PAUSED,
    PENDING,
    QUEUED,
    RUNNING,
    STOPPED,
    ExperimentState,
    TrialState,
    replay,
)
from ..protocol.expdir import METRICS, RUNS, TRIALS, ExpDir, attempt_key, split_attempt_key
from ..protocol.journal import read_journal
from ..protocol.metrics import diverged, flat_columns, read_point

TOP_N = 5
EVENTS_N = 12
_START_KINDS = ("init", "resumed")
_END_KINDS = ("stopped", "done", "aborted", "cancelled")


def open_experiment(path: Any) -> tuple[ExpDir, ExperimentConfig, list[dict[str, Any]],
                                        ExperimentState]:
    """(exp, cfg, journal records, replayed state), read-only (no master needed)."""
    exp = ExpDir.open(Path(path))
    cfg = load_config(exp.config)
    records, _, warnings = read_journal(exp.journal)
    for w in warnings:
        logging.getLogger("asha_hpc").warning(w)
    return exp, cfg, records, replay(cfg, records)


def num(x: Any) -> float | None:
    """A finite float, or None (NaN/inf/missing become None, for JSON)."""
    if x is None or isinstance(x, bool):
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


# ----------------------------------------------------------------------------- rungs
def rung_table(st: ExperimentState) -> list[dict[str, Any]]:
    """One row per bracket and rung: target length, results recorded (``completed``), trials
    training toward it (``running``; ``queued`` = queued or submitted, not started), waiting
    there for a promotion (``paused``), promoted from it, ended there (``stopped``), failed for
    good while training toward it (``failed``), and the best metric recorded there."""
    lengths = {i: b.rung_lengths for i, b in enumerate(st.searcher.brackets())}
    rows = [{"bracket": r.bracket, "rung": r.rung, "length": r.length, "completed": r.completed,
             "running": 0, "queued": 0, "paused": 0, "promoted": r.promoted, "stopped": 0,
             "failed": 0, "best_metric": num(r.best_metric)} for r in st.searcher.rungs()]
    where = {(r["bracket"], r["rung"]): r for r in rows}

    def rung_of(t: TrialState, length: int) -> dict[str, Any] | None:
        ls = lengths.get(t.bracket, [])
        return where.get((t.bracket, ls.index(length))) if length in ls else None

    for t in st.trials.values():
        s = st.status_of(t)  # a failed experiment's live trials are 'interrupted'
        if s in (QUEUED, PENDING, RUNNING):
            r, col = rung_of(t, t.target), ("running" if s == RUNNING else "queued")
        elif s == PAUSED:
            r, col = rung_of(t, t.length), "paused"
        elif s == STOPPED:
            r, col = rung_of(t, t.length), "stopped"
        elif s == FAILED:
            r, col = rung_of(t, t.target), "failed"
        else:
            continue
        if r is not None:
            r[col] += 1
    return rows


def bracket_table(st: ExperimentState) -> list[dict[str, Any]]:
    made: dict[int, int] = {}
    for t in st.trials.values():
        if t.status != "invalid":
            made[t.bracket] = made.get(t.bracket, 0) + 1
    return [{"bracket": i, "num_rungs": b.num_rungs, "max_trials": b.max_trials,
             "max_concurrent_trials": b.max_concurrent_trials,
             "rung_lengths": list(b.rung_lengths), "trials": made.get(i, 0)}
            for i, b in enumerate(st.searcher.brackets())]


# ----------------------------------------------------------------------------- time, progress
def active_seconds(records: list[dict[str, Any]], now: float | None = None) -> float:
    """Seconds a master was running the search: from each init/resumed record to the next
    stopped/done/aborted/cancelled one; an open interval ends at ``now`` (a live master) or at
    the last record."""
    total, since = 0.0, None
    last = None
    for r in records:
        t = r.get("time")
        if not isinstance(t, (int, float)):
            continue
        last = t
        if r["kind"] in _START_KINDS:
            if since is None:
                since = t
        elif r["kind"] in _END_KINDS and since is not None:
            total += max(0.0, t - since)
            since = None
    if since is not None and last is not None:
        total += max(0.0, (now if now is not None else last) - since)
    return total


def start_time(records: list[dict[str, Any]]) -> float | None:
    for r in records:
        if isinstance(r.get("time"), (int, float)):
            return float(r["time"])
    return None


def progress(cfg: ExperimentConfig, st: ExperimentState, records: list[dict[str, Any]],
             now: float | None = None) -> dict[str, Any]:
    """Units trained (lengths reached, summed over trials) against the plan's ``total_units``
    (``units_preview``) while the search runs, against what it trained once it is over (the
    preview is an estimate: rungs short of results promote fewer trials, early promotions
    more), throughput over the time a master ran, and the ETA it implies."""
    from ..plan import plan

    try:
        planned = int(plan(cfg.searcher, cfg.space())["total_units"])
    except Exception:  # noqa: BLE001 - a plan problem must not break status
        planned = 0
    done = sum(t.length for t in st.trials.values())
    finished = st.lifecycle in ("completed", "cancelled", "failed")
    active = active_seconds(records, now)
    rate = done / active if active > 0 and done > 0 else None  # units per second
    preview = planned
    if st.lifecycle == "completed":
        planned = done  # all it could train: "196/196", not "196/244 (100%)"
    if finished:
        fraction = 1.0 if st.lifecycle == "completed" else (min(done / planned, 1.0) if planned else None)
        eta = 0.0 if st.lifecycle == "completed" else None
    else:
        fraction = min(done / planned, 1.0) if planned else None
        left = planned - done
        eta = left / rate if rate and left > 0 else None
    return {"units_done": done, "units_planned": planned, "units_preview": preview,
            "unit": cfg.searcher.length_unit,
            "fraction": fraction, "active_hours": active / 3600.0,
            "units_per_hour": rate * 3600.0 if rate else None,
            "eta_seconds": eta}


def compute(st: ExperimentState) -> dict[str, Any]:
    """Job-hours (each attempt's result: ended - started) and GPU-hours where the results said
    how many GPUs the job had (None when none did)."""
    job_s = sum(t.compute_s for t in st.trials.values())
    gpu = [g for t in st.trials.values() if (g := getattr(t, "gpu_s", None)) is not None]
    return {"job_hours": job_s / 3600.0, "gpu_hours": (sum(gpu) / 3600.0) if gpu else None}


# ----------------------------------------------------------------------------- events
def describe(rec: dict[str, Any], metric: str) -> str | None:
    """One line for a notable journal record, or None for bookkeeping ones."""
    k = rec.get("kind")
    tid = rec.get("trial")
    if k == "init":
        return "search started"
    if k == "resumed":
        return "master resumed"
    if k == "stopped":
        return f"master stopped ({rec.get('reason') or 'stop'})"
    if k == "cancelled":
        return "search cancelled"
    if k in ("done", "aborted"):
        s = f"search {rec.get('state', 'completed')}"
        return s + (f": {_first_line(rec.get('message'))}" if rec.get("message") else "")
    if k == "workers_mode" and rec.get("measured", True):
        mode = "warm workers" if rec.get("mode") == "pool" else "a job per segment"
        return f"workers: auto chose {mode}: {rec.get('reason')}"
    if k == "intent":
        if rec.get("attempt", 0) > 0:
            return f"trial {tid} retried (attempt {rec['attempt']}) toward length {rec.get('length')}"
        if rec.get("segment", 0) > 0:
            return f"trial {tid} promoted: continues to length {rec.get('length')}"
        return f"trial {tid} created: trains to length {rec.get('length')}"
    if k == "result":
        st = rec.get("status")
        if st == "completed":
            v = (rec.get("metrics") or {}).get(metric)
            return (f"trial {tid} reached length {rec.get('length')}: {metric}={_fmt(v)}"
                    + (" (diverged)" if diverged(v) else ""))
        if st == "interrupted":
            return f"trial {tid} interrupted ({rec.get('stop_reason') or 'stop'})"
        if st == "invalid_hp":
            return f"trial {tid} rejected its hyperparameters: {_last_line(rec.get('error'))}"
        if rec.get("fatal"):  # every trial would repeat it: its own first line says why
            return f"trial {tid} error: {_first_line(rec.get('error'))}"
        return f"trial {tid} error: {_last_line(rec.get('error'))}"
    if k == "job_dead":
        return f"trial {tid} job {rec.get('job_id')} ended without a result ({rec.get('state')})"
    if k == "submit_failed":
        return f"trial {tid} submission failed: {_first_line(rec.get('error'))}"
    if k == "retry_failed":
        ids = rec.get("trials") or []
        return ("retrying after a fix (--retry-failed): " +
                (f"failed trials {', '.join(map(str, ids))} continue; " if ids else "") +
                "restarts count from zero")
    return None


def events(records: list[dict[str, Any]], metric: str, n: int = EVENTS_N) -> list[dict[str, Any]]:
    """The last ``n`` notable records: ``{"time", "elapsed_s" (since the first record), "text"}``."""
    t0 = start_time(records) or 0.0
    out: list[dict[str, Any]] = []
    for r in reversed(records):
        text = describe(r, metric)
        if text is None:
            continue
        t = r.get("time")
        out.append({"time": t, "elapsed_s": (t - t0) if isinstance(t, (int, float)) else None,
                    "text": text})
        if len(out) >= n:
            break
    return out[::-1]


def _fmt(v: Any) -> str:
    f = num(v)
    return f"{f:.6g}" if f is not None else str(v)


def _first_line(s: Any) -> str:
    return str(s).strip().splitlines()[0][:160] if s and str(s).strip() else ""


def _last_line(s: Any) -> str:
    lines = [x for x in str(s or "").strip().splitlines() if x.strip()]
    return lines[-1].strip()[:160] if lines else ""


# ----------------------------------------------------------------------------- logs
def _job_index(records: Iterable[dict[str, Any]], trial: int | None = None
               ) -> dict[int, dict[str, dict[str, Any]]]:
    """trial -> run key -> {segment, attempt, length, job_ids, host, status, started, ended}."""
    idx: dict[int, dict[str, dict[str, Any]]] = {}
    for r in records:
        if r.get("kind") not in ("intent", "submitted", "started", "result", "job_dead",
                                 "submit_failed"):
            continue
        tid = r.get("trial")
        if not isinstance(tid, int) or (trial is not None and tid != trial):
            continue
        key = attempt_key(tid, r.get("segment", 0), r.get("attempt", 0))
        j = idx.setdefault(tid, {}).setdefault(key, {
            "key": key, "segment": r.get("segment", 0), "attempt": r.get("attempt", 0),
            "length": None, "job_ids": [], "host": None, "status": "submitted",
            "started": None, "ended": None})
        if r["kind"] == "intent":
            j["length"] = r.get("length")
        jid = r.get("job_id")
        if jid is not None and str(jid) not in j["job_ids"]:
            j["job_ids"].append(str(jid))
        if r.get("host"):
            j["host"] = r["host"]
        if r["kind"] == "result":
            j["status"] = r.get("status")
            j["started"], j["ended"] = r.get("started"), r.get("ended")
        elif r["kind"] == "job_dead":
            j["status"] = f"dead ({r.get('state')})"
        elif r["kind"] == "submit_failed":
            j["status"] = "submit failed"
        elif r["kind"] == "started" and j["status"] == "submitted":
            j["status"] = "running"
    return idx


def find_logs(exp: ExpDir, job_ids: list[str]) -> dict[str, str | None]:
    """The stdout/stderr files submitit wrote for one job, whatever the backend:
    local ``jobs/<pid>_0_log.out`` (the pid from ``jobs/local-<key>.json``), Slurm
    ``jobs/<jobid>/<jobid>_0_log.out`` (``<array>_<task>`` for arrays)."""
    cands: list[str] = []
    for jid in job_ids:
        if jid.startswith("local:"):
            try:
                rec = json.loads((exp.jobs / f"local-{jid[len('local:'):]}.json").read_text())
                if isinstance(rec.get("pid"), int):
                    cands.append(str(rec["pid"]))
            except (OSError, ValueError):
                pass
        elif ":" not in jid and "/" not in jid and jid not in (".", ".."):
            cands.append(jid)
    out: dict[str, str | None] = {"out": None, "err": None}
    for c in cands:
        for folder in (exp.jobs / c, exp.jobs):
            for ext in ("out", "err"):
                if out[ext] is None:
                    p = folder / f"{c}_0_log.{ext}"
                    if p.is_file():
                        out[ext] = str(p)
                    else:
                        more = sorted(folder.glob(f"{c}_*_log.{ext}")) if folder.is_dir() else []
                        if more:
                            out[ext] = str(more[0])
        if out["out"] or out["err"]:
            break
    return out


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


# ----------------------------------------------------------------------------- status
def trial_summary(t: TrialState, job: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"trial_id": t.id, "bracket": t.bracket, "status": t.status, "length": t.length,
            "target": t.target, "metric": num(t.metric), "hparams": t.hparams,
            "restarts": t.restarts, "compute_s": round(t.compute_s, 3),
            "checkpoint": t.checkpoint, "host": t.host,
            "logs": {"out": job.get("out"), "err": job.get("err")} if job else None}


def status_extra(exp: ExpDir, cfg: ExperimentConfig, st: ExperimentState,
                 records: list[dict[str, Any]] | None = None,
                 now: float | None = None, top: int = TOP_N) -> dict[str, Any]:
    """The keys ``status`` adds to the basic ones: ``brackets``, ``rung_table`` (per rung
    counts), ``top``, ``running_trials``, ``compute``, ``progress``, ``events``."""
    if records is None:
        records, _, _ = read_journal(exp.journal)
    if now is None and st.lifecycle not in ("completed", "cancelled", "failed"):
        from ..master.lease import Lease

        lease = Lease(exp.lease)
        h = lease.holder()
        if h is not None and lease.stale_reason(h) is None and cfg.backend != "simulated":
            now = time.time()
    ranked = st.ranked()[:top]
    running = [t for t in st.trials.values() if st.status_of(t) == RUNNING][:10]
    jobs = latest_logs(exp, records, [t.id for t in ranked] + [t.id for t in running])
    return {
        "searcher": cfg.searcher.name,
        "backend": cfg.backend,
        "unit": cfg.searcher.length_unit,
        "brackets": bracket_table(st),
        "rung_table": rung_table(st),
        "top": [trial_summary(t, jobs.get(t.id)) for t in ranked],
        "running_trials": [trial_summary(t, jobs.get(t.id)) for t in running],
        "compute": compute(st),
        "progress": progress(cfg, st, records, now),
        "events": events(records, cfg.searcher.metric),
    }


# ----------------------------------------------------------------------------- curves
def curve_rows(exp: ExpDir, trials: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """Every learning-curve point (``trials/<id>/runs/<key>/metrics.jsonl``): dicts with
    ``trial_id, key, segment, attempt, step, time`` and ``metrics`` (the user's names, nested:
    a metric may be called ``step``), in trial then run order. Unreadable lines are skipped."""
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
                if point is not None:
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
            if num(v) is not None:
                counts[k] = counts.get(k, 0) + 1
    return sorted(counts, key=lambda k: (-counts[k], k))


def pick_curve_metric(rows: list[dict[str, Any]], metric: str) -> str | None:
    """The searcher's metric if it is reported about as often as anything else, else the most
    reported one (e.g. a training loss every epoch, the validation metric at rungs only)."""
    names = curve_metric_names(rows)
    if not names:
        return None
    n = {k: sum(1 for r in rows if num(r["metrics"].get(k)) is not None)
         for k in names[:1] + [metric]}
    if metric in names and n[metric] * 2 >= n[names[0]]:
        return metric
    return names[0]


# ----------------------------------------------------------------------------- series for plots
def best_vs_compute(cfg: ExperimentConfig, records: list[dict[str, Any]]
                    ) -> list[tuple[float, float]]:
    """(job-hours spent so far, best metric so far) after each completed segment."""
    sign = 1.0 if cfg.searcher.smaller_is_better else -1.0
    spent, best = 0.0, None
    out: list[tuple[float, float]] = []
    for r in records:
        if r.get("kind") != "result":
            continue
        s, e = r.get("started"), r.get("ended")
        if isinstance(s, (int, float)) and isinstance(e, (int, float)):
            spent += max(0.0, e - s) / 3600.0
        if r.get("status") == "completed":
            v = num((r.get("metrics") or {}).get(cfg.searcher.metric))
            if v is not None and (best is None or sign * v < sign * best):
                best = v
            if best is not None:
                out.append((spent, best))
    return out


def rung_counts_over_time(records: list[dict[str, Any]]) -> dict[int, list[tuple[float, int]]]:
    """length -> [(hours since the start, trials that completed that length so far)]."""
    t0 = start_time(records) or 0.0
    out: dict[int, list[tuple[float, int]]] = {}
    targets: dict[tuple[Any, Any], Any] = {}
    for r in records:
        if r.get("kind") == "intent":
            targets[(r["trial"], r["segment"])] = r.get("length")
        if r.get("kind") != "result" or r.get("status") != "completed":
            continue
        length = r.get("length") or targets.get((r.get("trial"), r.get("segment")))
        if not isinstance(length, int):
            continue
        series = out.setdefault(length, [])
        t = r.get("time", t0)
        series.append(((t - t0) / 3600.0, (series[-1][1] if series else 0) + 1))
    return dict(sorted(out.items()))


def highest_rungs(st: ExperimentState) -> dict[int, int]:
    """trial -> length reached (0: none yet)."""
    return {t.id: t.length for t in st.trials.values()}


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

"""What ``status``, ``best``, ``export`` and the HTML report show, as data: one module builds it
all from an experiment folder, read-only (no master needed); cli.py prints it, views/text.py
and views/htmlreport.py render it.

    exp, cfg, records, st = open_experiment("runs/q1")
    d = status_dict(exp, cfg, st, records)   # status --json: counts, rungs, top trials, progress,
                                             # ETA, compute, events, time limits, workers
    rows = export_rows(st)                   # export: one row per trial
    best = best_rows(exp, st, records, 5)    # best: the top trials with their logs
"""
from __future__ import annotations

import datetime
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..backends import capabilities
from ..config import ExperimentConfig, load_config, trial_seed
from ..errors import AshaError, shell_word
from ..master.autoworkers import status as workers_status
from ..master.lease import TIMEOUT_S as LEASE_TIMEOUT_S
from ..master.lease import Lease
from ..master.pool import UNREADY_STREAK
from ..master.state import (
    FAILED,
    INVALID,
    LEFT_STATE,
    LEFT_STATE_SEGMENTS,
    PAUSED,
    PENDING,
    QUEUED,
    RUNNING,
    STOPPED,
    ExperimentState,
    TrialState,
    error_summary,
    replay,
    spent,
)
from ..master.timelimits import rung_levels
from ..protocol import signals
from ..protocol.checkpoints import checkpoint_length, checkpoint_problem, latest_checkpoint
from ..protocol.expdir import (
    TRIALS,
    ExpDir,
    folder_made,
    holds_experiment,
    master_log,
    scan_inbox,
    submitted_master,
)
from ..protocol.journal import read_journal
from ..protocol.messages import MessageError, Result, Started, from_json
from ..protocol.metrics import diverged, finite_float
from ..protocol.records import Kind
from ..space import flat_hparams
from .observe import latest_logs, start_time

TOP_N = 5
EVENTS_N = 12
_START_KINDS = (Kind.INIT, Kind.RESUMED)
_END_KINDS = (Kind.STOPPED, Kind.DONE, Kind.ABORTED, Kind.CANCELLED)


def open_experiment(path: Any) -> tuple[ExpDir, ExperimentConfig, list[dict[str, Any]],
                                        ExperimentState]:
    """(exp, cfg, journal records, replayed state), read-only (no master needed)."""
    exp = ExpDir.open(Path(path), only_read=True)
    cfg = load_config(exp.config)
    records, _, warnings = read_journal(exp.journal)
    for w in warnings:
        logging.getLogger("asha_hpc").warning(w)
    st = replay(cfg, records, salvage=True)
    if st.damaged:
        logging.getLogger("asha_hpc").warning("%s: %s", exp.journal, st.damaged)
    if cfg.experiment_dir and Path(cfg.experiment_dir) != exp.root.resolve():
        # the folder was moved or copied since: its checkpoints are the ones to name
        for t in st.trials.values():
            here = exp.checkpoints(t.id) / Path(t.checkpoint).name if t.checkpoint else None
            if here is not None and str(here) != t.checkpoint and here.exists():
                t.checkpoint = str(here)
    return exp, cfg, records, st


def submitted_status(path: Any) -> dict[str, Any] | None:
    """The status of a folder ``asha-hpc submit`` made whose master has not made the experiment
    yet (its job waits in the queue, or runs its setup lines); None for any other folder."""
    waiting = submitted_master(Path(path).resolve())
    if waiting is None:
        return None
    tail = None
    if waiting.log is not None:
        try:
            lines = [ln for ln in waiting.log.read_text(errors="replace").splitlines() if ln.strip()]
            tail = lines[-1] if lines else None
        except OSError:
            pass
    d = {"state": "submitted", "dir": str(Path(path).resolve()), "slurm_job_id": waiting.job_id,
         "master_log": str(waiting.log) if waiting.log else None, "master_log_last_line": tail,
         "message": waiting.text()}
    from ..submit import master_job_ended

    ended = master_job_ended(waiting.job_id) if waiting.job_id else None
    if ended is not None:  # cancelled in the queue, or failed in its setup lines
        log = f"; its log: {waiting.log}" if waiting.log else ""
        d.update(state="ended", slurm_job_state=ended, message=(
            f"the master's Slurm job {waiting.job_id} ended ({ended}) before it made the "
            f"experiment{log}: no search runs here. `asha-hpc submit CONFIG --exp-dir "
            f"{shell_word(d['dir'])}` sends a new one"))
    return d


def status_now(path: Any) -> dict[str, Any]:
    """``status --json`` of the folder now: its submitted master's while that has not made
    the experiment yet, else the experiment's (``status_dict``)."""
    waiting = submitted_status(path)
    if waiting is not None:
        return waiting
    exp, cfg, records, st = open_experiment(path)
    return status_dict(exp, cfg, st, records)


def experiments_in(path: Any) -> list[dict[str, Any]] | None:
    """``status`` of a folder that holds experiment folders (``asha_runs/``, Determined's ``det
    e list``): one summary per experiment, newest first; None when it holds none. A folder that
    cannot be read is listed with why."""
    root = Path(path).resolve()
    try:
        subs = [p for p in root.iterdir() if p.is_dir()]
    except OSError:
        return None
    found, closed = [], []
    for p in subs:
        try:
            if holds_experiment(p) or submitted_master(p) is not None:
                found.append(p)
        except OSError as e:  # a folder not shared with this user: it may be one
            closed.append((p, e))
    if not found:
        return None
    rows = [{"dir": str(p), "folder": p.name, "state": "unreadable",
             "error": f"cannot read it: {e.strerror} (not shared with you)"} for p, e in closed]
    for p in found:
        row: dict[str, Any] = {"dir": str(p), "folder": p.name}
        try:
            row["started"] = folder_made(p)
            if not holds_experiment(p):  # submitted, not made yet
                row.update(state="submitted", name=None, trials=None, metric=None, best=None)
            else:
                exp, cfg, records, st = open_experiment(p)
                d = status_dict(exp, cfg, st, records)
                row.update(state=d["state"], name=d["experiment"], trials=d["trials"],
                           metric=d["metric"], best=(d["best"] or {}).get("metric"))
                # the journal's first record: when the search started, whatever touched the
                # folder's files since (a copy, an rsync without -t)
                first = records[0].get("time") if records else None
                if isinstance(first, (int, float)):
                    row["started"] = float(first)
        except (AshaError, OSError, ValueError) as e:
            row.update(state="unreadable", error=str(e))
        rows.append(row)
    rows.sort(key=lambda r: r.get("started") or 0.0, reverse=True)
    return rows


def master_alive(exp: ExpDir) -> dict[str, Any] | None:
    """The lease record of the master running this experiment, or None when none runs."""
    return Lease(exp.lease).live_holder()


CLOCK_SKEW_S = 60.0  # a master's clock this far from the file system's is another clock


def master_info(exp: ExpDir, holder: dict[str, Any]) -> dict[str, Any]:
    """The running master: host, pid, Slurm job, and how long its lease has not been renewed
    (it renews it every few seconds: a long quiet is a master that is stopped or hung, whose
    live pid keeps the lease from being taken over on its host)."""
    try:
        quiet = max(0.0, time.time() - exp.lease.stat().st_mtime)
    except OSError:
        quiet = None
    return {"host": holder.get("host"), "pid": holder.get("pid"),
            "slurm_job_id": holder.get("slurm_job_id"), "lease_quiet_s": quiet}


def master_now(exp: ExpDir, holder: dict[str, Any]) -> float:
    """Now by the running master's clock, on which the times it writes (how long jobs have
    pended, since when submissions wait) are taken: this host's clock, shifted by how far the
    master's heartbeat is from the time its lease file was written where that is more than
    CLOCK_SKEW_S (the master runs on a host whose clock differs)."""
    now = time.time()
    beat = finite_float(holder.get("heartbeat"))
    try:
        written = exp.lease.stat().st_mtime
    except OSError:
        return now
    skew = 0.0 if beat is None else beat - written
    return now + skew if abs(skew) > CLOCK_SKEW_S else now


# ----------------------------------------------------------------------------- rungs
def rung_table(st: ExperimentState) -> list[dict[str, Any]]:
    """One row per bracket and rung: target length, results recorded (``completed``), trials
    training toward it (``running``; ``queued`` = queued or submitted, not started), waiting
    there for a promotion (``paused``), promoted from it, ended there (``stopped``), failed for
    good while training toward it (``failed``), and the best metric recorded there."""
    lengths = {i: b.rung_lengths for i, b in enumerate(st.searcher.brackets())}
    rows = [{"bracket": r.bracket, "rung": r.rung, "length": r.length, "completed": r.results,
             "running": 0, "queued": 0, "paused": 0, "promoted": r.promoted, "stopped": 0,
             "failed": 0, "best_metric": finite_float(r.best_metric)} for r in st.searcher.rungs()]
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


AGREE_MIN_TRIALS = 10  # trials with results at both lengths before their agreement is shown
AGREE_LOW = 0.3  # below this the shorter length's order is called unreliable
# at or above this at every pair of lengths up to the longest, the shorter results are called
# trustworthy: benchmarks/budget_cut.py --modes measured what one bracket gains there
AGREE_HIGH = 0.7


def agreement_pairs(st: ExperimentState) -> list[tuple[int, int, list[tuple[float, float]]]]:
    """For each pair of consecutive lengths with results: (shorter, longer, the metrics at the
    two lengths of every trial with a finite result at both: those promoted from the shorter)."""
    lengths = sorted({n for t in st.trials.values() for n in t.rung_metrics})
    out = []
    for short, long in zip(lengths, lengths[1:]):
        pairs = [(t.rung_metrics[short], t.rung_metrics[long]) for t in st.trials.values()
                 if finite_float(t.rung_metrics.get(short)) is not None
                 and finite_float(t.rung_metrics.get(long)) is not None]
        out.append((short, long, pairs))
    return out


def rung_agreement(st: ExperimentState) -> list[dict[str, Any]]:
    """For each pair of consecutive lengths with results (``agreement_pairs``): Spearman's
    rank correlation of the trials' metric at the two lengths, None below AGREE_MIN_TRIALS
    trials. Low or negative: the shorter results do not tell which of the promoted trials will
    do best, so stopping trials there (and a model sampler fitted on those results) may drop
    the configurations that would win."""
    out = []
    for short, long, pairs in agreement_pairs(st):
        corr = rank_correlation(*zip(*pairs)) if len(pairs) >= AGREE_MIN_TRIALS else None
        out.append({"from": short, "to": long, "trials": len(pairs), "rank_corr": corr})
    return out


def agreement_facts(cfg: ExperimentConfig, st: ExperimentState) -> dict[str, Any]:
    """What ``views.text.agreement_lines`` reads (a part of ``status_dict``): the rungs'
    agreement and the searcher and brackets its advice names."""
    return {"metric": cfg.searcher.metric, "searcher": cfg.searcher.name,
            "bracket_rungs": cfg.searcher.bracket_rungs,  # explicit brackets instead of mode
            "unit": cfg.searcher.length_unit, "brackets": bracket_table(st),
            "rung_agreement": rung_agreement(st)}


def rank_percentiles(xs: list[float]) -> list[float]:
    """Each value's rank among ``xs`` as a share: 0 the smallest, 1 the largest (ties: their
    mean rank)."""
    n = len(xs)
    return [r / (n - 1) if n > 1 else 0.5 for r in _ranks(xs)]


def rank_correlation(a: Any, b: Any) -> float:
    """Spearman's rank correlation of two equally long sequences (ties get their mean rank)."""
    ra, rb = _ranks(list(a)), _ranks(list(b))
    n = len(ra)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = sum((x - ma) ** 2 for x in ra)
    vb = sum((y - mb) ** 2 for y in rb)
    return cov / (va * vb) ** 0.5 if va > 0 and vb > 0 else 0.0


def _ranks(xs: list[float]) -> list[float]:
    order = sorted(range(len(xs)), key=xs.__getitem__)
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0
        i = j + 1
    return ranks


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
    the last record. A resumed record inside an open interval (a master that stopped without
    its record: killed, or its own disk full) ends that interval at the record before it: the
    time no master ran is not the search's."""
    total: float = 0.0
    since: float | None = None
    last: float | None = None
    for r in records:
        t = r.get("time")
        if not isinstance(t, (int, float)):
            continue
        before, last = last, float(t)
        if r["kind"] in _START_KINDS:
            if since is not None and before is not None:
                total += max(0.0, before - since)
            since = t
        elif r["kind"] in _END_KINDS and since is not None:
            total += max(0.0, t - since)
            since = None
    if since is not None and last is not None:
        total += max(0.0, (now if now is not None else last) - since)
    return total


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
    # a trial whose code ended its training trained that far, however far it was promoted
    done = sum(t.trained for t in st.trials.values())
    # what running segments train now (they count in ``done`` once their results are in): a
    # search of one long segment reads 0% until it ends, and this says it is under way
    in_flight = sum(max(0, t.target - t.length) for t in st.trials.values()
                    if st.status_of(t) == RUNNING)
    finished = st.lifecycle in ("completed", "cancelled", "failed")
    active = active_seconds(records, now)
    rate = done / active if active > 0 and done > 0 else None  # units per second
    preview = planned
    cap = st.max_compute  # the config's, or the last `resume --max-compute`
    capped = cap is not None and planned > cap
    if capped and cap is not None:  # the search creates fewer trials to stay within it
        planned = cap
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
            "units_in_flight": 0 if finished else in_flight,
            "capped": capped,  # units_planned is searcher.max_compute, below the preview
            "max_compute": cap,
            "max_compute_config": cfg.searcher.max_compute,  # differs after resume --max-compute
            "held_back": held_back(st),  # by the cap, once completed
            "unit": cfg.searcher.length_unit,
            "fraction": fraction, "active_hours": active / 3600.0,
            "units_per_hour": rate * 3600.0 if rate else None,
            "eta_seconds": eta}


def held_back(st: ExperimentState) -> dict[str, int] | None:
    """What ``max_compute`` kept a completed search from: trials not created (of the
    brackets' max_trials) and promotions not made; None when the cap did not bind."""
    if st.lifecycle != "completed" or st.max_compute is None:
        return None
    planned = sum(b.max_trials for b in st.searcher.brackets())
    replaced = getattr(st.searcher, "replace_invalid", True)  # an invalid trial's place is refilled
    created = sum(1 for t in st.trials.values() if t.status != INVALID or not replaced)
    # a trial whose checkpoints retention removed cannot go on (it entered its rung's top
    # after a raised cap brought more results): no cap makes that promotion
    out = {"trials_not_created": max(planned - created, 0),
           "promotions_not_made": sum(1 for t in st.trials.values()
                                      if st.searcher.held_by_cap(t.id)
                                      and t.id not in st.checkpoints_removed)}
    return out if any(out.values()) else None


def held_back_text(held: dict[str, int], root: Any) -> str:
    """``held_back`` as ``run``'s last line and ``status`` say it, with the way on."""
    return (f"{held['trials_not_created']} trial(s) not created, {held['promotions_not_made']} "
            f"promotion(s) not made; with more, `asha-hpc resume {shell_word(root)} --max-compute N` "
            "continues it")


def compute(st: ExperimentState, waiting: Sequence[Result] = ()) -> dict[str, Any]:
    """Job-hours (each attempt's result: ended - started) and GPU-hours where the results said
    how many GPUs the job had (None when none did); ``waiting``: results the next master
    journals (a paused search's last jobs), counted the same way."""
    job_s = sum(t.compute_s for t in st.trials.values())
    gpu = [g for t in st.trials.values() if (g := getattr(t, "gpu_s", None)) is not None]
    for r in waiting:
        more_s, more_gpu = spent(r.record().to_record())
        job_s += more_s or 0.0
        if more_gpu is not None:
            gpu.append(more_gpu)
    return {"job_hours": job_s / 3600.0, "gpu_hours": (sum(gpu) / 3600.0) if gpu else None}


# ----------------------------------------------------------------------------- events
def describe(rec: dict[str, Any], metric: str) -> str | None:
    """One line for a notable journal record, or None for bookkeeping ones."""
    k = rec.get("kind")
    tid = rec.get("trial")
    if k == Kind.INIT:
        return "search started"
    if k == Kind.RESUMED:
        return "master resumed"
    if k == Kind.STOPPED:
        return f"master stopped ({rec.get('reason') or 'stop'})"
    if k == Kind.CANCELLED:
        return "search cancelled"
    if k in (Kind.DONE, Kind.ABORTED):
        s = f"search {rec.get('state', 'completed')}"
        return s + (f": {_first_line(rec.get('message'))}" if rec.get("message") else "")
    if k == Kind.WORKERS_MODE and rec.get("measured", True):
        mode = "warm workers" if rec.get("mode") == "pool" else "a job per segment"
        return f"workers: auto chose {mode}: {rec.get('reason')}"
    if k == Kind.INTENT:
        if rec.get("attempt", 0) > 0:
            return f"trial {tid} retried (attempt {rec['attempt']}) toward length {rec.get('length')}"
        if rec.get("segment", 0) > 0:
            return f"trial {tid} promoted: continues to length {rec.get('length')}"
        return f"trial {tid} created: trains to length {rec.get('length')}"
    if k == Kind.RESULT:
        line = _result_line(rec, metric)
        skipped = rec.get("skipped_checkpoints")
        if skipped:  # it could not go on from the newest: said, not lost in the job's log
            line += (f"; it could not go on from its newest checkpoint, incomplete: "
                     f"{Path(skipped[0]).name}{' and more' if len(skipped) > 1 else ''}, and "
                     + ("went on from an older one" if rec.get("restored")
                        else "trained from the beginning"))
        if rec.get("ignored_checkpoint"):
            line += ("; its code never read its checkpoint (trial.latest_checkpoint, "
                     "ASHA_LATEST_CHECKPOINT): it trained from scratch")
        if rec.get("no_checkpoint"):
            line += "; it has no checkpoint: promoted, it trains again from the start"
        return line
    return _other_line(rec)


def _result_line(rec: dict[str, Any], metric: str) -> str:
    tid, st = rec.get("trial"), rec.get("status")
    if st == "completed":
        v = (rec.get("metrics") or {}).get(metric)
        if rec.get("carried"):  # no job ran: its final model's result stands at this length
            return (f"trial {tid} promoted to length {rec.get('length')} without training (its "
                    f"code ended its training; the model is final): {metric}={_fmt(v)}")
        return (f"trial {tid} reached length {rec.get('length')}: {metric}={_fmt(v)}"
                + (" (diverged)" if diverged(v) else ""))
    if st == "interrupted":
        return f"trial {tid} interrupted ({signals.cause(rec.get('stop_reason'))})"
    if st == "invalid_hp":
        return f"trial {tid} rejected its hyperparameters: {error_summary(rec.get('error'))[:160]}"
    if rec.get("fatal"):  # every trial would repeat it: its own first line says why
        return f"trial {tid} error: {_first_line(rec.get('error'))}"
    full = rec.get("disk_full")
    if isinstance(full, dict):  # the machine's fault, whatever text the library raised
        what = "the quota was exhausted" if full.get("quota") else "there was no space left"
        return (f"trial {tid} stopped: {what} (writing {full.get('path')}); counted against "
                f"nothing, it goes on once there is room ({error_summary(rec.get('error'))[:100]})")
    return f"trial {tid} error: {error_summary(rec.get('error'))[:160]}"


def _other_line(rec: dict[str, Any]) -> str | None:
    k = rec.get("kind")
    tid = rec.get("trial")
    if k == Kind.JOB_DEAD:
        if rec.get("withdrawn"):
            return f"trial {tid} job {rec.get('job_id')} cancelled while queued: {rec['withdrawn']}"
        if rec.get("hung"):
            return f"trial {tid} job {rec.get('job_id')} hung ({rec['hung']}): cancelled"
        return f"trial {tid} job {rec.get('job_id')} ended without a result ({rec.get('state')})"
    if k == Kind.SUBMIT_FAILED:
        return f"trial {tid} submission failed: {_first_line(rec.get('error'))}"
    if k == Kind.RETRY_FAILED:
        ids = rec.get("trials") or []
        return ("retrying after a fix (--retry-failed): " +
                (f"failed trials {', '.join(map(str, ids))} continue; " if ids else "") +
                "restarts count from zero")
    if k == Kind.NODES_READMITTED:
        hosts = ', '.join(map(str, rec.get('hosts') or []))
        if isinstance(rec.get("after_h"), (int, float)):
            return f"node {hosts} taken back after {rec['after_h']:g} h (readmit_nodes_after_h)"
        return f"node {hosts} taken back (--readmit-node)"
    return None


def disk_full_pause(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The full disk or quota that holds new segments back: ``{"time", "trial", "path",
    "quota"}`` of the last attempt that ended on it, while no segment was handed out since (the
    master hands out none until there is room: ``Master._room``) and no master resumed the
    search (one that does hands out work again); None otherwise. A stopped master's pause is
    in no file but this: its ``status`` still says why nothing starts."""
    last: dict[str, Any] | None = None
    for r in records:
        kind = r.get("kind")
        if kind in (Kind.RESULT, Kind.JOB_DEAD) and r.get("disk_full"):
            full = r["disk_full"] if isinstance(r["disk_full"], dict) else {}
            last = {"time": r.get("time"), "trial": r.get("trial"), "path": full.get("path"),
                    "quota": bool(full.get("quota")), "free": full.get("free"),
                    "need": full.get("need")}
        elif kind in (Kind.INTENT, Kind.RESUMED) and last is not None:
            last = None
    return last


def held_for_room(records: list[dict[str, Any]], root: Path) -> dict[str, Any] | None:
    """``disk_full_pause``, unless its filesystem has the room now that the master waits for
    (free space is measured; a quota, which only a write shows, is taken as still full)."""
    from ..protocol.diskfull import DiskFull

    held = disk_full_pause(records)
    if held is None or not held.get("path"):
        return held
    seen = DiskFull(Path(held["path"]), held["quota"], root,
                    free_at=held["free"] if isinstance(held["free"], int) else None)
    seen.needs(held.get("need"))
    return None if seen.has_space() else held


def master_room_wait(exp: ExpDir) -> dict[str, Any] | None:
    """The wait of a master whose own write met a full disk or quota (nothing journaled it:
    ``Master._mark_room_wait``'s file says it), as ``disk_full_pause``'s dict with ``trial``
    None, and the filesystem measured now: ``path`` the experiment's or its checkpoint
    folder's mount point with no room, ``quota`` where both have room (only a write tells a
    quota), ``free`` its free bytes. None without a wait."""
    from ..protocol.diskfull import short_of_room

    try:
        since = exp.room_wait.stat().st_mtime
    except OSError:
        return None
    short = short_of_room([exp.root, Path(os.path.realpath(exp.root / TRIALS))])
    return {"time": since, "trial": None, "path": str(short[0][0]) if short else None,
            "quota": not short, "free": short[0][1] if short else None}


def events(records: list[dict[str, Any]], metric: str, n: int = EVENTS_N) -> list[dict[str, Any]]:
    """The last ``n`` notable records: ``{"time", "elapsed_s" (since the first record), "text"}``."""
    t0 = start_time(records) or 0.0
    # submissions the scheduler could not take now, and the tries after them: status shows the
    # wait in one line while it lasts; an outage of hours would otherwise fill the events
    waited = {(r.get("trial"), r.get("segment"), r.get("attempt")) for r in records
              if r.get("kind") == Kind.SUBMIT_FAILED and r.get("transient")}
    out: list[dict[str, Any]] = []
    for r in reversed(records):
        if r.get("kind") == Kind.SUBMIT_FAILED and r.get("transient") or (
                r.get("kind") == Kind.INTENT and isinstance(r.get("attempt"), int)
                and (r.get("trial"), r.get("segment"), r["attempt"] - 1) in waited):
            continue
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
    f = finite_float(v)
    return f"{f:.6g}" if f is not None else str(v)


def _first_line(s: Any) -> str:
    return str(s).strip().splitlines()[0][:160] if s and str(s).strip() else ""


# ----------------------------------------------------------------------------- status
FAILED_N = 10  # failed trials status lists


def waiting_results(exp: ExpDir, st: ExperimentState
                    ) -> tuple[dict[int, str], list[int], list[Result]]:
    """While no master runs, what the inbox holds for the next one: running trials whose
    current attempt has ended (trial -> the result's status), pending trials whose job has
    started since (their ``started`` message waits), and those results."""
    ended: dict[int, str] = {}
    started: list[int] = []
    results: list[Result] = []
    for m in scan_inbox(exp.inbox):
        try:
            msg = from_json(m.body, str(exp.root), m.name)
        except MessageError:
            continue
        if not isinstance(msg, Started):
            continue
        t = st.trials.get(msg.trial)
        if t is None or (t.segment, t.attempt) != (msg.segment, msg.attempt):
            continue
        if isinstance(msg, Result) and st.status_of(t) in (RUNNING, PENDING):
            ended[t.id] = msg.status
            results.append(msg)
        elif not isinstance(msg, Result) and st.status_of(t) == PENDING:
            started.append(t.id)
    return ended, sorted(set(started) - set(ended)), results


def _held_past(t: TrialState) -> dict[str, int]:
    """``checkpoint_length`` of a failed trial whose checkpoint holds more than its result
    (saved, then crashed): ``--retry-failed`` goes on from there."""
    n = checkpoint_length(Path(t.checkpoint)) if t.checkpoint else None
    return {"checkpoint_length": n} if n is not None and n > t.length else {}


def held_short(t: TrialState) -> int | None:
    """The length the trial's checkpoint holds where it is short of what its result counts
    for (the code reported at 64 after its last save at 17: a library's early stopping it did
    not say was final); None where it holds it all, or says nothing."""
    if t.checkpoint is None:
        return None
    n = checkpoint_length(Path(t.checkpoint))
    return n if n is not None and n < t.trained else None


def trial_summary(t: TrialState, job: dict[str, Any] | None = None,
                  waiting: str | None = None, short: bool = False) -> dict[str, Any]:
    """A trial as ``status --json`` lists it; ``short``: with ``checkpoint_length`` where its
    checkpoint holds less than its result counts for (a manifest read: the top trials only)."""
    held = held_short(t) if short else None
    return {"trial_id": t.id, "bracket": t.bracket, "status": t.status, "length": t.length,
            "target": t.target, "metric": finite_float(t.metric), "hparams": t.hparams,
            "restarts": t.restarts, "compute_s": round(t.compute_s, 3),
            "checkpoint": t.checkpoint, "host": t.host,
            "logs": {"out": job.get("out"), "err": job.get("err")} if job else None,
            # its code ended its training there on purpose: the model is final
            **({"trained": t.ended_early} if t.ended_early is not None else {}),
            **({"checkpoint_length": held} if held is not None else {}),
            **({"result_waiting": waiting} if waiting else {})}


def status_dict(exp: ExpDir, cfg: ExperimentConfig, st: ExperimentState,
                records: list[dict[str, Any]] | None = None, now: float | None = None,
                top: int = TOP_N) -> dict[str, Any]:
    """``status --json``: the counts, rungs and best trial, then ``brackets``, ``rung_table``
    (per rung counts), ``top``, ``running_trials``, ``compute``, ``progress`` (with the ETA),
    ``events``, ``time_limits`` and ``workers``. ``now``: the time the ETA counts from (default:
    now while a master runs, else the journal's last record)."""
    if records is None:
        records, _, _ = read_journal(exp.journal)
    finished = st.lifecycle in ("completed", "failed", "cancelled")
    alive = None if finished else master_alive(exp)
    info = master_info(exp, alive) if alive else None
    # a master stopped (kill -STOP, a frozen node) or hung: its process lives, so it holds the
    # lease, but it reads no result: count and time as for one that is not running
    frozen = info is not None and (info.get("lease_quiet_s") or 0) > LEASE_TIMEOUT_S
    if now is None and alive is not None and not capabilities(cfg).virtual_time:
        beat = finite_float(alive.get("heartbeat"))
        now = beat if frozen and beat is not None else master_now(exp, alive)
    c = st.counts()
    best = st.ranked()
    ranked = best[:top]
    # the jobs that ended while no master ran left their results in the inbox
    waiting, started, unread = (waiting_results(exp, st) if (alive is None or frozen)
                                and not finished else ({}, [], []))
    running = sorted((t for t in st.trials.values() if st.status_of(t) == RUNNING),
                     key=lambda t: t.id in waiting)[:10]
    jobs = latest_logs(exp, records, [t.id for t in ranked] + [t.id for t in running])
    spent = compute(st, unread)
    return {
        "experiment": cfg.name,
        "dir": str(exp.root),
        "state": st.lifecycle if finished else ("running" if alive else "stopped"),
        # "new" until a master has journaled the search's start (one may be starting)
        "started": st.lifecycle != "new",
        # what stopped it: "paused" (`asha-hpc pause`), or the master's signal (SIGINT)
        "stopped_by": st.stopped_by if not alive and st.lifecycle == "stopped" else None,
        "master": info,
        # no master runs, but the one `submit` sent is queued or starting: it resumes the search
        "master_job": _master_job(exp.root) if alive is None and not finished else None,
        "message": st.message,
        "metric": cfg.searcher.metric,
        "smaller_is_better": cfg.searcher.smaller_is_better,
        "trials": {"total": c["total"], "running": c["running"],
                   "pending": c["pending"] + c["queued"], "paused": c["paused"],
                   "completed": c["completed"] + c["stopped"], "reached_top": c["completed"],
                   "stopped_early": c["stopped"], "failed": c["failed"], "invalid": c["invalid"],
                   "cancelled": c["cancelled"],
                   # the searcher had created them when the search was cancelled: not listed
                   **({"never_started": st.never_started} if st.never_started else {}),
                   **({"interrupted": c["interrupted"]} if c["interrupted"] else {})},
        "rungs": [{"bracket": r.bracket, "rung": r.rung, "length": r.length,
                   "completed": r.results, "promoted": r.promoted,
                   "best_metric": finite_float(r.best_metric)} for r in st.searcher.rungs()],
        "best": ({"trial_id": best[0].id, "metric": finite_float(best[0].metric),
                  "hparams": best[0].hparams, "length": best[0].length} if best else None),
        "diverged": [{"trial_id": t.id, "length": t.length, "metric": str(t.metric)}
                     for t in sorted(st.trials.values(), key=lambda t: t.id) if t.diverged],
        # the last ones, each with why (the whole error: `asha-hpc logs DIR ID --err`)
        "failed_trials": [{"trial_id": t.id, "length": t.length, "restarts": t.restarts,
                           # attempts that ended without counting against max_restarts
                           "not_counted": t.infra_retries,
                           # trained past its last result before it failed (saved, then
                           # crashed): --retry-failed goes on from there
                           **_held_past(t),
                           "error": error_summary(t.error)}
                          for t in sorted(st.trials.values(), key=lambda t: t.id)
                          if st.status_of(t) == FAILED][-FAILED_N:],
        "compute_hours": spent["job_hours"],
        "recent_events": [e[1] for e in st.events[-10:]],
        "sampler": sampler_summary(cfg, st),
        "backend": cfg.backend,
        **agreement_facts(cfg, st),
        "rung_table": rung_table(st),
        "top": [trial_summary(t, jobs.get(t.id), short=True) for t in ranked],
        "running_trials": [{**trial_summary(t, jobs.get(t.id), waiting.get(t.id)),
                            # how long its segment has run, while a master watches it
                            **({"running_s": max(0.0, now - t.attempt_started)}
                               if alive and now is not None and t.attempt_started is not None
                               and t.id not in waiting else {})}
                           for t in running],
        "results_waiting": len(waiting),
        "started_waiting": len(started),  # pending trials whose jobs started since
        "compute": spent,
        "progress": {**progress(cfg, st, records, now),
                     "max_compute_request": pending_cap_request(exp),
                     "readmit_request": pending_readmit_request(exp),
                     "cancel_request": pending_stop(exp.cancel_request, st.lifecycle),
                     "pause_request": pending_stop(exp.pause_request, st.lifecycle)},
        "events": events(records, cfg.searcher.metric),
        "time_limits": time_limits_table(st),
        "workers": workers_status(cfg, st.auto, st.caps),
        # the code leaves state behind in a warm worker's process (state.LEFT_STATE)
        "left_state": (LEFT_STATE.format(n=st.passed_fresh)
                       if st.passed_fresh >= LEFT_STATE_SEGMENTS else None),
        # promoted trials train from scratch (state.IGNORED_CHECKPOINT, NO_CHECKPOINT)
        "checkpoints": st.checkpoint_advice,
        "queue": queue_status(exp) if alive else None,
        "nodes_excluded": dict(st.nodes.bad),
        # when the master takes each back on its own (readmit_nodes_after_h), epoch seconds
        "nodes_readmit_at": ({h: at for h, (at, _) in st.nodes.readmit_at(
            cfg.readmit_nodes_after_h).items()} if cfg.readmit_nodes_after_h else {}),
        "pool_unready": pool_unready(exp, st),
        # the master's own wait first: it is measured now, and only this file tells it
        "disk_full": None if finished else master_room_wait(exp) or held_for_room(records,
                                                                                  exp.root),
        "now": now,  # the time durations above count to (the master's clock while it runs)
    }


def queue_status(exp: ExpDir) -> dict[str, Any] | None:
    """Why the search's jobs do not run yet, as the running master last saw it
    (protocol/queue.py): ``jobs`` pending with the scheduler's reason, and ``submissions_wait``
    while the scheduler cannot take jobs; None where the master has said nothing (no queue to
    explain, or before its poll)."""
    from dataclasses import asdict

    from ..protocol.queue import read_queue

    q = read_queue(exp)
    return None if q is None else asdict(q)


def pending_stop(request: Path, lifecycle: str) -> dict[str, Any] | None:
    """The cancel or pause ``asha-hpc cancel`` / ``pause`` asked for (``request``) that no
    master has carried out yet: when it was asked and the request's file (None: none waits, or
    the search is over)."""
    from ..protocol.requests import asked_at

    asked = None if lifecycle in ("completed", "cancelled", "failed") else asked_at(request)
    return None if asked is None else {"asked": asked, "file": str(request)}


def pending_cap_request(exp: ExpDir) -> int | None:
    """The units a ``resume --max-compute`` asked a master for, that no master has taken yet
    (None: none waits, or the file holds no whole number: the master refuses that one)."""
    from ..protocol.requests import read_cap_request

    try:
        return read_cap_request(exp.max_compute_request).units
    except (OSError, ValueError):
        return None


def pool_unready(exp: ExpDir, st: ExperimentState) -> dict[str, Any] | None:
    """Pool jobs that ended before their code ran, in a row (None: fewer than the streak that
    slows the pool): how many, and the last one's job, node, why and log file."""
    from ..backends import log_files

    dead = st.unready_streak()
    if len(dead) < UNREADY_STREAK or st.lifecycle != "running":
        return None
    last = dead[-1]
    err = log_files(exp.jobs, str(last["job_id"]))[1] if last.get("job_id") else None
    return {"jobs": len(dead), "job_id": last.get("job_id"), "host": last.get("host"),
            "why": last.get("why"), "log": str(err) if err else None}


def pending_readmit_request(exp: ExpDir) -> list[str] | None:
    """The nodes a ``resume --readmit-node`` asked a master to take back, that no master has
    taken yet (None: none waits)."""
    from ..protocol.requests import read_readmit_request

    try:
        return read_readmit_request(exp.readmit_request)[0] or None
    except (OSError, ValueError):
        return None


def sampler_summary(cfg: ExperimentConfig, st: ExperimentState) -> dict[str, Any]:
    """``status --json`` ``sampler``: how new trials are drawn and, for a model sampler, how
    many of the trials so far its model drew (the rest were random: the ``random_fraction``,
    or no length had enough results to fit yet)."""
    s = cfg.searcher
    if s.sampler == "random":
        return {"name": "random"}
    out = {"name": s.sampler, "random_fraction": s.random_fraction,
           "model_draws": len(st.model_drawn), "trials": len(st.trials)}
    if st.warm is not None:
        out["warm_start"] = dict(st.warm)
    return out


def time_limits_table(st: ExperimentState) -> list[dict[str, Any]]:
    """Per rung: time limits asked for and run times seen (``status --json`` ``time_limits``;
    empty when the backend took no time limits). See asha_hpc/master/timelimits.py."""
    return st.times.table(rung_levels(b.rung_lengths for b in st.searcher.brackets()))


# ----------------------------------------------------------------------------- best, export
def _master_job(root: Path) -> dict[str, str] | None:
    from ..submit import master_job_waiting

    got = master_job_waiting(root)
    if got is None:
        return None
    return {**dict(zip(("job_id", "state", "reason"), got)), "log": str(master_log(root, got[0]))}


def _core_api_checkpoint(ckpt: str | None, missing: bool) -> dict[str, str]:
    """``storage_id`` and ``load_from`` where the checkpoint holds a Determined Core API
    script's (``store_path``'s folder inside it: what the script's ``restore_path`` opens)."""
    if ckpt is None or missing:
        return {}
    from ..compat.determined.core import newest_stored

    got = newest_stored(Path(ckpt))
    return {} if got is None else {"storage_id": got[0], "load_from": str(got[1])}


def checkpoint_to_load(exp: ExpDir, t: TrialState) -> tuple[str | None, int | None, bool]:
    """The checkpoint to load trial ``t``'s model from, the length it holds where that is not
    the trial's result's, and whether the journaled one is gone with nothing to stand for it
    (removed or moved by hand). A later segment that was cut short (cancelled, stopped) saved
    a newer checkpoint and pruned the journaled one: the trial's newest is the one to load."""
    if t.checkpoint is None or Path(t.checkpoint).exists():
        return t.checkpoint, held_short(t), False
    newest = latest_checkpoint(exp.checkpoints(t.id))
    if newest is None:
        return t.checkpoint, None, True
    n = checkpoint_length(newest)
    return str(newest), (n if n is not None and n > t.length else None), False


def best_rows(exp: ExpDir, st: ExperimentState, records: list[dict[str, Any]],
              top: int) -> list[dict[str, Any]]:
    """``best``: the ``top`` trials, best first, with their latest job's log files."""
    ranked = st.ranked()[:top]
    jobs = latest_logs(exp, records, [t.id for t in ranked])
    rows = []
    for t in ranked:
        j = jobs.get(t.id) or {}
        ckpt, ckpt_length, missing = checkpoint_to_load(exp, t)
        # a checkpoint whose files do not match its manifest (a file that an asynchronous
        # checkpointer wrote after the save had ended): asha_hpc's jobs would skip it
        problem = checkpoint_problem(Path(ckpt)) if ckpt is not None and not missing else None
        rows.append({"trial_id": t.id, "metric": finite_float(t.metric), "hparams": t.hparams,
                     # ASHA_TRIAL_SEED, trial.seed: to train it again alike (export's column)
                     "seed": trial_seed(st.cfg.experiment_seed, t.id),
                     "checkpoint": ckpt, "checkpoint_missing": missing,
                     **({"checkpoint_problem": problem} if problem else {}),
                     # the newest checkpoint's length, where it is not the result's
                     **({"checkpoint_length": ckpt_length} if ckpt_length is not None else {}),
                     "length": t.length, "state": st.status_of(t),
                     # all its last result reported (Ray's result.metrics), JSON's numbers
                     "metrics": {k: finite_float(v) if isinstance(v, float) else v
                                 for k, v in (t.last_metrics or {}).items()
                                 if isinstance(v, (int, float, str, bool))},
                     # its code ended its training here on purpose: the model is final
                     **({"trained": t.ended_early} if t.ended_early is not None else {}),
                     **_core_api_checkpoint(ckpt, missing),
                     "error": t.error if st.status_of(t) == "failed" else None,
                     "logs": {"out": j.get("out"), "err": j.get("err")}})
    return rows


def _iso_time(t: float | None) -> str:
    """An epoch time as ISO 8601 in local time with its UTC offset ('' for none), as
    ``pandas.to_datetime`` reads it."""
    if t is None:
        return ""
    return datetime.datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


def export_rows(st: ExperimentState, exp: ExpDir | None = None) -> list[dict[str, Any]]:
    """``export``: one row per trial, hparams flattened to dotted columns, metric per rung.
    With ``exp``, the checkpoint column is the one to load (as ``best`` says), empty where
    none is left; without it, the journal's, unchecked."""
    metric = st.cfg.searcher.metric
    lengths = sorted({r.length for r in st.searcher.rungs()})
    rows = []
    fixed = ("trial_id", "bracket", "state", "diverged", "length", "restarts", "compute_s",
             "started", "ended", "seed", "checkpoint", "sampled_by", "error")
    # the metric's own column, unless its name is one of ours (a metric may be called "state")
    col = f"metrics.{metric}" if metric in fixed or metric.startswith("hparams.") else metric
    any_ended = any(t.ended_early is not None for t in st.trials.values())
    for t in sorted(st.trials.values(), key=lambda t: t.id):
        # a diverged trial's NaN or infinite metric is an empty cell (JSON has no NaN): the
        # diverged column says why
        row: dict[str, Any] = {"trial_id": t.id, "bracket": t.bracket, "state": st.status_of(t),
                               "diverged": t.diverged, "length": t.length,
                               col: finite_float(t.metric),
                               "restarts": t.restarts, "compute_s": round(t.compute_s, 3),
                               # when its code first started and last ended (queue waits and
                               # pauses between segments included), local time with its offset
                               "started": _iso_time(t.first_started),
                               "ended": _iso_time(t.last_ended),
                               # ASHA_TRIAL_SEED, trial.seed: to train it again alike
                               "seed": trial_seed(st.cfg.experiment_seed, t.id),
                               "checkpoint": _export_checkpoint(exp, t),
                               "sampled_by": st.sampled_by(t.id) or "random"}
        # why it failed, or why its code rejected its hyperparameters (InvalidHP's message)
        row["error"] = error_summary(t.error) if st.status_of(t) in (FAILED, INVALID) else ""
        if any_ended:  # how far the model trained: where its code ended it, else its length
            row["trained"] = t.trained
        row.update({f"hparams.{k}": v for k, v in flat_hparams(t.hparams).items()})
        # what else its last result reported, as Ray's and Optuna's tables have it
        # (NaN and infinities as empty cells, as the searcher's metric's)
        row.update({f"metrics.{k}": finite_float(v) if isinstance(v, float) else v
                    for k, v in (t.last_metrics or {}).items()
                    if k != metric and isinstance(v, (int, float, str, bool))})
        for L in lengths:
            row[f"{col}@{L}"] = finite_float(t.rung_metrics.get(L))
        rows.append(row)
    return rows


def _export_checkpoint(exp: ExpDir | None, t: TrialState) -> str:
    if exp is None:
        return t.checkpoint or ""
    ckpt, _, missing = checkpoint_to_load(exp, t)
    return "" if missing or ckpt is None else ckpt

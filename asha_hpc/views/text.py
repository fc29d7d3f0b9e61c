"""``status`` as text: a plain rendering (golden-tested, pipes, logs) and ``--watch``, which
redraws in place on a terminal, with ``rich`` when it is installed (``pip install
'asha-hpc[ui]'``), else by clearing the screen and printing the plain text again."""
from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from ..errors import shell_word
from ..master.lease import TIMEOUT_S as LEASE_TIMEOUT_S
from ..space import Const, flat_hparams
from .observe import fmt_duration
from .status import AGREE_HIGH, AGREE_LOW

FINISHED = ("completed", "cancelled", "failed")

RUNG_COLS = [("bracket", "bracket"), ("rung", "rung"), ("length", "length"),
             ("completed", "completed"), ("running", "running"), ("queued", "queued"),
             ("paused", "paused"), ("promoted", "promoted"), ("stopped", "stopped"),
             ("failed", "failed")]


def hp_text(hp: dict[str, Any]) -> str:
    """``lr=0.00123 opt.name=adam width=64 shuffle=true``: short, one line, sorted, values
    as the config spells them (YAML's true, false, null)."""
    parts = []
    for k, v in sorted(flat_hparams(hp).items()):
        if isinstance(v, bool) or v is None:
            v = json.dumps(v)
        elif isinstance(v, float):
            v = f"{v:.4g}"
        elif not isinstance(v, (int, str)):
            v = json.dumps(v)
        parts.append(f"{k}={v}")
    return " ".join(parts)


def metric_text(v: float | None) -> str:
    return "-" if v is None else f"{v:.6g}"


def _table(header: list[str], rows: list[list[str]], left: int = 0) -> list[str]:
    """Right-aligned columns, except the last ``left`` ones."""
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    n = len(header)

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i >= n - left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    return [line(header)] + [line(r) for r in rows]


def _queue_lines(queue: dict[str, Any] | None, now: float | None = None) -> list[str]:
    """Submissions that wait for the scheduler; pending jobs by the scheduler's reason, those
    that will not start as submitted on a line per reason, with what to do."""
    from ..backends.base import for_jobs, jobs_text

    if not queue:
        return []
    now = time.time() if now is None else now
    lines = []
    wait = queue.get("submissions_wait")
    if wait:
        lines.append(f"submissions wait: the scheduler cannot take jobs, for "
                     f"{fmt_duration(now - wait['since'])} ({wait['error']}); the master tries "
                     f"again by itself")
    groups: dict[str, list[dict[str, Any]]] = {}
    for j in queue.get("jobs") or []:
        groups.setdefault(j["reason"], []).append(j)
    if not groups:
        return lines
    order = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    parts, stuck = [], []
    for reason, jobs in order:
        longest = fmt_duration(now - min(j["since"] for j in jobs))
        if jobs[0]["kind"] == "stuck":
            parts.append(f"{reason} {len(jobs)} (will not start as submitted)")
            ids = [j["job"] for j in jobs]
            trials = {j["job"]: j["trials"] for j in jobs}
            stuck.append(f"  {jobs_text(ids, trials)}, pending up to {longest} for {reason}: "
                         f"{for_jobs(jobs[0]['means'], ids[0], ids)}")
        else:
            parts.append(f"{reason} {len(jobs)} ({jobs[0]['means']}; up to {longest})")
    n = sum(len(v) for v in groups.values())
    return lines + [f"queue: {n} job(s) pending: " + ", ".join(parts)] + stuck


def _summary_lines(d: dict[str, Any]) -> list[str]:
    t = d["trials"]
    p = d.get("progress") or {}
    c = d.get("compute") or {}
    order = "smaller" if d.get("smaller_is_better", True) else "larger"
    by = f": {d['stopped_by']}" if d.get("stopped_by") else ""
    lines = [f"experiment {d['experiment']}  [{d['state']}{by}]  {d['dir']}",
             f"searcher {d.get('searcher', '?')}{_sampler_text(d.get('sampler'))} on "
             f"{d.get('backend', '?')}, metric {d['metric']} ({order} is better)",
             f"trials: {t['total']} total, {t['running']} running, {t['pending']} pending, "
             f"{t['paused']} paused, {t['completed']} completed ({t['reached_top']} to the top, "
             f"{t['completed'] - t['reached_top']} stopped at a rung), "
             f"{t['failed']} failed, {t['invalid']} invalid"
             + (f", {t['cancelled']} cancelled" if t.get("cancelled") else "")
             + (f" ({t['never_started']} more the search had created "
                f"{'was' if t.get('never_started') == 1 else 'were'} never started: not listed)"
                if t.get("never_started") else "")
             + (f", {t['interrupted']} interrupted" if t.get("interrupted") else "")]
    m = d.get("master")
    if m and (m.get("lease_quiet_s") or 0) > LEASE_TIMEOUT_S:  # a stopped or hung master
        waiting = d.get("results_waiting") or 0
        ended = (f" {waiting} of the running trials ended since; their results wait for it."
                 if waiting else "")
        lines.append(f"the master (pid {m['pid']} on {m['host']}) has not renewed its lease for "
                     f"{fmt_duration(m['lease_quiet_s'])} (it does every few seconds): it is "
                     f"stopped (kill -STOP, a frozen node) or hung.{ended} Its process still lives: a "
                     f"master started on its host does not take over (one started on another "
                     f"host does, {fmt_duration(LEASE_TIMEOUT_S)} after the last renewal); end "
                     f"it, or if it is gone for sure, `asha-hpc resume {shell_word(d['dir'])} "
                     f"--force`")
    mj = d.get("master_job")
    if d["state"] == "stopped" and mj:
        why = f" ({mj['reason']})" if mj.get("reason") and mj["reason"] != "None" else ""
        log = shell_word(mj["log"])
        lines.append(f"no master is running; the master's Slurm job {mj['job_id']} is "
                     + (f"running but has not taken the search yet: it is starting (or stuck "
                        f"before it: see {log}), and resumes the search once started"
                        if mj["state"] == "RUNNING" else
                        f"{mj['state'].lower()}{why} and resumes the search when it starts")
                     + f" (a `resume` by hand now would make it fail: `scancel {mj['job_id']}` "
                     "first)")
    elif d["state"] == "stopped":
        waiting, started = d.get("results_waiting") or 0, d.get("started_waiting") or 0
        news = ([f"{started} of the pending trials' jobs started"] if started else []) + \
            ([f"{waiting} of the running trials ended"] if waiting else [])
        ended = (f"{' and '.join(news)} since, their messages wait in "
                 f"{shell_word(os.path.join(d['dir'], 'inbox'))}; " if news else "")
        lines.append(f"no master is running: {ended}`asha-hpc resume {shell_word(d['dir'])}` "
                     f"goes on")
    if p:
        frac = "-" if p.get("fraction") is None else f"{100 * p['fraction']:.1f}%"
        rate = p.get("units_per_hour")
        rate_s = ((f"{rate:.0f} {p['unit']}/h" if rate >= 100 else f"{rate:.3g} {p['unit']}/h")
                  if rate else "-")
        eta = p.get("eta_seconds")
        eta_s = ("done" if d["state"] == "completed" else fmt_duration(eta)
                 + (" once resumed" if d["state"] == "stopped" and eta is not None else ""))
        planned = f"{p['units_done']}/{p['units_planned']} {p['unit']}"
        if d["state"] == "completed":
            prev = p.get("units_preview")
            planned += f" trained ({frac}; plan's preview {prev})" if prev and prev != p["units_planned"] \
                else f" trained ({frac})"
        else:
            flight = p.get("units_in_flight") or 0
            planned += (f" planned ({frac}{'; max_compute' if p.get('capped') else ''}"
                        f"{f'; {flight} more in running segments' if flight else ''})")
        lines.append(f"progress: {planned}; {rate_s} over {fmt_duration(p['active_hours'] * 3600)} "
                     f"active; ETA {eta_s}")
        held = p.get("held_back")
        if held:
            from .status import held_back_text

            lines.append(f"max_compute ({p['max_compute']} {p['unit']}) ended it: "
                         f"{held_back_text(held, d['dir'])} (the plan's preview: "
                         f"{p.get('units_preview')} {p['unit']})")
        if p.get("max_compute") != p.get("max_compute_config"):
            lines.append(f"max_compute: {p['max_compute']} {p['unit']}, set by `resume --max-compute` "
                         f"(the config's: {p.get('max_compute_config') or 'none'})")
        if p.get("max_compute_request") is not None:
            who = ("the master takes it at its next poll" if d["state"] == "running"
                   else f"`asha-hpc resume {shell_word(d['dir'])}` takes it")
            lines.append(f"max_compute {p['max_compute_request']} {p['unit']} asked for by "
                         f"`resume --max-compute`, not taken yet: {who}")
        if p.get("readmit_request"):
            who = ("the master takes it at its next poll" if d["state"] == "running"
                   else f"`asha-hpc resume {shell_word(d['dir'])}` takes it")
            lines.append(f"node {', '.join(p['readmit_request'])} asked back by `resume "
                         f"--readmit-node`, not taken yet: {who}")
        cancel = p.get("cancel_request")
        if cancel:
            asked = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(cancel["asked"]))
            who = ("the master cancels the search at its next poll" if d["state"] == "running"
                   else f"`asha-hpc resume {shell_word(d['dir'])}` cancels the search (remove "
                        f"{shell_word(cancel['file'])} to keep it)")
            lines.append(f"cancel asked for at {asked} by `asha-hpc cancel`, not done yet: {who}")
        pause = p.get("pause_request")
        if pause and not cancel:
            asked = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(pause["asked"]))
            who = ("the master pauses the search at its next poll" if d["state"] == "running"
                   else f"no master runs to do it: `asha-hpc pause {shell_word(d['dir'])}` stops "
                        f"the jobs it left (`asha-hpc resume` drops the request and goes on)")
            lines.append(f"pause asked for at {asked} by `asha-hpc pause`, not done yet: {who}")
    lines += _queue_lines(d.get("queue"), d.get("now"))
    readmit_at = d.get("nodes_readmit_at") or {}
    for host, why in (d.get("nodes_excluded") or {}).items():
        back = (f"the master takes it back on its own in "
                f"{fmt_duration(readmit_at[host] - (d.get('now') or time.time()))} "
                f"(readmit_nodes_after_h), or sooner once it is repaired: " if host in readmit_at
                else "once it is repaired: ")
        lines.append(f"node {host} excluded (its jobs go elsewhere): {why}; {back}"
                     f"`asha-hpc resume {shell_word(d['dir'])} --readmit-node {host}`")
    dead = d.get("pool_unready")
    if dead:
        on = f" on node {dead['host']}" if dead.get("host") else ""
        log = f"; its log: {dead['log']}" if dead.get("log") else ""
        lines.append(f"pool: {dead['jobs']} jobs in a row ended before their code ran (the last: "
                     f"{dead['why']}{on}{log}): new ones go one at a time until one starts")
    full = d.get("disk_full")
    if full and full.get("trial") is None:  # the master's own write met it
        lines.append(master_room_wait_line(full, d["dir"], d["state"] == "running"))
    elif full:
        what = "the quota was exhausted" if full.get("quota") else "there was no space left"
        at = time.strftime("%H:%M:%S", time.localtime(full["time"])) if full.get("time") else "?"
        lines.append(
            f"disk full: trial {full.get('trial')}'s segment ended at {at} because {what}"
            + (f" (writing {full['path']})" if full.get("path") else "")
            + "; no segment has started since, and none starts until there is room: free space"
            + (" or raise the quota" if full.get("quota") else "")
            + (" and the master goes on by itself" if d["state"] == "running" else
               f", then `asha-hpc resume {shell_word(d['dir'])}`")
            + " (attempts that meet a full disk count against nothing)")
    w = d.get("workers")
    if w and w.get("setting"):  # a pool, or auto's choice (nothing for a job per segment)
        # the setting, not a count of live workers: none is kept once the master has stopped
        idle = "" if d["state"] == "running" else " while the search runs"
        lines.append(f"workers: {w['line']}{idle}" if w["setting"] != "auto"
                     else f"workers: auto, {w['line']}")
    if d.get("left_state"):
        lines.append(f"workers: {d['left_state']}")
    if d.get("checkpoints"):  # said once in the events, which scroll on: here while it holds
        lines.append(f"checkpoints: {d['checkpoints']}")
    gpu = c.get("gpu_hours")
    lines.append(f"compute: {c.get('job_hours', d.get('compute_hours', 0.0)):.3f} job-hours, "
                 + (f"{gpu:.3f} GPU-hours" if gpu is not None else "GPU-hours unknown"))
    if d.get("message"):
        lines.append(f"message: {d['message']}")
    return lines


def master_room_wait_line(full: dict[str, Any], root: str, running: bool) -> str:
    """status's line for a master whose own write met a full disk or quota
    (``status.master_room_wait``): nothing journaled it, so this is all that says why nothing
    starts."""
    at = time.strftime("%H:%M:%S", time.localtime(full["time"])) if full.get("time") else "?"
    if full.get("path"):
        free = full.get("free")
        where = (f"no space left on {full['path']}"
                 + (f" ({free / 1024:.0f} KiB free)" if isinstance(free, int) else ""))
        fix = "free space there"
    else:  # both filesystems have room: only a write tells a quota
        where = ("a full quota, it seems: the experiment's filesystems have room now (or "
                 "room came back since, which the master sees within seconds)")
        fix = "raise the quota or free space in it"
    then = ("and the master goes on by itself" if running
            else f"then `asha-hpc resume {shell_word(root)}`")
    stopped = "" if running else ", and the master stopped while it waited for room"
    return (f"disk full: the master's own write met a full disk or quota at {at}{stopped}: "
            f"{where}; no segment starts until there is room: {fix}, {then} (running trials "
            f"lose nothing)")


def _sampler_text(s: dict[str, Any] | None) -> str:
    """", sampler tpe (40 of 96 trials drawn from its model)"; nothing for random sampling."""
    if not s or s.get("name", "random") == "random":
        return ""
    n, total = s.get("model_draws", 0), s.get("trials", 0)
    why = "" if n or not total else ": random until a length has enough results"
    warm = s.get("warm_start")
    if warm:
        from ..master.warmstart import describe

        why += f"; {describe(warm)}"
    return f", sampler {s['name']} ({n} of {total} trials drawn from its model{why}),"


def points_text(rows: list[dict[str, Any]], space: Any, metric: str, source: str) -> str:
    """``best --points``: the ``best`` rows as YAML for ``searcher.points_to_evaluate`` of
    another search, best first; constants are left out (they are not searched, and a new
    space may change them)."""
    from ..yamlfile import write_yaml

    def searched(node: dict[str, Any], hp: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for k, spec in node.items():
            if isinstance(spec, dict):
                sub = searched(spec, hp.get(k, {}))
                if sub:
                    out[k] = sub
            elif not isinstance(spec, Const) and k in hp:
                out[k] = hp[k]
        return out

    best = "the best trial" if len(rows) == 1 else f"the best {len(rows)} trials"
    lines = [f"# {best} of {source} ({metric}): indent these lines under a new search's "
             f"`searcher:`",
             "points_to_evaluate:"]
    first: dict[str, int] = {}  # a point already listed (a space of categoricals repeats)
    for r in rows:
        point = write_yaml(searched(space.tree, r["hparams"]), default_flow_style=True,
                           width=10_000, sort_keys=False).strip()
        if point in first:
            lines.append(f"  # trial {r['trial_id']}: the same point as trial {first[point]} "
                         f"({metric} {metric_text(r['metric'])} at length {r['length']})")
            continue
        first[point] = r["trial_id"]
        lines.append(f"  - {point}  # trial {r['trial_id']}: {metric} {metric_text(r['metric'])} "
                     f"at length {r['length']}")
    return "\n".join(lines)


def _logs_text(tr: dict[str, Any]) -> str | None:
    lg = tr.get("logs") or {}
    if not lg.get("out") and not lg.get("err"):
        return None
    return f"logs: {lg.get('out') or '-'}  {lg.get('err') or '-'}"


def status_text(tr: dict[str, Any]) -> str:
    """A top trial's status, with where its code ended its training (a final model), or how
    far short of its result its checkpoint is."""
    trained, held = tr.get("trained"), tr.get("checkpoint_length")
    if trained is not None:
        return f"{tr['status']} (final at {trained})"
    return tr["status"] if held is None else f"{tr['status']} (checkpoint at {held})"


def agreement_lines(d: dict[str, Any]) -> list[str]:
    """How the trials promoted from each rung rank at it and at the next (status_dict's
    ``rung_agreement``), and what to do when a shorter rung's order says little."""
    rows = [r for r in d.get("rung_agreement") or [] if r["rank_corr"] is not None]
    if not rows:
        return []
    unit = d.get("unit") or "units"
    lines = ["", f"promoted trials, rank correlation of their {d['metric']} at a rung and the next: "
             + ", ".join(f"{r['from']}->{r['to']} {r['rank_corr']:.2f} ({r['trials']} trials)"
                         for r in rows)]
    low = [r for r in rows if r["rank_corr"] < AGREE_LOW]
    if low:
        r = low[0]
        rungs = "num_rungs" if d.get("searcher") == "async_halving" else "max_rungs"
        lines.append(f"  results at {r['from']} {unit} rank the promoted trials unlike those at "
                     f"{r['to']}: stopping trials at {r['from']} may drop the configurations "
                     f"that would win, and sampler: tpe or gp would learn that order (random "
                     f"sampling does not); fewer rungs (searcher.{rungs}) start every trial "
                     f"longer but fit fewer trials in the same compute")
    else:
        lengths = _first_bracket_if_every_rung_agrees(d, rows)
        if lengths:
            one = (f"searcher.bracket_rungs: [{len(lengths)}]" if d.get("bracket_rungs")
                   else "searcher.mode: aggressive")
            lines.append(f"  results at every rung rank the promoted trials as the next does: "
                         f"{one} (one bracket, every trial starting at {lengths[0]} {unit}) "
                         f"fits more trials in the same compute (raise max_trials, or set "
                         f"max_compute, to spend it); the brackets that start longer hedge "
                         f"against short results that mislead")
    return lines


def agreement_advice(d: dict[str, Any]) -> list[str]:
    """``agreement_lines`` only where they advise (a rung that misleads, or one bracket that
    would do better): the correlations, then the advice, as ``run`` and ``resume`` end with."""
    lines = [x.strip() for x in agreement_lines(d) if x.strip()]
    return lines if len(lines) > 1 else []


def _first_bracket_if_every_rung_agrees(d: dict[str, Any],
                                        rows: list[dict[str, Any]]) -> list[int] | None:
    """The first bracket's rung lengths, for adaptive_asha with brackets that start longer and
    a rank correlation of AGREE_HIGH or more at each pair of its consecutive lengths; else
    None."""
    brackets = d.get("brackets") or []
    if d.get("searcher") != "adaptive_asha" or len(brackets) < 2:
        return None
    lengths = list(brackets[0]["rung_lengths"])
    shown = {(r["from"], r["to"]): r["rank_corr"] for r in rows}
    agree = all(shown.get(pair) is not None and shown[pair] >= AGREE_HIGH
                for pair in zip(lengths, lengths[1:]))
    return lengths if agree else None


def render_status_text(d: dict[str, Any]) -> str:
    """The plain status: summary, the per-rung table, the top trials (with their log files),
    running trials, recent events."""
    if d["state"] in ("submitted", "ended") and "metric" not in d:  # no experiment made yet
        return "\n".join([f"experiment: {d['dir']} (not made yet)",
                          f"state: {d['state']}: {d['message']}"]
                          + ([f"log's last line: {d['master_log_last_line']}"]
                             if d.get("master_log_last_line") else []))
    metric = d["metric"]
    lines = _summary_lines(d)
    rows = d.get("rung_table") or d["rungs"]
    if rows:
        header = [h for _, h in RUNG_COLS] + [f"best {metric}"]
        body = [[str(r.get(k, "")) for k, _ in RUNG_COLS] + [metric_text(r.get("best_metric"))]
                for r in rows]
        lines += [""] + _table(header, body)
    lines += agreement_lines(d)
    top = d.get("top")
    if top:
        lines += ["", f"top {len(top)} trials by {metric}:"]
        body = [[str(i), str(tr["trial_id"]), str(tr["bracket"]), str(tr["length"]),
                 status_text(tr), metric_text(tr["metric"]), hp_text(tr["hparams"])]
                for i, tr in enumerate(top, 1)]
        table = _table(["#", "trial", "bracket", "length", "status", metric, "hparams"], body, left=3)
        lines.append("  " + table[0])
        for tr, row in zip(top, table[1:]):
            lines.append("  " + row)
            lg = _logs_text(tr)
            if lg:
                lines.append("      " + lg)
    elif d.get("best"):
        b = d["best"]
        lines += ["", f"best: trial {b['trial_id']} {metric}={b['metric']} at length "
                  f"{b['length']} {json.dumps(b['hparams'])}"]
    div = d.get("diverged")
    if div:
        lines += ["", f"diverged ({len(div)}; {metric} NaN or infinite, ranked last, never "
                  f"promoted): " + ", ".join(f"trial {x['trial_id']} ({x['metric']} at length "
                                             f"{x['length']})" for x in div[:10])
                  + (", ..." if len(div) > 10 else "")]
    failed = d.get("failed_trials")
    if failed:
        n = d["trials"]["failed"]
        lines += ["", f"failed ({n}{'; the last ' + str(len(failed)) if n > len(failed) else ''};"
                  f" `asha-hpc logs {shell_word(d['dir'])} ID --err` shows the whole error, "
                  f"`asha-hpc resume {shell_word(d['dir'])} --retry-failed` trains them again):"]
        for f in failed:
            n, k = f["restarts"], f.get("not_counted") or 0
            lines.append(f"  trial {f['trial_id']} at length {f['length']}"
                         + (f" (its checkpoint holds {f['checkpoint_length']})"
                            if f.get("checkpoint_length") else "")
                         + (f", after {n} failed attempt{'' if n == 1 else 's'}" if n else "")
                         + (f" (and {k} that did not count: preempted, lost or out of time, "
                            "or failed in a reused warm worker)" if n and k else "")
                         + f": {f['error']}")
    running = d.get("running_trials")
    if running:
        lines += ["", f"running ({d['trials']['running']}):"]
        for tr in running:
            lines.append(f"  trial {tr['trial_id']} -> length {tr['target']}"
                         + (f" on {tr['host']}" if tr.get("host") else "")
                         + (f", for {fmt_duration(tr['running_s'])}"
                            if tr.get("running_s") is not None else "")
                         + (f": ended ({tr['result_waiting']}), its result waits for the master"
                            if tr.get("result_waiting") else ""))
            lg = _logs_text(tr)
            if lg:
                lines.append("      " + lg)
    lines += _time_limit_lines(d.get("time_limits"))
    ev = d.get("events")
    if ev:
        lines += ["", "recent events:"]
        for e in ev:
            lines.append(f"  {'+' + fmt_duration(e['elapsed_s']):>8}  {e['text']}")
    elif d.get("recent_events"):
        lines += ["", "recent:"] + [f"  {e}" for e in d["recent_events"]]
    return "\n".join(lines)


def render_experiments_text(root: str, rows: list[dict[str, Any]]) -> str:
    """``status`` of a folder of experiments: one line each, newest first."""
    body = []
    for r in rows:
        t = r.get("trials") or {}
        trials = (f"{t['completed']}/{t['total']}" + (f", {t['failed']} failed" if t.get("failed")
                                                      else "")) if t else ""
        best = f"{r['metric']}={metric_text(r['best'])}" if r.get("best") is not None else ""
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["started"])) \
            if r.get("started") else ""
        body.append([r["folder"], r.get("name") or "", r["state"], trials, best, started])
    lines = [f"{len(rows)} experiment{'s' if len(rows) != 1 else ''} in {root}:"]
    lines += _table(["folder", "name", "state", "trials done", "best", "started"], body, left=6)
    unread = [r for r in rows if r["state"] == "unreadable"]
    lines += [f"{r['folder']}: {r['error']}" for r in unread]
    lines.append(f"(`asha-hpc status {shell_word(os.path.join(root, rows[0]['folder']))}` shows one)")
    return "\n".join(lines)


def _time_limit_lines(rows: list[dict[str, Any]] | None) -> list[str]:
    """Per rung: time limits asked (minutes: median, range) and run times seen."""
    if not rows:
        return []

    def mins(r: dict[str, Any]) -> str:
        a = r.get("asked_min") or []
        if not a:
            return "-"
        med = r["asked_min_median"]
        med_s = f"{med:g}"
        return med_s if len(a) == 1 else f"{med_s} ({a[0]}-{a[-1]})"

    def secs(v: float | None) -> str:
        return "-" if v is None else fmt_duration(v)

    body = [["-" if r.get("rung") is None else str(r["rung"]), str(r["length"]), str(r["asked"]),
             mins(r), secs(r.get("run_s_median")), secs(r.get("run_s_max")), str(r["completed"]),
             str(r["time_limited"]), str(r["splits"])] for r in rows]
    header = ["rung", "length", "jobs", "limit min", "run median", "run max", "completed",
              "hit limit", "splits"]
    return ["", "time limits:"] + ["  " + x for x in _table(header, body)]


# ----------------------------------------------------------------------------- rich
def have_rich() -> bool:
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def rich_renderable(d: dict[str, Any]):
    """The same status as rich tables (only called when rich is installed)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    if d["state"] in ("submitted", "ended") and "metric" not in d:
        return Text(render_status_text(d))
    metric = d["metric"]
    parts: list[Any] = [Text("\n".join(_summary_lines(d)))]
    rows = d.get("rung_table") or d["rungs"]
    if rows:
        t = Table(title="brackets and rungs", title_justify="left")
        for _, h in RUNG_COLS:
            t.add_column(h, justify="right")
        t.add_column(f"best {metric}", justify="right")
        for r in rows:
            t.add_row(*[str(r.get(k, "")) for k, _ in RUNG_COLS], metric_text(r.get("best_metric")))
        parts.append(t)
    if d.get("top"):
        t = Table(title=f"top trials by {metric}", title_justify="left")
        for h in ("#", "trial", "length", "status", metric):
            t.add_column(h, justify="right")
        t.add_column("hparams")
        t.add_column("logs")
        for i, tr in enumerate(d["top"], 1):
            t.add_row(str(i), str(tr["trial_id"]), str(tr["length"]), status_text(tr),
                      metric_text(tr["metric"]), hp_text(tr["hparams"]),
                      (tr.get("logs") or {}).get("out") or "-")
        parts.append(t)
    if d.get("events"):
        parts.append(Text("recent events:\n" + "\n".join(
            f"  {'+' + fmt_duration(e['elapsed_s']):>8}  {e['text']}" for e in d["events"])))
    return Group(*parts)


# ----------------------------------------------------------------------------- watch
def watch_over(d: dict[str, Any], stopped_too: bool = False) -> bool:
    """Whether watching ``d`` (a status dict) can end: the search is over, or the master job
    ``submit`` sent ended before it made the experiment; ``stopped_too``: also a search that
    started and that no master runs, nor waits in the queue to (nothing changes until a
    resume). Not one whose master made the folder and has not started it yet."""
    if d["state"] in FINISHED or d["state"] == "ended":
        return True
    return (stopped_too and d["state"] == "stopped" and bool(d.get("started"))
            and not d.get("master_job"))


def watch(get: Callable[[], dict[str, Any]], interval: float, iterations: int | None = None,
          out=None, use_rich: bool | None = None, stopped_too: bool = False) -> int:
    """Redraw ``get()`` every ``interval`` seconds until the search is over (``watch_over``;
    then once more) or Ctrl-C. On a terminal: rich's Live display if rich is installed, else
    clear the screen and print; elsewhere (a pipe, a log) each refresh is printed after the
    previous one."""
    out = out or sys.stdout
    tty = hasattr(out, "isatty") and out.isatty()
    if use_rich is None:
        use_rich = tty and have_rich()
    n = 0
    try:
        if use_rich:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=out)
            d = get()
            with Live(rich_renderable(d), console=console, refresh_per_second=4,
                      screen=False) as live:
                while True:
                    n += 1
                    if watch_over(d, stopped_too) or (iterations is not None and n >= iterations):
                        break
                    time.sleep(interval)
                    d = get()
                    live.update(rich_renderable(d))
            return 0
        while True:
            d = get()
            text = render_status_text(d)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            if tty:
                _clear(out)
                out.write(f"{text}\n\n(refreshed {stamp}, every {interval:g}s; Ctrl-C to quit)\n")
            else:
                out.write(f"--- {stamp}\n{text}\n")
            out.flush()
            n += 1
            if watch_over(d, stopped_too) or (iterations is not None and n >= iterations):
                return 0
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython's, with a frontend that redraws a display in
    place); False in a terminal IPython, a script, or without IPython."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def watch_notebook(get: Callable[[], dict[str, Any]], interval: float,
                   iterations: int | None = None) -> int:
    """``watch`` in a notebook cell: one output, redrawn in place (IPython's display handle),
    until the search is over or no master runs it, or the kernel is interrupted (which stops
    only the watching)."""
    from IPython.display import Pretty, display

    handle = None
    n = 0
    try:
        while True:
            d = get()
            n += 1
            over = watch_over(d, stopped_too=True)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            end = ("no master runs the search" if d["state"] == "stopped" else
                   "the search is over")
            text = render_status_text(d) + (
                f"\n\n(as of {stamp}, refresh {n}: {end})" if over else
                f"\n\n(refreshed {stamp}, refresh {n}, every {interval:g}s; interrupt the "
                f"kernel to stop watching: the search goes on)")
            if handle is None:
                handle = display(Pretty(text), display_id=True)
            else:
                handle.update(Pretty(text))
            if over or (iterations is not None and n >= iterations):
                return 0
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0


def _clear(out) -> None:
    if os.name == "nt":
        os.system("cls")
    else:
        out.write("\033[H\033[2J")  # home + clear screen: the only control sequence used

"""``asha-hpc``: the command line.

Errors a user can cause print one clear line (or the list of config problems) and exit
non-zero; ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import csv
import errno
import io
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .config import ExperimentConfig, load_config
from .errors import AshaError, ConfigError, shell_word
from .launch import (
    EXIT_PAUSED,
    check_warm_start,
    create_experiment,
    default_exp_dir,
    master_name,
    refuse_running,
    refuse_someone_elses_running,
    resume_search,
    run_master,
    say_completed,
    stop_search,
    wait_on_master,
    warn_node_local,
)
from .protocol.expdir import ExpDir, atomic_write, holds_experiment, submitted_master
from .yamlfile import read_yaml

EXIT_CONFIG = 2
TRACKERS = ("tensorboard", "mlflow")  # export formats of trackers.py
T = TypeVar("T")


# ----------------------------------------------------------------------------- commands
def cmd_plan(a: argparse.Namespace) -> int:
    from .plan import plan, render_plan

    cfg = load_config(a.config)
    check_warm_start(cfg)  # what `run` would refuse, refused here too
    p = plan(cfg.searcher, cfg.space())
    p["warnings"] = _config_warnings(cfg) + p["warnings"]
    p["workers"] = cfg.workers_setting
    if cfg.workers_auto and p["segments"]:
        from .master.autoworkers import plan_estimate

        p["workers_estimate"] = plan_estimate(p["total_units"] / p["segments"],
                                              cfg.auto_workers_share, cfg.searcher.length_unit)
    if a.json:
        print(json.dumps(p, indent=2))
    else:
        print(render_plan(cfg.searcher, cfg.space(), p))
        if p.get("workers_estimate"):
            print(f"\n{p['workers_estimate']}\n(`asha-hpc simulate --startup-seconds S "
                  f"--queue-wait-seconds Q --unit-seconds U` runs both modes; `status` shows "
                  f"the choice from measurements)")
    return 0


def cmd_simulate(a: argparse.Namespace) -> int:
    from .simulate import SimulateOptions, render, simulate

    cfg = load_config(a.config)
    workers = a.workers if a.workers is not None else cfg.simulated.workers
    if workers is None:
        raise AshaError(f"{a.config}: simulate needs the number of GPU slots: --workers N, or "
                        f"simulated.workers in the config")
    opt = SimulateOptions(workers=workers, unit_seconds=a.unit_seconds,
                          startup_seconds=a.startup_seconds,
                          queue_wait_seconds=a.queue_wait_seconds, failure_rate=a.failure_rate,
                          curves=a.curves, repeats=a.repeats, what_if=not a.no_what_if)
    d = simulate(cfg, opt, source=str(a.config))
    print(json.dumps(d, indent=2) if a.json else render(d))
    return 0


def _config_warnings(cfg: ExperimentConfig) -> list[str]:
    """The config's warnings (Determined keys mapped or ignored), and a Determined Trial class
    as entrypoint, or a command's script that imports Determined's own package, where its
    source says so: what ``run`` refuses, ``plan`` shows."""
    from .compat.determined_config import determined_import_problem, trial_class_problem

    out = list(cfg.warnings)
    why = trial_class_problem(cfg.entrypoint, cfg.config_dir)
    if why is None and not isinstance(cfg.entrypoint, str):  # a script `run` would refuse
        why = determined_import_problem(list(cfg.entrypoint), cfg.config_dir)
    if why:
        out.append(why)
    return out


def cmd_run(a: argparse.Namespace) -> int:
    from .launch import start_search

    cfg = load_config(a.config, overrides={"backend": a.backend})
    return start_search(cfg, a.exp_dir, a.report_every, quiet=a.quiet)[0]


def cmd_resume(a: argparse.Namespace) -> int:
    refuse_someone_elses_running(Path(a.exp_dir))
    exp = ExpDir.open(Path(a.exp_dir))
    cfg = load_config(exp.config, overrides={"backend": a.backend} if a.backend else None)
    readmit = sorted(set(a.readmit_node or []))
    if a.max_compute is not None or readmit:  # refused before anything starts (the master
        from .master.loop import max_compute_problem, readmit_problem  # checks again)
        from .master.state import replay
        from .protocol.journal import read_journal
        from .protocol.requests import write_cap_request, write_readmit_request
        from .views.status import master_alive

        st = replay(cfg, read_journal(exp.journal)[0])
        problem = ((max_compute_problem(cfg, st, a.max_compute, exp.root)
                    if a.max_compute is not None else None)
                   or (readmit_problem(st, readmit) if readmit else None))
        if problem:
            raise AshaError(problem)
        holder = None if a.force else master_alive(exp)
        if holder:  # the running master takes them at its next poll
            if readmit:
                _ask_running_master(exp, holder, "--readmit-node", f"node {', '.join(readmit)} back",
                                    exp.readmit_request, exp.readmit_answer,
                                    lambda: write_readmit_request(exp, readmit), a.wait,
                                    "the excluded nodes")
            if a.max_compute is not None:
                units = a.max_compute
                _ask_running_master(exp, holder, "--max-compute", f"max_compute {units}",
                                    exp.max_compute_request, exp.max_compute_answer,
                                    lambda: write_cap_request(exp, units), a.wait, "the cap")
            return 0
    return resume_search(exp, cfg, force=a.force, report_every_s=a.report_every,
                         retry_failed=a.retry_failed, max_compute=a.max_compute,
                         readmit=readmit, quiet=a.quiet)[0]


def _ask_running_master(exp: ExpDir, holder: dict[str, Any], flag: str, what: str,
                        request: Path, answer_at: Path, write: Callable[[], str],
                        wait_s: float, shows: str) -> int:
    """``resume --max-compute`` or ``--readmit-node`` while a master runs: leave it the request
    (``write``, which returns its token) and wait up to ``wait_s`` for its answer, which is
    printed (a refusal is an error: nothing changed). ``what`` names what is asked ("max_compute
    4000"); ``shows``, what ``status`` shows once it is taken."""
    from .protocol.requests import Answer, read_answer
    from .views.status import master_alive

    before = read_answer(answer_at)
    token = write()
    who = f"the running {master_name(holder)}"
    gone_at: list[float] = []  # when the request went without an answer (an older release)

    def look() -> Answer | None:
        answer = read_answer(answer_at)
        if answer is not None and answer.token == token:
            return answer
        if answer is not None and answer != before:
            raise AshaError(f"another `resume {flag}` replaced the request for {what} before "
                            f"{who} took it; it answered that one: {answer.line}")
        if not gone_at and not request.exists():
            gone_at.append(time.monotonic())
        if gone_at and time.monotonic() - gone_at[0] > 2.0:
            return Answer(token, True, "")  # taken, but no line to print
        return None

    answer = wait_on_master(exp, wait_s, look)
    if answer is None:
        gone = "" if master_alive(exp) else (
            f"; that master has stopped since: `asha-hpc resume {shell_word(exp.root)}` takes the request")
        print(f"asha-hpc: asked {who} to take {what}; not taken yet (it takes it at its next "
              f"poll){gone}; `asha-hpc status {shell_word(exp.root)}` shows {shows} once it is "
              "set", file=sys.stderr)
    elif not answer.taken:
        raise AshaError(f"{who} refused {what}: {answer.line}; nothing changed")
    elif not answer.line:
        print(f"asha-hpc: {who} took the request for {what} without an answer (a release "
              f"before answers); `asha-hpc status {shell_word(exp.root)}` shows whether "
              f"{shows} changed, its log says why not", file=sys.stderr)
    else:
        print(f"asha-hpc: {who} took it: {answer.line}", file=sys.stderr)
    return 0


def cmd_status(a: argparse.Namespace) -> int:
    from .views.status import status_now
    from .views.text import render_status_text, watch

    if not holds_experiment(a.exp_dir) and submitted_master(Path(a.exp_dir)) is None:
        from .views.status import experiments_in
        from .views.text import render_experiments_text

        rows = experiments_in(a.exp_dir)
        if rows is not None:  # a folder of experiments (asha_runs/): one line each
            print(json.dumps(rows, indent=2) if a.json
                  else render_experiments_text(str(Path(a.exp_dir).resolve()), rows))
            return 0
    if a.watch and not a.json:
        return watch(lambda: status_now(a.exp_dir), max(a.interval, 0.2), iterations=a.iterations)
    d = status_now(a.exp_dir)
    if a.json:
        print(json.dumps(d, indent=2))
        return 0
    print(render_status_text(d))
    return 0


def _held_text(r: dict[str, Any]) -> str:
    """What ``best`` says of a checkpoint whose length is not its result's."""
    n = r.get("checkpoint_length")
    if n is None:
        return ""
    if n > r["length"]:
        return f" (trained to length {n}, past its result's: a later segment cut short)"
    if r.get("trained") is not None:  # ended by its code, after its last save
        return (f" (holds length {n}, short of {r['trained']}, where its code ended its "
                f"training: save a checkpoint before raising TrainingEndedEarly, so that the "
                f"model that reported is kept)")
    return (f" (holds length {n}, short of its result's {r['length']}: the code reported after "
            f"its last save; if its training ended there on purpose, raise "
            f"asha_hpc.TrainingEndedEarly after the report)")


def cmd_best(a: argparse.Namespace) -> int:
    from .master.state import error_summary
    from .views.status import best_rows, open_experiment

    exp, cfg, records, st = open_experiment(a.exp_dir)
    rows = best_rows(exp, st, records, a.top)
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no trial has reported a metric yet")
        return 0
    if a.points:
        from .views.text import points_text

        print(points_text(rows, cfg.space(), cfg.searcher.metric, str(a.exp_dir)))
        return 0
    for i, r in enumerate(rows, 1):
        print(f"{i}. trial {r['trial_id']}: {cfg.searcher.metric}={r['metric']} at length "
              f"{r['length']} ({r['state']}"
              + (f"; its code ended training at {r['trained']}: the model is final"
                 if r.get("trained") is not None else "") + ")")
        if r["error"]:  # its results stand; why it went no further
            print(f"   failed: {error_summary(r['error'])}")
        print(f"   hparams: {json.dumps(r['hparams'])}")
        print(f"   checkpoint: {r['checkpoint'] or '-'}"
              + (" (missing: removed or moved since)" if r.get("checkpoint_missing") else "")
              + (f" (incomplete: {r['checkpoint_problem']})" if r.get("checkpoint_problem")
                 else "")
              + _held_text(r))
        if r.get("storage_id"):  # a Core API script's: its files are in the storage_id's folder
            print(f"   storage_id: {r['storage_id']} (load from {r['load_from']})")
        if r["logs"]["out"] or r["logs"]["err"]:
            print(f"   logs: {r['logs']['out'] or '-'}  {r['logs']['err'] or '-'}")
    return 0


def _write_rows(rows: list[dict[str, Any]], fmt: str, output: str | None,
                first: tuple[str, ...] = ()) -> None:
    """CSV (columns: ``first``, then the union of the rows' keys, in first-seen order: a
    header even without rows, which pandas needs) or JSON lines."""
    buf = io.StringIO()
    if fmt == "jsonl":
        for r in rows:
            buf.write(json.dumps(r) + "\n")
    else:
        cols: list[str] = list(first)
        seen = set(first)
        for r in rows:
            for k in r:
                if k not in seen:
                    seen.add(k)
                    cols.append(k)
        cells = [{k: ("" if v is None else v) for k, v in r.items()} for r in rows]
        # csv quotes a field holding the line terminator, but before Python 3.12 not one holding
        # a lone '\r' (a metric name may): then every field is quoted, so readers split rows right
        cr = any("\r" in str(x) for x in cols) or any(
            isinstance(v, str) and "\r" in v for r in cells for v in r.values())
        w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n",
                           quoting=csv.QUOTE_ALL if cr else csv.QUOTE_MINIMAL)
        w.writeheader()
        w.writerows(cells)
    if output and output != "-":
        Path(output).write_text(buf.getvalue())
    else:
        sys.stdout.write(buf.getvalue())


def cmd_export(a: argparse.Namespace) -> int:
    from .views.status import export_rows, open_experiment

    exp, cfg, _, st = open_experiment(a.exp_dir)
    if a.format in TRACKERS:
        from .views.trackers import export_trackers

        target = a.output or (os.environ.get("MLFLOW_TRACKING_URI") if a.format == "mlflow" else None)
        if not target or target == "-":
            raise AshaError(f"export --format {a.format} writes runs, not a table: give -o "
                            f"OUT, a folder{' or a tracking URI' if a.format == 'mlflow' else ''}")
        print(f"asha-hpc: {export_trackers(a.format, exp, cfg, st, target)}", file=sys.stderr)
        return 0
    if a.curves:  # the learning curves: trial_id, key, segment, attempt, step, time, metrics...
        from .views.observe import CURVE_COLUMNS, curve_rows, flat_curve_rows

        _write_rows(flat_curve_rows(curve_rows(exp)), a.format, a.curves, CURVE_COLUMNS)
    _write_rows(export_rows(st, exp), a.format, a.output)
    return 0


def cmd_plot(a: argparse.Namespace) -> int:
    from .views.plots import plot_data, render_png, require_matplotlib
    from .views.status import open_experiment

    require_matplotlib()
    exp, cfg, records, st = open_experiment(a.exp_dir)
    png = render_png(plot_data(exp, cfg, st, records, a.curve_metric), a.width, a.height)
    Path(a.output).write_bytes(png)
    print(f"asha-hpc: wrote {a.output} ({a.width}x{a.height}: learning curves, best "
          f"{cfg.searcher.metric} vs compute, trials per rung over time)", file=sys.stderr)
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from .views.htmlreport import render
    from .views.plots import panel_pngs, plot_data, svg_panels
    from .views.status import export_rows, open_experiment, status_dict

    exp, cfg, records, st = open_experiment(a.exp_dir)
    d = status_dict(exp, cfg, st, records)
    data = plot_data(exp, cfg, st, records, a.curve_metric)
    fmt = "svg"
    if not a.svg:
        try:
            panels: dict[str, Any] = panel_pngs(data)
            fmt = "png"
        except AshaError:
            print("asha-hpc: matplotlib is not installed: plots drawn as SVG (pip install "
                  "'asha-hpc[plot]' for PNG)", file=sys.stderr)
    if fmt == "svg":
        panels = svg_panels(data)
    ranks = {t.id: i for i, t in enumerate(st.ranked(), 1)}
    try:
        config_text: str | None = exp.config.read_text(errors="replace")
    except OSError:
        config_text = None  # open_experiment read it: gone since, the page goes without
    page = render(d, export_rows(st, exp), panels, ranks, fmt, a.refresh,
                  config_text).encode("utf-8")
    atomic_write(Path(a.output), page, durable=False)  # a browser never reads half a page
    os.chmod(a.output, 0o644)
    if not a.quiet:
        print(f"asha-hpc: wrote {Path(a.output).resolve()} (self-contained; open it in any "
              f"browser)", file=sys.stderr)
    return 0


def cmd_logs(a: argparse.Namespace) -> int:
    from .protocol.logmarks import keys as logkeys
    from .protocol.logmarks import section
    from .views.observe import trial_jobs
    from .views.status import open_experiment

    exp, _, records, st = open_experiment(a.exp_dir)
    if a.trial not in st.trials:
        raise AshaError(f"{exp.root}: no trial {a.trial} (trials: "
                        f"{min(st.trials) if st.trials else '-'}..{max(st.trials) if st.trials else '-'})")
    jobs = trial_jobs(exp, records, a.trial)
    if not jobs:
        raise AshaError(f"trial {a.trial} has not been submitted yet")
    if a.list:
        for j in jobs:
            print(f"{j['index']:>3}  {j['key']}  length {j['length']}  {j['status']:<12} "
                  f"jobs {','.join(j['job_ids']) or '-'}\n     out: {j['out'] or '-'}\n"
                  f"     err: {j['err'] or '-'}")
        return 0
    try:
        j = jobs[a.attempt]
    except IndexError:
        raise AshaError(f"trial {a.trial} has {len(jobs)} jobs (--attempt 0..{len(jobs) - 1}, or "
                        f"-1 for the latest); see --list") from None
    path = j["err" if a.err else "out"]
    if path is None:
        raise AshaError(f"trial {a.trial} job {j['index']} ({j['key']}, job id "
                        f"{','.join(j['job_ids']) or 'none'}): no {'stderr' if a.err else 'stdout'} "
                        f"log under {exp.jobs} (jobs/<id>_0_log.* or jobs/<id>/<id>_0_log.*)")
    data = Path(path).read_bytes()
    part = None if a.whole else section(data, j["key"])
    cut = ""
    if part is not None and len(part) < len(data):
        cut = ("; its part of a log that several segments share: --whole for all"
               if set(logkeys(data)) - {j["key"]} else
               "; the job's own lines before its segment left out: --whole for all")
    print(f"==> {path} <== (trial {a.trial}, job {j['index']}: {j['key']}, {j['status']}{cut})",
          file=sys.stderr, flush=True)
    data = data if part is None else part
    if a.tail:
        data = b"\n".join(data.splitlines()[-a.tail:]) + b"\n"
    text = data.decode(errors="replace")
    # a log whose last line has no end (a library's message) must not run into what follows
    sys.stdout.write(text if not text or text.endswith("\n") else text + "\n")
    return 0


def cmd_cancel(a: argparse.Namespace) -> int:
    line = stop_search(Path(a.exp_dir), "cancel", a.wait)
    if line:
        print(f"asha-hpc: {line}")
    return 0


def cmd_pause(a: argparse.Namespace) -> int:
    """Stop the search's running jobs (each saves where it is) and its master, for `resume`."""
    line = stop_search(Path(a.exp_dir), "pause", a.wait)
    if line:
        print(f"asha-hpc: {line}")
    return 0


def cmd_submit(a: argparse.Namespace) -> int:
    from .submit import master_options, render_master_script, submit_master

    cfg = load_config(a.config)
    check_warm_start(cfg)
    exp_dir = Path(a.exp_dir) if a.exp_dir else default_exp_dir(cfg)
    if holds_experiment(exp_dir):  # the master's job resumes it, with its own config
        _check_resubmit(cfg, Path(a.config), exp_dir)
    from .submit import master_job_waiting

    waiting = master_job_waiting(exp_dir) if not a.dry_run else None
    if waiting is not None:  # a second job would fail as a second master, or race the first
        job, state, _ = waiting
        raise AshaError(f"{exp_dir}: the master's Slurm job {job} for this folder is already "
                        f"{state.lower()}: it starts (or resumes) the search; watch it with "
                        f"`asha-hpc status {shell_word(exp_dir)}`, or `scancel {job}` first")
    extra = master_options(cfg, a.account, a.qos, a.sbatch or [])
    script = render_master_script(cfg, Path(a.config), exp_dir, partition=a.partition,
                                  time_limit=_master_time(a.time, a.partition, exp_dir), mem=a.mem,
                                  template=Path(a.template) if a.template else None,
                                  extra=extra, quiet=a.quiet)
    if a.retry_failed and not holds_experiment(exp_dir):
        raise AshaError(f"--retry-failed: {exp_dir} holds no experiment yet; it retries the "
                        f"failed trials of one that ran")
    if a.dry_run:
        sys.stdout.write(script)
        return 0
    warn_node_local(cfg, exp_dir)  # here, where the user reads it, not in the master's log
    request = ExpDir(exp_dir.resolve()).retry_failed_request
    if a.retry_failed:  # for the master the job starts (not for its requeues)
        atomic_write(request, b"asked by submit\n")
    try:
        job = submit_master(script, exp_dir)
    except AshaError:
        if a.retry_failed:
            request.unlink(missing_ok=True)
        raise
    print(f"asha-hpc: master submitted as Slurm job {job}; experiment in {exp_dir.resolve()}\n"
          f"asha-hpc: watch it with `asha-hpc status {shell_word(exp_dir)}`")
    return 0


def _check_resubmit(cfg: ExperimentConfig, config: Path, exp_dir: Path) -> None:
    """``submit`` into a folder that holds an experiment puts its master back as a job, which
    resumes the experiment as its folder has it: refused when ``config`` says otherwise (it
    would be ignored) or when a master runs it now."""
    exp = ExpDir.open(exp_dir)
    stored = load_config(exp.config)
    old, new = stored.to_dict(), dict(cfg.to_dict(), experiment_dir=stored.experiment_dir)
    raw = read_yaml(config.read_text()) or {}
    if not (isinstance(raw, dict) and isinstance(raw.get("reproducibility"), dict)
            and "experiment_seed" in raw["reproducibility"]):  # drawn anew: not the user's
        new["reproducibility"] = old.get("reproducibility")
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        raise AshaError(
            f"{exp_dir} already holds experiment '{stored.name}', and {config} differs from its "
            f"config in {', '.join(changed)}: the master's job would resume it as it is, and "
            f"ignore that. Resubmit it as it is (`asha-hpc submit "
            f"{shell_word(exp.config)} --exp-dir {shell_word(exp_dir)}`), or give another "
            f"--exp-dir for a new experiment")
    refuse_running(exp_dir)
    print(f"asha-hpc: {exp_dir} holds experiment '{stored.name}': the master's job resumes it",
          file=sys.stderr)


def _master_time(asked: str, partition: str | None, exp_dir: Path) -> str:
    """``--time``, held to the longest time limit the master's job may ask for in its
    partition (a job that asks for more pends for ever). The master requeues itself before its
    limit and resumes, so a shorter limit costs a requeue now and then, nothing else."""
    import shutil

    from .backends.slurm import SlurmBackend
    from .master.timelimits import parse_slurm_minutes

    try:
        minutes = parse_slurm_minutes(asked)
    except ValueError:
        raise AshaError(f"--time {asked!r}: not a Slurm time limit (for example 2-00:00:00, "
                        f"12:00:00 or 720 minutes)") from None
    _master_time_enough(minutes, f"--time {asked}")
    if minutes is None or shutil.which("sinfo") is None:
        return asked
    cap = SlurmBackend(str(exp_dir), {}).time_cap(partition)
    if cap.minutes is None or minutes <= cap.minutes:
        return asked
    _master_time_enough(cap.minutes, f"the partition's limit ({cap.text()})")
    print(f"asha-hpc: the master's job asks for {cap.minutes} min, not {asked} ({cap.text()}); "
          f"it requeues itself before its limit and goes on", file=sys.stderr)
    return str(cap.minutes)


def _master_time_enough(minutes: int | None, what: str) -> None:
    """A master job shorter than a few signal delays would stop to requeue itself soon after
    (or before) it starts, and again in each requeue."""
    from .submit import MASTER_SIGNAL_S

    least = 2 * MASTER_SIGNAL_S // 60 + 1  # 3 minutes of work between requeues
    if minutes is not None and minutes < least:
        raise AshaError(f"{what}: the master's job gets {minutes} min, and Slurm signals it "
                        f"{MASTER_SIGNAL_S} s before its end to stop and requeue itself: ask "
                        f"for at least {least} minutes (hours are usual: --time 12:00:00; the "
                        f"trials' jobs have their own limits, slurm.timeout_min)")


def cmd_slurm_master(a: argparse.Namespace) -> int:
    """What master.sbatch runs: start the experiment, or resume it after a requeue; near the
    time limit (SIGUSR2) stop cleanly and requeue this job."""
    from .master.loop import Master, progress_every
    from .submit import requeue_self

    root = Path(a.exp_dir)
    if holds_experiment(root):
        exp = ExpDir.open(root)
        cfg = load_config(exp.config)
        print(f"asha-hpc: resuming '{cfg.name}' in {exp.root}", file=sys.stderr)
    else:
        a.backend = None
        cfg = load_config(a.config)
        exp = create_experiment(cfg, root, made_by_submit=True)
    from .views.livereport import DEFAULT_EVERY_S

    def hint(m: Master) -> Master:
        m.resume_hint = (f"A requeued master job (its time limit, `scontrol requeue`) resumes "
                         f"the search when it starts again: `asha-hpc status "
                         f"{shell_word(exp.root)}` says whether it is queued; else continue "
                         f"with `asha-hpc submit` or `asha-hpc resume`")
        return m

    every = progress_every(a.quiet)
    master = run_master(hint(Master(exp, cfg, report_every_s=DEFAULT_EVERY_S,
                                    progress_every_s=every)),
                        lambda full: hint(Master(exp, cfg, report_every_s=DEFAULT_EVERY_S,
                                                 disk_full=full, progress_every_s=every)))
    st = master.state
    assert st is not None
    if st.lifecycle == "completed":  # the job's log ends as `run` does
        say_completed(exp, cfg, st)
    if st.lifecycle == "failed":
        print(f"asha-hpc: experiment failed: {(st.message or '').splitlines()[0] if st.message else ''}",
              file=sys.stderr)
    if st.lifecycle in ("running", "stopped") and master.stop_reason == "SIGUSR2":
        ok = requeue_self()
        print(f"asha-hpc: time limit near: {'requeued' if ok else 'could not requeue'} the master job",
              file=sys.stderr)
    if st.stopped_by == "paused":  # as `run`: a dependent job (afterok) must not take it for finished
        return EXIT_PAUSED
    return 0 if st.lifecycle != "failed" else 1


# ----------------------------------------------------------------------------- main
def _positive_int(text: str) -> int:
    """An argument that must be a whole number above 0 (argparse names the option)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} is not above 0")
    return n


def _seconds(text: str) -> float:
    """An argument that must be a number of seconds, 0 or more and finite (a NaN or an infinity
    would make a wait that never ends)."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.0 <= x < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not 0 or more and finite")
    return x


def _report_every_arg(p: argparse.ArgumentParser) -> None:
    from .views.livereport import DEFAULT_EVERY_S

    p.add_argument("--report-every", type=float, default=DEFAULT_EVERY_S, metavar="SECONDS",
                   help=f"keep <exp>/report.html current, rendered at most this often and at "
                   f"the end (default {DEFAULT_EVERY_S:g}; 0: never)")


def _quiet_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress line while the search runs, only the last one (what "
                        "happens, warnings and the result are still said)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="asha-hpc", description="ASHA hyperparameter search on Slurm "
                                 "clusters and on this machine")
    ap.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    from . import __version__
    from .protocol.expdir import FORMAT

    ap.add_argument("--version", action="version", help="this release, and the experiment "
                    "folder format it writes (put both in a bug report)",
                    version=f"asha-hpc {__version__} (experiment folder format {FORMAT}, "
                            f"Python {sys.version.split()[0]})")
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("run", help="start a search from a YAML config")
    p.add_argument("config")
    p.add_argument("--exp-dir", help="experiment folder (default: asha_runs/<name>-<time>)")
    p.add_argument("--backend", choices=["local", "simulated", "slurm"])
    _report_every_arg(p)
    _quiet_arg(p)
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("resume", help="continue a stopped or crashed search")
    p.add_argument("exp_dir")
    p.add_argument("--force", action="store_true", help="take the lease even if a master seems alive")
    p.add_argument("--backend", choices=["local", "simulated", "slurm"])
    _report_every_arg(p)
    _quiet_arg(p)
    p.add_argument("--retry-failed", action="store_true",
                   help="after fixing a bug: continue a failed search, or a finished one with "
                        "failed trials; those trials train again from their latest checkpoints "
                        "and every trial's restarts count from zero")
    p.add_argument("--max-compute", type=_positive_int, metavar="UNITS",
                   help="a new cap on all training (searcher.max_compute, in units of the "
                        "search's length), from here on: raised, the search goes on where the "
                        "old cap ended it, even once it has completed")
    p.add_argument("--readmit-node", action="append", metavar="NODE",
                   help="take back a node the search excluded (it failed the work sent to it), "
                        "once it is repaired; repeat for more nodes")
    p.add_argument("--wait", type=_seconds, default=60.0, metavar="SECONDS",
                   help="with --max-compute or --readmit-node while a master runs: how long to "
                        "wait for it to take the request and say what it changed (default 60; "
                        "0: do not wait)")
    p.set_defaults(fn=cmd_resume)

    p = sub.add_parser("status", help="where a search stands: rungs, top trials, progress, ETA")
    p.add_argument("exp_dir")
    p.add_argument("--json", action="store_true")
    p.add_argument("--watch", action="store_true", help="refresh in place until the search ends")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between refreshes (--watch)")
    p.add_argument("--iterations", type=int, help=argparse.SUPPRESS)
    p.set_defaults(fn=cmd_status)

    p = sub.add_parser("best", help="the best trials: hparams, metric, checkpoint")
    p.add_argument("exp_dir")
    p.add_argument("--top", type=_positive_int, default=5)
    p.add_argument("--json", action="store_true")
    p.add_argument("--points", action="store_true",
                   help="the top trials as YAML for searcher.points_to_evaluate of a new search")
    p.set_defaults(fn=cmd_best)

    p = sub.add_parser("export", help="one row per trial as CSV or JSON lines, or one run per "
                       "trial for TensorBoard or MLflow")
    p.add_argument("exp_dir")
    p.add_argument("--format", choices=["csv", "jsonl", *TRACKERS], default="csv",
                   help="csv, jsonl (a table); tensorboard (event files in the folder -o), "
                   "mlflow (runs in the tracking store -o: a folder or a URI; default "
                   "$MLFLOW_TRACKING_URI). Exporting again adds what is new")
    p.add_argument("-o", "--output", help="file to write (default: stdout); the folder or "
                   "tracking URI for tensorboard and mlflow")
    p.add_argument("--curves", metavar="FILE", help="also write the learning curves (one row per "
                   "point: trial_id, key, segment, attempt, step, time, metrics) to FILE")
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("plot", help="learning curves, best vs compute, rungs over time (PNG; "
                       "needs matplotlib)")
    p.add_argument("exp_dir")
    p.add_argument("-o", "--output", required=True, help="the PNG to write")
    p.add_argument("--curve-metric", help="metric of the learning curves (default: the searcher's "
                   "if reported as often as any other, else the most reported one)")
    p.add_argument("--width", type=int, default=1500, help="pixels")
    p.add_argument("--height", type=int, default=450, help="pixels")
    p.set_defaults(fn=cmd_plot)

    p = sub.add_parser("report", help="one self-contained HTML file: plots, sortable trial table")
    p.add_argument("exp_dir")
    p.add_argument("-o", "--output", default="report.html",
                   help="the file to write (default: report.html in the current folder; the "
                        "running master keeps its own live one in the experiment folder)")
    p.add_argument("--curve-metric", help="metric of the learning curves")
    p.add_argument("--svg", action="store_true", help="draw the plots as SVG even with matplotlib")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.add_argument("--refresh", type=float, metavar="SECONDS", help="the page reloads itself "
                   "this often while the search runs")
    p.set_defaults(fn=cmd_report)

    p = sub.add_parser("logs", help="a trial's job logs (stdout, or --err)")
    p.add_argument("exp_dir")
    p.add_argument("trial", type=int)
    p.add_argument("--attempt", type=int, default=-1, help="which of the trial's jobs, in order "
                   "(0 = its first; default -1 = the latest); see --list")
    p.add_argument("--err", action="store_true", help="stderr instead of stdout")
    p.add_argument("--tail", type=_positive_int, help="only the last N lines")
    p.add_argument("--list", action="store_true", help="list the trial's jobs and their log files")
    p.add_argument("--whole", action="store_true", help="the whole log of a job that ran several "
                   "segments (a worker of the pool), not only this one's part")
    p.set_defaults(fn=cmd_logs)

    p = sub.add_parser("cancel", help="cancel a search and its running jobs")
    p.add_argument("exp_dir")
    p.add_argument("--wait", type=_seconds, default=60.0, metavar="SECONDS",
                   help="while a master runs: how long to wait for it to cancel (default 60; "
                        "0: do not wait)")
    p.set_defaults(fn=cmd_cancel)

    p = sub.add_parser("pause", help="stop a search's running jobs (each saves where it is) "
                                      "and its master; `resume` goes on (Determined's pause)")
    p.add_argument("exp_dir")
    p.add_argument("--wait", type=_seconds, default=60.0, metavar="SECONDS",
                   help="while a master runs: how long to wait for it to pause (default 60, "
                        "plus the time its jobs on Slurm have to save: slurm.signal_delay_s; "
                        "0: do not wait)")
    p.set_defaults(fn=cmd_pause)

    p = sub.add_parser("submit", help="run the master itself as a Slurm job (sbatch)")
    p.add_argument("config")
    p.add_argument("--exp-dir", help="experiment folder (default: asha_runs/<name>-<time>)")
    p.add_argument("--partition", help="CPU partition for the master (default: the cluster's)")
    p.add_argument("--time", default="2-00:00:00", help="the master job's time limit")
    p.add_argument("--mem", default="4G")
    p.add_argument("--account", help="the master job's account (default: slurm.account)")
    p.add_argument("--qos", help="the master job's QOS (default: the cluster's)")
    p.add_argument("--sbatch", action="append", metavar="KEY=VALUE",
                   help="another sbatch option for the master's job (repeatable)")
    p.add_argument("--template", help="an sbatch template (default: sbatch_templates/master.sbatch)")
    p.add_argument("--dry-run", action="store_true", help="print the script instead of submitting")
    p.add_argument("--retry-failed", action="store_true",
                   help="the master's job retries the failed trials once, as `resume "
                        "--retry-failed` does (after a fix)")
    _quiet_arg(p)
    p.set_defaults(fn=cmd_submit)

    p = sub.add_parser("slurm-master")  # what master.sbatch runs; not for people
    p.add_argument("config")
    p.add_argument("--exp-dir", required=True)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(fn=cmd_slurm_master)
    # argparse lists a sub-command given help=SUPPRESS as "==SUPPRESS==": keep it off the list
    sub._choices_actions = [c for c in sub._choices_actions if c.dest != "slurm-master"]

    p = sub.add_parser("plan", help="brackets, rung lengths and budget, before anything runs")
    p.add_argument("config")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_plan)

    p = sub.add_parser("simulate", help="makespan, GPU-hours and utilization on N workers, "
                       "simulated in seconds (with a what-if table)")
    p.add_argument("config")
    p.add_argument("--workers", type=int, help="GPU slots: segments running at once (default: "
                   "the config's simulated.workers)")
    p.add_argument("--unit-seconds", type=float, help="seconds per training unit "
                   "(default: simulated.unit_seconds, 60)")
    p.add_argument("--startup-seconds", type=float, help="start-up seconds per segment job")
    p.add_argument("--queue-wait-seconds", type=float, help="seconds each job waits in the queue")
    p.add_argument("--failure-rate", type=float, help="chance that a segment attempt crashes")
    p.add_argument("--curves", help="'synthetic', a JSON-lines file of learning curves to "
                   "replay: {\"hparams\": {...}, \"curve\": {\"<length>\": metric}}, or an "
                   "experiment folder (its trials' results) (default: the config's "
                   "simulated.curve, else synthetic)")
    p.add_argument("--repeats", type=int, default=1, help="runs with seeds experiment_seed+i "
                   "(median and spread)")
    p.add_argument("--no-what-if", action="store_true", help="skip the what-if table")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_simulate)
    for p in sub.choices.values():  # `asha-hpc plan x.yaml --debug` as well
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help=argparse.SUPPRESS)
    return ap


NO_WRITE_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)
READING_COMMANDS = ("status", "best", "export", "plot", "report", "logs")  # write nothing there


def _output_named(a: argparse.Namespace, filename: Any) -> str | None:
    """The output file the user named (``-o``, ``--curves``) that ``filename`` is, or is the
    temporary file of (atomic_write's ``.tmp-`` sibling); None for any other file."""
    if filename is None:
        return None
    got = Path(str(filename))
    for n in (getattr(a, "output", None), getattr(a, "curves", None)):
        if n and (got == Path(n) or (got.parent == Path(n).parent
                                     and got.name.startswith(f".tmp-{Path(n).name}"))):
            return str(n)
    return None


class _LogFormat(logging.Formatter):
    """asha_hpc's log lines say ``asha-hpc:``; a library's (matplotlib, submitit) say its
    logger's name, so nobody reads a library's warning as ours."""

    _ours = logging.Formatter("asha-hpc: %(levelname)s: %(message)s")
    _theirs = logging.Formatter("%(name)s: %(levelname)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ours = record.name == "asha_hpc" or record.name.startswith("asha_hpc.")
        return (self._ours if ours else self._theirs).format(record)


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(_LogFormat())
    logging.basicConfig(level=logging.DEBUG if a.debug else logging.WARNING, handlers=[handler])
    try:
        return a.fn(a)
    except ConfigError as e:
        if a.debug:  # the traceback, and the same exit status as without --debug
            traceback.print_exc()
        print(f"asha-hpc: error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except AshaError as e:
        if a.debug:
            traceback.print_exc()
        print(f"asha-hpc: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("asha-hpc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `asha-hpc status DIR | head -1`: the reader has all it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 0
    except OSError as e:
        from .errors import DISK_FULL_ERRNOS
        from .protocol.diskfull import mount_point

        named = _output_named(a, e.filename)
        if not a.debug and named is not None and e.errno not in DISK_FULL_ERRNOS:
            parent = Path(named).parent
            why = "" if parent.is_dir() else f" (there is no folder {parent}: create it first)"
            print(f"asha-hpc: error: cannot write {named}: {e.strerror}{why}", file=sys.stderr)
            return 1
        if a.debug or e.errno not in DISK_FULL_ERRNOS + NO_WRITE_ERRNOS:
            raise
        # the system names the file when it has one at hand; else the command's folder
        where = e.filename or str(Path(getattr(a, "exp_dir", None) or ".").resolve())
        if e.errno in (errno.EACCES, errno.EPERM) and a.cmd in READING_COMMANDS:
            # they write nothing there: what failed is a read, of a folder not shared with you
            print(f"asha-hpc: error: cannot read {where}: {e.strerror}; the experiment is not "
                  f"shared with you (asha-hpc makes experiment folders private to their owner): "
                  f"ask its owner to share it (`chmod -R g+rX,o-w FOLDER` for their group), or "
                  f"read a copy they make for you", file=sys.stderr)
            return 1
        if e.errno in NO_WRITE_ERRNOS:  # someone else's experiment, a read-only mount
            print(f"asha-hpc: error: cannot write in {Path(where).parent}: {e.strerror}; "
                  f"`asha-hpc {a.cmd}` writes to the experiment folder: run it as the user who "
                  f"owns the folder, where its file system is writable (status, best, export "
                  f"and report only read)", file=sys.stderr)
            return 1
        what = f"writing {where}" if e.filename else f"writing in {where}"
        print(f"asha-hpc: error: {mount_point(Path(where))}: {e.strerror} ({what}); "
              f"free space or raise the quota, then try again", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

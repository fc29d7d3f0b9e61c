"""Starting a search: the checks before any job, the experiment folder, the master, and the
lines said when it ends. The command line (``run``, ``resume``, ``submit``'s master job) and the
Python API (``asha_hpc.run``) start searches through here alike."""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .backends import capabilities
from .config import ExperimentConfig
from .errors import AshaError, ConfigError, MasterDiskFull, shell_word
from .protocol.diskfull import DiskFull
from .protocol.expdir import ExpDir, atomic_write, filesystem_type, holds_experiment
from .yamlfile import write_yaml

if TYPE_CHECKING:
    from .master.loop import Master
    from .master.state import ExperimentState

T = TypeVar("T")


def default_exp_dir(cfg: ExperimentConfig) -> Path:
    if cfg.experiment_dir:
        return Path(cfg.experiment_dir)
    return Path("asha_runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_warm_start(cfg: ExperimentConfig) -> Any:
    """``searcher.warm_start`` that cannot serve stops here, before a folder or a job exists;
    its warnings are printed here. Returns its records (None without warm_start), for a master
    started by this command; a master started elsewhere (``submit``'s job) reads them itself."""
    if cfg.searcher.warm_start is None:
        return None
    from .master.warmstart import read_warm_start

    records, warnings = read_warm_start(cfg)
    for w in warnings:
        print(f"asha-hpc: warning: {w}", file=sys.stderr)
    return records


def check_code(cfg: ExperimentConfig) -> None:
    """The config's warnings printed, and its code refused before a folder or a job exists
    where it cannot run (a typo costs no job at all)."""
    from .plan import top_out_of_reach

    for w in cfg.warnings + [w for w in [top_out_of_reach(cfg.searcher, cfg.space())] if w]:
        print(f"asha-hpc: warning: {w}", file=sys.stderr)
    caps = capabilities(cfg)
    if caps.virtual_time:
        return
    from .compat.determined_config import determined_import_problem, trial_class_problem
    from .job.entrypoint import check_command, check_entrypoint, defines

    # a Determined Trial class first: its own line says what to do, not "not found"
    why = trial_class_problem(cfg.entrypoint, cfg.config_dir)
    if why is None and isinstance(cfg.entrypoint, str):
        why = (check_entrypoint(cfg.entrypoint, cfg.config_dir)
               or defines(cfg.entrypoint, cfg.config_dir))
    elif why is None:
        why = (check_command(list(cfg.entrypoint), cfg.config_dir, caps.jobs_run_here)
               or determined_import_problem(list(cfg.entrypoint), cfg.config_dir))
    if why:
        raise ConfigError([why], cfg.source)


def start_search(cfg: ExperimentConfig, exp_dir: str | Path | None,
                 report_every_s: float, in_python: bool = False, quiet: bool = False
                 ) -> tuple[int, ExperimentState, ExpDir]:
    """``run``: the checks, a new experiment folder (``exp_dir``, or the config's, or one under
    asha_runs/), and its master until the search ends or is stopped; (exit status, the search's
    state as it ended, the folder)."""
    check_code(cfg)
    warm = check_warm_start(cfg)
    root = Path(exp_dir) if exp_dir else default_exp_dir(cfg)
    refuse_running(root)
    exp = create_experiment(cfg, root)
    status, st = drive(exp, cfg, force=False, report_every_s=report_every_s, warm_start=warm,
                       in_python=in_python, quiet=quiet)
    return status, st, exp


def resume_search(exp: ExpDir, cfg: ExperimentConfig, force: bool, report_every_s: float,
                  retry_failed: bool = False, max_compute: int | None = None,
                  readmit: list[str] | None = None, in_python: bool = False,
                  quiet: bool = False) -> tuple[int, ExperimentState]:
    """``resume``: the master of an experiment folder, from its journal, until the search ends
    or is stopped; (exit status, the search's state as it ended)."""
    if exp.pause_request.exists():  # asked of a master that stopped first: resume is the answer
        exp.pause_request.unlink(missing_ok=True)
        print("asha-hpc: a waiting `asha-hpc pause` was dropped: the search resumes",
              file=sys.stderr)
    return drive(exp, cfg, force=force, report_every_s=report_every_s,
                 retry_failed=retry_failed, max_compute=max_compute, readmit=readmit,
                 announce=f"resuming '{cfg.name}' in {exp.root}", in_python=in_python,
                 quiet=quiet)


def refuse_someone_elses_running(root: Path) -> None:
    """``resume`` of another user's search that its master runs now: say so, rather than "copy
    the experiment as yourself", which would start a second search of it."""
    from .protocol.expdir import check_owned
    from .views.status import master_alive

    try:
        if not holds_experiment(root) or check_owned(root) is None:
            return
    except OSError:
        return  # ExpDir.open names what cannot be read
    holder = master_alive(ExpDir(root.resolve()))
    if holder:
        raise AshaError(f"{root.resolve()}: a {master_name(holder)} of its owner runs this "
                        f"search now; only its owner can resume or cancel it. Watch it with "
                        f"`asha-hpc status {shell_word(root.resolve())}`")


def refuse_running(root: Path) -> None:
    """``run`` into a folder whose search a master is running now: say so, rather than "resume
    it" (which that master refuses)."""
    from .views.status import master_alive

    if not holds_experiment(root):
        return
    exp = ExpDir(root.resolve())
    holder = master_alive(exp)
    if holder:
        raise AshaError(f"{exp.root} holds a search that a {master_name(holder)} is running "
                        f"now: watch it with `asha-hpc status {shell_word(exp.root)}`, or "
                        f"pick another folder with --exp-dir")
    if _just_made(exp):
        raise AshaError(f"{exp.root}: another `run` made its experiment here {_STARTING_S:.0f} s "
                        f"ago or less and its master is starting: watch that search with "
                        f"`asha-hpc status {shell_word(exp.root)}`, or pick another folder with "
                        f"--exp-dir")


_STARTING_S = 60.0  # a folder made this recently, with no lease yet, is a master starting


def _just_made(exp: ExpDir) -> bool:
    """An experiment another ``run`` has just made and whose master has not taken the lease
    yet (it reads the config and checks the code first): not one to resume."""
    from .protocol.expdir import CONFIG

    if exp.lease.exists() or exp.journal.exists():  # a master has run here
        return False
    try:
        return time.time() - (exp.root / CONFIG).stat().st_mtime < _STARTING_S
    except OSError:
        return False


def create_experiment(cfg: ExperimentConfig, root: Path, made_by_submit: bool = False) -> ExpDir:
    """Make the folder with the resolved config (defaults and the seed fixed) in it, at once
    (ExpDir.create_new): a second ``run`` racing for the folder writes nothing.
    ``made_by_submit``: the master's Slurm job, whose folder ``asha-hpc submit`` made (it holds
    the batch script and the job's log): the experiment is made in it, config last."""
    from .protocol.expdir import CONFIG

    cfg.experiment_dir = str(Path(root).resolve())
    data = write_yaml(cfg.to_dict(), sort_keys=False).encode()
    if made_by_submit and Path(root).is_dir():
        exp = ExpDir.create(root)
        atomic_write(exp.config, data)
    else:
        exp = ExpDir.create_new(root, {CONFIG: data})
    if cfg.checkpoint_folder:
        from .compat.determined_config import place_trials

        place_trials(exp.root, Path(cfg.checkpoint_folder))
    print(f"asha-hpc: experiment '{cfg.name}' in {exp.root} (backend {cfg.backend}, "
          f"searcher {cfg.searcher.name}, metric {cfg.searcher.metric})", file=sys.stderr)
    warn_node_local(cfg, exp.root)
    return exp


def warn_node_local(cfg: ExperimentConfig, root: Path) -> None:
    """Say at once when jobs on other nodes cannot see the folder: one in a machine's memory
    (tmpfs, ramfs: the login node's /tmp or /dev/shm) is never shared, and its jobs would end
    before their code ran, after their wait in the queue."""
    if not capabilities(cfg).jobs_on_other_nodes:
        return
    fs = filesystem_type(root)
    if fs in ("tmpfs", "ramfs"):
        print(f"asha-hpc: warning: {root} is on {fs}, the memory of this machine: jobs on other "
              f"nodes cannot write there (their logs, their results) and end before their code "
              f"runs. Unless every job runs on this machine, put the experiment folder on a "
              f"filesystem every compute node mounts (--exp-dir)", file=sys.stderr)


def master_name(holder: dict[str, Any]) -> str:
    """The master that holds the lease, as the commands that reach it name it."""
    return f"master (host {holder.get('host')}, pid {holder.get('pid')})"


def drive(exp: ExpDir, cfg: ExperimentConfig, force: bool, report_every_s: float,
          retry_failed: bool = False, warm_start: Any = None,
          max_compute: int | None = None, readmit: list[str] | None = None,
          announce: str | None = None, in_python: bool = False,
          quiet: bool = False) -> tuple[int, ExperimentState]:
    """Run the master on ``exp``; ``announce`` and the live report's line are printed once it
    holds the folder and its journal replays (a refused second master, a changed config or a
    damaged journal print only why). ``in_python``: started by ``asha_hpc.run`` or ``resume``,
whose lines name their arguments, not the command's. ``quiet``: no progress line while the
search runs, only the last one (what happens, warnings and the end are said as ever). (The
command's exit status, the search's state as it ended.)"""
    from .master.loop import Master, progress_every

    def on_lease() -> None:
        if announce:
            print(f"asha-hpc: {announce}", file=sys.stderr)
        if report_every_s > 0:
            print(f"asha-hpc: live report {exp.root / 'report.html'} (every {report_every_s:g} s "
                  f"and at the end; {'report_every_s=0' if in_python else '--report-every 0'} "
                  "for none)", file=sys.stderr)

    def hints(m: Master) -> Master:
        if in_python:
            m.resume_call = f"asha_hpc.resume({str(exp.root)!r})"
            m.resume_hint = f"Continue with: {m.resume_call}"
        return m

    every = progress_every(quiet)
    master = run_master(
        hints(Master(exp, cfg, force=force, report_every_s=report_every_s,
                     retry_failed=retry_failed, warm_start=warm_start, max_compute=max_compute,
                     readmit=readmit, on_lease=on_lease, progress_every_s=every)),
        lambda full: hints(Master(exp, cfg, report_every_s=report_every_s, disk_full=full,
                                  progress_every_s=every)))
    st = master.state
    assert st is not None
    if st.lifecycle == "completed":
        say_completed(exp, cfg, st, in_python)
        return 0, st
    if st.lifecycle == "failed":
        # the master printed the whole message (with the trial's traceback) as it failed
        first, _, more = (st.message or "").partition("\n")
        if more.strip():  # "...; the last error was:" + traceback
            first = first[:-1] + " printed above" if first.endswith(":") else first + " (details above)"
        print(f"asha-hpc: experiment failed: {first}", file=sys.stderr)
        return 1, st
    if st.stopped_by == "paused":
        return EXIT_PAUSED, st
    return (signal_status(master.stop_reason) if st.lifecycle in ("running", "stopped")
            else 0), st


def say_completed(exp: ExpDir, cfg: ExperimentConfig, st: ExperimentState,
                  in_python: bool = False) -> None:
    """The lines said at a completed search's end: its best trial, the trials that ended
    or failed, and what max_compute held back (``run``, ``resume``, the master's job)."""
    best = st.ranked()
    if best:
        b = best[0]
        short = "" if b.length >= cfg.searcher.max_length else \
            f" (no trial reached max_length {cfg.searcher.max_length})"  # ranked longest first
        if b.ended_early is not None:  # carried to its length without training
            short += f" (its code ended its training at {b.ended_early})"
        print(f"asha-hpc: done. best trial {b.id}: {cfg.searcher.metric}={b.metric:.6g} at "
              f"length {b.length}{short}; hparams {json.dumps(b.hparams)}", file=sys.stderr)
        if not in_python:  # Python's caller holds the result (its best, top, dataframe)
            print(f"asha-hpc: see `asha-hpc best {shell_word(exp.root)}`", file=sys.stderr)
    ended = sorted(t.id for t in st.trials.values() if t.status == "failed" and t.gave_up)
    if ended:
        print(f"asha-hpc: {len(ended)} trial{'s' if len(ended) > 1 else ''} ended by "
              f"{'their' if len(ended) > 1 else 'its'} own code ("
              f"{', '.join(map(str, ended[:10]))}{', ...' if len(ended) > 10 else ''}; early "
              f"stopping, or no result): not retried, as a retry would end alike", file=sys.stderr)
    failed = sorted(t.id for t in st.trials.values() if t.status == "failed" and not t.gave_up)
    if failed:
        print(f"asha-hpc: {len(failed)} trial{'s' if len(failed) > 1 else ''} failed "
              f"({', '.join(map(str, failed[:10]))}{', ...' if len(failed) > 10 else ''}): "
              f"`asha-hpc status {shell_word(exp.root)}` says why; " + (
                  f"asha_hpc.resume({str(exp.root)!r}, retry_failed=True)" if in_python
                  else f"`asha-hpc resume {shell_word(exp.root)} --retry-failed`")
              + " trains them again", file=sys.stderr)
    from .views.status import agreement_facts, held_back, held_back_text
    from .views.text import agreement_advice

    held = held_back(st)
    if held:
        print(f"asha-hpc: max_compute ({st.max_compute} {cfg.searcher.length_unit}) ended the "
              f"search: {held_back_text(held, exp.root)}", file=sys.stderr)
    for line in agreement_advice(agreement_facts(cfg, st)):
        print(f"asha-hpc: {line}", file=sys.stderr)


def run_master(master: Master, again: Callable[[DiskFull], Master]) -> Master:
    """``master.run()``; where the master's own write finds the disk full or the quota
    exhausted (it stops there, nothing lost), the wait for room, said once, and then a master
    from ``again`` that resumes the search from the journal, as ``resume`` would: a filled
    quota does not end a night's search. The lease stays this process's while it waits
    (``status`` shows a running master, and ``pause`` or ``cancel`` ask it: the master that
    follows acts on them). A signal while it waits (Ctrl-C, Slurm's before the master job's
    time limit) stops it as it stops a running master (``resume`` goes on). The master that
    ran last (its ``state`` is the search's)."""
    while True:
        master.keep_lease_when_full = True
        try:
            master.run()
            return master
        except MasterDiskFull as e:
            full = master.disk_full or DiskFull(Path(e.path), e.quota, master.exp.root)
            if master.disk_full is None:  # not said yet (no job had found it full)
                master.progress(full.line(master.exp.root))
            # LeaseHeldError where `resume --force` took the search meanwhile: as a running
            # master does, this one stops, saying why
            signalled = _wait_for_room(full, master.lease)
            master.lease.release()  # for the master that follows (or a later resume)
            master.waits_for_room = False  # a master returned below no longer waits
            if signalled:
                master.request_stop(signalled)
                master.progress(f"master stopped ({signalled}) while it waited for room; jobs "
                                f"keep running. " + (master.resume_hint or f"Continue with: "
                                                     f"asha-hpc resume {shell_word(master.exp.root)}"))
                return master
            progress = master.progress
            master = again(full)
            master.progress = progress


def _wait_for_room(full: DiskFull, lease: Any) -> str | None:
    """Until ``full`` has room (None), or a signal that stops a master comes (its name). The
    lease's heartbeat is renewed meanwhile, or where the disk is too full for that, its file's
    time (which other hosts read as the heartbeat's); LeaseHeldError if it was taken."""
    import os
    import signal

    from .master.loop import DISK_LOOK_S, on_stop_signals

    got: list[str] = []
    old = on_stop_signals(lambda signum, frame: got.append(signal.Signals(signum).name))
    try:
        looked = float("-inf")
        while not got:
            if time.monotonic() - looked >= DISK_LOOK_S:
                looked = time.monotonic()
                try:
                    lease.heartbeat()
                except OSError:
                    try:
                        os.utime(lease.path)
                    except OSError:
                        pass
                if full.has_room():
                    return None
            time.sleep(0.2)
        return got[0]
    finally:
        for number, h in old.items():
            signal.signal(number, h)


#: how much longer than its jobs' grace ``asha-hpc pause`` waits for a running master to stop
PAUSE_MARGIN_S = 30.0

#: ``run``'s exit status for a search that ``asha-hpc pause`` stopped: sysexits' EX_TEMPFAIL
#: ("try again later": ``resume``), so a script or a dependent job (``afterok``) does not take it
#: for a finished search
EXIT_PAUSED = 75


def signal_status(stop_reason: str | None) -> int:
    """The shell's exit status for a master a signal stopped (130 for Ctrl-C, 143 for SIGTERM):
    a script or ``sbatch --dependency=afterok`` must not read a stopped search as a finished one."""
    import signal

    try:
        return 128 + int(signal.Signals[stop_reason or ""])
    except KeyError:
        return 0


def wait_on_master(exp: ExpDir, wait_s: float, look: Callable[[], T | None]) -> T | None:
    """What ``look()`` finds, asked every 0.2 s until it finds something, ``wait_s`` has
    passed or the master holding the lease has stopped (then one last look)."""
    from .views.status import master_alive

    deadline = time.monotonic() + wait_s
    while True:
        found = look()
        if found is not None:
            return found
        if time.monotonic() >= deadline or not master_alive(exp):
            return look()
        time.sleep(0.2)


def _paused_by(exp: ExpDir, who: str, resume: str, watch: str, seen: int,
               in_python: bool) -> str:
    """After a running master took a pause: wait while its jobs save (at most the backend's
    grace, ``stop_warning_s``, then it cancels them) and it stops; what it did, from the
    ``stopped`` record it journals after the journal's first ``seen`` records."""
    from .config import load_config
    from .master.loop import paused_text
    from .protocol.journal import read_journal
    from .protocol.records import Stopped

    grace = capabilities(load_config(exp.config)).stop_warning_s
    if grace > 0:
        print(f"asha-hpc: {who} is pausing the search: its running jobs save and stop (at most "
              f"{grace:g} s, then they are cancelled)",
              file=sys.stderr if in_python else sys.stdout, flush=True)
    wait_on_master(exp, grace + PAUSE_MARGIN_S, lambda: None)
    rec = next((r for r in reversed(read_journal(exp.journal)[0][seen:])
                if r.get("kind") == "stopped" and r.get("reason") == "paused"), None)
    if rec is None:
        return f"{who} is pausing the search: its running jobs save and stop ({watch} shows it)"
    done = Stopped(reason="paused", jobs=rec.get("jobs"), queued=rec.get("queued"),
                   workers=rec.get("workers"), cancelled=rec.get("cancelled"))
    return f"{who} paused the search: {paused_text(done)}; {resume} goes on"


def stop_search(root: Path, how: str, wait_s: float, in_python: bool = False) -> str | None:
    """``pause`` (the running jobs save where they are and stop, for ``resume``) or ``cancel``
    (they are cancelled, for good) the search in ``root``: asked of the master that runs it,
    waiting up to ``wait_s`` for it to be done, or done here by a master of this process where
    none runs (it stops the jobs a stopped master left). The line that says what happened, or
    None where this process's master said it."""
    from .master.loop import Master
    from .protocol.journal import read_journal
    from .protocol.requests import write_cancel_request, write_pause_request
    from .views.status import master_alive

    if how not in ("pause", "cancel"):
        raise ValueError(how)
    refuse_someone_elses_running(root)
    exp = ExpDir.open(root)
    request = exp.pause_request if how == "pause" else exp.cancel_request
    holder = master_alive(exp)
    seen = len(read_journal(exp.journal)[0]) if holder and how == "pause" else 0
    try:
        (write_pause_request if how == "pause" else write_cancel_request)(exp)
    except OSError as e:
        from .errors import DISK_FULL_ERRNOS
        from .protocol.diskfull import mount_point

        if e.errno not in DISK_FULL_ERRNOS:
            raise
        # the request is a file the master reads: none can be left on a full disk
        raise AshaError(f"{mount_point(exp.root)}: {e.strerror}: the request to {how} cannot be "
                        f"written in {exp.root}; free some space (a few KiB) and {how} again"
                        + ("; a master waiting for room goes on by itself once there is room"
                           if holder else "")) from None
    resume = (f"asha_hpc.resume({str(exp.root)!r})" if in_python
              else f"`asha-hpc resume {shell_word(exp.root)}`")
    watch = (f"asha_hpc.load({str(exp.root)!r}).status" if in_python
             else f"`asha-hpc status {shell_word(exp.root)}`")
    if holder:
        who = f"the {master_name(holder)}"
        # the master removes a cancel request once it has cancelled the jobs and journaled it,
        # a pause request once it has told the jobs to stop
        if not wait_on_master(exp, wait_s, lambda: None if request.exists() else True):
            return (f"asked {who} to {how}; not done yet: it "
                    f"{'stops' if how == 'pause' else 'cancels'} the jobs at its next poll "
                    f"({watch} shows it)")
        if how == "cancel":
            return f"{who} cancelled the search and its running jobs"
        return _paused_by(exp, who, resume, watch, seen, in_python)
    from .config import load_config
    from .views.livereport import DEFAULT_EVERY_S

    master = Master(exp, load_config(exp.config),
                    progress=lambda line: print(f"asha-hpc: {line}",
                                                file=sys.stderr if in_python else sys.stdout),
                    # cancel: the live report shows the search cancelled
                    report_every_s=DEFAULT_EVERY_S if how == "cancel" else None)
    if in_python:
        master.resume_call = resume
    master.run()
    return None  # the master said what it did

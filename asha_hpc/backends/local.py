"""The local backend: segments as processes on this machine, through submitit's LocalExecutor.

submitit alone would start every job at once and give all of them the same
CUDA_VISIBLE_DEVICES, so this backend keeps a queue: a segment starts when a slot is free
(``local.max_parallel``) and gets its own GPUs from ``local.gpus`` (``gpus_per_trial`` each;
``trials_per_gpu`` lets several trials share a card). Jobs run in their own session, so Ctrl-C
on the master does not kill them, and a resumed master re-attaches by the pid recorded in
``jobs/local-<key>.json`` (a LocalJob itself cannot be re-attached).
"""
from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import submitit
from submitit.local import local as _sublocal

from ..config import ExperimentConfig, LocalConfig
from ..protocol.expdir import JOBS, atomic_write_json, read_json
from ..protocol.pids import (
    descendants,
    is_recorded_process,
    kill_leftovers,
    kill_tree,
    pid_alive,
    start_ticks,
)
from .base import Backend, Capabilities, JobSpec, JobState, SubmitError, submitit_logs

log = logging.getLogger("asha_hpc")

LOCAL_PREFIX = "local:"
LEAKED_PICKLE_S = 120.0  # an in-flight submission moves its pickle within milliseconds
FOREVER_MIN = 60 * 24 * 365  # submitit's local default kills a job after 2 minutes


class _DetachedLocalExecutor(submitit.LocalExecutor):
    """LocalExecutor whose jobs start in a new session (Ctrl-C on the master spares them) and
    without the master's stdin/stdout/stderr: the tasks log to their own files, and a job
    that outlives the master must not hold its pipes open (``asha-hpc run ... | tee`` would
    not end until every job did)."""

    def _submit_command(self, command: str):
        popen = subprocess.Popen

        def detached(*args, **kwargs):
            kwargs.setdefault("start_new_session", True)
            for stream in ("stdin", "stdout", "stderr"):
                kwargs.setdefault(stream, subprocess.DEVNULL)
            return popen(*args, **kwargs)

        _sublocal.subprocess.Popen = detached  # type: ignore[misc,assignment]
        try:
            return super()._submit_command(command)
        finally:
            _sublocal.subprocess.Popen = popen  # type: ignore[misc]


def _pid_is_job(pid: int) -> bool:
    """True if ``pid`` is alive and is a submitit local controller."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"submitit" in f.read()
    except OSError:
        return pid_alive(pid)


def read_record(record: Path) -> tuple[dict[str, Any], int | None, bool]:
    """A local job's record ({} when missing or torn), the pid it names (None before its process
    started) and whether that process still runs: alive, a submitit controller, and started
    before the record was written (a reused pid, perhaps another search's job, is not this job)."""
    rec, _ = read_json(record)
    if not isinstance(rec, dict):
        return {}, None, False
    pid = rec.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool):
        return rec, None, False
    try:  # a record of an earlier release (no ticks): its process started before it was written
        written: float | None = record.stat().st_mtime
    except OSError:
        written = None
    return rec, pid, _pid_is_job(pid) and is_recorded_process(pid, rec.get("ticks"), written)


def record_path(jobs_dir: Path, job_id: str) -> Path:
    """Where a local job's key, process id and GPUs are kept (a resumed master re-attaches)."""
    return jobs_dir / f"local-{job_id[len(LOCAL_PREFIX):]}.json"


def cancel_mark_path(jobs_dir: Path, job_id: str) -> Path:
    """Present once a local job was sent its cancel: how it ended is then the cancel's doing
    (``states``: CANCELLED, as sacct says of a job scancel ended), also to a later master."""
    return record_path(jobs_dir, job_id).with_suffix(".cancelled")


def threads_per_job(cfg: LocalConfig) -> int:
    """CPU threads for each process of a job: the machine's cores shared by the processes that
    run at once (as Ray Tune does for its trials). Without it torch and BLAS start a thread
    per core in every job, and ``max_parallel`` jobs on the same cores thrash (the digits
    example took 6.8x longer on 2 cores). An OMP_NUM_THREADS the user set is kept."""
    procs = max(1, cfg.max_parallel) * max(1, cfg.tasks_per_node)
    return max(1, (os.cpu_count() or 1) // procs)


class LocalBackend(Backend):
    name = "local"

    @classmethod
    def from_config(cls, cfg: ExperimentConfig, exp_root: Path) -> LocalBackend:
        return cls(exp_root, cfg.local)

    @classmethod
    def capabilities(cls, cfg: ExperimentConfig) -> Capabilities:
        # a job waits before it starts for a free slot of this machine, not in a queue; its
        # result is on a local disk at once
        return Capabilities(result_grace_s=3.0, queue_waits=False, jobs_run_here=True)

    @classmethod
    def log_files(cls, jobs_dir: Path, job_id: str) -> tuple[Path | None, Path | None] | None:
        """submitit names a local job's logs by its process id, kept in ``local-<key>.json``."""
        if not job_id.startswith(LOCAL_PREFIX):
            return None
        _, pid, _ = read_record(record_path(jobs_dir, job_id))
        if pid is None:
            return None, None
        return submitit_logs([jobs_dir / str(pid), jobs_dir], str(pid))

    def __init__(self, exp_dir: Path, cfg: LocalConfig, fn=None) -> None:
        self.exp_dir = Path(exp_dir)
        self.cfg = cfg
        self.folder = self.exp_dir / JOBS
        self.folder.mkdir(parents=True, exist_ok=True)
        if fn is None:
            from ..job.jobmain import run_job

            fn = run_job
        self.fn = fn
        self.queue: collections.deque[JobSpec] = collections.deque()
        self.procs: dict[str, _sublocal.LocalJob] = {}
        self._swept: set[str] = set()  # ended jobs whose leftover processes were looked for
        self.gpu_use: dict[str, int] = {g: 0 for g in cfg.gpus}
        self.holding: dict[str, list[str]] = {}  # job id -> GPUs it holds
        self._reattach()

    # ------------------------------------------------------------------ bookkeeping
    def _record(self, job_id: str) -> Path:
        return record_path(self.folder, job_id)

    def _reattach(self) -> None:
        """After a master restart: live jobs keep their GPUs and slots. A job pickle that
        submitit never moved to its job's name (the master died between starting the job and
        moving it: that job never runs) is removed once it is surely not in flight."""
        now = time.time()
        for p in self.folder.glob("*.pkl"):
            if re.fullmatch(r"[0-9a-f]{32}\.pkl", p.name):
                try:
                    if now - p.stat().st_mtime > LEAKED_PICKLE_S:
                        p.unlink()
                except OSError:
                    pass
        for p in self.folder.glob("local-*.json"):
            rec, _, running = read_record(p)
            if running:
                jid = LOCAL_PREFIX + p.stem[len("local-"):]
                self.holding[jid] = [g for g in rec.get("gpus", []) if g in self.gpu_use]
                for g in self.holding[jid]:
                    self.gpu_use[g] += 1

    def _running(self) -> int:
        return len(self.holding)

    def _take_gpus(self) -> list[str] | None:
        n = self.cfg.gpus_per_trial
        if n == 0:
            return []
        free = [g for g in self.cfg.gpus if self.gpu_use[g] < self.cfg.trials_per_gpu]
        free.sort(key=lambda g: self.gpu_use[g])
        if len(free) < n:
            return None
        return free[:n]

    # ------------------------------------------------------------------ interface
    def submit(self, specs: Sequence[JobSpec]) -> list[str]:
        self.queue.extend(specs)
        ids = [LOCAL_PREFIX + s.key for s in specs]
        self.tick()
        return ids

    def tick(self) -> None:
        """Start queued segments while slots and GPUs are free; free what finished."""
        for jid, job in list(self.procs.items()):
            if job.done():
                self._release(jid)
                self._sweep_job(jid)
        for jid in list(self.holding):
            if jid not in self.procs:  # re-attached: free when its process is gone
                if not read_record(self._record(jid))[2]:
                    self._release(jid)
        while self.queue and self._running() < self.cfg.max_parallel:
            gpus = self._take_gpus()
            if gpus is None:
                break
            spec = self.queue.popleft()
            self._start(spec, gpus)

    def _start(self, spec: JobSpec, gpus: list[str]) -> None:
        jid = LOCAL_PREFIX + spec.key
        env = dict(spec.env)
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        if "OMP_NUM_THREADS" not in os.environ and "OMP_NUM_THREADS" not in env:
            env["OMP_NUM_THREADS"] = str(threads_per_job(self.cfg))
        spec = dataclasses.replace(spec, env=env)
        record = self._record(jid)
        atomic_write_json(record, {"key": spec.key, "pid": None, "gpus": gpus}, durable=False)
        ex = _DetachedLocalExecutor(folder=str(self.folder))
        ex.update_parameters(timeout_min=FOREVER_MIN, gpus_per_node=0,
                             tasks_per_node=self.cfg.tasks_per_node)
        try:
            job = cast(_sublocal.LocalJob, ex.submit(self.fn, spec))
        except Exception as e:  # noqa: BLE001
            raise SubmitError(f"could not start a local job for {spec.key}: {e}") from e
        atomic_write_json(record, {"key": spec.key, "pid": int(job.job_id), "gpus": gpus,
                                   "ticks": start_ticks(int(job.job_id))},
                          durable=False)
        self.procs[jid] = job
        self.holding[jid] = gpus
        for g in gpus:
            self.gpu_use[g] += 1

    def _release(self, jid: str) -> None:
        for g in self.holding.pop(jid, []):
            self.gpu_use[g] -= 1

    def states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        queued = {LOCAL_PREFIX + s.key for s in self.queue}
        out: dict[str, JobState] = {}
        for jid in job_ids:
            if jid in queued:
                out[jid] = JobState.PENDING
            elif jid in self.procs:
                p = self.procs[jid]._process
                rc = p.poll() if p is not None else 0
                if rc is None:
                    out[jid] = JobState.RUNNING
                elif rc == 0 and self.procs[jid].paths.result_pickle.exists():
                    out[jid] = JobState.COMPLETED
                else:  # incl. SIGKILL (the OOM killer's signal): counts as a restart. submitit's
                    # controller exits 0 whatever became of its task; the task's result file
                    # tells whether it ran to its end
                    out[jid] = self._failed(jid)
            else:
                _, pid, running = read_record(self._record(jid))
                if running:
                    out[jid] = JobState.RUNNING
                elif pid is not None:  # started under an earlier master and gone: it died
                    self._sweep(jid, pid)
                    out[jid] = self._failed(jid)  # as it would count under its own (or its
                else:  # result is in the inbox, read first); never started (no pid): nothing counts
                    out[jid] = JobState.LOST
        return out

    def _failed(self, jid: str) -> JobState:
        """A job that ended without its result: FAILED (it counts against its trial), unless it
        was cancelled first (a pause, a cancel, a stop on a fatal error), whatever master sent
        the cancel: a job still starting, or whose code set SIGTERM back to its default, dies
        of it without a word, and that is not the trial's fault (on Slurm, sacct says
        CANCELLED)."""
        return JobState.CANCELLED if cancel_mark_path(self.folder, jid).exists() else \
            JobState.FAILED

    def close(self) -> None:
        """The master leaves: what ended jobs left running is ended (running jobs go on)."""
        for jid, job in list(self.procs.items()):
            if job.done():
                self._sweep_job(jid)

    def _sweep_job(self, jid: str) -> None:
        p = self.procs[jid]._process
        if p is not None and p.poll() is not None:
            self._sweep(jid, p.pid)

    def _sweep(self, jid: str, pgid: int) -> None:
        """Once per ended job: end what its code left running in its process group (Slurm's
        end of a job does, through its cgroup); said in the master's log."""
        if jid in self._swept:
            return
        self._swept.add(jid)
        n = kill_leftovers(pgid)
        if n:
            log.warning("job %s ended and left %d process%s of its own running: killed, as Slurm "
                        "does at a job's end", jid, n, "" if n == 1 else "es")

    def cancel(self, job_ids: Sequence[str]) -> None:
        """SIGTERM to each running job (the job checkpoints and leaves): to submitit's
        controller, which passes it to the job's tasks (its ranks) and to none of their own
        children (a DataLoader's workers, which die of a SIGTERM and fail the training loop
        before it can checkpoint). Then, as Slurm does after its KillWait, SIGKILL to each job's
        whole process group if it is still there ``KILL_AFTER_S`` later:
        a job stuck where it never looks at its stop (a collective whose peer is gone) would
        otherwise run on with nobody to end it. A detached watcher does the second step, so
        that neither the master nor ``asha-hpc cancel`` waits for it. Each signalled job is
        marked cancelled first (``cancel_mark_path``): a death without result is then no
        failure of its trial (``states``)."""
        ids = set(job_ids)
        self.queue = collections.deque(s for s in self.queue if LOCAL_PREFIX + s.key not in ids)
        signalled: list[tuple[int, str]] = []
        below: list[tuple[int, str]] = []
        for jid in ids:
            _, pid, running = read_record(self._record(jid))
            if running and pid is not None:
                ticks = start_ticks(pid)  # before the signal: which process it was
                tree = descendants(pid)  # before its leader exits and they are init's
                try:
                    cancel_mark_path(self.folder, jid).touch()
                except OSError:  # a full or read-only disk: the job is cancelled all the same
                    pass  # (should it die without a word, that counts, as it did before)
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    continue
                if ticks is not None:
                    signalled.append((pid, ticks))
                    below += tree
        if signalled:
            _kill_later(signalled, below, KILL_AFTER_S)

    def kill(self, job_ids: Sequence[str]) -> None:
        """SIGKILL to each running job's whole process group, now (``cancel``'s second step
        without its first)."""
        ids = set(job_ids)
        self.queue = collections.deque(s for s in self.queue if LOCAL_PREFIX + s.key not in ids)
        for jid in ids:
            _, pid, running = read_record(self._record(jid))
            if running and pid is not None:
                kill_tree(pid)

    def find(self, spec: JobSpec) -> str | None:
        jid = LOCAL_PREFIX + spec.key
        return jid if self._record(jid).exists() else None


KILL_AFTER_S = 30.0  # Slurm's default KillWait

_KILL_LATER = """
import json, os, signal, sys, time
groups, procs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
deadline = time.time() + float(sys.argv[3])

def same(pid, started):
    try:
        stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[-1].split()
    except OSError:
        return False
    return stat[0] != "Z" and stat[19] == started

while time.time() < deadline and any(same(p, s) for p, s in groups + procs):
    time.sleep(0.5)
for i, (pid, started) in enumerate(groups + procs):
    if same(pid, started):
        try:
            (os.killpg if i < len(groups) else os.kill)(pid, signal.SIGKILL)
        except OSError:
            pass
"""


def _kill_later(groups: list[tuple[int, str]], procs: list[tuple[int, str]],
                after_s: float) -> None:
    """SIGKILL, in ``after_s`` or once all of them are gone, to each process group (leader
    pid, its start time) whose leader is still that process, and to each of ``procs`` (the
    jobs' processes in sessions of their own) that is still that process (a pid reused
    meanwhile is left alone); from a process of its own."""
    subprocess.Popen([sys.executable, "-c", _KILL_LATER, json.dumps(groups), json.dumps(procs),
                      str(after_s)],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)



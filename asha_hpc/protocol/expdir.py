"""The experiment directory on the shared filesystem: the only channel between master and jobs.

Layout (one writer per file; no cross-node locks, since flock is unreliable across NFS/Lustre):

    <exp>/experiment.yaml      the config as resolved (master, once)
    <exp>/journal.jsonl        the master's append-only event log (see journal.py)
    <exp>/master.json          the master's lease (see lease.py)
    <exp>/cancel.request       `asha-hpc cancel` asks a running master to stop (cli, once)
    <exp>/max_compute.request  `resume --max-compute` asks a running master for a new cap (cli;
                               the master journals it and removes the file)
    <exp>/max_compute.answer   what the master did with it, for the command that asked (master;
                               both formats: requests.py)
    <exp>/readmit.request      `resume --readmit-node` asks a running master to take back
    <exp>/readmit.answer       excluded nodes, and its answer (as max_compute's)
    <exp>/retry_failed.request `submit --retry-failed` asks the master its job starts to retry
                               the failed trials (cli; the master journals it and removes it)
    <exp>/queue.json           why the scheduler keeps jobs pending, as the master last saw it
                               (master; queue.py)
    <exp>/master.waits-for-room  empty: the master's own write met a full disk or quota, and
                               it waits for room (or stopped while it waited); its time is
                               when (master; removed by the master that next takes the lease)
    <exp>/inbox/               jobs publish messages here by write-tmp + rename (see publish;
                               the messages' fields: messages.py)
    <exp>/trials/<id>/         written only by that trial's (single live) job
        checkpoints/<n>/       the trial's checkpoints, each published by a rename (trial.py)
        runs/<key>/            one attempt's own files: metrics.jsonl, ranks' heartbeats;
                               and `superseded`, the master's only file in a trial's folder:
                               it took that attempt for dead while its job may live on
    <exp>/workers/<worker>/    a pool worker's hand-over slots (the master writes slot files,
                               the worker claims them; see handoff.py) and its ranks' files
    <exp>/jobs/                the backend's job folders (submitit's, local pid files), so a
                               restarted master can re-attach; the jobs' logs (Slurm writes
                               them before the job's own folder exists)
    <exp>/unjournaled/<time>/  what trials' folders held from attempts the journal does not
                               know (a journal restored from an older copy), moved aside by
                               the master before it starts those attempts again (set_aside)

<key> names one attempt of one segment: ``attempt_key(trial, segment, attempt)``, e.g.
``t00012-s001-a00``; ``split_attempt_key`` reads it back. No other module spells a layout
name or this format.

Every file another process reads is published by an atomic rename, so a reader sees either
nothing or a complete file, never half of one.
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AshaError, shell_word
from .diskfull import mount_point

INBOX = "inbox"
MASTER_SCRIPT = "master.sbatch"  # `asha-hpc submit`'s batch script for the master's job
MASTER_LOG_GLOB = "master-*.out"  # that job's log (its template's --output)


def master_log(root: Path, job_id: str) -> Path:
    """The log of the master's Slurm job ``job_id`` (``MASTER_LOG_GLOB``)."""
    return Path(root) / MASTER_LOG_GLOB.replace("*", job_id)
MASTER_JOB = "master.job"  # that job's Slurm id, written by `asha-hpc submit` once sbatch took it
TRIALS = "trials"
JOBS = "jobs"
JOURNAL = "journal.jsonl"
CONFIG = "experiment.yaml"
LEASE = "master.json"
CANCEL_REQUEST = "cancel.request"
PAUSE_REQUEST = "pause.request"
MAX_COMPUTE_REQUEST = "max_compute.request"
MAX_COMPUTE_ANSWER = "max_compute.answer"
READMIT_REQUEST = "readmit.request"
RETRY_FAILED_REQUEST = "retry_failed.request"
READMIT_ANSWER = "readmit.answer"
QUEUE = "queue.json"
ROOM_WAIT = "master.waits-for-room"
WORKERS = "workers"
CHECKPOINTS = "checkpoints"  # in a trial's folder
UNJOURNALED = "unjournaled"
RUNS = "runs"  # in a trial's folder: one folder per attempt
HEARTBEAT = "heartbeat"  # in a run folder: rewritten by its job's rank 0 while the job lives
METRICS = "metrics.jsonl"  # in an attempt's run folder
SUPERSEDED = "superseded"  # in a run folder: the master took that attempt for dead (its one file there)
# files are readable where their folder is: an experiment's privacy is its 0700 folder, and one
# its owner shared (`chmod -R g+rX`) stays shared as the master rewrites its files. Never
# group-writable, whatever the umask: a pickle others could write would run as its owner
FILE_MODE = 0o644
FORMAT_FILE = "format"  # the folder's format: the release that last ran a master on it reads it
# Raised when a file or record changes meaning so that an older release would misread it (a
# result it would train again, a field it drops); that release then refuses the folder.
# 1: no format file (before); 2: results carried to a promoted length without a job, and
# results that say whether their code restored a checkpoint; 3: the journal's rules (the Init
# record's ``rules``, state.RULES), which an older release would replay into decisions its
# master never made; 4: experiment.yaml read with YAML 1.2's numbers (yamlfile.py: 1e-4 is a
# float), its text values that look like one quoted.
FORMAT = 4
YAML12_FORMAT = 4  # folders below it read their experiment.yaml as PyYAML's YAML 1.1 does

_ATTEMPT_KEY_RE = re.compile(r"^t(\d+)-s(\d+)-a(\d+)$")


def attempt_key(trial: int, segment: int, attempt: int) -> str:
    """The name of one attempt of one segment (inbox files, run folders, job names, logs)."""
    return f"t{trial:05d}-s{segment:03d}-a{attempt:02d}"


def split_attempt_key(key: str) -> tuple[int | None, int | None, int | None]:
    """``t00012-s001-a00`` -> (12, 1, 0); (None, None, None) if it is not an attempt key."""
    m = _ATTEMPT_KEY_RE.match(key)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else (None, None, None)


def sync_data(fd: int) -> None:
    """Make a file's data durable, with the metadata needed to read it back (its size), but
    not its timestamps: fdatasync where the system has it (a fraction cheaper than fsync,
    paid several times between two segments), else fsync."""
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, durable: bool = True, exclusive: bool = False) -> bool:
    """Write ``data`` to ``path`` by a temporary file in the same folder and a rename.

    The temporary name is unique (several writers may publish into one folder, e.g. the inbox)
    and created with O_EXCL|O_NOFOLLOW, so a planted link is never followed. ``durable``: the
    data is fsync'd before the rename, and the rename after it. Readers see a complete file or
    none either way; durability is only about a machine crash. ``exclusive``: publish only if
    ``path`` does not exist yet (a hard link instead of the rename: of two writers exactly one
    wins); returns False when it existed. Otherwise always True."""
    path = Path(path)
    tmp = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex[:12]}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(str(tmp), flags, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                sync_data(f.fileno())
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        fsync_dir(path.parent)
    return True


def atomic_write_json(path: Path, obj: Any, durable: bool = True) -> None:
    atomic_write(path, (json.dumps(obj, sort_keys=True) + "\n").encode(), durable)


def read_json(path: Path) -> tuple[Any | None, str | None]:
    """(object, None) or (None, why): a torn, corrupt or foreign file never raises."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None, "missing"
    except OSError as e:
        return None, f"unreadable ({e.strerror})"
    try:
        return json.loads(data), None
    except (ValueError, UnicodeDecodeError):
        return None, "not valid JSON (torn or corrupt)"


WRITABLE_BY_OTHERS = "writable by other users"


def check_owned(path: Path) -> str | None:
    """Why a file must not be trusted (owned by another user, or writable by others), or None.
    Results and pickles are only loaded from files that pass."""
    try:
        st = os.lstat(path)
    except OSError as e:
        return f"cannot stat ({e.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"owned by uid {st.st_uid}, not by you"
    if st.st_mode & stat.S_IWOTH:
        return WRITABLE_BY_OTHERS
    return None


def folder_format(root: Path) -> int:
    """The format an experiment folder says it has (1 without a format file; an unreadable
    one counts as this release's: the journal's own checks still apply)."""
    try:
        return int((Path(root) / FORMAT_FILE).read_text().strip())
    except FileNotFoundError:
        return 1
    except (OSError, ValueError):
        return FORMAT


@dataclass(frozen=True)
class ExpDir:
    """Paths of one experiment directory."""

    root: Path

    @classmethod
    def create(cls, root: Path, group_shared: bool = False) -> ExpDir:
        """Make the directory tree, private to this user (0700; 0750 when shared with the
        group)."""
        root = Path(root).resolve()
        try:
            _make_tree(root, 0o750 if group_shared else 0o700)
        except OSError as e:
            raise AshaError(f"{root}: cannot create the experiment directory ({e.strerror}); "
                            f"choose another with --exp-dir") from None
        return cls(root)

    @classmethod
    def create_new(cls, root: Path, files: dict[str, bytes]) -> ExpDir:
        """Create a new experiment folder holding ``files`` (e.g. its config), atomically: it
        is built under a temporary name beside ``root`` and renamed into place, so of two
        ``run``s racing for one folder the loser writes nothing. ``root`` may be missing or an
        empty folder of this user; anything else is refused with one line."""
        import shutil

        root = Path(root).resolve()
        _refuse_as_new(root)
        tmp = root.parent / f".{root.name}.creating-{uuid.uuid4().hex[:12]}"
        try:
            root.parent.mkdir(parents=True, exist_ok=True)
            _make_tree(tmp, 0o700)
            for name, data in files.items():
                atomic_write(tmp / name, data)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise AshaError(f"{root}: cannot create the experiment folder ({e.strerror}); choose "
                            f"another with --exp-dir") from None
        try:
            os.rename(tmp, root)  # fails if root appeared meanwhile and is not empty
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if holds_experiment(root):  # a `run` started at the same time won: its master
                raise AshaError(  # runs it now, so "resume it" would be refused
                    f"{root}: another `run` made its experiment in this folder a moment before "
                    f"this one: watch that search with `asha-hpc status {shell_word(root)}`, or "
                    f"pick another folder with --exp-dir") from None
            _refuse_as_new(root)  # names what is there now
            raise AshaError(f"{root}: another `run` created this folder first; pick another "
                            f"folder with --exp-dir") from None
        fsync_dir(root.parent)
        return cls(root)

    @classmethod
    def open(cls, root: Path, only_read: bool = False) -> ExpDir:
        """An existing experiment. Unless ``only_read`` (status, best, export, report: they load
        no job's result or pickle), it must be this user's and not writable by others."""
        root = Path(root).resolve()
        if not holds_experiment(root):
            waiting = submitted_master(root)
            if waiting is not None:
                raise AshaError(f"{root}: no experiment yet: {waiting.text()}")
            inside = experiment_folders(root)
            if inside:  # a folder of experiments (asha_runs/): the user meant one of them
                names = ", ".join(p.name for p in inside[:3]) + (", ..." if len(inside) > 3 else "")
                raise AshaError(f"{root}: a folder of {len(inside)} experiment"
                                f"{'s' if len(inside) != 1 else ''} ({names}), not one: give "
                                f"one of them, e.g. {inside[0]} (the newest); `asha-hpc status "
                                f"{root}` lists them")
            raise AshaError(f"{root}: not an experiment directory (no {CONFIG} or {JOURNAL}); "
                            f"start one with `asha-hpc run CONFIG` (in Python: `asha_hpc.run`)")
        newer = folder_format(root)
        if newer > FORMAT:
            from .. import __version__

            raise AshaError(f"{root}: written by a newer release of asha_hpc (folder format "
                            f"{newer}; this one, {__version__}, reads up to {FORMAT}): upgrade "
                            f"asha_hpc (pip install -U asha-hpc, or the newer clone) to resume "
                            f"or read it; nothing was changed")
        for path in (root, root / INBOX, root / JOBS):  # what jobs' results and pickles pass through
            why = None if only_read or not path.exists() else check_owned(path)
            if why:
                fix = (f"fix with: chmod o-w {path}" if why == WRITABLE_BY_OTHERS
                       else "run it as the user who owns it")
                raise AshaError(f"{path}: {why}; refusing to load results or pickles from it "
                                f"({fix}, or copy the experiment as yourself)")
        return cls(root)

    def mark_format(self) -> str | None:
        """A master of this release runs on the folder: from now on it holds what an older
        release would misread (``FORMAT``). Returns the line that says so where an older
        release's master ran on it before (that release can no longer read it)."""
        was = folder_format(self.root)
        if was >= FORMAT:
            return None
        ran = self.journal.exists()
        if ran and was < YAML12_FORMAT and self.config.exists():
            from ..yamlfile import keep_yaml11_text

            text = self.config.read_text()
            kept = keep_yaml11_text(text)
            if kept != text:  # its "1e-4" stays the text its search started with
                atomic_write(self.config, kept.encode())
        atomic_write(self.root / FORMAT_FILE, f"{FORMAT}\n".encode())
        if not ran:
            return None
        return (f"{self.root}: folder format {was} -> {FORMAT} (this release's): the release "
                f"that ran it before can no longer resume or read it; keep to this one or newer")

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    @property
    def journal(self) -> Path:
        return self.root / JOURNAL

    @property
    def lease(self) -> Path:
        return self.root / LEASE

    @property
    def inbox(self) -> Path:
        return self.root / INBOX

    @property
    def jobs(self) -> Path:
        return self.root / JOBS

    @property
    def cancel_request(self) -> Path:
        return self.root / CANCEL_REQUEST

    @property
    def pause_request(self) -> Path:
        return self.root / PAUSE_REQUEST

    @property
    def retry_failed_request(self) -> Path:
        return self.root / RETRY_FAILED_REQUEST

    @property
    def max_compute_request(self) -> Path:
        return self.root / MAX_COMPUTE_REQUEST

    @property
    def max_compute_answer(self) -> Path:
        return self.root / MAX_COMPUTE_ANSWER

    @property
    def readmit_request(self) -> Path:
        return self.root / READMIT_REQUEST

    @property
    def readmit_answer(self) -> Path:
        return self.root / READMIT_ANSWER

    @property
    def queue(self) -> Path:
        return self.root / QUEUE

    @property
    def room_wait(self) -> Path:
        return self.root / ROOM_WAIT

    def trial_dir(self, trial_id: int) -> Path:
        return self.root / TRIALS / f"{trial_id:05d}"

    def run_dir(self, trial_id: int, key: str) -> Path:
        """Per-attempt folder: metrics, ranks' heartbeats (a retried attempt never shares a file
        with a late-dying predecessor)."""
        return self.trial_dir(trial_id) / RUNS / key

    def checkpoints(self, trial_id: int) -> Path:
        return self.trial_dir(trial_id) / CHECKPOINTS

    def unjournaled(self, trial_id: int, segment: int, attempt: int) -> list[Path]:
        """What the trial's folder holds from attempt ``(segment, attempt)`` on, as the master
        is about to journal that attempt's intent. Attempts are numbered in the order they
        start and none starts before its intent is journaled, so there is nothing, unless the
        journal lost records that the trial's folder still has (restored from an older copy,
        cut short): those files are another search's, and this attempt's job would take them
        for its own (a checkpoint past its segment, a checkpoint name already taken)."""
        folder = self.trial_dir(trial_id)
        if (segment, attempt) == (0, 0):  # the trial's first attempt: all of it
            return [folder] if folder.exists() else []
        found = []
        for sub in (CHECKPOINTS, RUNS):
            try:
                names = os.listdir(folder / sub)
            except OSError:
                continue
            for name in names:
                # run folders are keys; checkpoints <key>-<n>, or .tmp-<key>-<n> while written
                key = name if sub == RUNS else name.removeprefix(".tmp-").rsplit("-", 1)[0]
                t, s, a = split_attempt_key(key)
                if t == trial_id and s is not None and a is not None and (s, a) >= (segment, attempt):
                    found.append(folder / sub / name)
        return sorted(found)

    def set_aside(self, paths: list[Path], since: float) -> Path:
        """Move ``paths`` (inside the folder) to ``unjournaled/<since>/`` (a master's start),
        each at its own relative path there: kept for a person to look at, out of every
        reader's way."""
        dest = self.root / UNJOURNALED / time.strftime("%Y%m%d-%H%M%S", time.localtime(since))
        for p in paths:
            target = dest / p.relative_to(self.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(p, target)
            except OSError as e:
                if e.errno != errno.EXDEV:
                    raise
                shutil.move(str(p), str(target))  # trials/ on another filesystem (a link)
        return dest

    def mark_superseded(self, trial_id: int, key: str, why: str, unstarted: bool = False) -> None:
        """Tell an attempt's job, should it live on (woken from a freeze, a node cut off from
        the scheduler, submitted by a master that froze inside its submission), that its
        attempt was taken for dead: it publishes no checkpoint or result any more, and so never
        writes beside the attempt that retries it. Only where the job made its run folder,
        unless ``unstarted`` (a submission nobody can find: should it land, its job ends at
        its start)."""
        run = self.run_dir(trial_id, key)
        try:
            if unstarted:
                run.mkdir(parents=True, exist_ok=True)
            if run.is_dir():
                atomic_write_json(run / SUPERSEDED, {"why": why, "time": time.time()}, durable=False)
        except OSError:  # the retry goes on all the same
            pass

    def last_heartbeat(self, trial_id: int) -> float | None:
        """When a job of the trial last wrote its heartbeat (the newest of its run folders':
        a job that continues the trial in place beats in the folder it started in), by the
        file system's clock; None where none did (a job of an earlier release)."""
        newest = None
        try:
            runs = list(os.scandir(self.trial_dir(trial_id) / RUNS))
        except OSError:
            return None
        for run in runs:
            try:
                t = os.stat(os.path.join(run.path, HEARTBEAT)).st_mtime
            except OSError:
                continue
            newest = t if newest is None else max(newest, t)
        return newest


def superseded(run_dir: Path) -> str | None:
    """Why the master took the attempt of ``run_dir`` for dead, or None while it is live."""
    if not os.path.exists(run_dir / SUPERSEDED):
        return None
    obj, _ = read_json(run_dir / SUPERSEDED)
    why = obj.get("why") if isinstance(obj, dict) else None
    return why if isinstance(why, str) else "no reason given"


def prune_oldest(folder: Path, prefix: str, keep: int) -> None:
    """Remove all but the ``keep`` newest files named ``prefix``* in ``folder`` (files kept
    aside for a person: rejected messages, stale leases), so that they never pile up."""
    try:
        found = [e for e in os.scandir(folder) if e.name.startswith(prefix)]
    except OSError:
        return
    if len(found) <= keep:
        return
    found.sort(key=lambda e: e.stat(follow_symlinks=False).st_mtime, reverse=True)
    for e in found[keep:]:
        try:
            os.unlink(e.path)
        except OSError:
            pass


# filesystems that are a disk (or the memory) of one machine: an experiment folder on one of
# them on the master's node is not what jobs on other nodes see
NODE_LOCAL_FS = frozenset({"tmpfs", "ramfs", "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs",
                           "overlay", "zfs"})


def filesystem_type(path: Path, mounts: Path = Path("/proc/mounts")) -> str | None:
    """The type of the filesystem that holds ``path`` (the last mount at its mount point in
    ``mounts``: a later mount hides an earlier one there), or None where that cannot be
    read."""
    point = str(mount_point(path))
    try:
        rows = [line.split() for line in mounts.read_text().splitlines()]
    except OSError:
        return None
    kinds = [row[2] for row in rows if len(row) >= 3 and
             row[1].replace("\\040", " ").replace("\\011", "\t") == point]
    return kinds[-1] if kinds else None


def holds_experiment(root: Path) -> bool:
    """Whether ``root`` holds an experiment (its config or its journal; a torn create leaves
    neither)."""
    return (Path(root) / JOURNAL).exists() or (Path(root) / CONFIG).exists()


def experiment_folders(root: Path) -> list[Path]:
    """The experiment folders directly inside ``root``, newest first ([] when it cannot be
    read)."""
    try:
        subs = [p for p in Path(root).iterdir() if p.is_dir()]
    except OSError:
        return []
    found = []
    for p in subs:
        try:
            if holds_experiment(p):
                found.append(p)
        except OSError:  # one not shared with this user: the others are still listed
            pass
    return sorted(found, key=lambda p: (-(folder_made(p) or 0.0), p.name))


def folder_made(root: Path) -> float | None:
    """When an experiment folder was made, as its files tell (the oldest of its config, its
    journal and itself); None when it cannot be read."""
    try:
        return min(x.stat().st_mtime for x in (root / CONFIG, root / JOURNAL, root) if x.exists())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class SubmittedMaster:
    """A folder ``asha-hpc submit`` made, whose master's job has not made the experiment yet."""
    job_id: str | None  # None: a folder from a release that did not keep it
    log: Path | None  # the job's log, once the job has started

    def text(self) -> str:
        job = f"Slurm job {self.job_id}" if self.job_id else "the master's job"
        if self.log is not None:
            return (f"{job} has started and has not made the experiment yet (its setup lines "
                    f"still run, or it stopped): its log says which: {self.log}")
        return (f"{job} has not started yet: `squeue {'-j ' + self.job_id if self.job_id else '--me'}"
                f"` says why it waits (`scancel {self.job_id or 'JOBID'}` withdraws it)")


def submitted_master(root: Path) -> SubmittedMaster | None:
    """What waits in a folder ``asha-hpc submit`` made before its master made the experiment
    there; None for any other folder."""
    root = Path(root)
    if holds_experiment(root) or not (root / MASTER_SCRIPT).exists():
        return None
    try:
        job = (root / MASTER_JOB).read_text().strip() or None
    except OSError:
        job = None
    logs = sorted(root.glob(MASTER_LOG_GLOB), key=lambda p: p.stat().st_mtime)
    return SubmittedMaster(job_id=job, log=logs[-1] if logs else None)


def _make_tree(root: Path, mode: int) -> None:
    """The experiment's folders, with ``mode``; OSError when they cannot be made."""
    root.mkdir(parents=True, exist_ok=True, mode=mode)
    os.chmod(root, mode)
    for sub in (INBOX, TRIALS, JOBS):
        (root / sub).mkdir(exist_ok=True, mode=mode)


def _refuse_as_new(root: Path) -> None:
    """Raise unless ``root`` may become a new experiment: missing, or an empty folder of ours."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        raise AshaError(f"{root}: exists and is not a folder; pick another with --exp-dir")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise AshaError(f"{root}: owned by uid {st.st_uid}, not by you; an experiment folder must "
                        f"be your own: pick another with --exp-dir")
    if holds_experiment(root):
        raise AshaError(f"{root} already holds an experiment: continue it with `asha-hpc resume "
                        f"{shell_word(root)}`, or pick another folder with --exp-dir")
    if any(True for _ in os.scandir(root)):
        raise AshaError(f"{root}: exists, is not empty and is not an experiment; asha-hpc mixes "
                        f"nothing into it: pick a new or empty folder with --exp-dir")


def remove_trees(paths: list[Path], threads: int = 8) -> dict[Path, str]:
    """Remove folders (missing ones are fine); returns those that could not be removed, with
    why (a read-only folder, an immutable file). Many at once go through a few threads: each
    removal is a handful of metadata operations that wait on the filesystem (about a
    millisecond apiece on a local disk, more on NFS), so a search's end, which frees the
    checkpoints of hundreds of trials, takes a fraction of the time."""
    import shutil

    def remove(p: Path) -> str | None:
        errors: list[str] = []

        def note(fn: Any, path: str, info: Any) -> None:  # onerror's info: (type, value, tb)
            e = info[1] if isinstance(info, tuple) else info
            errors.append(f"{path}: {getattr(e, 'strerror', None) or e}")

        if sys.version_info >= (3, 12):
            shutil.rmtree(p, onexc=note)
        else:
            shutil.rmtree(p, onerror=note)
        if not errors or not p.exists():
            return None
        return errors[0] + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")

    if len(paths) <= 2:
        found = [remove(p) for p in paths]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(threads, len(paths))) as pool:
            found = list(pool.map(remove, paths))
    return {p: why for p, why in zip(paths, found) if why is not None}


# ----------------------------------------------------------------------------- inbox
def result_name(key: str, rank: int = 0) -> str:
    """The inbox name of an attempt's result message (a rank other than 0 sends its own)."""
    return f"{key}.result.json" if rank == 0 else f"{key}.rank{rank}.result.json"


def result_key(name: str) -> str | None:
    """The attempt key a result message's inbox name names (``result_name``), or None."""
    key = name.split(".", 1)[0]
    ok = name.endswith(".result.json") and split_attempt_key(key)[0] is not None
    return key if ok else None


def publish(exp_root: Path, name: str, obj: dict[str, Any]) -> None:
    """Job side: drop one message into the inbox, atomically (a reader never sees half of it),
    without fsync. A message that a machine crash undoes (or leaves empty: then it is moved
    aside as torn) is a job that died just before sending it, which the master handles anyway:
    the segment is retried from the trial's checkpoint, which *is* durable (trial.py). What the
    master reads it makes durable itself, by journaling it before acting. On NFS, close()
    already sends the data to the server; on a local disk, the crash takes the master too. A
    fsync here would cost milliseconds between every two segments for nothing.

    On a full disk or quota the message (a few hundred bytes) is tried again every few
    seconds for up to PUBLISH_FULL_WAIT_S: a job that waits for room loses nothing, one that
    died would be a death for the master to explain."""
    from ..errors import DISK_FULL_ERRNOS

    deadline = time.monotonic() + PUBLISH_FULL_WAIT_S
    while True:
        try:
            atomic_write_json(Path(exp_root) / INBOX / name, obj, durable=False)
            return
        except OSError as e:
            if e.errno not in DISK_FULL_ERRNOS or time.monotonic() > deadline:
                raise
            time.sleep(5.0)


PUBLISH_FULL_WAIT_S = 600.0


@dataclass
class InboxMessage:
    name: str
    path: Path
    body: dict[str, Any] | None
    problem: str | None = None


def scan_inbox(inbox: Path) -> list[InboxMessage]:
    """Master side: one listdir per poll; O(new messages), not O(trials). Temporary files
    (``.tmp-*``) are in flight and skipped; torn or foreign files come back with ``problem``."""
    out: list[InboxMessage] = []
    try:
        entries = sorted(e.name for e in os.scandir(inbox) if not e.name.startswith("."))
    except FileNotFoundError:
        return out
    for name in entries:
        path = inbox / name
        why = check_owned(path)
        if why:
            out.append(InboxMessage(name, path, None, why))
            continue
        body, err = read_json(path)
        if err == "missing":
            continue
        if err or not isinstance(body, dict):
            out.append(InboxMessage(name, path, None, err or "not a JSON object"))
            continue
        out.append(InboxMessage(name, path, body))
    return out

"""``det.core``: the Core API context (train, checkpoint, preempt, searcher, distributed) on
top of asha_hpc's command-entrypoint protocol (jobmain.py: ``ASHA_*`` variables, the report
file, the checkpoint folder the job publishes, the stop file).

Checkpoints: each ``store_path`` writes a folder named by its storage_id (a uuid) inside the
job's checkpoint folder, renamed into place when complete, and then removes the previous one;
the job publishes the folder when the command ends, so the next job's ``latest_checkpoint`` is
the newest storage_id in it. Each complete one is named in the report file (``saved``), so a
script that fails later keeps it, as Determined keeps every checkpoint it registered. A job
killed mid-save leaves the previous storage_id intact.
"""
from __future__ import annotations

import atexit
import contextlib
import enum
import functools
import gc
import json
import logging
import math
import os
import pickle
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ...job import stop_signals
from ...job.job_report import append_report, json_value
from ...protocol.expdir import ExpDir
from ...yamlfile import read_yaml

log = logging.getLogger("determined.core")
METADATA = "metadata.json"
RUN_METADATA = "det_metadata.json"  # train.set_metadata's, in the trial's folder
UNITS = ("batches", "epochs", "records")


@dataclass
class JobEnv:
    """What the job told the command, and what the shim needs from the resolved config."""

    exp_dir: Path
    trial_dir: Path
    run_dir: Path
    target: int
    metric: str
    report_file: Path
    checkpoint_dir: Path
    latest_checkpoint: Path | None
    stop_file: Path
    time_metric: str | None
    until_exit: bool
    slots_per_trial: int
    seed: int
    smaller_is_better: bool = True

    @classmethod
    def from_env(cls) -> JobEnv:
        e = os.environ
        missing = [k for k in ("ASHA_EXP_DIR", "ASHA_TRIAL_DIR", "ASHA_RUN_DIR", "ASHA_REPORT_FILE",
                               "ASHA_CHECKPOINT_DIR", "ASHA_STOP_FILE") if k not in e]
        if missing:
            raise RuntimeError(f"det.core.init(): not inside an asha_hpc job ({missing[0]} is not "
                               f"set); run the script through `asha-hpc run CONFIG`")
        exp = Path(e["ASHA_EXP_DIR"])
        try:
            cfg = read_yaml(ExpDir(exp).config.read_text()) or {}
        except (OSError, yaml.YAMLError):
            cfg = {}
        s = cfg.get("searcher") or {}
        unit = e.get("ASHA_LENGTH_UNIT", "units")
        length = s.get("max_length")
        if isinstance(length, dict) and length:
            unit = next(iter(length))
        time_metric = s.get("time_metric") or (unit if unit in UNITS else None)
        latest = e.get("ASHA_LATEST_CHECKPOINT") or None
        return cls(exp_dir=exp, trial_dir=Path(e["ASHA_TRIAL_DIR"]), run_dir=Path(e["ASHA_RUN_DIR"]),
                   target=int(e.get("ASHA_TARGET_LENGTH", "1")), metric=e.get("ASHA_METRIC", ""),
                   report_file=Path(e["ASHA_REPORT_FILE"]),
                   checkpoint_dir=Path(e["ASHA_CHECKPOINT_DIR"]),
                   latest_checkpoint=Path(latest) if latest else None,
                   stop_file=Path(e["ASHA_STOP_FILE"]), time_metric=time_metric,
                   until_exit=bool(s.get("until_exit")),
                   slots_per_trial=slots_per_trial(cfg),
                   seed=int((cfg.get("reproducibility") or {}).get("experiment_seed", 0)),
                   smaller_is_better=bool(s.get("smaller_is_better", True)))

    def latest_storage_id(self) -> str | None:
        """The newest complete storage_id in the trial's latest checkpoint, or None."""
        if self.latest_checkpoint is None:
            return None
        found = _stored(self.latest_checkpoint)
        return found[-1][1] if found else None

    def find(self, storage_id: str) -> Path | None:
        """Where a storage_id lives: this job's new checkpoints, the trial's latest, then any
        checkpoint of the experiment (a warm start from another trial)."""
        roots = [self.checkpoint_dir]
        if self.latest_checkpoint is not None:
            roots.append(self.latest_checkpoint)
        for root in roots:
            if (root / storage_id / METADATA).is_file():
                return root / storage_id
        for path in sorted(self.exp_dir.glob(f"trials/*/checkpoints/*/{storage_id}")):
            if (path / METADATA).is_file():
                return path
        return None


def slots_per_trial(cfg: dict[str, Any]) -> int:
    """The trial's slots as Determined counts them, from the resolved config: its
    ``resources.slots_per_trial`` (1 unless given), or 0 where trials get no GPU at all
    (Determined's ``slots_per_trial: 0`` becomes ``slurm.gpus_per_node: 0`` and
    ``local.gpus_per_trial: 0``: the resolved config holds no slot count below 1)."""
    given = (cfg.get("resources") or {}).get("slots_per_trial")
    if given is None and (cfg.get("slurm") or {}).get("gpus_per_node") == 0 \
            and not (cfg.get("local") or {}).get("gpus_per_trial"):
        return 0
    return int(given or 1)


def _best_validation(t: _Trial) -> float | None:
    """``get_experiment_best_validation()``: the best of every result in the journal and this
    job's own validations of the searcher's metric (NaN, a diverged trial's, is no best). The
    journal is followed from where the last call left it (JournalTail)."""
    from ...protocol.journal import JournalTail
    from ...protocol.metrics import metric_float

    if t.journal_tail is None:
        t.journal_tail = JournalTail(ExpDir(t.job.exp_dir).journal)
    better = min if t.job.smaller_is_better else max
    try:
        records = t.journal_tail.new_records()
    except OSError:  # no journal to read (a job run by hand): this job's own values
        records = []
    if t.journal_tail.restarted:
        t.journal_best = None
    for rec in records:
        if rec.get("kind") == "result" and rec.get("status") == "completed":
            v = metric_float((rec.get("metrics") or {}).get(t.job.metric))
            if math.isfinite(v):
                t.journal_best = v if t.journal_best is None else better(t.journal_best, v)
    finite = [v for v in t.own_values if math.isfinite(v)]
    if t.journal_best is not None:
        finite.append(t.journal_best)
    return better(finite) if finite else None


def _stored(folder: Path) -> list[tuple[float, str]]:
    """(time stored, storage_id) of the complete Core API checkpoints in a folder, oldest first."""
    out = []
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    for name in names:
        if name.endswith(".partial"):
            continue
        try:
            meta = json.loads((folder / name / METADATA).read_text())
        except (OSError, ValueError):
            continue
        out.append((float(meta.get("asha_stored", 0.0)), name))
    return sorted(out)


def newest_stored(folder: Path) -> tuple[str, Path] | None:
    """(storage_id, its folder) of the newest Core API checkpoint a published checkpoint
    holds (``store_path`` writes ``<checkpoint>/<storage_id>/``), or None: what ``best``
    names for a Determined script to load."""
    found = _stored(folder)
    return (found[-1][1], folder / found[-1][1]) if found else None


def _remove_checkpoint(path: Path) -> None:
    """Its metadata first: a removal cut short leaves files that no longer count as a
    checkpoint (``_stored``), never a half-removed one that does."""
    (path / METADATA).unlink(missing_ok=True)
    shutil.rmtree(path, ignore_errors=True)


def _append(path: Path, obj: dict[str, Any]) -> None:
    append_report(path, obj)


class EarlyExitReason(enum.Enum):
    INVALID_HP = "EXITED_REASON_INVALID_HP"
    USER_REQUESTED_STOP = "EXITED_REASON_USER_REQUESTED_STOP"


class PreemptMode(enum.Enum):
    """Who calls ``should_preempt()`` (Determined's ``init(preempt_mode=...)``): every rank,
    getting the chief's answer (the default); the chief alone; or every rank on its own."""

    WorkersAskChief = "WORKERS_ASK_CHIEF"
    ChiefOnly = "CHIEF_ONLY"
    WorkersAskMaster = "WORKERS_ASK_MASTER"


class SearcherMode(enum.Enum):
    """``operations(searcher_mode=...)``: accepted; every rank gets the segment's operation."""

    WorkersAskChief = "WORKERS_ASK_CHIEF"
    ChiefOnly = "CHIEF_ONLY"


class TensorboardMode(enum.Enum):
    """``init(tensorboard_mode=...)``: accepted; nothing uploads TensorBoard files here
    (``asha-hpc export --format tensorboard`` writes them from the reported metrics)."""

    AUTO = "AUTO"
    MANUAL = "MANUAL"


# ----------------------------------------------------------------------------- distributed
class DistributedContext:
    """The trial's ranks. Built by hand (``rank``, ``size``, ... as Determined's tutorial
    does for the processes it launches), collectives go through files in the attempt's run
    folder (shared by every node); ``from_torch_distributed()`` uses torch.distributed's."""

    def __init__(self, *, rank: int, size: int, local_rank: int, local_size: int,
                 cross_rank: int, cross_size: int, chief_ip: str | None = None,
                 pub_port: int = 0, pull_port: int = 0, port_offset: int = 0,
                 force_tcp: bool = False) -> None:
        self.rank, self.size = rank, size
        self.local_rank, self.local_size = local_rank, local_size
        self.cross_rank, self.cross_size = cross_rank, cross_size
        self.chief_ip = chief_ip
        self._seq = 0
        self._torch = False
        run = os.environ.get("ASHA_RUN_DIR")
        self._dir = Path(run) / "det_distributed" if run else None

    @classmethod
    def from_torch_distributed(cls, chief_ip: str | None = None) -> DistributedContext:
        import torch.distributed as dist

        e = os.environ
        local_size = int(e.get("LOCAL_WORLD_SIZE", dist.get_world_size()))
        rank = dist.get_rank()
        ctx = cls(rank=rank, size=dist.get_world_size(), local_rank=int(e.get("LOCAL_RANK", 0)),
                  local_size=local_size, cross_rank=rank // max(local_size, 1),
                  cross_size=dist.get_world_size() // max(local_size, 1),
                  chief_ip=chief_ip or e.get("MASTER_ADDR"))
        ctx._torch = True
        _collect_before_destroy(dist)
        atexit.register(_destroy_process_group)
        return ctx

    def get_rank(self) -> int:
        return self.rank

    def get_size(self) -> int:
        return self.size

    def get_local_rank(self) -> int:
        return self.local_rank

    def get_local_size(self) -> int:
        return self.local_size

    def get_cross_rank(self) -> int:
        return self.cross_rank

    def get_cross_size(self) -> int:
        return self.cross_size

    # collectives
    def allgather(self, stuff: Any) -> list[Any]:
        if self.size == 1:
            return [stuff]
        if self._torch:
            import torch.distributed as dist

            out: list[Any] = [None] * self.size
            dist.all_gather_object(out, stuff)
            return out
        return self._exchange(stuff, readers="all")

    def gather(self, stuff: Any) -> list[Any] | None:
        if self.size == 1:
            return [stuff]
        if self._torch:
            import torch.distributed as dist

            out: list[Any] | None = [None] * self.size if self.rank == 0 else None
            dist.gather_object(stuff, out, dst=0)
            return out
        got = self._exchange(stuff, readers="chief")
        return got if self.rank == 0 else None

    def broadcast(self, stuff: Any) -> Any:
        if self.size == 1:
            return stuff
        if self._torch:
            import torch.distributed as dist

            box = [stuff if self.rank == 0 else None]
            dist.broadcast_object_list(box, src=0)
            return box[0]
        return self._exchange(stuff if self.rank == 0 else None, readers="all", only_chief=True)[0]

    def allgather_local(self, stuff: Any) -> list[Any]:
        mine = self.allgather((self.cross_rank, stuff))
        return [x for c, x in mine if c == self.cross_rank]

    def gather_local(self, stuff: Any) -> list[Any] | None:
        got = self.allgather_local(stuff)
        return got if self.local_rank == 0 else None

    def broadcast_local(self, stuff: Any) -> Any:
        return self.allgather_local(stuff)[0]

    def _exchange(self, stuff: Any, readers: str, only_chief: bool = False) -> list[Any]:
        """Every rank (or the chief alone) drops its value for this call; the readers wait for
        all of them. Files are named by call number, so calls never mix. The wait polls at 1 ms
        doubling to 50 ms: ranks that arrive together meet within milliseconds, and one that
        waits long on a shared filesystem costs a few stats a second."""
        if self._dir is None:
            raise RuntimeError("DistributedContext: collectives need an asha_hpc job (ASHA_RUN_DIR)")
        self._seq += 1
        self._dir.mkdir(parents=True, exist_ok=True)
        writers = [0] if only_chief else list(range(self.size))
        if self.rank in writers:
            tmp = self._dir / f".tmp-{self._seq}-{self.rank}"
            tmp.write_bytes(pickle.dumps(stuff))
            os.rename(tmp, self._dir / f"{self._seq}-{self.rank}")
        if readers == "chief" and self.rank != 0:
            return []
        paths = [self._dir / f"{self._seq}-{r}" for r in writers]
        deadline = time.monotonic() + 1800
        pause = 0.001
        while not all(p.exists() for p in paths):
            if time.monotonic() > deadline:
                raise RuntimeError(f"rank {self.rank}: timed out waiting for the other ranks in "
                                   f"collective {self._seq} ({self._dir})")
            time.sleep(pause)
            pause = min(2 * pause, 0.05)
        got = [pickle.loads(p.read_bytes()) for p in paths]
        if self.rank == 0 and not only_chief:
            self._collect(self._seq)
        return got

    def _collect(self, seq: int) -> None:
        """The chief has every rank's file of call ``seq``: every rank has left every earlier
        call, so their files are read by all who read them; removed (else a loop of
        collectives leaves a file per rank per call)."""
        assert self._dir is not None
        for name in os.listdir(self._dir):
            call, _, _ = name.partition("-")
            if call.isdigit() and int(call) < seq:
                try:
                    os.unlink(self._dir / name)
                except FileNotFoundError:
                    pass


def _destroy_process_group() -> None:
    """At exit: a gloo process group still alive when the interpreter ends aborts the process
    now and then ("terminate called without an active exception", torch 2.x), which fails the
    segment after its work is done; Determined's examples never destroy theirs. Collected
    first, as every destroy here is (``_collect_before_destroy``)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _collect_before_destroy(dist: Any) -> None:
    """Make ``torch.distributed.destroy_process_group()`` run the garbage collector first, the
    script's own call included. A DDP model sits in reference cycles (its reducer's hooks): a
    model the script no longer holds is freed only by the collector, and freed after the group
    is gone, its reducer aborts the rank ("terminate called without an active exception"),
    after the trial's work was done. Collected while the group lives, it is freed safely."""
    original = dist.destroy_process_group
    if getattr(original, "_asha_collects", False):  # from_torch_distributed() called again
        return

    @functools.wraps(original)
    def destroy_process_group(*args: Any, **kwargs: Any) -> Any:
        gc.collect()
        return original(*args, **kwargs)

    destroy_process_group._asha_collects = True  # type: ignore[attr-defined]
    dist.destroy_process_group = destroy_process_group


class DummyDistributed(DistributedContext):
    def __init__(self) -> None:
        super().__init__(rank=0, size=1, local_rank=0, local_size=1, cross_rank=0, cross_size=1)


DummyDistributedContext = DummyDistributed  # Determined's name


# ----------------------------------------------------------------------------- sub-contexts
class _Trial:
    """What the three sub-contexts share: the segment's progress and result."""

    def __init__(self, job: JobEnv, dist: DistributedContext) -> None:
        self.job, self.dist = job, dist
        self.result_sent = False
        self.reached = False  # the segment's length was reached: the trial pauses here
        self.seen_time_metric = False
        self.last_validation: dict[str, Any] | None = None
        self.progress: int | None = None
        self.stored: set[str] = set()  # storage_ids this job stored (later ones replace them)
        self.own_values: list[float] = []  # this job's validations of the searcher's metric
        self.journal_tail: Any = None  # get_experiment_best_validation's reader (JournalTail)
        self.journal_best: float | None = None  # ... and the best of the results it read

    def told_to_leave(self) -> bool:
        """The job must end (time limit, preemption, pause, cancel): its stop file, or a stop
        signal to this process (``stop_signals``)."""
        return self.job.stop_file.exists() or stop_signals.received() is not None

    def send_result(self, metrics: dict[str, Any]) -> None:
        if self.result_sent:
            return
        if self.job.metric not in metrics:
            why = (f"validation metrics {sorted(metrics)} lack the searcher's metric "
                   f"'{self.job.metric}' (searcher.metric): report it")
            _append(self.job.report_file, {"fatal": why})  # every trial would repeat it
            raise ValueError(why)
        _append(self.job.report_file, {"metrics": metrics})
        self.result_sent = True

    def stop_early(self) -> None:
        """``USER_REQUESTED_STOP``: the script ends the trial's training here. As in Determined,
        the trial ends as completed with what it reported: its last validation becomes the
        segment's result (unless the rung's was already sent), and the ``ended_early`` line
        after it makes the model final, its result standing for any promotion."""
        if not self.result_sent and self.last_validation is not None \
                and self.job.metric in self.last_validation:
            self.send_result(self.last_validation)
        where = f" at {self.job.time_metric}={self.progress}" if self.progress is not None else ""
        _append(self.job.report_file, {"ended_early": (
            f"the script reported USER_REQUESTED_STOP{where}: the trial ends "
            + ("with its last validation as its result" if self.result_sent
               else "without a validation of the searcher's metric to rank it by"))})
        self.result_sent = True  # close() adds nothing after it


class TrainContext:
    def __init__(self, t: _Trial) -> None:
        self._t = t

    def report_training_metrics(self, steps_completed: int, metrics: dict[str, Any],
                                batch_metrics: list[dict[str, Any]] | None = None) -> None:
        """A learning-curve point; names get a ``train_`` prefix (unless they have one) so
        they never shadow a validation metric of the same name."""
        if self._t.dist.rank != 0:
            return
        named = {(k if k.startswith("train") else f"train_{k}"): v for k, v in metrics.items()}
        _append(self._t.job.report_file, {"step": int(steps_completed), "metrics": named})

    def report_validation_metrics(self, steps_completed: int, metrics: dict[str, Any]) -> None:
        """A learning-curve point; the first one at or past the segment's length (counted in
        the time metric) is the rung's result, after which ``should_preempt()`` is True."""
        t = self._t
        if t.dist.rank != 0:
            return
        _append(t.job.report_file, {"step": int(steps_completed), "metrics": metrics})
        t.last_validation = dict(metrics)
        if t.job.metric in metrics:
            from ...protocol.metrics import metric_float

            t.own_values.append(metric_float(metrics[t.job.metric]))
        tm = t.job.time_metric
        if tm is None or tm not in metrics:
            return
        t.seen_time_metric = True
        t.progress = int(float(metrics[tm]))
        if t.progress >= t.job.target and not t.result_sent:
            t.send_result(metrics)
            t.reached = True

    def report_metrics(self, group: str, steps_completed: int, metrics: dict[str, Any]) -> None:
        if group == "validation":
            self.report_validation_metrics(steps_completed, metrics)
        elif group == "training":
            self.report_training_metrics(steps_completed, metrics)
        elif self._t.dist.rank == 0:
            _append(self._t.job.report_file, {"step": int(steps_completed), "metrics": {
                f"{group}_{k}": v for k, v in metrics.items()}})

    def report_progress(self, progress: float) -> None:
        """Determined's progress bar; nothing to do here (``asha-hpc status`` shows lengths)."""

    def report_early_exit(self, reason: EarlyExitReason) -> None:
        """``INVALID_HP``: the trial is replaced. ``USER_REQUESTED_STOP``: the trial ends as
        completed, its last validation its result (``_Trial.stop_early``); the script then
        returns. The chief's call counts, as only the chief reports metrics."""
        reason = EarlyExitReason(reason)
        if self._t.dist.rank != 0:
            return
        if reason == EarlyExitReason.INVALID_HP:
            _append(self._t.job.report_file, {"invalid_hp": "the script reported INVALID_HP"})
        else:
            self._t.stop_early()

    def set_status(self, status: str) -> None:
        """Determined shows it in its Web UI; here it goes to the job's log (``asha-hpc
        logs``), one line per call."""
        print(f"asha_hpc: trial {os.environ.get('ASHA_TRIAL_ID', '?')} status: {status}",
              file=sys.stderr, flush=True)

    def set_metadata(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """Replace the trial's metadata (as Determined's run metadata: the whole of it) and
        return it. It lives in the trial's folder (``det_metadata.json``), so every later job
        of the trial reads it back with ``get_metadata()``."""
        try:
            text = json.dumps(metadata)
        except (TypeError, ValueError) as e:
            raise TypeError(f"train.set_metadata(): the metadata must be JSON (dicts, lists, "
                            f"strings, numbers): {e}") from None
        path = self._t.job.trial_dir / RUN_METADATA
        tmp = path.with_name(f".{RUN_METADATA}.{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)  # a reader (another rank, a later job) sees all of it or the old
        return dict(json.loads(text))

    def get_metadata(self) -> dict[str, Any]:
        """The trial's metadata as last set (by this job or an earlier one); {} before any."""
        try:
            got = json.loads((self._t.job.trial_dir / RUN_METADATA).read_text())
        except FileNotFoundError:
            return {}
        return got if isinstance(got, dict) else {}

    def get_experiment_best_validation(self) -> float | None:
        """The best value of the searcher's metric reported so far in the experiment: every
        segment's result in the journal (one file, read once per call) and this job's own
        validations; None before any. Validations of other trials' running segments count
        once their segment's result is in."""
        return _best_validation(self._t)

    def get_tensorboard_path(self) -> Path:
        p = self._t.job.run_dir / "tensorboard"
        p.mkdir(parents=True, exist_ok=True)
        return p

    def upload_tensorboard_files(self, *args: Any, **kwargs: Any) -> None:
        """The run folder is already on the shared filesystem."""


class CheckpointContext:
    def __init__(self, t: _Trial) -> None:
        self._t = t

    @contextlib.contextmanager
    def store_path(self, metadata: dict[str, Any] | None = None,
                   shard: bool = False) -> Iterator[tuple[Path, str]]:
        """A folder to write the checkpoint into, and its storage_id; it counts once the block
        ends without an error (the previous checkpoint stays until then). ``shard=True`` is a
        collective, as in Determined: every rank calls it, gets the same folder and
        storage_id, writes its own files there, and the checkpoint counts once every rank's
        block has ended without an error (the ranks' metadata merged, the chief's winning)."""
        dist = self._t.dist
        if dist.rank != 0 and not shard:
            raise RuntimeError("checkpoint.store_path(): only the chief (rank 0) stores a "
                               "checkpoint (as in Determined); pass shard=True for a sharded one")
        sharded = shard and dist.size > 1
        sid = dist.broadcast(str(uuid.uuid4()) if dist.rank == 0 else None) if sharded \
            else str(uuid.uuid4())
        root = self._t.job.checkpoint_dir
        part = root / f"{sid}.partial"
        if dist.rank == 0:
            part.mkdir(parents=True)
        if sharded:
            dist.allgather(None)  # the folder exists before any rank writes into it
        ok = False
        try:
            yield part, sid
            ok = True
        finally:
            shards = dist.allgather((ok, metadata or {})) if sharded else [(ok, metadata or {})]
            failed = [r for r, (done, _) in enumerate(shards) if not done]
            if failed and dist.rank == 0:
                shutil.rmtree(part, ignore_errors=True)
        if failed:  # this rank's block ended well, another's did not: no rank goes on as if stored
            raise RuntimeError(f"checkpoint.store_path(shard=True): rank {failed[0]} raised while "
                               f"storing its shard of {sid}; the checkpoint was not stored")
        if dist.rank == 0:
            meta: dict[str, Any] = {}
            for _, m in reversed(shards):  # the chief's keys win
                meta.update(m)
            meta["asha_stored"] = time.time()
            if self._t.progress is not None:  # a resumed job whose rung this already passed
                meta["asha_progress"] = self._t.progress
                meta["asha_validation"] = self._t.last_validation
            (part / METADATA).write_text(json.dumps(meta, default=json_value))
            os.rename(part, root / sid)
            self._t.stored.add(sid)
            for _, old in _stored(root):
                if old != sid:
                    shutil.rmtree(root / old, ignore_errors=True)
            # the job keeps it even if the script fails later (the length, for time limits)
            _append(self._t.job.report_file, {"saved": sid, **(
                {"reached": self._t.progress} if self._t.progress is not None else {})})
        if sharded:
            dist.allgather(None)  # no rank leaves before the checkpoint is in place

    @contextlib.contextmanager
    def restore_path(self, storage_id: str, selector: Any = None) -> Iterator[Path]:
        path = self._t.job.find(storage_id)
        if path is None:
            raise FileNotFoundError(f"checkpoint.restore_path(): no checkpoint with storage_id "
                                    f"{storage_id} in this experiment")
        yield path

    def upload(self, ckpt_dir: Any, metadata: dict[str, Any] | None = None,
               shard: bool = False, selector: Any = None) -> str:
        with self.store_path(metadata, shard=shard) as (path, sid):
            shutil.copytree(str(ckpt_dir), str(path), dirs_exist_ok=True)
        return sid

    def download(self, storage_id: str, ckpt_dir: Any, selector: Any = None) -> None:
        with self.restore_path(storage_id) as path:
            shutil.copytree(str(path), str(ckpt_dir), dirs_exist_ok=True)

    def get_metadata(self, storage_id: str) -> dict[str, Any]:
        with self.restore_path(storage_id) as path:
            meta = json.loads((path / METADATA).read_text())
        return {k: v for k, v in meta.items() if not k.startswith("asha_")}

    def delete(self, storage_id: str) -> None:
        """Remove a checkpoint of this trial: one this job stored (already gone if a later
        one replaced it: a job keeps its newest only), or the trial's published one, whose
        folder goes with it (the trial's next job then starts from its checkpoint before, or
        from scratch). Another trial's checkpoint is refused: its job alone writes its folder."""
        job = self._t.job
        path = job.find(storage_id)
        if path is None:
            if storage_id in self._t.stored:
                return
            raise FileNotFoundError(f"checkpoint.delete(): no checkpoint with storage_id "
                                    f"{storage_id} in this experiment")
        owner = path.parent.parent.parent  # a published one: trials/<id>/checkpoints/<name>/<sid>
        if path.parent == job.checkpoint_dir:
            _remove_checkpoint(path)
        elif owner.resolve() == job.trial_dir.resolve():  # (trials/ may link to scratch)
            _remove_checkpoint(path)
            shutil.rmtree(path.parent, ignore_errors=True)  # the shim publishes one per folder
        else:
            raise ValueError(f"checkpoint.delete(): {storage_id} is a checkpoint of trial "
                             f"{owner.name}; a trial deletes only its own checkpoints")


class PreemptContext:
    def __init__(self, t: _Trial, mode: PreemptMode = PreemptMode.WorkersAskChief) -> None:
        self._t = t
        self._mode = PreemptMode(mode)

    def should_preempt(self, auto_ack: bool = True) -> bool:
        """True once the searcher pauses or stops the trial here (its segment's length was
        reached) or the job must end (time limit, preemption, cancel). With several ranks, as
        in Determined: every rank calls it and gets the chief's answer (``WorkersAskChief``),
        the chief alone calls it (``ChiefOnly``), or each rank asks on its own
        (``WorkersAskMaster``: the chief leaves a marker in the run folder once the segment's
        length is reached)."""
        t = self._t
        reached = t.job.run_dir / "reached"
        if t.reached and t.dist.rank == 0 and self._mode == PreemptMode.WorkersAskMaster:
            reached.touch()
        mine = t.reached or t.told_to_leave() or (
            self._mode == PreemptMode.WorkersAskMaster and reached.exists())
        if t.dist.size == 1 or self._mode == PreemptMode.WorkersAskMaster:
            return mine
        if self._mode == PreemptMode.ChiefOnly:
            if t.dist.rank != 0:
                raise RuntimeError(f"init(preempt_mode=ChiefOnly) but should_preempt() was called "
                                   f"on rank {t.dist.rank}: only the chief may call it")
            return mine
        return bool(t.dist.broadcast(mine))

    def acknowledge_preemption_signal(self) -> None:
        """Nothing to acknowledge: the job publishes what the script left when it exits."""

    def start(self) -> PreemptContext:
        """Determined starts a thread that asks its master; here ``should_preempt()`` reads
        files, so there is nothing to start (or to close), and the context stays usable."""
        return self

    def close(self) -> None:
        """Nothing to stop (``start``)."""

    def __enter__(self) -> PreemptContext:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.close()


class SearcherOperation:
    """Determined 0.37's operation: train until the total length is ``length``, then
    ``report_completed(metric)``."""

    def __init__(self, t: _Trial, length: int) -> None:
        self._t = t
        self.length = length
        self._completed = False

    def report_progress(self, length: float) -> None:
        """Determined's progress bar; nothing to do here."""

    def report_completed(self, searcher_metric: Any) -> None:
        t = self._t
        if t.dist.rank == 0:
            metrics = dict(t.last_validation or {})
            metrics[t.job.metric] = searcher_metric
            t.send_result(metrics)
        self._completed = True


class SearcherContext:
    def __init__(self, t: _Trial) -> None:
        self._t = t

    def operations(self, searcher_mode: Any = None, auto_ack: bool = True) -> Iterator[SearcherOperation]:
        """The segment's operation (one per job: a promoted trial comes back in a new job,
        from its checkpoint)."""
        op = SearcherOperation(self._t, self._t.job.target)
        yield op
        if not op._completed and self._t.dist.rank == 0:  # the chief reports (4_distributed.py)
            raise RuntimeError(f"searcher operation to length {op.length} ended without "
                               f"op.report_completed(...)")

    def get_configured_units(self) -> Any:
        return self._t.job.time_metric


class Context:
    """``core_context``."""

    def __init__(self, job: JobEnv, dist: DistributedContext,
                 preempt_mode: PreemptMode = PreemptMode.WorkersAskChief) -> None:
        self._t = _Trial(job, dist)
        self.distributed = dist
        self._already_there()
        self.train = TrainContext(self._t)
        self.checkpoint = CheckpointContext(self._t)
        self.preempt = PreemptContext(self._t, preempt_mode)
        self.searcher = SearcherContext(self._t)

    def _already_there(self) -> None:
        """A checkpoint taken past this segment's length (validations every 100 batches, rungs
        at 20 and 80): the segment's result is the validation stored with it, at once, and the
        script is told to stop at its first ``should_preempt()`` (Determined 0.38 counts one
        validation toward every rung it passes)."""
        t = self._t
        sid = t.job.latest_storage_id() if t.dist.rank == 0 else None
        if sid is None or t.job.latest_checkpoint is None:
            return
        try:
            meta = json.loads((t.job.latest_checkpoint / sid / METADATA).read_text())
        except (OSError, ValueError):
            return
        progress, validation = meta.get("asha_progress"), meta.get("asha_validation")
        if isinstance(progress, int) and progress >= t.job.target and isinstance(validation, dict) \
                and t.job.metric in validation:
            t.progress, t.last_validation = progress, validation
            t.seen_time_metric = True
            t.send_result(validation)
            t.reached = True

    def close(self, failed: bool) -> None:
        """The block ended: a trial without a length reports its last validation metrics; a
        length-counted one that never reported the time metric gets one line saying so."""
        t = self._t
        if failed or t.dist.rank != 0 or t.result_sent or t.told_to_leave():
            return
        if t.job.until_exit and t.last_validation is not None:
            t.send_result(t.last_validation)
        elif t.job.time_metric and t.last_validation is not None and not t.seen_time_metric:
            raise RuntimeError(
                f"report_validation_metrics(): the metrics lack '{t.job.time_metric}' "
                f"(searcher.time_metric): report the progress with them, e.g. "
                f"metrics={{..., '{t.job.time_metric}': steps_completed}}")
        elif t.job.time_metric and t.progress is not None:
            # the script ended before the rung (a shorter loop than searcher.max_time, or its own
            # early stopping): in Determined the trial ends there, completed, ranked by its
            # last validation (its result here, unless the rung's went out already)
            if t.last_validation is not None and t.job.metric in t.last_validation:
                t.send_result(t.last_validation)
            _append(t.job.report_file, {"ended_early": (
                f"the script ended at {t.job.time_metric}={t.progress}, before the segment's "
                f"length {t.job.target}: the trial "
                f"ends with the validations it reported, and is not retried")})


@contextlib.contextmanager
def init(*, distributed: DistributedContext | None = None,
         preempt_mode: PreemptMode = PreemptMode.WorkersAskChief, **_: Any) -> Iterator[Context]:
    """``det.core.init()``: the Core API context for this job's trial (``tensorboard_mode``,
    ``checkpoint_storage`` and Determined's other arguments are accepted and unused)."""
    from ...errors import InvalidHP

    ctx = Context(JobEnv.from_env(), distributed or DummyDistributed(), preempt_mode)
    stop_signals.install()  # Slurm's scancel signals the script too: should_preempt() says so
    try:
        yield ctx
    except InvalidHP as e:  # as a Trial class would: the trial is replaced
        if ctx.distributed.rank == 0:
            _append(ctx._t.job.report_file, {"invalid_hp": str(e) or "InvalidHP"})
        return
    except BaseException:
        ctx.close(failed=True)
        raise
    finally:
        stop_signals.uninstall()
        if ctx.distributed._torch:  # the block's DDP models, freed while the group lives
            gc.collect()  # (_collect_before_destroy says why)
    ctx.close(failed=False)

"""The ``Trial`` of a command entrypoint, read from the job's ``ASHA_*`` variables, so that the
framework callbacks work in a script the job runs as a command (``HfArgumentParser``,
``LightningCLI``, any ``python train.py --flags``) as they do in a function:

    from asha_hpc.integrations.transformers import AshaCallback
    cb = AshaCallback()                    # in a command: the trial of the job that runs it

It speaks the command protocol (jobmain.py ``_run_command``), so the job stays the only writer
of the trial's folder: a checkpoint goes into ``ASHA_CHECKPOINT_DIR`` (the job publishes it
when the command exits) with a ``reached`` line giving its length; results and curve points
are lines of ``ASHA_REPORT_FILE``; the stop request is ``ASHA_STOP_FILE`` appearing. One
segment per command (``ASHA_TARGET_LENGTH``); with several ranks (``torchrun``: ``RANK``,
``WORLD_SIZE``) rank 0 writes.

A ``TrainingEndedEarly`` that leaves the script (a framework's early stopping, through its
callback) is the ``ended_early`` line: the job takes the final model's result and checkpoint
whatever the exit status. A ``FatalTrialError`` (a callback used wrongly) is the ``fatal`` line:
the search stops at once, as for a function.

Outside any asha_hpc job (``python main.py fit`` by hand, ``--help``) the callbacks built
without a trial do nothing (``outside_any_job``): the script still runs as it did.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import FatalTrialError, TrainingEndedEarly, ended_early_by_optuna
from ..protocol.expdir import fsync_dir
from . import notes, stop_signals
from .job_report import WHOLE_FOLDER, append_report
from .trial import Segment, Trial, _torch_dist

STOP_LOOK_EVERY_S = 0.5  # should_stop() after every step: one stat of the stop file at most this often
PARTIAL = ".partial"  # in ASHA_CHECKPOINT_DIR: the checkpoint being written


class NotInACommandTrial(FatalTrialError):
    """A command trial's object asked for in a function entrypoint's job (which has its trial
    to pass), or where the job's variables are incomplete."""


_current: CommandTrial | None = None
in_function_trial = False  # set by the job (jobmain.py) before it calls a function entrypoint
_said_outside = False
# what the callbacks' messages name for a function's code, as a command passes it: by the
# names each framework's callback uses (a script that builds its Trainer itself keeps cb.*)
COMMAND_TERMS = (
    (("TrainingArguments(", "cb.resume_from"),  # Transformers
     "in a command script, cb.max_steps is --max_steps ${ASHA_MAX_LENGTH}; "
     "trainer.train(resume_from_checkpoint=cb.resume_from) stays in the script, where "
     "AshaCallback() reads the job's checkpoint (README: as a command)"),
    (("Trainer(", "cb.ckpt_path"),  # Lightning
     "in a command script (LightningCLI), cb.max_epochs (cb.max_steps) is --trainer.max_epochs "
     "(--trainer.max_steps) ${ASHA_MAX_LENGTH}, and cb.ckpt_path is "
     "${ASHA_LATEST_CHECKPOINT:+--ckpt_path \"$ASHA_LATEST_CHECKPOINT/lightning.ckpt\"} "
     "(README: as a command)"),
)


def command_terms(message: str) -> str:
    """" (what a command passes instead)" for a callback's message that names ``cb.*``."""
    said = [text for names, text in COMMAND_TERMS if any(n in message for n in names)]
    return f" ({said[0]})" if said else ""


def outside_any_job() -> bool:
    """No asha_hpc job runs this process: a callback built without a trial does nothing
    (said once), so that the script runs by hand (``--help``, a debugging run) as before."""
    global _said_outside
    if in_function_trial or os.environ.get("ASHA_TRIAL_ID"):
        return False
    if not _said_outside:
        _said_outside = True
        print("asha_hpc: AshaCallback(): not run by asha_hpc (ASHA_TRIAL_ID is not set): the "
              "callback does nothing, and the Trainer trains as configured", file=sys.stderr,
              flush=True)
    return True


def command_trial() -> CommandTrial:
    """The trial of the job that runs this command (one per process)."""
    global _current
    if in_function_trial:
        raise NotInACommandTrial(
            "AshaCallback() without a trial in a function entrypoint: pass the trial the "
            "function gets, AshaCallback(trial) (the form without one is for a script that "
            "asha_hpc runs as a command entrypoint)")
    if _current is None:
        _current = CommandTrial(os.environ)
    return _current


class CommandTrial(Trial):
    """A ``Trial`` for code that a job runs as a command: built from the environment."""

    def __init__(self, env: Any) -> None:
        need = ("ASHA_TRIAL_ID", "ASHA_TRIAL_DIR", "ASHA_RUN_DIR", "ASHA_TARGET_LENGTH",
                "ASHA_REPORT_FILE", "ASHA_CHECKPOINT_DIR", "ASHA_STOP_FILE", "ASHA_METRIC")
        missing = [k for k in need if not env.get(k)]
        if missing:
            raise NotInACommandTrial(
                f"AshaCallback() without a trial: {missing[0]} is not set, where the job that "
                f"runs a command entrypoint sets it (the command runs with an environment of "
                f"its own? keep the job's ASHA_* variables)")
        run_dir = Path(env["ASHA_RUN_DIR"])
        max_length = env.get("ASHA_MAX_LENGTH")
        super().__init__(
            trial_id=int(env["ASHA_TRIAL_ID"]), hparams=json.loads(env.get("ASHA_HPARAMS") or "{}"),
            trial_dir=Path(env["ASHA_TRIAL_DIR"]), run_dir=run_dir,
            segments=[int(env["ASHA_TARGET_LENGTH"])], first_segment=int(env.get("ASHA_SEGMENT", 0)),
            metric=env["ASHA_METRIC"], key=run_dir.name,
            length_unit=env.get("ASHA_LENGTH_UNIT", "units"),
            max_length=int(max_length) if max_length else None,
            rank=int(env.get("RANK", env.get("LOCAL_RANK", 0))),
            world_size=int(env.get("WORLD_SIZE", 1)), local_rank=int(env.get("LOCAL_RANK", 0)),
            seed=int(env.get("ASHA_TRIAL_SEED", 0)))
        latest = env.get("ASHA_LATEST_CHECKPOINT")
        self._latest = Path(latest) if latest else None
        self._report_file = Path(env["ASHA_REPORT_FILE"])
        self._out = Path(env["ASHA_CHECKPOINT_DIR"])
        self._stop_file = Path(env["ASHA_STOP_FILE"])
        self._stop_looked = 0.0
        stop_signals.install()  # Slurm's scancel signals this process too: should_stop() says so
        if self.rank == 0:
            _say_ended_early_on_exit(self)
            notes.forward = lambda text: self._line({"warning": text})

    @property
    def latest_checkpoint(self) -> Path | None:
        return self._latest

    def segments(self) -> Iterator[Segment]:
        seg = Segment(length=self._lengths[0], index=self._first, _trial=self)
        yield seg
        self._note_short(seg)

    def should_stop(self) -> bool:
        now = time.monotonic()
        signalled = stop_signals.received()
        if signalled is not None and not self._stop:
            self.request_stop(signalled)
        if not self._stop and now - self._stop_looked >= STOP_LOOK_EVERY_S:
            self._stop_looked = now
            if self._stop_file.exists():
                self.request_stop("stop file")
        return super().should_stop()

    @contextlib.contextmanager
    def save_checkpoint(self, length: int | None = None) -> Iterator[Path]:
        """A folder to write the checkpoint into; complete, it becomes the content of
        ``ASHA_CHECKPOINT_DIR`` (what was there goes), which the job publishes when the
        command exits, whatever its exit status (the ``saved`` line). If the block raises,
        what it wrote goes."""
        tmp = self._out / PARTIAL
        if self.rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True, exist_ok=True)
        try:
            yield tmp
        except BaseException:
            if self.rank == 0:
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        dist = _torch_dist() if self.world_size > 1 else None
        if dist is not None:  # every rank has written its part
            dist.barrier()
        if self.rank == 0:
            for old in os.listdir(self._out):
                if old != PARTIAL:
                    path = self._out / old
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
            for item in os.listdir(tmp):
                os.rename(tmp / item, self._out / item)
            tmp.rmdir()
            fsync_dir(self._out)
            # complete now: the job keeps it even if the command then dies of a stop signal
            # (a shell above the script, which Slurm's SIGTERM ends before the script saves)
            line: dict[str, Any] = {"saved": WHOLE_FOLDER}
            if isinstance(length, int) and not isinstance(length, bool):
                self._saved_length = line["reached"] = length
            self._line(line)
        if dist is not None:
            dist.barrier()

    def _write_point(self, step: Any, metrics: dict[str, Any]) -> None:
        if self.rank != 0:
            return
        self._last_point, self._last_step = metrics, step
        self._names.update(dict.fromkeys(metrics))
        self._line({"step": metrics.get("step") if step is None else step, "metrics": metrics})

    def _report_segment(self, seg: Segment, metrics: dict[str, Any]) -> None:
        super()._report_segment(seg, metrics)  # checked; the job writes the result's point
        if self.rank == 0:
            self._line({"metrics": seg.reported})

    def result_point(self, length: int, metrics: dict[str, Any]) -> None:
        """The job writes the result's curve point once the command has exited."""

    def _line(self, obj: dict[str, Any]) -> None:
        append_report(self._report_file, obj)


def _say_ended_early_on_exit(trial: CommandTrial) -> None:
    """A ``TrainingEndedEarly`` that leaves the script: the ``ended_early`` line (after the
    final model's result and checkpoint, which the callback wrote first), and one line on
    stderr instead of a traceback. A ``FatalTrialError``: the ``fatal`` line, in a command's
    terms where it names a function's (``cb.max_steps``)."""
    before = sys.excepthook

    def hook(kind: type[BaseException], err: BaseException, tb: Any) -> None:
        err = ended_early_by_optuna(err) or err
        if isinstance(err, TrainingEndedEarly):
            trial._line({"ended_early": str(err)})
            print(f"asha_hpc: {err}", file=sys.stderr, flush=True)
            return
        if isinstance(err, FatalTrialError):
            text = str(err) + command_terms(str(err))
            trial._line({"fatal": text})
        before(kind, err, tb)

    sys.excepthook = hook

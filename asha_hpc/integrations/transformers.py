"""Hugging Face Transformers: a ``Trainer`` runs as an asha_hpc trial (lengths in steps).

    from asha_hpc.integrations.transformers import AshaCallback

    def train(trial):
        cb = AshaCallback(trial, metric="eval_loss")
        args = TrainingArguments(output_dir="out", max_steps=cb.max_steps, ...)
        trainer = Trainer(model=model, args=args, train_dataset=..., eval_dataset=...,
                          callbacks=[cb])
        trainer.train(resume_from_checkpoint=cb.resume_from)

At each segment's length (a number of optimizer steps, ``state.global_step``) the callback makes
the Trainer evaluate and save whatever ``eval_steps``/``save_steps`` say, publishes the saved
``checkpoint-N`` folder as the trial's checkpoint (its files are moved, not copied), reports the
evaluation's metrics, and either goes on (the next segment handed over in place) or ends
training. ``trial.should_stop()`` is looked at after every step: the Trainer saves there and
stops, and the next job resumes from that checkpoint. Training that ``EarlyStoppingCallback``
ends on an evaluation is final: that evaluation is the segment's result, with the model saved
where it stopped.

The Trainer writes the segment-end checkpoints in the attempt's run folder (so that trials that
reach the same step at once never share a ``checkpoint-N`` folder); ``output_dir`` keeps
everything else (the user's own ``save_steps`` checkpoints, the final ``save_model``).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from ..job import notes
from ..job.command_trial import command_trial, outside_any_job
from ..job.trial import Trial, _torch_dist
from .segments import IntegrationError, SegmentWalk, ended_early

STAGING = "trainer-checkpoints"  # in the run folder: where the Trainer saves a segment's end


class AshaCallback(TrainerCallback):
    """``AshaCallback(trial, metric="eval_loss")`` (in a script run as a command entrypoint:
    ``AshaCallback(metric="eval_loss")``, the trial read from the job's variables; pass
    ``--max_steps ${ASHA_MAX_LENGTH}``): ``metric`` is the evaluation metric the
    searcher ranks by, as the Trainer names it (``eval_`` + the name ``compute_metrics``
    returns); it is reported under the searcher's metric name too (default: the searcher's
    metric). Pass ``max_steps=cb.max_steps`` to ``TrainingArguments``, ``callbacks=[cb]`` to
    the ``Trainer`` and ``resume_from_checkpoint=cb.resume_from`` to ``train``."""

    def __new__(cls, trial: Trial | None = None, *args: Any, **kwargs: Any) -> Any:
        if trial is None and outside_any_job():  # a script run by hand: it trains as before
            return _Inert()
        return super().__new__(cls)

    def __init__(self, trial: Trial | None = None, metric: str | None = None) -> None:
        if trial is None:  # a script the job runs as a command: its trial, from the environment
            trial = command_trial()
        if trial.length_unit == "epochs":
            raise IntegrationError(
                "AshaCallback (transformers) counts optimizer steps but the searcher's max_length "
                "is in epochs: give searcher.max_length in batches")
        self.trial = trial
        self.metric = metric or trial.metric
        self._walk = SegmentWalk(trial, self.metric, f"AshaCallback(metric={self.metric!r})")
        self._saving: str | None = None  # "segment" | "stop": the next save is ours
        self._user_output_dir: str | None = None
        self._eval: dict[str, Any] = {}  # the evaluation at the segment's end
        self._ended_at: int | None = None  # the step at which this callback ended training
        self._segment_end_at: int | None = None  # ... or ended a segment that goes on in place
        self._evaluated: tuple[int, dict[str, Any]] | None = None  # the last evaluation: step, metrics

    @property
    def max_steps(self) -> int:
        """``TrainingArguments(max_steps=...)``: the searcher's max_length."""
        return self.trial.max_length if self.trial.max_length is not None else -1

    @property
    def resume_from(self) -> str | None:
        """The trial's latest checkpoint folder for ``trainer.train(resume_from_checkpoint=...)``,
        or None for a new trial."""
        latest = self.trial.latest_checkpoint
        if latest is None or not (latest / "trainer_state.json").is_file():
            return None
        return str(latest)

    # ------------------------------------------------------------------ Trainer events
    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        want = self.trial.max_length
        if want is not None and args.max_steps != want:
            epochs = (f" (training for num_train_epochs={args.num_train_epochs})"
                      if args.max_steps <= 0 else "")
            raise IntegrationError(
                f"AshaCallback: TrainingArguments(max_steps={args.max_steps}){epochs} but the "
                f"searcher's max_length is {want} steps: pass TrainingArguments(max_steps=cb.max_steps)")
        strategy = str(getattr(args.save_strategy, "value", args.save_strategy))
        if args.load_best_model_at_end or strategy == "best":
            raise IntegrationError(
                "AshaCallback: load_best_model_at_end / save_strategy='best' would skip or undo "
                "the checkpoint at a segment's end (ASHA continues each trial from where it "
                "stopped): leave them off")
        if getattr(args, "save_only_model", False):
            raise IntegrationError(
                "AshaCallback: TrainingArguments(save_only_model=True) saves no optimizer, "
                "scheduler or random state: a promoted trial would go on with a fresh optimizer "
                "and the schedule's start: leave it off")
        out, own = Path(args.output_dir).resolve(), self.trial.dir.resolve()
        if self.trial.rank == 0 and state.global_step == 0 and own not in (out, *out.parents):
            # the tutorials' output_dir="test_trainer": the trial's own checkpoints are safe
            # (they go through the run folder), not its save_steps ones
            notes.warn(f"TrainingArguments(output_dir={args.output_dir!r}) lies outside trial "
                       f"{self.trial.id}'s folder: every trial writes its save_steps checkpoints "
                       f"there, and save_total_limit removes the others'. Pass "
                       f"output_dir=str(trial.dir / 'out') (a command: --output_dir "
                       f"${{ASHA_TRIAL_DIR}}/out)")
        if not self._walk.start(state.global_step,
                                "pass trainer.train(resume_from_checkpoint=cb.resume_from)"):
            control.should_training_stop = True

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self._walk.target is None:
            return
        if self._walk.due(state.global_step):
            self._saving = "segment"
            control.should_evaluate = True
        elif self.trial.should_stop():  # a collective under DDP: every rank calls it here
            self._saving = "stop"
        else:
            return
        control.should_save = True
        # the Trainer saves into args.output_dir/checkpoint-N: this one goes to the run folder
        self._user_output_dir = args.output_dir
        args.output_dir = str(self.trial.run_dir / STAGING)

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None,
                    **kw: Any) -> None:
        self._evaluated = (state.global_step, dict(metrics or {}))
        if self._saving == "segment":
            self._eval = dict(metrics or {})

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kw: Any) -> None:
        # learning-curve points (the segment-end evaluation is reported with the segment)
        if not logs or self._walk.target is None:
            return
        if self._saving == "segment" and self.metric in logs:
            return
        self._walk.curve(state.global_step, logs)

    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self._saving is None:
            return  # one of the user's own save_steps checkpoints
        saving, self._saving = self._saving, None
        staged = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        args.output_dir = self._user_output_dir
        publish = lambda folder: self._move(staged, folder)  # noqa: E731
        if saving == "stop":
            self._walk.interrupt(state.global_step, publish)
            self._end(state, control)
            return
        metrics, self._eval = self._eval, {}
        if not self._walk.finish(state.global_step, metrics, publish):
            self._end(state, control)
        else:  # the next segment goes on in place from this step
            self._segment_end_at = state.global_step

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        # a segment ended at this step (training stopped, or goes on in place): the Trainer
        # still closes the epoch, and with eval_strategy / save_strategy "epoch" it would
        # evaluate and save a second time, which a job that resumes here does not (its random
        # stream, and so its results, would depend on how the trial continued)
        if state.global_step in (self._ended_at, self._segment_end_at):
            control.should_evaluate = control.should_save = False

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        walk = self._walk
        if walk.target is None:
            return
        # evaluated where it stopped (EarlyStoppingCallback decides on an evaluation): the
        # model is final, and that evaluation is its result
        seen = self._evaluated
        final = seen is not None and seen[0] == state.global_step > 0 and self.metric in seen[1]
        if final:
            assert seen is not None
            walk.final(state.global_step, seen[1],
                       lambda folder: self._save_final(folder, state, kw))
        raise ended_early("AshaCallback", state.global_step, "steps", walk.target,
                          "EarlyStoppingCallback, or another callback that set "
                          "should_training_stop", reported=final)

    # ------------------------------------------------------------------ helpers
    def _end(self, state: Any, control: Any) -> None:
        control.should_training_stop = True
        self._ended_at = state.global_step

    def _save_final(self, folder: Path, state: Any, kw: dict[str, Any]) -> None:
        """The final model where training ended (the Trainer saves no checkpoint there): its
        weights as ``save_pretrained`` writes them (``from_pretrained`` loads the folder), the
        processing class's files, and ``trainer_state.json``; no optimizer: nothing resumes it."""
        if self.trial.rank != 0:
            return
        model: Any = kw.get("model")
        if hasattr(model, "save_pretrained"):
            model.save_pretrained(str(folder))
        elif model is not None:
            import torch

            torch.save(model.state_dict(), folder / "pytorch_model.bin")
        processor: Any = kw.get("processing_class")
        if hasattr(processor, "save_pretrained"):
            processor.save_pretrained(str(folder))
        state.save_to_json(str(folder / "trainer_state.json"))
        self._forget_staged_best(folder)

    def _move(self, staged: Path, folder: Path) -> None:
        """The Trainer's checkpoint folder becomes the trial's (same filesystem: renames)."""
        dist = _torch_dist()
        if dist is not None:  # every rank has written its part (RNG states) before the move
            dist.barrier()
        if self.trial.rank == 0:
            for item in os.listdir(staged):
                shutil.move(str(staged / item), str(folder / item))
            staged.rmdir()
            self._forget_staged_best(folder)
            try:
                staged.parent.rmdir()  # empty: nothing of the Trainer's is left in the run folder
            except OSError:
                pass


    def _forget_staged_best(self, folder: Path) -> None:
        """The Trainer records ``best_model_checkpoint`` as the folder it saved into: the staging
        folder, gone once the checkpoint is published, whose name would make every resumed job
        warn that it "does not exist anymore". Only the trial's latest checkpoint is kept, so
        there is no folder to name instead: the best checkpoint of a search is ``asha-hpc
        best``'s. A folder of the user's own ``save_steps`` checkpoints stays named."""
        path = folder / "trainer_state.json"
        if self.trial.rank != 0 or not path.is_file():
            return
        state = json.loads(path.read_text())
        best = state.get("best_model_checkpoint")
        staging = self.trial.run_dir / STAGING
        if isinstance(best, str) and (Path(best) == staging or staging in Path(best).parents):
            state["best_model_checkpoint"] = None
            path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")


class _Inert(TrainerCallback):
    """``AshaCallback()`` outside any asha_hpc job: nothing to resume, no length to impose."""

    resume_from = None
    max_steps = -1

"""``det.pytorch.Trainer``: trains a ``PyTorchTrial`` to ``max_length``, validating, reporting
and checkpointing on the periods given, on top of the Core API shim.

In a search the trial's segment decides where it stops, as in Determined 0.38: the validation
at or past the rung's length (``searcher.time_metric``: batches, epochs or records) is the
rung's result. The Trainer also validates exactly at that length, so a rung shorter than the
user's ``validation_period`` is judged at its own length rather than at the next period (under
Determined, the next period's validation stands for it). Then ``should_preempt()`` is True: the
Trainer checkpoints and returns; a promoted trial's next job restores the checkpoint and goes
on from the batch it reached, with the same data order (``_Epochs``).

Checkpoints hold what Determined's hold (``state_dict.pth``: models, optimizers, LR schedulers,
callbacks, random states, a grad scaler; ``trial_state.pkl``: the batch and epoch counts), in
the same layout, so Determined's own loaders read them."""
from __future__ import annotations

import inspect
import json
import logging
import math
import pickle
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .context import PyTorchTrialContext
from .data import DataLoader, _Epochs
from .trial import LRScheduler, PyTorchTrial, Reducer, TrialDefinitionError, reduce_values
from .units import Batch, Epoch, TrainUnit, _ShouldExit

log = logging.getLogger("determined.pytorch")
STATE_DICT = "state_dict.pth"
TRIAL_STATE = "trial_state.pkl"
LOAD_DATA = "load_data.json"  # what load_trial_from_checkpoint_path makes the trial again from
# where Determined's releases put the state dict, newest first (read in this order)
STATE_DICT_PATHS = (STATE_DICT, "determined/state_dict.pth", "pedl/state_dict.pth",
                    "checkpoint.pt")


class _TrialState:
    def __init__(self, trial_id: int = 0, last_ckpt: int = 0, step_id: int = 0,
                 last_val: int = 0, batches_trained: int = 0, epochs_trained: int = 0) -> None:
        self.trial_id = trial_id
        self.last_ckpt = last_ckpt
        self.step_id = step_id
        self.last_val = last_val
        self.batches_trained = batches_trained
        self.epochs_trained = epochs_trained


def _overrides(trial: Any, name: str) -> bool:
    return getattr(type(trial), name, None) is not getattr(PyTorchTrial, name)


def _plain(value: Any) -> Any:
    """A metric value as JSON takes it: tensors and numpy values to floats (or lists)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.item() if value.size == 1 else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class _Segment:
    """Where the search wants this job to stop: the rung's length in the time metric."""

    def __init__(self, core_context: Any, global_batch_size: int | None) -> None:
        job = getattr(getattr(core_context, "_t", None), "job", None)
        self.unit: str | None = job.time_metric if job is not None else None
        self.target: int | None = int(job.target) if job is not None else None
        self.gbs = global_batch_size

    def reached(self, batches: int, epochs: int, epoch_end: bool) -> bool:
        if self.target is None:
            return False
        if self.unit == "batches":
            return batches >= self.target
        if self.unit == "epochs":
            return epoch_end and epochs >= self.target
        if self.unit == "records" and self.gbs:
            return batches * self.gbs >= self.target
        return False


class Trainer:
    """Trains ``trial`` within the ``det.pytorch.init()`` block that made ``context``."""

    def __init__(self, trial: PyTorchTrial, context: PyTorchTrialContext) -> None:
        if not isinstance(trial, PyTorchTrial):
            raise TrialDefinitionError(f"Trainer(): {type(trial).__name__} is not a subclass of "
                                       f"det.pytorch.PyTorchTrial (from asha_hpc.compat.determined import "
                                       f"pytorch)")
        self._trial = trial
        self._context = context
        self._core = context._core
        self._local = not hasattr(self._core, "_t")

    def configure_profiler(self, *args: Any, **kwargs: Any) -> None:
        """Determined's profiler; nothing is profiled here."""

    def fit(self, checkpoint_period: TrainUnit | None = None,
            validation_period: TrainUnit | None = None, max_length: TrainUnit | None = None,
            reporting_period: TrainUnit = Batch(100),  # noqa: B008 (as Determined's signature)
            checkpoint_policy: str = "best", latest_checkpoint: str | None = None,
            step_zero_validation: bool = False, test_mode: bool = False,
            profiling_enabled: bool = False) -> None:
        """Train to ``max_length`` (``Batch(n)`` or ``Epoch(n)``; in a search, left out, the
        searcher's length), validating every ``validation_period``, checkpointing every
        ``checkpoint_period`` and after validations as ``checkpoint_policy`` says (``best``,
        ``all``, ``none``), reporting training metrics every ``reporting_period``; start from
        ``latest_checkpoint`` (``det.get_cluster_info().latest_checkpoint``) when given."""
        if checkpoint_policy not in ("best", "all", "none"):
            raise TrialDefinitionError(f"fit(checkpoint_policy={checkpoint_policy!r}): use 'best', 'all' "
                                       f"or 'none'")
        if self._local:
            if max_length is None:
                raise TrialDefinitionError("fit(): max_length must be given when training outside a "
                                           "search, e.g. max_length=det.pytorch.Batch(100)")
            if checkpoint_policy == "best":
                checkpoint_policy = "all"
        else:
            if test_mode:
                raise TrialDefinitionError("fit(test_mode=True) is for training outside a "
                                           "search")
            if max_length is None:
                max_length = self._searcher_length()
                log.warning("fit(): no max_length: training to the searcher's length, %r "
                            "(Determined 0.38 asks for fit(max_length=...))", max_length)
            self._check_searcher_length(max_length)
            if latest_checkpoint is None and self._core._t.job.latest_storage_id() is not None:
                log.warning("fit(): latest_checkpoint is not set, so this trial starts from "
                            "scratch although it has a checkpoint: pass "
                            "fit(latest_checkpoint=det.get_cluster_info().latest_checkpoint)")
        if not isinstance(max_length, (Batch, Epoch)) or not isinstance(max_length.value, int):
            raise TrialDefinitionError(f"fit(max_length={max_length!r}): use det.pytorch.Batch(int) or "
                                       f"det.pytorch.Epoch(int)")
        _Loop(self, max_length=Batch(1) if test_mode else max_length,
              validation_period=validation_period or Batch(sys.maxsize),
              checkpoint_period=checkpoint_period or Batch(sys.maxsize),
              reporting_period=reporting_period, checkpoint_policy=checkpoint_policy,
              latest_checkpoint=latest_checkpoint, step_zero_validation=step_zero_validation,
              test_mode=test_mode).run()

    def _searcher_length(self) -> TrainUnit:
        """``fit()`` without ``max_length`` in a search: the searcher's ``max_length``."""
        job = self._core._t.job
        length = self._searcher_max()
        if not isinstance(length, int) or job.time_metric not in ("batches", "epochs", "records"):
            raise TrialDefinitionError("fit(): pass max_length (det.pytorch.Batch(n) or Epoch(n)); the "
                                       "searcher gives no length in batches, epochs or records")
        if job.time_metric == "epochs":
            return Epoch(length)
        if job.time_metric == "records":
            return Batch._from_records(length, self._context.get_global_batch_size())
        return Batch(length)

    def _searcher_max(self) -> Any:
        """The searcher's full length (0.38's ``max_time``, or ``max_length`` as a number or
        ``{unit: n}``), as the trial's config gives it."""
        searcher = (self._context._exp_conf or {}).get("searcher") or {}
        length = searcher.get("max_time") or searcher.get("max_length")
        return next(iter(length.values())) if isinstance(length, dict) and length else length

    def _check_searcher_length(self, max_length: Any) -> None:
        unit = self._core._t.job.time_metric
        length = self._searcher_max()
        want = {"batches": Batch, "epochs": Epoch}.get(unit or "")
        if want is not None and isinstance(length, int) and max_length != want(length):
            log.warning("fit(max_length=%r) differs from the searcher's length %s %s: the "
                        "trial's last rung is judged where training ends", max_length,
                        length, unit)


class _Loop:
    def __init__(self, trainer: Trainer, *, max_length: TrainUnit, validation_period: TrainUnit,
                 checkpoint_period: TrainUnit, reporting_period: TrainUnit,
                 checkpoint_policy: str, latest_checkpoint: str | None,
                 step_zero_validation: bool, test_mode: bool) -> None:
        self.trial = trainer._trial
        self.ctx = trainer._context
        self.core = trainer._core
        self.local = trainer._local
        self.dist = self.ctx.distributed
        self.chief = self.dist.rank == 0
        self.max_length = max_length
        self.validation_period = validation_period
        self.checkpoint_period = checkpoint_period
        self.reporting_period = reporting_period
        self.policy = checkpoint_policy
        self.latest = latest_checkpoint
        self.step_zero_validation = step_zero_validation
        self.test_mode = test_mode
        self.segment = _Segment(self.core, self.ctx._global_batch_size)
        self.callbacks = self.trial.build_callbacks()
        self.state = _TrialState(trial_id=self.ctx._trial_id)
        self.metric = None if self.local else self.core._t.job.metric
        self.smaller_is_better = True if self.local else self.core._t.job.smaller_is_better
        if not self.ctx.models:
            raise TrialDefinitionError("PyTorchTrial: no model: wrap it with context.wrap_model(model) in "
                                       "the trial's __init__")
        if not self.ctx.optimizers:
            raise TrialDefinitionError("PyTorchTrial: no optimizer: wrap it with "
                                       "context.wrap_optimizer(optimizer) in the trial's __init__")
        if _overrides(self.trial, "evaluate_batch") == _overrides(self.trial,
                                                                  "evaluate_full_dataset"):
            raise TrialDefinitionError(f"{type(self.trial).__name__}: define exactly one of "
                                       f"evaluate_batch() and evaluate_full_dataset()")

    # ------------------------------------------------------------------ the run
    def run(self) -> None:
        for cb in self.callbacks.values():
            cb.on_trial_startup(self.ctx._steps_completed, self.latest)
        try:
            self._data()
            if self.latest is not None:
                self._load(self.latest)
            for cb in self.callbacks.values():
                cb.on_training_start()
            try:
                self._train()
            except _ShouldExit as e:
                if not e.skip_exit_checkpoint and self.state.last_ckpt != \
                        self.state.batches_trained:
                    self._checkpoint()
        finally:
            for cb in self.callbacks.values():
                cb.on_trial_shutdown()

    def _data(self) -> None:
        seed = self.ctx._trial_seed or 0
        train = self.trial.build_training_data_loader()
        self._check_loader("build_training_data_loader", train)
        self.epochs = _Epochs(train, seed, self.dist.rank, self.dist.size)
        self.ctx._epoch_len = self.epochs.epoch_len
        val = self.trial.build_validation_data_loader()
        self._check_loader("build_validation_data_loader", val)
        if isinstance(val, DataLoader):
            by_batch = _overrides(self.trial, "evaluate_batch")
            mine = val._epoch_batches(0, seed)
            if by_batch and self.dist.size > 1:
                mine = mine[self.dist.rank::self.dist.size]
            self.val_loader: Any = val._loader(mine)
        else:
            self.val_loader = val

    def _check_loader(self, fn: str, loader: Any) -> None:
        if isinstance(loader, DataLoader) or self.ctx.experimental._data_repro_checks_disabled:
            return
        raise TrialDefinitionError(f"{fn}() returned a {type(loader).__name__}, not a "
                                   f"det.pytorch.DataLoader: a trial continued from its checkpoint could "
                                   f"not resume its data where it stopped. Return "
                                   f"det.pytorch.DataLoader(dataset, batch_size=...) (torch's DataLoader "
                                   f"arguments), or call "
                                   f"context.experimental.disable_dataset_reproducibility_checks() in "
                                   f"__init__ to accept that")

    def _done(self) -> bool:
        s = self.state
        if isinstance(self.max_length, Batch):
            return s.batches_trained >= int(self.max_length.value)  # type: ignore[arg-type]
        return s.epochs_trained >= int(self.max_length.value)  # type: ignore[arg-type]

    def _hits(self, unit: TrainUnit, epoch_end: bool) -> bool:
        if isinstance(unit, Epoch):
            return epoch_end and unit.should_stop(self.state.epochs_trained)
        return unit.should_stop(self.state.batches_trained)

    def _train(self) -> None:
        s = self.state
        if self.step_zero_validation and s.batches_trained == 0:
            self._validate()
        self._check_stop(boundary=True)
        if not self._done():
            self._train_batches()
        if s.last_val != s.batches_trained:
            self._validate()
        if s.last_ckpt != s.batches_trained:
            self._checkpoint()
        if self.ctx.get_stop_requested():
            self._user_stop()

    def _train_batches(self) -> None:
        s, ctx = self.state, self.ctx
        epoch_len = self.epochs.epoch_len
        metrics: list[dict[str, Any]] = []
        for m in ctx.models:
            m.train()
        ctx.reset_reducers(for_training=True)
        for idx, batch in self.epochs.batches(s.batches_trained):
            epoch_idx, in_epoch = divmod(idx, epoch_len)
            ctx._current_batch_idx = idx
            if in_epoch == 0:
                for cb in self.callbacks.values():
                    cb.on_training_epoch_start(epoch_idx)
            if ctx.experimental._auto_to_device:
                batch = ctx.to_device(batch)
            out = self.trial.train_batch(batch=batch, epoch_idx=epoch_idx, batch_idx=idx)
            if isinstance(out, torch.Tensor):
                out = {"loss": out}
            if not isinstance(out, dict):
                raise TrialDefinitionError(f"train_batch() must return a dict of metrics or the loss "
                                           f"tensor, got {type(out).__name__}")
            metrics.append({k: _plain(v) for k, v in out.items()})
            self._step_schedulers(idx)
            s.batches_trained += 1
            epoch_end = in_epoch == epoch_len - 1
            if epoch_end:
                for cb in self.callbacks.values():
                    cb.on_training_epoch_end(epoch_idx)
                s.epochs_trained += 1
            done = self._done() or self.test_mode
            validate = self._hits(self.validation_period, epoch_end) or \
                self.segment.reached(s.batches_trained, s.epochs_trained, epoch_end) and \
                s.last_val < s.batches_trained and not self._rung_sent()
            checkpoint = self._hits(self.checkpoint_period, epoch_end)
            stop = ctx.get_stop_requested()
            if done or validate or checkpoint or stop or \
                    self._hits(self.reporting_period, epoch_end):
                self._report_training(metrics)
                metrics = []
                if validate and s.last_val != s.batches_trained:
                    self._validate()
                if checkpoint and s.last_ckpt != s.batches_trained:
                    self._checkpoint()
                if done:
                    return
                self._check_stop(boundary=True)
                for m in ctx.models:
                    m.train()
                ctx.reset_reducers(for_training=True)
            else:
                self._check_stop(boundary=False)

    def _rung_sent(self) -> bool:
        t = getattr(self.core, "_t", None)
        return bool(t is not None and t.result_sent)

    def _check_stop(self, boundary: bool) -> None:
        """Leave (with a checkpoint) once the search pauses or stops the trial, the job must
        end, or the trial asked to stop. One process asks every batch (a file's existence);
        several ranks agree at boundaries (should_preempt's collective) and, under
        torch.distributed, every batch (``_any_rank_told_to_stop``)."""
        if self.ctx.get_stop_requested():
            if boundary:
                self._user_stop()
            return
        if not boundary and self.dist.size > 1:
            if self._any_rank_told_to_stop():
                raise _ShouldExit()
            return
        if self.core.preempt.should_preempt():
            raise _ShouldExit()

    def _any_rank_told_to_stop(self) -> bool:
        """Between boundaries with several ranks: whether the job must end (its stop file, or
        a stop signal to any rank), agreed by one all-reduce of one number, as cheap as a
        batch's gradient exchange; without torch.distributed the ranks wait for a boundary."""
        t = getattr(self.core, "_t", None)
        if t is None or not getattr(self.dist, "_torch", False):
            return False
        import torch.distributed as tdist

        mine = t.told_to_leave()
        on = self.ctx.device if tdist.get_backend() == "nccl" else torch.device("cpu")
        flag = torch.tensor([1 if mine else 0], device=on)
        tdist.all_reduce(flag, op=tdist.ReduceOp.MAX)
        return bool(flag.item())

    def _user_stop(self) -> None:
        """``context.set_stop_requested(True)``: validate if not yet, checkpoint, and end the
        trial with that validation as its result (Determined: the trial ends, completed)."""
        s = self.state
        if s.last_val != s.batches_trained:
            self._validate()
        if s.last_ckpt != s.batches_trained:
            self._checkpoint()
        if self.chief and not self.local:
            from .. import core

            self.core.train.report_early_exit(core.EarlyExitReason.USER_REQUESTED_STOP)
        raise _ShouldExit(skip_exit_checkpoint=True)

    def _step_schedulers(self, idx: int) -> None:
        ctx = self.ctx
        if not ctx._should_communicate_and_update():
            return
        epoch_len = self.epochs.epoch_len
        agg = ctx._aggregation_frequency
        for sch in ctx.lr_schedulers:
            mode = sch._step_mode
            if mode == LRScheduler.StepMode.STEP_EVERY_BATCH:
                for i in range(idx - agg + 1, idx + 1):
                    if (i + 1) % sch._frequency == 0:
                        sch.step()
            elif mode == LRScheduler.StepMode.STEP_EVERY_OPTIMIZER_STEP:
                if (idx + 1) % sch._frequency == 0:
                    sch.step()
            elif mode == LRScheduler.StepMode.STEP_EVERY_EPOCH:
                for e in range(idx // epoch_len, (idx + agg) // epoch_len):
                    if (e + 1) % sch._frequency == 0:
                        sch.step()

    # ------------------------------------------------------------------ metrics
    def _report_training(self, batch_metrics: list[dict[str, Any]]) -> None:
        avg: dict[str, Any] = {}
        if self.dist.size > 1:
            gathered = self.dist.allgather(batch_metrics)
            batch_metrics = [m for part in gathered for m in part]
        for key in {k for m in batch_metrics for k in m}:
            vals = [m[key] for m in batch_metrics if m.get(key) is not None]
            try:
                avg[key] = _plain(np.mean(np.asarray(vals, dtype=np.float64), axis=0)) \
                    if vals else None
            except (TypeError, ValueError):
                avg[key] = vals[-1] if vals else None
        avg.update({k: _plain(v) for k, v in self.ctx.reduce_metrics(for_training=True).items()})
        for cb in self.callbacks.values():
            cb.on_training_workload_end(avg_metrics=avg, batch_metrics=batch_metrics)
        if not self.chief or not batch_metrics:
            return
        s = self.state
        avg.setdefault("batches", s.batches_trained)
        avg.setdefault("epochs", s.epochs_trained)
        self.core.train.report_training_metrics(steps_completed=s.batches_trained, metrics=avg)

    @torch.no_grad()
    def _validate(self) -> dict[str, Any]:
        s, ctx = self.state, self.ctx
        if self.chief:
            self.core.train.set_status("validating")
        ctx.reset_reducers(for_training=False)
        for m in ctx.models:
            m.eval()
        for cb in self.callbacks.values():
            cb.on_validation_start()
        metrics: dict[str, Any] = {}
        if _overrides(self.trial, "evaluate_batch"):
            metrics = self._evaluate_batches()
        elif self.chief:
            got = self.trial.evaluate_full_dataset(data_loader=self.val_loader)
            if not isinstance(got, dict):
                raise TrialDefinitionError(f"evaluate_full_dataset() must return a dict of metrics, got "
                                           f"{type(got).__name__}")
            metrics = {k: _plain(v) for k, v in got.items()}
        metrics.update({k: _plain(v) for k, v in
                        ctx.reduce_metrics(for_training=False).items()})
        for cb in self.callbacks.values():
            cb.on_validation_end(metrics)
        s.last_val = s.batches_trained
        for m in ctx.models:
            m.train()
        checkpoint = False
        if self.chief:
            best_before = self.core.train.get_experiment_best_validation()
            metrics.setdefault("batches", s.batches_trained)
            metrics.setdefault("epochs", s.epochs_trained)
            if self.segment.unit == "records" and self.segment.gbs:
                metrics.setdefault("records", s.batches_trained * self.segment.gbs)
            self.core.train.report_validation_metrics(steps_completed=s.batches_trained,
                                                      metrics=metrics)
            if self.policy == "all":
                checkpoint = True
            elif self.policy == "best" and self.metric is not None:
                checkpoint = self._better(metrics.get(self.metric), best_before)
        if self.dist.size > 1:
            checkpoint = bool(self.dist.broadcast(checkpoint))
        if checkpoint and s.last_ckpt != s.batches_trained:
            self._checkpoint()
        return metrics

    def _better(self, now: Any, before: float | None) -> bool:
        try:
            value = float(now)
        except (TypeError, ValueError):
            return False
        if math.isnan(value):
            return False
        if before is None:
            return True
        return value < before if self.smaller_is_better else value > before

    def _evaluate_batches(self) -> dict[str, Any]:
        per_batch: list[dict[str, Any]] = []
        sizes: list[int] = []
        keys: set[str] | None = None
        with_idx = "batch_idx" in inspect.signature(self.trial.evaluate_batch).parameters
        for cb in self.callbacks.values():
            cb.on_validation_epoch_start()
        for idx, batch in enumerate(self.val_loader):
            if self.ctx.experimental._auto_to_device:
                batch = self.ctx.to_device(batch)
            sizes.append(self.trial.get_batch_length(batch))
            evaluate: Any = self.trial.evaluate_batch  # Determined's older form: (batch) alone
            got = evaluate(batch=batch, batch_idx=idx) if with_idx else evaluate(batch=batch)
            if not isinstance(got, dict):
                raise TrialDefinitionError(f"evaluate_batch() must return a dict of metrics, got "
                                           f"{type(got).__name__}")
            if keys is None:
                keys = set(got)
            elif keys != set(got):
                raise TrialDefinitionError(f"evaluate_batch(): every batch must return the same metric "
                                           f"names: {sorted(keys)} != {sorted(got)}")
            per_batch.append({k: _plain(v) for k, v in got.items()})
            if self.test_mode:
                break
        for cb in self.callbacks.values():
            cb.on_validation_epoch_end(per_batch)
        if self.dist.size > 1:
            parts = self.dist.allgather((per_batch, sizes))
            per_batch = [m for p, _ in parts for m in p]
            sizes = [n for _, ns in parts for n in ns]
        if not per_batch:
            raise TrialDefinitionError("build_validation_data_loader(): the validation data loader has "
                                       "no batch")
        reducer = self.trial.evaluation_reducer()
        names = sorted(per_batch[0])
        if isinstance(reducer, dict) and set(reducer) != set(names):
            raise TrialDefinitionError(f"evaluation_reducer(): give one Reducer, or one for every metric "
                                       f"evaluate_batch() returns ({names}), not {sorted(reducer)}")
        out: dict[str, Any] = {}
        for k in names:
            r = reducer[k] if isinstance(reducer, dict) else reducer
            try:
                out[k] = _plain(reduce_values(Reducer(r), [m[k] for m in per_batch], sizes))
            except (TypeError, ValueError):
                out[k] = per_batch[-1][k]  # not numbers: the last batch's, as it came
        return out

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self) -> None:
        s, ctx = self.state, self.ctx
        sid = ""
        if self.chief:
            self.core.train.set_status("checkpointing")
            ckpt: dict[str, Any] = {
                "models_state_dict": [m.state_dict() for m in ctx.models],
                "optimizers_state_dict": [o.state_dict() for o in ctx.optimizers],
                "lr_schedulers_state_dict": [sch.state_dict() for sch in ctx.lr_schedulers],
                "callbacks": {name: cb.state_dict() for name, cb in self.callbacks.items()},
                "rng_state": _rng_state(),
            }
            if ctx._scaler is not None:
                ckpt["scaler_state_dict"] = ctx._scaler.state_dict()
            for cb in self.callbacks.values():
                cb.on_checkpoint_save_start(ckpt)
            meta = {"steps_completed": s.batches_trained, "framework": f"torch-{torch.__version__}",
                    "format": "pickle"}
            with self.core.checkpoint.store_path(meta) as (path, sid):
                torch.save(ckpt, Path(path) / STATE_DICT)
                with open(Path(path) / TRIAL_STATE, "wb") as f:
                    pickle.dump({**vars(s), "last_ckpt": s.batches_trained}, f)
                (Path(path) / LOAD_DATA).write_text(
                    json.dumps(_load_data(self.trial, ctx), default=str))
                for cb in self.callbacks.values():
                    cb.on_checkpoint_write_end(str(path))
                    cb.on_checkpoint_end(str(path))
        if self.dist.size > 1:
            sid = self.dist.broadcast(sid)
        s.last_ckpt = s.batches_trained
        for cb in self.callbacks.values():
            cb.on_checkpoint_upload_end(uuid=sid)

    def _load(self, storage_id: str) -> None:
        ctx = self.ctx
        with self.core.checkpoint.restore_path(storage_id) as path:
            path = Path(path)
            found = next((path / p for p in STATE_DICT_PATHS if (path / p).is_file()), None)
            if found is None:
                raise FileNotFoundError(f"checkpoint {storage_id} ({path}) holds no "
                                        f"{STATE_DICT}: it was not stored by a PyTorchTrial")
            ckpt = torch.load(found, map_location="cpu", weights_only=False)
            for cb in self.callbacks.values():
                cb.on_checkpoint_load_start(ckpt)
            models = ckpt.get("models_state_dict")
            if models is None and "model_state_dict" in ckpt:
                models = [ckpt["model_state_dict"]]
            for model, sd in zip(ctx.models, models or []):
                _load_model(model, sd)
            optims = ckpt.get("optimizers_state_dict")
            if optims is None and "optimizer_state_dict" in ckpt:
                optims = [ckpt["optimizer_state_dict"]]
            for opt, sd in zip(ctx.optimizers, optims or []):
                opt.load_state_dict(sd)
            scheds = ckpt.get("lr_schedulers_state_dict")
            if scheds is None and "lr_scheduler" in ckpt:
                scheds = [ckpt["lr_scheduler"]]
            for sch, sd in zip(ctx.lr_schedulers, scheds or []):
                sch.load_state_dict(sd)
            if ctx._scaler is not None and "scaler_state_dict" in ckpt:
                ctx._scaler.load_state_dict(ckpt["scaler_state_dict"])
            if "rng_state" in ckpt:
                _set_rng_state(ckpt["rng_state"], ctx.device)
            for name, cb in self.callbacks.items():
                if name in ckpt.get("callbacks", {}):
                    cb.load_state_dict(ckpt["callbacks"][name])
            state_file = path / TRIAL_STATE
            if state_file.is_file():
                with open(state_file, "rb") as f:
                    saved = pickle.load(f)
                # another trial's checkpoint (a warm start) starts this one's counts at zero
                if saved.get("trial_id") == self.state.trial_id:
                    self.state = _TrialState(**{k: saved[k] for k in vars(self.state)
                                                if k in saved})
        self.state.last_ckpt = self.state.batches_trained
        self.state.last_val = min(self.state.last_val, self.state.batches_trained)


def _load_data(trial: PyTorchTrial, context: PyTorchTrialContext) -> dict[str, Any]:
    """The trial's class, hyperparameters and config, as Determined's ``load_data.json``."""
    cls = type(trial)
    return {"trial_type": "PyTorchTrial", "trial_cls_spec": f"{cls.__module__}:{cls.__qualname__}",
            "hparams": context._hparams, "experiment_config": context._exp_conf,
            "is_trainer": True}


def _load_model(model: torch.nn.Module, sd: dict[str, Any]) -> None:
    """A state dict saved with or without DistributedDataParallel's ``module.`` prefix."""
    ddp = isinstance(model, torch.nn.parallel.DistributedDataParallel)
    has = any(k.startswith("module.") for k in sd)
    if ddp and not has:
        sd = {f"module.{k}": v for k, v in sd.items()}
    elif has and not ddp:
        sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
    model.load_state_dict(sd)


def _rng_state() -> dict[str, Any]:
    out: dict[str, Any] = {"cpu_rng_state": torch.random.get_rng_state(),
                           "np_rng_state": np.random.get_state(),
                           "random_rng_state": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["gpu_rng_state"] = torch.cuda.get_rng_state()
    return out


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    np.random.set_state(state["np_rng_state"])
    random.setstate(state["random_rng_state"])
    torch.random.set_rng_state(state["cpu_rng_state"])
    if "gpu_rng_state" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["gpu_rng_state"], device=device)

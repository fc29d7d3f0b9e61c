"""``det.pytorch.init()`` and the ``PyTorchTrialContext`` it yields: what a ``PyTorchTrial``
wraps its models, optimizers and schedulers with, and reads its hyperparameters from. Inside an
asha_hpc job it runs on the Core API shim (``det.core.init()``); outside one (``python
train.py``) on a local stand-in, as Determined's local training mode."""
from __future__ import annotations

import contextlib
import logging
import os
import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ....job.job_report import append_report
from .. import core, get_cluster_info
from .data import to_device
from .trial import LRScheduler, MetricReducer, TrialDefinitionError, _SimpleReducer

log = logging.getLogger("determined.pytorch")


class PyTorchExperimentalContext:
    """``context.experimental``: the switches Determined keeps there."""

    def __init__(self) -> None:
        self._auto_to_device = True
        self._data_repro_checks_disabled = False

    def disable_dataset_reproducibility_checks(self) -> None:
        """Allow a plain ``torch.utils.data.DataLoader`` (its batches are not resumed at the
        exact batch a continued trial stopped at)."""
        self._data_repro_checks_disabled = True

    def disable_auto_to_device(self) -> None:
        """Batches reach ``train_batch`` / ``evaluate_batch`` where the loader left them."""
        self._auto_to_device = False


class _Reducers:
    """The metric reducers a trial wrapped, for training, validation or both."""

    def __init__(self) -> None:
        self.items: list[tuple[Any, str | None, bool, bool]] = []

    def reset(self, for_training: bool) -> None:
        for r, _, tr, va in self.items:
            if (tr if for_training else va):
                r.reset()

    def reduce(self, for_training: bool, allgather: Callable[[Any], list[Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for r, name, tr, va in self.items:
            if not (tr if for_training else va):
                continue
            value = r.cross_slot_reduce(allgather(r.per_slot_reduce()))
            if name is None:
                if not isinstance(value, dict):
                    raise TypeError(f"wrap_reducer(..., name=None): {type(r).__name__}'s "
                                    f"cross_slot_reduce() must return a dict of metrics, got "
                                    f"{type(value).__name__}")
                out.update(value)
            else:
                out[name] = value
        return out


class PyTorchTrialContext:
    def __init__(self, core_context: Any, trial_seed: int | None, hparams: dict[str, Any] | None,
                 exp_conf: dict[str, Any] | None, aggregation_frequency: int = 1,
                 steps_completed: int = 0, trial_id: int = 0, experiment_id: str = "",
                 enable_tensorboard_logging: bool = True) -> None:
        self._core = core_context
        self.distributed = core_context.distributed
        self._hparams = hparams
        self._exp_conf = exp_conf
        self._trial_seed = trial_seed
        self._trial_id = trial_id
        self._experiment_id = experiment_id
        self._steps_completed = steps_completed
        self._aggregation_frequency = max(int(aggregation_frequency), 1)
        self._per_slot_batch_size: int | None = None
        self._global_batch_size: int | None = None
        gbs = (hparams or {}).get("global_batch_size")
        if gbs:
            self._global_batch_size = int(gbs)
            size = max(int(self.distributed.size), 1)
            if self._global_batch_size < size:
                raise TrialDefinitionError(f"hyperparameters.global_batch_size ({gbs}) is smaller than the "
                                           f"trial's {size} slots: each needs at least one record")
            self._per_slot_batch_size = self._global_batch_size // size
        self.device = self._init_device()
        self.models: list[torch.nn.Module] = []
        self.optimizers: list[torch.optim.Optimizer] = []
        self.lr_schedulers: list[LRScheduler] = []
        self._optimizer_average: dict[int, bool] = {}
        self._scaler: Any = None
        self._epoch_len: int | None = None
        self._current_batch_idx: int | None = None
        self._stop_requested = False
        self._enable_tensorboard_logging = enable_tensorboard_logging
        self._tb_writer: Any = None
        self._reducers = _Reducers()
        self.experimental = PyTorchExperimentalContext()

    def _init_device(self) -> torch.device:
        if torch.cuda.is_available():
            local = int(getattr(self.distributed, "local_rank", 0) or 0)
            return torch.device("cuda", local % max(torch.cuda.device_count(), 1))
        return torch.device("cpu")

    # ------------------------------------------------------------------ what the trial reads
    def get_hparams(self) -> dict[str, Any]:
        if self._hparams is None:
            raise ValueError("get_hparams(): this context has no hyperparameters: pass "
                             "det.pytorch.init(hparams=...) when training outside a search")
        return self._hparams

    def get_hparam(self, name: str) -> Any:
        hp = self.get_hparams()
        if name not in hp:
            raise TrialDefinitionError(f"get_hparam({name!r}): no such hyperparameter; the trial has "
                                       f"{sorted(hp)} (the config's `hyperparameters` section)")
        return hp[name]

    def get_global_batch_size(self) -> int:
        if self._global_batch_size is None:
            raise TrialDefinitionError("get_global_batch_size(): the hyperparameters have no "
                                       "global_batch_size")
        return self._global_batch_size

    def get_per_slot_batch_size(self) -> int:
        if self._per_slot_batch_size is None:
            raise TrialDefinitionError("get_per_slot_batch_size(): the hyperparameters have no "
                                       "global_batch_size")
        return self._per_slot_batch_size

    def get_experiment_config(self) -> dict[str, Any]:
        if self._exp_conf is None:
            raise ValueError("get_experiment_config(): no experiment config: pass "
                             "det.pytorch.init(exp_conf=...) when training outside a search")
        return self._exp_conf

    def get_data_config(self) -> dict[str, Any]:
        data = (self._exp_conf or {}).get("data")
        return data if isinstance(data, dict) else {}

    def get_experiment_id(self) -> str:
        return self._experiment_id

    def get_trial_id(self) -> int:
        return self._trial_id

    def get_trial_seed(self) -> int:
        if self._trial_seed is None:
            raise ValueError("get_trial_seed(): no trial seed outside a search")
        return self._trial_seed

    def get_initial_batch(self) -> int:
        return self._steps_completed

    def get_stop_requested(self) -> bool:
        return self._stop_requested

    def set_stop_requested(self, stop_requested: bool) -> None:
        """Ask the Trainer to end the trial after this batch: it validates, checkpoints and
        returns, and the trial ends with that validation as its result (Determined's
        ``USER_REQUESTED_STOP``)."""
        if not isinstance(stop_requested, bool):
            raise TypeError("set_stop_requested(): stop_requested must be a bool")
        self._stop_requested = stop_requested

    # ------------------------------------------------------------------ where training is
    def _batch_idx(self) -> int:
        if self._current_batch_idx is None:
            raise RuntimeError("training has not started")
        return self._current_batch_idx

    def current_train_batch(self) -> int:
        return self._batch_idx()

    def current_train_epoch(self) -> int:
        return self._batch_idx() // (self._epoch_len or 1)

    def is_epoch_start(self) -> bool:
        return self._batch_idx() % (self._epoch_len or 1) == 0

    def is_epoch_end(self) -> bool:
        n = self._epoch_len or 1
        return self._batch_idx() % n == n - 1

    # ------------------------------------------------------------------ wrapping
    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model on this rank's device (inside DistributedDataParallel with several ranks);
        the Trainer checkpoints it and switches it between train and eval."""
        model = model.to(self.device)
        if self.distributed.size > 1 and torch.distributed.is_available() \
                and torch.distributed.is_initialized():
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        self.models.append(model)
        return model

    def wrap_optimizer(self, optimizer: torch.optim.Optimizer, backward_passes_per_step: int = 1,
                       fp16_compression: bool | None = None,
                       average_aggregated_gradients: bool | None = None) -> torch.optim.Optimizer:
        self._optimizer_average[id(optimizer)] = True if average_aggregated_gradients is None \
            else bool(average_aggregated_gradients)
        self.optimizers.append(optimizer)
        return optimizer

    def wrap_lr_scheduler(self, lr_scheduler: Any, step_mode: LRScheduler.StepMode,
                          frequency: int = 1) -> Any:
        """The scheduler, stepped by the Trainer as ``step_mode`` says and checkpointed."""
        wrapped = LRScheduler(lr_scheduler, step_mode, frequency)
        self.lr_schedulers.append(wrapped)
        return lr_scheduler

    def wrap_scaler(self, scaler: Any) -> Any:
        """A ``torch.amp.GradScaler``: checkpointed with the trial, passed to ``step_optimizer``."""
        self._scaler = scaler
        return scaler

    def wrap_reducer(self, reducer: Any, name: str | None = None, for_training: bool = True,
                     for_validation: bool = True) -> Any:
        """A ``MetricReducer``, or a function of every value ``update()`` gave (then the
        returned object has ``update``); its result is the metric ``name`` (or, with no name,
        the dict it returns), reset before each training period and each validation."""
        r = reducer if isinstance(reducer, MetricReducer) else _SimpleReducer(reducer)
        self._reducers.items.append((r, name, for_training, for_validation))
        return r

    def reset_reducers(self, for_training: bool = True) -> None:
        self._reducers.reset(for_training)

    def reduce_metrics(self, for_training: bool) -> dict[str, Any]:
        return self._reducers.reduce(for_training, self.distributed.allgather)

    # ------------------------------------------------------------------ the training step
    def _should_communicate_and_update(self) -> bool:
        return (self._batch_idx() + 1) % self._aggregation_frequency == 0

    def backward(self, loss: torch.Tensor, gradient: torch.Tensor | None = None,
                 retain_graph: bool = False, create_graph: bool = False) -> None:
        loss.backward(gradient=gradient, retain_graph=retain_graph, create_graph=create_graph)

    def step_optimizer(self, optimizer: torch.optim.Optimizer, clip_grads: Callable[..., Any]
                       | None = None, auto_zero_grads: bool = True, scaler: Any = None) -> None:
        """One optimizer step (every ``aggregation_frequency`` batches: the gradients of the
        batches between are summed, then averaged); ``clip_grads(params)`` first if given."""
        if id(optimizer) not in self._optimizer_average:
            raise TrialDefinitionError("step_optimizer(): this optimizer was not wrapped: pass it through "
                                       "context.wrap_optimizer() in the trial's __init__")
        if self._aggregation_frequency > 1 and not auto_zero_grads:
            raise TrialDefinitionError("step_optimizer(): auto_zero_grads must be True when "
                                       "aggregation_frequency is above 1")
        if not self._should_communicate_and_update():
            return
        params = [p for g in optimizer.param_groups for p in g.get("params", [])]
        if self._aggregation_frequency > 1 and self._optimizer_average[id(optimizer)]:
            for p in params:
                if p.grad is not None:
                    p.grad.data.div_(float(self._aggregation_frequency))
        if clip_grads is not None:
            if scaler is not None:
                scaler.unscale_(optimizer)
            clip_grads(params)
        if scaler is not None:
            scaler.step(optimizer)
        else:
            optimizer.step()
        if auto_zero_grads:
            optimizer.zero_grad()

    def to_device(self, data: Any) -> Any:
        return to_device(data, self.device)

    # ------------------------------------------------------------------ TensorBoard
    def get_tensorboard_path(self) -> Path:
        return Path(self._core.train.get_tensorboard_path())

    def get_tensorboard_writer(self) -> Any:
        if self._tb_writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb_writer = SummaryWriter(str(self.get_tensorboard_path()))
        return self._tb_writer

    def set_enable_tensorboard_logging(self, enable_tensorboard_logging: bool) -> None:
        self._enable_tensorboard_logging = bool(enable_tensorboard_logging)

    def get_enable_tensorboard_logging(self) -> bool:
        return self._enable_tensorboard_logging


# ---------------------------------------------------------------------------- outside a search
class _LocalTrain:
    """Determined's local training mode: metrics go to the log."""

    def __init__(self) -> None:
        self.best: float | None = None

    def report_training_metrics(self, steps_completed: int, metrics: dict[str, Any]) -> None:
        log.info("batch %d training: %s", steps_completed, _short(metrics))

    def report_validation_metrics(self, steps_completed: int, metrics: dict[str, Any]) -> None:
        log.info("batch %d validation: %s", steps_completed, _short(metrics))

    def report_early_exit(self, reason: Any) -> None:
        log.info("early exit: %s", reason)

    def set_status(self, status: str) -> None: ...

    def get_experiment_best_validation(self) -> float | None:
        return None

    def get_tensorboard_path(self) -> Path:
        p = Path("tensorboard")
        p.mkdir(exist_ok=True)
        return p


class _LocalCheckpoint:
    """Checkpoints in ``./checkpoints/<storage_id>/`` of the working folder."""

    @contextlib.contextmanager
    def store_path(self, metadata: dict[str, Any] | None = None,
                   shard: bool = False) -> Iterator[tuple[Path, str]]:
        import json

        sid = str(uuid.uuid4())
        path = Path("checkpoints") / sid
        path.mkdir(parents=True)
        yield path, sid
        (path / "metadata.json").write_text(json.dumps(metadata or {}, default=str))
        log.info("checkpoint %s stored in %s", sid, path)

    @contextlib.contextmanager
    def restore_path(self, storage_id: str, selector: Any = None) -> Iterator[Path]:
        path = Path("checkpoints") / storage_id
        if not path.is_dir():
            raise FileNotFoundError(f"no checkpoint {storage_id} in {path.parent.resolve()}")
        yield path


class _LocalPreempt:
    def should_preempt(self, auto_ack: bool = True) -> bool:
        return False


class _LocalCore:
    def __init__(self, distributed: Any) -> None:
        self.distributed = distributed
        self.train = _LocalTrain()
        self.checkpoint = _LocalCheckpoint()
        self.preempt = _LocalPreempt()


def _short(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in metrics.items())


def _torch_distributed() -> core.DistributedContext | None:
    """torch.distributed for the ranks a launcher started (torchrun sets WORLD_SIZE), as
    Determined's ``init()`` does; None for one process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return core.DistributedContext.from_torch_distributed()


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.random.manual_seed(seed)


@contextlib.contextmanager
def init(*, hparams: dict[str, Any] | None = None, exp_conf: dict[str, Any] | None = None,
         distributed: core.DistributedContext | None = None, aggregation_frequency: int = 1,
         enable_tensorboard_logging: bool = True) -> Iterator[PyTorchTrialContext]:
    """The context for one ``PyTorchTrial``; every ``Trainer`` call belongs inside the block.
    In a search the hyperparameters and config default to the trial's
    (``det.get_cluster_info().trial``), the random generators are seeded with the trial's
    seed, and the ranks a launcher started join torch.distributed."""
    info = get_cluster_info()
    if info is None:
        yield PyTorchTrialContext(_LocalCore(distributed or core.DummyDistributed()), None, hparams, exp_conf,
                                  aggregation_frequency,
                                  enable_tensorboard_logging=enable_tensorboard_logging)
        return
    _seed_everything(info.trial.trial_seed)
    with core.init(distributed=distributed or _torch_distributed(),
                   preempt_mode=core.PreemptMode.WorkersAskChief) as cc:
        try:
            yield _trial_context(cc, info, hparams, exp_conf, aggregation_frequency,
                                 enable_tensorboard_logging)
        except TrialDefinitionError as e:
            if cc.distributed.rank == 0:  # every trial would repeat it: the search stops
                append_report(cc._t.job.report_file, {"fatal": str(e)})
            raise


def _trial_context(cc: Any, info: Any, hparams: dict[str, Any] | None,
                   exp_conf: dict[str, Any] | None, aggregation_frequency: int,
                   enable_tensorboard_logging: bool) -> PyTorchTrialContext:
    return PyTorchTrialContext(
        cc, info.trial.trial_seed, info.trial.hparams if hparams is None else hparams,
        info.trial.config if exp_conf is None else exp_conf, aggregation_frequency,
        steps_completed=info.trial.steps_completed, trial_id=info.trial.trial_id,
        experiment_id=info.trial.experiment_id,
        enable_tensorboard_logging=enable_tensorboard_logging)

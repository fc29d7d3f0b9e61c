"""``det.pytorch``: Determined's PyTorch Trainer API (``PyTorchTrial``, ``Trainer``,
``init``) on asha_hpc, for scripts written as Determined's tutorial writes them:

    from asha_hpc.compat import determined as det      # was: import determined as det
    from asha_hpc.compat.determined import pytorch     # was: from determined import pytorch

    class MNistTrial(pytorch.PyTorchTrial):
        def __init__(self, context, hparams): ...     # wrap_model, wrap_optimizer
        def build_training_data_loader(self): return pytorch.DataLoader(...)
        def build_validation_data_loader(self): ...
        def train_batch(self, batch, epoch_idx, batch_idx): ...
        def evaluate_batch(self, batch, batch_idx): ...

    with pytorch.init() as train_context:
        trial = MNistTrial(train_context, hparams=det.get_cluster_info().trial.hparams)
        pytorch.Trainer(trial, train_context).fit(
            max_length=pytorch.Epoch(1),
            latest_checkpoint=det.get_cluster_info().latest_checkpoint,
            validation_period=pytorch.Batch(100))

Needs torch. Modules: units (Batch, Epoch), data (DataLoader), trial (what a trial subclasses
and returns), context (init, PyTorchTrialContext), trainer (Trainer, the loop, checkpoints),
load (a trained trial back from its checkpoint), trial_class (a Trial-class entrypoint run).
"""
try:
    import torch  # noqa: F401
except ImportError as e:  # one line a user acts on, where the job's traceback would end
    raise ImportError("det.pytorch (Determined's PyTorchTrial and Trainer) needs torch in the "
                      "jobs' environment: pip install torch") from e

from .context import PyTorchExperimentalContext, PyTorchTrialContext, init
from .data import DataLoader, TorchData, to_device
from .load import CheckpointLoadContext, load_trial_from_checkpoint_path
from .trainer import Trainer
from .trial import LRScheduler, MetricReducer, PyTorchCallback, PyTorchTrial, Reducer
from .units import Batch, Epoch, TrainUnit

__all__ = ["Batch", "CheckpointLoadContext", "DataLoader", "Epoch", "LRScheduler",
           "MetricReducer", "PyTorchCallback",
           "PyTorchExperimentalContext", "PyTorchTrial", "PyTorchTrialContext", "Reducer",
           "TorchData", "TrainUnit", "Trainer", "init", "load_trial_from_checkpoint_path",
           "to_device"]

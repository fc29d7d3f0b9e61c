"""A trained ``PyTorchTrial`` back from its checkpoint, for inference after the search
(``asha-hpc best`` names the folder, ``load_from``):

    trial = pytorch.load_trial_from_checkpoint_path(path, trial_class=MNistTrial,
                                                    trial_kwargs={"hparams": hparams})
    trial.model.eval()

The Trainer leaves ``load_data.json`` next to the state dict (the class, its hyperparameters and
the experiment config, as Determined's does), so ``trial_class`` may be left out when the
class's module is importable from the working folder."""
from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import torch

from .context import PyTorchTrialContext, _LocalCore
from .trainer import LOAD_DATA, STATE_DICT, _load_model
from .trial import PyTorchTrial


class CheckpointLoadContext(PyTorchTrialContext):
    """A context to build a trial with outside any training (nothing is reported or stored)."""

    def __init__(self, hparams: dict[str, Any] | None = None,
                 exp_conf: dict[str, Any] | None = None) -> None:
        from ..core import DummyDistributed

        super().__init__(_LocalCore(DummyDistributed()), 0, hparams, exp_conf)


def load_trial_from_checkpoint_path(path: str | Path, trial_class: Any = None,
                                    trial_kwargs: dict[str, Any] | None = None,
                                    torch_load_kwargs: dict[str, Any] | None = None
                                    ) -> PyTorchTrial:
    """The trial whose Trainer stored the checkpoint in ``path``, its models' weights loaded
    (on the CPU unless ``torch_load_kwargs`` says otherwise)."""
    folder = Path(path)
    state = folder / STATE_DICT
    if not state.is_file():
        raise FileNotFoundError(f"load_trial_from_checkpoint_path(): {folder} holds no "
                                f"{STATE_DICT}: give the folder `asha-hpc best --json` names as "
                                f"load_from, of a trial trained by det.pytorch's Trainer")
    try:
        data = json.loads((folder / LOAD_DATA).read_text())
    except (OSError, ValueError):
        data = {}
    if trial_class is None:
        spec = data.get("trial_cls_spec")
        if not spec or spec.startswith("__main__:"):
            raise ValueError(f"load_trial_from_checkpoint_path(): pass trial_class=YourTrial "
                             f"(the trial class was defined in the training script itself"
                             f"{'' if spec else ', or is not recorded in ' + LOAD_DATA})")
        module, _, qualname = spec.partition(":")
        if importlib.util.find_spec("determined") is None:  # a Trial class's own imports
            from .trial_class import alias_determined

            alias_determined()
        trial_class = importlib.import_module(module)
        for part in qualname.split("."):
            trial_class = getattr(trial_class, part)
    context = CheckpointLoadContext(data.get("hparams"), data.get("experiment_config"))
    trial = trial_class(context, **(trial_kwargs or {}))
    kwargs = {"map_location": "cpu", "weights_only": False, **(torch_load_kwargs or {})}
    checkpoint = torch.load(state, **kwargs)
    models = checkpoint.get("models_state_dict") or [checkpoint.get("model_state_dict")]
    for model, sd in zip(context.models, models):
        if sd is not None:
            _load_model(model, sd)
    return trial

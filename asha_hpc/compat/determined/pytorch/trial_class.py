"""A Determined Trial-class entrypoint (``entrypoint: model_def:MNistTrial``) run as a command:

    python3 -m asha_hpc.compat.determined.pytorch.trial_class model_def:MNistTrial \\
        [--validation-period batches=100] [--checkpoint-period epochs=1] \\
        [--reporting-period batches=100] [--aggregation-frequency 2]

Determined's harness built the context, made the trial and trained it to each of the
searcher's lengths; here ``det.pytorch``'s Trainer does (context.py, trainer.py), with the
config's ``min_validation_period``, ``min_checkpoint_period``, ``scheduling_unit`` and
``optimizations.aggregation_frequency`` as the arguments above (determined_config.py writes
them). The model definition's ``import determined`` lines stay as they were: in this process
``determined`` and ``determined.pytorch`` are asha_hpc's shim."""
from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
from pathlib import Path
from typing import Any

from ....errors import FatalTrialError
from ....job.entrypoint import import_entry_module
from ....job.job_report import append_report


def alias_determined() -> None:
    """``import determined`` / ``from determined.pytorch import ...`` reach the shim."""
    from ... import determined as det
    from .. import core

    sys.modules["determined"] = det
    sys.modules["determined.core"] = core
    sys.modules["determined.pytorch"] = sys.modules[str(__package__)]


def load_class(spec: str, folder: Path) -> Any:
    """``module:Name`` (``Outer.Inner``), ``path.py:Name`` (as any entry point is imported), or a
    bare ``Name`` from the folder's ``__init__.py`` (the folder imported as a package)."""
    mod, _, name = spec.rpartition(":")
    if mod:
        module = import_entry_module(mod, str(folder))
    else:
        sys.path.insert(0, str(folder.parent))
        module = importlib.import_module(folder.name)
    obj: Any = module
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise FatalTrialError(f"entrypoint: {spec}: {mod or folder.name} has no {name}")
    return obj


def _unit(text: str | None) -> Any:
    from . import Batch, Epoch

    if text is None:
        return None
    unit, _, n = text.partition("=")
    return Epoch(int(n)) if unit == "epochs" else Batch(int(n))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog=f"python3 -m {__name__}")
    p.add_argument("entrypoint")
    p.add_argument("--validation-period")
    p.add_argument("--checkpoint-period")
    p.add_argument("--reporting-period", default="batches=100")
    p.add_argument("--aggregation-frequency", type=int, default=1)
    a = p.parse_args(argv)
    alias_determined()
    from ... import determined as det
    from . import PyTorchTrial, Trainer, init

    try:
        cls = load_class(a.entrypoint, Path(os.getcwd()))
        if not (isinstance(cls, type) and issubclass(cls, PyTorchTrial)):
            raise FatalTrialError(f"entrypoint: {a.entrypoint} is not a det.pytorch.PyTorchTrial; "
                                  f"of Determined's Trial classes only PyTorchTrial runs here "
                                  f"(others: the Core API shim, README: Moving from Determined)")
    except FatalTrialError as e:  # every trial would repeat it: the search stops at the first
        if os.environ.get("ASHA_REPORT_FILE"):
            append_report(os.environ["ASHA_REPORT_FILE"], {"fatal": str(e)})
        raise SystemExit(str(e)) from None
    info = det.get_cluster_info()
    with init(aggregation_frequency=a.aggregation_frequency) as context:
        make: Any = cls  # Determined <= 0.37: (context); the Trainer era: (context, hparams)
        params = list(inspect.signature(cls.__init__).parameters)[1:]
        trial = make(context, context.get_hparams()) if len(params) > 1 else make(context)
        trainer = Trainer(trial, context)
        trainer.fit(
            max_length=trainer._searcher_length() if info is not None else None,
            latest_checkpoint=info.latest_checkpoint if info is not None else None,
            validation_period=_unit(a.validation_period),
            checkpoint_period=_unit(a.checkpoint_period),
            reporting_period=_unit(a.reporting_period))


if __name__ == "__main__":
    main()

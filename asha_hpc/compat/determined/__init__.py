"""Determined's Core API, one import away: a script written for Determined runs as an
asha_hpc command entrypoint with one changed line.

    from asha_hpc.compat import determined as det      # was: import determined as det

    info = det.get_cluster_info()                       # trial_id, hparams, latest_checkpoint
    with det.core.init() as core_context:
        core_context.train.report_validation_metrics(steps_completed=n, metrics={...})
        with core_context.checkpoint.store_path({"steps_completed": n}) as (path, storage_id):
            ...
        if core_context.preempt.should_preempt():
            return

It reads what the job gives every command (the ``ASHA_*`` variables, jobmain.py) and the
experiment's resolved config, and writes the report lines and checkpoint folder the job
publishes. Decisions (see core.py):

- Determined 0.38 style (``searcher.time_metric``): the script trains toward its own end and
  reports its progress as that validation metric; the first validation at or past the
  segment's length is the rung's result, and ``should_preempt()`` turns True so the script
  checkpoints and leaves. The searcher then stops it, or promotes it: the next job gets the
  checkpoint back as ``latest_checkpoint`` and the script resumes from it.
- Determined 0.37 style: ``core_context.searcher.operations()`` yields the segment's
  operation; ``op.length`` is the length to train to, ``op.report_completed(metric)`` its
  result.
- No length at all (0.38 ``single``/``random``/``grid``): the last validation metrics when the
  ``det.core.init()`` block ends are the trial's result.

Off a job (no ``ASHA_TRIAL_ID``), ``get_cluster_info()`` is None, as Determined's is off-cluster.
"""
from __future__ import annotations

import copy
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ...config import trial_seed
from ...errors import InvalidHP
from ...protocol.expdir import RUNS, ExpDir, split_attempt_key
from ...yamlfile import read_yaml
from . import core

LOG_FORMAT = "%(levelname)s: [%(process)s] %(name)s: %(message)s"  # Determined's own


@dataclass
class TrialInfo:
    trial_id: int
    hparams: dict[str, Any]
    experiment_id: str  # the experiment folder's name (Determined: an integer id)
    trial_seed: int = 0
    # the experiment's resolved config, with Determined's keys that translation replaced put
    # back (determined_view)
    config: dict[str, Any] = field(default_factory=dict)
    steps_completed: int = 0  # the latest checkpoint's metadata "steps_completed", if any
    trial_run_id: int = 1  # the trial's runs so far, this one included (Determined's count)
    debug: bool = False

    @property
    def _config(self) -> dict[str, Any]:
        """Determined's name for the config (its examples read ``info.trial._config["data"]``)."""
        return self.config


@dataclass
class ClusterInfo:
    """What Determined's ``det.get_cluster_info()`` gives a Core API script."""

    trial: TrialInfo
    latest_checkpoint: str | None  # a storage_id for checkpoint.restore_path, or None
    slot_ids: list[int] = field(default_factory=list)
    container_addrs: list[str] = field(default_factory=list)
    container_rank: int = 0
    task_type: str = "TRIAL"
    cluster_id: str = "asha_hpc"
    master_url: str = ""  # no Determined master: the search's master reads files
    task_id: str = ""  # "<experiment>.<trial>"
    allocation_id: str = ""  # this attempt's key (t00003-s001-a00)
    agent_id: str = ""  # the node
    gpu_uuids: list[str] = field(default_factory=list)  # CUDA_VISIBLE_DEVICES' entries

    @property
    def user_data(self) -> dict[str, Any]:
        """The config's ``data`` section, as Determined gives it."""
        data = self.trial.config.get("data")
        return data if isinstance(data, dict) else {}


def get_cluster_info() -> ClusterInfo | None:
    """This trial's information, or None outside an asha_hpc job."""
    env = os.environ
    if "ASHA_TRIAL_ID" not in env:
        return None
    job = core.JobEnv.from_env()
    trial_id = int(env["ASHA_TRIAL_ID"])
    gpus = [x.strip() for x in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if x.strip()]
    slots = list(range(len(gpus))) if gpus else list(range(job.slots_per_trial))
    experiment = os.path.basename(env.get("ASHA_EXP_DIR", "").rstrip("/"))
    latest = job.latest_storage_id()
    steps = 0
    if latest is not None and job.latest_checkpoint is not None:
        try:
            meta = json.loads((job.latest_checkpoint / latest / core.METADATA).read_text())
            steps = int(meta.get("steps_completed", 0))
        except (OSError, ValueError, TypeError, AttributeError):
            pass
    try:
        config = read_yaml(ExpDir(job.exp_dir).config.read_text()) or {}
    except (OSError, yaml.YAMLError):
        config = {}
    config = determined_view(config, job.exp_dir) if isinstance(config, dict) else {}
    return ClusterInfo(
        trial=TrialInfo(trial_id=trial_id, hparams=json.loads(env.get("ASHA_HPARAMS", "{}")),
                        experiment_id=experiment, trial_seed=trial_seed(job.seed, trial_id),
                        config=config, steps_completed=steps,
                        trial_run_id=trial_run_id(job.trial_dir, job.run_dir,
                                                  int(env.get("ASHA_SEGMENT", "0")))),
        latest_checkpoint=latest,
        slot_ids=slots, container_addrs=[socket.gethostname()], container_rank=0,
        task_id=f"{experiment}.{trial_id}", allocation_id=job.run_dir.name,
        agent_id=socket.gethostname(), gpu_uuids=gpus)


def determined_view(cfg: dict[str, Any], exp_dir: Path) -> dict[str, Any]:
    """The resolved config as a Determined script reads it: translation replaced some of the
    user's Determined keys (determined_config.py), which are put back next to what they became:
    ``searcher.max_time`` (with ``time_metric``; no ``max_length`` where the user gave no
    length), ``resources.slots_per_trial`` (1 unless given, 0 for CPU-only trials), and
    ``checkpoint_storage`` ``type: shared_fs`` with ``host_path`` + ``storage_path`` joining to
    the folder the trials live in. Keys translation dropped (``environment``, ``labels``, ...)
    are not in the resolved config, and not here."""
    out = copy.deepcopy(cfg)
    s = out.get("searcher")
    if isinstance(s, dict):
        length = s.get("max_length")
        if s.pop("until_exit", False):  # 0.38 single/random/grid: Determined had no length
            s.pop("max_length", None)
        elif s.get("time_metric"):  # 0.38's form: max_length was made from max_time
            if "max_time" not in s:
                s["max_time"] = next(iter(length.values())) if isinstance(length, dict) \
                    and length else length
            s.pop("max_length", None)
    out["resources"] = {**(out.get("resources") or {}),
                        "slots_per_trial": core.slots_per_trial(cfg)}
    ckpt = dict(out.get("checkpoint_storage") or {})
    where = Path(ckpt.pop("folder", None) or exp_dir)
    ckpt.update(type="shared_fs", host_path=str(where.parent), storage_path=where.name)
    out["checkpoint_storage"] = ckpt
    return out


def trial_run_id(trial_dir: Path, run_dir: Path, segment: int) -> int:
    """Determined's count of the trial's runs: 1 for its first, one more for every later start
    (a retry after a failure, a promotion after a pause). Each start here has its own attempt
    folder in ``<trial>/runs/``: this one's place among them, in order. A run folder that is
    not an attempt's (a job run by hand) counts by segment."""
    key = split_attempt_key(run_dir.name)
    try:
        names = os.listdir(trial_dir / RUNS)
    except OSError:
        names = []
    keys = sorted(k for k in (split_attempt_key(n) for n in names) if k[0] is not None)
    return keys.index(key) + 1 if key in keys else segment + 1


def __getattr__(name: str) -> Any:
    """``det.pytorch`` on first use: it imports torch, which a Core API script may not need."""
    if name == "pytorch":
        import importlib

        return importlib.import_module(f"{__name__}.pytorch")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ClusterInfo", "InvalidHP", "LOG_FORMAT", "TrialInfo", "core", "get_cluster_info"]

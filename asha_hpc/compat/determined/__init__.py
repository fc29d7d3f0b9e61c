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

import json
import os
import socket
from dataclasses import dataclass, field
from typing import Any

import yaml

from ...config import trial_seed
from ...errors import InvalidHP
from ...protocol.expdir import ExpDir
from . import core

LOG_FORMAT = "%(levelname)s: [%(process)s] %(name)s: %(message)s"  # Determined's own


@dataclass
class TrialInfo:
    trial_id: int
    hparams: dict[str, Any]
    experiment_id: str  # the experiment folder's name (Determined: an integer id)
    trial_seed: int = 0
    config: dict[str, Any] = field(default_factory=dict)  # the experiment's resolved config
    steps_completed: int = 0  # the latest checkpoint's metadata "steps_completed", if any
    trial_run_id: int = 1  # this job's segment of the trial, from 1
    debug: bool = False


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
        config = yaml.safe_load(ExpDir(job.exp_dir).config.read_text()) or {}
    except (OSError, yaml.YAMLError):
        config = {}
    return ClusterInfo(
        trial=TrialInfo(trial_id=trial_id, hparams=json.loads(env.get("ASHA_HPARAMS", "{}")),
                        experiment_id=experiment, trial_seed=trial_seed(job.seed, trial_id),
                        config=config if isinstance(config, dict) else {}, steps_completed=steps,
                        trial_run_id=int(env.get("ASHA_SEGMENT", "0")) + 1),
        latest_checkpoint=latest,
        slot_ids=slots, container_addrs=[socket.gethostname()], container_rank=0,
        task_id=f"{experiment}.{trial_id}", allocation_id=job.run_dir.name,
        agent_id=socket.gethostname(), gpu_uuids=gpus)


__all__ = ["ClusterInfo", "InvalidHP", "LOG_FORMAT", "TrialInfo", "core", "get_cluster_info"]

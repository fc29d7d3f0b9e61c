"""Determined code on the real local Slurm cluster, paused mid-segment: ``asha-hpc pause``
tells the job (SIGURG: its stop file appears), a script that asks ``should_preempt()``
(det.pytorch's Trainer asks every batch) saves where it is, and the segment goes on from there
after ``resume``. (``scancel``'s SIGTERM, of a cancel or a preemption, reaches the script
too: tests/local/test_determined_core_api.py covers it.)"""
from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from conftest import require_module
from slurm_helpers import cli, final_state, run_search, wait_until

pytestmark = pytest.mark.slurm

SLOW = Path(__file__).parent.parent / "determined_configs" / "slow_trainer"


def _steps(run: Path) -> list[int]:
    lines = [json.loads(x) for x in (run / "report.jsonl").read_text().splitlines()] \
        if (run / "report.jsonl").exists() else []
    return [x["step"] for x in lines if "step" in x]


def test_pause_of_a_pytorch_trainer_saves_where_it_is_and_resume_goes_on(tmp_path, cleanup):
    require_module("torch")
    shutil.copy(SLOW / "train.py", tmp_path / "train.py")
    exp, master = run_search(tmp_path, {
        "name": f"detpause-{uuid.uuid4().hex[:6]}", "entrypoint": "python3 train.py",
        "hyperparameters": {"lr": 0.05},
        "searcher": {"name": "single", "metric": "validation_loss", "smaller_is_better": True,
                     "time_metric": "batches", "max_time": 400},
        "environment": {"environment_variables": ["OMP_NUM_THREADS=1"]},
        "resources": {"slots_per_trial": 0}}, cleanup)
    first = exp / "trials/00001/runs/t00001-s000-a00"
    wait_until(lambda: len(_steps(first)) >= 4, 120, "trial 1 to train 20 batches")
    cli("pause", exp)
    master.communicate(timeout=120)
    saved = [json.loads(x) for x in (first / "report.jsonl").read_text().splitlines()
             if "saved" in x]
    assert saved, "the paused Trainer stored no checkpoint"
    paused_at = max(_steps(first))
    assert 20 <= paused_at < 400
    cli("resume", exp)
    _, st, _ = final_state(exp)
    assert st.lifecycle == "completed"
    t1 = st.trials[1]
    assert t1.status == "completed" and t1.restarts == 0
    second = exp / "trials/00001/runs/t00001-s000-a01"
    # the next job went on from the batch the pause stopped at
    assert min(_steps(second)) == paused_at + 5 and max(_steps(second)) == 400

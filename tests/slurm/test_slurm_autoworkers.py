"""``workers: auto`` on the real local Slurm cluster: warm worker jobs while segments are short
next to a job's start-up and queue wait, a job per segment while they are long, and back."""
from __future__ import annotations

import subprocess

import pytest
import yaml

from helpers import cache_experiment, check_switch_both_ways
from slurm_helpers import SETUP, cli, final_state, wait_until

pytestmark = pytest.mark.slurm


def queued(name: str):
    out = subprocess.run(["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if f"asha-{name}-" in line]


def test_auto_switches_to_a_job_per_segment_and_back_on_slurm(tmp_path, cleanup):
    path = cache_experiment(tmp_path, backend="slurm")
    raw = yaml.safe_load(path.read_text())
    raw["name"] = name = f"awslurm-{tmp_path.name[-12:].replace('_', '-')}"
    raw["slurm"] = {"gpus_per_node": 1, "timeout_min": 5, "poll_min_interval_s": 1,
                    "setup": SETUP}  # workers: auto, the default
    path.write_text(yaml.safe_dump(raw))
    cleanup[0].append(name)
    exp = tmp_path / "run"
    cli("run", path, "--exp-dir", exp, timeout=300)
    cfg, st, recs = final_state(exp)
    assert st.lifecycle == "completed"
    check_switch_both_ways(recs)
    # the segments between the two switches were Slurm jobs of their own, the others ran in
    # worker jobs (sbatch arrays of pool workers)
    assert any(r["kind"] == "submitted" for r in recs)
    assert sum(1 for r in recs if r["kind"] == "workers_submitted") >= 2
    status = cli("status", exp).stdout
    assert "workers: auto, warm workers: start-up" in status
    wait_until(lambda: not queued(name), 30, "the worker jobs to end")  # none left holding a GPU

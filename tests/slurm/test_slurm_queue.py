"""Why Slurm keeps a search's jobs pending, on the real cluster: the master reads the reason
from sacct/squeue at its usual poll, says once in its log which jobs will not start as they
were submitted (here: held, as `sbatch --hold` or an admin's `scontrol hold` leaves them),
``status`` shows the queue by reason, and once the jobs are released the search goes on."""
from __future__ import annotations

import subprocess

import pytest

from slurm_helpers import (
    RUN_TIMEOUT_S,
    cli,
    exp_name,
    final_state,
    make_experiment,
    start_master,
    status_json,
    wait_until,
)

pytestmark = pytest.mark.slurm


def test_held_jobs_are_named_in_the_log_and_status_and_run_once_released(tmp_path, cleanup):
    cfg_path = make_experiment(
        tmp_path, "held", searcher={"name": "random", "max_trials": 2, "max_concurrent_trials": 2,
                                    "max_length": 4},
        slurm={"additional_parameters": {"hold": True}})
    cleanup[0].append(exp_name(cfg_path))
    exp = tmp_path / "run"
    master = start_master("run", cfg_path, "--exp-dir", exp)
    cleanup[1].append(master)

    def held():
        if not (exp / "journal.jsonl").exists():  # the master has not created it yet
            return None
        q = (status_json(exp).get("queue") or {}).get("jobs") or []
        return q if len(q) == 2 and all(j["reason"] == "JobHeldUser" for j in q) else None

    queue = wait_until(held, 60, "status to show both jobs held")
    assert all(j["kind"] == "stuck" for j in queue)
    assert sorted(t for j in queue for t in j["trials"]) == [1, 2]
    jobs = sorted({j["job"] for j in queue})
    assert all(f"`scontrol release {j['job']}` lets it start" in j["means"] for j in queue)
    text = cli("status", exp).stdout
    assert "queue: 2 job(s) pending: JobHeldUser 2 (will not start as submitted)" in text
    named = ", ".join(f"{j['job']} (trial {j['trials'][0]})" for j in queue)
    assert f"  2 jobs: {named}, pending up to " in text
    assert f"`scontrol release {' '.join(j['job'] for j in queue)}` lets it start" in text

    # the Slurm array's tasks are released through its id, as a person would
    subprocess.run(["scontrol", "release", *jobs], check=True, capture_output=True)
    _, err = master.communicate(timeout=RUN_TIMEOUT_S)
    assert master.returncode == 0, err[-3000:]
    # each job said once while it waited (both in one line when one poll saw both held)
    warned = [line for line in err.splitlines() if "will not start as submitted" in line]
    for j in queue:
        assert sum(f"{j['job']} (trial {j['trials'][0]})" in line for line in warned) == 1, warned
    assert all("pending for JobHeldUser: held by its user" in line for line in warned), warned
    assert any(f"2 jobs: {named} will not start" in line for line in warned) or len(warned) == 2
    _, st, _ = final_state(exp)
    assert st.lifecycle == "completed" and len(st.trials) == 2
    assert status_json(exp)["queue"] is None  # no master: nothing current to show

"""The Slurm controller goes down in the middle of a search and comes back (a restart, a
failover, an admin's reconfiguration): running jobs go on, the master's sbatch, sacct and
squeue fail meanwhile; the search waits, says so once, and finishes when the controller is
back. Only on the local cluster, the one a test may stop the controller of."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from slurm_helpers import (
    REPO_ROOT,
    RUN_TIMEOUT_S,
    exp_name,
    final_state,
    journal,
    make_experiment,
    start_master,
    wait_until,
)

pytestmark = pytest.mark.slurm
DOWN_S = 12


def _controller() -> int | None:
    r = subprocess.run(["pgrep", "-x", "slurmctld"], capture_output=True, text=True)
    pids = [int(p) for p in r.stdout.split()]
    return min(pids) if pids else None  # slurmctld's helper (slurmscriptd) has a higher pid


def _start_controller() -> None:
    subprocess.run(["bash", str(REPO_ROOT / "tools" / "local_slurm.sh"), "start"],
                   capture_output=True, text=True, check=True, timeout=120)


def test_a_search_waits_out_a_controller_outage(tmp_path, cleanup, local_partitions):
    if os.geteuid() != 0 or _controller() is None:
        pytest.skip("stops and starts the local cluster's slurmctld: needs root and that cluster")
    cfg_path = make_experiment(
        tmp_path, "outage", searcher={"name": "random", "max_trials": 6,
                                      "max_concurrent_trials": 2, "max_length": 8},
        hp={"sleep": 1.0})  # a segment trains 8 s: the jobs running at the outage end in it
    cleanup[0].append(exp_name(cfg_path))
    exp = tmp_path / "run"
    master = start_master("run", cfg_path, "--exp-dir", exp)
    cleanup[1].append(master)
    try:
        def running_with_more_to_submit() -> bool:
            recs = journal(exp)
            started = {r["trial"] for r in recs if r["kind"] == "started"}
            ended = {r["trial"] for r in recs if r["kind"] == "result"}
            return len(started - ended) == 2 and len(started) < 6

        # two jobs running and trials left: one of them ends during the outage and its slot
        # needs a submission the controller cannot take
        wait_until(running_with_more_to_submit, 120, "two jobs running")
        pid = _controller()
        assert pid is not None
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: _controller() is None, 30, "slurmctld to stop")
        down_at = time.time()
        # while it is down: at least one submission refused, and the master still runs
        wait_until(lambda: any(r["kind"] == "submit_failed" for r in journal(exp)), 90,
                   "a submission the controller could not take")
        time.sleep(max(0.0, DOWN_S - (time.time() - down_at)))
        assert master.poll() is None, master.stderr.read() if master.stderr else ""
    finally:
        if _controller() is None:
            _start_controller()
    _, err = master.communicate(timeout=RUN_TIMEOUT_S)
    assert master.returncode == 0, err[-3000:]
    assert err.count("the scheduler cannot take jobs now") == 1, err[-3000:]
    assert "the scheduler takes jobs again: submissions go through" in err
    _, st, recs = final_state(exp)
    assert st.lifecycle == "completed" and len(st.trials) == 6
    assert all(t.status == "completed" and t.restarts == 0 for t in st.trials.values())
    refused = [r for r in recs if r["kind"] == "submit_failed"]
    assert refused and all("Unable to contact slurm controller" in r["error"] or
                           "Socket timed out" in r["error"] for r in refused), refused

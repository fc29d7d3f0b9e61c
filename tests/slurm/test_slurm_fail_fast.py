"""On the real local Slurm cluster: a typo in the searcher's metric costs at most 3 jobs
(``probe_jobs``), however many trials may run at once, and stops the search with one line."""
import time

import pytest

from slurm_helpers import cli, exp_name, journal, make_experiment, sacct_jobs

pytestmark = pytest.mark.slurm


def test_a_metric_typo_costs_at_most_three_slurm_jobs(tmp_path, cleanup):  # noqa: F811
    cfg_path = make_experiment(tmp_path, "typo", searcher={"metric": "val_loss",
                                                           "max_concurrent_trials": 6,
                                                           "max_trials": 12})
    name = exp_name(cfg_path)
    cleanup[0].append(name)
    exp = tmp_path / "run"
    t0 = time.time()
    r = cli("run", cfg_path, "--exp-dir", exp, check=False)
    assert r.returncode == 1, r.stderr[-2000:]
    lines = [x for x in r.stderr.splitlines() if x.startswith("asha-hpc: experiment failed:")]
    assert len(lines) == 1, r.stderr[-2000:]
    assert "'val_loss' was not reported" in lines[0] and "'loss'" in lines[0]
    assert "--retry-failed" in lines[0]
    intents = [x for x in journal(exp) if x["kind"] == "intent"]
    assert 1 <= len(intents) <= 3
    # wait for accounting to list every job the journal says went out (sacct lags the scheduler)
    submitted = [x["job_id"] for x in journal(exp) if x["kind"] == "submitted"]
    rows = sacct_jobs(name, t0, expect=submitted)
    assert 1 <= len(rows) <= 3 and set(submitted) <= {r["id"] for r in rows}, rows

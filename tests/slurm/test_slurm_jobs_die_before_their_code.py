"""On the real local Slurm cluster: jobs that end before their code runs (here the Python of a
virtual environment the compute node lacks, as on a node without the shared mount) stop the
search after the first few, with one line naming the job's log and what it says. Pool jobs
were replaced for ever before; segment jobs went on until three trials had used up their
restarts."""
import time

import pytest

from slurm_helpers import SETUP, cli, exp_name, journal, make_experiment, sacct_jobs

pytestmark = pytest.mark.slurm

MISSING = "/nonexistent/venv/bin/python"


@pytest.mark.parametrize("workers", [0, 2], ids=["segment jobs", "worker pool"])
def test_jobs_that_die_before_their_code_stop_the_search(tmp_path, cleanup, workers):  # noqa: F811
    cfg_path = make_experiment(tmp_path, f"nopy{workers}", searcher={"max_trials": 6},
                               slurm={"workers": workers,
                                      "setup": [*SETUP, f"exec {MISSING} -c pass"]})
    name = exp_name(cfg_path)
    cleanup[0].append(name)
    exp = tmp_path / "run"
    t0 = time.time()
    r = cli("run", cfg_path, "--exp-dir", exp, check=False, timeout=300)
    assert r.returncode == 1, r.stderr[-2000:]
    [line] = [x for x in r.stderr.splitlines() if x.startswith("asha-hpc: experiment failed:")]
    assert line.endswith(f"Fix it, then `asha-hpc resume {exp} --retry-failed`"), line
    recs = journal(exp)
    if workers:
        assert "pool jobs all ended before their code ran on node " in line, line
        assert "(failed); its log: " in line and MISSING in line, line  # the log's last line
        died = [x for x in recs if x["kind"] == "worker_gone" and x.get("unready")]
        assert 3 <= len(died) <= 4 and all(x["host"] for x in died)
        submitted = [j for x in recs if x["kind"] == "workers_submitted" for j in x["jobs"].values()]
    else:
        assert "all failed with the same error before any segment succeeded" in line, line
        assert "its job ended before its code ran (failed) (trial " in line, line
        assert "; log: " in line and MISSING in line, line  # the log's last line
        submitted = [x["job_id"] for x in recs if x["kind"] == "submitted"]
    assert len(submitted) <= 4
    rows = sacct_jobs(name, t0, expect=submitted)
    assert {r["id"] for r in rows} <= set(submitted), rows

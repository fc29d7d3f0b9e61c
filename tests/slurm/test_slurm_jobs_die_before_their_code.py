"""On the real local Slurm cluster: jobs that end before their code runs (here the Python of a
virtual environment the compute node lacks, as on a node without the shared mount) stop the
search after the first few, with one line naming the job's log and what it says. Pool jobs
were replaced for ever before; segment jobs went on until three trials had used up their
restarts."""
import time
from pathlib import Path

import pytest

from asha_hpc.backends.slurm import SlurmBackend
from asha_hpc.master.loop import Master

from slurm_helpers import (
    SETUP,
    cli,
    exp_name,
    in_process,
    journal,
    make_experiment,
    run_bounded,
    sacct_jobs,
)

pytestmark = pytest.mark.slurm

MISSING = "/nonexistent/venv/bin/python"


BROKEN_SETUP = {"python": (f"exec {MISSING} -c pass", MISSING),
                # a setup line that fails ends the job too: the trial would run without it
                "module": ("module load cuda/12.4", "module: command not found")}


@pytest.mark.parametrize("workers,broken", [(0, "python"), (2, "python"), (0, "module")],
                         ids=["segment jobs", "worker pool", "a failing setup line"])
def test_jobs_that_die_before_their_code_stop_the_search(tmp_path, cleanup, workers,  # noqa: F811
                                                         broken):
    line_, said = BROKEN_SETUP[broken]
    cfg_path = make_experiment(tmp_path, f"nopy{workers}{broken}", searcher={"max_trials": 6},
                               slurm={"workers": workers, "setup": [*SETUP, line_]},
                               result_grace_s=2)  # a local disk: no late results
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
        assert "; log: " in line and said in line, line  # the log's last line
        submitted = [x["job_id"] for x in recs if x["kind"] == "submitted"]
    assert len(submitted) <= 4
    rows = sacct_jobs(name, t0, expect=submitted)
    assert {r["id"] for r in rows} <= set(submitted), rows


class NodeWithoutTheFolder(SlurmBackend):
    """Jobs whose node does not mount the experiment folder (one on the login node's /tmp,
    say): Slurm cannot open their logs, so they end before any of them runs and leave
    nothing to read. Played here by logs that name a folder no node has."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.logs_dir = Path("/nonexistent/asha/jobs")


@pytest.mark.parametrize("workers", [0, 2], ids=["segment jobs", "worker pool"])
def test_jobs_that_cannot_write_their_log_say_their_node_does_not_see_the_folder(
        tmp_path, cleanup, workers):  # noqa: F811
    """The line that stops the search says why there is no log, not only that there is
    none."""
    cfg_path = make_experiment(tmp_path, f"nolog{workers}", searcher={"max_trials": 6},
                               slurm={"workers": workers}, result_grace_s=2)
    cleanup[0].append(exp_name(cfg_path))
    cfg, exp, _ = in_process(tmp_path, cfg_path)
    backend = NodeWithoutTheFolder(str(exp.root), cfg.slurm.backend_options(),
                                   poll_min_interval_s=1)
    lines: list[str] = []
    st = run_bounded(Master(exp, cfg, backend=backend, progress=lines.append))
    assert st.lifecycle == "failed", (st.message, lines[-5:])
    assert "before their code ran" in st.message or "before its code ran" in st.message
    assert f"it left no log in {exp.jobs}, so its node could not write there: the experiment " \
           "folder must be on a filesystem every compute node mounts" in st.message, st.message
    assert st.message.endswith(f"Fix it, then `asha-hpc resume {exp.root} --retry-failed`")


class NoAccounting(SlurmBackend):
    """A cluster without job accounting (``AccountingStorageType=accounting_storage/none``, or
    slurmdbd down): sacct answers nothing, and squeue has forgotten a job that ended
    (``MinJobAge`` passed: a master that was down a while, or a cluster that keeps them only
    seconds), so it leaves without a word on how. The backend's own fallback, squeue alone,
    is what runs; only its memory of ended jobs is cut short."""

    def _sacct(self, job_ids):
        return None

    def _squeue(self, job_ids, reasons):
        found = super()._squeue(job_ids, reasons)
        return None if found is None else {j: s for j, s in found.items() if not s.terminal}


@pytest.mark.parametrize("workers", [0, 2], ids=["segment jobs", "worker pool"])
def test_without_accounting_jobs_that_die_before_their_code_stop_the_search_too(
        tmp_path, cleanup, workers):  # noqa: F811
    """Such a job was LOST (as if it never left the queue): a segment's retry cost nothing and
    a pool job was replaced, for ever. One that left its log file ran: "unaccounted", judged as
    above."""
    cfg_path = make_experiment(tmp_path, f"noacct{workers}", searcher={"max_trials": 6},
                               slurm={"workers": workers,
                                      "setup": [*SETUP, f"exec {MISSING} -c pass"]},
                               result_grace_s=2)  # a local disk: no late results
    cleanup[0].append(exp_name(cfg_path))
    cfg, exp, _ = in_process(tmp_path, cfg_path)
    backend = NoAccounting(str(exp.root), cfg.slurm.backend_options(), poll_min_interval_s=1)
    backend.lost_grace_s = backend.submit_grace_s = 5.0  # a local cluster answers at once
    lines: list[str] = []
    st = run_bounded(Master(exp, cfg, backend=backend, progress=lines.append))
    assert st.lifecycle == "failed", (st.message, lines[-5:])
    assert st.message.endswith(f"Fix it, then `asha-hpc resume {exp.root} --retry-failed`")
    assert MISSING in st.message  # the log's last line
    recs = journal(exp.root)
    if workers:
        assert "pool jobs all ended before their code ran" in st.message, st.message
        died = [x for x in recs if x["kind"] == "worker_gone" and x.get("unready")]
        assert died and all(x["why"].endswith("ended (unaccounted)") for x in died), died
    else:
        assert "its job ended before its code ran (unaccounted)" in st.message, st.message
        dead = [x for x in recs if x["kind"] == "job_dead"]
        assert dead and all(x["state"] == "unaccounted" for x in dead), dead

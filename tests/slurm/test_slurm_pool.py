"""The worker pool on the real local Slurm cluster: long-lived worker jobs, replaced when they
reach their time limit, gone at the end (no idle GPU held)."""
from __future__ import annotations

import subprocess

import pytest

from asha_hpc.testing.invariants import check_invariants

from slurm_helpers import cli, exp_name, final_state, make_experiment, model_log, wait_until

pytestmark = pytest.mark.slurm


def queued(name: str):
    out = subprocess.run(["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if f"asha-{name}-" in line]


def worker_jobs(recs):
    return {w: j for r in recs if r["kind"] == "workers_submitted" for w, j in r["jobs"].items()}


def run_search(tmp_path, cleanup, tag, **kw):  # noqa: F811
    """Run a search on the cluster to the end; (name, exp dir, state, journal) after checking
    that it completed and kept the journal's invariants."""
    cfg_path = make_experiment(tmp_path, tag, **kw)
    name = exp_name(cfg_path)
    cleanup[0].append(name)
    exp = tmp_path / "run"
    cli("run", cfg_path, "--exp-dir", exp, timeout=300)
    cfg, st, recs = final_state(exp)
    assert st.lifecycle == "completed" and check_invariants(cfg, recs) == []
    return name, exp, st, recs


def test_pool_runs_all_segments_in_two_worker_jobs(tmp_path, cleanup):  # noqa: F811
    name, exp, st, recs = run_search(tmp_path, cleanup, "pool1",
                                     slurm={"workers": 2, "timeout_min": 5})
    assert st.counts()["total"] == 6
    jobs = worker_jobs(recs)
    assert len(jobs) == 2 and not [r for r in recs if r["kind"] == "submitted"]
    ran = {e["job"] for e in model_log(exp) if e["event"] == "start"}
    assert ran == set(jobs.values())  # every segment ran inside one of the two workers
    assert sum(1 for r in recs if r["kind"] == "result") > len(ran)
    # the pool shrank to nothing: no worker job is left holding its GPU
    wait_until(lambda: not queued(name), 30, "the worker jobs to end")


def test_pool_worker_reaching_its_time_limit_is_replaced(tmp_path, cleanup):  # noqa: F811
    """timeout_min=1, signal_delay_s=30: the worker gets USR2 mid-segment, checkpoints and
    leaves; the master starts another worker, which continues the segment from there."""
    name, exp, st, recs = run_search(
        tmp_path, cleanup, "pool2", searcher={"name": "single", "max_length": 80},
        hp={"x": 0.1, "sleep": 0.5},
        slurm={"workers": 1, "timeout_min": 1, "signal_delay_s": 30})
    t = st.trials[1]
    assert t.length == 80 and t.restarts == 0
    results = [r for r in recs if r["kind"] == "result"]
    assert [r["status"] for r in results] == ["interrupted"] * (len(results) - 1) + ["completed"]
    assert len(results) >= 2 and all(r["stop_reason"] == "SIGUSR2" for r in results[:-1])
    jobs = worker_jobs(recs)
    assert len(set(jobs.values())) >= 2  # replaced
    starts = [e for e in model_log(exp, 1) if e["event"] == "start"]
    stops = [e for e in model_log(exp, 1) if e["event"] == "stop"]
    for stop, nxt in zip(stops, starts[1:]):
        assert nxt["job"] != stop["job"] and nxt["epoch"] == stop["epoch"]
    wait_until(lambda: not queued(name), 30, "the worker jobs to end")


def test_trials_per_gpu_runs_two_workers_on_one_gpu(tmp_path, cleanup):  # noqa: F811
    """slurm.trials_per_gpu: 2 with one GPU per job: one job, two worker processes, the same
    CUDA_VISIBLE_DEVICES, segments running side by side."""
    name, exp, st, recs = run_search(
        tmp_path, cleanup, "pool3", searcher={"max_trials": 4, "max_concurrent_trials": 2},
        hp={"sleep": 0.1},
        slurm={"workers": 2, "trials_per_gpu": 2, "gpus_per_node": 1, "timeout_min": 5})
    jobs = worker_jobs(recs)
    assert sorted(jobs) == ["w0000.0", "w0000.1"] and len(set(jobs.values())) == 1
    starts = [e for e in model_log(exp) if e["event"] == "start"]
    assert {e["job"] for e in starts} == set(jobs.values())
    assert len({e["pid"] for e in starts}) == 2  # two worker processes in the one job
    assert len({e["cvd"] for e in starts}) == 1 and starts[0]["cvd"] is not None  # one GPU
    ends = {e["key"]: e["time"] for e in model_log(exp) if e["event"] == "end"}
    spans = [(e["time"], ends[e["key"]]) for e in starts if e["key"] in ends]
    assert any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(spans) for b in spans[i + 1:])
    wait_until(lambda: not queued(name), 30, "the worker job to end")


def test_continue_in_place_on_slurm(tmp_path, cleanup):  # noqa: F811
    """continue_in_place with stop_once (the decision comes at once): a job that finished a
    segment goes on with its trial's next one in the same Slurm job, no new sbatch."""
    name, exp, st, recs = run_search(tmp_path, cleanup, "cont1", searcher={"stop_once": True},
                                     continue_in_place=True)
    handed = [r for r in recs if r["kind"] == "intent" and r.get("worker")]
    assert handed, "no segment continued in place"
    submitted = {r["job_id"] for r in recs if r["kind"] == "submitted"}
    results = [r for r in recs if r["kind"] == "result"]
    assert len(submitted) + len(handed) == len(results)  # fewer sbatch than segments
    assert {r["job_id"] for r in handed} <= submitted  # continued in an existing job
    ends = [e for e in model_log(exp) if e["event"] == "end"]
    assert len(ends) == len(results) and {e["job"] for e in ends} <= submitted
    wait_until(lambda: not queued(name), 30, "the jobs to end")

"""Jobs that end before their code runs (a node without the shared mount, a `slurm.setup`
line that fails, a Python environment missing on the compute nodes). A pool job that ends so
sends no message and runs no trial, so nothing counted it: the master submitted its replacement, which
died the same way, for ever (236 dead pool jobs on a simulated cluster of 4 with one such node;
12,000 in 60,000 s, without a word, where every node was so). Now a node where they die is
excluded once work goes well elsewhere, a search where the first ones all die stops with one
line naming the job's log, and one that had worked slows its pool down until a job starts. A
job per segment that ends so is its trial's failure, and fail-fast compares them."""
from __future__ import annotations

from collections import Counter

from asha_hpc.backends.base import JobState
from asha_hpc.backends.simulated import SimulatedBackend
from asha_hpc.cli import main
from asha_hpc.launch import create_experiment
from asha_hpc.master.loop import POOL_BACKOFF_MAX_S, Master
from asha_hpc.master.pool import UNREADY_STREAK
from asha_hpc.master.state import replay
from asha_hpc.protocol.journal import read_journal
from asha_hpc.testing.invariants import check_invariants
from asha_hpc.views.status import status_dict
from asha_hpc.views.text import render_status_text

from helpers import sim_cfg


def _master(tmp_path, dead, nodes=4, progress=lambda s: None):
    cfg = sim_cfg(trials=60, concurrent=8, failure_rate=0.0, nodes=nodes, startup_seconds=20,
                  pool=4, broken_how="die")
    cfg.max_restarts = 5
    exp = create_experiment(cfg, tmp_path / "exp")
    backend = SimulatedBackend.from_config(cfg, exp.root)
    backend.broken = set(dead)  # where jobs end before their code runs
    return cfg, exp, backend, Master(exp, cfg, backend=backend, progress=progress)


def _pool_jobs(recs):
    return sum(len(r["jobs"]) for r in recs if r["kind"] == "workers_submitted")


def test_a_node_where_pool_jobs_die_before_their_code_is_excluded(tmp_path):
    said: list[str] = []
    cfg, exp, backend, m = _master(tmp_path, {"node01"}, progress=said.append)
    st = m.run()
    assert st.lifecycle == "completed"
    assert Counter(t.status for t in st.trials.values())["failed"] == 0
    assert list(st.nodes.bad) == ["node01"]
    assert st.nodes.bad["node01"].startswith(f"{UNREADY_STREAK} pool jobs in a row ended there "
                                             "before their code ran (jobs sim:w")
    [line] = [s for s in said if s.startswith("node node01 excluded")]
    assert "--readmit-node node01" in line
    # those deaths were the node's: once it is out they do not slow the pool down
    assert not [s for s in said if "pool jobs in a row ended before their code ran" in s]
    recs = read_journal(exp.journal)[0]
    assert check_invariants(cfg, recs) == []
    died = [r for r in recs if r["kind"] == "worker_gone" and r.get("unready")]
    assert len(died) == UNREADY_STREAK and {r["host"] for r in died} == {"node01"}
    assert all(r["job_id"] and r["why"].endswith("ended (failed)") for r in died)
    assert _pool_jobs(recs) <= 4 + UNREADY_STREAK + 1  # before: 239
    assert replay(cfg, recs).nodes.bad == st.nodes.bad  # a resumed master judges the same


def test_a_search_whose_first_pool_jobs_all_die_stops_and_says_where_to_look(tmp_path, capsys):
    cfg, exp, backend, m = _master(tmp_path, {"node01", "node02", "node03", "node04"})
    st = m.run()
    assert st.lifecycle == "failed"
    assert st.message.startswith("the first 4 pool jobs all ended before their code ran on nodes "
                                 "node01, node02, node03, node04 (the last: job sim:w0003 ended "
                                 "(failed)): the job's setup (slurm.setup), the Python "
                                 "environment or a mount is missing where the jobs run. Fix it, "
                                 f"then `asha-hpc resume {exp.root} --retry-failed`")
    recs = read_journal(exp.journal)[0]
    assert _pool_jobs(recs) == 4 and st.nodes.bad == {}  # nothing blamed on a node
    # fixed (the resume's backend is a healthy one): the search goes on and ends
    assert main(["resume", str(exp.root), "--retry-failed", "--report-every", "0"]) == 0
    st = replay(cfg, read_journal(exp.journal)[0])
    assert st.lifecycle == "completed" and st.segments_completed > 0


def test_pool_jobs_that_die_after_the_search_worked_are_slowed_down_until_one_starts(tmp_path):
    """The environment breaks mid-search on every node (a conda environment removed): no node
    is to blame and the search has worked, so it does not stop; the pool submits one job at a
    time, ever more slowly, and says so once; fixed, the pool grows back and the search ends."""
    said: list[str] = []
    cfg, exp, backend, m = _master(tmp_path, set(), progress=said.append)
    assert m.start()
    st = m.state
    while st.segments_completed < 12:
        assert m.step()
        m._sleep(cfg.poll_interval_s)
    backend.broken = set(backend.hosts)
    for jid in st.pool.job_ids():  # the running pool jobs end (their nodes rebooted, say)
        backend.cancel([jid])
        backend.jobs[jid].state = JobState.NODE_FAIL
    broke_at = m.clock.time()
    while m.clock.time() < broke_at + 6 * 3600:
        assert m.step()
        m._sleep(cfg.poll_interval_s)
    recs = read_journal(exp.journal)[0]
    died = [r for r in recs if r["kind"] == "worker_gone" and r.get("unready")]
    # 6 h: a pool's worth, then one every 30 s doubling to every 30 min: about 16, not 4,000
    assert UNREADY_STREAK <= len(died) <= 25, len(died)
    gaps = [b["time"] - a["time"] for a, b in zip(died[UNREADY_STREAK:], died[UNREADY_STREAK + 1:])]
    assert gaps and max(gaps) <= POOL_BACKOFF_MAX_S + 60 and gaps[-1] >= POOL_BACKOFF_MAX_S
    slow = [s for s in said if "pool jobs in a row ended before their code ran" in s]
    assert len(slow) == 1
    assert "one new one goes at a time, at most every 30 s, doubling up to 30 min" in slow[0]
    assert st.lifecycle == "running" and st.nodes.bad == {}  # no node to blame
    d = status_dict(exp, cfg, replay(cfg, recs), recs)
    assert d["pool_unready"]["jobs"] == len(died) and d["pool_unready"]["host"] == died[-1]["host"]
    assert (f"pool: {len(died)} jobs in a row ended before their code ran (the last: "
            f"{died[-1]['why']} on node {died[-1]['host']}): new ones go one at a time until one "
            "starts") in render_status_text(d).splitlines()
    backend.broken = set()  # fixed
    while m.step():
        m._sleep(cfg.poll_interval_s)
    m.close()
    recs = read_journal(exp.journal)[0]
    assert check_invariants(cfg, recs) == []
    st = replay(cfg, recs)
    assert st.lifecycle == "completed" and not any(t.status == "failed" for t in st.trials.values())
    assert status_dict(exp, cfg, st, recs)["pool_unready"] is None


def test_segment_jobs_that_all_die_before_their_code_stop_at_the_first_batch(tmp_path):
    """A job per segment: such a job is a failure of its trial (it counts), and fail-fast
    takes it as an error every trial would repeat, as a crash in the code. Before, nothing
    compared these deaths: the search went on until 3 trials had used up their restarts (48
    jobs here)."""
    cfg = sim_cfg(trials=40, concurrent=8, failure_rate=0.0, nodes=4, broken_nodes=1,
                  startup_seconds=20, broken_how="die")
    cfg.max_restarts = 5
    exp = create_experiment(cfg, tmp_path / "exp")
    backend = SimulatedBackend.from_config(cfg, exp.root)
    backend.broken = set(backend.hosts)
    st = Master(exp, cfg, backend=backend, progress=lambda s: None).run()
    assert st.lifecycle == "failed"
    assert "all failed with the same error before any segment succeeded: its job ended before " \
           "its code ran (failed)" in st.message
    assert st.message.endswith(f"Fix it, then `asha-hpc resume {exp.root} --retry-failed`")
    recs = read_journal(exp.journal)[0]
    assert len([r for r in recs if r["kind"] == "job_dead"]) <= 8  # the first batch
    assert not any(t.status == "failed" for t in st.trials.values())


def test_a_segment_job_that_crashes_after_its_code_started_is_no_such_death(tmp_path):
    """Crashes (a killed process, after the job's code sent its `started`) are the code's own
    failures, as before: every attempt crashing is not taken for a broken environment."""
    cfg = sim_cfg(trials=6, concurrent=3, failure_rate=0.999)
    exp = create_experiment(cfg, tmp_path / "exp")
    st = Master(exp, cfg, progress=lambda s: None).run()
    recs = read_journal(exp.journal)[0]
    assert st.lifecycle == "failed" and "before its code ran" not in (st.message or "")
    dead = [r for r in recs if r["kind"] == "job_dead"]
    started = {(r["trial"], r["segment"], r["attempt"]) for r in recs
               if r["kind"] == "started" and not r.get("by_scheduler")}
    assert dead and all((r["trial"], r["segment"], r["attempt"]) in started for r in dead)

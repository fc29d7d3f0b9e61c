"""A QOS with a MaxWall shorter than the time limit the config asks for, on the real local
cluster (which enforces accounting limits, as most real clusters do): Slurm would keep such a
job pending for ever (``QOSMaxWallDurationPerJobLimit``). The master reads the QOS's MaxWall
with sacctmgr, asks for no more, says so once, and the search completes; pool workers are held
to it too. A job submitted before the MaxWall was lowered is cancelled while it queues and
submitted again within it. The test adds its own QOS (root only) and removes it after."""
from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from asha_hpc.backends.base import TimeCap
from asha_hpc.master.loop import Master

from slurm_helpers import cli, exp_name, final_state, in_process, make_experiment, run_bounded

pytestmark = pytest.mark.slurm


def _sacctmgr(*args: str) -> None:
    subprocess.run(["sacctmgr", "-i", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def short_qos(local_partitions):
    if os.geteuid() != 0:
        pytest.skip("adds a QOS to the local cluster: needs root")
    enforce = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True).stdout
    if "limits" not in next((line for line in enforce.splitlines()
                             if line.startswith("AccountingStorageEnforce")), ""):
        message = "the cluster does not enforce accounting limits (tools/local_slurm.sh does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    name = f"asha_t{uuid.uuid4().hex[:6]}"
    _sacctmgr("add", "qos", name, "MaxWall=2")
    _sacctmgr("modify", "user", "root", "set", f"qos+={name}")
    try:
        yield name
    finally:
        _sacctmgr("modify", "user", "root", "set", f"qos-={name}")
        _sacctmgr("delete", "qos", name)


def _sacct(ids: list[str]) -> set[tuple[str, str]]:
    """{(QOS, Timelimit)} of these jobs, once sacct has a whole row for each (the accounting
    daemon fills a short job's row in a moment after it ends)."""
    deadline = time.time() + 30
    while True:
        res = subprocess.run(["sacct", "-X", "-n", "--parsable2", "-o", "JobID,QOS,Timelimit",
                              "-j", ",".join(sorted({i.split("_")[0] for i in ids}))],
                             capture_output=True, text=True, check=True)
        rows = {r[0]: (r[1], r[2]) for r in (line.split("|") for line in res.stdout.splitlines())
                if len(r) >= 3 and r[2] and r[1] != "Unknown"}
        if set(ids) <= set(rows) or time.time() > deadline:
            assert set(ids) <= set(rows), (ids, rows)
            return {rows[i] for i in ids}
        time.sleep(0.5)


def _search(tmp_path, cleanup, tag: str, trials: int, at_once: int, **slurm):
    """Run a random search of ``trials`` (``at_once`` at a time, length 4) with the slurm
    section's ``slurm`` to its end; (the run's stderr, the final state, the journal)."""
    cfg_path = make_experiment(
        tmp_path, tag, searcher={"name": "random", "max_trials": trials,
                                 "max_concurrent_trials": at_once, "max_length": 4},
        slurm=slurm)
    cleanup[0].append(exp_name(cfg_path))
    exp = tmp_path / "run"
    res = cli("run", cfg_path, "--exp-dir", exp)
    _, st, recs = final_state(exp)
    assert st.lifecycle == "completed" and len(st.trials) == trials
    return res.stderr, st, recs


def _search_after_lowering(tmp_path, cleanup, qos: str, tag: str, trials: int, at_once: int,
                           **slurm):
    """The same in this process, with the QOS's MaxWall read as 10 minutes by the backend
    and then lowered to 2; (the master's lines, the final state, the journal)."""
    _sacctmgr("modify", "qos", qos, "set", "MaxWall=10")
    cfg_path = make_experiment(
        tmp_path, tag, searcher={"name": "random", "max_trials": trials,
                                 "max_concurrent_trials": at_once, "max_length": 4},
        slurm=dict(slurm, qos=qos, timeout_min=5))
    cleanup[0].append(exp_name(cfg_path))
    cfg, exp, backend = in_process(tmp_path, cfg_path)
    assert backend.time_cap() == TimeCap(10, f"QOS {qos} MaxWall")  # read before it changes
    _sacctmgr("modify", "qos", qos, "set", "MaxWall=2")
    lines: list[str] = []
    st = run_bounded(Master(exp, cfg, backend=backend, progress=lines.append))
    assert st.lifecycle == "completed", (st.message, lines, subprocess.run(
        ["squeue", "-o", "%i %j %T %r %l %q"], capture_output=True, text=True).stdout)
    _, st, recs = final_state(exp.root)
    return lines, st, recs


def test_jobs_ask_for_no_more_than_the_qos_allows(tmp_path, cleanup, short_qos):
    err, st, recs = _search(tmp_path, cleanup, "qos", 3, 3, qos=short_qos, timeout_min=5)
    intents = [r for r in recs if r["kind"] == "intent"]
    assert intents and all(r["timeout_min"] == 2 and r["split"] for r in intents)
    assert {r["basis"] for r in intents} == {f"fixed; capped at QOS {short_qos} MaxWall 2 min"}
    said = [line for line in err.splitlines() if "time limits: jobs ask for at most" in line]
    assert len(said) == 1 and f"2 min (QOS {short_qos} MaxWall)" in said[0], said
    ids = [r["job_id"] for r in recs if r["kind"] == "submitted"]
    assert len(ids) == len(intents)
    assert _sacct(ids) == {(short_qos, "00:02:00")}


def test_pool_workers_ask_for_no_more_than_the_qos_allows(tmp_path, cleanup, short_qos):
    err, st, recs = _search(tmp_path, cleanup, "qospool", 2, 1, qos=short_qos, timeout_min=5,
                            workers=1)
    limits = [r["timeout_min"] for r in recs if r["kind"] == "workers"]
    assert limits and set(limits) == {2}
    assert (f"slurm.timeout_min 5 is more than QOS {short_qos} MaxWall 2 min: pool workers ask "
            "for 2 min") in err
    ids = [j for r in recs if r["kind"] == "workers_submitted" for j in r["jobs"].values()]
    assert ids and _sacct(ids) == {(short_qos, "00:02:00")}


def test_jobs_over_a_maxwall_lowered_while_they_queue_are_submitted_again(tmp_path, cleanup,
                                                                          short_qos):
    """An administrator lowers the QOS's MaxWall after the master read it: the jobs it
    submitted would pend for ever (QOSMaxWallDurationPerJobLimit). The master cancels them
    while they are queued and submits their segments again within the new limit, counting no
    retry, and the search completes."""
    lines, st, recs = _search_after_lowering(tmp_path, cleanup, short_qos, "qoslow", 3, 3)
    assert all(t.status == "completed" and t.restarts == 0 and t.infra_retries == 0
               for t in st.trials.values())
    intents = [r for r in recs if r["kind"] == "intent"]
    assert [r["timeout_min"] for r in intents[:6]] == [5, 5, 5, 2, 2, 2]
    # a 2-minute job's stop signal (90 s before its end) may come at once: Slurm sends it up
    # to 60 s early. Such a segment stops and goes on in another 2-minute job, counting nothing
    again = [r for r in recs if r["kind"] == "result" and r["status"] == "interrupted"]
    assert len(intents) == 6 + len(again) and all(r["timeout_min"] == 2 for r in intents[6:])
    assert all(r["stop_reason"] == "SIGUSR2" for r in again), again
    dead = [r for r in recs if r["kind"] == "job_dead"]
    assert len(dead) == 3 and not any(r["counts"] for r in dead)
    assert all(r["withdrawn"] == f"it asked for 5 min, more than QOS {short_qos} MaxWall 2 min "
                                 "(QOSMaxWallDurationPerJobLimit)" for r in dead)
    said = [line for line in lines if "would pend for ever" in line]
    assert said and all(f"asked for more time than QOS {short_qos} MaxWall 2 min" in line
                        for line in said)
    assert sum(line.count("(trial ") for line in said) == 3
    ids = [r["job_id"] for r in recs if r["kind"] == "submitted"]
    assert _sacct(ids[3:]) == {(short_qos, "00:02:00")}


def test_a_limit_on_submitted_jobs_is_kept_to(tmp_path, cleanup, short_qos):
    """The QOS takes 2 of the user's jobs at once (MaxSubmitJobsPerUser): sbatch refuses an
    array of 4. The search submits fewer at a time, never more than 2, and completes with no
    retry counted. (MaxWall 10: a 2-minute job's stop signal may come before its code trained,
    an interruption this test is not about.)"""
    _sacctmgr("modify", "qos", short_qos, "set", "MaxSubmitJobsPerUser=2", "MaxWall=10")
    err, st, recs = _search(tmp_path, cleanup, "qossubmit", 6, 4, qos=short_qos, timeout_min=5)
    assert all(t.status == "completed" and t.restarts == 0 and t.infra_retries == 0
               for t in st.trials.values()), (
        [(t.id, t.status, t.restarts, t.infra_retries, t.error) for t in st.trials.values()],
        [r for r in recs if r["kind"] == "job_dead" or r["kind"] == "submit_failed"
         and not r.get("transient") or r["kind"] == "result" and r["status"] != "completed"],
        [(p.name, p.read_text()[-1500:]) for r in recs if r["kind"] == "job_dead"
         for p in (tmp_path / "run" / "jobs").glob(f"{r.get('job_id')}*_log.err")])
    [line] = [s for s in err.splitlines() if "takes no more of your jobs at once" in s]
    assert "QOSMaxSubmitJobPerUserLimit" in line
    failed = [r for r in recs if r["kind"] == "submit_failed"]
    assert failed and all(r["transient"] for r in failed)
    # never more than 2 submitted at once, by the journal: submitted .. its result or death
    held = peak = 0
    for r in recs:
        if r["kind"] == "submitted":
            held += 1
        elif r["kind"] in ("result", "job_dead"):
            held -= 1
        peak = max(peak, held)
    assert peak <= 2


def test_a_pool_worker_over_a_maxwall_lowered_while_it_queues_is_replaced(tmp_path, cleanup,
                                                                          short_qos):
    """The same for a pool worker: its job is cancelled while queued and a worker that asks
    for no more than the new MaxWall takes its place."""
    lines, st, recs = _search_after_lowering(tmp_path, cleanup, short_qos, "qoslowpool", 2, 1,
                                             workers=1)
    assert all(t.status == "completed" and t.restarts == 0 for t in st.trials.values())
    limits = [r["timeout_min"] for r in recs if r["kind"] == "workers"]
    assert limits[0] == 5 and limits[1:] and set(limits[1:]) == {2}
    gone = [r for r in recs if r["kind"] == "worker_gone" and "cancelled while queued" in r["why"]]
    assert len(gone) == 1 and "QOSMaxWallDurationPerJobLimit" in gone[0]["why"]
    assert any("(warm workers) asked for more time than" in line for line in lines), lines

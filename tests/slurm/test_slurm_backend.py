"""SlurmBackend against the real local cluster (``bash tools/local_slurm.sh start``), plus a few
pure parsing tests that need no cluster."""
from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cloudpickle
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.backends.base import JobState, SegmentSpec, SubmitError, TimeCap
from asha_hpc.backends.slurm import (
    SlurmBackend,
    executor_parameters,
    expand_job_ids,
    parse_slurm_state,
)

from conftest import partition_options

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import slurm_jobs  # noqa: E402

# the jobs need neither this module nor tests/ on their path
cloudpickle.register_pickle_by_value(slurm_jobs)

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
# the job's python must import asha_hpc (for SegmentSpec) even without `pip install -e .`
SETUP = [f"export PYTHONPATH={REPO_ROOT}${{PYTHONPATH:+:$PYTHONPATH}}"]

TERMINAL_WAIT_S = 60.0


def make_spec(exp_dir: Path, trial_id: int, segment: int = 0, attempt: int = 0,
              **hparams) -> SegmentSpec:
    return SegmentSpec(
        exp_dir=str(exp_dir), experiment="t", trial_id=trial_id, segment=segment,
        attempt=attempt, length=1, hparams=hparams, entrypoint="unused:unused",
        context_dir=str(exp_dir), metric="loss",
    )


def make_backend(exp_dir: Path, fn: Callable = slurm_jobs.record, poll: float = 0.5,
                 **slurm) -> SlurmBackend:
    slurm.setdefault("timeout_min", 5)
    slurm.setdefault("setup", SETUP)
    for k, v in partition_options().items():  # the cluster's default, or the one named
        slurm.setdefault(k, v)
    return SlurmBackend(str(exp_dir), slurm, fn=fn, poll_min_interval_s=poll)


def wait_states(backend: SlurmBackend, ids: Sequence[str],
                done: Callable[[JobState], bool] = lambda s: s.terminal,
                timeout: float = TERMINAL_WAIT_S) -> dict[str, JobState]:
    end = time.time() + timeout
    while True:
        states = backend.states(ids)
        if all(done(s) for s in states.values()) or time.time() > end:
            return states
        time.sleep(0.2)


def wait_file(path: Path, timeout: float) -> bool:
    end = time.time() + timeout
    while not path.exists():
        if time.time() > end:
            return False
        time.sleep(0.2)
    return True


def read_out(exp_dir: Path, spec: SegmentSpec) -> dict:
    return json.loads((exp_dir / "out" / f"{spec.key}.json").read_text())


def sacct_rows(base_id: str) -> list[list[str]]:
    """sacct rows (JobID, JobName, State) for a job, retried through accounting lag."""
    end = time.time() + 15
    while True:
        res = subprocess.run(["sacct", "-X", "-n", "--parsable2", "-o", "JobID,JobName,State",
                              "-j", base_id], capture_output=True, text=True, check=True)
        rows = [line.split("|") for line in res.stdout.splitlines() if line]
        if all("[" not in r[0] for r in rows) and rows or time.time() > end:
            return rows
        time.sleep(0.5)


# ------------------------------------------------------------------------------ no cluster


def test_parse_slurm_state():
    assert parse_slurm_state("COMPLETED", "0:0") is JobState.COMPLETED
    assert parse_slurm_state("COMPLETED", "2:0") is JobState.FAILED
    assert parse_slurm_state("FAILED", "1:0") is JobState.FAILED
    assert parse_slurm_state("CANCELLED by 0") is JobState.CANCELLED
    assert parse_slurm_state("OUT_OF_ME+") is JobState.OUT_OF_MEMORY
    assert parse_slurm_state("OUT_OF_MEMORY") is JobState.OUT_OF_MEMORY
    assert parse_slurm_state("TIMEOUT") is JobState.TIMEOUT
    assert parse_slurm_state("PREEMPTED") is JobState.PREEMPTED
    assert parse_slurm_state("NODE_FAIL") is JobState.NODE_FAIL
    for s in ("PENDING", "REQUEUED", "RESIZING", "SUSPENDED"):
        assert parse_slurm_state(s) is JobState.PENDING
    for s in ("RUNNING", "COMPLETING"):
        assert parse_slurm_state(s) is JobState.RUNNING
    assert parse_slurm_state("") is JobState.UNKNOWN
    assert parse_slurm_state("WHATEVER") is JobState.UNKNOWN


def test_expand_job_ids():
    assert expand_job_ids("12") == ["12"]
    assert expand_job_ids("12_3") == ["12_3"]
    assert expand_job_ids("12_[4-6,9%2]") == ["12_4", "12_5", "12_6", "12_9"]
    assert expand_job_ids("12_[7]") == ["12_7"]
    assert expand_job_ids("12.batch") == [] and expand_job_ids("12+1") == []


def test_executor_parameters():
    p = executor_parameters({"timeout_min": 1.5, "mem_gb": 4, "tasks_per_node": 2,
                             "gpus_per_node": 1, "partition": None, "exclude": ["a", "b"],
                             "additional_parameters": {"mail-type": "END"}})
    assert p == {"time": 2, "mem": "4GB", "ntasks_per_node": 2, "gpus_per_node": 1,
                 "exclude": "a,b", "additional_parameters": {"mail-type": "END"}}
    with pytest.raises(ValueError, match="bogus"):
        executor_parameters({"bogus": 1})


def _slurm_cfg(**slurm):
    from asha_hpc.config import parse_config

    return parse_config({
        "name": "x", "entrypoint": "unused:train", "backend": "slurm", "slurm": slurm,
        "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 4, "max_trials": 2},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}}}, "/tmp")


def test_excluded_nodes_join_the_configured_exclude():
    cfg = _slurm_cfg(exclude="gpu[01-02]", per_rung=[{}, {"exclude": "gpu[09-10]"}])
    assert SlurmBackend.excluding(cfg, {}, set()) == {}
    assert SlurmBackend.excluding(cfg, {"mem_gb": 4}, {"gpu17", "gpu03"}) == \
        {"mem_gb": 4, "exclude": "gpu[01-02],gpu03,gpu17"}
    rung = SlurmBackend.rung_resources(cfg, 1)
    over = SlurmBackend.excluding(cfg, rung, {"gpu17"})
    assert over["exclude"] == "gpu[09-10],gpu17"  # the rung's own list, not the section's
    assert executor_parameters(over)["exclude"] == "gpu[09-10],gpu17"
    assert SlurmBackend.excluding(_slurm_cfg(), {}, {"gpu17"}) == {"exclude": "gpu17"}


def test_trial_jobs_are_not_requeueable(tmp_path: Path):
    """A job Slurm requeued would run its attempt again next to the master's resubmission."""
    b = SlurmBackend(str(tmp_path), {"additional_parameters": {"mail-type": "END"}})
    assert b.params["additional_parameters"] == {"mail-type": "END", "no_requeue": True}
    for explicit in ({"requeue": True}, {"no-requeue": True}):
        b = SlurmBackend(str(tmp_path), {"additional_parameters": explicit})
        assert b.params["additional_parameters"] == explicit


class _FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _fake_backend(tmp_path: Path, outputs: dict[str, list[tuple]]) -> SlurmBackend:
    """A backend whose sacct/squeue answers come from ``outputs[cmd]`` (rc, stdout, stderr),
    one per call (the last one repeats), on a fake clock."""
    b = SlurmBackend(str(tmp_path), {}, fn=slurm_jobs.record, poll_min_interval_s=10)
    b.clock = _FakeClock()

    def run(kind, cmd):
        b.stats[kind] = b.stats.get(kind, 0) + 1
        queue = outputs[cmd[0]]
        rc, out, err = queue.pop(0) if len(queue) > 1 else queue[0]
        return subprocess.CompletedProcess(cmd, rc, out, err)

    b._run = run  # type: ignore[assignment]
    return b


def test_states_parsing_and_rate_limit_without_cluster(tmp_path: Path):
    b = _fake_backend(tmp_path, {
        "sacct": [(0, "7|RUNNING|0:0\n8|PENDING|0:0\n", ""),
                  (0, "7|CANCELLED by 0|0:0\n8_0|COMPLETED|0:0\n8_[1-2%2]|PENDING|0:0\n"
                   "9|OUT_OF_ME+|0:125\n", "")],
        "squeue": [(0, "", "")],
    })
    ids = ["7", "8_0", "8_1", "8_2", "9"]
    first = b.states(ids)
    # the plain "8|PENDING" row of a just-submitted array stands for its tasks
    assert first == {"7": JobState.RUNNING, "8_0": JobState.PENDING, "8_1": JobState.PENDING,
                     "8_2": JobState.PENDING, "9": JobState.UNKNOWN}
    for _ in range(100):  # cached until poll_min_interval_s has passed
        assert b.states(ids) == first
    assert b.stats["sacct"] == 1
    b.clock.sleep(10)
    assert b.states(ids) == {"7": JobState.CANCELLED, "8_0": JobState.COMPLETED,
                             "8_1": JobState.PENDING, "8_2": JobState.PENDING,
                             "9": JobState.OUT_OF_MEMORY}
    assert b.stats["sacct"] == 2
    b.clock.sleep(10)
    b.states(["7", "9"])  # all terminal: no call, even though 8_1 and 8_2 are pending
    assert b.stats["sacct"] == 2


def test_the_node_a_job_ran_on_comes_from_sacct_without_cluster(tmp_path: Path):
    b = _fake_backend(tmp_path, {
        "sacct": [(0, "7|FAILED|1:0|gpu17\n8|PENDING|0:0|None assigned\n"
                      "9|RUNNING|0:0|gpu[01-02]\n10_[0-1]|RUNNING|0:0|gpu03.cluster\n", "")],
        "squeue": [(0, "", "")],
    })
    b.states(["7", "8", "9", "10_0", "10_1"])
    assert b.node_of("7") == "gpu17"
    assert b.node_of("8") is None  # not started
    assert b.node_of("9") is None  # several nodes: none to blame alone
    assert b.node_of("10_0") == b.node_of("10_1") == "gpu03.cluster"
    assert b.node_of("11") is None  # never seen


@pytest.mark.parametrize("state,log,node", [
    ("FAILED|1:0", "srun: error: gpu17: task 1: Killed\nsrun: launch/slurm: _step_signal: "
                   "Terminating StepId=9.0\nsrun: error: gpu03: task 0: Exited with exit code 1\n",
     "gpu17"),
    ("FAILED|1:0", "srun: error: gpu01: tasks 0-3: Terminated\n"
                   "srun: error: gpu02: tasks 4-7: Exited with exit code 134\n", "gpu02"),
    ("FAILED|1:0", "Traceback (most recent call last):\nValueError: x\n", None),
    ("TIMEOUT|0:0", "srun: error: gpu17: task 1: Killed\n", None),  # the time limit's kill
    ("RUNNING|0:0", "srun: error: gpu17: task 1: Killed\n", None),  # not over yet
])
def test_a_job_of_several_nodes_is_held_against_the_node_whose_task_failed_first(
        tmp_path: Path, state, log, node):
    """srun names the task that ended badly first (the others follow as the step is ended
    with --kill-on-bad-exit); a time limit's or a cancel's kill blames no node."""
    b = _fake_backend(tmp_path, {"sacct": [(0, f"9|{state}|gpu[03,17]\n", "")],
                                 "squeue": [(0, "", "")]})
    (tmp_path / "jobs" / "9").mkdir(parents=True)
    (tmp_path / "jobs" / "9" / "9_0_log.err").write_text("some output\n" + log)
    b.states(["9"])
    assert b.node_of("9") == node


def test_pending_reasons_come_from_squeue_without_cluster(tmp_path: Path):
    """States from sacct (an array's plain row standing for its tasks), squeue where sacct
    does not show a job; why pending jobs pend from squeue alone (sacct's Reason is the one the
    job had at submission: a job that waits for Resources shows None there), asked at most
    every reasons_interval_s; reasons only for jobs pending now."""
    b = _fake_backend(tmp_path, {
        "sacct": [(0, "7|PENDING|0:0\n8|PENDING|0:0\n9|RUNNING|0:0\n", ""),
                  (0, "7|RUNNING|0:0\n8_0|PENDING|0:0\n9|RUNNING|0:0\n", "")],
        "squeue": [(0, "10|PENDING|QOSMaxWallDurationPerJobLimit\n", ""),  # 10: not in sacct
                   (0, "7|PENDING|Priority\n8_0|PENDING|JobHeldUser\n8_1|PENDING|JobHeldUser\n", ""),
                   (0, "8_1|PENDING|JobHeldUser\n10|PENDING|QOSMaxWallDurationPerJobLimit\n", "")],
    })
    b.submit_grace_s = 0  # 10 is missing from sacct: squeue is asked
    ids = ["7", "8_0", "8_1", "9", "10"]
    assert b.states(ids)["8_1"] == JobState.PENDING
    got = {j: (p.reason, p.kind) for j, p in b.pending(ids).items()}
    assert got == {"7": ("Priority", "waits"), "8_0": ("JobHeldUser", "stuck"),
                   "8_1": ("JobHeldUser", "stuck"),
                   "10": ("QOSMaxWallDurationPerJobLimit", "stuck")}
    assert "`scontrol release 8_1` lets it start" in b.pending(["8_1"])["8_1"].means
    assert b.stats["squeue"] == 2
    b.clock.sleep(10)
    b.states(ids)
    assert set(b.pending(ids)) == {"8_0", "8_1", "10"}  # 7 runs now; the others keep theirs
    assert b.stats["squeue"] == 3  # 8_1 and 10 (not in sacct); no reasons before 30 s


def test_qos_limits_are_read_once_where_enforced_without_cluster(tmp_path: Path):
    b = _fake_backend(tmp_path, {
        "sinfo": [(0, "gpu* 2-00:00:00\ndebug 30:00\n", "")],
        "scontrol": [(0, "AccountingStorageEnforce = associations,limits\nMaxArraySize = 1001\n", ""),
                     (0, "PartitionName=gpu QoS=N/A MaxTime=2-00:00:00\n", "")],
        "sacctmgr": [(0, "normal||\nshort|04:00:00|\n", ""),
                     (0, "lab|||short|normal,short\n", ""), (0, "lab\n", "")],
    })
    b.slurm["qos"] = None
    assert b.time_cap() == TimeCap(240, "QOS short MaxWall")  # the association's default QOS
    assert b.time_cap("debug") == TimeCap(30, "partition debug MaxTime")
    assert b.time_cap(qos="normal") == TimeCap(2880, "partition gpu MaxTime")
    assert b.stats["sacctmgr"] == 3 and b.stats["scontrol"] == 2 and b.stats["sinfo"] == 1
    b.forget_limits()  # a job pends for its time limit: read again
    b.time_cap()
    assert b.stats["scontrol"] == 3 and b.stats["sinfo"] == 2


def test_unreadable_qos_limits_fall_back_to_maxtime_and_are_said_once(tmp_path: Path, caplog):
    b = _fake_backend(tmp_path, {
        "sinfo": [(0, "gpu* 1-00:00:00\n", "")],
        "scontrol": [(0, "AccountingStorageEnforce = limits\n", "")],
        "sacctmgr": [(1, "", "sacctmgr: error: Problem talking to the database: Connection refused")],
    })
    with caplog.at_level(logging.DEBUG, logger="asha_hpc"):
        for _ in range(3):
            assert b.time_cap() == TimeCap(1440, "partition gpu MaxTime")
            b.clock.sleep(301)  # asked again every 5 minutes
    assert b.stats["sacctmgr"] == 3
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1 and "Problem talking to the database" in warned[0].getMessage()


def test_no_qos_limits_where_the_cluster_does_not_enforce_them_without_cluster(tmp_path: Path):
    b = _fake_backend(tmp_path, {"sinfo": [(0, "gpu* infinite\n", "")],
                                 "scontrol": [(0, "AccountingStorageEnforce = associations\n", "")],
                                 "sacctmgr": [(0, "short|04:00:00|\n", "")]})
    assert b.time_cap(qos="short") == TimeCap(None)
    assert b.stats.get("sacctmgr", 0) == 0


def test_lost_and_unknown_without_cluster(tmp_path: Path):
    b = _fake_backend(tmp_path, {
        "sacct": [(1, "", "sacct: error: Slurm accounting storage is disabled")],
        "squeue": [(0, "5|RUNNING\n", ""), (1, "", "slurm_load_jobs error: Invalid job id specified")],
    })
    b.lost_grace_s = 30
    assert b.states(["5"]) == {"5": JobState.RUNNING}
    assert b.stats["sacct_errors"] == 1
    for _ in range(3):  # gone from squeue: still RUNNING until the grace period has passed
        b.clock.sleep(10)
        assert b.states(["5"]) == {"5": JobState.RUNNING}
    b.clock.sleep(10)
    assert b.states(["5"]) == {"5": JobState.LOST}
    assert b.stats["sacct"] == 1  # sacct is not retried for sacct_retry_s
    # squeue itself failing (controller down): states are kept, nothing becomes LOST
    b2 = _fake_backend(tmp_path, {"sacct": [(1, "", "down")], "squeue": [(1, "", "timeout")]})
    for _ in range(20):
        assert b2.states(["6"]) == {"6": JobState.UNKNOWN}
        b2.clock.sleep(10)



@pytest.mark.parametrize("log,state", [
    ("", JobState.LOST),  # no log file at all: it never started
    ("Traceback (most recent call last):\nValueError: bad\n", JobState.ENDED),
    ("slurmstepd: error: Detected 1 oom_kill event in StepId=5.batch. Some of your processes "
     "may have been killed by the cgroup out-of-memory handler.\n", JobState.OUT_OF_MEMORY),
    ("slurmstepd: error: Detected 2 oom-kill event(s) in StepId=5.0. Some of your processes "
     "may have been killed by the cgroup out-of-memory handler.\n", JobState.OUT_OF_MEMORY),
    ("srun: error: gpu17: task 0: Out Of Memory\n", JobState.OUT_OF_MEMORY),
], ids=["no log", "an error", "oom_kill", "oom-kill events", "srun"])
def test_without_accounting_a_job_killed_for_memory_is_told_by_its_log(tmp_path: Path, log, state):
    """sacct silent, squeue has forgotten the job: its log says how it ended where Slurm
    wrote that it killed a task for memory (the trial's own fault, as sacct's OUT_OF_MEMORY)."""
    b = _fake_backend(tmp_path, {"sacct": [(1, "", "sacct: error: accounting storage is disabled")],
                                 "squeue": [(0, "", "")]})
    b.lost_grace_s = 30
    if log:
        (tmp_path / "jobs" / "5").mkdir(parents=True)
        (tmp_path / "jobs" / "5" / "5_0_log.out").write_text("")
        (tmp_path / "jobs" / "5" / "5_0_log.err").write_text("epoch 1\n" + log)
    b.states(["5"])
    b.clock.sleep(40)
    assert b.states(["5"]) == {"5": state}
    assert state.counts_as_restart == (state is JobState.OUT_OF_MEMORY)


# ------------------------------------------------------------------------------ real cluster


@pytest.mark.slurm
def test_single_submit_completes_and_reattaches(tmp_exp_dir: Path):
    b = make_backend(tmp_exp_dir)
    spec = make_spec(tmp_exp_dir, 1)
    [jid] = b.submit([spec])
    assert jid.isdigit()
    assert b.states([jid])[jid] in (JobState.PENDING, JobState.RUNNING, JobState.UNKNOWN)
    assert wait_states(b, [jid])[jid] is JobState.COMPLETED
    info = read_out(tmp_exp_dir, spec)
    assert info["SLURM_JOB_ID"] == jid and info["SLURM_JOB_NAME"] == spec.job_name
    assert (tmp_exp_dir / "jobs" / jid).is_dir()  # submitit's folder <exp>/jobs/%j
    # a fresh backend (restarted master) looks up ids it never submitted
    b2 = make_backend(tmp_exp_dir)
    assert b2.states([jid]) == {jid: JobState.COMPLETED}
    assert b2.stats["sacct"] == 1


@pytest.mark.slurm
def test_a_job_that_excludes_every_node_is_refused_as_having_no_node(tmp_exp_dir: Path):
    """What the master does with a node it excluded (master/nodes.py) reaches sbatch: on this
    one-node cluster, a job that excludes the node is refused at once, and the refusal says
    that no node is left (the master then sends such jobs to any node)."""
    node = subprocess.run(["sinfo", "-h", "-o", "%N"], capture_output=True, text=True,
                          check=True).stdout.split()[0]
    b = make_backend(tmp_exp_dir)
    spec = make_spec(tmp_exp_dir, 1)
    spec = SegmentSpec(**dict(spec.__dict__, resources=SlurmBackend.excluding(
        _slurm_cfg(), spec.resources, {node})))
    with pytest.raises(SubmitError) as e:
        b.submit([spec])
    assert e.value.no_node and not e.value.transient
    assert "Requested node configuration is not available" in str(e.value)
    # the same job without the exclusion runs
    [jid] = b.submit([make_spec(tmp_exp_dir, 1)])
    assert wait_states(b, [jid])[jid] is JobState.COMPLETED


@pytest.mark.slurm
def test_array_submission_and_find(tmp_exp_dir: Path):
    b = make_backend(tmp_exp_dir)
    specs = [make_spec(tmp_exp_dir, i) for i in range(3)]
    ids = b.submit(specs)
    base = ids[0].split("_")[0]
    assert ids == [f"{base}_{i}" for i in range(3)]
    assert b.stats["sbatch"] == 1
    # find() maps each spec to its task, from the manifest (no scheduler call) ...
    assert [b.find(s) for s in specs] == ids
    # ... and by the array's name when the manifest lacks the id (died right after sbatch)
    [manifest] = (tmp_exp_dir / "jobs" / "batches").glob("*.json")
    record = json.loads(manifest.read_text())
    manifest.write_text(json.dumps(dict(record, job_id=None)))
    assert b.find(specs[2]) == ids[2]

    states = wait_states(b, ids)
    assert set(states.values()) == {JobState.COMPLETED}, states
    rows = sacct_rows(base)
    assert sorted(r[0] for r in rows) == sorted(ids)  # one array, three tasks
    assert {r[1] for r in rows} == {record["name"]}  # one name for the whole array
    for spec, jid in zip(specs, ids):
        info = read_out(tmp_exp_dir, spec)
        assert f"{info['SLURM_ARRAY_JOB_ID']}_{info['SLURM_ARRAY_TASK_ID']}" == jid

    # chunks below MaxArraySize: 3 specs with MaxArraySize=3 -> array of 2 + single
    b.max_array_size = 3
    more = [make_spec(tmp_exp_dir, i) for i in range(10, 13)]
    ids2 = b.submit(more)
    assert len({i.split("_")[0] for i in ids2}) == 2
    assert ids2[0].endswith("_0") and ids2[1].endswith("_1") and "_" not in ids2[2]
    assert b.find(more[2]) == ids2[2]  # the single one: by job name
    assert set(wait_states(b, ids2).values()) == {JobState.COMPLETED}


@pytest.mark.slurm
def test_gpu_job_sees_cuda_visible_devices(tmp_exp_dir: Path):
    b = make_backend(tmp_exp_dir, gpus_per_node=1)
    spec = make_spec(tmp_exp_dir, 1)
    [jid] = b.submit([spec])
    assert wait_states(b, [jid])[jid] is JobState.COMPLETED
    cvd = read_out(tmp_exp_dir, spec)["CUDA_VISIBLE_DEVICES"]
    assert cvd is not None and cvd.isdigit(), cvd


@pytest.mark.slurm
def test_cancel_and_failure(tmp_exp_dir: Path):
    b = make_backend(tmp_exp_dir)
    sleeper = make_spec(tmp_exp_dir, 1, sleep=60)
    failer = make_spec(tmp_exp_dir, 2, fail=True)
    [sid] = b.submit([sleeper])
    [fid] = b.submit([failer])
    assert wait_states(b, [sid], lambda s: s is JobState.RUNNING)[sid] is JobState.RUNNING
    b.cancel([sid, "999999999"])  # unknown ids are ignored
    assert b.stats["scancel"] == 1
    states = wait_states(b, [sid, fid])
    assert states == {sid: JobState.CANCELLED, fid: JobState.FAILED}
    assert states[fid].counts_as_restart and not states[sid].counts_as_restart
    node = subprocess.run(["sinfo", "-h", "-o", "%N"], capture_output=True, text=True,
                          check=True).stdout.split()[0]
    assert b.node_of(fid) == b.node_of(sid) == node  # where they ran, for master/nodes.py


@pytest.mark.slurm
def test_submit_error_removes_orphan_pickles(tmp_exp_dir: Path):
    """What submitit wrote for a refused sbatch goes; what a job that went through left in
    ``jobs/`` (its sbatch file's link, its logs) stays."""
    good = make_backend(tmp_exp_dir)
    [ok] = good.submit([make_spec(tmp_exp_dir, 9)])
    assert wait_states(good, [ok])[ok] is JobState.COMPLETED
    jobs = tmp_exp_dir / "jobs"
    kept = sorted(p.name for p in jobs.iterdir() if not p.is_dir())
    assert f"{ok}_0_log.out" in kept and any(n.startswith(".submission_file_") for n in kept)
    b = make_backend(tmp_exp_dir, partition="no_such_partition")
    for n in (1, 3):  # single sbatch and array
        with pytest.raises(SubmitError, match="partition") as e:
            b.submit([make_spec(tmp_exp_dir, i) for i in range(n)])
        assert not e.value.transient  # the job itself is refused: the config must change
    assert sorted(p.name for p in jobs.iterdir() if not p.is_dir()) == kept
    assert list((tmp_exp_dir / "jobs" / "batches").glob("*.json")) == []
    assert b.find(make_spec(tmp_exp_dir, 0)) is None


@pytest.mark.slurm
def test_find_single_submission(tmp_exp_dir: Path):
    b = make_backend(tmp_exp_dir)
    spec = make_spec(tmp_exp_dir, 7, segment=2, attempt=1)
    [jid] = b.submit([spec])
    b2 = make_backend(tmp_exp_dir)  # the restarted master
    assert b2.find(spec) == jid
    assert b2.find(make_spec(tmp_exp_dir, 7, segment=2, attempt=2)) is None
    assert wait_states(b2, [jid])[jid] is JobState.COMPLETED
    assert b2.find(spec) == jid  # still found once finished


@pytest.mark.slurm
def test_squeue_fallback_when_sacct_fails(tmp_exp_dir: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sacct").write_text(
        "#!/bin/sh\necho 'sacct: error: Slurm accounting storage is disabled' >&2\nexit 1\n")
    (shim / "sacct").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    b = make_backend(tmp_exp_dir)
    b.lost_grace_s = 3.0
    spec = make_spec(tmp_exp_dir, 1, sleep=120)
    [jid] = b.submit([spec])
    assert wait_states(b, [jid], lambda s: s is JobState.RUNNING)[jid] is JobState.RUNNING
    assert wait_file(tmp_exp_dir / "out" / f"{spec.key}.json", 30)
    # kill the job's process outright: the job ends, squeue -t all still shows its end state
    os.kill(read_out(tmp_exp_dir, spec)["pid"], signal.SIGKILL)
    t0 = time.time()
    state = wait_states(b, [jid], timeout=30)[jid]
    assert state.terminal and state is not JobState.COMPLETED, state
    assert time.time() - t0 < 30
    # an id neither sacct nor squeue knows becomes LOST after the grace period
    ghost = "99999999"
    assert not b.states([ghost])[ghost].terminal
    assert wait_states(b, [ghost], timeout=15)[ghost] is JobState.LOST
    # sacct was tried once, then left alone for sacct_retry_s
    assert b.stats["sacct"] == 1 and b.stats["sacct_errors"] == 1
    assert b.stats["squeue"] >= 2


@pytest.mark.slurm
def test_scheduler_calls_are_rate_limited(tmp_exp_dir: Path):
    poll = 2.0
    b = make_backend(tmp_exp_dir, poll=poll)
    ids = b.submit([make_spec(tmp_exp_dir, i, sleep=20) for i in range(3)])
    t0 = time.time()
    n = 0
    while time.time() - t0 < 6.0:
        b.states(ids)
        n += 1
        if n == 50:
            ids += b.submit([make_spec(tmp_exp_dir, 9, sleep=20)])  # does not reset the pace
        time.sleep(0.01)
    elapsed = time.time() - t0
    b.cancel(ids)
    assert n > 100
    max_polls = int(elapsed / poll) + 1
    assert b.stats["polls"] <= max_polls
    assert b.stats["sacct"] <= max_polls
    assert b.stats["sacct"] + b.stats["squeue"] <= 2 * max_polls


@pytest.mark.slurm
@pytest.mark.slow
def test_timeout_job_gets_usr2_before_its_limit(tmp_exp_dir: Path):
    """timeout_min=1: Slurm sends USR2 signal_delay_s (up to 60 s
    earlier) before the limit; the job function's own handler (not submitit's) receives it.
    slurmctld looks at signals and limits in one periodic pass (about every 30 s): with the
    signal due 30 s before a 1-minute limit, a pass made late under load found the job past
    its limit and sent SIGTERM first, so the signal is due 50 s before it here."""
    b = make_backend(tmp_exp_dir, fn=slurm_jobs.wait_for_signal, timeout_min=1,
                     signal_delay_s=50)
    spec = make_spec(tmp_exp_dir, 1, max_s=120)
    [jid] = b.submit([spec])
    out = tmp_exp_dir / "out"
    try:
        assert wait_file(out / f"{spec.key}.started", 30)
        started = float((out / f"{spec.key}.started").read_text().split()[0])
        assert wait_file(out / f"{spec.key}.signals", 70), "no SIGUSR2 within 70 s"
        got = time.time() - started
        lines = (out / f"{spec.key}.signals").read_text().split()
        assert lines[0] == "SIGUSR2"
        assert got < 60.0  # before the time limit
    finally:
        b.cancel([jid])
    assert wait_states(b, [jid])[jid] in (JobState.CANCELLED, JobState.TIMEOUT)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300) | st.lists(st.sampled_from([
    "srun: error: gpu17: task 1: Killed", "srun: error: gpu01: tasks 0-3: Terminated",
    "srun: error: : task 1: Killed", "slurmstepd: error: Detected 1 oom_kill event",
    "srun: error: gpu[01-02]: task 0: Exited with exit code 1", "Traceback", "\x00\xff",
    ]), max_size=6).map("\n".join))
def test_any_job_log_reads_as_a_node_name_or_none_and_never_raises(tmp_path_factory, text):
    """A job's stderr holds whatever the user's code printed: the readers of srun's and
    slurmstepd's lines take any text, and a node they name is a plain name sbatch accepts."""
    from asha_hpc.backends.slurm import first_failed_task_node, killed_for_memory

    err = tmp_path_factory.mktemp("log") / "1_0_log.err"
    err.write_bytes(text.encode("utf-8", "surrogatepass"))
    node = first_failed_task_node(err)
    assert node is None or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", node)
    assert isinstance(killed_for_memory(err), bool)


@pytest.mark.slurm
def test_jobs_that_start_before_the_master_made_their_folders_run(tmp_exp_dir: Path,
                                                                   monkeypatch):
    """submitit makes a job's folder ``jobs/<id>/`` once sbatch has answered with the id, and
    Slurm does not make a log's folder: on an idle partition a job (or every task of an array,
    started by the backfill in the same second) can start before a loaded master gets there.
    Its logs must not be in that folder, or the job dies before its code runs. A master slowed
    down right after sbatch answers: every job still runs, and its logs are found."""
    import submitit.core.utils as submitit_utils

    move = submitit_utils.JobPaths.move_temporary_file

    def late(self, tmp_path, name, *args, **kwargs):
        if name == "submission_file":  # the first file submitit moves once sbatch answered
            time.sleep(3)
        return move(self, tmp_path, name, *args, **kwargs)

    monkeypatch.setattr(submitit_utils.JobPaths, "move_temporary_file", late)
    b = make_backend(tmp_exp_dir)
    specs = [make_spec(tmp_exp_dir, i) for i in range(4)]
    ids = b.submit(specs[:3]) + b.submit(specs[3:])
    assert "_" in ids[0] and "_" not in ids[3]
    states = wait_states(b, ids, timeout=120)
    assert set(states.values()) == {JobState.COMPLETED}, states
    for spec, jid in zip(specs, ids):
        assert read_out(tmp_exp_dir, spec)["SLURM_JOB_NAME"]
        out, err = SlurmBackend.log_files(tmp_exp_dir / "jobs", jid)
        assert out is not None and err is not None, (jid, sorted(os.listdir(tmp_exp_dir / "jobs")))


class _MasterKilled(BaseException):
    """What a SIGKILL of the master would leave: the code after the raise never runs."""


@pytest.mark.slurm
def test_jobs_a_killed_master_never_took_over_are_cancelled_by_the_next(tmp_path, monkeypatch):
    """A master killed between sbatch's answer and submitit moving the pickles leaves jobs
    that can only wait 60 s for a pickle and fail, holding a node meanwhile. The next master
    finds none of them as its own and cancels them (a single job and an array's tasks); a job
    of the same name submitted from another experiment folder runs on."""
    import submitit.core.utils as submitit_utils

    exp, other = tmp_path / "exp", tmp_path / "other"
    elsewhere = make_spec(other, 0)
    neighbour = make_backend(other).submit([elsewhere])[0]  # same job name, another folder
    move = submitit_utils.JobPaths.move_temporary_file

    def killed(self, tmp, name, *args, **kwargs):
        if name == "submission_file":  # sbatch has answered; nothing of the job is moved yet
            raise _MasterKilled()
        return move(self, tmp, name, *args, **kwargs)

    monkeypatch.setattr(submitit_utils.JobPaths, "move_temporary_file", killed)
    specs = [make_spec(exp, i) for i in range(4)]
    dying = make_backend(exp)
    for chunk in (specs[:1], specs[1:]):  # one job, then an array of three
        with pytest.raises(_MasterKilled):
            dying.submit(chunk)
    monkeypatch.setattr(submitit_utils.JobPaths, "move_temporary_file", move)
    assert [p.name for p in (exp / "jobs").iterdir() if p.name.endswith(".pkl")]

    resumed = make_backend(exp)
    assert [resumed.find(s) for s in specs] == [None] * 4
    strays = resumed.cancel_strays(specs)
    assert len(strays) == 4 and neighbour not in strays, strays
    assert len({s.partition("_")[0] for s in strays}) == 2 and \
        sum("_" in s for s in strays) == 3, strays
    # accounting's word (an array cancelled before its tasks started is one plain row), once
    # it has caught up with the cancel
    deadline = time.time() + 30
    while True:
        rows = [r for base in sorted({s.partition("_")[0] for s in strays})
                for r in sacct_rows(base)]
        if rows and all(r[2].startswith("CANCELLED") for r in rows) or time.time() > deadline:
            break
        time.sleep(0.5)
    assert rows and all(r[2].startswith("CANCELLED") for r in rows), rows
    # the sbatch files and pickles submitit never moved are gone; the jobs' logs stay
    assert not [p.name for p in (exp / "jobs").iterdir()
                if p.name.endswith(".pkl") or p.name.startswith(".submission_file_")]
    assert resumed.cancel_strays(specs) == []
    assert wait_states(resumed, [neighbour])[neighbour] == JobState.COMPLETED

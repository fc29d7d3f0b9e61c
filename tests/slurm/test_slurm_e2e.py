"""End to end on the real local Slurm cluster (``bash tools/local_slurm.sh start``): the real
master (a subprocess, or a Slurm job itself), real array jobs, real signals, small budgets.

Each test uses its own experiment name (job names are ``asha-<name>-...``) so that ``sacct`` can
be filtered to its jobs; whatever a test leaves queued is cancelled at its end.
"""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from slurm_helpers import (
    RUN_TIMEOUT_S,
    cli,
    env_with,
    exp_name,
    final_state,
    job_keys,
    journal,
    make_experiment,
    model_log,
    progress,
    sacct_jobs,
    start_master,
    status_json,
    submitted_keys,
    wait_until,
)

pytestmark = pytest.mark.slurm

# ------------------------------------------------------------------------------ tests


def test_full_search_uses_arrays(tmp_path, cleanup):
    cfg_path = make_experiment(tmp_path, "e2e1")
    name = exp_name(cfg_path)
    cleanup[0].append(name)
    exp = tmp_path / "run"
    t0 = time.time()
    r = cli("run", cfg_path, "--exp-dir", exp)
    assert "best trial" in r.stderr
    cfg, st, recs = final_state(exp)
    assert st.lifecycle == "completed"
    assert st.counts()["total"] == 6 and st.counts()["failed"] == 0
    assert all(t.restarts == 0 and t.infra_retries == 0 for t in st.trials.values())
    status = status_json(exp)
    assert status["state"] == "completed"
    assert status["trials"]["completed"] == 6 and status["trials"]["running"] == 0

    subs = submitted_keys(recs)
    results = [r for r in recs if r["kind"] == "result"]
    assert len(results) == len(subs) and all(r["status"] == "completed" for r in results)
    # the first burst (max_concurrent_trials) went out as one array
    assert sum(1 for j in subs.values() if "_" in j) >= 3
    rows = sacct_jobs(name, t0, expect=subs.values())
    keyed = job_keys(exp, name, rows)
    arrays = [r for r in rows if re.fullmatch(r"asha-" + re.escape(name) + r"-batch-[0-9a-f]{12}",
                                              r["name"])]
    assert arrays and all(re.fullmatch(r"\d+_\d+", r["id"]) for r in arrays)
    # exactly one job per journaled submission, each COMPLETED, with the journaled id
    assert sorted((k, j) for k, j, _ in keyed) == sorted(subs.items())
    assert {s for _, _, s in keyed} == {"COMPLETED"}
    # every segment ran where the journal says (the model logs its job id)
    ran = {(e["key"], e["job"]) for e in model_log(exp) if e["event"] == "start"}
    assert ran == set(subs.items())
    # promotions resumed from checkpoints
    assert any(e["epoch"] > 0 for e in model_log(exp) if e["event"] == "start")


def test_gpu_request_sets_cuda_visible_devices(tmp_path, cleanup):
    cfg_path = make_experiment(
        tmp_path, "e2e2", searcher={"name": "random", "max_trials": 3, "max_concurrent_trials": 3,
                                    "max_length": 6},
        hp={"sleep": 0.4}, slurm={"gpus_per_node": 1})
    cleanup[0].append(exp_name(cfg_path))
    exp = tmp_path / "run"
    cli("run", cfg_path, "--exp-dir", exp)
    _, st, _ = final_state(exp)
    assert st.lifecycle == "completed"
    starts = [e for e in model_log(exp) if e["event"] == "start"]
    ends = {e["key"]: e["time"] for e in model_log(exp) if e["event"] == "end"}
    assert len(starts) == 3
    for e in starts:
        assert e["cvd"] is not None and re.fullmatch(r"\d", e["cvd"]), e  # one GPU each
        assert e["job_gpus"] is not None
    # jobs running at the same time hold different (fake) GPUs
    spans = [(e["time"], ends[e["key"]], e["job_gpus"]) for e in starts]
    overlapping = [(a, b) for i, a in enumerate(spans) for b in spans[i + 1:]
                   if a[0] < b[1] and b[0] < a[1]]
    assert overlapping, spans
    assert all(a[2] != b[2] for a, b in overlapping), spans


def test_scancel_of_a_running_trial_is_retried_from_its_checkpoint(tmp_path, cleanup):
    """Plain scancel sends SIGTERM first (then SIGKILL after KillWait): the job sees
    should_stop(), checkpoints, returns and publishes "interrupted"; the master retries the
    segment from that checkpoint without counting a restart."""
    cfg_path = make_experiment(
        tmp_path, "e2e3", searcher={"name": "random", "max_trials": 2, "max_concurrent_trials": 2,
                                    "max_length": 24},
        hp={"sleep": 0.25}, result_grace_s=5)
    name = exp_name(cfg_path)
    cleanup[0].append(name)
    exp = tmp_path / "run"
    t0 = time.time()
    master = start_master("run", cfg_path, "--exp-dir", exp)
    cleanup[1].append(master)
    p = wait_until(lambda: (progress(exp, 1) or {}).get("epoch", 0) >= 4 and progress(exp, 1),
                   90, "trial 1 to train 4 epochs")
    assert p["key"] == "t00001-s000-a00"
    subprocess.run(["scancel", p["job"]], check=True)
    _, err = master.communicate(timeout=RUN_TIMEOUT_S)
    assert master.returncode == 0, err[-3000:]
    _, st, recs = final_state(exp)
    assert st.lifecycle == "completed"

    [res] = [r for r in recs if r["kind"] == "result" and r["trial"] == 1 and r["attempt"] == 0]
    assert res["status"] == "interrupted" and res["stop_reason"] == "SIGTERM"
    assert not [r for r in recs if r["kind"] == "job_dead"]
    t1 = st.trials[1]
    # it stopped with a newer checkpoint: no retry is counted at all
    assert t1.restarts == 0 and t1.infra_retries == 0 and t1.status == "completed"
    [stop] = [e for e in model_log(exp, 1) if e["event"] == "stop"]
    starts = [e for e in model_log(exp, 1) if e["event"] == "start"]
    assert [e["key"] for e in starts] == ["t00001-s000-a00", "t00001-s000-a01"]
    assert starts[1]["epoch"] == stop["epoch"] >= 4  # resumed from the checkpoint it left
    states = {k: s for k, _, s in job_keys(exp, name, sacct_jobs(
        name, t0, expect=submitted_keys(recs).values()))}
    assert states["t00001-s000-a00"] == "CANCELLED"
    assert states["t00001-s000-a01"] == "COMPLETED"


@pytest.mark.slow
def test_time_limit_stops_checkpoints_and_continues_in_a_new_job(tmp_path, cleanup):
    """timeout_min=1, signal_delay_s=50: USR2 arrives (up to 60 s early) before the limit; the
    code sees should_stop(), checkpoints and returns; a new job continues from there. The
    segment needs ~40 s of work, more than one job gets before its USR2. slurmctld looks at
    signals in a periodic pass (about every 30 s): a signal due 30 s before the limit came
    after the job's 40 s of work once, and the segment ended in one job; one due 50 s before
    comes 10-40 s into the job."""
    cfg_path = make_experiment(
        tmp_path, "e2e4", searcher={"name": "single", "max_length": 80},
        hp={"x": 0.1, "sleep": 0.5},
        slurm={"timeout_min": 1, "signal_delay_s": 50})
    name = exp_name(cfg_path)
    cleanup[0].append(name)
    exp = tmp_path / "run"
    t0 = time.time()
    cli("run", cfg_path, "--exp-dir", exp, timeout=300)
    _, st, recs = final_state(exp)
    assert st.lifecycle == "completed"
    t = st.trials[1]
    assert t.status == "completed" and t.length == 80
    results = [r for r in recs if r["kind"] == "result"]
    # a stop that got further counts nothing; sbatch's signal "may be sent up to 60 seconds
    # earlier than specified", so a 1-minute job's USR2 can come the moment it starts: that
    # stop got nowhere and counts as a retry that is not the trial's fault, never a restart
    got_to = [0] + [r.get("reached") or 0 for r in results[:-1]]
    nowhere = [r for r, before in zip(results[:-1], got_to) if (r.get("reached") or 0) <= before]
    assert t.restarts == 0 and t.infra_retries == len(nowhere)
    assert len(nowhere) < len(results) - 1
    assert len(results) >= 2
    assert [r["status"] for r in results] == ["interrupted"] * (len(results) - 1) + ["completed"]
    assert all(r["stop_reason"] == "SIGUSR2" for r in results[:-1])
    assert all(r["ended"] - r["started"] < 60 for r in results[:-1])  # before the limit
    assert not [r for r in recs if r["kind"] == "job_dead"]
    log = model_log(exp, 1)
    stops = [e for e in log if e["event"] == "stop"]
    starts = [e for e in log if e["event"] == "start"]
    assert len(stops) == len(results) - 1 and len(starts) == len(results)
    assert starts[0]["epoch"] == 0
    for stop, nxt in zip(stops, starts[1:]):  # each job went on where the previous one stopped
        assert stop["reason"] == "SIGUSR2" and nxt["epoch"] == stop["epoch"]
        assert nxt["job"] != stop["job"]
    # (a USR2 may even come while a job starts up: it then stops at once, at the epoch it got)
    assert any(stop["epoch"] > 0 for stop in stops)  # no job can do 40 s of work before USR2
    states = [s for _, _, s in job_keys(exp, name, sacct_jobs(
        name, t0, expect=submitted_keys(recs).values()))]
    assert states == ["COMPLETED"] * len(results)  # each returned before its time limit


def test_sigkill_master_then_resume_without_duplicate_jobs(tmp_path, cleanup):
    cfg_path = make_experiment(tmp_path, "e2e5", searcher={"max_trials": 8},
                               hp={"sleep": 0.05})
    name = exp_name(cfg_path)
    cleanup[0].append(name)
    exp = tmp_path / "run"
    t0 = time.time()
    args = ["run", cfg_path, "--exp-dir", exp]
    def sbatch_in_flight(recs):  # submitit's script is written, not yet moved to its job folder
        return any(not p.is_symlink() for p in (exp / "jobs").glob(".submission_file_*.sh"))

    # kill right after an intent (before sbatch), while sbatch runs, and after a result
    kill_when = [lambda rs: rs and rs[-1]["kind"] == "intent",
                 sbatch_in_flight,
                 lambda rs: any(r["kind"] == "result" for r in rs[-3:])]
    for cond in kill_when:
        p = start_master(*args)
        cleanup[1].append(p)
        end = time.time() + 60
        while time.time() < end and p.poll() is None:
            if cond(journal(exp)):
                break
            time.sleep(0.001)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait()
        args = ["resume", exp]
    cli("resume", exp)
    _, st, recs = final_state(exp)
    assert st.lifecycle == "completed"
    assert sum(r["kind"] == "resumed" for r in recs) == 3
    assert st.counts()["total"] == 8 and st.counts()["failed"] == 0
    subs = submitted_keys(recs)
    keyed = job_keys(exp, name, sacct_jobs(name, t0, expect=subs.values(), settle_s=75))
    completed = Counter(k for k, _, s in keyed if s == "COMPLETED")
    # exactly one COMPLETED job per journaled submission, none for anything else
    assert completed == Counter(subs.keys()), (completed, subs)
    # a job sbatch'ed by a master killed before it could journal the id was either found
    # (journaled as submitted with that id) or never ran the trial code
    for k, jid, s in keyed:
        assert subs.get(k) == jid or s != "COMPLETED", (k, jid, s)
    ran = Counter(e["key"] for e in model_log(exp) if e["event"] == "start")
    assert ran == Counter(subs.keys())  # each attempt's code ran exactly once


DIES_AFTER_SBATCH = """
import os

if os.environ.get("ASHA_TEST_DIE_AFTER_SBATCH"):
    import submitit.core.utils as submitit_utils

    move = submitit_utils.JobPaths.move_temporary_file

    def die(self, tmp, name, *args, **kwargs):
        if name == "submission_file":  # sbatch answered; submitit has moved nothing yet
            os._exit(9)
        return move(self, tmp, name, *args, **kwargs)

    submitit_utils.JobPaths.move_temporary_file = die
"""


def test_jobs_a_master_killed_after_sbatch_never_took_over_are_cancelled_on_resume(
        tmp_path, cleanup):
    """The master dies the moment sbatch answers, before its jobs' pickles are in place.
    Those jobs could only wait for them and fail; ``resume`` cancels them, says so, and runs
    their segments in jobs of its own. No trial code runs twice."""
    cfg_path = make_experiment(tmp_path, "stray", searcher={"max_trials": 4})
    name = exp_name(cfg_path)
    cleanup[0].append(name)
    exp = tmp_path / "run"
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(DIES_AFTER_SBATCH)
    env = env_with()
    env["PYTHONPATH"] = f"{tmp_path / 'hook'}:{env['PYTHONPATH']}"
    env["ASHA_TEST_DIE_AFTER_SBATCH"] = "1"
    t0 = time.time()
    first = start_master("run", cfg_path, "--exp-dir", exp, env=env)
    cleanup[1].append(first)
    assert first.wait(timeout=120) == 9, first.stderr.read()[-2000:] if first.stderr else ""
    assert [r["kind"] for r in journal(exp)].count("submitted") == 0
    r = cli("resume", exp)
    said = re.search(r"cancelled jobs? ([0-9_ ]+): submitted as the last master stopped",
                     r.stdout + r.stderr)
    assert said, (r.stdout + r.stderr)[-3000:]
    strays = said.group(1).split()
    _, st, recs = final_state(exp)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0
    subs = submitted_keys(recs)
    assert not set(strays) & set(subs.values()), (strays, subs)
    keyed = job_keys(exp, name, sacct_jobs(name, t0, expect=[*subs.values(), *strays]))
    assert {jid: s for _, jid, s in keyed if jid in strays} == dict.fromkeys(strays, "CANCELLED")
    ran = Counter(e["key"] for e in model_log(exp) if e["event"] == "start")
    assert ran == Counter(subs.keys())  # each attempt's code ran once, none in a stray


def test_the_master_job_asks_for_no_more_than_its_partition_allows(tmp_path, local_partitions):
    """``submit --partition short`` (MaxTime 10 min) with the default --time of 2 days: a job
    that asked for that would pend for ever; the master's job asks for 10 minutes (it requeues
    itself before its limit) and says so."""
    cfg_path = make_experiment(tmp_path, "mtime")
    exp = tmp_path / "run"
    short = cli("submit", cfg_path, "--exp-dir", exp, "--dry-run", "--partition", "short")
    assert "#SBATCH --time=10\n" in short.stdout and "#SBATCH --partition=short\n" in short.stdout
    assert "the master's job asks for 10 min, not 2-00:00:00 (partition short MaxTime 10 min)" \
        in short.stderr
    as_given = cli("submit", cfg_path, "--exp-dir", exp, "--dry-run", "--partition", "short",
                   "--time", "00:05:00")
    assert "#SBATCH --time=00:05:00\n" in as_given.stdout and not as_given.stderr
    bad = cli("submit", cfg_path, "--exp-dir", exp, "--dry-run", "--time", "two days", check=False)
    assert bad.returncode != 0 and "--time 'two days': not a Slurm time limit" in bad.stderr


def test_status_of_a_master_job_cancelled_before_it_started_says_it_ended(tmp_path, cleanup):
    """``submit``, then ``scancel`` while the master's job still pends: status said "has not
    started yet: squeue says why it waits" for ever; it now says the job ended, how (as
    Slurm's accounting has it), and how to send a new one. A second ``submit`` while the first
    job pends is refused (it replaced the first's id in master.job)."""
    cfg_path = make_experiment(tmp_path, "mcancel")
    cleanup[0].append(exp_name(cfg_path))
    exp = tmp_path / "run"
    out = cli("submit", cfg_path, "--exp-dir", exp, "--sbatch", "begin=now+3600").stdout
    job = re.search(r"Slurm job (\d+)", out).group(1)
    assert "state: submitted: Slurm job" in cli("status", exp).stdout
    again = cli("submit", cfg_path, "--exp-dir", exp, check=False)  # master.job kept its id
    assert again.returncode == 1 and f"the master's Slurm job {job} for this folder is already " \
        "pending" in again.stderr, again.stderr
    assert (exp / "master.job").read_text().strip() == job
    subprocess.run(["scancel", job], check=True)
    wait_until(lambda: status_json(exp)["state"] == "ended", 60, "status to see the job ended")
    d = status_json(exp)
    assert d["slurm_job_state"].startswith("CANCELLED"), d
    text = cli("status", exp).stdout
    assert f"state: ended: the master's Slurm job {job} ended (CANCELLED" in text, text
    assert f"asha-hpc submit CONFIG --exp-dir {exp}" in text


def test_master_as_slurm_job_survives_requeue(tmp_path, cleanup):
    """``asha-hpc submit``: the master runs as a Slurm job. ``scontrol requeue`` (SIGTERM: the
    master stops cleanly, Slurm requeues it) and then the time-limit signal (USR2 to the batch
    shell, which exec'd the master: it stops and requeues itself) both leave the experiment to
    the requeued run, which resumes it and finishes it."""
    cfg_path = make_experiment(tmp_path, "e2e6", hp={"sleep": 0.3},
                               searcher={"max_concurrent_trials": 2})
    name = exp_name(cfg_path)
    cleanup[0].append(name)
    exp = tmp_path / "run"
    script = cli("submit", cfg_path, "--exp-dir", exp, "--dry-run").stdout
    assert f"#SBATCH --job-name=asha-master-{name}\n" in script
    assert "#SBATCH --requeue\n" in script and "#SBATCH --cpus-per-task=1\n" in script
    assert re.search(r"^#SBATCH --signal=B:USR2@\d+$", script, re.M)
    assert "#SBATCH --partition" not in script  # the cluster's default
    assert f"exec {sys.executable} -m asha_hpc.cli slurm-master {cfg_path.resolve()} " \
           f"--exp-dir {exp.resolve()}" in script
    assert not exp.exists()  # --dry-run submits nothing

    out = cli("submit", cfg_path, "--exp-dir", exp).stdout
    master_job = re.search(r"Slurm job (\d+)", out).group(1)

    def count(kind):
        return sum(r["kind"] == kind for r in journal(exp)) if (exp / "journal.jsonl").exists() else 0

    # 1. scontrol requeue once a result is in and trial jobs are running
    wait_until(lambda: count("result") >= 1, 90, "a first result")
    subprocess.run(["scontrol", "requeue", master_job], check=True)
    wait_until(lambda: count("stopped") == 1, 30, "the master to stop")
    # 2. the time-limit signal, once the requeued run has resumed (its handlers are installed)
    wait_until(lambda: count("resumed") == 1, 90, "the requeued master to resume")
    assert count("done") == 0
    subprocess.run(["scancel", "--signal=USR2", "--batch", master_job], check=True)
    wait_until(lambda: count("stopped") == 2, 30, "the master to stop on USR2")
    wait_until(lambda: status_json(exp)["state"] in ("completed", "failed"), 150,
               "the requeued master to finish the experiment", every=1.0)
    _, st, recs = final_state(exp)
    assert st.lifecycle == "completed" and status_json(exp)["state"] == "completed"
    kinds = [r["kind"] for r in recs if r["kind"] in ("init", "stopped", "resumed", "done")]
    assert kinds == ["init", "stopped", "resumed", "stopped", "resumed", "done"]
    assert [r["reason"] for r in recs if r["kind"] == "stopped"] == ["SIGTERM", "SIGUSR2"]
    assert st.counts()["total"] == 6 and st.counts()["failed"] == 0
    wait_until(lambda: subprocess.run(["squeue", "-h", "-j", master_job], capture_output=True,
                                      text=True).stdout.strip() == "", 30, "the master job to end")
    # one Slurm job, run three times (same id), all runs in one log
    log = (exp / f"master-{master_job}.out").read_text()
    assert log.count("DUE TO JOB REQUEUE") == 2 and log.count("resuming") == 2
    assert "master stopped (SIGTERM)" in log and "master stopped (SIGUSR2)" in log
    # the job goes on by itself: not "Continue with: asha-hpc resume", which would be refused
    assert log.count("A requeued master job (its time limit, `scontrol requeue`) resumes the "
                     "search when it starts again") == 2 and "Continue with" not in log
    assert "time limit near: requeued the master job" in log
    assert "done 6 failed 0" in log and "asha-hpc: done. best trial " in log  # as `run` ends
    assert log.splitlines()[-1] == f"asha-hpc: see `asha-hpc best {exp.resolve()}`"
    rows = subprocess.run(["sacct", "-X", "-n", "--parsable2", "-o", "JobID,State,ExitCode",
                           "-j", master_job], capture_output=True, text=True).stdout.split()
    assert rows and rows[-1].split("|")[1:] == ["COMPLETED", "0:0"], rows


def test_resume_max_compute_reaches_the_master_job(tmp_path, cleanup):
    """The allocation grew while the master runs as a Slurm job (``asha-hpc submit``):
    ``resume --max-compute`` on the login node leaves the request in the shared folder, the
    master job takes it at its next poll and answers, and the command prints that answer.
    (``submit --quiet``: the master job's log holds the progress line once, at the end.)"""
    cfg_path = make_experiment(tmp_path, "e2emc", hp={"sleep": 0.5},
                               searcher={"max_concurrent_trials": 2, "max_compute": 20})
    cleanup[0].append(exp_name(cfg_path))
    exp = tmp_path / "run"
    cli("submit", cfg_path, "--exp-dir", exp, "--quiet")
    wait_until(lambda: (exp / "journal.jsonl").exists()
               and any(r["kind"] == "submitted" for r in journal(exp)), 90, "a first trial job")
    r = cli("resume", exp, "--max-compute", 60)
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("asha-hpc: the running master (host ") and \
        ") took it: max_compute raised from 20 to 60 units (" in last, r.stderr
    wait_until(lambda: status_json(exp)["state"] in ("completed", "failed"), 150,
               "the master job to finish the experiment", every=1.0)
    _, st, recs = final_state(exp)
    assert [(x["units"], x["was"]) for x in recs if x["kind"] == "max_compute"] == [(60, 20)]
    assert st.lifecycle == "completed" and st.max_compute == 60
    assert 20 < st.searcher.compute_started() <= 60
    assert not (exp / "max_compute.request").exists()
    (log,) = exp.glob("master-*.out")
    wait_until(lambda: "asha-hpc: done. best trial " in log.read_text(), 30, "the log's end")
    progress = [x for x in log.read_text().splitlines() if x.startswith("trials ")]
    assert len(progress) == 1 and "| running 0 pending 0 " in progress[0], progress


def test_cancel_reaches_the_master_job_and_its_trial_jobs(tmp_path, cleanup):
    """``asha-hpc cancel`` on the login node while the master runs as a Slurm job: it waits
    for that master to cancel the trial jobs (Slurm shows them CANCELLED) and journal it; the
    master job then ends."""
    cfg_path = make_experiment(tmp_path, "e2ecancel", hp={"sleep": 1.0},
                               searcher={"max_concurrent_trials": 2})
    name = exp_name(cfg_path)
    cleanup[0].append(name)
    exp = tmp_path / "run"
    t0 = time.time()
    out = cli("submit", cfg_path, "--exp-dir", exp).stdout
    master_job = re.search(r"Slurm job (\d+)", out).group(1)
    wait_until(lambda: (exp / "journal.jsonl").exists()
               and any(r["kind"] == "started" for r in journal(exp)), 90, "a trial job running")
    r = cli("cancel", exp)
    assert r.stdout.strip().splitlines()[-1].startswith("asha-hpc: the master (host ") and \
        r.stdout.strip().endswith(") cancelled the search and its running jobs"), r.stdout
    assert [x["kind"] for x in journal(exp)].count("cancelled") == 1
    assert status_json(exp)["state"] == "cancelled"
    wait_until(lambda: subprocess.run(["squeue", "-h", "-j", master_job], capture_output=True,
                                      text=True).stdout.strip() == "", 30, "the master job to end")
    submitted = {x["job_id"] for x in journal(exp) if x["kind"] == "submitted"}
    rows = sacct_jobs(name, t0, expect=submitted)
    assert submitted <= {r["id"] for r in rows}, (submitted, rows)
    assert any(r["state"].startswith("CANCELLED") for r in rows), rows
    assert not [r for r in rows if r["state"].split()[0] in ("PENDING", "RUNNING")], rows


def test_without_accounting_a_killed_job_is_detected_and_retried(tmp_path, cleanup):
    """sacct fails (a PATH shim for the master only): the backend falls back to squeue. A job
    killed with ``scancel --signal=KILL`` gets SIGTERM first and SIGKILL after KillWait; code
    that does not check should_stop() in time publishes nothing, and the master learns of the
    end from squeue, journals job_dead and retries from the latest checkpoint."""
    shim = tmp_path / "shim"
    shim.mkdir()
    calls = tmp_path / "sacct_calls"
    (shim / "sacct").write_text(
        f"#!/bin/sh\necho \"$@\" >> {calls}\n"
        "echo 'sacct: error: Slurm accounting storage is disabled' >&2\nexit 1\n")
    (shim / "sacct").chmod(0o755)
    cfg_path = make_experiment(
        tmp_path, "e2e7", searcher={"name": "random", "max_trials": 2, "max_concurrent_trials": 2,
                                    "max_length": 30},
        hp={"sleep": 0.5, "obey_stop": False, "ckpt_every": 1}, result_grace_s=1)
    name = exp_name(cfg_path)
    cleanup[0].append(name)
    exp = tmp_path / "run"
    master = start_master("run", cfg_path, "--exp-dir", exp, env=env_with(shim))
    cleanup[1].append(master)
    p = wait_until(lambda: (progress(exp, 1) or {}).get("epoch", 0) >= 3 and progress(exp, 1),
                   90, "trial 1 to train 3 epochs")
    subprocess.run(["scancel", "--signal=KILL", p["job"]], check=True)
    _, err = master.communicate(timeout=RUN_TIMEOUT_S)
    assert master.returncode == 0, err[-3000:]
    assert calls.exists()  # the backend did try sacct
    _, st, recs = final_state(exp)
    assert st.lifecycle == "completed"
    assert not [r for r in recs if r["kind"] == "result" and r["trial"] == 1
                and r["attempt"] == 0]  # it could not publish
    [dead] = [r for r in recs if r["kind"] == "job_dead"]
    assert (dead["trial"], dead["attempt"], dead["job_id"]) == (1, 0, p["job"])
    assert dead["state"] in ("cancelled", "lost") and dead["counts"] is False
    t1 = st.trials[1]
    assert t1.status == "completed" and t1.restarts == 0 and t1.infra_retries == 1
    starts = [e for e in model_log(exp, 1) if e["event"] == "start"]
    assert [e["key"] for e in starts] == ["t00001-s000-a00", "t00001-s000-a01"]
    assert starts[1]["epoch"] >= 3  # from the last checkpoint before the kill
    assert not [e for e in model_log(exp, 1) if e["event"] == "end" and
                e["key"] == "t00001-s000-a00"]


def test_trial_jobs_cannot_be_requeued_by_slurm(tmp_path, cleanup):
    """A trial job that Slurm requeued (preemption with PreemptMode=REQUEUE, node failure,
    ``scontrol requeue``) would come back with the same id and attempt and run the trial's code
    a second time, next to the attempt the master submitted in its place (seen before the fix:
    the requeued job restarted ~20 s later). Trial jobs are submitted with --no-requeue: Slurm
    refuses the requeue, and every attempt runs once."""
    cfg_path = make_experiment(
        tmp_path, "e2e8", searcher={"name": "random", "max_trials": 1, "max_concurrent_trials": 1,
                                    "max_length": 24},
        hp={"sleep": 0.25})
    cleanup[0].append(exp_name(cfg_path))
    exp = tmp_path / "run"
    master = start_master("run", cfg_path, "--exp-dir", exp)
    cleanup[1].append(master)
    p = wait_until(lambda: (progress(exp, 1) or {}).get("epoch", 0) >= 2 and progress(exp, 1),
                   90, "trial 1 to train 2 epochs")
    script = (exp / "jobs" / p["job"] / f"{p['job']}_submission.sh").read_text()
    assert "#SBATCH --no-requeue\n" in script
    r = subprocess.run(["scontrol", "requeue", p["job"]], capture_output=True, text=True)
    assert r.returncode != 0 and "disabled" in r.stderr, r
    _, err = master.communicate(timeout=RUN_TIMEOUT_S)
    assert master.returncode == 0, err[-3000:]
    _, st, recs = final_state(exp)
    assert st.lifecycle == "completed"
    starts = [e["key"] for e in model_log(exp, 1) if e["event"] == "start"]
    assert starts == ["t00001-s000-a00"]
    assert st.trials[1].restarts == 0 and st.trials[1].infra_retries == 0


def _boot_pid(jobs_dir: Path) -> int | None:
    """pid of a job's python (same node) once it catches SIGUSR2 (SigCgt in /proc) and before
    the trial's code runs."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
            if b"submitit.core._submit" not in cmd or not any(str(jobs_dir).encode() in c
                                                               for c in cmd):
                continue
            caught = next(int(line.split()[1], 16) for line in (d / "status").read_text().splitlines()
                          if line.startswith("SigCgt:"))
        except (OSError, StopIteration, ValueError):
            continue
        if caught & (1 << (signal.SIGUSR2 - 1)):
            return int(d.name)
    return None


def test_stop_signal_while_the_job_starts_up(tmp_path, cleanup):
    """Slurm may send the time-limit USR2 up to 60 s early, i.e. while the job's python is still
    importing submitit and asha_hpc and unpickling (a second or more), before jobmain's handler
    exists. With Python's default action the job died (FAILED: srun "task 0: User defined
    signal 2") and the attempt counted as the trial's failure (seen with timeout_min=1). The
    job's python now catches the stop signals first thing (slurm.JOB_BOOT): the job publishes
    "interrupted" and the segment continues without a restart counted."""
    cfg_path = make_experiment(
        tmp_path, "e2e9", searcher={"name": "random", "max_trials": 1, "max_concurrent_trials": 1,
                                    "max_length": 8},
        hp={"sleep": 0.25})
    cleanup[0].append(exp_name(cfg_path))
    exp = tmp_path / "run"
    master = start_master("run", cfg_path, "--exp-dir", exp)
    cleanup[1].append(master)
    job = wait_until(lambda: submitted_keys(journal(exp)).get("t00001-s000-a00")
                     if (exp / "journal.jsonl").exists() else None, 60, "the first submission")
    wait_until(lambda: _boot_pid(exp / "jobs"), 60, "the job's python to catch SIGUSR2",
               every=0.005)
    assert not (exp / "inbox" / "t00001-s000-a00.started.json").exists()
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    _, err = master.communicate(timeout=RUN_TIMEOUT_S)
    assert master.returncode == 0, err[-3000:]
    _, st, recs = final_state(exp)
    assert st.lifecycle == "completed"
    assert not [r for r in recs if r["kind"] == "job_dead"]
    [first] = [r for r in recs if r["kind"] == "result" and r["attempt"] == 0]
    assert first["status"] == "interrupted" and first["stop_reason"] == "SIGUSR2"
    t1 = st.trials[1]
    assert t1.restarts == 0 and t1.infra_retries == 1 and t1.status == "completed"
    starts = [e for e in model_log(exp, 1) if e["event"] == "start"]
    assert [e["key"] for e in starts] == ["t00001-s000-a00", "t00001-s000-a01"]
    assert starts[0]["stop_at_start"]  # the signal came before the training code ran

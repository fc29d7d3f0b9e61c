"""End to end on the local backend: real master, real subprocess jobs, small budgets."""
import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from asha_hpc.config import load_config
from asha_hpc.master.loop import Master
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.views.results import trials

from helpers import cli, final_state, journal, make_experiment


def test_full_search_status_best_export(tmp_path):
    cfg_path = make_experiment(tmp_path)
    exp = tmp_path / "run"
    r = cli("run", cfg_path, "--exp-dir", exp)
    assert "best trial" in r.stderr
    cfg, st = final_state(exp)
    assert st.lifecycle == "completed"
    status = json.loads(cli("status", exp, "--json").stdout)
    assert status["state"] == "completed"
    assert status["trials"]["total"] == 8 and status["trials"]["failed"] == 0
    assert status["trials"]["running"] == 0 and status["trials"]["paused"] == 0
    assert status["best"]["trial_id"] == st.ranked()[0].id
    best = json.loads(cli("best", exp, "--top", "3", "--json").stdout)
    assert best[0]["length"] == 16 and Path(best[0]["checkpoint"]).is_dir()
    # all its last result reported, as Ray's result.metrics
    assert best[0]["metrics"] == {"loss": best[0]["metric"]}
    assert best[0]["checkpoint_missing"] is False
    # a later segment, cut short, saved a newer checkpoint (at 20) and pruned this one
    ckpt = Path(best[0]["checkpoint"])
    newer = ckpt.with_name(ckpt.name.replace("-s00", "-s09"))
    shutil.copytree(ckpt, newer)
    manifest = json.loads((newer / "MANIFEST.json").read_text())
    (newer / "MANIFEST.json").write_text(json.dumps(dict(manifest, length=20)))
    shutil.rmtree(ckpt)
    again = json.loads(cli("best", exp, "--json").stdout)[0]
    assert again["checkpoint"] == str(newer) and again["checkpoint_length"] == 20
    assert "(trained to length 20, past its result's" in cli("best", exp).stdout
    tid = best[0]["trial_id"]

    def exported_checkpoint() -> str:  # export's and dataframe's cell: the one to load
        rows = list(csv.DictReader(io.StringIO(cli("export", exp, "--format", "csv").stdout)))
        cell = next(r["checkpoint"] for r in rows if r["trial_id"] == str(tid))
        assert [r for r in trials(exp) if r["trial_id"] == tid][0]["checkpoint"] == cell
        return cell

    assert exported_checkpoint() == str(newer)
    shutil.rmtree(newer)  # removed by hand
    assert exported_checkpoint() == ""  # no path a notebook's torch.load would fail on
    best[0]["checkpoint"] = str(ckpt)
    assert "(missing: removed or moved since)" in cli("best", exp).stdout.split("\n\n")[0]
    assert json.loads(cli("best", exp, "--json").stdout)[0]["checkpoint_missing"] is True
    assert set(best[0]) >= {"trial_id", "metric", "hparams", "checkpoint", "length", "seed"}
    csv_text = cli("export", exp, "--format", "csv").stdout
    assert csv_text.splitlines()[0].startswith("trial_id,") and "hparams.x" in csv_text.splitlines()[0]
    assert len(csv_text.splitlines()) == 9
    # promoted trials resumed from their checkpoints rather than starting over
    resumed = [json.loads(line) for p in (exp / "trials").glob("*/env.jsonl")
               for line in p.read_text().splitlines() if '"from"' in line]
    assert any(r["from"] > 0 for r in resumed)


def test_sigkill_master_at_several_points_then_resume(tmp_path):
    cfg_path = make_experiment(tmp_path, searcher={"max_trials": 10}, hp={"sleep": 0.03})
    exp = tmp_path / "run"
    kill_at = [2, 9, 17, 26, 40]
    args = ["run", cfg_path, "--exp-dir", exp]
    for n in kill_at:
        p = subprocess.Popen([sys.executable, "-m", "asha_hpc.cli", *map(str, args)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and p.poll() is None:
            if len(journal(exp)) >= n:
                break
            time.sleep(0.01)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait()
        args = ["resume", exp]
    cli("resume", exp)
    cfg, st = final_state(exp)
    assert st.lifecycle == "completed"
    kinds = [r["kind"] for r in journal(exp)]
    assert kinds.count("resumed") >= 3
    assert st.counts()["total"] == 10


def test_failing_trials_retried_then_failed_and_invalid_replaced(tmp_path):
    cfg_path = make_experiment(
        tmp_path, searcher={"max_trials": 6},
        hp={"fail": {"type": "categorical", "vals": ["never", "never", "once", "always"]},
            "invalid_below": -0.6})
    exp = tmp_path / "run"
    done = cli("run", cfg_path, "--exp-dir", exp)
    cfg, st = final_state(exp)
    assert st.lifecycle == "completed"
    failed = sorted(t.id for t in st.trials.values() if t.status == "failed")
    assert failed, "the seed should sample some trial that always fails"
    # the end of the run, status, and export each say which trials failed and why
    assert (f"{len(failed)} trial{'s' if len(failed) > 1 else ''} failed "
            f"({', '.join(map(str, failed))}): `asha-hpc status {exp}` says why") in done.stderr
    d = json.loads(cli("status", exp, "--json").stdout)
    assert [f["trial_id"] for f in d["failed_trials"]] == failed
    assert all("always fails" in f["error"] for f in d["failed_trials"])
    text = cli("status", exp).stdout
    assert f"failed ({len(failed)}; `asha-hpc logs {exp} ID --err` shows the whole error" in text
    assert f"  trial {failed[0]} at length 0, after {cfg.max_restarts + 1} failed attempts: " \
        in text
    rows = cli("export", exp, "--format", "csv").stdout.splitlines()
    header = rows[0].split(",")
    errors = {int(r.split(",")[0]): r.split(",")[header.index("error")] for r in rows[1:]}
    invalid_ids = {t.id for t in st.trials.values() if t.status == "invalid"}
    assert {i for i, e in errors.items() if e} == set(failed) | invalid_ids
    assert invalid_ids and all(errors[i] == "x too small" for i in invalid_ids)  # InvalidHP's why
    by = {}
    for t in st.trials.values():
        by.setdefault((t.hparams["fail"], t.status == "invalid"), []).append(t)
    recs = journal(exp)
    reused = {r["trial"] for r in recs if r["kind"] == "result" and r.get("reused")
              and r["status"] == "error"}
    for t in by.get(("once", False), []):  # a failure in a warm worker that had run other
        # trials is retried in a fresh process, not counted
        assert t.restarts == (0 if t.id in reused else 1) and t.status in ("completed", "stopped")
    for t in by.get(("always", False), []):
        assert t.status == "failed" and t.restarts == cfg.max_restarts + 1
        assert "always fails" in t.error
        # at most its first failure in a reused process went uncounted
        attempts = [r for r in recs if r["kind"] == "result" and r["trial"] == t.id]
        assert len(attempts) <= cfg.max_restarts + 2
    invalid = [t for t in st.trials.values() if t.status == "invalid"]
    assert invalid, "the seed should sample some x < -0.6"
    assert st.counts()["total"] == 6  # invalid trials were replaced, not counted


def test_a_job_killed_without_a_word_is_a_failed_job_not_a_completed_one(tmp_path):
    """submitit's local controller exits 0 whatever became of its task: a task SIGKILLed (as
    the out-of-memory killer does) must read as a failed job in the journal and in status,
    counted as a restart, and its retry trains to the end."""
    cfg_path = make_experiment(tmp_path, searcher={"max_trials": 2}, hp={"fail": "killed_once"})
    exp = tmp_path / "run"
    cli("run", cfg_path, "--exp-dir", exp)
    _, st = final_state(exp)
    assert st.lifecycle == "completed" and all(t.restarts == 1 for t in st.trials.values())
    dead = [r for r in journal(exp) if r["kind"] == "job_dead"]
    assert len(dead) == 2 and {r["state"] for r in dead} == {"failed"}
    assert "ended without a result (failed)" in cli("status", exp).stdout


@pytest.mark.parametrize("workers", [0, 1], ids=["segment jobs", "worker pool"])
def test_the_run_time_of_a_job_that_died_counts_in_compute(tmp_path, workers):
    """A job killed 1.5 s into its segment sends no result, so no times: the master counts it
    from when it heard the attempt started (or handed it to a waiting worker) to when it found
    the job dead."""
    cfg_path = make_experiment(tmp_path, searcher={"max_trials": 1}, hp={"fail": "killed_late"},
                               local={"gpus": [], "max_parallel": 1, "workers": workers})
    exp = tmp_path / "run"
    cli("run", cfg_path, "--exp-dir", exp)
    _, st = final_state(exp)
    (t,) = st.trials.values()
    results = sum(r["ended"] - r["started"] for r in journal(exp) if r["kind"] == "result")
    assert t.restarts == 1 and t.compute_s >= results + 1.5


def test_broken_code_aborts_early_with_the_error(tmp_path):
    cfg_path = make_experiment(tmp_path, hp={"fail": "always"}, max_restarts=0)
    r = cli("run", cfg_path, "--exp-dir", tmp_path / "run", check=False)
    assert r.returncode == 1
    # the first 3 trials failed alike before anything worked: one line, the error and its log
    assert "all failed with the same error" in r.stderr
    assert "RuntimeError: this trial always fails" in r.stderr and "log: " in r.stderr
    assert "Traceback" not in r.stderr


def test_torn_and_foreign_inbox_files_are_skipped(tmp_path):
    cfg_path = make_experiment(tmp_path, searcher={"max_trials": 4})
    cfg = load_config(cfg_path)
    exp = ExpDir.create(tmp_path / "run")
    (exp.inbox / "t00001-s000-a00.result.json").write_text('{"type": "result", "tri')
    (exp.inbox / "zz-foreign.json").write_text('{"hello": 1}')
    st = Master(exp, cfg, progress=lambda s: None).run()
    assert st.lifecycle == "completed"
    left = sorted(os.listdir(exp.inbox))
    assert left == [".rejected-t00001-s000-a00.result.json", ".rejected-zz-foreign.json"]


def test_second_master_refused(tmp_path):
    cfg_path = make_experiment(tmp_path, hp={"sleep": 0.2})
    exp = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "asha_hpc.cli", "run", str(cfg_path), "--exp-dir",
                          str(exp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while not (exp / "master.json").exists() and time.time() < deadline:
            time.sleep(0.05)
        r = cli("resume", exp, check=False)
        assert r.returncode == 1
        assert "another master holds this experiment" in r.stderr and f"pid {p.pid}" in r.stderr
        assert "resuming" not in r.stderr and "live report" not in r.stderr  # only why
        r = cli("run", cfg_path, "--exp-dir", exp, check=False)  # not "resume it": refused too
        assert r.returncode == 1 and f"master (host {socket.gethostname()}, pid {p.pid}) is " \
            f"running now: watch it with `asha-hpc status {exp}`" in r.stderr, r.stderr
        assert json.loads(cli("status", exp, "--json").stdout)["state"] == "running"
    finally:
        p.send_signal(signal.SIGTERM)  # a clean stop: jobs keep running, state 'stopped'
        assert p.wait(timeout=30) == 128 + signal.SIGTERM  # not read as a finished search
    assert json.loads(cli("status", exp, "--json").stdout)["state"] == "stopped"
    cli("resume", exp)
    assert json.loads(cli("status", exp, "--json").stdout)["state"] == "completed"


def _master_running(tmp_path, hangup=signal.SIG_DFL):
    """``asha-hpc run`` in the background, past its start-up (its own signal handlers are in
    place): (the experiment folder, its process, stderr a pipe). ``hangup``: its SIGHUP
    disposition as it starts (a terminal's default, or ``nohup``'s SIG_IGN, which a test run
    under nohup would otherwise pass on)."""
    cfg_path = make_experiment(tmp_path, hp={"sleep": 0.2})
    exp = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "asha_hpc.cli", "run", str(cfg_path), "--exp-dir",
                          str(exp)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGHUP, hangup))
    deadline = time.time() + 30
    while not (exp / "master.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    return exp, p


def test_ctrl_c_stops_the_master_with_the_shells_status_and_resume_finishes(tmp_path):
    exp, p = _master_running(tmp_path)
    try:
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert "master stopped (SIGINT)" in err and "Traceback" not in err
    assert json.loads(cli("status", exp, "--json").stdout)["state"] == "stopped"
    assert cli("resume", exp).returncode == 0
    assert json.loads(cli("status", exp, "--json").stdout)["state"] == "completed"


@pytest.mark.parametrize("hangup", [signal.SIG_DFL, signal.SIG_IGN], ids=["terminal", "nohup"])
def test_a_closed_terminal_stops_the_master_cleanly_and_resume_finishes(tmp_path, hangup):
    """SIGHUP (an SSH session closed, a terminal window shut, a Ctrl-Z'd master whose shell
    exits) with the terminal gone: the master stops as on Ctrl-C, journals it, exits with the
    shell's status, and its progress lines into the closed terminal do not kill it first.
    Under nohup it does not stop: the search runs to its end."""
    exp, p = _master_running(tmp_path, hangup)
    try:
        assert p.stderr is not None
        p.stderr.close()  # the terminal is gone: what the master prints goes nowhere
        p.send_signal(signal.SIGHUP)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    if hangup == signal.SIG_IGN:
        assert p.returncode == 0 and not [r for r in journal(exp) if r["kind"] == "stopped"]
        assert json.loads(cli("status", exp, "--json").stdout)["state"] == "completed"
        return
    assert p.returncode == 128 + signal.SIGHUP
    assert [r.get("reason") for r in journal(exp) if r["kind"] == "stopped"] == ["SIGHUP"]
    assert cli("resume", exp).returncode == 0
    assert json.loads(cli("status", exp, "--json").stdout)["state"] == "completed"


def test_concurrent_trials_get_different_gpus(tmp_path):
    # Segments of a few 50 ms epochs overlapped only when both jobs started within that time
    # of each other: under load a job's start-up (seconds) is longer than the first one's
    # whole segment, so the two ran one after the other, both on GPU 0, and the test failed.
    # A barrier makes the first two overlap whatever the load; what is tested is which GPUs
    # jobs get while they run at the same time.
    cfg_path = make_experiment(tmp_path, searcher={"max_trials": 4, "max_concurrent_trials": 2},
                               hp={"sleep": 0.05, "barrier": str(tmp_path / "barrier")},
                               local={"gpus": [0, 1], "gpus_per_trial": 1})
    exp = tmp_path / "run"
    cli("run", cfg_path, "--exp-dir", exp)
    spans = []
    for p in (exp / "trials").glob("*/env.jsonl"):
        lines = [json.loads(line) for line in p.read_text().splitlines()]
        for a, b in zip(lines, lines[1:]):
            if "start" in a and "end" in b:
                spans.append((a["start"], b["end"], a["cvd"]))
    assert {s[2] for s in spans} == {"0", "1"}
    overlapping = [(x, y) for i, x in enumerate(spans) for y in spans[i + 1:]
                   if x[0] < y[1] and y[0] < x[1]]
    assert overlapping, "two segments should have run at the same time"
    assert all(x[2] != y[2] for x, y in overlapping)


def run_until_a_trial_runs(tmp_path, cfg_path):
    """`asha-hpc run` in the background, returned once a trial runs: its job said so, or a warm
    worker took its segment (workers: auto)."""
    exp = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "asha_hpc.cli", "run", str(cfg_path), "--exp-dir",
                          str(exp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline and not any(
            r["kind"] == "started" or (r["kind"] == "intent" and r.get("worker"))
            for r in journal(exp)):
        time.sleep(0.05)
    return exp, p


def test_resume_max_compute_reaches_a_running_master(tmp_path):
    """`resume --max-compute` while `run` is still going (its master alive, e.g. a Slurm master
    job): the request goes to that master, which journals the new cap at its next poll; the
    command waits for that and prints what the master did."""
    hold = tmp_path / "hold"
    hold.touch()  # the trials wait while it exists: the master is surely running
    cfg_path = make_experiment(tmp_path, searcher={"max_compute": 20},
                               hp={"sleep": 0.05, "hold": str(hold)})
    exp, p = run_until_a_trial_runs(tmp_path, cfg_path)
    bad = cli("resume", exp, "--max-compute", 10, check=False)  # checked here first
    assert bad.returncode != 0 and not (exp / "max_compute.request").exists()
    assert bad.stderr.strip().splitlines()[-1] == (
        "asha-hpc: error: --max-compute 10 is less than max_length (16 units): no trial could "
        "reach it")
    r = cli("resume", exp, "--max-compute", 200)  # waits for the master's next poll
    hold.unlink()
    assert r.stderr.strip().splitlines()[-1].startswith("asha-hpc: the running master (host ")
    assert ") took it: max_compute raised from 20 to 200 units (" in r.stderr
    assert p.wait(timeout=120) == 0
    assert not (exp / "max_compute.request").exists()
    cfg, st = final_state(exp)
    assert [(x["units"], x["was"]) for x in journal(exp) if x["kind"] == "max_compute"] == [(200, 20)]
    assert st.lifecycle == "completed" and st.max_compute == 200
    assert 20 < st.searcher.compute_started() <= 200


def test_cancel_stops_jobs(tmp_path):
    cfg_path = make_experiment(tmp_path, hp={"sleep": 0.5})
    exp, p = run_until_a_trial_runs(tmp_path, cfg_path)
    r = cli("cancel", exp)  # waits for the running master to cancel
    assert r.stdout.strip().endswith(") cancelled the search and its running jobs")
    assert any(x["kind"] == "cancelled" for x in journal(exp))
    assert p.wait(timeout=30) == 0
    status = json.loads(cli("status", exp, "--json").stdout)
    assert status["state"] == "cancelled" and status["trials"]["running"] == 0
    assert "state <b>cancelled</b>" in (exp / "report.html").read_text()  # the live report's last


ENV_MODEL = '''
import os

import vendored_lib  # found through environment_variables' PYTHONPATH only


def train(trial):
    with open(trial.dir / "env.txt", "a") as f:
        f.write(f"{os.environ.get('MY_FLAG')} {os.environ.get('NCCL_DEBUG')} {vendored_lib.NAME} "
                f"{trial.seed}\\n")
    for seg in trial.segments():
        seg.report(loss=trial.hparams["x"] + 1.0 / seg.length)
'''


@pytest.mark.parametrize("workers", [0, 1], ids=["a job per segment", "a warm worker"])
def test_environment_variables_reach_every_trials_code(tmp_path, workers):
    """``environment_variables`` (NCCL_*, OMP_*, HF_HOME... in real searches) are set before
    the trial's code runs, in a job of its own and in a worker of the pool."""
    (tmp_path / "model.py").write_text(ENV_MODEL)
    (tmp_path / "vendor").mkdir()  # pip install --target vendor, as a user without a venv does
    (tmp_path / "vendor" / "vendored_lib.py").write_text("NAME = 'vendored'\n")
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump({
        "name": "env", "entrypoint": "model:train",
        "searcher": {"name": "async_halving", "metric": "loss", "max_length": 4, "num_rungs": 2,
                     "divisor": 2, "max_trials": 3, "max_concurrent_trials": 1},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
        "environment_variables": {"MY_FLAG": 42, "NCCL_DEBUG": "INFO",
                                  "PYTHONPATH": f"{tmp_path / 'nowhere'}:{tmp_path / 'vendor'}"},
        "reproducibility": {"experiment_seed": 1}, "poll_interval_s": 0.1,
        "local": {"gpus": [], "workers": workers}}))
    exp = tmp_path / "run"
    cli("run", tmp_path / "exp.yaml", "--exp-dir", exp)
    _, st = final_state(exp)
    assert st.lifecycle == "completed" and len(st.trials) == 3
    for t in st.trials.values():
        lines = (exp / "trials" / f"{t.id:05d}" / "env.txt").read_text().split("\n")
        want = f"42 INFO vendored {1 + t.id}"  # experiment_seed 1: the trial's seed, every job
        assert [x for x in lines if x] and all(x == want for x in lines if x), lines


WAITS_FOR_GO = '''
import time


def train(trial):
    for segment in trial.segments():
        (trial.dir / "started").touch()
        deadline = time.time() + 120
        while not (trial.dir / "go").exists() and time.time() < deadline:
            time.sleep(0.05)
        segment.report(loss=abs(trial.hparams["x"]))
'''


def _one_trial_search(tmp_path, name, code, max_length=4, hparams=None, **top):
    """The config of a search of one trial whose code is ``code`` (module ``<name>_model``),
    a job per segment on the local backend."""
    module = f"{name}_model"
    (tmp_path / f"{module}.py").write_text(code)
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(dict({
        "name": name, "entrypoint": f"{module}:train",
        "searcher": {"name": "single", "metric": "loss", "max_length": max_length},
        "hyperparameters": hparams or {}, "poll_interval_s": 0.2,
        "local": {"gpus": [], "max_parallel": 1, "workers": 0}}, **top)))
    return cfg


def _waiting_trial_config(tmp_path, name, code=WAITS_FOR_GO):
    """A search of one trial whose code waits for a ``go`` file in its folder."""
    return _one_trial_search(tmp_path, name, code, hparams={"x": 0.5}, max_restarts=0)


def _master_with_a_trial_training(tmp_path, name, code=WAITS_FOR_GO):
    """``asha-hpc run`` of that search, once the master saw its trial start: the experiment
    folder, the master's process and the trial's folder."""
    exp = tmp_path / "run"
    master = subprocess.Popen([sys.executable, "-m", "asha_hpc.cli", "run",
                               str(_waiting_trial_config(tmp_path, name, code)),
                               "--exp-dir", str(exp)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 90
    while time.time() < deadline and not (list(exp.glob("trials/*/started")) and any(
            r["kind"] == "started" for r in journal(exp))):
        time.sleep(0.1)
    found = list(exp.glob("trials/*/started"))
    if not found:
        master.kill()
    (started,) = found
    return exp, master, started.parent


def _master_killed_while_its_trial_trains(tmp_path, code=WAITS_FOR_GO):
    """A master SIGKILLed while its one trial trains; the experiment folder, and the trial's
    folder (the trial ends once a ``go`` file appears there)."""
    exp, master, trial_dir = _master_with_a_trial_training(tmp_path, "gone", code)
    master.send_signal(signal.SIGKILL)
    master.wait()
    return exp, trial_dir


def _let_it_end(exp, trial_dir):
    (trial_dir / "go").touch()
    deadline = time.time() + 60
    while time.time() < deadline and not list((exp / "inbox").glob("*.result.json")):
        time.sleep(0.1)


def test_status_without_a_master_tells_ended_trials_from_running_ones(tmp_path):
    """A master killed while its trial trains: the job ends anyway and leaves its result in
    the inbox. ``status`` says no master runs, names that trial as ended with its result
    waiting (not running), and how to go on; ``resume`` applies the result."""
    exp, trial_dir = _master_killed_while_its_trial_trains(tmp_path)
    before = json.loads(cli("status", exp, "--json").stdout)
    assert before["state"] == "stopped" and before["results_waiting"] == 0
    assert "result_waiting" not in before["running_trials"][0]
    _let_it_end(exp, trial_dir)
    d = json.loads(cli("status", exp, "--json").stdout)
    assert d["trials"]["running"] == 1 and d["results_waiting"] == 1
    assert d["running_trials"][0]["result_waiting"] == "completed"
    text = cli("status", exp).stdout
    assert (f"no master is running: 1 of the running trials ended since, their messages wait "
            f"in {exp / 'inbox'}; `asha-hpc resume {exp}` goes on") in text
    assert ": ended (completed), its result waits for the master" in text
    cli("resume", exp)
    done = json.loads(cli("status", exp, "--json").stdout)
    assert done["state"] == "completed" and done["best"]["metric"] == 0.5
    assert "no master is running" not in cli("status", exp).stdout


def test_cancel_without_a_master_keeps_the_results_waiting_for_it(tmp_path):
    """``cancel`` while no master runs: a result that arrived meanwhile is journaled before the
    search ends, so ``best`` has it."""
    exp, trial_dir = _master_killed_while_its_trial_trains(tmp_path)
    _let_it_end(exp, trial_dir)
    cli("cancel", exp)
    d = json.loads(cli("status", exp, "--json").stdout)
    assert d["state"] == "cancelled" and d["best"]["metric"] == 0.5
    assert json.loads(cli("best", exp, "--json").stdout)[0]["metric"] == 0.5
    assert not list((exp / "inbox").glob("*.result.json"))


SAVES_THEN_WAITS_FOR_GO = '''
import time


def train(trial):
    for segment in trial.segments():
        with trial.save_checkpoint(length=segment.length) as path:
            (path / "weights.txt").write_text("0.5")
        (trial.dir / "started").touch()
        deadline = time.time() + 120
        while not (trial.dir / "go").exists() and time.time() < deadline:
            time.sleep(0.05)
        segment.report(loss=abs(trial.hparams["x"]))
'''


def test_results_waiting_in_a_moved_folder_are_taken_with_their_checkpoints(tmp_path):
    """A master killed, its trial's job ends and leaves its result (with the checkpoint's
    absolute path) in the inbox, then the folder is moved: ``resume`` in the new place takes
    the result, naming the checkpoint where it is now; the trial is not trained again."""
    exp, trial_dir = _master_killed_while_its_trial_trains(tmp_path, SAVES_THEN_WAITS_FOR_GO)
    _let_it_end(exp, trial_dir)
    (waiting,) = (exp / "inbox").glob("*.result.json")
    assert json.loads(waiting.read_text())["checkpoint"].startswith(str(exp) + "/")
    moved = tmp_path / "project" / "run"
    moved.parent.mkdir()
    shutil.move(str(exp), str(moved))
    cli("resume", moved)
    _, st = final_state(moved)
    (t,) = st.trials.values()
    assert st.lifecycle == "completed" and t.status == "completed" and t.restarts == 0
    assert t.checkpoint == str(moved / "trials" / f"{t.id:05d}" / "checkpoints" /
                               Path(t.checkpoint).name) and Path(t.checkpoint).is_dir()
    assert not list((moved / "inbox").glob(".rejected-*"))
    assert [r["status"] for r in journal(moved) if r["kind"] == "result"] == ["completed"]
    best = json.loads(cli("best", moved, "--json").stdout)[0]
    assert best["checkpoint"] == t.checkpoint and not best["checkpoint_missing"]


EVALUATES_IN_THE_LOOP = '''
import json, os


def train(trial):
    start, ckpt = 0, trial.latest_checkpoint
    if ckpt:
        start = json.loads((ckpt / "state.json").read_text())["epoch"]
    for segment in trial.segments():
        for epoch in range(start + 1, segment.length + 1):
            val = 1.0 / epoch  # the tutorial's metric, from the last epoch it trained
        start = segment.length
        with trial.save_checkpoint(length=start) as path:
            (path / "state.json").write_text(json.dumps({"epoch": start}))
        if not (trial.dir / "killed").exists():  # the job ends here, as if its time ran out
            (trial.dir / "killed").touch()
            os._exit(1)
        segment.report(loss=val)
'''


def test_an_attempt_with_nothing_left_to_train_says_so_when_its_code_fails(tmp_path):
    """A job that ended right after saving its segment's last checkpoint: the retry starts at
    the segment's length, the loop body never runs, and the tutorial-style code fails on its
    unset metric. The error says why the loop did nothing, and still ends with the exception."""
    cfg = _one_trial_search(tmp_path, "inloop", EVALUATES_IN_THE_LOOP, max_length=3,
                            max_restarts=1)
    exp = tmp_path / "run"
    cli("run", cfg, "--exp-dir", exp, check=False, timeout=120)
    errors = [r["error"] for r in journal(exp) if r["kind"] == "result" and r.get("error")]
    assert errors and errors[-1].startswith(
        "this attempt started from a checkpoint already at the segment's length 3 (the job "
        "before was stopped right after its last step)")
    assert errors[-1].strip().splitlines()[-1].startswith("UnboundLocalError")


RAY_STYLE = '''
def train(trial):
    epoch = 0
    for segment in trial.segments():
        while epoch < segment.length:
            epoch += 1
            loss = 1.0 / epoch
            trial.report_metrics(epoch, loss=loss)  # every epoch, as tune.report does
        segment.report(loss=loss)
'''


def test_a_result_already_reported_as_the_last_point_is_one_point_of_the_curve(tmp_path):
    cfg = _one_trial_search(tmp_path, "ray", RAY_STYLE, max_length=3)
    exp = tmp_path / "run"
    cli("run", cfg, "--exp-dir", exp, timeout=120)
    from asha_hpc.views.observe import curve_rows

    assert [(r["step"], r["metrics"]["loss"]) for r in curve_rows(ExpDir(exp))] == [
        (1, 1.0), (2, 0.5), (3, 1 / 3)]


def test_a_result_that_is_part_of_the_last_point_at_its_length_adds_no_point(tmp_path):
    # a Lightning callback of a command's own logs every metric at each validation, then the
    # result line holds the searcher's metric only
    code = RAY_STYLE.replace("trial.report_metrics(epoch, loss=loss)",
                             "trial.report_metrics(epoch, loss=loss, acc=1 - loss)")
    cfg = _one_trial_search(tmp_path, "ray", code, max_length=3)
    exp = tmp_path / "run"
    cli("run", cfg, "--exp-dir", exp, timeout=120)
    from asha_hpc.views.observe import curve_rows

    assert [(r["step"], sorted(r["metrics"])) for r in curve_rows(ExpDir(exp))] == [
        (1, ["acc", "loss"]), (2, ["acc", "loss"]), (3, ["acc", "loss"])]


def test_a_metric_reported_only_as_curve_points_is_told_apart_from_one_never_reported(tmp_path):
    """A Ray Tune port that reports every epoch with report_metrics and never segment.report:
    the search stops at the first trial, saying the metric came only as points."""
    cfg = _one_trial_search(tmp_path, "ray", RAY_STYLE.replace(
        "        segment.report(loss=loss)\n", ""), max_length=3)
    r = cli("run", cfg, "--exp-dir", tmp_path / "run", check=False, timeout=120)
    assert r.returncode == 1
    assert ("the searcher's metric 'loss' was reported only as learning-curve points "
            "(trial.report_metrics), never as a segment's result: call segment.report(loss=...) "
            "at the end of each segment") in r.stderr
    assert ("if the code ended the trial early on purpose (its own early stopping), raise "
            "asha_hpc.TrainingEndedEarly('why') instead") in r.stderr


def test_status_of_a_frozen_master_says_its_lease_is_not_renewed(tmp_path):
    """A master stopped with SIGSTOP (a frozen login node): its pid lives, so its lease holds
    on its host, and status used to say "running" for ever; it now says the lease has not been
    renewed for so long, and what to do."""
    exp, master, trial_dir = _master_with_a_trial_training(tmp_path, "frozen")
    try:
        assert "has not renewed its lease" not in cli("status", exp).stdout
        master.send_signal(signal.SIGSTOP)
        lease = ExpDir(exp).lease
        os.utime(lease, (time.time() - 300, time.time() - 300))  # five minutes frozen
        d = json.loads(cli("status", exp, "--json").stdout)
        assert d["state"] == "running" and d["master"]["pid"] == master.pid
        assert d["master"]["lease_quiet_s"] >= 299
        assert (f"the master (pid {master.pid} on {socket.gethostname()}) has not renewed its "
                f"lease for 5m") in cli("status", exp).stdout
        (trial_dir / "go").touch()  # the trial's job ends while the master is frozen
        deadline = time.time() + 60
        while not list((exp / "inbox").glob("*.result.json")):
            assert time.time() < deadline, "no result came"
            time.sleep(0.1)
        d = json.loads(cli("status", exp, "--json").stdout)
        assert d["trials"]["running"] == 1 and d["results_waiting"] == 1  # not "running" only
        out = cli("status", exp).stdout
        assert "stopped (kill -STOP, a frozen node) or hung. 1 of the running trials ended " \
               "since; their results wait for it." in out
        assert "its result waits for the master" in out
        master.send_signal(signal.SIGCONT)
        assert master.wait(timeout=120) == 0
    finally:
        master.send_signal(signal.SIGCONT)
        master.kill()


def test_a_copy_of_a_running_search_is_not_said_to_run(tmp_path):
    """`cp -a` (or rsync) of a running search, on the same host: the copy's lease names the
    original's master, whose pid lives, so status of the copy said "running" with that pid
    until the original ended. The lease says which folder its master runs."""
    exp, master, trial_dir = _master_with_a_trial_training(tmp_path, "copied")
    try:
        copy = tmp_path / "copy"
        shutil.copytree(exp, copy, symlinks=True)
        assert json.loads(cli("status", exp, "--json").stdout)["state"] == "running"
        d = json.loads(cli("status", copy, "--json").stdout)
        assert d["state"] == "stopped" and d["master"] is None, d
        (trial_dir / "go").touch()
        assert master.wait(timeout=120) == 0
    finally:
        master.kill()


def test_status_without_a_master_counts_jobs_that_started_since_it_stopped(tmp_path):
    """The master submitted a job and stopped before the job started: the job's ``started``
    message waits in the inbox, and status says so instead of counting the trial as pending
    only (on Slurm: every job running, status said 0 running)."""
    from asha_hpc.launch import create_experiment

    cfg_path = _waiting_trial_config(tmp_path, "early")
    cfg = load_config(cfg_path)
    exp = create_experiment(cfg, tmp_path / "run")
    m = Master(exp, cfg, progress=lambda s: None)
    assert m.start()
    m.step()  # submits the trial's job, and stops here: it never looks at the inbox again
    m.lease.release()
    deadline = time.time() + 60
    while time.time() < deadline and not list(exp.inbox.glob("*.started.json")):
        time.sleep(0.1)
    d = json.loads(cli("status", exp.root, "--json").stdout)
    assert d["state"] == "stopped" and d["trials"]["pending"] == 1
    assert d["started_waiting"] == 1 and d["results_waiting"] == 0
    assert "no master is running: 1 of the pending trials' jobs started since, their messages " \
        "wait in" in cli("status", exp.root).stdout
    (next(exp.root.glob("trials/*")) / "go").touch()
    while time.time() < deadline and not list(exp.inbox.glob("*.result.json")):
        time.sleep(0.1)
    d = json.loads(cli("status", exp.root, "--json").stdout)
    assert d["started_waiting"] == 0 and d["results_waiting"] == 1


OWN_EARLY_STOPPING = '''
import asha_hpc


def train(trial):
    best, bad = float("inf"), 0
    for segment in trial.segments():
        for epoch in range(segment.length):
            val_loss = [0.9, 0.5, 0.6, 0.7, 0.8, 0.9][epoch]
            if val_loss < best:
                best, bad = val_loss, 0
            else:
                bad += 1
            if bad == 2:  # patience 2, as the user's script had it
                raise asha_hpc.TrainingEndedEarly(f"no better val_loss for 2 epochs ({epoch + 1})")
        segment.report(loss=best)
'''


def test_a_function_trials_own_early_stopping_ends_it_with_its_results(tmp_path):
    """A loop with its own early stopping raises asha_hpc.TrainingEndedEarly: the trial ends
    with the result it reported (not retried, since it would stop the same way)."""
    cfg = _one_trial_search(tmp_path, "es", OWN_EARLY_STOPPING, max_length=6, max_restarts=3,
                            searcher={"name": "adaptive_asha", "metric": "loss", "max_length": 6,
                                      "max_trials": 3, "divisor": 3, "max_rungs": 2,
                                      "mode": "aggressive"})
    cli("run", cfg, "--exp-dir", tmp_path / "run", check=False, timeout=120)
    cfg_, st = final_state(tmp_path / "run")
    (t,) = [t for t in st.trials.values() if t.status == "failed"]  # the promoted one
    assert t.restarts == 0 and t.length == 2 and t.metric == 0.5, (t.length, t.metric, t.error)
    assert "no better val_loss for 2 epochs (4)" in (t.error or "")
    assert st.lifecycle == "completed" and st.counts()["failed"] == 1

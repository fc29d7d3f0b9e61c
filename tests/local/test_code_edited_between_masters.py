"""A notebook user's loop: the search runs in warm workers, the master is stopped (a kernel
interrupt), the code is edited, and ``resume`` goes on. The workers the first master started
still held the old modules (a warm worker imports its code once), so new trials ran the code
from before the edit, and nothing said so. A worker now leaves once a module of the user's
code it imported changed on disk, and the next segments run the new code in new jobs."""
import json
import os
import signal
import time

import yaml

from helpers import cli, final_state, journal, run_in_background

MODULE = '''
import time

VERSION = {version}


def train(trial):
    epoch = 0
    for segment in trial.segments():
        while epoch < segment.length:
            time.sleep(0.1)
            epoch += 1
        segment.report(loss=1.0 / (1 + trial.hparams["x"]) + 0.01 * epoch, version=VERSION)
'''


def _wait_for_results(exp, n: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and sum(
            r["kind"] == "result" for r in (journal(exp) if (exp / "journal.jsonl").exists()
                                            else [])) < n:
        time.sleep(0.05)


def test_a_warm_worker_leaves_once_the_code_it_imported_was_edited(tmp_path):
    code = tmp_path / "model.py"
    code.write_text(MODULE.format(version=1))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "edit", "entrypoint": "model:train",
        "searcher": {"name": "random", "metric": "loss", "max_length": 4, "max_trials": 8,
                     "max_concurrent_trials": 1},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
        "poll_interval_s": 0.2, "local": {"gpus": [], "workers": 1}}))
    exp = tmp_path / "run"
    p = run_in_background(tmp_path / "c.yaml", exp)
    try:
        _wait_for_results(exp, 2)
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    workers = list((exp / "workers").iterdir())
    assert workers, "no warm worker ran"
    time.sleep(1.5)  # the running segment ends; its worker waits for a next one
    code.write_text(MODULE.format(version=2))
    os.utime(code, ns=(time.time_ns(), time.time_ns() + 10**9))  # a clock of 1 s granularity
    before = len(journal(exp))
    r = cli("resume", exp, timeout=300)
    _, st = final_state(exp)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0, r.stderr
    recs = journal(exp)
    resumed_intents = {(x["trial"], x["segment"], x["attempt"]) for x in recs[before:]
                       if x["kind"] == "intent"}
    results = [x for x in recs[before:] if x["kind"] == "result" and x["status"] == "completed"
               and (x["trial"], x["segment"], x["attempt"]) in resumed_intents]
    assert len(results) >= 4
    assert {x["metrics"]["version"] for x in results} == {2}, [
        (x["trial"], x["metrics"]["version"]) for x in results]
    assert not [x for x in recs[before:] if x["kind"] == "job_dead" and x.get("counts")]
    logs = "".join(f.read_text() for f in (exp / "jobs").glob("*.err"))
    assert "model.py changed since this worker imported it: this job leaves" in logs
    assert json.loads(cli("status", exp, "--json").stdout)["state"] == "completed"


def test_code_edited_while_the_search_runs_costs_no_failure(tmp_path):
    """The edit lands while the master hands out segments: a worker that finds its code
    changed as a segment comes gives it back as a stop (not run with the old code, counted as
    no failure), and leaves."""
    code = tmp_path / "model.py"
    code.write_text(MODULE.format(version=1))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "edit", "entrypoint": "model:train",
        "searcher": {"name": "random", "metric": "loss", "max_length": 2, "max_trials": 10,
                     "max_concurrent_trials": 2},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
        "max_restarts": 0, "poll_interval_s": 0.2, "local": {"gpus": [], "workers": 2}}))
    exp = tmp_path / "run"
    p = run_in_background(tmp_path / "c.yaml", exp)
    try:
        _wait_for_results(exp, 2)
        code.write_text(MODULE.format(version=2))
        os.utime(code, ns=(time.time_ns(), time.time_ns() + 10**9))
        edited = time.time() + 0.5  # a segment handed over in the very instant may not know
        _, err = p.communicate(timeout=240)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    _, st = final_state(exp)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0
    recs = journal(exp)
    assert not [x for x in recs if x["kind"] == "job_dead" and x.get("counts")]
    assert all(t.restarts == 0 for t in st.trials.values())
    # a segment that started before the edit finishes with the old code, maybe last of all;
    # every one started after it ran the new code
    after = [x for x in recs if x["kind"] == "result" and x["status"] == "completed"
             and (x.get("started") or 0) > edited]
    assert after and {x["metrics"]["version"] for x in after} == {2}, after

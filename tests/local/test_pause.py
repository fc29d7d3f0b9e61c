"""``asha-hpc pause``: Determined's ``det e pause`` and a Slurm user's "free the GPUs now, go on
tomorrow". Ctrl-C stops the master only: its jobs train on, holding their GPUs. A pause stops
the running jobs too, each saving where it is (SIGTERM, as for a preemption), and ``resume``
goes on from those checkpoints with no failure counted and no epoch trained twice."""
import json
import signal
import subprocess
import time

import pytest
import yaml

from helpers import cli, final_state, journal, run_in_background

MODEL = '''
import json


def train(trial):
    epoch = 0
    if trial.latest_checkpoint:
        epoch = json.loads((trial.latest_checkpoint / "s.json").read_text())["epoch"]
    for segment in trial.segments():
        while epoch < segment.length and not trial.should_stop():
            import time
            time.sleep(0.25)
            epoch += 1
            with open(trial.dir / "epochs.txt", "a") as f:
                f.write(f"{epoch}\\n")
        with trial.save_checkpoint(length=epoch) as path:
            (path / "s.json").write_text(json.dumps({"epoch": epoch}))
        if epoch < segment.length and not trial.hparams.get("report_anyway"):
            return  # told to stop: saved, the search goes on from here
        # (report_anyway: a library's loop stopped by a callback, then the usual report)
        segment.report(loss=1.0 / (1 + epoch) + trial.hparams["x"] ** 2)
'''


def _jobs_alive(exp) -> list[str]:
    out = subprocess.run(["pgrep", "-af", f"submitit.*{exp}"], capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if line.strip()]


def _wait(cond, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline and not cond():
        time.sleep(0.2)
    return cond()


@pytest.mark.parametrize("report_anyway", [False, True], ids=["returns", "reports anyway"])
def test_pause_stops_the_jobs_and_the_master_and_resume_goes_on_from_their_checkpoints(
        tmp_path, report_anyway):
    """``reports anyway``: the code evaluates and reports after its loop was stopped (the
    README's Stable-Baselines3 recipe did), a checkpoint short of the segment: that report is
    not the rung's result, and the trial goes on from the checkpoint."""
    (tmp_path / "m.py").write_text(MODEL)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "pause", "entrypoint": "m:train",
        "searcher": {"name": "async_halving", "metric": "loss", "max_length": 40, "num_rungs": 2,
                     "divisor": 4, "max_trials": 4, "max_concurrent_trials": 2},
        "hyperparameters": {"x": {"type": "double", "minval": -1, "maxval": 1},
                            "report_anyway": report_anyway},
        "max_restarts": 0, "poll_interval_s": 0.2, "local": {"gpus": [], "workers": 0}}))
    exp = tmp_path / "run"
    p = run_in_background(tmp_path / "c.yaml", exp)
    try:
        # a trial promoted to 40 epochs is training: the pause cuts it mid-segment
        assert _wait(lambda: any(len((d / "epochs.txt").read_text().split()) > 12
                                 for d in (exp / "trials").glob("*") if (d / "epochs.txt").exists())
                     if (exp / "trials").exists() else False, 120)
        r = cli("pause", exp)
        assert "paused the search" in r.stdout, r.stdout
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    # not a finished search to a script (EX_TEMPFAIL: resume goes on)
    assert p.returncode == 75 and "search paused: " in err, err
    assert _wait(lambda: not _jobs_alive(exp), 45), _jobs_alive(exp)  # the GPUs are free
    status = json.loads(cli("status", exp, "--json").stdout)
    assert status["state"] == "stopped", status["state"]
    # the paused jobs' results wait for the next master: their time counts already
    journaled = sum(r["ended"] - r["started"] for r in journal(exp) if r["kind"] == "result"
                    and r.get("started") is not None and r.get("ended") is not None)
    assert status["results_waiting"] >= 1
    # (the promoted trial trained 2 epochs of 0.25 s or more in its paused segment)
    assert status["compute"]["job_hours"] * 3600 > journaled + 0.4, (status["compute"], journaled)
    again = cli("pause", exp).stdout  # a second pause: nothing left to stop, and it says so
    assert f"search paused: no job of it was running; `asha-hpc resume {exp}` goes on" in again
    cut = {d.name: len((d / "epochs.txt").read_text().split()) for d in (exp / "trials").glob("*")
           if (d / "epochs.txt").exists()}

    r = cli("resume", exp, timeout=300)
    _, st = final_state(exp)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0, r.stderr
    assert all(t.restarts == 0 for t in st.trials.values())
    for t in st.trials.values():  # went on from where the pause saved it: no epoch twice
        epochs = [int(x) for x in (exp / "trials" / f"{t.id:05d}" / "epochs.txt").read_text().split()]
        assert epochs == list(range(1, t.length + 1)), (t.id, cut.get(f"{t.id:05d}"), epochs)
    assert any(x["kind"] == "stopped" and x.get("reason") == "paused" for x in journal(exp))
    for t in st.trials.values():  # each rung's result is the full segment's
        for length, value in t.rung_metrics.items():
            assert value == pytest.approx(1.0 / (1 + length) + t.hparams["x"] ** 2), (t.id, length)


def test_pause_of_a_search_whose_master_is_gone_stops_the_jobs_it_left(tmp_path):
    """Ctrl-C first (the master stops, its jobs train on), then ``pause``: no master runs, so
    the command does the master's part itself and stops the jobs it finds."""
    (tmp_path / "m.py").write_text(MODEL)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "pause2", "entrypoint": "m:train",
        "searcher": {"name": "random", "metric": "loss", "max_length": 40, "max_trials": 2,
                     "max_concurrent_trials": 2},
        "hyperparameters": {"x": {"type": "double", "minval": -1, "maxval": 1}},
        "poll_interval_s": 0.2, "local": {"gpus": [], "workers": 0}}))
    exp = tmp_path / "run"
    p = run_in_background(tmp_path / "c.yaml", exp)
    try:
        assert _wait(lambda: len(list((exp / "trials").glob("*/epochs.txt"))) == 2
                     if (exp / "trials").exists() else False, 120)
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert _jobs_alive(exp)  # Ctrl-C left them training
    r = cli("pause", exp)
    assert "search paused: 2 running jobs told to save and stop" in r.stdout, r.stdout
    assert _wait(lambda: not _jobs_alive(exp), 45), _jobs_alive(exp)
    cli("resume", exp, timeout=300)
    _, st = final_state(exp)
    assert st.lifecycle == "completed" and all(t.restarts == 0 for t in st.trials.values())


def test_pause_withdraws_a_queued_job_and_resume_submits_it_again_at_once(tmp_path):
    """A job still queued (here behind ``local.max_parallel``) never ran: the pause cancels it
    and journals it withdrawn, so ``resume`` submits its segment again at once instead of
    waiting for a result that cannot come."""
    (tmp_path / "m.py").write_text(MODEL)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "pauseq", "entrypoint": "m:train",
        "searcher": {"name": "random", "metric": "loss", "max_length": 40, "max_trials": 2,
                     "max_concurrent_trials": 2},
        "hyperparameters": {"x": {"type": "double", "minval": -1, "maxval": 1},
                            "report_anyway": False},
        "max_restarts": 0, "poll_interval_s": 0.2,
        "local": {"gpus": [], "workers": 0, "max_parallel": 1}}))
    exp = tmp_path / "run"
    p = run_in_background(tmp_path / "c.yaml", exp)
    try:
        assert _wait(lambda: any(len((d / "epochs.txt").read_text().split()) > 3
                                 for d in (exp / "trials").glob("*") if (d / "epochs.txt").exists())
                     if (exp / "trials").exists() else False, 120)
        r = cli("pause", exp)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert ("paused the search: 1 running job told to save and stop, 1 queued job cancelled "
            "(submitted again at resume)") in r.stdout, r.stdout
    (stopped,) = [x for x in journal(exp) if x["kind"] == "stopped"]
    assert (stopped["jobs"], stopped["queued"]) == (1, 1)
    (withdrawn,) = [x for x in journal(exp) if x["kind"] == "job_dead"]
    assert withdrawn["withdrawn"] == "the search was paused" and withdrawn["counts"] is False
    at = len(journal(exp))
    cli("resume", exp, timeout=300)
    _, st = final_state(exp)
    assert st.lifecycle == "completed" and all(t.restarts == 0 for t in st.trials.values())
    # no second wait for the withdrawn job: it was dead already
    assert not [x for x in journal(exp)[at:] if x["kind"] == "job_dead"]


DIES_OF_SIGTERM = '''
import signal
import time


def train(trial):
    for segment in trial.segments():
        if not (trial.dir / "started").exists():  # the first job: a SIGTERM ends it without
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a word, as one still starting would
            (trial.dir / "started").write_text("x")
            time.sleep(120)
        with trial.save_checkpoint() as path:
            (path / "w").write_text("w")
        segment.report(loss=trial.hparams["x"] ** 2)
'''


def test_a_job_that_dies_of_the_pause_is_no_failure_to_the_next_master(tmp_path):
    """The pause's signal kills a job that has no handler for it yet (still starting, or its
    code set SIGTERM back to its default): no result comes. On Slurm, sacct then says
    CANCELLED; the local backend must tell the resumed master the same, so that the death is
    not counted against the trial (``max_restarts: 0`` would fail it)."""
    (tmp_path / "m.py").write_text(DIES_OF_SIGTERM)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "pausedie", "entrypoint": "m:train",
        "searcher": {"name": "random", "metric": "loss", "max_length": 2, "max_trials": 1},
        "hyperparameters": {"x": 0.5},
        "max_restarts": 0, "poll_interval_s": 0.2, "local": {"gpus": [], "workers": 0}}))
    exp = tmp_path / "run"
    p = run_in_background(tmp_path / "c.yaml", exp)
    try:
        assert _wait(lambda: (exp / "trials" / "00001" / "started").exists(), 120)
        cli("pause", exp)
        p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert _wait(lambda: not _jobs_alive(exp), 45), _jobs_alive(exp)
    assert not [x for x in journal(exp) if x["kind"] == "result"]  # it died without one
    r = cli("resume", exp, timeout=300)
    _, st = final_state(exp)
    assert st.lifecycle == "completed" and st.trials[1].restarts == 0, r.stderr
    (dead,) = [x for x in journal(exp) if x["kind"] == "job_dead"]
    assert dead["state"] == "cancelled" and dead["counts"] is False, dead

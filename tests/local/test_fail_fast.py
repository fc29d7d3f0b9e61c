"""Fail fast on errors every trial would repeat, then fix and continue (issue 17, parts 2-3):
real master, real jobs (local backend), training code with the bugs users make."""
import json
import re
from pathlib import Path

import pytest
import yaml

from asha_hpc.config import load_config, parse_config
from asha_hpc.errors import FatalTrialError
from asha_hpc.job.entrypoint import check_command, defines, resolve_entrypoint
from asha_hpc.master.state import FAILED, QUEUED, replay
from asha_hpc.protocol.journal import read_journal
from asha_hpc.searcher import ResumeTrial, SegmentCompleted, TrialFailed, TrialRetried, make_searcher
from asha_hpc.testing.invariants import check_invariants

from helpers import fake_slurm_command, four_trials_cfg, run_cli

# A tutorial-style loop with a checkpoint per segment; BUG is replaced per test.
MODEL = '''
import json
import time


def train(trial):
    epoch = 0
    if trial.latest_checkpoint is not None:
        epoch = json.loads((trial.latest_checkpoint / "state.json").read_text())["epoch"]
    for segment in trial.segments():
        while epoch < segment.length:
            time.sleep(0.01)
            epoch += 1
            BUG
            with open(trial.dir / "epochs.log", "a") as f:
                f.write(f"{epoch}\\n")
        with trial.save_checkpoint(length=epoch) as path:
            (path / "state.json").write_text(json.dumps({"epoch": epoch}))
        segment.report(val_loss=(trial.hparams["x"] - 0.3) ** 2 + 1.0 / epoch, epoch=epoch)
'''


def write(tmp_path, bug="pass", searcher=None, **top):
    (tmp_path / "model.py").write_text(MODEL.replace("BUG", bug))
    cfg = dict({"name": "ff", "entrypoint": "model:train",
                "searcher": dict({"name": "adaptive_asha", "metric": "val_loss",
                                  "max_length": 4, "max_trials": 8, "max_concurrent_trials": 4,
                                  "mode": "aggressive", "divisor": 2}, **(searcher or {})),
                "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
                "reproducibility": {"experiment_seed": 11}, "poll_interval_s": 0.2,
                "max_restarts": 5, "local": {"gpus": [], "max_parallel": 4}}, **top)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in cfg.items() if v is not None}))
    return path


def asha(*args):
    return run_cli(*args, timeout=300)


def journal(exp_dir):
    return read_journal(Path(exp_dir) / "journal.jsonl")[0]


def jobs_spent(exp_dir):
    return sum(1 for r in journal(exp_dir) if r["kind"] == "intent")


def final(exp_dir):
    cfg = load_config(Path(exp_dir) / "experiment.yaml")
    recs = journal(exp_dir)
    assert check_invariants(cfg, recs) == []
    return replay(cfg, recs)


def failure_line(stderr: str) -> str:
    lines = [x for x in stderr.splitlines() if x.startswith("asha-hpc: experiment failed:")]
    assert len(lines) == 1, stderr
    return lines[0]


# ----------------------------------------------------------------------------- no job at all
def test_typos_the_master_can_see_cost_no_job(tmp_path):
    cfg = write(tmp_path, entrypoint="model:trian")
    r = asha("run", cfg, "--exp-dir", tmp_path / "run")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    assert "defines no 'trian'" in r.stderr and "train" in r.stderr
    assert not (tmp_path / "run" / "journal.jsonl").exists()
    script = tmp_path / "train.sh"
    script.write_text("#!/bin/sh\n")
    assert "not executable" in check_command(["./train.sh"], str(tmp_path), True)
    assert "does not exist" in check_command(["./trian.sh"], str(tmp_path), True)
    assert "not found on PATH" in check_command(["no-such-tool-x"], str(tmp_path), True)
    assert check_command(["no-such-tool-x"], str(tmp_path), False) is None  # the job's PATH
    assert check_command(["sh", "train.sh"], str(tmp_path), True) is None


def test_entrypoint_lookup_in_the_job(tmp_path):
    (tmp_path / "m.py").write_text("import json\nif False:\n    def train(t): pass\n"
                                   "def other(t): pass\n")
    assert defines("m:train", str(tmp_path)) is None  # maybe defined: the job tells
    with pytest.raises(FatalTrialError, match="has no function 'train' .it has: other"):
        resolve_entrypoint("m:train", str(tmp_path))
    with pytest.raises(FatalTrialError, match="module 'nosuchmod' not found"):
        resolve_entrypoint("nosuchmod:train", str(tmp_path))
    (tmp_path / "uses.py").write_text("import not_installed_pkg\ndef train(t): pass\n")
    with pytest.raises(ModuleNotFoundError):  # the user's own import: a normal error
        resolve_entrypoint("uses:train", str(tmp_path))
    with pytest.raises(FatalTrialError, match="does not exist"):
        resolve_entrypoint("gone.py:train", str(tmp_path))


# ----------------------------------------------------------------------------- first occurrence
@pytest.mark.parametrize("case", ["metric", "function", "command"])
def test_an_error_every_trial_repeats_stops_at_once(tmp_path, case):
    if case == "metric":
        cfg = write(tmp_path, searcher={"metric": "val/loss"})
        want = ["'val/loss' was not reported", "'val_loss'", "'epoch'"]
    elif case == "function":  # defined only on a branch the job does not take
        cfg = write(tmp_path, entrypoint="model:fit")
        text = (tmp_path / "model.py").read_text()
        (tmp_path / "model.py").write_text(text + "\nif __name__ == '__main__':\n    fit = train\n")
        want = ["model has no function 'fit'", "it has: train"]
    else:
        cfg = write(tmp_path, entrypoint=None, command=["sh", "-c", "trian.py --fast"])
        want = ["exited with status 127", "not found"]
    exp = tmp_path / "run"
    r = asha("run", cfg, "--exp-dir", exp)
    assert r.returncode == 1
    line = failure_line(r.stderr)
    assert all(w in line for w in want), line
    assert "--retry-failed" in line and "log: " in line
    assert line.endswith("one in the searcher or the hyperparameters needs a new experiment "
                         "(`asha-hpc run CONFIG`)"), line
    assert jobs_spent(exp) <= 3  # probe_jobs: not one per slot (max_concurrent_trials 4)
    st = final(exp)
    assert st.lifecycle == "failed" and st.message in line
    assert json.loads(asha("status", exp, "--json").stdout)["state"] == "failed"


def test_the_same_error_in_three_trials_stops_the_search(tmp_path):
    cfg = write(tmp_path, bug="import missing_helper")
    exp = tmp_path / "run"
    r = asha("run", cfg, "--exp-dir", exp)
    assert r.returncode == 1
    line = failure_line(r.stderr)
    assert "first 3 trials" in line and "ModuleNotFoundError: No module named 'missing_helper'" in line
    log = line.split("log: ")[1].split(")")[0]
    assert "missing_helper" in Path(log).read_text()  # the log it names holds the traceback
    assert jobs_spent(exp) == 3  # 5 restarts each were allowed
    # status counts them as failed (they waited for a retry when the search stopped), not as
    # interrupted, and names their error
    status = json.loads(asha("status", exp, "--json").stdout)
    trials = status["trials"]
    assert trials["failed"] == 3 and trials.get("interrupted", 0) == trials["total"] - 3
    assert all("missing_helper" in f["error"] for f in status["failed_trials"])


def test_a_search_whose_code_rejects_every_configuration_stops(tmp_path):
    """XGBoost's "Invalid Parameter format for max_depth expect int" for every draw of a
    max_depth the config declares double, turned into InvalidHP as the README says: each
    rejected trial is replaced, so the search created trials for ever (thousands a minute)."""
    bug = ('raise __import__("asha_hpc").InvalidHP("Invalid Parameter format for max_depth '
           'expect int but value=\'" + str(trial.hparams["x"] * 8) + "\'")')
    cfg = write(tmp_path, bug=bug, local={"gpus": [], "max_parallel": 2, "workers": 2})
    exp = tmp_path / "run"
    r = asha("run", cfg, "--exp-dir", exp)
    assert r.returncode == 1, r.stderr
    line = failure_line(r.stderr)
    assert "trials raised InvalidHP and no segment of any trial succeeded" in line, line
    assert "Invalid Parameter format for max_depth" in line and "types and ranges" in line
    st = final(exp)
    assert st.lifecycle == "failed"
    assert 50 <= st.counts()["invalid"] <= 60  # a few more were in flight as it stopped
    from asha_hpc.master.loop import progress_line  # the progress line counts them

    assert f"failed 0 invalid {st.counts()['invalid']} |" in progress_line(st, 0.0)


@pytest.mark.parametrize("entry", ["function", "command"])
def test_a_bug_in_the_restore_path_stops_the_search_after_three_promotions(tmp_path, entry):
    # every first segment works; every trial that continues from its checkpoint fails the same
    # way. Without the rule, each promoted trial would burn its 5 restarts
    restore = '["epoch"]'
    fresh = {"gpus": [], "max_parallel": 4, "workers": 0}  # no continuation in place
    if entry == "function":
        cfg = write(tmp_path, local=fresh)
        model = tmp_path / "model.py"
    else:
        cfg = write_command(tmp_path, local=fresh)
        model = tmp_path / "cmd.py"
    text = model.read_text()
    assert restore in text
    model.write_text(text.replace(restore, '["state"]["epoch"]'))
    exp = tmp_path / "run"
    r = asha("run", cfg, "--exp-dir", exp)
    assert r.returncode == 1, r.stderr
    line = failure_line(r.stderr)
    assert "trials that continued from a checkpoint" in line and "KeyError: 'state'" in line, line
    assert "--retry-failed" in line
    st = final(exp)
    failed = [r for r in journal(exp) if r["kind"] == "result" and r["status"] == "error"]
    assert {r["restored"] for r in failed} == {True}
    assert len({r["trial"] for r in failed}) >= 3
    assert len(failed) <= 3 * 2 + 4  # three trials twice each, and attempts that ran beside
    assert st.restores_worked == 0 and st.worked >= 3

    # the fix: the failed trials go on from their checkpoints and the search completes
    model.write_text(text)
    r = asha("resume", exp, "--retry-failed")
    assert r.returncode == 0, r.stderr
    st = final(exp)
    assert st.lifecycle == "completed" and st.restores_worked >= 1
    assert not [t for t in st.trials.values() if t.status == FAILED]


def test_a_restore_bug_stops_a_search_of_two_trials_at_a_time_in_about_six_jobs(tmp_path):
    """Two slots: the first two promoted trials retried their restore in them, 6 jobs each,
    while no third trial could reach its promotion (a torch.load refusing a numpy value of the
    checkpoint cost 14 jobs in a search of 12 trials). Each makes way after its second."""
    cfg = write(tmp_path, searcher={"max_concurrent_trials": 2},
                local={"gpus": [], "max_parallel": 2, "workers": 0})
    model = tmp_path / "model.py"
    model.write_text(model.read_text().replace('["epoch"]', '["state"]["epoch"]'))
    exp = tmp_path / "run"
    r = asha("run", cfg, "--exp-dir", exp)
    assert r.returncode == 1, r.stderr
    assert "trials that continued from a checkpoint" in failure_line(r.stderr)
    failed = [r for r in journal(exp) if r["kind"] == "result" and r["status"] == "error"]
    assert {r["restored"] for r in failed} == {True}
    assert len(failed) <= 3 * 2, [(r["trial"], r["attempt"]) for r in failed]
    status = json.loads(asha("status", exp, "--json").stdout)
    given_up = [e for e in status["recent_events"] if "given up, so that another" in e]
    assert len(given_up) >= 2 and all("KeyError: 'state'" in x for x in given_up)
    assert all(f["restarts"] == 2 for f in status["failed_trials"]), status["failed_trials"]


def test_a_trial_that_returns_without_its_metric_after_others_reported_fails_alone(tmp_path):
    # "the searcher's metric was never reported" is every trial's bug only while no segment has
    # reported it: later, it is this trial's own (its code stopped early without a word), and
    # a retry would do the same
    cfg = write(tmp_path, local={"gpus": [], "max_parallel": 4, "workers": 0})
    model = tmp_path / "model.py"
    model.write_text(model.read_text().replace(
        "        with trial.save_checkpoint(length=epoch)",
        "        if segment.length > 1 and trial.id % 2:\n"
        "            return\n"
        "        with trial.save_checkpoint(length=epoch)"))
    exp = tmp_path / "run"
    r = asha("run", cfg, "--exp-dir", exp)
    assert r.returncode == 0, r.stderr
    st = final(exp)
    failed = [t for t in st.trials.values() if t.status == FAILED]
    assert failed and all(t.id % 2 and t.restarts == 0 for t in failed)
    assert all("was never reported" in t.error for t in failed)
    assert st.lifecycle == "completed" and st.ranked()[0].length == 4
    # a bug to fix, then retry: not a trial its code ended on purpose
    assert "ended by" not in r.stderr and "--retry-failed` trains them again" in r.stderr, r.stderr


def test_restore_errors_that_differ_keep_their_restarts(tmp_path):
    cfg = write(tmp_path, max_restarts=1, local={"gpus": [], "max_parallel": 4, "workers": 0})
    model = tmp_path / "model.py"
    model.write_text(model.read_text().replace('["epoch"]', '["epoch"] + int(f"bad{trial.id}")'))
    exp = tmp_path / "run"
    asha("run", cfg, "--exp-dir", exp)
    st = final(exp)
    assert "continued from a checkpoint" not in (st.message or "")
    failed = [t for t in st.trials.values() if t.status == FAILED]
    assert failed and all(t.restarts == 2 for t in failed)  # retried, not stopped at first
    assert all("invalid literal for int() with base 10: 'bad" in t.error for t in failed)


@pytest.mark.parametrize("concurrent", [1, 2])
def test_the_same_error_stops_a_search_of_one_or_two_trials_at_a_time_in_a_few_jobs(tmp_path,
                                                                                   concurrent):
    # a lab's two GPUs: no third trial starts while the first two hold their slots, so each
    # makes way after its second failure instead of using its 5 restarts
    cfg = write(tmp_path, bug="import missing_helper",
                searcher={"max_concurrent_trials": concurrent})
    exp = tmp_path / "run"
    r = asha("run", cfg, "--exp-dir", exp)
    assert r.returncode == 1
    line = failure_line(r.stderr)
    assert "first 3 trials" in line and "No module named 'missing_helper'" in line
    assert jobs_spent(exp) <= 6  # 13 to 18 before
    st = final(exp)
    # (a third failure where the other trial had not failed yet: the rule waits for its result,
    # which a loaded machine may bring after the first trial's next attempt)
    assert all(t.restarts <= 3 for t in st.trials.values()), (
        [(t.id, t.restarts, t.status) for t in st.trials.values()],
        [{k: r.get(k) for k in ("seq", "kind", "trial", "segment", "attempt", "worker", "status",
                                "reused", "counts", "why")} for r in journal(exp)
         if r["kind"] in ("intent", "result", "job_dead", "worker_gone", "workers")])
    assert any("given up, so that another trial shows" in text for _, text in st.events)


@pytest.mark.parametrize("trials", [1, 2])
def test_the_same_error_stops_a_search_of_one_or_two_trials_once_each_failed_twice(tmp_path,
                                                                                   trials):
    """max_trials under 3: no third trial ever comes to compare with. A command's argparse
    refusal (HfArgumentParser's "ambiguous option") cost 12 jobs of 2 trials, each using its
    5 restarts. Each trial failing twice with the same error is enough: 2 or 4 jobs."""
    cfg = write_command(tmp_path, bug="import argparse; p = argparse.ArgumentParser(); "
                                      "p.add_argument('--lr_scheduler_type'); "
                                      "p.add_argument('--lr_scheduler_kwargs'); p.parse_args()",
                        searcher={"name": "async_halving", "max_trials": trials, "num_rungs": 2,
                                  "max_concurrent_trials": 2})
    c = yaml.safe_load(cfg.read_text())
    cfg.write_text(yaml.safe_dump({**c, "command": c["command"] + ["--lr=0.1"]}))
    exp = tmp_path / "run"
    r = asha("run", cfg, "--exp-dir", exp)
    assert r.returncode == 1
    line = failure_line(r.stderr)
    who = r"the search's only trial \(1\)" if trials == 1 else \
        r"the search's 2 trials \((1, 2|2, 1)\)"  # in the order they first failed
    assert re.search(f"{who}, twice each, all failed with the same error", line), line
    assert "ambiguous option: --lr=0.1 could match --lr_scheduler_type, " in line
    # (one trial's third attempt may start while the other's second failure is on its way)
    assert 2 * trials <= jobs_spent(exp) <= 2 * trials + (trials - 1)


@pytest.mark.parametrize("entry", ["function", "command"])
def test_different_errors_keep_their_restarts(tmp_path, entry):
    # errors in other words are not "the same error": the search keeps retrying, and the
    # trials fail for good one by one (then the old rule: 3 failed, none worked). A command's
    # own error is the end of its stderr: its exit status alone is the same for any failure.
    # (A value the message quotes does not make it another error: test_error_summary.py)
    words = "('bad x', 'x too wide', 'no data for x', 'x has the wrong shape')"
    if entry == "function":
        cfg = write(tmp_path, bug=f"raise ValueError({words}[int(trial.hparams['x'] * 7) % 4])",
                    max_restarts=1)
    else:
        cfg = write_command(tmp_path, bug=f"raise ValueError({words}[int(hp['x'] * 7) % 4])",
                            max_restarts=1)
    exp = tmp_path / "run"
    r = asha("run", cfg, "--exp-dir", exp)
    assert r.returncode == 1
    st = final(exp)
    assert "none completed a segment" in st.message
    # one line that names the trial, its error and where all of it is
    line = failure_line(r.stderr)
    assert "\n" not in st.message and re.search(r"the last error, trial (\d+)'s: ValueError: ", line)
    tid = int(re.search(r"the last error, trial (\d+)'s", line).group(1))
    assert st.trials[tid].error and f"asha-hpc logs {exp} {tid} --err" in line
    assert line.endswith("--retry-failed`")
    assert max(t.restarts for t in st.trials.values()) == 2  # retried, not stopped at first
    assert all("ValueError: " in t.error for t in st.trials.values() if t.error)
    assert len({t.error.splitlines()[-1] for t in st.trials.values() if t.error}) > 1


COMMAND = """
import json, os, pathlib, signal, sys
hp = json.loads(os.environ["ASHA_HPARAMS"])
target = int(os.environ["ASHA_TARGET_LENGTH"])
latest = os.environ["ASHA_LATEST_CHECKPOINT"]
start = json.loads((pathlib.Path(latest) / "state.json").read_text())["epoch"] if latest else 0
trial_dir = pathlib.Path(os.environ["ASHA_TRIAL_DIR"])
with open(trial_dir / "starts.log", "a") as f:
    f.write(f"{start}\\n")
BUG
out = pathlib.Path(os.environ["ASHA_CHECKPOINT_DIR"])
(out / "state.json").write_text(json.dumps({"epoch": target}))
with open(os.environ["ASHA_REPORT_FILE"], "a") as f:
    f.write(json.dumps({"metrics": {"val_loss": (hp["x"] - 0.3) ** 2 + 1.0 / target}}) + "\\n")
"""


def write_command(tmp_path, bug="pass", **top):
    (tmp_path / "cmd.py").write_text(COMMAND.replace("BUG", bug))
    return write(tmp_path, entrypoint=None, command=["python3", "cmd.py"], **top)


def test_the_error_every_command_repeats_is_named(tmp_path):
    """The stop line names the command's own error, not only its exit status."""
    cfg = write_command(tmp_path, bug="import missing_helper")
    r = asha("run", cfg, "--exp-dir", tmp_path / "run")
    assert r.returncode == 1
    line = failure_line(r.stderr)
    assert "first 3 trials" in line and "ModuleNotFoundError: No module named 'missing_helper'" in line


def test_a_typo_in_the_configs_command_is_fixed_where_the_stop_line_says(tmp_path):
    """An argparse flag misspelt in the YAML's command: the fix is the config's, and the
    user's own YAML is not what the search reads. The stop line names the copy that is;
    fixed there, `resume --retry-failed` completes the search."""
    cfg = write_command(tmp_path, bug="import argparse; argparse.ArgumentParser().parse_args()")
    c = yaml.safe_load(cfg.read_text())
    cfg.write_text(yaml.safe_dump({**c, "command": c["command"] + ["--ckpt_dir", "x"]}))
    exp = tmp_path / "run"
    r = asha("run", cfg, "--exp-dir", exp)
    assert r.returncode == 1
    line = failure_line(r.stderr)
    assert "unrecognized arguments: --ckpt_dir" in line, line
    assert f"a fix in `command`, `entrypoint` or `environment_variables` goes into " \
           f"{exp / 'experiment.yaml'}, the copy the search reads" in line
    copy = exp / "experiment.yaml"
    fixed = yaml.safe_load(copy.read_text())
    assert fixed["entrypoint"][-2:] == ["--ckpt_dir", "x"]  # (a command is kept there)
    copy.write_text(yaml.safe_dump({**fixed, "entrypoint": fixed["entrypoint"][:-2]}))
    r = asha("resume", exp, "--retry-failed")
    assert r.returncode == 0, r.stderr
    assert final(exp).lifecycle == "completed"


def test_a_command_that_reports_nothing_is_told_how_a_command_reports(tmp_path):
    """A command that exits 0 without a result line: told about its report file, not about
    segment.report and TrainingEndedEarly, which a command has no way to call."""
    cfg = write_command(tmp_path, bug="print('training done'); sys.exit(0)")
    r = asha("run", cfg, "--exp-dir", tmp_path / "run")
    assert r.returncode == 1
    line = failure_line(r.stderr)
    assert ("the command exited 0 without a result for the segment to length 1: write a line "
            "{\"metrics\": {\"val_loss\": ...}} to the file $ASHA_REPORT_FILE names") in line, line
    assert "segment.report" not in line and "TrainingEndedEarly" not in line


def test_commands_killed_without_a_word_are_named_by_the_signal(tmp_path):
    """Every command is SIGKILLed (as the out-of-memory killer does) after a tracker's last
    line: the stop line and status named that line ("wandb: View this run ..."), a different
    one for each trial, so fail-fast never saw the same error. The signal is the error."""
    bug = """print(f"wandb: Find logs at: wandb/offline-run-{os.getpid()}/logs", file=sys.stderr, flush=True)
os.kill(os.getpid(), signal.SIGKILL)"""
    cfg = write_command(tmp_path, bug=bug)
    r = asha("run", cfg, "--exp-dir", tmp_path / "run")
    assert r.returncode == 1
    line = failure_line(r.stderr)
    assert "first 3 trials" in line and "same error" in line
    assert re.search(r"same error before any segment succeeded \(all on node [^)]*\): the command "
                     r"was killed by SIGKILL \(a memory limit\? the kernel's OOM killer, or "
                     r"Slurm's\)", line), line
    from asha_hpc.master.nodes import out_of_memory

    assert not out_of_memory(line)  # a guess: the node-blame rules must not take it for sure
    status = asha("status", tmp_path / "run").stdout
    assert "killed by SIGKILL" in status and "wandb: Find logs" not in status


def test_a_command_killed_while_saving_leaves_the_trials_checkpoint_as_it_was(tmp_path):
    """The out-of-memory killer ends a command halfway through writing its checkpoint: that
    half is not the trial's checkpoint. The retry resumes from the one before (the rung the
    trial was promoted from), not from scratch."""
    bug = """marker = trial_dir / "killed"
if start > 0 and not marker.exists():
    marker.write_text("x")
    (pathlib.Path(os.environ["ASHA_CHECKPOINT_DIR"]) / "half-written").write_text("x")
    os.kill(os.getpid(), signal.SIGKILL)"""
    cfg = write_command(tmp_path, bug=bug)
    exp = tmp_path / "run"
    r = asha("run", cfg, "--exp-dir", exp)
    assert r.returncode == 0, r.stderr
    st = final(exp)
    promoted = [t for t in st.trials.values() if t.length > 1]
    assert promoted
    for t in promoted:
        starts = [int(x) for x in (exp / "trials" / f"{t.id:05d}" / "starts.log").read_text().split()]
        assert starts[0] == 0 and starts[1] == starts[2] > 0, (t.id, starts)  # killed, resumed


# ----------------------------------------------------------------------------- fix and continue
def test_fix_the_file_and_retry_failed_finishes_the_search(tmp_path):
    cfg = write(tmp_path, bug="raise NameError(\"name 'lr_schedule' is not defined\")")
    exp = tmp_path / "run"
    r = asha("run", cfg, "--exp-dir", exp)
    assert r.returncode == 1 and "same error" in failure_line(r.stderr)
    again = asha("resume", exp)
    assert again.returncode != 0 or "--retry-failed" in again.stderr
    assert "--retry-failed" in again.stderr
    write(tmp_path)  # the fix
    failed = sorted(f["trial_id"] for f in json.loads(asha("status", exp, "--json").stdout)
                    ["failed_trials"])
    r = asha("resume", exp, "--retry-failed")
    assert r.returncode == 0, r.stderr
    # the ones status called failed (they waited for a retry when the search stopped)
    assert f"retrying {len(failed)} failed trial(s) from their latest checkpoints " \
        f"({', '.join(map(str, failed))})" in r.stderr and len(failed) == 3
    st = final(exp)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0
    assert max(t.length for t in st.trials.values()) == 4
    kinds = [x["kind"] for x in journal(exp)]
    assert kinds.count("retry_failed") == 1 and kinds.index("aborted") < kinds.index("retry_failed")


def test_submit_retry_failed_puts_a_failed_search_back_as_a_slurm_job_once(tmp_path):
    """After the fix, `submit --retry-failed` (the master as a Slurm job; `sbatch` here a stand-in
    that takes the script): the master the job starts retries the failed trials, once. Before,
    submit had no such option, and the job's master ended at "experiment already failed"."""
    cfg = write(tmp_path, bug="raise NameError(\"name 'lr_schedule' is not defined\")")
    exp = tmp_path / "run"
    r = asha("run", cfg, "--exp-dir", exp)
    assert r.returncode == 1
    again = asha("resume", exp)  # what the stop line says: also the Slurm way on
    assert f"asha-hpc submit {exp / 'experiment.yaml'} --exp-dir {exp} --retry-failed" \
        in again.stderr, again.stderr
    write(tmp_path)  # the fix
    _, env = fake_slurm_command(tmp_path, "sbatch", "echo 4711\n")
    fresh = run_cli("submit", cfg, "--exp-dir", tmp_path / "new", "--retry-failed", env=env)
    assert fresh.returncode == 1 and "holds no experiment yet" in fresh.stderr
    r = run_cli("submit", exp / "experiment.yaml", "--exp-dir", exp, "--retry-failed", env=env)
    assert r.returncode == 0 and "Slurm job 4711" in r.stdout, r.stderr
    assert (exp / "retry_failed.request").exists()
    # what the job runs (its script's exec line), then the same again as after a requeue
    line = [x for x in (exp / "master.sbatch").read_text().splitlines() if "slurm-master" in x][0]
    args = line.split(" -m asha_hpc.cli ")[1].split()
    first = asha(*args)
    assert first.returncode == 0 and "retrying 3 failed trial(s)" in first.stderr, first.stderr
    assert not (exp / "retry_failed.request").exists()
    assert final(exp).lifecycle == "completed"
    requeued = asha(*args)
    assert requeued.returncode == 0 and "retrying" not in requeued.stderr
    assert [x["kind"] for x in journal(exp)].count("retry_failed") == 1


def test_retry_failed_continues_failed_trials_from_their_checkpoints(tmp_path):
    # the bug strikes promoted trials only (past the first rung): they fail for good, the
    # search finishes with failed trials; after the fix they continue where they stopped
    cfg = write(tmp_path, bug="assert epoch <= 1, 'shape mismatch in layer 2'", max_restarts=0)
    exp = tmp_path / "run"
    r = asha("run", cfg, "--exp-dir", exp)
    st = final(exp)
    failed = sorted(t.id for t in st.trials.values() if st.status_of(t) == FAILED)
    # the search ends with these trials failed, or fail-fast stops it first: a trial whose
    # promoted segment failed in a reused warm worker is retried in a fresh process, and three
    # trials that failed alike twice from a checkpoint are a restore that every trial repeats
    # (which of the two comes first is up to the order in which the jobs end)
    if st.lifecycle == "failed":
        assert r.returncode == 1 and "The code that restores a checkpoint fails" in r.stderr, r.stderr
    else:
        assert r.returncode == 0 and st.lifecycle == "completed", r.stderr
    assert failed and "shape mismatch" in asha("status", exp).stdout
    write(tmp_path)
    r = asha("resume", exp, "--retry-failed")
    assert r.returncode == 0, r.stderr
    st = final(exp)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0
    for tid in failed:  # from the checkpoint: no epoch trained twice
        t = st.trials[tid]
        epochs = [int(x) for x in (exp / "trials" / f"{tid:05d}" / "epochs.log").read_text().split()]
        assert epochs == list(range(1, t.length + 1)) and t.length >= 2
    assert asha("resume", exp, "--retry-failed").stderr.count("no failed trial") == 1


# ----------------------------------------------------------------------------- pure parts
def test_state_hopeless_and_retry_records():
    cfg = four_trials_cfg()
    recs = [{"kind": "init"}]
    for tid in (1, 2, 3):
        recs += [{"kind": "intent", "trial": tid, "segment": 0, "attempt": 0},
                 {"kind": "result", "trial": tid, "segment": 0, "attempt": 0, "status": "error",
                  "error": f"Traceback\n  at 0x{tid}f00\nKeyError: 'lr' <obj at 0x7f{tid}0>"}]
    st = replay(cfg, recs)
    assert st.hopeless() == (1, "the first 3 trials (1, 2, 3) all failed with the same error "
                                "before any segment succeeded: KeyError: 'lr' <obj at 0x7f10>")
    assert {t.status for t in st.trials.values() if t.id < 4} == {FAILED}
    st = replay(cfg, recs + [{"kind": "aborted", "state": "failed", "message": "x"},
                             {"kind": "retry_failed", "trials": [1, 2, 3]}])
    assert st.hopeless() is None and st.lifecycle == "running"
    assert [st.trials[i].status for i in (1, 2, 3)] == [QUEUED] * 3
    assert [st.trials[i].segment for i in (1, 2, 3)] == [1] * 3  # a new segment, same length
    assert all(st.trials[i].target == 1 and st.trials[i].restarts == 0 for i in (1, 2, 3))
    fatal = replay(cfg, recs[:3] + [dict(recs[2], trial=2, fatal=True, error="entrypoint: x")])
    assert fatal.hopeless() == (2, "entrypoint: x")


def test_an_error_every_restore_repeats_counts_at_once_toward_the_restore_rule():
    """A library callback's own ``FatalTrialError`` on the restore path (Keras's fit without
    ``initial_epoch``): not retried, so never seen twice in a trial. Each counts at once, and
    the third promoted trial's stops the search with the restore rule's message."""
    cfg = parse_config({"name": "s", "entrypoint": "m:f",
                        "searcher": {"name": "async_halving", "metric": "m", "max_length": 4,
                                     "num_rungs": 2, "divisor": 2, "max_trials": 6,
                                     "max_concurrent_trials": 1},
                        "hyperparameters": {"x": 1}, "max_restarts": 5}, "/tmp")
    bug = "IntegrationError: pass fit(..., initial_epoch=cb.initial_epoch)"
    recs: list[dict] = [{"kind": "init"}]
    for better, worse in ((1, 2), (3, 4), (5, 6)):
        for tid, m in ((better, 1.0), (worse, 9.0)):
            recs += [{"kind": "intent", "trial": tid, "segment": 0, "attempt": 0},
                     {"kind": "result", "trial": tid, "segment": 0, "attempt": 0,
                      "status": "completed", "metrics": {"m": m}, "length": 2}]
        recs += [{"kind": "intent", "trial": better, "segment": 1, "attempt": 0},
                 {"kind": "result", "trial": better, "segment": 1, "attempt": 0, "status": "error",
                  "restored": True, "fatal": True, "error": bug}]
    recs = [dict(r, seq=i + 1) for i, r in enumerate(recs)]
    two = replay(cfg, recs[:-6])
    assert two.hopeless() is None and [two.trials[t].status for t in (1, 3)] == [FAILED] * 2
    st = replay(cfg, recs)
    tid, why = st.hopeless()
    assert tid == 1 and why.startswith("the first 3 trials that continued from a checkpoint "
                                       "(1, 3, 5) all failed with the same error") and bug in why
    assert all(st.trials[t].status == FAILED and st.trials[t].restarts == 0 for t in (1, 3, 5))


def test_a_failure_of_the_code_before_the_fix_that_arrives_after_retry_failed_stops_nothing():
    """A job that was running when fail-fast stopped the search ends with the same error just
    after (its message waits in the inbox); ``resume --retry-failed`` journals the retry, then
    reads it. It ran the code before the fix: it must not stop the search again (the user's
    second ``--retry-failed``); the trial trains again, nothing counted. An attempt started
    after the retry that fails so still stops the search."""
    cfg = four_trials_cfg(max_restarts=2)
    bug = "IntegrationError: load_best_model_at_end: leave it off"
    recs: list[dict] = [{"kind": "init"}]
    for tid in (1, 2):
        recs.append({"kind": "intent", "trial": tid, "segment": 0, "attempt": 0})
    recs += [{"kind": "result", "trial": 1, "segment": 0, "attempt": 0, "status": "error",
              "fatal": True, "error": bug},
             {"kind": "aborted", "state": "failed", "message": "x"},
             {"kind": "retry_failed", "trials": [], "before_fix_free": True},
             {"kind": "result", "trial": 2, "segment": 0, "attempt": 0, "status": "error",
              "fatal": True, "error": bug}]
    recs = [dict(r, seq=i + 1) for i, r in enumerate(recs)]
    # a journal of the release before: its master counted such a failure, and replay must
    # decide as it did
    old = [dict(r, before_fix_free=None) if r["kind"] == "retry_failed" else r for r in recs]
    assert replay(cfg, old).hopeless() == (2, bug)
    st = replay(cfg, recs)
    assert st.hopeless() is None and st.lifecycle == "running"
    t2 = st.trials[2]
    assert t2.status == QUEUED and t2.restarts == 0 and not t2.last_failed
    assert "failed with the code before --retry-failed" in t2.error
    again = recs + [{"kind": "intent", "trial": 2, "segment": 0, "attempt": 1, "seq": len(recs) + 1},
                    dict(recs[-1], attempt=1, seq=len(recs) + 2)]
    assert replay(cfg, again).hopeless() == (2, bug)


def test_searcher_takes_a_failed_trial_back():
    cfg = parse_config({"name": "s", "entrypoint": "m:f",
                        "searcher": {"name": "adaptive_asha", "metric": "m", "max_length": 4,
                                     "max_trials": 2, "max_concurrent_trials": 2,
                                     "mode": "aggressive", "divisor": 2},
                        "hyperparameters": {"x": 1}}, "/tmp")
    s = make_searcher(cfg.searcher, cfg.space(), 0)
    assert s.brackets()[0].rung_lengths == [2, 4]
    s.start()
    s.on_event(SegmentCompleted(1, 2, 0.5))
    out = s.on_event(SegmentCompleted(2, 2, 0.9))
    assert ResumeTrial(1, 4) in out
    out = s.on_event(TrialFailed(1))
    assert s.done and s.trial_status(1) == "failed"
    top = s.rungs()[1]
    assert top.completed == 1  # its failure: a worst result at the top rung
    out = s.on_event(TrialRetried(1, 4))
    assert out == [ResumeTrial(1, 4)] and not s.done and s.trial_status(1) == "running"
    assert s.rungs()[1].completed == 0
    out = s.on_event(SegmentCompleted(1, 4, 0.4))
    assert s.done and s.trial_status(1) == "top" and s.rungs()[1].best_metric == 0.4
    with pytest.raises(ValueError):
        s.on_event(TrialRetried(2, 2))

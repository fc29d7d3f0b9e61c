"""Code that saves checkpoints and never reads trial.latest_checkpoint (PyTorch's "saving and
loading a general checkpoint" tutorial followed halfway: the torch.save, not the torch.load)
trains every promoted trial from scratch. Nothing said so: the search ran, spending again what
earlier segments trained. The job now tells, the result carries it, and the master and status
say it once."""
import json
import sys

import pytest
import yaml

from asha_hpc.protocol.journal import read_journal

from helpers import cli

# the tutorial's loop, written for asha_hpc from the README, but for the load
TUTORIAL = '''
import torch
from torch import nn


def train(trial):
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=trial.hparams["lr"])
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    epoch = 0
    with open(trial.dir / "starts", "a") as f:
        f.write(f"{epoch}\\n")
    for segment in trial.segments():
        while epoch < segment.length:
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
            epoch += 1
        with trial.save_checkpoint() as path:
            torch.save({"epoch": epoch, "model_state_dict": model.state_dict(),
                        "optimizer_state_dict": optimizer.state_dict(), "loss": loss},
                       path / "checkpoint.tar")
        segment.report(loss=loss.item())
'''

PLAIN = '''
import json
import sys


def train(trial):
    epoch = 0
    if READS and trial.latest_checkpoint is not None:
        epoch = json.loads((trial.latest_checkpoint / "s.json").read_text())["epoch"]
    with open(trial.dir / "starts", "a") as f:
        f.write(f"{epoch}\\n")
    for segment in trial.segments():
        epoch = segment.length
        with trial.save_checkpoint(length=epoch) as p:
            (p / "s.json").write_text(json.dumps({"epoch": epoch}))
        segment.report(loss=1.0 / epoch + trial.hparams["lr"])
'''


def search(tmp_path, code: str, workers: int, trials: int = 4, concurrent: int = 2):
    (tmp_path / "m.py").write_text(code)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "unread", "entrypoint": "m:train",
        "searcher": {"name": "async_halving", "metric": "loss", "max_length": 4, "num_rungs": 2,
                     "divisor": 2, "max_trials": trials, "max_concurrent_trials": concurrent},
        "hyperparameters": {"lr": {"type": "log", "minval": -3, "maxval": -1}},
        "poll_interval_s": 0.2, "local": {"gpus": [], "workers": workers}}))
    exp = tmp_path / "run"
    err = cli("run", tmp_path / "c.yaml", "--exp-dir", exp).stderr
    results = [r for r in read_journal(exp / "journal.jsonl")[0] if r["kind"] == "result"]
    return exp, err, results


def said(exp, err):
    lines = [x for x in err.splitlines() if "never read trial.latest_checkpoint" in x]
    events = [e["text"] for e in json.loads(cli("status", exp, "--json").stdout)["events"]
              if "never read its checkpoint" in e["text"]]
    return lines, events


def test_the_tutorials_save_without_its_load_is_said(tmp_path):
    pytest.importorskip("torch")
    exp, err, results = search(tmp_path, TUTORIAL, workers=0, trials=2)
    promoted = [r for r in results if r["segment"] == 1]
    assert promoted and all(r["ignored_checkpoint"].startswith(str(exp / "trials")) for r in promoted)
    assert not any(r.get("ignored_checkpoint") for r in results if r["segment"] == 0)
    tid = promoted[0]["trial"]
    assert (exp / "trials" / f"{tid:05d}" / "starts").read_text().split() == ["0", "0"]
    lines, events = said(exp, err)
    assert len(lines) == 1 and lines[0].startswith(f"trial {tid} had a checkpoint to go "
                                                   f"on from (t{tid:05d}-s000-a00-0001)")
    assert "Load the model, the optimizer and the epoch from trial.latest_checkpoint" in lines[0]
    # on each promoted trial's result line
    assert len(events) == len(promoted)
    assert events[0].endswith("; its code never read its checkpoint (trial.latest_checkpoint, "
                              "ASHA_LATEST_CHECKPOINT): it trained from scratch")
    # and the job's log, where the code's own output is
    logs = [p.read_text() for p in (exp / "jobs").glob("*_log.err")]
    assert sum(f"asha_hpc: trial {tid} had a checkpoint to go on from" in t for t in logs) == 1
    # and status, for as long as the experiment lasts (the events scroll on)
    assert f"checkpoints: trial {tid} had a checkpoint to go on from" in cli("status", exp).stdout


# an Optuna objective ported with segments and reports, and no checkpoint at all
NEVER_SAVES = '''
def train(trial):
    epoch = 0
    with open(trial.dir / "starts", "a") as f:
        f.write(f"{epoch}\\n")
    for segment in trial.segments():
        for epoch in range(epoch, segment.length):
            accuracy = 1.0 - 1.0 / (epoch + 2) - trial.hparams["lr"]
            trial.report_metrics(epoch + 1, accuracy=accuracy)
        epoch = segment.length
        segment.report(loss=1.0 - accuracy)
'''


def test_code_that_never_saves_a_checkpoint_is_told(tmp_path):
    exp, err, results = search(tmp_path, NEVER_SAVES, workers=0, trials=2)
    first = [r for r in results if r["segment"] == 0]
    assert first and all(r.get("no_checkpoint") for r in first)
    promoted = [r for r in results if r["segment"] == 1]
    assert promoted and not any(r.get("no_checkpoint") for r in promoted)  # at max_length
    tid = promoted[0]["trial"]
    assert (exp / "trials" / f"{tid:05d}" / "starts").read_text().split() == ["0", "0"]
    told = [x for x in err.splitlines() if "has no checkpoint" in x]
    assert len(told) == 1 and "its code never called trial.save_checkpoint" in told[0], err
    assert "checkpoints: trial " in cli("status", exp).stdout
    logs = [p.read_text() for p in (exp / "jobs").glob("*_log.err")]
    assert sum("reported its segment to length 2 and has no checkpoint" in t for t in logs) == 2


@pytest.mark.parametrize("workers", [0, 1])
def test_code_that_saves_is_not_told_it_has_none(tmp_path, workers):
    exp, err, results = search(tmp_path, PLAIN.replace("READS", "True"), workers)
    assert not any(r.get("no_checkpoint") for r in results)
    assert "has no checkpoint" not in err


@pytest.mark.parametrize("workers", [0, 1])
def test_code_that_reads_its_checkpoint_is_not_told(tmp_path, workers):
    exp, err, results = search(tmp_path, PLAIN.replace("READS", "True"), workers)
    assert any(r["segment"] == 1 for r in results)
    assert not any(r.get("ignored_checkpoint") for r in results)
    assert said(exp, err) == ([], [])


@pytest.mark.parametrize("best", [1, 2])
def test_a_warm_worker_is_told_where_a_call_had_a_checkpoint_not_where_it_goes_on_in_place(
        tmp_path, best):
    """One warm worker, two trials, one at a time: the better one is promoted. Trial 2 ran
    last, so its promotion goes on in place, in the call that holds its model: nothing to read.
    Trial 1's promotion is a new call, which must go on from its checkpoint."""
    code = PLAIN.replace("READS", "False").replace(
        'trial.hparams["lr"]', f"abs(trial.id - {best})")
    exp, err, results = search(tmp_path, code, workers=1, trials=2, concurrent=1)
    (promoted,) = [r for r in results if r["segment"] == 1]
    assert promoted["trial"] == best and promoted["worker"] == "w0000"
    starts = (exp / "trials" / f"{best:05d}" / "starts").read_text().split()
    lines, _ = said(exp, err)
    if best == 1:
        assert promoted["ignored_checkpoint"] and starts == ["0", "0"] and len(lines) == 1
    else:
        assert "ignored_checkpoint" not in promoted and starts == ["0"] and lines == []


# a Fabric script as a command: argparse, --resume optional (and left out of the config)
COMMAND = '''
import argparse, json, os, pathlib

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--epochs", type=int, default=4)
p.add_argument("--ckpt-dir", default="checkpoints")
p.add_argument("--resume", default="")
args = p.parse_args()
start = 0
if args.resume:
    start = json.loads((pathlib.Path(args.resume) / "last.json").read_text())["epoch"]
report = open(os.environ.get("ASHA_REPORT_FILE", os.devnull), "a")
for epoch in range(start, args.epochs):
    val_loss = args.lr + 1.0 / (epoch + 1)
    report.write(json.dumps({"step": epoch + 1, "metrics": {"val_loss": val_loss}}) + "\\n")
os.makedirs(args.ckpt_dir, exist_ok=True)
(pathlib.Path(args.ckpt_dir) / "last.json").write_text(json.dumps({"epoch": args.epochs}))
report.write(json.dumps({"metrics": {"val_loss": val_loss}}) + "\\n")
'''


@pytest.mark.parametrize("resumes", [False, True])
def test_a_command_that_never_loads_its_checkpoint_is_told(tmp_path, resumes):
    (tmp_path / "train.py").write_text(COMMAND)
    command = [sys.executable, "train.py", "${args}", "--epochs", "${ASHA_TARGET_LENGTH}",
               "--ckpt-dir", "${ASHA_CHECKPOINT_DIR}"]
    if resumes:
        command += ["--resume", "${ASHA_LATEST_CHECKPOINT}"]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "cmd", "command": command,
        "searcher": {"name": "async_halving", "metric": "val_loss", "max_length": 4,
                     "num_rungs": 2, "divisor": 2, "max_trials": 2, "max_concurrent_trials": 2},
        "hyperparameters": {"lr": {"type": "double", "minval": 0.001, "maxval": 0.1}},
        "poll_interval_s": 0.2, "local": {"gpus": [], "workers": 0}}))
    exp = tmp_path / "run"
    err = cli("run", tmp_path / "c.yaml", "--exp-dir", exp).stderr
    results = [r for r in read_journal(exp / "journal.jsonl")[0] if r["kind"] == "result"]
    promoted = [r for r in results if r["segment"] == 1]
    assert promoted
    told = [x for x in err.splitlines() if "counted its steps from the start again" in x]
    if resumes:
        assert told == [] and not any(r.get("ignored_checkpoint") for r in results)
        return
    assert all(r.get("ignored_checkpoint") for r in promoted)
    assert len(told) == 1 and "ASHA_LATEST_CHECKPOINT" in told[0], err
    # and how a Determined script, whose command takes no such argument, restores it
    assert "Trainer.fit(latest_checkpoint=...)" in told[0]
    assert "checkpoints: trial " in cli("status", exp).stdout
    logs = "".join(p.read_text() for p in (exp / "jobs").glob("*_log.err"))
    assert "curve started again at step 1, where its first run's did" in logs

"""Training code written the way tutorials write it, not the way this project's examples do:
a plain-PyTorch loop that reports ``step``, ``epoch``, ``time`` and torch tensors under names like
``val/loss``, and a command script that writes its report file by hand. Real jobs (local
backend), real master, then the read-only views. Only the PyTorch loop needs torch."""
import csv
import json
import os
import stat
import subprocess
import sys
import time

import pytest
import yaml

from asha_hpc.views.observe import curve_rows
from asha_hpc.views.status import open_experiment

PYTORCH_TUTORIAL = '''
import time

import torch
from torch import nn


class NeuralNetwork(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.linear_relu_stack = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.linear_relu_stack(x)


def train(trial):
    torch.manual_seed(0)
    X = torch.randn(256, 4)
    y = (X @ torch.tensor([1.0, -2.0, 0.5, 3.0])).unsqueeze(1)
    X_val, y_val = X[:64], y[:64]
    model = NeuralNetwork(trial.hparams["hidden"])
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=trial.hparams["lr"])
    epoch, step = 0, 0
    if trial.latest_checkpoint is not None:
        checkpoint = torch.load(trial.latest_checkpoint / "checkpoint.pt")
        model.load_state_dict(checkpoint["model_state_dict"])
        optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
        epoch, step = checkpoint["epoch"], checkpoint["step"]
    t0 = time.time()
    for segment in trial.segments():
        while epoch < segment.length:
            model.train()
            for batch in range(0, 256, 64):
                pred = model(X[batch:batch + 64])
                loss = loss_fn(pred, y[batch:batch + 64])
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                step += 1
                trial.report_metrics(step, loss=loss.detach(), epoch=epoch, step=step)
            epoch += 1
            with open(trial.dir / "epochs.log", "a") as f:
                f.write(f"{epoch}\\n")
        model.eval()
        with torch.no_grad():
            val_loss = loss_fn(model(X_val), y_val)
            correct = ((model(X_val) - y_val).abs() < 1.0).float().mean()
        with trial.save_checkpoint(length=epoch) as path:
            torch.save({"epoch": epoch, "step": step, "model_state_dict": model.state_dict(),
                        "optimizer_state_dict": optimizer.state_dict()}, path / "checkpoint.pt")
        segment.report({"val/loss": val_loss, "acc,top1": correct}, epoch=epoch, step=step,
                       time=time.time() - t0, device=str(X.device))
'''

COMMAND = '''#!/bin/sh
# a script in any language: read the target from the environment, append JSON lines
x=$(python3 -c "import json,os; print(json.loads(os.environ['ASHA_HPARAMS'])['x'])")
start=0
if [ -n "$ASHA_LATEST_CHECKPOINT" ]; then start=$(cat "$ASHA_LATEST_CHECKPOINT/epoch"); fi
e=$start
while [ "$e" -lt "$ASHA_TARGET_LENGTH" ]; do
  e=$((e + 1))
  echo "$e" >> "$ASHA_TRIAL_DIR/epochs.log"
  echo "{\\"step\\": $e, \\"metrics\\": {\\"train loss\\": $x, \\"time\\": 1.5, \\"step\\": $e}}" >> "$ASHA_REPORT_FILE"
done
echo "$e" > "$ASHA_CHECKPOINT_DIR/epoch"
echo "{\\"reached\\": $e}" >> "$ASHA_REPORT_FILE"
echo "{\\"metrics\\": {\\"score (%)\\": $x$e, \\"epoch\\": $e, \\"note\\": \\"fine\\"}}" >> "$ASHA_REPORT_FILE"
'''


def run(*args):
    r = subprocess.run([sys.executable, "-m", "asha_hpc.cli", *map(str, args)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def write_config(tmp_path, entrypoint, metric, hp, smaller=True, max_length=4):
    cfg = {"name": "foreign", "entrypoint": entrypoint,
           "searcher": {"name": "adaptive_asha", "metric": metric,
                        "max_length": {"epochs": max_length}, "max_trials": max_length, "max_concurrent_trials": 2, "mode": "aggressive",
                        "divisor": 2, "max_rungs": 3, "smaller_is_better": smaller},
           "hyperparameters": hp, "reproducibility": {"experiment_seed": 5},
           "poll_interval_s": 0.2, "max_restarts": 0, "local": {"gpus": [], "max_parallel": 2}}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def check_no_restart_from_scratch(exp_dir, top=4):
    """Each trial trained each epoch once: promotions continued from the checkpoint."""
    exp, cfg, records, st = open_experiment(exp_dir)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0
    for t in st.trials.values():
        epochs = [int(x) for x in (exp.trial_dir(t.id) / "epochs.log").read_text().split()]
        assert epochs == list(range(1, t.length + 1)), (t.id, epochs)
    assert max(t.length for t in st.trials.values()) == top
    return exp, st


@pytest.mark.slow
def test_plain_pytorch_tutorial_loop(tmp_path):
    pytest.importorskip("torch")
    # two trials, rungs at 1 and 2 epochs: each job imports torch, so few jobs
    (tmp_path / "tutorial.py").write_text(PYTORCH_TUTORIAL)
    cfg = write_config(tmp_path, "tutorial:train", "val/loss",
                       {"lr": {"type": "log", "minval": -3, "maxval": -1, "base": 10},
                        "hidden": {"type": "categorical", "vals": [8, 16]}}, max_length=2)
    exp_dir = tmp_path / "run"
    run("run", cfg, "--exp-dir", exp_dir)
    exp, st = check_no_restart_from_scratch(exp_dir, top=2)
    best = json.loads(run("best", exp_dir, "--json"))
    top = st.trials[best[0]["trial_id"]]
    assert top.length == 2 and best[0]["metric"] == top.metric
    assert set(top.last_metrics) == {"val/loss", "acc,top1", "epoch", "step", "time", "device"}
    assert top.last_metrics["epoch"] == 2 and top.last_metrics["step"] == 8
    rows = curve_rows(exp)
    batch = [r for r in rows if r["trial_id"] == top.id and "loss" in r["metrics"]]
    assert [r["step"] for r in batch] == list(range(1, 9))  # the second job went on at step 5
    assert [r["metrics"]["epoch"] for r in batch] == [e for e in range(2) for _ in range(4)]
    run("export", exp_dir, "--curves", tmp_path / "c.csv", "-o", tmp_path / "t.csv")
    with open(tmp_path / "c.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[:6] == ["trial_id", "key", "segment", "attempt", "step", "time"]
    assert {"loss", "epoch", "metrics.step", "metrics.time", "val/loss", "acc,top1"} <= set(header)
    with open(tmp_path / "t.csv", newline="") as f:
        assert "val/loss" in next(csv.reader(f))
    assert "val/loss" in run("status", exp_dir)


def test_command_script_with_its_own_names(tmp_path):
    script = tmp_path / "train.sh"
    script.write_text(COMMAND)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    cfg = write_config(tmp_path, ["./train.sh"], "score (%)",
                       {"x": {"type": "int", "minval": 1, "maxval": 9}}, smaller=False)
    exp_dir = tmp_path / "run"
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-m", "asha_hpc.cli", "run", str(cfg), "--exp-dir",
                        str(exp_dir)], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    exp, st = check_no_restart_from_scratch(exp_dir)
    for t in st.trials.values():  # "score (%)" is the digits of x then the epoch: 74 for x=7
        assert t.metric == float(f"{t.hparams['x']}{t.length}")
        assert t.last_metrics["note"] == "fine"
    points = [r for r in curve_rows(exp) if "train loss" in r["metrics"]]
    assert points and all(r["metrics"]["time"] == 1.5 and r["metrics"]["step"] == r["step"]
                          for r in points)
    status = json.loads(run("status", exp_dir, "--json"))
    assert status["metric"] == "score (%)" and status["best"]["trial_id"] == st.ranked()[0].id


LONG_COMMAND = '''#!/usr/bin/env python3
# a long segment: its curve points are written as it goes, then it waits to be let go
import json, os, pathlib, time

report = os.environ["ASHA_REPORT_FILE"]
go = pathlib.Path(os.environ["ASHA_TRIAL_DIR"]) / "go"
with open(report, "a") as f:
    for step in (1, 2):
        f.write(json.dumps({"step": step, "metrics": {"loss": 1.0 / step}}) + "\\n")
        f.flush()
deadline = time.time() + 120
while not go.exists() and time.time() < deadline:
    time.sleep(0.1)
with open(report, "a") as f:  # the last point without its newline, then the result
    f.write(json.dumps({"metrics": {"loss": 0.25}}) + "\\n")
    f.write(json.dumps({"step": 3, "metrics": {"loss": 1 / 3}}))
'''


def test_a_running_commands_curve_points_show_before_it_exits(tmp_path):
    """A command's learning-curve points reach the trial's curve while it still runs (the
    views see a long segment progress), each once; a last line without its newline counts."""
    script = tmp_path / "long.py"
    script.write_text(LONG_COMMAND)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": "long", "entrypoint": ["./long.py"],
        "searcher": {"name": "single", "metric": "loss", "max_length": {"epochs": 3}},
        "hyperparameters": {"x": 1}, "poll_interval_s": 0.2, "max_restarts": 0,
        "local": {"gpus": [], "max_parallel": 1}}))
    exp_dir = tmp_path / "run"
    master = subprocess.Popen([sys.executable, "-m", "asha_hpc.cli", "run", str(cfg),
                               "--exp-dir", str(exp_dir)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        seen: list = []
        deadline = time.time() + 90
        while time.time() < deadline and len(seen) < 2:
            time.sleep(0.3)
            if (exp_dir / "trials").is_dir():
                from asha_hpc.protocol.expdir import ExpDir
                seen = [(r["step"], r["metrics"]["loss"]) for r in curve_rows(ExpDir(exp_dir))]
        assert seen == [(1, 1.0), (2, 0.5)] and master.poll() is None
        (trial_dir,) = (p for p in (exp_dir / "trials").iterdir() if p.name.isdigit())
        (trial_dir / "go").touch()
        out, err = master.communicate(timeout=120)
        assert master.returncode == 0, err
    finally:
        master.kill()
    exp, cfg_, records, st = open_experiment(exp_dir)
    points = [(r["step"], r["metrics"]["loss"]) for r in curve_rows(exp)]
    assert points == [(1, 1.0), (2, 0.5), (3, 1 / 3), (3, 0.25)]
    assert [t.metric for t in st.trials.values()] == [0.25]

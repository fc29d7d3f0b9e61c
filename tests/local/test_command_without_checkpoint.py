"""A command whose checkpoint callback writes where its library writes by default (Keras's
``ModelCheckpoint("checkpoints/model.keras")``: the script's own folder, one file for every
trial) leaves ``ASHA_CHECKPOINT_DIR`` empty. Its promoted trials train from the start: the
job's log, the master and status say so. Its early stopping's ``reached`` line still says
how far it trained."""
import json
import sys

import yaml

from helpers import cli, final_state

# argparse, a per-epoch callback's curve lines, EarlyStopping after `stop_after` epochs in all
SCRIPT = '''
import argparse, json, os

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--epochs", type=int, default=10)
p.add_argument("--stop-after", type=int, default=100)
args = p.parse_args()
os.makedirs("checkpoints", exist_ok=True)
start = 0
report = open(os.environ["ASHA_REPORT_FILE"], "a")
for epoch in range(start, min(args.epochs, args.stop_after)):
    val_loss = args.lr / (epoch + 1)
    report.write(json.dumps({"step": epoch + 1, "metrics": {"val_loss": val_loss}}) + "\\n")
    with open("checkpoints/model.keras", "w") as f:  # ModelCheckpoint's default: not the trial's
        f.write(str(epoch))
report.write(json.dumps({"metrics": {"val_loss": val_loss}}) + "\\n")
if args.stop_after < args.epochs:
    report.write(json.dumps({"reached": args.stop_after}) + "\\n")
    report.write(json.dumps({"ended_early": "EarlyStopping: val_loss did not improve"}) + "\\n")
'''


def test_a_command_that_saves_nothing_is_told_and_its_early_stop_keeps_its_length(tmp_path):
    (tmp_path / "train.py").write_text(SCRIPT)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "nockpt", "command": [sys.executable, "train.py", "${args}",
                                      "--epochs", "${ASHA_TARGET_LENGTH}"],
        "searcher": {"name": "async_halving", "metric": "val_loss", "max_length": 8,
                     "num_rungs": 2, "divisor": 2, "max_trials": 2, "max_concurrent_trials": 1},
        "hyperparameters": {"lr": {"type": "double", "minval": 0.001, "maxval": 0.01},
                            "stop-after": 6},
        "poll_interval_s": 0.2, "local": {"gpus": [], "workers": 0}}))
    exp = tmp_path / "run"
    err = cli("run", tmp_path / "c.yaml", "--exp-dir", exp).stderr
    _, st = final_state(exp)
    ended = [t for t in st.trials.values() if t.ended_early is not None]
    assert [t.ended_early for t in ended] == [6]  # the promoted one stopped at 6 of 8
    logs = "".join(p.read_text() for p in (exp / "jobs").rglob("*.err"))
    assert "the command left ASHA_CHECKPOINT_DIR (" in logs
    assert "empty: this segment has no checkpoint, and a promoted trial trains again" in logs
    assert not list(exp.glob("trials/*/checkpoints/*"))
    # and the master, once, and status while the experiment lasts: the job's log is easy to miss
    assert sum("has no checkpoint" in x for x in err.splitlines()) == 1, err
    assert "checkpoints: trial " in cli("status", exp).stdout
    rows = {r["trial_id"]: r for r in json.loads(cli("best", exp, "--json", "--top", "2").stdout)}
    assert rows[ended[0].id]["trained"] == 6, rows

"""A trial whose newest checkpoint turns out incomplete (a file torn, or written by an
asynchronous checkpointer after its save) goes on from an older one or from the start: that
was a warning in the job's log only, while status said "completed"; the result now carries
it, and status's events say it."""
import json

import pytest
import yaml

from asha_hpc.protocol.journal import read_journal

from helpers import cli

TEARS = '''
import json
import shutil


def train(trial):
    epoch = 0
    if trial.latest_checkpoint is not None:
        epoch = json.loads((trial.latest_checkpoint / "s.json").read_text())["epoch"]
    with open(trial.dir / "starts", "a") as f:
        f.write(f"{epoch}\\n")
    for segment in trial.segments():
        epoch = segment.length
        with trial.save_checkpoint(length=epoch) as p:
            (p / "s.json").write_text(json.dumps({"epoch": epoch}))
        if segment.index == 0 and trial.hparams["older"]:  # an older complete one is left
            older = trial.latest_checkpoint.with_name(trial.latest_checkpoint.name[:-4] + "0000")
            shutil.copytree(trial.latest_checkpoint, older)
            (older / "s.json").write_text(json.dumps({"epoch": 1}))  # the same size
        if segment.index == 0:  # torn after its save, as a full disk or a late writer leaves it
            with open(trial.latest_checkpoint / "s.json", "a") as f:
                f.write(" ")
        segment.report(loss=1.0 / epoch + trial.hparams["x"])
'''


@pytest.mark.parametrize("older", [False, True], ids=["none older", "an older one"])
def test_a_trial_that_could_not_go_on_from_its_newest_checkpoint_says_so(tmp_path, older):
    (tmp_path / "tears.py").write_text(TEARS)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "tears", "entrypoint": "tears:train",
        "searcher": {"name": "async_halving", "metric": "loss", "max_length": 4, "num_rungs": 2,
                     "divisor": 2, "max_trials": 2, "max_concurrent_trials": 1},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}, "older": older},
        "poll_interval_s": 0.2, "local": {"gpus": [], "workers": 0}}))
    exp = tmp_path / "run"
    cli("run", tmp_path / "c.yaml", "--exp-dir", exp)
    recs = read_journal(exp / "journal.jsonl")[0]
    (promoted,) = [r for r in recs if r["kind"] == "result" and r["segment"] == 1]
    tid = promoted["trial"]
    starts = ["0", "1" if older else "0"]
    assert (exp / "trials" / f"{tid:05d}" / "starts").read_text().split() == starts
    (skipped,) = promoted["skipped_checkpoints"]
    assert skipped.endswith("(s.json has the wrong size)")
    status = json.loads(cli("status", exp, "--json").stdout)
    line = [e["text"] for e in status["events"] if e["text"].startswith(f"trial {tid} reached length 4")]
    assert line == [f"trial {tid} reached length 4: loss={promoted['metrics']['loss']:.6g}; it could "
                    f"not go on from its newest checkpoint, incomplete: "
                    f"t{tid:05d}-s000-a00-0001 (s.json has the wrong size), "
                    f"and {'went on from an older one' if older else 'trained from the beginning'}"]

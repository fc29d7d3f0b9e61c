"""A training function with synthetic learning curves, checkpoints and resume.

The "model" is a point (x, y); its loss decays toward (x - 0.3)^2 + (y + 0.1)^2 at a speed that
depends on lr and the optimizer. Each epoch sleeps a little so the search looks like training.
"""
import json
import math
import time

import asha_hpc

SECONDS_PER_EPOCH = 0.03


def loss_at(hp, epoch):
    floor = (hp["x"] - 0.3) ** 2 + (hp["y"] + 0.1) ** 2
    speed = hp["lr"] * (3.0 if hp["optimizer"] == "adam" else 1.0)
    return floor + math.exp(-speed * 20 * epoch) + 0.5 / (1 + epoch)


def train(trial: asha_hpc.Trial) -> None:
    hp = trial.hparams
    epoch = 0
    if trial.latest_checkpoint is not None:  # resume where the last segment stopped
        epoch = json.loads((trial.latest_checkpoint / "state.json").read_text())["epoch"]
    for segment in trial.segments():
        while epoch < segment.length:
            time.sleep(SECONDS_PER_EPOCH)
            epoch += 1
            trial.report_metrics(epoch, loss=loss_at(hp, epoch))
            if trial.should_stop():
                break
        with trial.save_checkpoint() as path:
            (path / "state.json").write_text(json.dumps({"epoch": epoch}))
        if epoch < segment.length:  # told to stop early: the segment continues later
            return
        segment.report(val_loss=loss_at(hp, epoch))

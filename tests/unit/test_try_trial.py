"""``asha_hpc.testing.try_trial``: a notebook user's smoke test of a training function before a
search (Optuna's FixedTrial). A function whose checkpoint holds all its state gives the same
results continued from its checkpoints as continued in place; one that forgets its optimizer's
state does not, which is what the check is for."""
import json

import pytest

from asha_hpc.errors import AshaError
from asha_hpc.testing import try_trial


def sgd_with_momentum(trial, keep_momentum=True):
    """A one-weight model trained by SGD with momentum, the way a tutorial's loop is written."""
    w, v, epoch = 5.0, 0.0, 0
    if trial.latest_checkpoint:
        state = json.loads((trial.latest_checkpoint / "state.json").read_text())
        w, epoch = state["w"], state["epoch"]
        v = state["v"] if keep_momentum else 0.0
    for segment in trial.segments():
        while epoch < segment.length:
            v = 0.9 * v + 2 * w
            w -= trial.hparams["lr"] * v
            epoch += 1
            trial.report_metrics(epoch, loss=w * w)
        with trial.save_checkpoint(length=epoch) as path:
            (path / "state.json").write_text(json.dumps({"w": w, "v": v, "epoch": epoch}))
        segment.report(loss=w * w)


def forgets_momentum(trial):
    sgd_with_momentum(trial, keep_momentum=False)


def test_a_checkpoint_that_holds_everything_gives_the_same_results_both_ways(tmp_path):
    restored = try_trial(sgd_with_momentum, {"lr": 0.01}, [1, 4, 16], metric="loss",
                         folder=tmp_path / "a")
    in_place = try_trial(sgd_with_momentum, {"lr": 0.01}, [1, 4, 16], metric="loss",
                         folder=tmp_path / "b", in_place=True)
    assert [r["length"] for r in restored] == [1, 4, 16]
    assert restored == in_place
    assert (tmp_path / "a" / "experiment" / "trials" / "00001" / "checkpoints").is_dir()


def test_a_checkpoint_that_forgets_the_optimizer_state_shows(tmp_path):
    restored = try_trial(forgets_momentum, {"lr": 0.01}, [1, 4, 16], metric="loss")
    in_place = try_trial(forgets_momentum, {"lr": 0.01}, [1, 4, 16], metric="loss",
                         in_place=True)
    assert restored[0] == in_place[0] and restored[-1] != in_place[-1]


def test_code_that_leaves_a_segment_without_its_report_is_named():
    def no_report(trial):
        for _ in trial.segments():
            return

    with pytest.raises(AshaError, match=r"the code reported segments \[\] of \[2, 8\]: each "
                                        r"segment of trial.segments\(\) ends with segment.report"):
        try_trial(no_report, {}, [2, 8], metric="loss")
    with pytest.raises(AshaError, match="increasing lengths"):
        try_trial(no_report, {}, [4, 2], metric="loss")

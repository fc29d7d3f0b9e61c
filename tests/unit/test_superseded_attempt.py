"""An attempt the master took for dead (its job found frozen) is marked in its run folder; its
job, should it wake, publishes no checkpoint: the previous one stays the latest."""
from pathlib import Path

import pytest

from asha_hpc.errors import AttemptSuperseded
from asha_hpc.job.trial import Trial
from asha_hpc.protocol.checkpoints import checkpoint_length, latest_checkpoint
from asha_hpc.protocol.expdir import ExpDir, superseded


def test_a_superseded_attempt_publishes_no_checkpoint(tmp_path: Path):
    exp = ExpDir.create(tmp_path / "e")
    key = "t00001-s000-a00"
    exp.mark_superseded(1, key, "no heartbeat")  # a job that never started: nothing to tell
    assert not exp.run_dir(1, key).exists()
    t = Trial(trial_id=1, hparams={}, trial_dir=exp.trial_dir(1), run_dir=exp.run_dir(1, key),
              segments=[4], first_segment=0, metric="loss", key=key)
    exp.run_dir(1, key).mkdir(parents=True)
    with t.save_checkpoint(length=1) as p:
        (p / "w").write_text("1")
    assert superseded(t.run_dir) is None
    exp.mark_superseded(1, key, "no heartbeat for 900 s")
    assert superseded(t.run_dir) == "no heartbeat for 900 s"
    with pytest.raises(AttemptSuperseded, match=r"\(t00001-s000-a00\) for dead \(no heartbeat "):
        try:
            with t.save_checkpoint(length=2) as p:
                (p / "w").write_text("2")
        except Exception:  # noqa: BLE001 - the training code's own handler does not stop it
            pytest.fail("AttemptSuperseded was caught by `except Exception`")
    assert checkpoint_length(latest_checkpoint(exp.checkpoints(1))) == 1
    assert [p.name for p in exp.checkpoints(1).iterdir()] == ["t00001-s000-a00-0001"]

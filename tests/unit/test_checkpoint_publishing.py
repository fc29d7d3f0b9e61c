"""What a job publishes as a checkpoint: nothing once the master took its attempt for dead
(its job found frozen), and nothing that an asynchronous checkpointer still writes."""
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


def test_a_checkpoint_still_written_after_its_block_stops_the_search(tmp_path: Path):
    """Orbax's checkpointers save asynchronously: called in the block without
    wait_until_finished(), they write on after it. The job then published a folder of Orbax's
    temporary files, or failed on a file that went away, and the next segment skipped the
    checkpoint as incomplete and trained from the start without a word."""
    import threading
    import time

    from asha_hpc.errors import FatalTrialError

    exp = ExpDir.create(tmp_path / "e")
    key = "t00001-s000-a00"
    t = Trial(trial_id=1, hparams={}, trial_dir=exp.trial_dir(1), run_dir=exp.run_dir(1, key),
              segments=[4], first_segment=0, metric="loss", key=key)
    with pytest.raises(FatalTrialError, match=r"\(state\.orbax-checkpoint-tmp/ocdbt is a "
                                              r"temporary file\).*wait_until_finished\(\)"):
        with t.save_checkpoint(length=1) as p:  # the save has not renamed its folder yet
            (p / "state.orbax-checkpoint-tmp").mkdir()
            (p / "state.orbax-checkpoint-tmp" / "ocdbt").write_text("x")

    def writes_on(folder: Path) -> None:  # an asynchronous save's thread
        # writes on, with no pause to miss under load, until the folder is removed under it
        end = time.time() + 2
        i = 0
        while time.time() < end:
            try:
                (folder / f"shard{i % 400}").write_bytes(b"x" * i)
            except OSError:
                return
            i += 1

    with pytest.raises(FatalTrialError, match="something wrote into it after the `with` block"):
        with t.save_checkpoint(length=2) as p:
            (p / "meta").write_text("m")
            writer = threading.Thread(target=writes_on, args=(p,))
            writer.start()
            time.sleep(0.05)
    writer.join()
    assert latest_checkpoint(exp.checkpoints(1)) is None
    with t.save_checkpoint(length=3) as p:  # waited for: published
        (p / "state").mkdir()
        (p / "state" / "ocdbt").write_text("x")
    assert checkpoint_length(latest_checkpoint(exp.checkpoints(1))) == 3

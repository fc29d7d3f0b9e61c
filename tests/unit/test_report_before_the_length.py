"""A loop that stopped early (its own early stopping, a break) and reports anyway: the result
counts at the segment's length while the checkpoint holds less. The job says so in its log."""
import pytest

from asha_hpc.job.trial import Trial
from asha_hpc.protocol.expdir import ExpDir


def _trial(tmp_path, length):
    exp = ExpDir.create(tmp_path / "exp")
    key = "t00001-s000-a00"
    return Trial(trial_id=1, hparams={}, trial_dir=exp.trial_dir(1), run_dir=exp.run_dir(1, key),
                 segments=[length], first_segment=0, metric="val_loss", key=key,
                 length_unit="epochs", max_length=8)


@pytest.mark.parametrize("saved", [3, 4])
def test_a_report_short_of_the_segments_length_is_warned_about(tmp_path, capsys, saved):
    t = _trial(tmp_path, 4)
    for segment in t.segments():
        with t.save_checkpoint(length=saved):
            pass
        segment.report(val_loss=0.3)
    err = capsys.readouterr().err
    said = "segment.report() for the segment to length 4, but the checkpoint saved last holds 3"
    assert (said in err) == (saved == 3) and ("warning" in err) == (saved == 3), err
    if saved == 3:  # what to do in either case: a loop's bug, or a library's early stopping
        assert "Report once the loop reached the segment's length" in err
        assert "raise asha_hpc.TrainingEndedEarly right after the report" in err


def test_a_report_followed_by_training_ended_early_is_a_final_models_and_says_nothing(
        tmp_path, capsys):
    import asha_hpc

    t = _trial(tmp_path, 4)
    with pytest.raises(asha_hpc.TrainingEndedEarly):
        for segment in t.segments():
            with t.save_checkpoint(length=3):
                pass
            segment.report(val_loss=0.3)
            raise asha_hpc.TrainingEndedEarly("early stopping after 3 rounds")
    assert capsys.readouterr().err == "" and t.reports[0].reported == {"val_loss": 0.3}


def test_a_report_inside_the_save_block_is_judged_by_the_length_being_saved(tmp_path, capsys):
    """Ray's ``train.report(metrics, checkpoint=Checkpoint.from_directory(d))`` inside its
    tempdir block, ported as it is: the report comes before the save ends. Nothing is short;
    a block saving less than the segment still is."""
    t = _trial(tmp_path, 4)
    for segment in t.segments():
        with t.save_checkpoint(length=4):
            segment.report(val_loss=0.3)
    assert "warning" not in capsys.readouterr().err
    t = _trial(tmp_path / "b", 4)
    for segment in t.segments():
        with t.save_checkpoint(length=3):
            segment.report(val_loss=0.3)
    assert "the checkpoint saved last holds 3" in capsys.readouterr().err

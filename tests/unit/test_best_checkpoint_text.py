"""What ``best`` says of a checkpoint whose length is not its result's: three different causes,
three different things to do."""
from asha_hpc.cli import _held_text


def test_a_checkpoint_at_the_results_length_needs_no_words():
    assert _held_text({"length": 9, "checkpoint": "/c"}) == ""


def test_a_later_segment_cut_short_trained_past_the_result():
    assert "trained to length 12, past its result's" in _held_text(
        {"length": 9, "checkpoint_length": 12})


def test_reported_after_the_last_save_without_ending_says_to_raise_after_the_report():
    text = _held_text({"length": 9, "checkpoint_length": 3})
    assert "short of its result's 9" in text and "raise asha_hpc.TrainingEndedEarly after" in text


def test_ended_by_its_code_after_the_last_save_says_to_save_before_raising():
    # an Optuna port's pruning at epoch 2, whose last checkpoint was the first rung's, at 1:
    # it did raise TrainingEndedEarly, so "raise it" would be the wrong advice
    text = _held_text({"length": 9, "checkpoint_length": 1, "trained": 2})
    assert "short of 2, where its code ended its training" in text
    assert "save a checkpoint before raising TrainingEndedEarly" in text
    assert "after the report" not in text

"""Counts a command takes are whole numbers above 0, refused by argparse naming the option
(``best --top 0`` said "no trial has reported a metric yet" of a search with 19 ranked)."""
import pytest

from asha_hpc.cli import main


@pytest.mark.parametrize("args", [["best", "x", "--top", "0"], ["best", "x", "--top", "-3"],
                                  ["logs", "x", "1", "--tail", "0"]])
def test_a_count_below_one_is_refused_naming_its_option(args, capsys):
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {args[-2]}: " in err and "is not above 0" in err

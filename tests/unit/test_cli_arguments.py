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


def test_a_librarys_log_lines_name_the_library_not_asha_hpc():
    """matplotlib's "Matplotlib is building the font cache" came out as ``asha-hpc: WARNING:
    ...``, a warning of ours to any reader. (A process of its own: pytest holds the root logger
    that ``main`` sets up.)"""
    import subprocess
    import sys

    code = """
import argparse, logging
from asha_hpc import cli
def fn(a):
    logging.getLogger("matplotlib.font_manager").warning("building the font cache")
    logging.getLogger("asha_hpc.master.loop").warning("ours")
    return 0
class P:
    def parse_args(self, argv):
        return argparse.Namespace(fn=fn, debug=False)
cli.build_parser = P
raise SystemExit(cli.main([]))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == ["matplotlib.font_manager: WARNING: building the font cache",
                                     "asha-hpc: WARNING: ours"]


def test_version_names_the_release_and_the_folder_format(capsys):
    """What a bug report needs: the release pyproject.toml gives (one number to bump) and the
    experiment folder format it writes."""
    import re
    from pathlib import Path

    from asha_hpc import __version__
    from asha_hpc.protocol.expdir import FORMAT

    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert __version__ == re.search(r'^version = "(.+)"$', pyproject, re.M).group(1)
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith(f"asha-hpc {__version__} (experiment folder "
                                              f"format {FORMAT}, Python ")


@pytest.mark.parametrize("entrypoint", ["__main__:train", "search.ipynb:train", "search:train"])
def test_a_function_from_a_notebook_says_where_it_must_live(tmp_path, capsys, entrypoint):
    """A notebook user's first tries: the function defined in a cell (``__main__``), the
    notebook file, the notebook's name as a module. Each said "module not found" or "not found
    on PATH", none what to do: put the function in a .py file next to the config."""
    (tmp_path / "search.ipynb").write_text("{}")
    (tmp_path / "c.yaml").write_text(
        f"name: nb\nentrypoint: '{entrypoint}'\n"
        "searcher: {name: random, metric: loss, max_length: 4, max_trials: 2}\n")
    assert main(["run", str(tmp_path / "c.yaml"), "--exp-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "a function defined in a notebook (or in the script that runs as __main__) cannot " \
           "be a job's" in err and "%%writefile train.py" in err, err
    assert not (tmp_path / "run").exists()


def test_wandbs_agent_function_kept_as_the_entrypoint_is_told_it_gets_a_trial(tmp_path, capsys):
    """W&B's sweep tutorial: ``def train(config=None): with wandb.init(config=config)``. Named
    as the entrypoint it got the Trial, which wandb.init took as an empty config, and failed at
    ``config.fc_layer_size`` with W&B's AttributeError."""
    from asha_hpc.job import notes
    from asha_hpc.job.entrypoint import resolve_entrypoint

    (tmp_path / "sweep_train.py").write_text("def train(config=None):\n    return config\n"
                                             "def fit(trial):\n    return trial\n")
    notes.take()
    resolve_entrypoint("sweep_train:train", str(tmp_path))
    said = notes.take()
    assert len(said) == 1 and said[0].startswith("sweep_train:train(config=None) is W&B's agent "
                                                 "function: here it gets the Trial")
    resolve_entrypoint("sweep_train:fit", str(tmp_path))
    assert notes.take() == []

"""``asha-hpc status asha_runs/`` (Determined's ``det e list``): a folder that holds experiment
folders lists them, one line each with its state, trials and best metric, newest first; a
folder that is neither says what to give."""
import json
import os
import shutil
from pathlib import Path

from helpers import cli

OLD = Path(__file__).parent.parent / "fixtures" / "old_release_b885ae9" / "run"


def test_a_folder_of_experiments_lists_them(tmp_path):
    runs = tmp_path / "asha_runs"
    shutil.copytree(OLD, runs / "old")
    (runs / "queued").mkdir()
    (runs / "queued" / "master.sbatch").write_text("#!/bin/bash\n")  # `submit`, not started
    (runs / "broken").mkdir()
    (runs / "broken" / "experiment.yaml").write_text("searcher: [\n")
    (runs / "notes").mkdir()  # not an experiment: not listed
    os.utime(runs / "old" / "experiment.yaml", (1_000_000_000, 1_000_000_000))
    os.utime(runs / "old" / "journal.jsonl", (1_000_000_000, 1_000_000_000))
    os.utime(runs / "old", (1_000_000_000, 1_000_000_000))
    out = cli("status", runs).stdout
    lines = out.splitlines()
    assert lines[0] == f"3 experiments in {runs}:"
    assert lines[1].split() == ["folder", "name", "state", "trials", "done", "best", "started"]
    assert lines[-2].startswith("broken: ") and "experiment.yaml" in lines[-2]
    row = next(line for line in lines if line.startswith("old "))
    assert row.split()[1:5] == ["old-release", "stopped", "0/6", "loss=0.218408"], row
    assert [line.split()[0] for line in lines[2:5]][-1] == "old"  # the oldest last
    assert any(line.split()[:2] == ["queued", "submitted"] for line in lines), out
    rows = json.loads(cli("status", runs, "--json").stdout)
    assert {r["folder"]: r["state"] for r in rows} == {"old": "stopped", "queued": "submitted",
                                                       "broken": "unreadable"}
    none = cli("status", runs / "notes", check=False)
    assert none.returncode != 0 and "not an experiment directory" in none.stderr
    # when the search started is its journal's first record, not the files' dates (a copy)
    line = (runs / "old" / "journal.jsonl").read_text().splitlines()[0]
    first = json.loads(line.split(" ", 1)[1])["time"]  # "crc {record}"
    assert next(r for r in rows if r["folder"] == "old")["started"] == first


def test_a_command_for_one_experiment_given_the_folder_of_them_names_them(tmp_path):
    """`best asha_runs/` meant one of the experiments in it: the message names them, the newest
    first, and how to list them, for every command that reads one experiment."""
    runs = tmp_path / "asha_runs"
    shutil.copytree(OLD, runs / "old")
    shutil.copytree(OLD, runs / "new")
    os.utime(runs / "old" / "experiment.yaml", (1_000_000_000, 1_000_000_000))
    for cmd in (["best"], ["export"], ["report", "-o", str(tmp_path / "r.html")], ["resume"]):
        out = cli(cmd[0], runs, *cmd[1:], check=False)
        assert out.returncode != 0, cmd
        assert (f"{runs}: a folder of 2 experiments (new, old), not one: give one of them, e.g. "
                f"{runs / 'new'} (the newest); `asha-hpc status {runs}` lists them") in out.stderr, \
            (cmd, out.stderr)


def test_an_experiment_whose_config_is_gone_says_to_put_back_the_one_it_started_with(tmp_path):
    exp = tmp_path / "old"
    shutil.copytree(OLD, exp)
    (exp / "experiment.yaml").unlink()
    for cmd in ("status", "best", "resume"):
        out = cli(cmd, exp, check=False)
        assert out.returncode != 0 and (
            f"{exp / 'experiment.yaml'}: no such file: the experiment's config is gone (its "
            "journal holds the rest); copy the config the search started with there") in out.stderr

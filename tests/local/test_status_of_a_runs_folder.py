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

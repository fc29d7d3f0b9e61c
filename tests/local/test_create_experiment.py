"""Creating an experiment (issue 16, points 3 and 8): atomic, so a racing `run` writes nothing;
the journal's first record pins the config; folders that are not ours or not empty are refused."""
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from asha_hpc.config import load_config
from asha_hpc.errors import AshaError
from asha_hpc.master.state import replay
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.protocol.journal import read_journal
from asha_hpc.testing.invariants import check_invariants

from helpers import cli, make_experiment


def _two_configs(tmp_path):
    cfg = make_experiment(tmp_path, searcher={"max_trials": 4})
    raw = yaml.safe_load(cfg.read_text())
    paths = []
    for seed, opt in ((11, "adam"), (22, "sgd")):
        raw["reproducibility"] = {"experiment_seed": seed}
        raw["hyperparameters"]["optimizer"] = opt
        p = tmp_path / f"exp-{seed}.yaml"
        p.write_text(yaml.safe_dump(raw))
        paths.append(p)
    return paths


@pytest.mark.parametrize("race", range(3))
def test_two_runs_racing_for_one_folder_one_wins_the_loser_writes_nothing(tmp_path, race):
    a_cfg, b_cfg = _two_configs(tmp_path)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "asha_hpc.cli", "run", "--backend", "simulated", "--exp-dir", str(run)]
    procs = [subprocess.Popen(cmd + [str(c)], stderr=subprocess.PIPE, text=True) for c in (a_cfg, b_cfg)]
    outs = [p.communicate(timeout=120)[1] for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 1], outs
    loser = outs[codes.index(1)]
    assert "Traceback" not in loser and len(loser.strip().splitlines()) == 1
    # while the winner runs, the loser says so, whichever moment it lost at, not "resume it";
    # a loser slow to start (a loaded machine) may find the winner's search over already
    if "already holds an experiment" not in loser:
        assert ("made its experiment" in loser or "holds a search that a master (host" in loser), \
            loser
        assert "asha-hpc status" in loser and "resume" not in loser, loser
    cfg = load_config(run / "experiment.yaml")
    recs = read_journal(run / "journal.jsonl")[0]
    assert recs[0]["kind"] == "init" and recs[0]["seed"] == cfg.experiment_seed
    st = replay(cfg, recs)  # the trials' hyperparameters are those of the winner's config
    winner_opt = {11: "adam", 22: "sgd"}[cfg.experiment_seed]
    assert {t.hparams["optimizer"] for t in st.trials.values()} == {winner_opt}
    assert check_invariants(cfg, recs) == []
    assert [n for n in os.listdir(tmp_path) if n.startswith(".run.creating-")] == []


def test_a_changed_config_is_refused_on_resume_and_status(tmp_path):
    cfg_path = make_experiment(tmp_path, searcher={"max_trials": 2})
    run = tmp_path / "run"
    cli("run", cfg_path, "--exp-dir", run, "--backend", "simulated")
    y = run / "experiment.yaml"
    original = y.read_text()
    raw = yaml.safe_load(original)
    raw["reproducibility"]["experiment_seed"] = 99
    y.write_text(yaml.safe_dump(raw))
    for args in (("resume", run), ("status", run), ("export", run)):
        r = cli(*args, check=False)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert "experiment.yaml no longer matches" in r.stderr and "seed 3 in the journal, 99 now" in r.stderr
    raw["reproducibility"]["experiment_seed"] = 3
    raw["hyperparameters"]["x"]["maxval"] = 5
    y.write_text(yaml.safe_dump(raw))
    raw["searcher"]["max_trials"] = 20
    y.write_text(yaml.safe_dump(raw))
    r = cli("status", run, check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert (f"{y} no longer matches the config this experiment started with "
            f"(hyperparameters.x.maxval: 1 then, 5 now; searcher.max_trials: 2 then, 20 now)"
            in r.stderr)
    # a copy names its own file, not the folder it was copied from
    shutil.copytree(run, tmp_path / "copy")
    r = cli("resume", tmp_path / "copy", check=False)
    assert r.returncode == 1 and f"{tmp_path / 'copy' / 'experiment.yaml'} no longer matches" in r.stderr
    assert "resuming" not in r.stderr and "live report" not in r.stderr  # only why it stops
    y.write_text(original)
    assert cli("status", run).returncode == 0


def test_exp_dir_that_is_not_empty_or_not_ours_is_refused_and_left_alone(tmp_path):
    cfg_path = make_experiment(tmp_path, searcher={"max_trials": 2})
    notes = tmp_path / "notes"
    notes.mkdir(mode=0o755)
    (notes / "todo.txt").write_text("mine")
    r = cli("run", cfg_path, "--exp-dir", notes, "--backend", "simulated", check=False)
    assert r.returncode == 1 and "is not empty and is not an experiment" in r.stderr
    assert os.listdir(notes) == ["todo.txt"] and (notes.stat().st_mode & 0o777) == 0o755
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 12345, 12345)
    r = cli("run", cfg_path, "--exp-dir", theirs, "--backend", "simulated", check=False)
    assert r.returncode == 1 and "owned by uid 12345, not by you" in r.stderr and "chmod" not in r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    cli("run", cfg_path, "--exp-dir", empty, "--backend", "simulated")  # an empty folder of ours is fine
    with pytest.raises(AshaError, match="already holds an experiment"):
        ExpDir.create_new(empty, {})

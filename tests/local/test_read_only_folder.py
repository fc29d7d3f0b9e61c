"""An experiment folder this user cannot write (a colleague's search, a file system mounted
read-only on a login node): the commands that only read it work; those that must write say so
in one line that names the folder, instead of a traceback, and change nothing."""
from __future__ import annotations

import subprocess

import pytest

from asha_hpc.cli import main
from asha_hpc.launch import create_experiment
from asha_hpc.master.loop import Master

from helpers import mount_tmpfs, sim_cfg


@pytest.fixture
def read_only_search(tmp_path):
    """A completed simulated search on a tmpfs, then remounted read-only (root only: skipped
    with the reason otherwise)."""
    fs = tmp_path / "fs"
    mount_tmpfs(fs, "32m")
    try:
        cfg = sim_cfg(trials=12, failure_rate=0.0)
        cfg.searcher.max_compute = 300
        exp = create_experiment(cfg, fs / "exp")
        assert Master(exp, cfg, progress=lambda s: None).run().lifecycle == "completed"
        subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
        yield exp.root
    finally:
        subprocess.run(["umount", "-l", str(fs)], check=False)


def test_reading_works_and_writing_is_one_line(read_only_search, tmp_path, capsys, caplog):
    exp = str(read_only_search)
    journal = (read_only_search / "journal.jsonl").read_bytes()
    for args in (["status", exp], ["status", exp, "--json"], ["best", exp],
                 ["export", exp, "-o", str(tmp_path / "t.csv")],
                 ["report", exp, "-o", str(tmp_path / "r.html")]):
        assert main(args) == 0, args
    capsys.readouterr()
    for args in (["cancel", exp], ["resume", exp], ["resume", exp, "--max-compute", "900"],
                 ["resume", exp, "--retry-failed"]):
        assert main(args) == 1, args
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1] == (
            f"asha-hpc: error: cannot write in {exp}: Read-only file system; `asha-hpc "
            f"{args[0]}` writes to the experiment folder: run it as the user who owns the "
            "folder, where its file system is writable (status, best, export and report only "
            "read)"), args
        assert not any("Traceback" in line or "WARNING" in line for line in err), err
    # nor a warning that the live report could not be written: no master started
    assert not [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert (read_only_search / "journal.jsonl").read_bytes() == journal

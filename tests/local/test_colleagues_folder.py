"""A colleague's experiment folder, shared read-only (`chmod -R go+rX`): the commands that only
read it work for another user; those that would run its master (resume, cancel) refuse in one
line that names the folder and why, and change nothing.

The other user is this one without its capabilities (uid 0 with none, as `setpriv` leaves it):
the file permissions then hold as for any user who does not own the folder, and the Python of
the tests (under /root) stays usable."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from asha_hpc.launch import create_experiment
from asha_hpc.master.loop import Master

from helpers import sim_cfg


def _colleague(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--",
                           sys.executable, "-m", "asha_hpc.cli", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=120,
                          env=dict(os.environ, MPLCONFIGDIR=str(cwd / ".mpl")))


@pytest.fixture
def shared_search(tmp_path):
    """A completed simulated search owned by another user (nobody), readable by all."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv, to act as another user")
    cfg = sim_cfg(trials=12, failure_rate=0.0)
    exp = create_experiment(cfg, tmp_path / "exp")
    assert Master(exp, cfg, progress=lambda s: None).run().lifecycle == "completed"
    for root, _dirs, files in os.walk(exp.root):
        for name in [root] + [os.path.join(root, f) for f in files]:
            os.chown(name, 65534, 65534)
            os.chmod(name, 0o755 if os.path.isdir(name) else 0o644)
    probe = _colleague("--help", cwd=tmp_path)
    if probe.returncode != 0:
        pytest.skip(f"cannot drop capabilities here: {probe.stderr.strip()[-200:]}")
    return exp.root


def test_a_colleague_reads_it_and_cannot_change_it(shared_search, tmp_path):
    exp = str(shared_search)
    before = {p: p.read_bytes() for p in shared_search.rglob("*") if p.is_file()}
    out = tmp_path / "mine"
    out.mkdir()
    for args in (["status", exp], ["status", exp, "--json"], ["best", exp],
                 ["export", exp, "-o", str(out / "t.csv")],
                 ["report", exp, "-o", str(out / "r.html")]):
        r = _colleague(*args, cwd=out)
        assert r.returncode == 0, (args, r.stderr[-2000:])
        assert "Traceback" not in r.stderr, (args, r.stderr[-2000:])
    assert (out / "t.csv").stat().st_size > 0 and (out / "r.html").stat().st_size > 0
    for args in (["cancel", exp], ["resume", exp], ["resume", exp, "--max-compute", "900"],
                 ["resume", exp, "--retry-failed"]):
        r = _colleague(*args, cwd=out)
        err = r.stderr.strip().splitlines()
        assert r.returncode == 1, (args, r.stderr[-2000:])
        assert err[-1] == (
            f"asha-hpc: error: {exp}: owned by uid 65534, not by you; refusing to load results "
            "or pickles from it (run it as the user who owns it, or copy the experiment as "
            "yourself)"), (args, err)
        assert not any("Traceback" in line for line in err), err
    after = {p: p.read_bytes() for p in shared_search.rglob("*") if p.is_file()}
    assert after == before


def test_a_new_search_inside_a_colleagues_folder_is_refused_in_one_line(shared_search, tmp_path):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(yaml.safe_dump(sim_cfg(trials=2).to_dict()))
    target = shared_search / "mine"
    r = _colleague("run", str(cfg), "--exp-dir", str(target), cwd=tmp_path)
    assert r.returncode == 1, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1] == (
        f"asha-hpc: error: {target}: cannot create the experiment folder (Permission denied); "
        "choose another with --exp-dir")
    assert not target.exists()


def test_a_folder_not_shared_is_one_line_and_a_folder_of_experiments_lists_the_others(
        shared_search, tmp_path):
    """A lab-mate reads the group's runs/ folder, where the newest search is still private
    (0700, as asha-hpc makes it): its status says it is not shared with them (it said "cannot
    write", for a read), and status of runs/ lists the shared ones (it stopped at the private
    one and listed none)."""
    private = shared_search.parent / "private"
    shutil.copytree(shared_search, private)
    for root, _dirs, files in os.walk(private):
        for name in [root] + [os.path.join(root, f) for f in files]:
            os.chown(name, 65534, 65534)
    os.chmod(private, 0o700)
    r = _colleague("status", str(private), cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"asha-hpc: error: cannot read {private}") and "not shared" in line
    assert "cannot write" not in line and "chmod -R g+rX" in line
    r = _colleague("status", str(shared_search.parent), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {ln.split()[0]: ln for ln in r.stdout.splitlines() if ln.split()}
    assert "completed" in rows[shared_search.name], r.stdout
    assert "unreadable" in r.stdout and "not shared with you" in r.stdout, r.stdout


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_files_the_master_writes_are_never_writable_by_others_and_readable_as_the_umask_says(
        tmp_path, umask):
    """The folder keeps an experiment private (0700); the files in it are created readable, so
    that a folder its owner shared (`chmod -R g+rX`) stays shared as the master rewrites its
    lease (which tells a reader that the master runs: 0600, a lab-mate's status said "stopped,
    resume it" of a running search) and writes new trials' files."""
    cfg = sim_cfg(trials=6, failure_rate=0.0)
    old = os.umask(umask)
    try:
        exp = create_experiment(cfg, tmp_path / "exp")
        m = Master(exp, cfg, progress=lambda s: None)
        assert m.start()
        m.step()
        modes = {p: p.stat().st_mode & 0o777 for p in exp.root.rglob("*") if p.is_file()}
        assert exp.lease in modes and exp.journal in modes
        m.run()
    finally:
        os.umask(old)
    modes.update({p: p.stat().st_mode & 0o777 for p in exp.root.rglob("*") if p.is_file()})
    assert all(mode & 0o022 == 0 for mode in modes.values()), modes  # never writable by others
    assert {mode for mode in modes.values()} == {0o644 & ~umask}, modes
    assert exp.root.stat().st_mode & 0o777 == 0o700  # private until its owner shares it


def test_resume_of_a_colleagues_running_search_says_it_runs(shared_search, tmp_path):
    """A lab-mate's `resume` of a search whose master runs now: it said "copy the experiment
    as yourself", which would start a second search of it; it says the owner's master runs it."""
    from asha_hpc.master.lease import Lease
    from asha_hpc.protocol.expdir import ExpDir

    lease = Lease(ExpDir(shared_search).lease)
    lease.acquire()  # this process stands for the owner's master
    try:
        os.chown(lease.path, 65534, 65534)
        r = _colleague("resume", str(shared_search), cwd=tmp_path)
        assert r.returncode == 1, r.stderr[-2000:]
        (line,) = r.stderr.strip().splitlines()
        assert f"{shared_search}: a master (host " in line and "of its owner runs this search " \
            "now; only its owner can resume or cancel it" in line and "copy" not in line, line
    finally:
        lease.release()

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

from asha_hpc.cli import _create_experiment
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
    exp = _create_experiment(cfg, tmp_path / "exp")
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

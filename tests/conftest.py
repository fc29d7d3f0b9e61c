"""Shared fixtures. Append new fixtures below; keep this file small.

``@pytest.mark.slurm`` tests need the local Slurm cluster (``bash tools/local_slurm.sh start``):
they run if ``sinfo`` answers and the node is usable; otherwise they fail under CI (env CI set,
not "0"/"false") and are skipped elsewhere.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Optional

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
START_HINT = "start it with `bash tools/local_slurm.sh start`"

_slurm_status: Optional[Dict[str, object]] = None


def _in_ci() -> bool:
    value = os.environ.get("CI", "").strip().lower()
    return value not in ("", "0", "false", "no")


def _probe_slurm() -> Dict[str, object]:
    """{"ok": bool, "why": str, "states": [...], "partitions": [...]} (probed once)."""
    global _slurm_status
    if _slurm_status is not None:
        return _slurm_status
    status: Dict[str, object] = {"ok": False, "why": "", "states": [], "partitions": []}
    if shutil.which("sinfo") is None:
        status["why"] = "sinfo not found"
    else:
        try:
            res = subprocess.run(["sinfo", "-h", "-o", "%P|%T"], capture_output=True,
                                 text=True, timeout=20)
        except (OSError, subprocess.SubprocessError) as e:
            res = None
            status["why"] = f"sinfo failed: {e}"
        if res is not None and res.returncode != 0:
            status["why"] = f"sinfo failed: {res.stderr.strip()[:200]}"
        elif res is not None:
            rows = [line.split("|", 1) for line in res.stdout.splitlines() if "|" in line]
            states = sorted({s for _, s in rows})
            status["states"] = states
            status["partitions"] = [p.rstrip("*") for p, _ in rows]
            # idle; mixed/allocated while other tests' jobs run
            if any(s.rstrip("*~#$@^-") in ("idle", "mixed", "allocated") for s in states):
                status["ok"] = True
            else:
                status["why"] = f"no usable node (states: {', '.join(states) or 'none'})"
    _slurm_status = status
    return status


def _require_slurm() -> Dict[str, object]:
    status = _probe_slurm()
    if not status["ok"]:
        if _in_ci():
            pytest.fail(f"Slurm not running under CI ({status['why']}): {START_HINT}",
                        pytrace=False)
        pytest.skip(f"Slurm not running: {START_HINT} ({status['why']})")
    return status


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("slurm") is not None:
        _require_slurm()


@pytest.fixture(scope="session")
def slurm_cluster() -> Dict[str, object]:
    """The local Slurm cluster's probe result (skips/fails like ``@pytest.mark.slurm``)."""
    return _require_slurm()


@pytest.fixture
def tmp_exp_dir(tmp_path: Path) -> Path:
    """A fresh experiment directory (with ``inbox/``) on a filesystem Slurm jobs can reach."""
    exp = tmp_path / "exp"
    (exp / "inbox").mkdir(parents=True)
    return exp


def require_module(name: str):
    """Import an optional dependency a test needs (torch, sklearn): skip with the install
    command when it is missing, but fail under CI, where .ci/run installs it."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        msg = f"{name} is not installed: pip install -e '.[examples]'"
        if _in_ci():
            pytest.fail(f"{msg} (CI installs it in .ci/run)", pytrace=False)
        pytest.skip(msg)

"""Shared fixtures. Append new fixtures below; keep this file small.

``@pytest.mark.slurm`` tests need the local Slurm cluster (``bash tools/local_slurm.sh start``):
they run if ``sinfo`` answers and the node is usable; otherwise they fail under CI (env CI set,
not "0"/"false") and are skipped elsewhere. On another cluster they submit to its default
partition, or to ``$ASHA_TEST_SLURM_PARTITION``; the few that need the local cluster's own
partitions (``local_partitions``) are skipped there, with the reason.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
START_HINT = "start it with `bash tools/local_slurm.sh start`"

_slurm_status: dict[str, object] | None = None

# the partition Slurm tests submit to (None: the cluster's default)
TEST_PARTITION: str | None = os.environ.get("ASHA_TEST_SLURM_PARTITION", "").strip() or None
# what tools/local_slurm.sh makes: debug (the default, no MaxTime) and short (MaxTime 10 min)
LOCAL_PARTITIONS = {"debug": "infinite", "short": "10:00"}


def partition_options() -> dict[str, str]:
    """``{"partition": ...}`` for a test's slurm options, or ``{}`` for the default one."""
    return {"partition": TEST_PARTITION} if TEST_PARTITION else {}


def _in_ci() -> bool:
    value = os.environ.get("CI", "").strip().lower()
    return value not in ("", "0", "false", "no")


def _probe_slurm() -> dict[str, object]:
    """{"ok": bool, "why": str, "states": [...], "partitions": [...]} (probed once)."""
    global _slurm_status
    if _slurm_status is not None:
        return _slurm_status
    status: dict[str, object] = {"ok": False, "why": "", "states": [], "partitions": []}
    if shutil.which("sinfo") is None:
        status["why"] = "sinfo not found"
    else:
        try:
            res = subprocess.run(["sinfo", "-h", "-o", "%P|%T|%l"], capture_output=True,
                                 text=True, timeout=20)
        except (OSError, subprocess.SubprocessError) as e:
            res = None
            status["why"] = f"sinfo failed: {e}"
        if res is not None and res.returncode != 0:
            status["why"] = f"sinfo failed: {res.stderr.strip()[:200]}"
        elif res is not None:
            rows = [(line.split("|") + ["", ""])[:3] for line in res.stdout.splitlines() if "|" in line]
            states = sorted({s for _, s, _ in rows})
            status["states"] = states
            status["partitions"] = sorted({p.rstrip("*") for p, _, _ in rows})
            status["limits"] = {p.rstrip("*"): lim for p, _, lim in rows}
            default = [p.rstrip("*") for p, _, _ in rows if p.endswith("*")]
            parts = ", ".join(status["partitions"]) or "none"  # type: ignore[arg-type]
            # idle; mixed/allocated while other tests' jobs run; completing for the moment a
            # job's epilog runs (the node takes jobs again right after)
            usable = ("idle", "mixed", "allocated", "completing")
            if not any(s.rstrip("*~#$@^-") in usable for s in states):
                status["why"] = f"no usable node (states: {', '.join(states) or 'none'})"
            elif TEST_PARTITION and TEST_PARTITION not in status["partitions"]:  # type: ignore[operator]
                status["why"] = (f"ASHA_TEST_SLURM_PARTITION={TEST_PARTITION} is not a "
                                 f"partition of this cluster (partitions: {parts})")
            elif not TEST_PARTITION and not default:
                status["why"] = (f"this cluster has no default partition: name one in "
                                 f"ASHA_TEST_SLURM_PARTITION (partitions: {parts})")
            else:
                status["ok"] = True
    _slurm_status = status
    return status


def _require_slurm() -> dict[str, object]:
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
def slurm_cluster() -> dict[str, object]:
    """The local Slurm cluster's probe result (skips/fails like ``@pytest.mark.slurm``)."""
    return _require_slurm()


@pytest.fixture(scope="session")
def local_partitions(slurm_cluster) -> dict[str, object]:
    """For the tests built on the local cluster's partitions (time limits read from and
    capped at 'short''s MaxTime): skipped on a cluster without them, with the reason."""
    limits = slurm_cluster.get("limits") or {}
    missing = {p: lim for p, lim in LOCAL_PARTITIONS.items() if limits.get(p) != lim}  # type: ignore[union-attr]
    if missing:
        want = ", ".join(f"{p} (MaxTime {lim})" for p, lim in LOCAL_PARTITIONS.items())
        msg = (f"needs the partitions of the local test cluster, {want} "
               f"(`bash tools/local_slurm.sh start`); this cluster has "
               f"{', '.join(f'{p} ({lim})' for p, lim in sorted(limits.items())) or 'none'}")  # type: ignore[union-attr]
        if _in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return slurm_cluster


@pytest.fixture(autouse=True, scope="session")
def _temporary_files_under_pytests_base(tmp_path_factory) -> None:
    """What the jobs under test leave in the temporary folder goes under pytest's own base
    folder, which pytest prunes: torchrun keeps a log folder per run (/tmp/torchelastic_*)
    and never removes it."""
    tmp = tmp_path_factory.getbasetemp() / "TMPDIR"
    tmp.mkdir(exist_ok=True)
    os.environ["TMPDIR"] = str(tmp)


@pytest.fixture
def tmp_exp_dir(tmp_path: Path) -> Path:
    """A fresh experiment directory (with ``inbox/``) on a filesystem Slurm jobs can reach."""
    exp = tmp_path / "exp"
    (exp / "inbox").mkdir(parents=True)
    return exp


def require_module(name: str, extra: str = "examples", package: str | None = None):
    """Import an optional dependency a test needs (torch, sklearn): skip with the install
    command when it is missing, but fail under CI, where .ci/run installs it. ``package``: a
    package of no extra, installed by name (pip install PACKAGE)."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        msg = (f"{name} is not installed: pip install {package}" if package else
               f"{name} is not installed: pip install -e '.[{extra}]'")
        if _in_ci():
            pytest.fail(f"{msg} (CI installs it in .ci/run)", pytrace=False)
        pytest.skip(msg, allow_module_level=True)


@pytest.fixture
def cleanup():
    """For Slurm tests: ``(names, procs)``; at the test's end the processes still running in
    ``procs`` (masters started by the test) are killed and every job of the experiments named in
    ``names`` still queued or running is cancelled."""
    from slurm_helpers import cancel_leftovers

    names: list[str] = []
    procs: list[subprocess.Popen] = []
    yield names, procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    cancel_leftovers(names)

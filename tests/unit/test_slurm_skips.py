"""The Slurm tests on a cluster that is not the local test cluster: they use its default
partition (or $ASHA_TEST_SLURM_PARTITION), and those that need the local cluster's partitions
are skipped with the reason instead of failing with 'invalid partition specified: short'.
A fake ``sinfo`` plays the other cluster; pytest runs in a subprocess, outside CI."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # three pytest runs in subprocesses


def run_pytest(tmp_path: Path, sinfo_out: str, test: str, **env: str) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    sinfo = bin_dir / "sinfo"
    sinfo.write_text(f"#!/bin/sh\nprintf '{sinfo_out}'\n")
    sinfo.chmod(0o755)
    e = {k: v for k, v in os.environ.items() if k not in ("CI", "ASHA_TEST_SLURM_PARTITION")}
    e.update(env, PATH=f"{bin_dir}{os.pathsep}{e.get('PATH', '')}")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                        str(TESTS / test)], capture_output=True, text=True, env=e, cwd=TESTS.parent,
                       timeout=120)
    return r.stdout + r.stderr


def test_other_cluster_skips_what_needs_the_local_partitions(tmp_path):
    out = run_pytest(tmp_path, r"gpu*|idle|2-00:00:00\ncpu|idle|infinite\n",
                     "slurm/test_slurm_timelimits.py::test_maxtime_read_from_the_cluster")
    assert "1 skipped" in out, out
    assert "needs the partitions of the local test cluster, debug (MaxTime infinite), short " \
           "(MaxTime 10:00)" in out and "this cluster has cpu (infinite), gpu (2-00:00:00)" in out


def test_a_partition_named_that_the_cluster_lacks_is_a_skip_with_the_reason(tmp_path):
    out = run_pytest(tmp_path, r"debug*|idle|infinite\nshort|idle|10:00\n",
                     "slurm/test_slurm_timelimits.py::test_maxtime_read_from_the_cluster",
                     ASHA_TEST_SLURM_PARTITION="a100")
    assert "1 skipped" in out and "ASHA_TEST_SLURM_PARTITION=a100 is not a partition of this " \
                                  "cluster (partitions: debug, short)" in out, out


def test_no_default_partition_asks_for_one(tmp_path):
    out = run_pytest(tmp_path, r"gpu|idle|infinite\n",
                     "slurm/test_slurm_timelimits.py::test_maxtime_read_from_the_cluster")
    assert "1 skipped" in out and "no default partition: name one in ASHA_TEST_SLURM_PARTITION" in out, out

"""What each test costs in CPU, not in wall time: CI runs its lanes on two saturated cores, so its
length follows the CPU work, and ``--durations`` mostly shows how busy the machine was while a
test ran (light tests that waited behind heavy ones look expensive).

    PYTHONPATH=tools python -m pytest -p pytest_cpu -m "not slurm" -n 2 ...
    python tools/pytest_cpu.py            # the tests and files that cost the most

Each test's CPU is this process's and its waited-for children's (``getrusage``): jobs that a
master started and reaped count, processes nobody waited for do not. One tab-separated line per
test (CPU of the pytest process, of its children, wall seconds, test id) goes to
``$PYTEST_CPU_OUT-<pid>.txt`` (default /tmp/pytest_cpu), one file per xdist worker."""
from __future__ import annotations

import glob
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

OUT = os.environ.get("PYTEST_CPU_OUT", "/tmp/pytest_cpu")


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: Any, nextitem: Any) -> Iterator[None]:
    own, kids, t0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN), time.monotonic()
    yield
    own, kids = _cpu(resource.RUSAGE_SELF) - own, _cpu(resource.RUSAGE_CHILDREN) - kids
    with open(f"{OUT}-{os.getpid()}.txt", "a") as f:
        f.write(f"{own:.2f}\t{kids:.2f}\t{time.monotonic() - t0:.2f}\t{item.nodeid}\n")


def main(top: int = 30) -> None:
    rows = []
    for path in glob.glob(f"{OUT}-*.txt"):
        with open(path) as f:
            for line in f:
                cols = line.rstrip("\n").split("\t", 3)
                rows.append((float(cols[0]) + float(cols[1]), float(cols[2]), cols[3]))
    files: dict[str, float] = defaultdict(float)
    for cpu, _, test in rows:
        files[test.split("::")[0]] += cpu
    print(f"{sum(r[0] for r in rows):.0f} CPU-s over {len(rows)} tests\n\nCPU-s  wall-s  test")
    for cpu, wall, test in sorted(rows, reverse=True)[:top]:
        print(f"{cpu:6.1f} {wall:7.1f}  {test}")
    print("\nCPU-s  file")
    for name, cpu in sorted(files.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{cpu:6.1f}  {name}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)

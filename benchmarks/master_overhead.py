"""Master overhead on the simulated backend.

    python benchmarks/master_overhead.py [--trials 10000] [--concurrent 1000]

Runs the real master loop (journal, inbox files, searcher) on the simulated backend and reports
master CPU seconds per trial segment, and the filesystem operations of one idle poll (nothing
arrived) with 1,000 jobs in flight. Writes benchmarks/results/master_overhead.json.
"""
from __future__ import annotations

import argparse
import builtins
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asha_hpc.config import parse_config  # noqa: E402
from asha_hpc.master.loop import Master  # noqa: E402
from asha_hpc.protocol.expdir import ExpDir  # noqa: E402
from asha_hpc.protocol.journal import read_journal  # noqa: E402

FS_CALLS = ("stat", "lstat", "scandir", "listdir", "open", "replace", "rename", "unlink", "link",
            "fsync", "write", "mkdir")


class FsCounter:
    """Counts calls of the os functions the master uses (a poor man's strace)."""

    def __init__(self) -> None:
        self.n = 0
        self.saved = {}

    def __enter__(self):
        for name in FS_CALLS:
            real = getattr(os, name)
            self.saved[name] = real

            def wrap(*a, _real=real, **k):
                self.n += 1
                return _real(*a, **k)

            setattr(os, name, wrap)
        self.saved_open = builtins.open

        def bopen(*a, **k):
            self.n += 1
            return self.saved_open(*a, **k)

        builtins.open = bopen
        return self

    def __exit__(self, *exc):
        for name, real in self.saved.items():
            setattr(os, name, real)
        builtins.open = self.saved_open


def config(trials: int, concurrent: int):
    return parse_config({
        "name": "bench", "entrypoint": "unused:train",
        "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 256,
                     "max_trials": trials, "max_concurrent_trials": concurrent,
                     "mode": "standard", "divisor": 4},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
        "reproducibility": {"experiment_seed": 1}, "backend": "simulated", "poll_interval_s": 10,
        "simulated": {"unit_seconds": 30, "duration_noise": 0.3}}, "/tmp")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--concurrent", type=int, default=1_000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config(a.trials, a.concurrent)
        exp = ExpDir.create(Path(tmp) / "exp")
        m = Master(exp, cfg, progress=lambda s: None)
        backend_cpu = [0.0]  # the simulated cluster's own work (writing results) is not the master's

        def timed(fn):
            def wrapper(*args, **kw):
                t = time.process_time()
                try:
                    return fn(*args, **kw)
                finally:
                    backend_cpu[0] += time.process_time() - t
            return wrapper

        m.backend.advance = timed(m.backend.advance)
        m.backend.submit = timed(m.backend.submit)
        c0, w0 = time.process_time(), time.time()
        st = m.run()
        cpu, wall = time.process_time() - c0 - backend_cpu[0], time.time() - w0
        recs = read_journal(exp.journal)[0]
        segments = sum(1 for r in recs if r["kind"] == "result")

        # one idle poll with `concurrent` jobs in flight: fresh experiment, first submissions done
        exp2 = ExpDir.create(Path(tmp) / "idle")
        cfg2 = config(a.concurrent * 4, a.concurrent)
        m2 = Master(exp2, cfg2, progress=lambda s: None)
        m2.start()
        assert m2.step()  # the first submissions
        in_flight = len(m2.state.live())
        m2._last_beat = time.time()  # the lease heartbeat (every 5 s) is not part of a poll
        with FsCounter() as fs:
            assert m2.step()
        idle_ops = fs.n
    rows = [
        ("trials", a.trials), ("max concurrent", a.concurrent), ("segments run", segments),
        ("master CPU s (simulated cluster excluded)", round(cpu, 2)),
        ("simulated cluster CPU s", round(backend_cpu[0], 2)), ("wall s", round(wall, 2)),
        ("master CPU ms / segment", round(1000 * cpu / max(segments, 1), 3)),
        ("jobs in flight at idle poll", in_flight), ("fs operations / idle poll", idle_ops),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  value")
    for k, v in rows:
        print(f"{k.ljust(width)}  {v}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "master_overhead.json").write_text(json.dumps(dict(rows), indent=2) + "\n")
    assert st.lifecycle == "completed"


if __name__ == "__main__":
    main()

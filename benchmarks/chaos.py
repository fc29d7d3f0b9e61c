"""Fault-injection summary: kill the master at many points of simulated searches.

    python benchmarks/chaos.py [--runs 20] [--kills 50]

Each run is a full simulated adaptive_asha search (200 trials, 5% of segments crash) whose master
is killed `--kills` times at failpoints spread over the run (before/after journal appends, after
a submission, after each inbox removal), with a torn or foreign file dropped in while it is dead;
it resumes every time. Prints one row per run and the summary line. Writes
benchmarks/results/chaos.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asha_hpc.chaos import ChaosReport, run_chaos  # noqa: E402
from asha_hpc.config import parse_config  # noqa: E402


def config(seed: int):
    return parse_config({
        "name": "chaos", "entrypoint": "unused:train",
        "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 256,
                     "max_trials": 200, "max_concurrent_trials": 16, "mode": "standard",
                     "divisor": 4},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
        "reproducibility": {"experiment_seed": seed}, "backend": "simulated",
        "poll_interval_s": 5, "max_restarts": 3,
        "simulated": {"unit_seconds": 10, "duration_noise": 0.5, "failure_rate": 0.05}}, "/tmp")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--kills", type=int, default=50)
    a = ap.parse_args()
    logging.disable(logging.WARNING)  # the corrupt files are meant to be warned about
    total = ChaosReport()
    rows = []
    print(f"{'run':>3} {'kills':>5} {'corrupt':>7} {'lost':>4} {'dup':>3} {'violations':>10} {'s':>6}")
    for seed in range(a.runs):
        t0 = time.time()
        with tempfile.TemporaryDirectory() as d:
            r = run_chaos(config(seed), Path(d), kills=a.kills, seed=seed)
        dt = time.time() - t0
        print(f"{seed:>3} {r.kills:>5} {r.corrupt_inputs:>7} {r.results_lost:>4} {r.duplicated:>3} "
              f"{len(r.violations):>10} {dt:>6.1f}")
        rows.append({"seed": seed, "kills": r.kills, "corrupt": r.corrupt_inputs,
                     "lost": r.results_lost, "duplicated": r.duplicated,
                     "violations": r.violations, "lifecycle": r.lifecycle, "seconds": dt})
        total.kills += r.kills
        total.corrupt_inputs += r.corrupt_inputs
        total.results_lost += r.results_lost
        total.duplicated += r.duplicated
        total.violations += r.violations
    print(total.line() + f", invariant violations {len(total.violations)}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "chaos.json").write_text(json.dumps({"summary": total.line(), "runs": rows}, indent=2) + "\n")
    return 0 if not total.violations and not total.results_lost else 1


if __name__ == "__main__":
    sys.exit(main())

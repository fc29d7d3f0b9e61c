"""A node that is repaired during a search: what `readmit_nodes_after_h` gains when it is, and
costs when it is not.

    python benchmarks/node_repair.py [--seeds 10]

Simulated searches (adaptive_asha, 200 trials, 8 at a time, max_length 64 units of a
virtual minute, max_restarts 5, 2% of attempts crash anyway, a job per segment) on a cluster
of 4 nodes, node01 broken (every segment placed there fails 5 s after its 20 s start-up with a
CUDA error). It is repaired after 1 virtual hour, or never. The master's node rules exclude
it; with `readmit_nodes_after_h` set it is taken back after that wait (twice as long after
each further exclusion), without it it stays out to the end. The simulated nodes have no
capacity of their own (a job goes to the least busy node; `max_concurrent_trials` bounds
them all), so an excluded node costs no throughput here: the table measures what readmission
costs (failed attempts) and that a repaired node takes work again, not the share of the
allocation it gives back on a real cluster.

Columns, per setting (sums over the seeds, median makespan): searches completed, trials
failed for good, attempts that failed, readmissions, segments node01 completed after its
repair, the median makespan in virtual hours. Writes benchmarks/results/node_repair.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broken_nodes import outcome  # noqa: E402

from asha_hpc.backends.simulated import SimulatedBackend  # noqa: E402
from asha_hpc.config import parse_config  # noqa: E402
from asha_hpc.master.loop import Master  # noqa: E402
from asha_hpc.protocol.expdir import ExpDir  # noqa: E402
from asha_hpc.protocol.journal import read_journal  # noqa: E402

REPAIRED_S = 3600.0
SETTINGS: list[float | None] = [None, 0.5, 1.0, 2.0]


def config(seed: int, after_h: float | None, repaired_s: float | None):
    return parse_config({
        "name": "repair", "entrypoint": "unused:train",
        "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 64,
                     "max_trials": 200, "max_concurrent_trials": 8, "mode": "standard",
                     "divisor": 4},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
        "reproducibility": {"experiment_seed": seed}, "backend": "simulated",
        "poll_interval_s": 5, "max_restarts": 5, "readmit_nodes_after_h": after_h,
        "simulated": {"unit_seconds": 60, "duration_noise": 0.5, "failure_rate": 0.02,
                      "startup_seconds": 20, "nodes": 4, "broken_nodes": 1,
                      "repaired_after_s": repaired_s}}, "/tmp")


def one(seed: int, after_h: float | None, repaired_s: float | None) -> dict:
    cfg = config(seed, after_h, repaired_s)
    with tempfile.TemporaryDirectory() as tmp:
        exp = ExpDir.create(Path(tmp) / "exp")
        (exp.root / "experiment.yaml").write_text(json.dumps(cfg.to_dict()))
        backend = SimulatedBackend.from_config(cfg, exp.root)
        st = Master(exp, cfg, backend=backend, progress=lambda s: None).run()
        recs = read_journal(exp.journal)[0]
        return {
            **outcome(cfg, st, recs),
            "readmissions": sum(1 for r in recs if r["kind"] == "nodes_readmitted"),
            "repaired_node_segments": sum(
                1 for r in recs if r["kind"] == "result" and r["status"] == "completed"
                and r.get("host") == "node01" and repaired_s is not None
                and r["time"] >= repaired_s),
            "hours": backend.clock.t / 3600.0,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    args = ap.parse_args()
    rows = []
    print("| node01 | readmit_nodes_after_h | searches completed | trials failed for good | "
          "attempts failed | readmissions | segments node01 completed after its repair | "
          "makespan h (median) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for repaired_s in (REPAIRED_S, None):
        for after_h in SETTINGS:
            runs = [one(s, after_h, repaired_s) for s in range(args.seeds)]
            total = {k: sum(r[k] for r in runs) for k in
                     ("completed", "failed_trials", "failed_attempts", "readmissions",
                      "repaired_node_segments")}
            row = dict(repaired_s=repaired_s, after_h=after_h, seeds=args.seeds, **total,
                       hours_median=statistics.median(r["hours"] for r in runs))
            rows.append(row)
            print(f"| {'repaired after 1 h' if repaired_s else 'never repaired'} | "
                  f"{after_h if after_h is not None else 'off'} | "
                  f"{total['completed']}/{args.seeds} | {total['failed_trials']} | "
                  f"{total['failed_attempts']} | {total['readmissions']} | "
                  f"{total['repaired_node_segments'] if repaired_s else '-'} | "
                  f"{row['hours_median']:.2f} |", flush=True)
    out = Path(__file__).resolve().parent / "results" / "node_repair.json"
    out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()

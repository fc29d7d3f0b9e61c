"""Fixed vs automatic time limits on a shared cluster with a backfill scheduler (simulation).

    python benchmarks/time_limits.py [--quick] [--seeds 10] [--load 0.85] [--out PATH]

The real master and searcher run an ASHA search on ``BackfillBackend`` (asha_hpc/backends/
backfill.py): 64 GPUs shared with other users' jobs (Poisson arrivals keeping ``--load`` of the
GPUs busy, 1 to 16 GPUs each, log-normal run times with a median of 1 h, limits asked 1.2-4x
their run time rounded up to the hour), scheduled by EASY backfill on the time limits jobs ask
for. The search: adaptive_asha (standard mode: brackets with rungs at 1/4/16/64, 4/16/64 and
16/64 epochs), 128 trials, 16 at a time, 2 minutes per epoch (log-normal noise 0.2) plus 3
minutes of start-up per job, so a segment takes from 5 min (1 epoch) to 99 min (48 epochs, 16
to 64) and 35 min for 16 epochs from scratch; Slurm's warning comes 90 s before the limit.

Time-limit policies compared (each on the same seeds, i.e. the same background jobs):

- fixed 240 / fixed 120 min: every segment asks the same (``slurm.timeout_min``); 120 min is
  the shortest round value the longest segment fits in;
- per rung, by hand: ``timeout_min_per_rung: [10, 20, 60, 180]`` (each rung's longest segment, from
  scratch, with a margin);
- auto: ``timeout_min: auto`` (first guess 240 min, safety factor 1.5; asha_hpc/master/timelimits.py);
- auto + MaxTime 60: the same with a partition MaxTime of 60 min: the 99-min segments are
  split (run to the limit, checkpoint on the signal, continue in a new job).

Per policy: the makespan (search start to its last result), our jobs' queue wait (mean,
median, 90th percentile), the background jobs' mean wait while the search ran, the minutes
asked per job, jobs stopped by their limit, GPU-hours. Mean over the seeds. Writes
benchmarks/results/time_limits.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asha_hpc.backends.backfill import BackfillBackend, BackgroundLoad  # noqa: E402
from asha_hpc.config import parse_config  # noqa: E402
from asha_hpc.master.loop import Master  # noqa: E402
from asha_hpc.protocol.expdir import ExpDir  # noqa: E402
from asha_hpc.protocol.journal import read_journal  # noqa: E402

GPUS = 64
UNIT_S = 120.0
STARTUP_S = 180.0
POLICIES: list[dict[str, Any]] = [
    {"policy": "fixed 240 min", "slurm": {"timeout_min": 240}},
    {"policy": "fixed 120 min", "slurm": {"timeout_min": 120}},
    {"policy": "per rung by hand [10,20,60,180]", "slurm": {"timeout_min": 240,
                                                            "timeout_min_per_rung": [10, 20, 60, 180]}},
    {"policy": "auto", "slurm": {"timeout_min": "auto", "first_guess_min": 240}},
    {"policy": "auto, MaxTime 60 (split)", "slurm": {"timeout_min": "auto", "first_guess_min": 240},
     "max_time_min": 60},
]


def config(seed: int, trials: int, concurrent: int, slurm: dict[str, Any]):
    return parse_config({
        "name": "tl", "entrypoint": "unused:train",
        "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 64,
                     "max_trials": trials, "max_concurrent_trials": concurrent,
                     "mode": "standard", "divisor": 4, "max_rungs": 4},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
        "reproducibility": {"experiment_seed": seed}, "backend": "simulated",
        "poll_interval_s": 30,
        "simulated": {"unit_seconds": UNIT_S, "startup_seconds": STARTUP_S, "duration_noise": 0.2},
        "slurm": dict({"signal_delay_s": 90}, **slurm)}, "/tmp")


def run(policy: dict[str, Any], seed: int, trials: int, concurrent: int, load: float) -> dict[str, Any]:
    cfg = config(seed, trials, concurrent, policy["slurm"])
    fixed = cfg.slurm.timeout_min if isinstance(cfg.slurm.timeout_min, int) else cfg.slurm.first_guess_min
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="asha-tl-") as tmp:
        exp = ExpDir.create(Path(tmp) / "exp")
        backend = BackfillBackend(exp.root, cfg.simulated, seed=seed, gpus=GPUS,
                                  background=BackgroundLoad(load=load), default_limit_min=fixed,
                                  max_time_min=policy.get("max_time_min"),
                                  signal_delay_s=cfg.slurm.signal_delay_s)
        st = Master(exp, cfg, backend=backend, progress=lambda line: None).run()
        recs = read_journal(exp.journal)[0]
    assert st.lifecycle == "completed", st.message
    ends = [r["ended"] for r in recs if r["kind"] == "result" and r.get("ended") is not None]
    s = backend.stats
    waits = np.array(s.ours_waits) / 60.0
    splits = sum(1 for r in recs if r["kind"] == "intent" and r.get("split"))
    return {
        "seed": seed,
        "makespan_h": max(ends) / 3600.0,
        "wait_mean_min": float(waits.mean()),
        "wait_median_min": float(np.median(waits)),
        "wait_p90_min": float(np.percentile(waits, 90)),
        "background_wait_mean_min": (float(np.mean(s.background_waits)) / 60.0
                                     if s.background_waits else None),
        "asked_mean_min": float(np.mean(s.limits_min)),
        "jobs": len(s.ours_waits),
        "stopped_by_limit": s.interrupted,
        "planned_splits": splits,
        "gpu_hours": s.ours_gpu_s / 3600.0,
        "best_metric": st.ranked()[0].metric if st.ranked() else None,
        "wall_s": round(time.time() - t0, 2),
    }


def mean_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in rows[0]:
        if k == "seed":
            continue
        vals = [r[k] for r in rows if r[k] is not None]
        out[k] = statistics.fmean(vals) if vals else None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 seed, 48 trials (a smoke run)")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--load", type=float, default=0.85, help="background share of the GPUs")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "time_limits.json"))
    a = ap.parse_args(argv)
    seeds = 1 if a.quick else a.seeds
    trials, concurrent = (48, 8) if a.quick else (128, 16)
    table = []
    for pol in POLICIES:
        runs = [run(pol, seed, trials, concurrent, a.load) for seed in range(seeds)]
        table.append(dict(policy=pol["policy"], runs=runs, **mean_row(runs)))
    base = table[0]
    cols = ["policy", "makespan h", "vs fixed 240", "wait mean min", "median", "p90",
            "bg wait min", "asked min", "jobs", "hit limit", "splits", "GPU-h"]
    body = []
    for r in table:
        body.append([r["policy"], f"{r['makespan_h']:.2f}",
                     f"{r['makespan_h'] / base['makespan_h']:.2f}x",
                     f"{r['wait_mean_min']:.1f}", f"{r['wait_median_min']:.1f}",
                     f"{r['wait_p90_min']:.1f}",
                     "-" if r["background_wait_mean_min"] is None else f"{r['background_wait_mean_min']:.1f}",
                     f"{r['asked_mean_min']:.0f}", f"{r['jobs']:.0f}", f"{r['stopped_by_limit']:.1f}",
                     f"{r['planned_splits']:.1f}", f"{r['gpu_hours']:.1f}"])
    widths = [max(len(x[i]) for x in [cols] + body) for i in range(len(cols))]
    print(f"{GPUS} GPUs, background load {a.load:.0%}, {trials} trials x {concurrent} concurrent, "
          f"mean of {seeds} seed(s)")
    for row in [cols] + body:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    out = {"benchmark": "time_limits", "quick": a.quick, "python": platform.python_version(),
           "config": {"gpus": GPUS, "load": a.load, "trials": trials, "concurrent": concurrent,
                      "unit_s": UNIT_S, "startup_s": STARTUP_S, "rungs": [1, 4, 16, 64],
                      "seeds": seeds, "signal_delay_s": 90},
           "rows": table}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

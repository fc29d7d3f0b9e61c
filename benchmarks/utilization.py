"""Worker utilization in simulation: ASHA (asha_hpc's master and searcher on the simulated
backend) vs synchronous successive halving, at 16 / 256 / 1,024 workers, with heavy-tailed
segment durations and failures.

    python benchmarks/utilization.py [--quick] [--trials-per-worker 16] [--failure-rate 0.05]
                                     [--sigma 1] [--out utilization.json]

Both searches have the same shape: 4 rungs at 1, 4, 16 and 64 units (divisor 4), ``trials =
trials-per-worker x workers`` (default 16 x workers), a unit takes 300 s, every segment's
duration is multiplied by a log-normal factor with sigma 1 (``--sigma``; heavy-tailed: the
slowest of 1,000 segments is ~20x the median), and every attempt fails with probability ``--failure-rate``
(default 5%) at its end, wasting its time, and is retried.

- ASHA: ``async_halving`` with ``max_concurrent_trials = workers``, run by the real master
  (journal, inbox files, poll every 1 s of virtual time) on the simulated backend
  (asha_hpc.simulate.run_once).
- Synchronous SH (here, a small simulator): rung by rung, every trial of the rung is queued,
  each free worker takes the next job at once (no poll delay: an ideal master), failed attempts
  go back to the end of the queue, and the next rung starts when the last job of the rung is
  done with the best 1/4 (at least one) of the rung.

Utilization = busy worker time (failed attempts included) / (workers x makespan); "useful"
leaves out the failed attempts. "All busy until" is the last time every worker was busy: after
it the search only drains (the last, longest segments run while the other workers have nothing
left to do); "before drain" is the utilization up to that time; "1st full" is when the first
trial finished the top rung (the first full-length result). Writes
benchmarks/results/utilization.json.
"""
from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asha_hpc.config import parse_config  # noqa: E402
from asha_hpc.simulate import Span, all_busy_until  # noqa: E402

RUNGS = [1, 4, 16, 64]
DIVISOR = 4
UNIT_S = 300.0
SIGMA = 1.0  # --sigma


def sync_sh(trials: int, workers: int, failure_rate: float, seed: int) -> dict[str, Any]:
    """Synchronous successive halving with list scheduling and retries."""
    rng = np.random.default_rng(seed)
    quality = rng.random(trials)  # the metric each trial ends a rung with (its rank is all SH uses)
    alive = list(range(trials))
    now = 0.0
    busy = wasted = 0.0
    ivs: list[Span] = []
    prev = 0
    first_top = math.inf
    for r, length in enumerate(RUNGS):
        units = length - prev
        prev = length
        queue = list(alive)
        qi = 0
        free: list[float] = [now] * workers  # when each worker is free again (a heap)
        rung_end = now
        while qi < len(queue):
            t = heapq.heappop(free)
            trial = queue[qi]
            qi += 1
            d = units * UNIT_S * math.exp(rng.normal(0.0, SIGMA))
            end = t + d
            busy += d
            ivs.append(Span(t, end))
            if rng.random() < failure_rate:
                wasted += d
                queue.append(trial)  # retried at the end of the queue
            elif r == len(RUNGS) - 1:
                first_top = min(first_top, end)
            heapq.heappush(free, end)
            rung_end = max(rung_end, end)
        now = rung_end  # barrier: the rung's last result
        if r < len(RUNGS) - 1:
            keep = max(len(alive) // DIVISOR, 1)
            alive = sorted(alive, key=lambda i: quality[i])[:keep]
    full = all_busy_until(ivs, workers)
    return {"makespan_s": now, "busy_s": busy, "wasted_s": wasted, "first_top_s": first_top,
            "all_busy_until_s": full, "before_drain": _busy_before(ivs, full, workers),
            "segments": len(ivs)}


def _busy_before(ivs, t_cut, workers) -> float:
    if not t_cut:
        return 0.0
    b = sum(max(0.0, min(iv.end, t_cut) - iv.start) for iv in ivs if iv.start < t_cut)
    return b / (workers * t_cut)


def asha(trials: int, workers: int, failure_rate: float, seed: int) -> dict[str, Any]:
    """The real master and searcher on the simulated backend (what ``asha-hpc simulate`` runs),
    with the job intervals kept for the before-drain measure."""
    import tempfile

    from asha_hpc.backends.simulated import SimulatedBackend
    from asha_hpc.master.loop import Master
    from asha_hpc.protocol.expdir import ExpDir

    cfg = parse_config({
        "name": "utilization", "entrypoint": "unused:train",
        "searcher": {"name": "async_halving", "metric": "loss", "max_length": RUNGS[-1],
                     "max_trials": trials, "max_concurrent_trials": workers,
                     "num_rungs": len(RUNGS), "divisor": DIVISOR},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1},
                            "y": {"type": "double", "minval": 0, "maxval": 1}},
        "reproducibility": {"experiment_seed": seed}, "backend": "simulated",
        "poll_interval_s": 1.0, "max_restarts": 50,
        "simulated": {"unit_seconds": UNIT_S, "duration_noise": SIGMA,
                      "failure_rate": failure_rate, "workers": workers}}, "/tmp")
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        exp = ExpDir.create(Path(tmp) / "exp")
        backend = SimulatedBackend(exp.root, cfg.simulated, seed=seed)
        st = Master(exp, cfg, backend=backend, progress=lambda line: None).run()
    assert st.lifecycle == "completed", st.message
    ivs = [j for j in backend.jobs.values() if j.start is not None and j.end is not None]
    full = all_busy_until(ivs, workers)
    return {"makespan_s": max(j.end for j in ivs), "busy_s": sum(j.end - j.start for j in ivs),
            "wasted_s": sum(j.end - j.start for j in ivs if j.fails),
            "first_top_s": min(j.end for j in ivs if not j.fails and j.spec.length == RUNGS[-1]),
            "all_busy_until_s": full, "before_drain": _busy_before(ivs, full, workers),
            "segments": len(ivs), "trials": st.counts()["total"]}


def row(system: str, workers: int, trials: int, r: dict[str, Any], wall) -> dict[str, Any]:
    mk, full = r["makespan_s"], r["all_busy_until_s"] or 0.0
    return {"system": system, "workers": workers, "trials": trials, "makespan_h": mk / 3600,
            "utilization": r["busy_s"] / (workers * mk),
            "useful_utilization": (r["busy_s"] - r["wasted_s"]) / (workers * mk),
            "all_busy_until_h": full / 3600, "drain_share": (mk - full) / mk,
            "first_full_length_h": r["first_top_s"] / 3600,
            "before_drain": r["before_drain"], "segments": r["segments"], "wall_s": wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="16 and 256 workers only")
    ap.add_argument("--trials-per-worker", type=int, default=16)
    ap.add_argument("--failure-rate", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sigma", type=float, default=1.0, help="log-normal sigma of the durations")
    ap.add_argument("--out", help="file name in benchmarks/results/ (default utilization.json, "
                    "utilization_quick.json with --quick)")
    a = ap.parse_args()
    global SIGMA
    SIGMA = a.sigma
    sizes = [16, 256] if a.quick else [16, 256, 1024]
    rows = []
    for w in sizes:
        n = a.trials_per_worker * w
        t0 = time.perf_counter()
        r = asha(n, w, a.failure_rate, a.seed)
        wall = time.perf_counter() - t0
        rows.append(row("ASHA (asha_hpc, simulated backend)", w, n, r, round(wall, 2)))
        rows.append(row("synchronous SH (simulator)", w, n, sync_sh(n, w, a.failure_rate, a.seed),
                        None))
        print(f"  {w} workers: ASHA {100 * rows[-2]['utilization']:.1f}%, "
              f"sync SH {100 * rows[-1]['utilization']:.1f}% ({wall:.1f} s)", file=sys.stderr,
              flush=True)
    print(f"utilization: rungs {RUNGS} x {UNIT_S:g} s per unit, log-normal sigma {SIGMA:g}, "
          f"failure rate {a.failure_rate:g}, {a.trials_per_worker} trials per worker; python "
          f"{platform.python_version()}")
    print(f"{'system':<36} {'workers':>7} {'trials':>7} {'makespan h':>10} {'util':>6} "
          f"{'useful':>6} {'all busy until h':>16} {'drain':>6} {'before drain':>12} "
          f"{'1st full h':>10}")
    for r in rows:
        print(f"{r['system']:<36} {r['workers']:>7,} {r['trials']:>7,} {r['makespan_h']:>10.1f} "
              f"{100 * r['utilization']:>5.1f}% {100 * r['useful_utilization']:>5.1f}% "
              f"{r['all_busy_until_h']:>16.1f} {100 * r['drain_share']:>5.1f}% "
              f"{100 * r['before_drain']:>11.1f}% {r['first_full_length_h']:>10.1f}")
    name = a.out or ("utilization_quick.json" if a.quick else "utilization.json")
    out = Path(__file__).resolve().parent / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "utilization", "quick": a.quick,
                               "python": platform.python_version(), "cpus": os.cpu_count(),
                               "config": {"rungs": RUNGS, "divisor": DIVISOR, "unit_s": UNIT_S,
                                          "sigma": SIGMA, "failure_rate": a.failure_rate,
                                          "trials_per_worker": a.trials_per_worker,
                                          "seed": a.seed},
                               "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

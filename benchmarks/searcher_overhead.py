"""Searcher overhead: cost per event of adaptive_asha as the search grows.

    python benchmarks/searcher_overhead.py [--quick]

Drives adaptive_asha (divisor 4, five rungs: max_length 1024, mode aggressive, 1,000 trials in
flight) with random metrics through 1,000 / 10,000 / 100,000 trials: a simulated pool picks a
random in-flight trial to complete next (searches of 1,000 and 10,000 trials are run several
times with other seeds and their events pooled). Reports the mean and p99 wall time of one
``on_event`` call (time.perf_counter_ns around it; the simulation itself is not timed) and the
peak Python memory of a second, untimed run under tracemalloc. Writes
benchmarks/results/searcher_overhead.json.

Reading it: "max" is the last event, where the finished bracket tells every trial still paused
that it stops (one FinishTrial each, tens of thousands at 100,000 trials), and otherwise the
cyclic garbage collector; p99 is the steady state. ``--quick``: 1,000 and 10,000 trials only.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asha_hpc.config import SearcherConfig  # noqa: E402
from asha_hpc.searcher import CreateTrial, ResumeTrial, SegmentCompleted, make_searcher  # noqa: E402
from asha_hpc.space import parse_space  # noqa: E402

SPACE, _ = parse_space({"lr": {"type": "log", "minval": -5, "maxval": -1, "base": 10},
                        "width": {"type": "int", "minval": 16, "maxval": 512},
                        "act": {"type": "categorical", "vals": ["relu", "gelu", "tanh"]}})


def config(trials: int, concurrent: int) -> SearcherConfig:
    return SearcherConfig(name="adaptive_asha", metric="loss", max_length=1024,
                          max_trials=trials, max_concurrent_trials=concurrent, mode="aggressive",
                          divisor=4.0, max_rungs=5)


def drive(trials: int, concurrent: int, seed: int, timed: bool):
    """Run one search to the end: (per-event ns or None, events, creates, start ns, searcher)."""
    s = make_searcher(config(trials, concurrent), SPACE, seed)
    rnd = random.Random(seed)
    pool = []  # (trial, length) in flight

    def take(actions) -> int:
        n = 0
        for a in actions:
            if isinstance(a, (CreateTrial, ResumeTrial)):
                pool.append((a.trial_id, a.length))
                n += isinstance(a, CreateTrial)
        return n

    t0 = time.perf_counter_ns()
    take(s.start())
    start_ns = time.perf_counter_ns() - t0
    costs = [] if timed else None
    clock = time.perf_counter_ns
    events = creates = 0
    while pool:
        i = rnd.randrange(len(pool))
        pool[i], pool[-1] = pool[-1], pool[i]
        tid, length = pool.pop()
        ev = SegmentCompleted(tid, length, rnd.random())
        if timed:
            t = clock()
            acts = s.on_event(ev)
            costs.append(clock() - t)
        else:
            acts = s.on_event(ev)
        creates += take(acts)
        events += 1
    assert s.done
    return costs, events, creates, start_ns, s


def percentile(sorted_vals, q):
    if not sorted_vals:
        return 0.0
    k = min(len(sorted_vals) - 1, max(0, int(math.ceil(q / 100.0 * len(sorted_vals))) - 1))
    return sorted_vals[k]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,000 and 10,000 trials only")
    ap.add_argument("--concurrent", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    sizes = [1_000, 10_000] if a.quick else [1_000, 10_000, 100_000]
    rows = []
    for n in sizes:
        # small searches are repeated (other seeds) so that a stray pause of the machine does
        # not decide their mean
        reps = max(1, min(10, 30_000 // n))
        costs, events, creates, start_ns = [], 0, 0, 0
        for rep in range(reps):
            gc.collect()
            c, e, cr, st, s = drive(n, a.concurrent, a.seed + rep, timed=True)
            costs += c
            events += e
            creates += cr
            start_ns += st
        create_share = creates / events
        events //= reps
        start_ns //= reps
        rungs = s.brackets()[0].num_rungs
        costs.sort()
        mean_us = sum(costs) / len(costs) / 1000.0
        tracemalloc.start()
        drive(n, a.concurrent, a.seed, timed=False)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rows.append({"trials": n, "runs": reps, "rungs": rungs, "concurrent": a.concurrent, "events": events,
                     "creates_per_event": round(create_share, 3),
                     "mean_us": round(mean_us, 2),
                     "p50_us": round(percentile(costs, 50) / 1000.0, 2),
                     "p99_us": round(percentile(costs, 99) / 1000.0, 2),
                     "max_us": round(costs[-1] / 1000.0, 1),
                     "start_ms": round(start_ns / 1e6, 2),
                     "peak_mib": round(peak / 2**20, 2),
                     "bytes_per_trial": int(peak / n)})
    base = rows[0]
    print(f"adaptive_asha, divisor 4, aggressive, max_length 1024 -> {base['rungs']} rungs, "
          f"{a.concurrent} in flight; python {platform.python_version()}, {os.cpu_count()} CPUs")
    print(f"{'trials':>8} {'events':>8} {'creates':>7} {'mean us':>8} {'p50 us':>7} {'p99 us':>7} "
          f"{'max us':>8} "
          f"{'start ms':>9} {'peak MiB':>9} {'B/trial':>8} {'mean/1k':>8} {'log ratio':>9}")
    for r in rows:
        growth = r["mean_us"] / base["mean_us"]
        logr = math.log(r["trials"]) / math.log(base["trials"])
        r["mean_vs_first"] = round(growth, 2)
        r["log_ratio"] = round(logr, 2)
        print(f"{r['trials']:>8,} {r['events']:>8,} {r['creates_per_event']:>7.2f} "
              f"{r['mean_us']:>8.2f} {r['p50_us']:>7.2f} "
              f"{r['p99_us']:>7.2f} {r['max_us']:>8.1f} {r['start_ms']:>9.2f} {r['peak_mib']:>9.2f} "
              f"{r['bytes_per_trial']:>8} {growth:>8.2f} {logr:>9.2f}")
    print("creates: share of events that create a trial (sampling its hyperparameters); with "
          f"{a.concurrent} in flight, a {sizes[0]:,}-trial search creates them all in start().")
    out = Path(__file__).resolve().parent / "results" / "searcher_overhead.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "searcher_overhead", "quick": a.quick,
                               "python": platform.python_version(), "cpus": os.cpu_count(),
                               "config": {"searcher": "adaptive_asha", "divisor": 4,
                                          "mode": "aggressive", "max_length": 1024,
                                          "max_rungs": 5, "concurrent": a.concurrent},
                               "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

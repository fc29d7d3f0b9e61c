"""A second search after a first: what ``searcher.warm_start`` and ``points_to_evaluate`` (from
``asha-hpc best --points``) give, against starting over, at equal compute.

    python benchmarks/warm_start.py                          # branin, hartmann6: 48 seeds; hgb: 12
    python benchmarks/warm_start.py --tasks hgb --seeds 24

The user's story: a first search (random sampling, T trials, the budget search_quality.py
gives the task) ended; the allocation grew by as much again. The second search (seed + 5000,
the same budget: random's compute on T trials with its seed, ``max_compute`` set to it) is one of
- ``random`` / ``tpe`` / ``gp``: started over, cold;
- ``random + points``: the first search's 5 best configurations (at the longest length it
  reached) as ``points_to_evaluate``, the rest random;
- ``tpe + warm_start`` / ``gp + warm_start``: the first search's results (every trial, every
  length) as the model's first data (``ModelSampler.prior``, what the master journals).
Printed per task: the median regret of the better of the two searches' picks (what the user
has at the end), the median regret of the second search's own pick, on how many seeds the
second search improved on the first, and the share of the second budget it spent before its
pick was better than the first search's (median; ``inf`` when it never was). Regret and picks
as in search_quality.py (the incumbent at the longest length reached, its full-length value).
Writes benchmarks/results/warm_start.json.
"""
from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import search_quality as sq  # noqa: E402

SECOND = 5000  # the second search's seed: the first's + this
POINTS = 5
SYSTEMS = ["random", "tpe", "gp", "random + points", "tpe + warm_start", "gp + warm_start"]


class Recorded(sq.Ours):
    """asha_hpc's pure searcher as search_quality runs it, its results read as a next
    search's start."""

    def prior(self) -> list[dict[str, Any]]:
        """These results as the ``warm_start`` record holds them (a loss: the metric)."""
        return [{"hparams": self.hp[t], "losses": [[k, v if v == v else None]
                                                    for k, v in sorted(r.items())]}
                for t, r in sorted(self.results.items())]

    def best(self, n: int) -> list[dict[str, Any]]:
        """The ``n`` best configurations, longest length first (as ``best --points``)."""
        order = sorted(self.results, key=lambda t: (-max(self.results[t]),
                                                    self.results[t][max(self.results[t])], t))
        return [self.hp[t] for t in order[:n]]


def one(task: sq.Task, seed: int, budget: int | None, sampler: str,
        **start: Any) -> tuple[dict[str, Any], Recorded]:
    run = sq.Run(task, budget)
    system = Recorded(task, run, seed, sampler, **start)
    sq.run_pool(system, stop=run.over)
    if hasattr(task, "forget"):
        task.forget()
    final = run.trace[-1][1] if run.trace else math.nan
    if run.best_len < sq.MAX_LEN and run.best_hp is not None:
        final = task.full(run.best_hp)
    return {"spent": run.spent, "final": final, "trace": run.trace}, system


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="branin,hartmann6,hgb")
    ap.add_argument("--seeds", type=int, default=None,
                    help="seeds per task (default: 48 for the functions, 12 for hgb)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--out", default="warm_start.json")
    a = ap.parse_args()
    t0 = time.perf_counter()
    out: dict[str, Any] = {"benchmark": "warm_start", "tasks": {}}
    for name in a.tasks.split(","):
        task = sq.make_task(name)
        n = a.seeds or (12 if name in ("hgb", "digits_mlp") else 48)
        rows: dict[str, list[dict[str, Any]]] = {s: [] for s in SYSTEMS}
        finals_first, opt_seen = [], []
        for seed in range(a.first_seed, a.first_seed + n):
            first, fs = one(task, seed, None, "random")
            second_budget = one(task, seed + SECOND, None, "random")[0]["spent"]
            finals_first.append(first["final"])
            starts = {"random": ("random", {}), "tpe": ("tpe", {}), "gp": ("gp", {}),
                      "random + points": ("random", {"points": fs.best(POINTS)}),
                      "tpe + warm_start": ("tpe", {"prior": fs.prior()}),
                      "gp + warm_start": ("gp", {"prior": fs.prior()})}
            for label, (sampler, start) in starts.items():
                r, _ = one(task, seed + SECOND, second_budget, sampler, **start)
                beat = next((c for c, v in r["trace"] if v < first["final"]), None)
                rows[label].append({"seed": seed, "first": first["final"], "second": r["final"],
                                    "beat_at": beat / second_budget if beat is not None
                                    else math.inf})
                opt_seen += [first["final"], r["final"]]
            print(f"  {name} seed {seed}: first {first['final']:.5g}; " + ", ".join(
                f"{k} {v[-1]['second']:.5g}" for k, v in rows.items()), file=sys.stderr, flush=True)
        opt = sq.landscapes.OPTIMUM.get(name, min(opt_seen))
        summary = {}
        for label, rs in rows.items():
            both = [min(r["first"], r["second"]) - opt for r in rs]
            own = [r["second"] - opt for r in rs]
            summary[label] = {
                "best_of_both": statistics.median(both), "second": statistics.median(own),
                "improved": sum(r["second"] < r["first"] - 1e-12 for r in rs),
                "beat_first_at": statistics.median(r["beat_at"] for r in rs)}
        out["tasks"][name] = {"seeds": n, "first_seed": a.first_seed, "optimum": opt,
                              "first": statistics.median(f - opt for f in finals_first),
                              "systems": summary, "runs": rows}
        print(f"\n{name}: {n} seeds; first search (random, {task.trials} trials): median regret "
              f"{out['tasks'][name]['first']:.4g}; best known {opt:.6g}")
        print(f"  {'second search':<20} {'best of both':>12} {'its own':>10} {'improved':>9} "
              f"{'beat first at':>14}")
        for label, s in summary.items():
            print(f"  {label:<20} {s['best_of_both']:>12.4g} {s['second']:>10.4g} "
                  f"{s['improved']:>5}/{n:<3} {s['beat_first_at']:>14.2f}")
    out["total_s"] = time.perf_counter() - t0
    path = HERE / "results" / a.out
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"total {out['total_s']:.0f} s; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A grown allocation: what continuing a search with ``resume --max-compute`` costs against
having had the larger cap from the start.

    python benchmarks/grown_allocation.py                  # Branin and Hartmann-6, 48 seeds
    python benchmarks/grown_allocation.py --seeds 6        # a quick look
    python benchmarks/grown_allocation.py --tasks hgb --seeds 36 \
        --out grown_allocation_hgb.json                     # a real task (final loss); also digits_mlp

search_quality.py's setting (adaptive_asha, rungs 1/4/16/64, 16 virtual workers, asha_hpc's
pure searcher in virtual time). Per task and seed, B is the compute random sampling spends on
the task's T trials (search_quality's budget). Each sampler (random, tpe, gp) runs:

- ``B from the start``: ``max_compute: B``;
- ``B/2, raised to B once it ended``: ``max_compute: B/2`` to its end, then the cap raised to B
  (``set_max_compute``, as ``resume --max-compute`` does: the trials the first cap stopped go
  on, new trials up to max_trials), run to its end;
- ``B/2, then a second search``: the other way to spend what was added (README): a new
  search of the same sampler with the rest of B as its cap, warm-started from the first
  (``warm_start``; random sampling cannot be, and starts over), the better of the two searches'
  picks counted (as warm_start.py does);
- ``B/2 only``: the first half alone.

Printed: median final regret (the incumbent's full-length value minus the optimum, by
search_quality's incumbent rule) with the 25th-75th percentile, the compute spent, and on how
many seeds the raised search ends at least as well as the one capped at B from the start, and
as the second search.
Results: results/grown_allocation.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from search_quality import RANDOM, Ours, Run, make_task, run_system  # noqa: E402
from virtual_pool import run_pool  # noqa: E402
from warm_start import SECOND, Recorded  # noqa: E402

SAMPLERS = ("random", "tpe", "gp")
WAYS = ("B from the start", "B/2, raised to B once it ended",
        "B/2, then a second search (best of both)", "B/2 only")


class Raised:
    """An ended search of ``Ours`` continued under a new cap: the pool's first work items are
    what ``set_max_compute`` allows at once."""

    def __init__(self, ours: Ours, units: int) -> None:
        self.o = ours
        stopped = [t for t in ours.hp if ours.s.trial_status(t) == "stopped"]
        self.first = ours._work(ours.s.set_max_compute(units, reopen=stopped))

    def start(self):
        return self.first

    def cost(self, w):
        return self.o.cost(w)

    def done(self, w):
        return self.o.done(w)


def final_value(task: Any, run: Run) -> float:
    """search_quality's final value: the incumbent's, trained to full length if it is short."""
    from search_quality import MAX_LEN

    if run.best_len < MAX_LEN and run.best_hp is not None:
        return task.full(run.best_hp)
    return run.trace[-1][1] if run.trace else float("nan")


def one(task: Any, seed: int, sampler: str, budget: int) -> dict[str, Any]:
    """(regret, compute spent / budget) of each way, for one seed; a real task (no known
    optimum): its final validation loss in place of the regret."""
    out: dict[str, Any] = {}
    opt = task.optimum if task.optimum is not None else 0.0
    full = Run(task, budget)
    run_pool(Ours(task, full, seed, sampler), stop=full.over)
    out[WAYS[0]] = (final_value(task, full) - opt, full.spent / budget)
    half = Run(task, budget // 2)
    ours = Recorded(task, half, seed, sampler)
    run_pool(ours, stop=half.over)
    half_final, half_spent = final_value(task, half), half.spent
    out[WAYS[3]] = (half_final - opt, half_spent / budget)
    prior = ours.prior() if sampler != "random" else None
    assert ours.s.done, "the first half ended inside its cap"
    half.budget = budget  # the same run goes on: its spent compute and incumbent carry over
    run_pool(Raised(ours, budget), stop=half.over)
    out[WAYS[1]] = (final_value(task, half) - opt, half.spent / budget)
    second = Run(task, budget - half_spent)
    run_pool(Ours(task, second, seed + SECOND, sampler, prior=prior), stop=second.over)
    out[WAYS[2]] = (min(half_final, final_value(task, second)) - opt,
                    (half_spent + second.spent) / budget)
    return out


def at_least(mine: list[Any], other: list[Any]) -> int:
    """Seeds where ``mine``'s regret is at most ``other``'s."""
    return sum(r1 <= r0 for (r1, _), (r0, _) in zip(mine, other))


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(int(q * len(xs)), len(xs) - 1)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="branin,hartmann6")
    ap.add_argument("--seeds", type=int, default=48)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--out", default="grown_allocation.json")
    a = ap.parse_args()
    t0 = time.perf_counter()
    results: dict[str, Any] = {}
    for tname in a.tasks.split(","):
        task = make_task(tname)
        rows: dict[str, dict[str, list[Any]]] = {s: {w: [] for w in WAYS} for s in SAMPLERS}
        for seed in range(a.first_seed, a.first_seed + a.seeds):
            budget = run_system(RANDOM, task, seed, None)["spent"]
            for s in SAMPLERS:
                for w, v in one(task, seed, s, budget).items():
                    rows[s][w].append(v)
        results[tname] = rows
        what = "median regret" if task.optimum is not None else "median final validation loss"
        print(f"\n**{tname}** (T = {task.trials} trials, {a.seeds} seeds {a.first_seed}-"
              f"{a.first_seed + a.seeds - 1}; {what} [25th-75th], compute spent / B)\n")
        print("| sampler | " + " | ".join(WAYS) + " | raised: at least as good as from the "
              "start / as a second search |")
        print("|---|" + "---:|" * (len(WAYS) + 1))
        for s in SAMPLERS:
            cells = []
            for w in WAYS:
                reg = [r for r, _ in rows[s][w]]
                share = statistics.median(sp for _, sp in rows[s][w])
                cells.append(f"{statistics.median(reg):.4g} [{pct(reg, 0.25):.3g}-"
                             f"{pct(reg, 0.75):.3g}], {share:.2f}")
            level = [at_least(rows[s][WAYS[1]], rows[s][w]) for w in (WAYS[0], WAYS[2])]
            print(f"| {s} | " + " | ".join(cells) + f" | {level[0]} / {level[1]} of {a.seeds} |")
    wall = time.perf_counter() - t0
    print(f"\nwall {wall:.0f} s", file=sys.stderr)
    path = HERE / "results" / a.out
    path.write_text(json.dumps({"seeds": a.seeds, "first_seed": a.first_seed, "wall_s": wall,
                                "results": results}, indent=1))
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

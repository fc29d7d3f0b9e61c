"""What stopping at a compute budget costs a search whose plan does not end there.

    pip install -e '.[bench]'
    python benchmarks/budget_cut.py                     # 4 tasks, seeds 0-11, ~10 minutes
    python benchmarks/budget_cut.py --tasks hgb --first-seed 100 --seeds 12
    python benchmarks/budget_cut.py --max-rungs 3,2 --out benchmarks/results/budget_cut_rungs.json
    python benchmarks/budget_cut.py --tasks branin,hartmann6 --seeds 48 \
        --modes standard,aggressive,conservative \
        --out benchmarks/results/budget_cut_modes_functions.json   # RESULTS.md 8e, ~2 minutes

search_quality.py stops every system at the compute asha_hpc's adaptive_asha with random
sampling spends on T trials. That run's plan ends exactly there; every other system is stopped
in the middle of its plan, with segments still on their way to full length (16 workers, and a
segment from 16 to 64 units holds one for 48 units). This measures that cost with random
sampling itself, on the same tasks, seeds and budget:

- ``random, T trials``: the run that sets the budget (not cut);
- ``random, 2T trials, cut``: the same sampler with a plan twice as large, stopped at the budget;
- ``tpe`` / ``gp``, T trials: cut at the budget (as search_quality.py ran them before
  ``searcher.max_compute``), and uncut (their whole plan, with its compute as a multiple of the
  budget);
- ``tpe`` / ``gp``, T trials, ``max_compute`` = the budget: the search plans to it (creates fewer
  trials once the trials so far are expected to need the rest), as search_quality.py runs them;
- with ``--fewer F`` (for example 0.75): ``tpe`` / ``gp`` with round(F T) trials, their whole plan:
  a plan whose compute is near the budget without a cut, what a search that plans to a compute
  budget would give at best;
- with ``--max-rungs N`` (for example 3,2): ``random`` / ``tpe`` / ``gp`` with ``searcher.max_rungs
  N`` (the default is 5: every rung of 1-4-16-64), cut at the budget. Fewer rungs start every
  trial at a longer first length (64 / 4^(N-1) units), so short results mislead less, and fewer
  trials fit in the same compute: which one wins is what this measures;
- with ``--modes M`` (for example standard,aggressive): ``random`` / ``tpe`` / ``gp`` with
  ``searcher.mode M``, 2T trials and ``max_compute`` = the budget. ``aggressive`` is one bracket,
  every trial starting at the shortest length; ``standard`` (the default) and ``conservative``
  add brackets whose trials start longer, a hedge against short results that mislead. With T
  trials ``aggressive`` plans about half the budget, hence 2T and the cap: each mode spends the
  same compute its own way.

Printed per task: median final value of the incumbent (the configuration trained to full
length: the function's value, or the validation loss), its regret for the functions, on how many
seeds each is below ``random, T trials``, and the median compute spent over the budget. Writes
benchmarks/results/budget_cut.json.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import search_quality as sq  # noqa: E402  (sets the thread limits and the paths first)

# (label, system, share of T trials, cut at the budget, searcher.max_rungs, max_compute = the
# budget, searcher.mode)
R, M = sq.Task.max_rungs, sq.Task.mode
ROWS = [("random, T trials (sets the budget)", sq.RANDOM, 1, False, R, False, M),
        ("random, 2T trials, cut", sq.RANDOM, 2, True, R, False, M),
        ("tpe, T trials, cut", sq.TPE, 1, True, R, False, M),
        ("gp, T trials, cut", sq.GP, 1, True, R, False, M),
        ("tpe, T trials, whole plan", sq.TPE, 1, False, R, False, M),
        ("gp, T trials, whole plan", sq.GP, 1, False, R, False, M),
        ("tpe, T trials, max_compute", sq.TPE, 1, True, R, True, M),
        ("gp, T trials, max_compute", sq.GP, 1, True, R, True, M)]
SAMPLERS = (("random", sq.RANDOM), ("tpe", sq.TPE), ("gp", sq.GP))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="branin,hartmann6,digits_mlp,hgb")
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="JSON path (default: in benchmarks/results/)")
    ap.add_argument("--fewer", type=float, default=None,
                    help="also run tpe and gp with this share of T trials, whole plan")
    ap.add_argument("--max-rungs", default=None,
                    help="also run random, tpe and gp with these searcher.max_rungs (comma "
                         "separated), cut at the budget")
    ap.add_argument("--modes", default=None,
                    help="also run random, tpe and gp with these searcher.mode (comma "
                         "separated), 2T trials and max_compute = the budget")
    a = ap.parse_args()
    runs = list(ROWS)
    if a.fewer is not None:
        runs += [(f"{name}, {a.fewer:g}T trials, whole plan", system, a.fewer, False, R, False,
                  M) for name, system in SAMPLERS[1:]]
    for n in [int(x) for x in (a.max_rungs or "").split(",") if x]:
        runs += [(f"{name}, max_rungs {n}, cut", system, 1, True, n, False, M)
                 for name, system in SAMPLERS]
    for mode in [x for x in (a.modes or "").split(",") if x]:
        runs += [(f"{name}, {mode}, 2T trials, max_compute", system, 2, True, R, True, mode)
                 for name, system in SAMPLERS]
    seeds = range(a.first_seed, a.first_seed + a.seeds)
    t0 = time.perf_counter()
    out: dict[str, Any] = {}
    for tname in a.tasks.split(","):
        task = sq.make_task(tname)
        trials = task.trials
        finals: dict[str, list[float]] = {r[0]: [] for r in runs}
        spent: dict[str, list[float]] = {r[0]: [] for r in runs}
        for seed in seeds:
            budget = None
            for label, system, mult, cut, max_rungs, plan, mode in runs:
                task.trials = max(1, round(trials * mult))
                task.max_rungs, task.mode = max_rungs, mode
                r = sq.run_system(system, task, seed, budget if cut else None, plan=plan)
                if budget is None:
                    budget = r["spent"]  # the first row sets it
                finals[label].append(r["final"])
                spent[label].append(r["spent"] / budget)
            task.trials, task.max_rungs, task.mode = trials, R, M
            print(f"  {tname} seed {seed}: " + ", ".join(f"{k.split(',')[0]} {v[-1]:.5g}"
                                                         for k, v in finals.items()),
                  file=sys.stderr, flush=True)
        opt = sq.landscapes.OPTIMUM.get(tname)
        base = finals[runs[0][0]]
        rows = {}
        for label, v in finals.items():
            rows[label] = {"median": statistics.median(v), "q25": sq.pct(v, 25),
                           "q75": sq.pct(v, 75),
                           "regret": None if opt is None else statistics.median(v) - opt,
                           "below_random_T": sum(x < y for x, y in zip(v, base)),
                           "compute": statistics.median(spent[label]), "finals": v}
        out[tname] = {"optimum": opt, "trials": trials, "seeds": list(seeds), "rows": rows}
        what = "value (regret)" if opt is not None else "validation loss"
        print(f"\n{tname}: T = {trials}, seeds {seeds[0]}-{seeds[-1]}; median final {what}")
        print(f"  {'':<44} {'median':>10} {'regret':>8} {'[25% - 75%]':>23} "
              f"{'below random T':>15} {'compute':>8}")
        for label, r in rows.items():
            reg = f"{r['regret']:.3g}" if r["regret"] is not None else "-"
            print(f"  {label:<44} {r['median']:>10.5g} {reg:>8} [{r['q25']:>9.4g} - "
                  f"{r['q75']:>9.4g}] {r['below_random_T']:>8} of {len(seeds):<5} "
                  f"{r['compute']:>7.2f}x")
    total = time.perf_counter() - t0
    print(f"total {total:.0f} s")
    path = sq.save_by_seeds("budget_cut", a.first_seed, a.seeds, {"tasks": out, "total_s": total},
                            a.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

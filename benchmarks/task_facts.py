"""What each task of search_quality.py lets a sampler learn: how short runs rank the trials ASHA
promotes, and (real tasks) how much of a result is the training seed's.

    pip install -e '.[bench]'
    python benchmarks/task_facts.py                  # the four tasks, ~3 minutes
    python benchmarks/task_facts.py --tasks hgb --configs 400 --seeds 4

For N configurations drawn as asha_hpc draws them (seed 0 of the space's stream):

- **Promoted quarter**: ASHA promotes the best quarter of a rung (divisor 4). Among the best
  quarter at 1, 4 and 16 units, the rank correlation of their losses there with their losses at
  the next rung and at full length (64). Near 1: a model fitted on that rung learns the order
  that decides the final pick; near 0 or below: it learns another one.
- **Seed noise** (the real tasks, S training seeds; their runs in search_quality.py use seed 0):
  the standard deviation of one configuration's full-length validation loss over the seeds
  (median over the best quarter by mean), the rank correlation of the best quarter under seed 0
  and seed 1, and the winner's curse (the best under seed 0, trained with the other seeds).
- **When the pick was made**: asha_hpc's three samplers run as in search_quality.py (equal
  compute, seeds 0-11 unless ``--pick-seeds``); for each, the compute already spent when the
  trial that ends as the pick was created, as a share of the budget, and on how many seeds the
  pick is one of the trials created before any result came (the first 16, drawn at random by
  every sampler alike) and on how many a model drew it (tpe, gp).
- Next to them, each system's median regret in search_quality.py's committed more-seeds run.

Writes benchmarks/results/task_facts.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import search_quality as sq  # noqa: E402  (sets the thread limits and the paths first)

from asha_hpc.views.status import rank_correlation as spearman  # noqa: E402  (what status shows)

RUNGS = (1, 4, 16, 64)


def hgb_full(task: Any, hp: dict[str, Any], seed: int) -> float:
    """search_quality's HGB trained to full length with ``random_state=seed`` (it uses 0)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    m = HistGradientBoostingClassifier(max_iter=sq.MAX_LEN, early_stopping=False,
                                       random_state=seed, **hp)
    m.fit(task.Xtr, task.ytr)
    p = m.predict_proba(task.Xva)[np.arange(len(task.yva)), task.yva]
    return float(-np.mean(np.log(np.clip(p, 1e-12, 1.0))))


def full_loss(task: Any, hp: dict[str, Any], seed: int) -> float:
    if seed == 0:
        return task.curve(hp, sq.MAX_LEN)
    if task.name == "hgb":
        return hgb_full(task, hp, seed)
    return task.sr.full_length(task.data, hp, seed)[0]


def measured_regrets(task: str) -> dict[str, float]:
    """Median final regret per system in the committed more-seeds run of search_quality.py."""
    name = "search_quality_more_seeds" + ("_real" if task in ("digits_mlp", "hgb") else "")
    path = HERE / "results" / f"{name}.json"
    if not path.exists():
        return {}
    rows = json.loads(path.read_text())["results"].get(task, {}).get("rows", {})
    return {system: row["median"] for system, row in rows.items()}


def promoted_quarter(task: Any, hps: list[dict[str, Any]]) -> dict[str, float]:
    curve = {n: np.array([task.curve(hp, n) for hp in hps]) for n in RUNGS}
    out = {}
    for short, longer in zip(RUNGS, RUNGS[1:]):
        top = np.argsort(curve[short], kind="stable")[: len(hps) // 4]
        out[f"{short}->{longer}"] = spearman(curve[short][top], curve[longer][top])
        if longer != RUNGS[-1]:
            out[f"{short}->{RUNGS[-1]}"] = spearman(curve[short][top], curve[RUNGS[-1]][top])
    return out


def seed_noise(task: Any, hps: list[dict[str, Any]], seeds: int) -> dict[str, Any]:
    losses = np.array([[full_loss(task, hp, s) for s in range(seeds)] for hp in hps])
    ok = (losses < 1.0).all(axis=1)  # diverged or useless configurations say nothing here
    quarter = max(4, len(hps) // 4)
    top = [i for i in np.argsort(losses.mean(axis=1)) if ok[i]][:quarter]
    top0 = [i for i in np.argsort(losses[:, 0]) if ok[i]][:quarter]
    best0 = int(top0[0])
    return {"usable": int(ok.sum()),
            "sd": statistics.median(float(losses[i].std(ddof=1)) for i in top),
            "seed0_vs_seed1": spearman(losses[top0, 0], losses[top0, 1]),
            "best_under_seed0": float(losses[best0, 0]),
            "same_config_other_seeds": float(losses[best0, 1:].mean())}


def picks(task: Any, seeds: range) -> dict[str, Any]:
    out: dict[str, list[float]] = {}
    model: dict[str, int] = {}
    for seed in seeds:
        budget = None
        for system in (sq.RANDOM, sq.TPE, sq.GP):
            # stopped at the budget, as search_quality.py ran them before searcher.max_compute
            # (results/task_facts.json)
            r = sq.run_system(system, task, seed, budget, plan=False)
            budget = budget or r["spent"]
            out.setdefault(system, []).append(r["pick_created"] / budget)
            model[system] = model.get(system, 0) + bool(r["pick_from_model"])
    return {system: {"median": statistics.median(v), "max": max(v),
                     "before_any_result": sum(x == 0 for x in v), "from_model": model[system],
                     "shares": v}
            for system, v in out.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="branin,hartmann6,digits_mlp,hgb")
    ap.add_argument("--configs", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=3, help="training seeds (real tasks)")
    ap.add_argument("--pick-seeds", type=int, default=12, help="seeds 0.. of the pick runs (0: none)")
    ap.add_argument("--out", default="task_facts.json")
    a = ap.parse_args()
    t0 = time.perf_counter()
    out: dict[str, Any] = {}
    for name in a.tasks.split(","):
        task = sq.make_task(name)
        rng = np.random.default_rng(0)
        hps = [task.space.sample(rng) for _ in range(a.configs)]
        row: dict[str, Any] = {"configs": a.configs, "promoted_quarter": promoted_quarter(task, hps)}
        real = name not in sq.landscapes.SPACES
        if real:
            row["seed_noise"] = seed_noise(task, hps, a.seeds)
        if a.pick_seeds:
            row["picks"] = picks(task, range(a.pick_seeds))
        row["regrets"] = measured_regrets(name)
        out[name] = row
        print(f"\n{name}: {a.configs} random configurations")
        print("  promoted quarter, rank correlation of a rung's best quarter with a longer rung: "
              + ", ".join(f"{k} {v:.2f}" for k, v in row["promoted_quarter"].items()))
        if real:
            n = row["seed_noise"]
            print(f"  full-length validation loss over {a.seeds} training seeds: sd {n['sd']:.4f} "
                  f"(best quarter, median); rank correlation seed 0 vs 1 {n['seed0_vs_seed1']:.2f}; "
                  f"best under seed 0 {n['best_under_seed0']:.4f}, other seeds "
                  f"{n['same_config_other_seeds']:.4f}")
        for system, p in row.get("picks", {}).items():
            print(f"  {system:<16} the pick's trial was created at {p['median']:.2f} of the budget "
                  f"(median; max {p['max']:.2f}); before any result on {p['before_any_result']}, "
                  f"drawn by a model on {p['from_model']} of {a.pick_seeds} seeds")
        for system, reg in row["regrets"].items():
            extra = f" ({reg / row['seed_noise']['sd']:.1f} sd)" if real else ""
            print(f"  search_quality median regret  {system:<32} {reg:.4g}{extra}")
    total = time.perf_counter() - t0
    print(f"total {total:.0f} s")
    path = HERE / "results" / a.out
    path.write_text(json.dumps({"benchmark": "task_facts", "tasks": out, "total_s": total},
                               indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

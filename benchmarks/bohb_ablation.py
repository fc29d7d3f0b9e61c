"""Where Ray Tune's BOHB gains over asha_hpc's tpe: its model, its schedule, or both.

    pip install -e '.[bench]'
    python benchmarks/bohb_ablation.py                      # Hartmann-6 and Branin, seeds 0-11
    python benchmarks/bohb_ablation.py --tasks hartmann6 --first-seed 100 --seeds 24

search_quality.py (RESULTS.md section 8) finds Ray's BOHB (hpbandster's models on synchronous
HyperBand) ahead of ``sampler: tpe`` (our models on asynchronous adaptive_asha) on Hartmann-6.
This swaps one part at a time, everything else as in search_quality.py (same tasks, 16 virtual
workers, every system stopped at the compute asha_hpc random spends on T trials):

- ``asha_hpc random`` / ``asha_hpc tpe``: the two samplers of the product;
- ``asha_hpc + hpbandster model``: asha_hpc's adaptive_asha and ASHA promotions, new trials drawn
  by hpbandster's BOHB configuration generator (the model inside Ray's TuneBOHB, its defaults:
  top 15%, 64 candidates, bandwidth factor 3, a third random) instead of ours;
- ``Ray HyperBand, random draws``: Ray's BOHB with its models switched off
  (``min_points_in_model`` larger than any budget's results), so every trial is random;
- ``Ray Tune BOHB``: both, as in search_quality.py.

Printed per task: median final regret [25th - 75th percentile] and on how many seeds each system
ended below tpe. Writes benchmarks/results/bohb_ablation.json.
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import search_quality as sq  # noqa: E402  (sets the thread limits and the paths first)

from asha_hpc.searcher import BracketSearcher, bracket_plan  # noqa: E402

NO_MODEL = {"min_points_in_model": 10**9}  # hpbandster never has enough results to fit


class HpbandsterSampler:
    """hpbandster's BOHB configuration generator behind the interface BracketSearcher gives its
    ``model``: ``sample(trial_id)`` in creation order, ``observe(trial_id, length, loss)``."""

    def __init__(self, task: sq.Task, seed: int) -> None:
        from hpbandster.optimizers.config_generators.bohb import BOHB
        from ray.tune.search.bohb import TuneBOHB

        logging.getLogger("hpbandster").setLevel(logging.ERROR)
        np.random.seed(seed)  # hpbandster's random configurations and KDE samples
        space = TuneBOHB.convert_search_space(sq.ray_domains(task.spec))
        space.seed(seed)
        self.cg = BOHB(configspace=space)
        self.configs: dict[int, Any] = {}

    def sample(self, trial_id: int) -> dict[str, Any]:
        cfg, _ = self.cg.get_config(budget=None)  # the largest budget with a model decides
        self.configs[trial_id] = cfg
        return sq.plain(cfg)

    def observe(self, trial_id: int, length: int, loss: float | None) -> None:
        if loss is None or loss != loss:
            loss = float("inf")
        job = SimpleNamespace(kwargs={"budget": float(length), "config": self.configs[trial_id]},
                              result={"loss": loss}, exception=None, timestamps={})
        self.cg.new_result(job)

    def take_fresh(self) -> dict[int, dict[str, Any]]:
        return {}

    def preload(self, configs: dict[int, dict[str, Any]]) -> None:
        pass


class OursWithHpbandster(sq.Ours):
    def __init__(self, task: sq.Task, run: sq.Run, seed: int) -> None:
        super().__init__(task, run, seed, "random")
        c = sq.searcher_config(task, "random")
        model = HpbandsterSampler(task, seed)
        self.s = BracketSearcher(bracket_plan(c, task.space), c.divisor, c.smaller_is_better,
                                 c.stop_once, model.sample, rng=np.random.default_rng(seed),
                                 model=model, rule=c.asha_rule)


SYSTEMS = {
    sq.RANDOM: sq.SYSTEMS[sq.RANDOM],
    sq.TPE: sq.SYSTEMS[sq.TPE],
    "asha_hpc + hpbandster model": OursWithHpbandster,
    "Ray HyperBand, random draws": lambda task, run, seed: sq.RayBOHB(task, run, seed, NO_MODEL),
    "Ray Tune BOHB": sq.SYSTEMS["Ray Tune BOHB"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="hartmann6,branin")
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--first-seed", type=int, default=0)
    a = ap.parse_args()
    missing = [m for m in ("hpbandster", "ConfigSpace", "ray.tune") if not sq.have(m)]
    if missing:
        print(f"needs {', '.join(missing)}: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    sq.SYSTEMS.update(SYSTEMS)  # run_system looks systems up there
    seeds = range(a.first_seed, a.first_seed + a.seeds)
    t0 = time.perf_counter()
    out: dict[str, Any] = {}
    for tname in a.tasks.split(","):
        task = sq.make_task(tname)
        finals: dict[str, list[float]] = {s: [] for s in SYSTEMS}
        for seed in seeds:
            base = sq.run_system(sq.RANDOM, task, seed, None)
            finals[sq.RANDOM].append(base["final"])
            for s in SYSTEMS:
                if s != sq.RANDOM:
                    # stopped at the budget like the other rows (its own sampler has no cap)
                    finals[s].append(sq.run_system(s, task, seed, base["spent"],
                                                   plan=False)["final"])
            print(f"  {tname} seed {seed}: " + ", ".join(f"{s} {v[-1]:.5g}"
                                                        for s, v in finals.items()),
                  file=sys.stderr, flush=True)
        opt = sq.landscapes.OPTIMUM.get(tname, min(min(v) for v in finals.values()))
        rows = {}
        for s, v in finals.items():
            regret = [x - opt for x in v]
            rows[s] = {"median": statistics.median(regret), "q25": sq.pct(regret, 25),
                       "q75": sq.pct(regret, 75),
                       "below_tpe": sum(x < y for x, y in zip(v, finals[sq.TPE])),
                       "finals": v}
        out[tname] = {"optimum": opt, "seeds": list(seeds), "rows": rows}
        print(f"\n{tname}: seeds {seeds[0]}-{seeds[-1]}, equal compute (asha_hpc random's on "
              f"{task.trials} trials)")
        print(f"  {'system':<30} {'median regret':>14} {'[25% - 75%]':>23} {'below tpe':>10}")
        for s, r in rows.items():
            print(f"  {s:<30} {r['median']:>14.4g} [{r['q25']:>9.3g} - {r['q75']:>9.3g}] "
                  f"{r['below_tpe']:>4} of {len(seeds)}")
    total = time.perf_counter() - t0
    print(f"total {total:.0f} s")
    path = sq.save_by_seeds("bohb_ablation", a.first_seed, a.seeds,
                            {"tasks": out, "total_s": total})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Decision overhead: asha_hpc's searcher vs Ray Tune's ASHAScheduler vs Optuna's
SuccessiveHalvingPruner, per result, as the search grows to 1,000 / 10,000 / 100,000 trials.

    pip install -e '.[bench]'
    python benchmarks/decision_overhead.py [--quick] [--peer-max 10000] [--budget-s 300]

Every system gets the same kind of stream: rungs at 1, 4, 16, 64 and 256 units (divisor /
reduction factor 4, max_length / max_t 256), 1,000 trials in flight, and a seeded pool that
picks a random in-flight trial to report next; the metric of the i-th created trial at length
L is fixed (``q_i + a_i / sqrt(1 + L)``), so every system sees the same values for the same
trials. A trial reports only at rung lengths, where decisions happen (a real Ray or Optuna trial
reports every iteration and pays a cheap call for each; not counted here). Timed: everything the
system does for one result, with time.perf_counter_ns around it, the pool not timed:

- asha_hpc: ``searcher.on_event(SegmentCompleted(...))`` (bookkeeping, the decision, sampling
  the trials it creates). Two variants: ``stop_once`` (the stopping rule, the one Ray and
  Optuna use) and the default promotion rule.
- Ray Tune 2.x: ``ASHAScheduler.on_trial_result``, then ``on_trial_complete`` when it says STOP
  or the trial reached max_t, and for a new trial its config sampled from ``tune`` domains and
  ``on_trial_add``. The scheduler only reads ``trial.trial_id``, so a slotted stand-in replaces
  ray.tune's Trial (whose constructor sets up logging, resources and a checkpoint manager: it
  would be timed as well, and is not the scheduler's cost). Ray's actor runtime is not started.
- Optuna: ``trial.report()`` + ``trial.should_prune()`` (SuccessiveHalvingPruner(min_resource=1,
  reduction_factor=4), InMemoryStorage, RandomSampler), ``study.tell()`` at the end of a trial,
  and ``study.ask()`` + three ``suggest_*`` calls for a new one.
- Syne Tune (if installed): its ``AsynchronousSuccessiveHalving`` (a port of Ray's stopping
  scheduler), ``suggest()`` + ``on_trial_add`` for a new trial, ``on_trial_result``, and
  ``on_trial_complete`` on STOP; syne-tune's own Trial objects.

Peers run up to ``--peer-max`` trials (default 10,000) and only while the size before finished
within ``--budget-s`` scaled by the growth seen so far; skipped sizes are listed with the reason.
Writes benchmarks/results/decision_overhead.json (decision_overhead_quick.json with --quick).
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
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asha_hpc.config import SearcherConfig  # noqa: E402
from asha_hpc.searcher import CreateTrial, ResumeTrial, SegmentCompleted, make_searcher  # noqa: E402
from asha_hpc.space import parse_space  # noqa: E402

MAX_T = 256
RF = 4
RUNGS = [1, 4, 16, 64, 256]
ACTS = ["relu", "gelu", "tanh"]

Work = tuple[object, int, int]  # (handle, creation index, length to report)


class Stream:
    """The metric of the i-th created trial at length L, the same for every system."""

    def __init__(self, n: int, seed: int) -> None:
        r = np.random.default_rng(seed)
        self.q = r.random(n).tolist()
        self.a = r.uniform(0, 2, n).tolist()

    def metric(self, i: int, length: int) -> float:
        return self.q[i] + self.a[i] / math.sqrt(1.0 + length)


def drive(system, n: int, concurrent: int, seed: int):
    """Run one search: (per-result ns, results, trials created)."""
    stream = Stream(n, seed)
    rnd = random.Random(seed)
    pool: list[Work] = list(system.start(n, concurrent, seed))
    costs = []
    clock = time.perf_counter_ns
    metric = stream.metric
    while pool:
        i = rnd.randrange(len(pool))
        pool[i], pool[-1] = pool[-1], pool[i]
        h, idx, length = pool.pop()
        m = metric(idx, length)
        t = clock()
        new = system.report(h, idx, length, m)
        costs.append(clock() - t)
        pool.extend(new)
    return costs, len(costs), system.created


# ----------------------------------------------------------------------------- systems
SPACE, _ = parse_space({"lr": {"type": "log", "minval": -5, "maxval": -1, "base": 10},
                        "width": {"type": "int", "minval": 16, "maxval": 512},
                        "act": {"type": "categorical", "vals": ACTS}})


class Ours:
    def __init__(self, stop_once: bool) -> None:
        self.stop_once = stop_once
        self.name = "asha_hpc " + ("(stop_once)" if stop_once else "(promotion)")

    def start(self, n, concurrent, seed):
        cfg = SearcherConfig(name="async_halving", metric="loss", max_length=MAX_T, max_trials=n,
                             max_concurrent_trials=concurrent, divisor=RF, num_rungs=len(RUNGS),
                             stop_once=self.stop_once)
        self.s = make_searcher(cfg, SPACE, seed)
        self.created = 0
        return self._work(self.s.start())

    def _work(self, actions):
        out = []
        for a in actions:
            if isinstance(a, CreateTrial):
                self.created += 1
                out.append((a.trial_id, a.trial_id - 1, a.length))
            elif isinstance(a, ResumeTrial):
                out.append((a.trial_id, a.trial_id - 1, a.length))
        return out

    def report(self, h, idx, length, m):
        return self._work(self.s.on_event(SegmentCompleted(h, length, m)))


class _RayTrial:
    """What ASHAScheduler reads of a trial: its id."""

    __slots__ = ("trial_id", "config")

    def __init__(self, trial_id: str, config) -> None:
        self.trial_id = trial_id
        self.config = config


class Ray:
    name = "Ray Tune ASHAScheduler"

    def start(self, n, concurrent, seed):
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler

        np.random.seed(seed)  # on_trial_add draws the bracket with np.random
        self.sched = ASHAScheduler(time_attr="training_iteration", metric="loss", mode="min",
                                   max_t=MAX_T, grace_period=1, reduction_factor=RF)
        self.space = {"lr": tune.loguniform(1e-5, 1e-1), "width": tune.randint(16, 513),
                      "act": tune.choice(ACTS)}
        self.n = n
        self.created = 0
        return [self._new() for _ in range(min(n, concurrent))]

    def _new(self):
        i = self.created
        self.created += 1
        t = _RayTrial(str(i), {k: d.sample() for k, d in self.space.items()})
        self.sched.on_trial_add(None, t)
        return (t, i, RUNGS[0])

    def report(self, t, idx, length, m):
        result = {"training_iteration": length, "loss": m}
        if self.sched.on_trial_result(None, t, result) == "CONTINUE":
            return [(t, idx, length * RF)]
        self.sched.on_trial_complete(None, t, result)
        return [self._new()] if self.created < self.n else []


class Optuna:
    name = "Optuna SuccessiveHalvingPruner"

    def start(self, n, concurrent, seed):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.TrialState = optuna.trial.TrialState
        self.study = optuna.create_study(
            direction="minimize", storage=optuna.storages.InMemoryStorage(),
            sampler=optuna.samplers.RandomSampler(seed=seed),
            pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=RF,
                                                          min_early_stopping_rate=0))
        self.n = n
        self.created = 0
        return [self._new() for _ in range(min(n, concurrent))]

    def _new(self):
        i = self.created
        self.created += 1
        tr = self.study.ask()
        tr.suggest_float("lr", 1e-5, 1e-1, log=True)
        tr.suggest_int("width", 16, 512)
        tr.suggest_categorical("act", ACTS)
        return (tr, i, RUNGS[0])

    def report(self, tr, idx, length, m):
        if length >= MAX_T:
            self.study.tell(tr, m)
        else:
            tr.report(m, length)
            if not tr.should_prune():
                return [(tr, idx, length * RF)]
            self.study.tell(tr, state=self.TrialState.PRUNED)
        return [self._new()] if self.created < self.n else []


class SyneTune:
    name = "Syne Tune ASHA (stopping)"

    def start(self, n, concurrent, seed):
        import datetime

        from syne_tune.backend.trial_status import Trial
        from syne_tune.config_space import choice, loguniform, randint
        from syne_tune.optimizer.schedulers.asha import AsynchronousSuccessiveHalving

        np.random.seed(seed)  # on_trial_add draws the bracket with np.random
        self.Trial, self.now = Trial, datetime.datetime.now()
        self.sched = AsynchronousSuccessiveHalving(
            {"lr": loguniform(1e-5, 1e-1), "width": randint(16, 512), "act": choice(ACTS)},
            metric="loss", do_minimize=True, max_t=MAX_T, grace_period=1, reduction_factor=RF,
            random_seed=seed)
        self.n = n
        self.created = 0
        return [self._new() for _ in range(min(n, concurrent))]

    def _new(self):
        i = self.created
        self.created += 1
        t = self.Trial(trial_id=i, config=self.sched.suggest().config, creation_time=self.now)
        self.sched.on_trial_add(t)
        return (t, i, RUNGS[0])

    def report(self, t, idx, length, m):
        result = {"training_iteration": length, "loss": m}
        if self.sched.on_trial_result(t, result) == "CONTINUE":
            return [(t, idx, length * RF)]
        self.sched.on_trial_complete(t, result)
        return [self._new()] if self.created < self.n else []


def available(cls) -> str | None:
    try:
        if cls is Ray:
            import ray.tune  # noqa: F401
        elif cls is Optuna:
            import optuna  # noqa: F401
        elif cls is SyneTune:
            import syne_tune  # noqa: F401
    except ImportError as e:
        return f"not installed ({e.name}); pip install -e '.[bench]'"
    return None


def versions():
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("ray", "optuna", "syne_tune"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = None
    return out


def percentile(xs, q):
    k = min(len(xs) - 1, max(0, int(math.ceil(q / 100.0 * len(xs))) - 1))
    return xs[k]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,000 and 10,000 trials only")
    ap.add_argument("--peer-max", type=int, default=10_000, help="largest search for Ray and Optuna")
    ap.add_argument("--budget-s", type=float, default=300.0,
                    help="skip a size predicted (from the growth so far) to take longer")
    ap.add_argument("--concurrent", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    sizes = [1_000, 10_000] if a.quick else [1_000, 10_000, 100_000]
    systems: list[tuple[Callable[[], object], int]] = [
        (lambda: Ours(stop_once=True), max(sizes)), (lambda: Ours(stop_once=False), max(sizes)),
        (Ray, a.peer_max), (Optuna, a.peer_max), (SyneTune, a.peer_max)]
    rows = []
    first = {}
    for make, cap in systems:
        sysobj = make()
        why = available(type(sysobj))
        done = []
        for n in sizes:
            row = {"system": sysobj.name, "trials": n}
            if why:
                row["skipped"] = why
            elif n > cap:
                row["skipped"] = f"above --peer-max {cap:,}"
            elif done:
                # the cost per result grows like n**e (e from the last two sizes; 0 with one)
                last = done[-1]
                e = 0.0
                if len(done) > 1:
                    e = max(0.0, math.log(last["mean_us"] / done[-2]["mean_us"])
                            / math.log(last["trials"] / done[-2]["trials"]))
                scale = n / last["trials"]
                predicted = last["total_s"] * scale ** (1 + e)
                if predicted > a.budget_s:
                    row["skipped"] = (f"predicted {predicted:,.0f} s from the growth up to "
                                      f"{last['trials']:,} trials (over --budget-s {a.budget_s:g})")
            if "skipped" not in row:
                gc.collect()
                t0 = time.perf_counter()
                costs, events, created = drive(make(), n, a.concurrent, a.seed)
                wall = time.perf_counter() - t0
                costs.sort()
                row.update(events=events, created=created,
                           mean_us=round(sum(costs) / len(costs) / 1000.0, 2),
                           p50_us=round(percentile(costs, 50) / 1000.0, 2),
                           p99_us=round(percentile(costs, 99) / 1000.0, 2),
                           total_s=round(sum(costs) / 1e9, 3), wall_s=round(wall, 2))
                first.setdefault(sysobj.name, row)
                done.append(row)
            rows.append(row)
            print(f"  {row['system']}, {n:,} trials: "
                  + (row["skipped"] if "skipped" in row else
                     f"{row['mean_us']} us/result ({row['events']:,} results, {row['wall_s']} s)"),
                  file=sys.stderr, flush=True)
    v = versions()
    print(f"decision cost per result: rungs {RUNGS}, {a.concurrent:,} in flight; python "
          f"{v['python']}, ray {v['ray']}, optuna {v['optuna']}, syne-tune {v['syne_tune']}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    hdr = (f"{'system':<32} {'trials':>8} {'results':>8} {'mean us':>9} {'p50 us':>8} "
           f"{'p99 us':>9} {'total s':>8} {'vs 1k':>6}")
    print(hdr)
    for r in rows:
        if "skipped" in r:
            print(f"{r['system']:<32} {r['trials']:>8,}  skipped: {r['skipped']}")
            continue
        g = r["mean_us"] / first[r["system"]]["mean_us"]
        r["mean_vs_1k"] = round(g, 2)
        print(f"{r['system']:<32} {r['trials']:>8,} {r['events']:>8,} {r['mean_us']:>9.2f} "
              f"{r['p50_us']:>8.2f} {r['p99_us']:>9.2f} {r['total_s']:>8.2f} {g:>6.2f}")
    name = "decision_overhead_quick.json" if a.quick else "decision_overhead.json"
    out = Path(__file__).resolve().parent / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "decision_overhead", "quick": a.quick,
                               "versions": v, "cpus": os.cpu_count(),
                               "load_avg": os.getloadavg(),
                               "config": {"rungs": RUNGS, "reduction_factor": RF,
                                          "max_t": MAX_T, "concurrent": a.concurrent,
                                          "seed": a.seed, "peer_max": a.peer_max},
                               "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

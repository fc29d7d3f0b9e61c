"""Search quality at equal compute: asha_hpc random, tpe and gp sampling vs Optuna TPE +
successive halving, Ray Tune ASHA, Ray Tune BOHB and Syne Tune's asynchronous BOHB, on four tasks,
12 seeds each.

    pip install -e '.[bench]'
    python benchmarks/search_quality.py                 # the published table, ~20 min here
    python benchmarks/search_quality.py --quick         # 3 seeds, synthetic tasks, ~1 minute
    python benchmarks/search_quality.py --tasks branin --seeds 4
    python benchmarks/search_quality.py --first-seed 100 --seeds 200 --tasks branin,hartmann6
                                                        # other seeds: where tpe's constants
                                                        # are chosen (the table uses 0-11)
    python benchmarks/search_quality.py --table results/search_quality_more_seeds.json more.json
                                                        # read earlier outputs again, as one

Tasks (``max_length`` 64 units, divisor 4 everywhere):
- ``branin`` and ``hartmann6``: the multi-fidelity test functions of benchmarks/landscapes.py
  (fidelity = length / 64), evaluated in virtual time: a unit costs nothing but counts;
- ``digits_mlp``: the numpy MLP on scikit-learn's digits of stopping_rules.py (epochs;
  validation log-loss; 5 hyperparameters: log, int, categorical);
- ``hgb``: scikit-learn's HistGradientBoostingClassifier on the bundled breast-cancer data
  (boosting iterations; validation log-loss; learning rate, leaves, min samples per leaf, L2,
  feature fraction, bins). A configuration's curve comes from ``staged_predict_proba`` of one
  fit, which equals a fit stopped at each length (no early stopping, fixed random_state), so a
  trial costs one fit however it is driven; the compute counted is the iterations each system
  asked for.
The real tasks train with a fixed model seed: the seed of a run only changes the searches.

Equal budget: every system gets the same 16 virtual workers (a segment of k units holds one
for k time steps) and, per task and seed, the compute (units trained) that asha_hpc's
adaptive_asha (standard mode) with random sampling spends on T trials; everyone stops there.
- asha_hpc adaptive_asha, sampler random / tpe / gp: the pure searcher (the master's own), trials
  resumed from their in-memory state when promoted, with ``searcher.max_compute`` set to the
  budget (what a user with a fixed allocation sets; random's plan fits it exactly, and with the
  cap it makes the same decisions);
- Optuna TPESampler + SuccessiveHalvingPruner(min_resource 1, reduction_factor 4), ask/tell,
  ``trial.report`` + ``should_prune`` every unit;
- Ray Tune ASHAScheduler(max_t 64, grace_period 1, reduction_factor 4) driven through its own
  ``on_trial_result`` every unit (as in stopping_rules.py), configs from ``tune`` domains;
- Syne Tune BOHB(max_t 64, grace_period 1, reduction_factor 4, one bracket, default KDE
  settings): asynchronous successive halving (stopping) whose new trials come from a KDE
  searcher, BOHB's models of good and bad configurations, driven as Syne Tune's ``Tuner``
  drives it (``suggest``, ``on_trial_add``, ``on_trial_result`` every unit, ``on_trial_remove``
  on STOP). Two things of Syne Tune 0.16 a reader of the table should know: its searcher fits
  one model on the last result of every trial whatever its length (not BOHB's per-budget
  models), and its random draws use numpy's global generator, seeded here with the run's seed,
  the stream Ray Tune ASHA's configurations come from: both start from the same configurations.
  Syne Tune 0.16 no longer ships MOBSTER or Hyper-Tune;
- Ray Tune BOHB: TuneBOHB (hpbandster's BOHB: models per budget, fitted on the largest budget
  with enough results) + HyperBandForBOHB(max_t 64, reduction_factor 4), synchronous
  HyperBand: a trial that reaches its bracket's milestone is PAUSED (its worker freed for
  another trial) until the bracket is done, then resumed from where it stopped or stopped.
  RayBOHB plays the part of Ray's TuneController those two call back into (trial statuses,
  ``choose_trial_to_run``, ``stop_trial``, one PENDING trial queued, the searcher told after
  the scheduler unless it said STOP), so each unit is trained and counted once.

Measured: the incumbent after every completed segment, by one rule for all (the best result
at the longest length anyone reached so far, as ``asha-hpc best`` picks), and its true value at
full length: what the incumbent's configuration gives trained to 64 units (exact for the
functions; for the real tasks the full-length result itself once the incumbent has one, before
that the configuration trained to 64 here, outside the budget, as for the functions). Regret =
incumbent's value - the best value known for the task (the functions' optimum; for the real
tasks the best full-length value any run of any system saw). Printed: median regret [25th -
75th percentile], wins per seed (lowest final regret; ties shared), the share of the budget
spent when a system's first full-length result came (``first 64``, median), and for each model
sampler (tpe, gp): its median regret over the best peer's (with the 5th - 95th percentile of
that ratio over bootstrap resamples of the seeds: how well the seeds pin it down), and the
share of random's compute at which it reached random's final value (median over seeds; also
counted only from its first full-length result, the first point at which a user of a real task
knows a value without training the pick further).
Writes benchmarks/results/search_quality.json and search_quality.png
(median regret against compute, a panel per task).
"""
from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # tiny models on a shared machine: threads only add overhead

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

# statsmodels' KDE (both BOHB peers fit theirs with it) warns on every fit that pandas will
# stop drawing from numpy's global generator, which the peers seed for repeatable runs
warnings.filterwarnings("ignore", message="After 0.17", category=FutureWarning)
# ... and divides by zero for a categorical with one value left in a model's data
warnings.filterwarnings("ignore", category=RuntimeWarning, module="statsmodels")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import landscapes  # noqa: E402
from peers import RayTrial, have, peer_domains, plain, ray_sample  # noqa: E402
from virtual_pool import run_pool  # noqa: E402

from asha_hpc.config import SearcherConfig  # noqa: E402
from asha_hpc.searcher import CreateTrial, FinishTrial, ResumeTrial, SegmentCompleted, make_searcher  # noqa: E402
from asha_hpc.space import parse_space  # noqa: E402

MAX_LEN = 64
DIVISOR = 4
WORKERS = 16
GRID = [i / 40 for i in range(1, 41)]  # compute fractions of the budget for the curves


# ----------------------------------------------------------------------------- tasks
class Task:
    """A task: its space (asha_hpc format), a curve (hp, length) -> metric, and what a unit
    of work costs to compute here (``train``)."""

    name = ""
    trials = 128  # T: the budget is what asha_hpc random spends on T trials
    max_rungs = SearcherConfig.max_rungs  # the config's default; budget_cut.py --max-rungs varies it
    mode = SearcherConfig.mode  # the config's default; budget_cut.py --modes varies it
    optimum: float | None = None

    def __init__(self) -> None:
        self.space = parse_space(self.spec)[0]

    spec: dict[str, Any] = {}

    def curve(self, hp: dict[str, Any], length: int) -> float:
        raise NotImplementedError

    def full(self, hp: dict[str, Any]) -> float:
        return self.curve(hp, MAX_LEN)


class Landscape(Task):
    def __init__(self, name: str) -> None:
        self.name, self.spec = name, landscapes.SPACES[name]
        self.fn = getattr(landscapes, name)
        self.optimum = landscapes.OPTIMUM[name]
        self.trials = 256
        super().__init__()

    def curve(self, hp, length):
        return self.fn(hp, length)


class DigitsMLP(Task):
    name = "digits_mlp"

    def __init__(self) -> None:
        import importlib.util

        spec = importlib.util.spec_from_file_location("stopping_rules", HERE / "stopping_rules.py")
        sr = importlib.util.module_from_spec(spec)
        sys.modules["stopping_rules"] = sr
        spec.loader.exec_module(sr)  # type: ignore[union-attr]
        self.sr, self.spec = sr, sr.SPACE_SPEC
        self.data = sr.Data()
        self.nets: dict[str, Any] = {}
        super().__init__()

    def curve(self, hp, length):
        key = json.dumps(hp, sort_keys=True)
        net = self.nets.get(key)
        if net is None or net.epochs > length:
            net = self.nets[key] = self.sr.Net(self.data, hp, 0)
        while net.epochs < length:
            net.epoch()
        return net.loss()

    def full(self, hp):
        return self.sr.full_length(self.data, hp, 0)[0]

    def forget(self) -> None:
        self.nets.clear()


class HGB(Task):
    name = "hgb"
    trials = 96
    spec = {"learning_rate": {"type": "log", "minval": -3, "maxval": 0, "base": 10},
            "max_leaf_nodes": {"type": "int", "minval": 2, "maxval": 64},
            "min_samples_leaf": {"type": "int", "minval": 1, "maxval": 64},
            "l2_regularization": {"type": "log", "minval": -6, "maxval": 1, "base": 10},
            "max_features": {"type": "double", "minval": 0.1, "maxval": 1.0},
            "max_bins": {"type": "categorical", "vals": [15, 63, 255]}}

    def __init__(self) -> None:
        from sklearn.datasets import load_breast_cancer

        X, y = load_breast_cancer(return_X_y=True)
        p = np.random.default_rng(0).permutation(len(X))
        X, y = X[p], y[p]
        self.Xtr, self.ytr, self.Xva, self.yva = X[:350], y[:350], X[350:], y[350:]
        self.curves: dict[str, np.ndarray] = {}
        super().__init__()

    def curve(self, hp, length):
        key = json.dumps(hp, sort_keys=True)
        c = self.curves.get(key)
        if c is None:
            from sklearn.ensemble import HistGradientBoostingClassifier

            m = HistGradientBoostingClassifier(max_iter=MAX_LEN, early_stopping=False,
                                               random_state=0, **hp)
            try:
                m.fit(self.Xtr, self.ytr)
            except ValueError:
                # a configuration outside the space (Syne Tune's BOHB proposed
                # max_leaf_nodes 1 on seed 68): the trial fails, its result the worst, as a
                # user's run would
                self.curves[key] = c = np.full(MAX_LEN, math.inf)
                return math.inf
            eps = 1e-12
            c = np.array([float(-np.mean(np.log(np.clip(pr[np.arange(len(self.yva)), self.yva],
                                                             eps, 1.0))))
                          for pr in m.staged_predict_proba(self.Xva)])
            if len(c) < MAX_LEN:  # fewer iterations when a tree could not split
                c = np.concatenate([c, np.full(MAX_LEN - len(c), c[-1])])
            self.curves[key] = c
        return float(c[length - 1])

    def forget(self) -> None:
        self.curves.clear()


def make_task(name: str) -> Task:
    if name in landscapes.SPACES:
        return Landscape(name)
    return {"digits_mlp": DigitsMLP, "hgb": HGB}[name]()


# ----------------------------------------------------------------------------- harness
class Run:
    """Where a system stands: compute spent, every result seen, the incumbent's history."""

    def __init__(self, task: Task, budget: int | None, plan: bool = True) -> None:
        self.task, self.budget = task, budget
        self.plan = plan  # asha_hpc plans to the budget (searcher.max_compute)
        self.overran = False  # a segment ended past the budget and was not counted
        self.spent = 0
        self.best_len, self.best = 0, math.inf
        self.best_hp: dict[str, Any] | None = None
        self.trace: list[tuple[int, float]] = []  # (compute, incumbent's full-length value)
        self.first_full: int | None = None  # compute when the first full-length result came

    def over(self) -> bool:
        return self.budget is not None and self.spent >= self.budget

    def result(self, hp: dict[str, Any], length: int, metric: float, units: int) -> None:
        if self.budget is not None and self.spent + units > self.budget:
            self.spent = self.budget  # this segment ends past the budget: it does not count
            self.overran = True
            return
        self.spent += units
        m = metric if metric == metric else math.inf
        if length > self.best_len or (length == self.best_len and m < self.best):
            self.best_len, self.best, self.best_hp = length, m, hp
            if length == MAX_LEN:
                value = m
                if self.first_full is None:
                    self.first_full = self.spent
            else:  # what the pick would give trained to full length (memoized per config)
                value = self.task.full(hp)
            self.trace.append((self.spent, value))
        elif self.trace:
            self.trace.append((self.spent, self.trace[-1][1]))


def searcher_config(task: Task, sampler: str, max_compute: int | None = None) -> SearcherConfig:
    """asha_hpc's search in this benchmark: adaptive_asha, standard mode, T trials."""
    return SearcherConfig(name="adaptive_asha", metric="loss", max_length=MAX_LEN,
                          max_trials=task.trials, max_concurrent_trials=WORKERS,
                          divisor=DIVISOR, max_rungs=task.max_rungs, mode=task.mode,
                          sampler=sampler, max_compute=max_compute)


class Ours:
    """asha_hpc's pure searcher; ``points`` (points_to_evaluate) and ``prior`` (warm_start's
    results) for warm_start.py's second searches."""

    def __init__(self, task: Task, run: Run, seed: int, sampler: str,
                 points: list[dict[str, Any]] | None = None,
                 prior: list[dict[str, Any]] | None = None) -> None:
        cfg = searcher_config(task, sampler, run.budget if run.plan else None)
        if points:
            cfg = replace(cfg, points_to_evaluate=points)
        self.s = make_searcher(cfg, task.space, seed)
        if prior:
            self.s.warm_start(prior)
        self.task, self.run = task, run
        self.hp: dict[int, dict[str, Any]] = {}
        self.at: dict[int, int] = {}  # trial -> length trained
        self.created_at: dict[int, int] = {}  # trial -> compute spent when it was created
        self.from_model: set[int] = set()  # trials whose configuration a model drew
        self.results: dict[int, dict[int, float]] = {}  # trial -> length -> metric (counted)

    def trial_of(self, hp: dict[str, Any] | None) -> int | None:
        """The trial with this configuration (the same object)."""
        return next((t for t, h in self.hp.items() if h is hp), None)

    def _work(self, actions):
        out = []
        for a in actions:
            if isinstance(a, CreateTrial):
                self.hp[a.trial_id] = a.hparams
                self.created_at[a.trial_id] = self.run.spent
                out.append((a.trial_id, a.length))
            elif isinstance(a, ResumeTrial):
                out.append((a.trial_id, a.length))
            elif isinstance(a, FinishTrial):
                self.at.pop(a.trial_id, None)
        self.from_model.update(self.s.take_sampled())  # the master journals them
        return out

    def start(self):
        return self._work(self.s.start())

    def cost(self, w):
        return w[1] - self.at.get(w[0], 0)

    def done(self, w):
        tid, length = w
        units = length - self.at.get(tid, 0)
        self.at[tid] = length
        m = self.task.curve(self.hp[tid], length)
        if self.run.budget is None or self.run.spent + units <= self.run.budget:
            self.results.setdefault(tid, {})[length] = m
        self.run.result(self.hp[tid], length, m, units)
        return self._work(self.s.on_event(SegmentCompleted(tid, length, m)))


def optuna_params(trial, spec: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, p in spec.items():
        t = p["type"]
        if t == "log":
            b = p["base"]
            out[k] = trial.suggest_float(k, b ** p["minval"], b ** p["maxval"], log=True)
        elif t == "double":
            out[k] = trial.suggest_float(k, p["minval"], p["maxval"])
        elif t == "int":
            out[k] = trial.suggest_int(k, p["minval"], p["maxval"])
        else:
            out[k] = trial.suggest_categorical(k, p["vals"])
    return out


def ray_domains(spec: dict[str, Any]) -> dict[str, Any]:
    from ray import tune

    return peer_domains(spec, uniform=tune.uniform, loguniform=tune.loguniform,
                        randint=lambda lo, hi: tune.randint(lo, hi + 1), choice=tune.choice)


def syne_domains(spec: dict[str, Any]) -> dict[str, Any]:
    from syne_tune import config_space as cs

    return peer_domains(spec, uniform=cs.uniform, loguniform=cs.loguniform, randint=cs.randint,
                        choice=cs.choice)


class PeerPerUnit:
    """A peer that hears of every unit: a work item is one unit of one trial, and the first
    items are a new trial for every worker (``_new`` returns the next trial's first item)."""

    def _new(self) -> list[Any]:
        raise NotImplementedError

    def start(self):
        return [t for _ in range(WORKERS) for t in self._new()]

    def cost(self, t):
        return 1


class OptunaTPE(PeerPerUnit):
    def __init__(self, task: Task, run: Run, seed: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.study = optuna.create_study(
            direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1,
                                                          reduction_factor=DIVISOR),
            storage=optuna.storages.InMemoryStorage())
        self.task, self.run = task, run
        self.step: dict[int, int] = {}

    def _new(self):
        t = self.study.ask()
        optuna_params(t, self.task.spec)
        self.step[t.number] = 0
        return [t]

    def done(self, t):
        step = self.step[t.number] = self.step[t.number] + 1
        m = self.task.curve(t.params, step)
        self.run.result(t.params, step, m, 1)
        if step >= MAX_LEN:
            self.study.tell(t, m)
            return self._new()
        t.report(m, step)
        if t.should_prune():
            self.study.tell(t, state=self.optuna.trial.TrialState.PRUNED)
            return self._new()
        return [t]


class RayASHA(PeerPerUnit):
    def __init__(self, task: Task, run: Run, seed: int) -> None:
        from ray.tune.schedulers import ASHAScheduler

        self.rs = np.random.RandomState(seed)
        self.sched = ASHAScheduler(time_attr="training_iteration", metric="loss", mode="min",
                                   max_t=MAX_LEN, grace_period=1, reduction_factor=DIVISOR)
        self.domains = ray_domains(task.spec)
        self.task, self.run, self.n = task, run, 0

    def _new(self):
        self.n += 1
        cfg = ray_sample(self.domains, self.rs)
        t = RayTrial(self.n, cfg)
        self.sched.on_trial_add(None, t)
        return [t]

    def done(self, t):
        t.step += 1
        m = self.task.curve(t.config, t.step)
        self.run.result(t.config, t.step, m, 1)
        result = {"training_iteration": t.step, "loss": m}
        if self.sched.on_trial_result(None, t, result) == "CONTINUE" and t.step < MAX_LEN:
            return [t]
        self.sched.on_trial_complete(None, t, result)
        return self._new()


class SyneBOHB(PeerPerUnit):
    """Syne Tune's ``BOHB``: asynchronous successive halving (one bracket) whose new trials come
    from a KDE searcher, driven as Syne Tune's ``Tuner`` drives it: ``suggest`` and
    ``on_trial_add`` for a new trial, ``on_trial_result`` after every unit, ``on_trial_remove``
    once it says STOP (it does at ``max_t`` too, so the Tuner never calls ``on_trial_complete``
    for such a trial, and neither does this)."""

    def __init__(self, task: Task, run: Run, seed: int) -> None:
        import datetime
        import logging

        from syne_tune.backend.trial_status import Trial
        from syne_tune.optimizer.baselines import BOHB

        # BOHB itself passes points_to_evaluate twice and warns about it on every run
        logging.getLogger("syne_tune").setLevel(logging.ERROR)
        # on_trial_add draws the bracket and the KDE searcher its random configurations with
        # numpy's global generator: seeded here, a run is the same for the same seed
        np.random.seed(seed)
        self.Trial, self.now = Trial, datetime.datetime(2026, 1, 1)
        self.sched = BOHB(syne_domains(task.spec), metric="loss", time_attr="epoch",
                          max_t=MAX_LEN, grace_period=1, reduction_factor=DIVISOR,
                          random_seed=seed, do_minimize=True)
        self.task, self.run, self.n = task, run, 0
        self.step: dict[int, int] = {}

    def _new(self):
        suggestion = self.sched.suggest()
        t = self.Trial(trial_id=self.n, config=suggestion.config, creation_time=self.now)
        self.n += 1
        self.step[t.trial_id] = 0
        self.sched.on_trial_add(t)
        return [t]

    def done(self, t):
        step = self.step[t.trial_id] = self.step[t.trial_id] + 1
        m = self.task.curve(t.config, step)
        self.run.result(t.config, step, m, 1)
        if self.sched.on_trial_result(t, {"epoch": step, "loss": m}) == "CONTINUE":
            return [t]
        self.sched.on_trial_remove(t)
        return self._new()


class BOHBTrial:
    """The part of a Ray Tune trial HyperBandForBOHB reads and sets through its controller
    (``status``, ``is_saving``), with the units trained (``step``)."""

    def __init__(self, trial_id: str, config: dict[str, Any]) -> None:
        self.trial_id, self.config, self.step = trial_id, config, 0
        self.status, self.is_saving = "PENDING", False
        self.last_result: dict[str, Any] = {}


class RayBOHB:
    """Ray Tune's BOHB: ``TuneBOHB`` (hpbandster's BOHB models) + ``HyperBandForBOHB``
    (synchronous HyperBand that pauses a trial at its bracket's milestone until the bracket is
    done). This class is the part of Ray's ``TuneController`` they call back into, run as the
    controller runs them: at most one PENDING trial queued from the searcher (Ray's default for
    a searcher without a ConcurrencyLimiter), a free worker takes the trial
    ``choose_trial_to_run`` picks (a PAUSED one it unpaused, resumed here from its in-memory
    state, or a PENDING one), else the oldest PENDING; after every unit the scheduler's
    ``on_trial_result``, then the searcher's unless the decision is STOP; PAUSE frees the
    worker; ``stop_trial`` as Ray's: ``on_trial_remove`` + searcher ``on_trial_complete`` for a
    PAUSED or PENDING trial, ``on_trial_complete`` on both for the RUNNING one."""

    def __init__(self, task: Task, run: Run, seed: int,
                 bohb_config: dict[str, Any] | None = None) -> None:
        import logging
        from types import SimpleNamespace

        from ray.tune.schedulers import HyperBandForBOHB
        from ray.tune.search.bohb import TuneBOHB

        # hpbandster logs every KDE draw that fails (g(x) = 0 in a corner of the space) with the
        # model's whole data, and falls back to a random configuration: hundreds of lines a run
        logging.getLogger("hpbandster").setLevel(logging.ERROR)
        np.random.seed(seed)  # hpbandster draws random configurations and KDE samples from it
        space = TuneBOHB.convert_search_space(ray_domains(task.spec))
        self.searcher = TuneBOHB(space=space, metric="loss", mode="min", seed=seed,
                                 bohb_config=bohb_config)  # hpbandster's BOHB options
        self.search_alg = SimpleNamespace(searcher=self.searcher)  # the controller's handle
        self.sched = HyperBandForBOHB(time_attr="training_iteration", metric="loss",
                                      mode="min", max_t=MAX_LEN, reduction_factor=DIVISOR)
        self.task, self.run = task, run
        self.trials: list[BOHBTrial] = []
        self.running = 0

    # --- what the scheduler calls on its controller
    def get_trials(self) -> list[BOHBTrial]:
        return self.trials

    def stop_trial(self, t: BOHBTrial) -> None:
        if t.status in ("TERMINATED", "ERROR"):
            return
        if t.status in ("PENDING", "PAUSED"):
            self.sched.on_trial_remove(self, t)
            self.searcher.on_trial_complete(t.trial_id)
        else:
            self.sched.on_trial_complete(self, t, t.last_result)
            self.searcher.on_trial_complete(t.trial_id, result=t.last_result)
            self.running -= 1
        t.status = "TERMINATED"

    # --- the controller's loop
    def _queue(self) -> None:
        if any(t.status == "PENDING" for t in self.trials):
            return
        trial_id = str(len(self.trials))
        cfg = self.searcher.suggest(trial_id)
        if cfg is None:
            return
        t = BOHBTrial(trial_id, plain(cfg))
        self.trials.append(t)
        self.sched.on_trial_add(self, t)

    def _fill(self) -> list[BOHBTrial]:
        out = []
        while self.running < WORKERS:
            self._queue()
            t = self.sched.choose_trial_to_run(self) or next(
                (p for p in self.trials if p.status == "PENDING"), None)
            if t is None:
                break
            t.status = "RUNNING"
            self.running += 1
            out.append(t)
        return out

    def start(self):
        return self._fill()

    def cost(self, t):
        return 1

    def done(self, t):
        t.step += 1
        m = self.task.curve(t.config, t.step)
        self.run.result(t.config, t.step, m, 1)
        result = {"training_iteration": t.step, "loss": m}
        decision = self.sched.on_trial_result(self, t, result)
        if decision != "STOP":
            self.searcher.on_trial_result(t.trial_id, result)
        t.last_result = result
        if decision == "CONTINUE":
            if t.step >= MAX_LEN:
                raise RuntimeError(f"HyperBandForBOHB continued trial {t.trial_id} past max_t")
            return [t] + self._fill()
        if decision == "PAUSE":
            t.status = "PAUSED"
            self.running -= 1
        else:
            self.stop_trial(t)
        return self._fill()


SYSTEMS: dict[str, Callable[[Task, Run, int], Any]] = {
    "asha_hpc random": lambda task, run, seed: Ours(task, run, seed, "random"),
    "asha_hpc tpe": lambda task, run, seed: Ours(task, run, seed, "tpe"),
    "asha_hpc gp": lambda task, run, seed: Ours(task, run, seed, "gp"),
    "Optuna TPE + SuccessiveHalving": OptunaTPE,
    "Ray Tune ASHA": RayASHA,
    "Syne Tune BOHB (async)": SyneBOHB,
    "Ray Tune BOHB": RayBOHB,
}
REQUIRES = {  # the optional peers' modules: a peer is skipped when one is missing
    "Optuna TPE + SuccessiveHalving": ("optuna",), "Ray Tune ASHA": ("ray.tune",),
    "Syne Tune BOHB (async)": ("syne_tune",),
    "Ray Tune BOHB": ("ray.tune", "hpbandster", "ConfigSpace")}
RANDOM, TPE, GP = "asha_hpc random", "asha_hpc tpe", "asha_hpc gp"
MODELS = {TPE: "tpe", GP: "gp"}  # the model samplers: each is read against the peers and random


class Kept:
    """``--keep``: the runs of an earlier output, used instead of running those systems again.
    Only valid for the same code of those systems: random sampling runs anew for each seed
    (it sets the budget) and must repeat the kept run exactly, or nothing is kept."""

    def __init__(self, path: Path, rerun: list[str]) -> None:
        old = json.loads(path.read_text())
        self.path, self.rerun = path, set(rerun)
        self.runs = {(r["system"], r["task"], r["seed"]): r for r in old["runs"]}
        self.results: dict[str, Any] = old["results"]
        self.optimum = {t: v["optimum"] for t, v in self.results.items()
                        if t not in landscapes.OPTIMUM}

    def run(self, system: str, base: dict[str, Any]) -> dict[str, Any]:
        task, seed = base["task"], base["seed"]
        mine = self.runs.get((RANDOM, task, seed))
        if mine is None or (mine["final"], mine["spent"]) != (base["final"], base["spent"]):
            raise SystemExit(f"--keep {self.path}: random sampling on {task}, seed {seed} does "
                             "not repeat that file's run; run every system (no --keep)")
        r = self.runs.get((system, task, seed))
        if r is None:
            raise SystemExit(f"--keep {self.path}: no run of {system} on {task}, seed {seed}")
        return dict(r)

    def fill(self, res: dict[str, Any]) -> None:
        restore_traceless(res, self.results, self.rerun | {RANDOM})


def restore_traceless(res: dict[str, Any], before: dict[str, Any], skip: set[str]) -> None:
    """What runs without traces cannot give again, taken from an earlier output's summary
    ``before`` for every system but ``skip``: its curve, and a model sampler's compute to
    random's final value."""
    for task, summary in res.items():
        earlier = before.get(task, {})
        for s, row in summary["rows"].items():
            if s in skip or s not in earlier.get("rows", {}):
                continue
            if all(v["median"] is None for v in row["curve"]) and \
                    earlier["rows"][s]["seeds"] == row["seeds"]:
                row["curve"] = earlier["rows"][s]["curve"]
                short = MODELS.get(s)
                for k in [k for k in earlier if short and k.startswith(short + "_")
                          and "compute_to_random" in k]:
                    summary[k] = earlier[k]


def run_system(label: str, task: Task, seed: int, budget: int | None,
               plan: bool = True) -> dict[str, Any]:
    """One run of a system; asha_hpc's plan to ``budget`` unless ``plan`` is False (then it is
    only stopped there, like the peers)."""
    run = Run(task, budget, plan)
    t0 = time.perf_counter()
    system = SYSTEMS[label](task, run, seed)
    cut = run_pool(system, stop=run.over) or run.overran
    wall = time.perf_counter() - t0
    if hasattr(task, "forget"):
        task.forget()  # type: ignore[attr-defined]
    final = run.trace[-1][1] if run.trace else math.nan
    if run.best_len < MAX_LEN and run.best_hp is not None:  # never reached full length
        final = task.full(run.best_hp)
    pick = system.trial_of(run.best_hp) if isinstance(system, Ours) else None
    return {"system": label, "task": task.name, "seed": seed, "spent": run.spent,
            "budget": budget, "final": final, "trace": run.trace, "first_full": run.first_full,
            "pick": run.best_hp, "cut": cut, "wall_s": wall,
            # asha_hpc: the compute spent when the pick's trial was created, and whether a
            # model drew its configuration
            "pick_created": None if pick is None else system.created_at[pick],
            "pick_from_model": None if pick is None else pick in system.from_model}


# ----------------------------------------------------------------------------- reading
def value_at(trace: list[tuple[int, float]], compute: float) -> float:
    v = math.nan
    for c, x in trace:
        if c > compute:
            break
        v = x
    return v


def thin_trace(trace: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """The points where the value changes, and the last one: the same step function."""
    out = [p for i, p in enumerate(trace)
           if i == 0 or not (p[1] == trace[i - 1][1]
                             or (p[1] != p[1] and trace[i - 1][1] != trace[i - 1][1]))]
    if trace and (not out or out[-1] != trace[-1]):
        out.append(trace[-1])
    return out


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else math.nan


def analyse(runs: list[dict[str, Any]], tasks: list[str], systems: list[str],
            known_before: dict[str, float] | None = None) -> dict[str, Any]:
    """``known_before``: per task, a best value seen by runs whose traces are not in ``runs``
    (``--keep`` of a run without traces)."""
    out: dict[str, Any] = {}
    for task in tasks:
        rs = [r for r in runs if r["task"] == task]
        seeds = sorted({r["seed"] for r in rs})
        # the real tasks' best known: the best full-length value any run saw, final or on the way
        known = [v for r in rs for v in [r["final"]] + [x for _, x in r["trace"]] if v == v]
        known += [v for v in [(known_before or {}).get(task, math.nan)] if v == v]
        opt = landscapes.OPTIMUM.get(task, min(known) if known else math.nan)
        rows = {}
        regret = {s: {r["seed"]: r["final"] - opt for r in rs if r["system"] == s} for s in systems}
        for s in systems:
            xs = [regret[s][k] for k in seeds if k in regret[s]]
            if not xs:
                continue
            wins = 0.0
            for k in seeds:
                vals = {x: regret[x][k] for x in systems if k in regret[x]}
                best = min(vals.values())
                winners = [x for x, v in vals.items() if v <= best + 1e-12]
                if s in winners:
                    wins += 1 / len(winners)
            curve = []
            for f in GRID:
                ys = [value_at(r["trace"], f * r["budget"]) - opt for r in rs
                      if r["system"] == s]
                ys = [y for y in ys if y == y]
                curve.append({"fraction": f,
                              "median": statistics.median(ys) if len(ys) * 2 > len(seeds) else None,
                              "q25": pct(ys, 25) if ys else None, "q75": pct(ys, 75) if ys else None})
            firsts = [r["first_full"] / r["budget"] if r["first_full"] is not None else math.inf
                      for r in rs if r["system"] == s]
            rows[s] = {"median": statistics.median(xs), "q25": pct(xs, 25), "q75": pct(xs, 75),
                       "wins": wins, "seeds": len(xs), "curve": curve,
                       "first_full": statistics.median(firsts),
                       "wall_s": statistics.median(r["wall_s"] for r in rs if r["system"] == s)}
        peers = [s for s in rows if not s.startswith("asha_hpc")]
        best_peer = min(peers, key=lambda s: rows[s]["median"]) if peers else None
        summary: dict[str, Any] = {"optimum": opt, "rows": rows, "best_peer": best_peer}
        for label, short in MODELS.items():
            if label in rows:
                summary.update(read_model(short, rows[label], rows.get(best_peer or ""),
                                          [r for r in rs if r["system"] == label],
                                          [r for r in rs if r["system"] == RANDOM]))
                if peers:
                    summary[f"{short}_over_best_peer_interval"] = ratio_interval(
                        regret[label], {p: regret[p] for p in peers}, seeds)
        out[task] = summary
    return out


TARGET_RATIO = 0.7  # issue 19: a model sampler's median regret at most 0.7x the best peer's
RESAMPLES = 2000


def ratio_interval(mine: dict[int, float], peers: dict[str, dict[int, float]],
                   seeds: list[int]) -> dict[str, float]:
    """How well the seeds pin down "median regret over the best peer's": the 5th and 95th
    percentile of that ratio over bootstrap resamples of the seeds (the same seeds for every
    system, the best peer chosen again in each resample, as the target reads), and the share of
    resamples in which it is at most TARGET_RATIO. Seeds some system lacks are left out."""
    keep = [k for k in seeds if k in mine and all(k in r for r in peers.values())]
    if not keep:
        return {"q05": math.nan, "q95": math.nan, "target_share": math.nan, "seeds": 0}
    a = np.array([mine[k] for k in keep])
    b = np.array([[r[k] for k in keep] for r in peers.values()])
    idx = np.random.default_rng(0).integers(0, len(keep), size=(RESAMPLES, len(keep)))
    best = np.median(b[:, idx], axis=2).min(axis=0)
    mid = np.median(a[idx], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(best > 0, mid / best, math.inf)
    return {"q05": float(np.percentile(ratio, 5)), "q95": float(np.percentile(ratio, 95)),
            "target_share": float(np.mean(ratio <= TARGET_RATIO)), "seeds": len(keep)}


def read_model(short: str, row: dict[str, Any], peer: dict[str, Any] | None,
               mine: list[dict[str, Any]], rand: list[dict[str, Any]]) -> dict[str, Any]:
    """A model sampler's targets: its median regret over the best peer's, and the share of
    random's compute at which it reached random's final value (per seed)."""
    out: dict[str, Any] = {}
    if peer is not None:
        out[f"{short}_over_best_peer"] = (row["median"] / peer["median"] if peer["median"] > 0
                                          else math.inf)
    if rand:
        fr, fr_known = [], []
        for r_rand in rand:
            r_m = next(r for r in mine if r["seed"] == r_rand["seed"])
            target = r_rand["final"]
            reach = next((c for c, v in r_m["trace"] if v == v and v <= target), None)
            fr.append(reach / r_rand["spent"] if reach is not None else math.inf)
            # the stricter reading: a value counts once the sampler has a full-length result,
            # the first point at which a user knows it without training the pick further
            known = (None if reach is None or r_m["first_full"] is None
                     else max(reach, r_m["first_full"]))
            fr_known.append(known / r_rand["spent"] if known is not None else math.inf)
        out[f"{short}_compute_to_random_final"] = {"median": statistics.median(fr), "per_seed": fr}
        out[f"{short}_compute_to_random_final_known"] = {"median": statistics.median(fr_known),
                                                         "per_seed": fr_known}
        # a model's later trials beat its earlier ones more often than random's do, so ASHA
        # promotes more of them and the same max_trials needs more compute: cut at the
        # budget, its last long segments are still running
        out[f"{short}_cut_at_budget"] = sum(bool(r.get("cut")) for r in mine)
    return out


def print_table(res: dict[str, Any], meta: dict[str, Any]) -> None:
    for task, s in res.items():
        m = meta[task]
        first = m.get("first_seed", 0)
        print(f"\n{task}: {m['seeds']} seeds ({first}-{first + m['seeds'] - 1}), budget = "
              f"asha_hpc random's compute on {m['trials']} trials (median {m['budget']:,.0f} "
              f"units), {WORKERS} workers; "
              f"best known {s['optimum']:.6g}")
        print(f"  {'system':<32} {'median regret':>14} {'[25% - 75%]':>23} {'wins':>6} "
              f"{'first 64':>8} {'wall s':>7}")
        for name, r in s["rows"].items():
            print(f"  {name:<32} {r['median']:>14.4g} [{r['q25']:>9.3g} - {r['q75']:>9.3g}] "
                  f"{r['wins']:>6.1f} {r['first_full']:>8.2f} {r['wall_s']:>7.1f}")
        for short in MODELS.values():
            if f"{short}_over_best_peer" in s:
                iv = s.get(f"{short}_over_best_peer_interval")
                spread = "" if iv is None else (
                    f" [{iv['q05']:.2f} - {iv['q95']:.2f}] over seed resamples; the target "
                    f"holds in {iv['target_share']:.0%} of them")
                print(f"  {short} / best peer ({s['best_peer']}): "
                      f"{s[short + '_over_best_peer']:.2f}x median regret (target <= "
                      f"{TARGET_RATIO}){spread}")
            if f"{short}_compute_to_random_final" in s:
                f = s[f"{short}_compute_to_random_final"]["median"]
                k = s[f"{short}_compute_to_random_final_known"]["median"]
                print(f"  {short} reached random's final value at {f:.2f} of random's compute "
                      f"(median over seeds; target <= 0.67); {k:.2f} counting only from its "
                      f"first full-length result")
                print(f"  {short}'s search was still running at the budget in "
                      f"{s[short + '_cut_at_budget']} of {m['seeds']} seeds")


def plot(res: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(res)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.6), squeeze=False)
    for ax, (task, s) in zip(axes[0], res.items()):
        for name, r in s["rows"].items():
            pts = [(c["fraction"], c["median"], c["q25"], c["q75"]) for c in r["curve"]
                   if c["median"] is not None]
            if not pts:
                continue
            xs, ys, lo, hi = zip(*pts)
            floor = 1e-6
            ys = [max(y, floor) for y in ys]
            line = ax.plot(xs, ys, label=name, lw=1.8 if name.startswith("asha_hpc") else 1.2)[0]
            ax.fill_between(xs, [max(v, floor) for v in lo], [max(v, floor) for v in hi],
                            color=line.get_color(), alpha=0.12)
        ax.set_yscale("log")
        ax.set_title(task)
        ax.set_xlabel("compute (share of the budget)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("regret of the incumbent (median, IQR)")
    axes[0][0].legend(fontsize=7)  # the first panel has every system's curve
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def save_by_seeds(benchmark: str, first_seed: int, seeds: int, body: dict[str, Any],
                  out: str | None = None) -> Path:
    """A seed-sweep benchmark's JSON: ``results/<benchmark>.json`` for the published seeds
    (0-11), ``<benchmark>_<first>_<count>.json`` for others, or ``out``."""
    name = f"{benchmark}.json" if (first_seed, seeds) == (0, 12) else \
        f"{benchmark}_{first_seed}_{seeds}.json"
    path = Path(out) if out else HERE / "results" / name
    path.write_text(json.dumps({"benchmark": benchmark, **body}, indent=1) + "\n")
    return path


def write_results(path: Path, body: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    """The summary indented, then one line per run: a peer's incumbent changes at almost every
    unit, so an indented trace would be a line per number (megabytes per table)."""
    head = json.dumps(body, indent=1, default=str)[:-2]  # without the closing "\n}"
    lines = ",\n".join(json.dumps(r, default=str, separators=(",", ":")) for r in runs)
    path.write_text(f'{head},\n "runs": [\n{lines}\n ]\n}}\n')


def merge_outputs(outs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any],
                                                        dict[str, Any]]:
    """The runs of several outputs as one (other seeds of the same tasks), with each task's
    best known the best of theirs and its meta over all seeds; a seed run twice is refused."""
    runs: list[dict[str, Any]] = []
    seen: set[tuple[str, str, int]] = set()
    results: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for out in outs:
        for r in out["runs"]:
            key = (r["system"], r["task"], r["seed"])
            if key in seen:
                raise SystemExit(f"--table: {key[0]} on {key[1]}, seed {key[2]} is in two outputs")
            seen.add(key)
            runs.append(r)
        for task, summary in out["results"].items():
            if task not in results or summary["optimum"] < results[task]["optimum"]:
                results[task] = summary
        for task, m in out["config"]["tasks"].items():
            seeds = sorted({r["seed"] for r in runs if r["task"] == task})
            budgets = [r["spent"] for r in runs if r["task"] == task and r["system"] == RANDOM]
            meta[task] = dict(m, seeds=len(seeds), first_seed=seeds[0],
                              budget=statistics.median(budgets) if budgets else m["budget"])
    return runs, results, meta


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="branin,hartmann6,digits_mlp,hgb")
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="seeds first-seed .. first-seed + seeds - 1 (the table: 0)")
    ap.add_argument("--quick", action="store_true", help="3 seeds, the synthetic tasks")
    ap.add_argument("--out", default=None, help="JSON file name in benchmarks/results/")
    ap.add_argument("--plot-only", metavar="JSON", help="redraw the PNG of an earlier run")
    ap.add_argument("--keep", metavar="JSON",
                    help="take the runs of every system but --rerun's (and random sampling, "
                         "always run: it sets each seed's budget) from this earlier output of "
                         "the same tasks and seeds: after a change to one sampler, the others' "
                         "runs (the peers' take most of the time) need not be repeated")
    ap.add_argument("--rerun", default="asha_hpc tpe",
                    help="with --keep: the systems to run again, comma-separated")
    ap.add_argument("--no-traces", action="store_true",
                    help="leave each run's incumbent trace out of the JSON (the summary's curves "
                         "stay): many seeds would make it megabytes")
    ap.add_argument("--table", metavar="JSON", nargs="+",
                    help="print the table of earlier outputs again, read by today's analysis, "
                         "without running anything; several outputs (other seeds of the same "
                         "tasks) are read as one")
    a = ap.parse_args()
    if a.table:
        runs, results, meta = merge_outputs([json.loads(Path(f).read_text()) for f in a.table])
        tasks = list(results)
        systems = [s for s in SYSTEMS if any(r["system"] == s for r in runs)]
        res = analyse(runs, tasks, systems,
                      {t: v["optimum"] for t, v in results.items() if t not in landscapes.OPTIMUM})
        if len(a.table) == 1:
            restore_traceless(res, results, set())
        for task, summary in res.items():  # runs without traces cannot tell it again
            for label, short in MODELS.items():
                if any(not r["trace"] for r in runs if r["task"] == task
                       and r["system"] == label) and len(a.table) > 1:
                    for k in [k for k in summary if k.startswith(short + "_compute_to")]:
                        del summary[k]
        print_table(res, meta)
        return 0
    if a.plot_only:
        src = Path(a.plot_only)
        plot(json.loads(src.read_text())["results"], src.with_suffix(".png"))
        return 0
    tasks = ["branin", "hartmann6"] if a.quick else a.tasks.split(",")
    seeds = 3 if a.quick else a.seeds
    systems = [s for s in SYSTEMS if all(have(m) for m in REQUIRES.get(s, ()))]
    skipped = [s for s in SYSTEMS if s not in systems]
    runs: list[dict[str, Any]] = []
    meta: dict[str, Any] = {}
    kept = Kept(Path(a.keep), a.rerun.split(",")) if a.keep else None
    t_all = time.perf_counter()
    for tname in tasks:
        task = make_task(tname)
        budgets = []
        for seed in range(a.first_seed, a.first_seed + seeds):
            base = run_system(RANDOM, task, seed, None)
            budget = base["spent"]
            base["budget"] = budget
            budgets.append(budget)
            runs.append(base)
            for s in systems:
                if s != RANDOM:
                    runs.append(kept.run(s, base) if kept and s not in kept.rerun
                                else run_system(s, task, seed, budget))
            done = [r for r in runs if r["task"] == tname and r["seed"] == seed]
            print(f"  {tname} seed {seed}: " + ", ".join(
                f"{r['system']} {r['final']:.5g} ({r['wall_s']:.0f} s)" for r in done),
                file=sys.stderr, flush=True)
        meta[tname] = {"seeds": seeds, "first_seed": a.first_seed, "trials": task.trials,
                       "budget": statistics.median(budgets)}
    res = analyse(runs, tasks, systems, kept.optimum if kept else None)
    if kept:
        kept.fill(res)
    vers = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("sklearn", "optuna", "ray", "syne_tune"):
        try:
            vers[mod] = __import__(mod).__version__
        except ImportError:
            vers[mod] = None
    print(f"search quality at equal compute; python {vers['python']}, optuna {vers['optuna']}, "
          f"ray {vers['ray']}, syne_tune {vers['syne_tune']}, sklearn {vers['sklearn']}, "
          f"{os.cpu_count()} CPUs")
    print_table(res, meta)
    for s in skipped:
        print(f"skipped: {s} (not installed)")
    total = time.perf_counter() - t_all
    print(f"total {total:.0f} s")
    name = a.out or ("search_quality_quick.json" if a.quick else "search_quality.json")
    out = HERE / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    for r in runs:  # the incumbent's value only where it changes (the JSON stays small)
        r["trace"] = [] if a.no_traces else [(c, float(f"{v:.6g}")) for c, v in thin_trace(r["trace"])]
    write_results(out, {"benchmark": "search_quality", "versions": vers,
                        "cpus": os.cpu_count(), "load_avg": os.getloadavg(),
                        "config": {"workers": WORKERS, "max_length": MAX_LEN,
                                   "divisor": DIVISOR, "seeds": seeds,
                                   "first_seed": a.first_seed, "tasks": meta},
                        "skipped": skipped, "results": res, "total_s": total}, runs)
    png = out.with_suffix(".png")
    plot(res, png)
    print(f"wrote {out} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

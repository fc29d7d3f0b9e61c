"""Early-stopping rules on a real learning-curve task (random sampling everywhere, the same
configs): asha_hpc vs Optuna's pruners, Ray Tune's ASHA and random search, same
task, same workers, several seeds.

    pip install -e '.[bench]'
    python benchmarks/stopping_rules.py            # 5 seeds, ~6 minutes on 2 idle cores
    python benchmarks/stopping_rules.py --seeds 12 --oracle   # the published table
    python benchmarks/stopping_rules.py --quick    # 3 seeds, 32 trials, ~2 minutes

The task ships its data: scikit-learn's bundled digits (1,797 8x8 images; 1,000 train, 400
validation, 397 test). The model is a one-hidden-layer MLP in numpy (width, activation, learning
rate, batch size, weight decay are the hyperparameters; SGD with momentum 0.9), trained epoch by
epoch; the metric is the validation log-loss (lower is better), the unit is the epoch,
``max_length`` 64. Training is deterministic given the hyperparameters and the seed, so a trial
resumed from its in-memory "checkpoint" equals one trained straight through, and retraining a
pick reproduces it.

Every system runs with the same 16 virtual workers (an event simulation: a segment of k epochs
occupies a worker for k time steps; the training itself runs in this process, one segment at a
time) and the same number of trials (128; 32 with --quick), except random search, which gets the
epochs that asha_hpc's adaptive_asha (standard) used in the same seed, as full-length trials:

- asha_hpc adaptive_asha (aggressive, standard, conservative; aggressive also with
  ``stop_once``) and async_halving (4 rungs), divisor 4, driven through the pure searcher
  (start / on_event), promotions resume the trial's model in memory;
- Optuna SuccessiveHalvingPruner(min_resource=1, reduction_factor=4) and HyperbandPruner(1, 64,
  4), with RandomSampler (to compare the early-stopping rules on the same kind of samples) and,
  for the successive halving pruner, also Optuna's default TPESampler; ask/tell with 16 trials in
  flight, ``trial.report`` + ``trial.should_prune`` every epoch, pick ``study.best_trial``;
- Ray Tune ASHAScheduler(max_t=64, grace_period=1, reduction_factor=4): the scheduler's own
  ``on_trial_result`` every epoch with trial stand-ins (as in decision_overhead.py; Ray's actor
  runtime is not started), configs sampled from ``tune`` domains, pick = Ray's
  ``get_best_result`` default (best last-reported loss, scope "last");
- random search: full-length trials only.

Two tables (``--configs both``, the default). "own": every system samples its configs the way
it normally does (Ray from ``tune`` domains, Optuna from its sampler, asha_hpc from its seeded
stream), so a system's result mixes its early-stopping rule with the luck of its 128 samples.
"shared": Ray and the random-sampler Optuna rows get the very configs asha_hpc creates with that
seed, in creation order (Ray: the stream replaces ``tune``'s sampling, same distribution; Optuna:
``study.enqueue_trial``), so they differ only in their early-stopping rule and pick (common
random numbers). TPE keeps its own sampler in both (its model is the point of it); random search
always takes the first configs of the stream. With ``--oracle`` every config of the shared
stream is also trained to full length (not counted) to give each pick's regret against the best
config of the sample.

Reported per system over the seeds: median [min - max] of the *true full-length* validation loss
of the system's pick (retrained to 64 epochs when the system stopped it earlier; the retraining
is not counted), the pick's test loss, the epochs the objective trained during the search, and
the wall time of the search (training included). Writes benchmarks/results/stopping_rules.json
(stopping_rules_quick.json with --quick).
"""
from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # tiny matrices: threads only add overhead

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import RayTrial, have, ray_sample  # noqa: E402
from virtual_pool import run_pool  # noqa: E402

from asha_hpc.config import SearcherConfig  # noqa: E402
from asha_hpc.searcher import CreateTrial, FinishTrial, ResumeTrial, SegmentCompleted, make_searcher  # noqa: E402
from asha_hpc.space import parse_space  # noqa: E402

MAX_LEN = 64
DIVISOR = 4
WORKERS = 16
BATCHES = [32, 64, 128, 256]
ACTS = ["relu", "tanh"]
DIVERGED = 5.0  # log-loss reported for a diverged net (uniform guessing is 2.30)
SPACE_SPEC = {"lr": {"type": "log", "minval": -3.5, "maxval": 0, "base": 10},
              "width": {"type": "int", "minval": 16, "maxval": 128},
              "batch_size": {"type": "categorical", "vals": BATCHES},
              "weight_decay": {"type": "log", "minval": -6, "maxval": -1, "base": 10},
              "act": {"type": "categorical", "vals": ACTS}}


# ----------------------------------------------------------------------------- the task
class Data:
    def __init__(self) -> None:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        p = np.random.default_rng(0).permutation(len(X))
        X = (X[p] / 16.0).astype(np.float32)
        y = y[p]
        self.Xtr, self.ytr = X[:1000], y[:1000]
        self.Ytr = np.eye(10, dtype=np.float32)[self.ytr]
        self.Xva, self.yva = X[1000:1400], y[1000:1400]
        self.Xte, self.yte = X[1400:], y[1400:]


class Net:
    """One hidden layer, softmax output, SGD with momentum 0.9 and L2 weight decay."""

    def __init__(self, data: Data, hp: dict[str, Any], seed: int) -> None:
        h = hashlib.sha256(json.dumps([seed, hp], sort_keys=True, default=str).encode()).digest()
        self.r = np.random.default_rng(int.from_bytes(h[:8], "little"))
        self.d, self.hp = data, hp
        w = int(hp["width"])
        self.W1 = (self.r.normal(0, np.sqrt(2 / 64), (64, w))).astype(np.float32)
        self.b1 = np.zeros(w, np.float32)
        self.W2 = (self.r.normal(0, np.sqrt(1 / w), (w, 10))).astype(np.float32)
        self.b2 = np.zeros(10, np.float32)
        self.v = [np.zeros_like(a) for a in (self.W1, self.b1, self.W2, self.b2)]
        self.epochs = 0
        self.dead = False

    def _fwd(self, x):
        z = x @ self.W1 + self.b1
        a = np.maximum(z, 0) if self.hp["act"] == "relu" else np.tanh(z)
        o = a @ self.W2 + self.b2
        o -= o.max(1, keepdims=True)
        e = np.exp(o)
        return z, a, e / e.sum(1, keepdims=True)

    def epoch(self) -> None:
        self.epochs += 1
        if self.dead:
            return
        hp, d = self.hp, self.d
        bs, lr, wd = int(hp["batch_size"]), np.float32(hp["lr"]), np.float32(hp["weight_decay"])
        relu = hp["act"] == "relu"
        idx = self.r.permutation(len(d.Xtr))
        params = (self.W1, self.b1, self.W2, self.b2)
        with np.errstate(all="ignore"):
            for i in range(0, len(idx), bs):
                j = idx[i:i + bs]
                x = d.Xtr[j]
                z, a, pr = self._fwd(x)
                g = (pr - d.Ytr[j]) / np.float32(len(j))
                da = g @ self.W2.T
                dz = da * (z > 0) if relu else da * (1 - a * a)
                grads = (x.T @ dz + wd * self.W1, dz.sum(0), a.T @ g + wd * self.W2, g.sum(0))
                for p, gr, v in zip(params, grads, self.v):
                    v *= np.float32(0.9)
                    v -= lr * gr
                    p += v
            if not np.isfinite(self.W2).all():
                self.dead = True

    def loss(self, which: str = "val") -> float:
        X, y = (self.d.Xva, self.d.yva) if which == "val" else (self.d.Xte, self.d.yte)
        if self.dead:
            return DIVERGED
        with np.errstate(all="ignore"):
            pr = self._fwd(X)[2]
            v = float(-np.log(np.clip(pr[np.arange(len(y)), y], 1e-12, 1.0)).mean())
        return v if np.isfinite(v) else DIVERGED


class Objective:
    """Trains trials (kept in memory between segments) and counts every epoch it trains."""

    def __init__(self, data: Data, seed: int) -> None:
        self.data, self.seed = data, seed
        self.nets: dict[Any, Net] = {}
        self.epochs = 0

    def train(self, key: Any, hp: dict[str, Any], length: int) -> float:
        net = self.nets.get(key)
        if net is None:
            net = self.nets[key] = Net(self.data, hp, self.seed)
        while net.epochs < length:
            net.epoch()
            self.epochs += 1
        return net.loss()

    def trained(self, key: Any) -> int:
        net = self.nets.get(key)
        return net.epochs if net else 0

    def drop(self, key: Any) -> None:
        self.nets.pop(key, None)


_FULL: dict[tuple[int, str], tuple[float, float]] = {}


def full_length(data: Data, hp: dict[str, Any], seed: int) -> tuple[float, float]:
    """(val, test) log-loss of ``hp`` trained straight to MAX_LEN (deterministic; memoized)."""
    k = (seed, json.dumps(hp, sort_keys=True, default=str))
    if k not in _FULL:
        net = Net(data, hp, seed)
        for _ in range(MAX_LEN):
            net.epoch()
        _FULL[k] = (net.loss("val"), net.loss("test"))
    return _FULL[k]


class Stream:
    """asha_hpc's hyperparameter stream for a seed: the i-th call gives the config of the i-th
    trial that asha_hpc's searchers (and random search here) create with that seed. With
    ``--configs shared`` the random-sampling peers draw from it too (common random numbers)."""

    def __init__(self, seed: int) -> None:
        self.space = parse_space(SPACE_SPEC)[0]
        self.rng = np.random.default_rng(seed)

    def __call__(self) -> dict[str, Any]:
        return self.space.sample(self.rng)


# ----------------------------------------------------------------------------- systems
class Ours:
    def __init__(self, name: str, obj: Objective, trials: int, seed: int, **cfg) -> None:
        c = SearcherConfig(name=name, metric="val_loss", max_length=MAX_LEN, max_trials=trials,
                           max_concurrent_trials=WORKERS, divisor=DIVISOR, **cfg)
        self.s = make_searcher(c, parse_space(SPACE_SPEC)[0], seed)
        self.obj = obj
        self.hp: dict[int, dict[str, Any]] = {}
        self.best: dict[int, tuple[int, float]] = {}  # trial -> (length, metric)
        self.trials = 0

    def _work(self, actions):
        out = []
        for a in actions:
            if isinstance(a, CreateTrial):
                self.hp[a.trial_id] = a.hparams
                self.trials += 1
                out.append((a.trial_id, a.length))
            elif isinstance(a, ResumeTrial):
                out.append((a.trial_id, a.length))
            elif isinstance(a, FinishTrial):
                self.obj.drop(a.trial_id)
        return out

    def start(self):
        return self._work(self.s.start())

    def cost(self, w):
        return w[1] - self.obj.trained(w[0])

    def done(self, w):
        tid, length = w
        m = self.obj.train(tid, self.hp[tid], length)
        self.best[tid] = (length, m)
        return self._work(self.s.on_event(SegmentCompleted(tid, length, m)))

    def pick(self):
        tid = min(self.best, key=lambda t: (-self.best[t][0], self.best[t][1], t))
        return self.hp[tid], self.best[tid][0]


class Random:
    def __init__(self, obj: Objective, trials: int, seed: int) -> None:
        self.stream = Stream(seed)
        self.obj, self.n, self.trials = obj, trials, 0
        self.hp: dict[int, dict[str, Any]] = {}
        self.res: dict[int, float] = {}

    def _new(self):
        if self.trials >= self.n:
            return []
        self.trials += 1
        self.hp[self.trials] = self.stream()
        return [self.trials]

    def start(self):
        return [t for _ in range(min(WORKERS, self.n)) for t in self._new()]

    def cost(self, w):
        return MAX_LEN

    def done(self, tid):
        self.res[tid] = self.obj.train(tid, self.hp[tid], MAX_LEN)
        self.obj.drop(tid)
        return self._new()

    def pick(self):
        tid = min(self.res, key=lambda t: (self.res[t], t))
        return self.hp[tid], MAX_LEN


class OptunaSys:
    def __init__(self, obj: Objective, trials: int, seed: int, pruner: str, sampler: str,
                 stream: Stream | None = None) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        pr = (optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=DIVISOR)
              if pruner == "sha" else
              optuna.pruners.HyperbandPruner(min_resource=1, max_resource=MAX_LEN,
                                             reduction_factor=DIVISOR))
        sa = (optuna.samplers.RandomSampler(seed=seed) if sampler == "random"
              else optuna.samplers.TPESampler(seed=seed))
        self.study = optuna.create_study(direction="minimize", sampler=sa, pruner=pr,
                                         storage=optuna.storages.InMemoryStorage())
        self.obj, self.n, self.trials = obj, trials, 0
        self.stream = stream
        self.last: dict[int, tuple[int, float]] = {}

    def _new(self):
        if self.trials >= self.n:
            return []
        self.trials += 1
        if self.stream is not None:  # the shared stream's next config (Optuna's own API)
            self.study.enqueue_trial(self.stream())
        t = self.study.ask()
        t.suggest_float("lr", 10 ** -3.5, 1.0, log=True)
        t.suggest_int("width", 16, 128)
        t.suggest_categorical("batch_size", BATCHES)
        t.suggest_float("weight_decay", 1e-6, 1e-1, log=True)
        t.suggest_categorical("act", ACTS)
        return [t]

    def start(self):
        return [t for _ in range(min(WORKERS, self.n)) for t in self._new()]

    def cost(self, t):
        return 1  # one epoch, then report

    def done(self, t):
        step = self.obj.trained(t.number) + 1
        m = self.obj.train(t.number, t.params, step)
        self.last[t.number] = (step, m)
        if step >= MAX_LEN:
            self.study.tell(t, m)
            self.obj.drop(t.number)
            return self._new()
        t.report(m, step)
        if t.should_prune():
            self.study.tell(t, state=self.optuna.trial.TrialState.PRUNED)
            self.obj.drop(t.number)
            return self._new()
        return [t]

    def pick(self):
        try:
            b = self.study.best_trial  # completed trials only
            return dict(b.params), MAX_LEN
        except ValueError:  # nothing completed: the best last report
            n = min(self.last, key=lambda k: self.last[k][1])
            return dict(self.study.trials[n].params), self.last[n][0]


class RaySys:
    def __init__(self, obj: Objective, trials: int, seed: int,
                 stream: Stream | None = None) -> None:
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler

        np.random.seed(seed)
        self.rs = np.random.RandomState(seed)
        self.sched = ASHAScheduler(time_attr="training_iteration", metric="loss", mode="min",
                                   max_t=MAX_LEN, grace_period=1, reduction_factor=DIVISOR)
        self.space = {"lr": tune.loguniform(10 ** -3.5, 1.0), "width": tune.randint(16, 129),
                      "batch_size": tune.choice(BATCHES),
                      "weight_decay": tune.loguniform(1e-6, 1e-1), "act": tune.choice(ACTS)}
        self.obj, self.n, self.trials = obj, trials, 0
        self.stream = stream
        self.last: dict[int, tuple[int, float, dict[str, Any]]] = {}

    def _new(self):
        if self.trials >= self.n:
            return []
        self.trials += 1
        if self.stream is not None:
            cfg = self.stream()
        else:
            cfg = ray_sample(self.space, self.rs)
        t = RayTrial(self.trials, cfg)
        self.sched.on_trial_add(None, t)
        return [t]

    def start(self):
        return [t for _ in range(min(WORKERS, self.n)) for t in self._new()]

    def cost(self, t):
        return 1

    def done(self, t):
        step = self.obj.trained(t.n) + 1
        m = self.obj.train(t.n, t.config, step)
        self.last[t.n] = (step, m, t.config)
        result = {"training_iteration": step, "loss": m}
        if self.sched.on_trial_result(None, t, result) == "CONTINUE" and step < MAX_LEN:
            return [t]
        self.sched.on_trial_complete(None, t, result)
        self.obj.drop(t.n)
        return self._new()

    def pick(self):
        n = min(self.last, key=lambda k: (self.last[k][1], k))  # get_best_result(scope="last")
        return self.last[n][2], self.last[n][0]


# ----------------------------------------------------------------------------- main
def run_system(label: str, make, data: Data, seed: int) -> dict[str, Any]:
    obj = Objective(data, seed)
    t0 = time.perf_counter()
    system = make(obj)
    run_pool(system)
    wall = time.perf_counter() - t0
    hp, length = system.pick()
    val, test = full_length(data, hp, seed)
    return {"system": label, "seed": seed, "val_loss": val, "test_loss": test,
            "epochs": obj.epochs, "trials": system.trials, "wall_s": wall,
            "pick_length": length, "pick": hp}


def summary(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def rows_for(runs: list[dict[str, Any]], labels: list[str], configs: str) -> list[dict[str, Any]]:
    """One row per system over the seeds, from the runs of the "own" or the "shared" table."""
    rows = []
    for lab in labels:
        rs = [r for r in runs
              if r["system"] == lab and r["configs"] in (configs, "stream", "model")]
        if not rs:
            continue
        row = {"system": lab, "seeds": len(rs),
               "val_loss": summary([r["val_loss"] for r in rs]),
               "test_loss": summary([r["test_loss"] for r in rs]),
               "epochs": summary([r["epochs"] for r in rs]),
               "trials": summary([r["trials"] for r in rs]),
               "wall_s": summary([r["wall_s"] for r in rs]),
               "picks_stopped_early": sum(r["pick_length"] < MAX_LEN for r in rs)}
        if configs == "shared" and all("regret" in r for r in rs):
            row["regret"] = summary([r["regret"] for r in rs])
            row["rank"] = summary([r["rank"] for r in rs])
            row["picked_best_of_sample"] = sum(r["rank"] == 0 for r in rs)
        rows.append(row)
    return rows


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    print(title)
    extra = any("regret" in r for r in rows)
    print(f"{'system':<36} {'full-length val loss':>26} {'test loss':>9} {'epochs':>7} "
          f"{'trials':>6} {'wall s':>7} {'early picks':>11}"
          + (f" {'regret':>7} {'best of sample':>14}" if extra else ""))
    for r in rows:
        v = r["val_loss"]
        line = (f"{r['system']:<36} {v['median']:>8.4f} [{v['min']:.4f} - {v['max']:.4f}] "
                f"{r['test_loss']['median']:>9.4f} {r['epochs']['median']:>7,.0f} "
                f"{r['trials']['median']:>6,.0f} {r['wall_s']['median']:>7.1f} "
                f"{r['picks_stopped_early']:>11}")
        if "regret" in r:
            line += f" {r['regret']['median']:>7.4f} {r['picked_best_of_sample']:>8}/{r['seeds']}"
        print(line)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 seeds, 32 trials (~1 minute)")
    ap.add_argument("--seeds", type=int, help="number of seeds (default 5; 3 with --quick)")
    ap.add_argument("--trials", type=int, help="trials per search (default 128; 32 with --quick)")
    ap.add_argument("--configs", choices=["own", "shared", "both"], default="both",
                    help="own: every system samples its own configs; shared: the random-sampling "
                         "peers get asha_hpc's config stream (common random numbers); both "
                         "(default): two tables, asha_hpc's runs are the same in both")
    ap.add_argument("--oracle", action="store_true",
                    help="with shared configs: also train every config of the shared stream to "
                         "full length, to report each pick's regret against the best of the "
                         "sample (not counted as search epochs; ~20 s per seed)")
    a = ap.parse_args()
    seeds = a.seeds or (3 if a.quick else 5)
    T = a.trials or (32 if a.quick else 128)
    own = a.configs in ("own", "both")
    shared = a.configs in ("shared", "both")
    data = Data()
    t_all = time.perf_counter()
    # "stream": asha_hpc and random search sample the shared stream in both tables
    ours = [
        ("asha_hpc adaptive_asha aggressive",
         lambda o, s: Ours("adaptive_asha", o, T, s, mode="aggressive")),
        ("asha_hpc adaptive_asha standard",
         lambda o, s: Ours("adaptive_asha", o, T, s, mode="standard")),
        ("asha_hpc adaptive_asha conservative",
         lambda o, s: Ours("adaptive_asha", o, T, s, mode="conservative")),
        ("asha_hpc async_halving (4 rungs)",
         lambda o, s: Ours("async_halving", o, T, s, num_rungs=4)),
        ("asha_hpc adaptive_asha aggressive, stop_once",
         lambda o, s: Ours("adaptive_asha", o, T, s, mode="aggressive", stop_once=True)),
    ]
    peers = []  # (label, make(obj, seed, stream or None), can share the stream)
    skipped = []
    if have("optuna"):
        peers += [
            ("Optuna SuccessiveHalving + random",
             lambda o, s, st: OptunaSys(o, T, s, "sha", "random", st), True),
            ("Optuna Hyperband + random",
             lambda o, s, st: OptunaSys(o, T, s, "hyperband", "random", st), True),
            ("Optuna SuccessiveHalving + TPE",
             lambda o, s, st: OptunaSys(o, T, s, "sha", "tpe"), False),
        ]
    else:
        skipped.append("Optuna (not installed)")
    if have("ray.tune"):
        peers.append(("Ray Tune ASHAScheduler", lambda o, s, st: RaySys(o, T, s, st), True))
    else:
        skipped.append("Ray Tune (not installed)")
    RANDOM = "random search (same epochs)"
    runs: list[dict[str, Any]] = []

    def log(r):
        print(f"  seed {r['seed']} [{r['configs']}] {r['system']}: val {r['val_loss']:.4f} "
              f"test {r['test_loss']:.4f}, {r['epochs']:,} epochs, {r['wall_s']:.1f} s",
              file=sys.stderr, flush=True)

    for seed in range(seeds):
        std_epochs = None
        seed_runs = []
        for label, make in ours:
            r = run_system(label, lambda o, make=make, seed=seed: make(o, seed), data, seed)
            r["configs"] = "stream"
            seed_runs.append(r)
            if label == "asha_hpc adaptive_asha standard":
                std_epochs = r["epochs"]
            log(r)
        for label, make, can_share in peers:
            # a model-based sampler (TPE) always samples its own: one run, in both tables
            modes = ((["own"] if own else []) + (["shared"] if shared else [])
                     if can_share else ["model"])
            for mode in modes:
                st = Stream(seed) if mode == "shared" else None
                r = run_system(label, lambda o, make=make, seed=seed, st=st: make(o, seed, st), data, seed)
                r["configs"] = mode
                seed_runs.append(r)
                log(r)
        n_random = max(1, (std_epochs or T * 4) // MAX_LEN)
        r = run_system(RANDOM, lambda o, n=n_random, seed=seed: Random(o, n, seed), data, seed)
        r["configs"] = "stream"
        seed_runs.append(r)
        log(r)
        if shared and a.oracle:
            stream = Stream(seed)
            vals = sorted(full_length(data, stream(), seed)[0] for _ in range(T))
            for r in seed_runs:
                if r["configs"] in ("stream", "shared") and r["system"] != RANDOM:
                    r["regret"] = r["val_loss"] - vals[0]
                    r["rank"] = sum(v < r["val_loss"] for v in vals)
            print(f"  seed {seed} best of the {T} shared configs: val {vals[0]:.4f}",
                  file=sys.stderr, flush=True)
            runs.append({"system": "best of the shared sample (oracle)", "seed": seed,
                         "configs": "shared", "val_loss": vals[0], "test_loss": float("nan"),
                         "epochs": 0, "trials": T, "wall_s": 0.0, "pick_length": MAX_LEN,
                         "pick": None})
        runs.extend(seed_runs)
    labels = [lab for lab, _ in ours] + [lab for lab, _, _ in peers] + [RANDOM]
    tables = {}
    if own:
        tables["own"] = rows_for(runs, labels, "own")
    if shared:
        lab_sh = ([lab for lab, _ in ours] + [lab for lab, _, _ in peers] + [RANDOM]
                  + (["best of the shared sample (oracle)"] if a.oracle else []))
        tables["shared"] = rows_for(runs, lab_sh, "shared")
    vers = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("sklearn", "optuna", "ray"):
        try:
            vers[mod] = __import__(mod).__version__
        except ImportError:
            vers[mod] = None
    print(f"digits MLP, validation log-loss at {MAX_LEN} epochs of each system's pick; "
          f"{T} trials, {WORKERS} workers, {seeds} seeds (median [min - max]); "
          f"python {vers['python']}, optuna {vers['optuna']}, ray {vers['ray']}, "
          f"{os.cpu_count()} CPUs")
    if own:
        print_table("\nconfigs: each system samples its own", tables["own"])
    if shared:
        print_table("\nconfigs: shared stream (Optuna/Ray random sampling gets asha_hpc's configs)",
                    tables["shared"])
    print("early picks: seeds whose pick had stopped before 64 epochs (retrained for the table)")
    if shared and a.oracle:
        print("regret: pick's val loss minus the best of the shared configs (median); best of "
              "sample: seeds where the pick was that best config")
    for s_ in skipped:
        print(f"skipped: {s_}")
    total = time.perf_counter() - t_all
    print(f"total {total:.0f} s")
    name = "stopping_rules_quick.json" if a.quick else "stopping_rules.json"
    out = Path(__file__).resolve().parent / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "stopping_rules", "quick": a.quick, "versions": vers,
                               "cpus": os.cpu_count(), "load_avg": os.getloadavg(),
                               "config": {"trials": T, "seeds": seeds, "workers": WORKERS,
                                          "max_length": MAX_LEN, "divisor": DIVISOR,
                                          "configs": a.configs, "oracle": a.oracle,
                                          "space": SPACE_SPEC},
                               "skipped": skipped, "rows": tables.get("own", []),
                               "rows_shared": tables.get("shared", []), "runs": runs,
                               "total_s": total}, indent=2, default=str) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

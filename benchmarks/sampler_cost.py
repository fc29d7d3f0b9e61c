"""What ``searcher.sampler: tpe`` and ``gp`` cost the master, and what Optuna's TPE would cost
instead.

    python benchmarks/sampler_cost.py            # ~2 minutes on 2 idle cores
    python benchmarks/sampler_cost.py --quick    # 1,000 results only, no master runs

Measures, for asha_hpc's numpy TPE and GP (asha_hpc/searcher/tpe.py, gp.py) and for Optuna's
TPESampler and GPSampler driven through ask/tell on an in-memory study (the library
alternatives; GPSampler at 1,000 results only, 3 draws: it fits a GP on every result):

- import time: a fresh interpreter importing what the master needs (median of 5 runs);
- decision cost: milliseconds to draw one configuration from a model when the search holds
  N results (N = 1,000 and 10,000; the digits-MLP space of stopping_rules.py, 5 hyperparameters),
  the model always used (random_fraction 0). Two shapes of history: async_halving (results
  spread over 4 rungs, as the master sees them) and random search (every result at full length:
  the largest model there can be). Each timed draw follows one more result at the fitted
  length, so gp fits again as in a search whose data changed; "fit reused" is a draw with
  nothing new since the last one (gp keeps its fit; tpe has none to keep);
- dependency weight: what installing each adds on top of asha_hpc's own dependencies (files on
  disk, distributions);
- master memory: peak RSS of the real master on the simulated backend, 10,000 trials, random vs
  tpe vs gp (each in its own process), and the searcher's own allocations per trial (tracemalloc).

Writes benchmarks/results/sampler_cost.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asha_hpc.config import SearcherConfig  # noqa: E402
from asha_hpc.searcher import CreateTrial, ResumeTrial, SegmentCompleted, make_searcher  # noqa: E402
from asha_hpc.searcher.gp import min_results  # noqa: E402
from asha_hpc.space import parse_space  # noqa: E402

SPACE = {"lr": {"type": "log", "minval": -3.5, "maxval": 0, "base": 10},
         "width": {"type": "int", "minval": 16, "maxval": 128},
         "batch_size": {"type": "categorical", "vals": [32, 64, 128, 256]},
         "weight_decay": {"type": "log", "minval": -6, "maxval": -1, "base": 10},
         "act": {"type": "categorical", "vals": ["relu", "tanh"]}}


SAMPLERS = ("random", "tpe", "gp")


def loss(hp: dict[str, Any], length: int) -> float:
    return (float(np.log10(hp["lr"])) + 1.5) ** 2 + abs(hp["width"] - 90) / 100 + 1.0 / length


# ----------------------------------------------------------------------------- import time
def import_seconds(stmt: str, reps: int = 5) -> float:
    code = ("import time, numpy; t = time.perf_counter(); " + stmt +
            "; print(time.perf_counter() - t)")
    out = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True, cwd=ROOT).stdout) for _ in range(reps)]
    return statistics.median(out)


# ----------------------------------------------------------------------------- decision cost
def history(name: str, n: int, sampler: str, seed: int = 0):
    """A searcher with a model sampler that has seen ``n`` results (``name``: async_halving or
    random)."""
    cfg = SearcherConfig(name=name, metric="loss", max_length=64, max_trials=10**7,
                         max_concurrent_trials=64, divisor=4, num_rungs=4, sampler=sampler,
                         random_fraction=1.0)  # building the history: random draws, fast
    s = make_searcher(cfg, parse_space(SPACE)[0], seed)
    hp: dict[int, dict[str, Any]] = {}
    pending = list(s.start())
    results = 0
    while results < n:
        a = pending.pop(0)
        if isinstance(a, CreateTrial):
            hp[a.trial_id] = a.hparams
        if isinstance(a, (CreateTrial, ResumeTrial)):
            pending += s.on_event(SegmentCompleted(a.trial_id, a.length, loss(hp[a.trial_id], a.length)))
            results += 1
    return s


def ours_ms(name: str, n: int, sampler: str, draws: int = 200) -> dict[str, float]:
    """Milliseconds per draw, each after one more result at the fitted length (what a
    search pays when the data changed: gp fits again), and with nothing new since the last
    draw (``reused_ms``: gp reuses its fit; tpe has none to reuse)."""
    s = history(name, n, sampler)
    model = s._model
    model.random_fraction = 0.0
    enough = 2 * (len(model.dims) + 1) if sampler == "tpe" else min_results(len(model.dims))
    fitted = max(length for length, r in model.results.items() if r.n >= enough)
    times, reused = [], []
    for i in range(draws):
        model.observe(1 + i % model.created, fitted, 1.0)  # a new result: the data changed
        t = time.perf_counter()
        model.sample(model.created + 1)
        times.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        model.sample(model.created + 1)
        reused.append((time.perf_counter() - t) * 1e3)
    return {"median_ms": statistics.median(times), "p95_ms": float(np.percentile(times, 95)),
            "reused_ms": statistics.median(reused), "model_length": fitted}


def optuna_ms(n: int, draws: int = 20, kind: str = "tpe") -> dict[str, float]:
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {"lr": FloatDistribution(10 ** -3.5, 1.0, log=True),
             "width": IntDistribution(16, 128),
             "batch_size": CategoricalDistribution([32, 64, 128, 256]),
             "weight_decay": FloatDistribution(1e-6, 1e-1, log=True),
             "act": CategoricalDistribution(["relu", "tanh"])}
    sampler = (optuna.samplers.TPESampler(seed=0) if kind == "tpe" else
               optuna.samplers.GPSampler(seed=0))
    study = optuna.create_study(sampler=sampler,
                                storage=optuna.storages.InMemoryStorage())
    rng = np.random.default_rng(0)
    trials = []
    for _ in range(n):
        p = {"lr": float(10 ** rng.uniform(-3.5, 0)), "width": int(rng.integers(16, 129)),
             "batch_size": int(rng.choice([32, 64, 128, 256])),
             "weight_decay": float(10 ** rng.uniform(-6, -1)),
             "act": str(rng.choice(["relu", "tanh"]))}
        trials.append(optuna.trial.create_trial(params=p, distributions=dists,
                                                value=loss(p, 64)))
    study.add_trials(trials)
    times = []
    for _ in range(draws):
        t = time.perf_counter()
        tr = study.ask(dists)
        times.append((time.perf_counter() - t) * 1e3)
        study.tell(tr, loss(tr.params, 64))
    return {"median_ms": statistics.median(times), "p95_ms": float(np.percentile(times, 95))}


# ----------------------------------------------------------------------------- weight
def dist_weight(names: str | list[str], have: set) -> dict[str, Any]:
    """Files and bytes of ``names`` and their requirements that ``have`` does not hold (a
    requirement they share counted once)."""
    from importlib import metadata

    seen, todo, size, files = set(), [names] if isinstance(names, str) else list(names), 0, 0
    while todo:
        d = todo.pop()
        key = d.lower().replace("_", "-")
        if key in seen or key in have:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(d)
        except metadata.PackageNotFoundError:
            continue
        for f in dist.files or []:
            p = Path(dist.locate_file(f))
            if p.is_file():
                size += p.stat().st_size
                files += 1
        for req in dist.requires or []:
            if "extra ==" in req:
                continue
            todo.append(req.split(";")[0].split("[")[0].split("<")[0].split(">")[0]
                        .split("=")[0].split("!")[0].split("~")[0].strip())
    return {"distributions": sorted(seen), "files": files, "mb": size / 1e6}


# ----------------------------------------------------------------------------- memory
_CHILD = """
import json, resource, sys, tempfile, time
# the peak RSS a forked child reports starts at its parent's (which may hold torch by now):
# Linux resets it on writing 5 to clear_refs
try:
    open("/proc/self/clear_refs", "w").write("5")
except OSError:
    pass
from pathlib import Path
from asha_hpc.config import parse_config
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.master.loop import Master
sampler, trials = sys.argv[1], int(sys.argv[2])
hp = json.loads(sys.argv[3])
tmp = Path(tempfile.mkdtemp(prefix="sampler-cost-", dir="/dev/shm"))
(tmp / "lands.py").write_text(
    "import math\\n"
    "def curve(hp, length, seed):\\n"
    "    return (math.log10(hp['lr']) + 1.5) ** 2 + abs(hp['width'] - 90) / 100 + 1.0 / length\\n")
cfg = parse_config({"name": "m", "entrypoint": "unused:train",
    "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 256,
                 "max_trials": trials, "max_concurrent_trials": 1000, "divisor": 4,
                 "sampler": sampler},
    "hyperparameters": hp, "backend": "simulated", "poll_interval_s": 10,
    "simulated": {"unit_seconds": 30, "duration_noise": 0.3, "curve": "lands:curve"}}, str(tmp))
t = time.process_time()
st = Master(ExpDir.create(tmp / "exp"), cfg, progress=lambda s: None).run()
cpu = time.process_time() - t
best = min(t.metric for t in st.trials.values() if t.length == 256)
def peak_mb():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rss_mb": peak_mb(),
                  "cpu_s": cpu, "best": best}))
import shutil; shutil.rmtree(tmp)
"""


def master_memory(sampler: str, trials: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _CHILD, sampler, str(trials), json.dumps(SPACE)],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def searcher_bytes(sampler: str, n: int) -> float:
    cfg = SearcherConfig(name="adaptive_asha", metric="loss", max_length=256, max_trials=n,
                         max_concurrent_trials=1000, divisor=4, sampler=sampler)
    import asha_hpc.searcher.gp  # noqa: F401  (a module import is not per-trial memory)
    import asha_hpc.searcher.tpe  # noqa: F401

    tracemalloc.start()
    s = make_searcher(cfg, parse_space(SPACE)[0], 0)
    hp: dict[int, dict[str, Any]] = {}
    pending = list(s.start())
    while pending:
        a = pending.pop(0)
        if isinstance(a, CreateTrial):
            hp[a.trial_id] = a.hparams
        if isinstance(a, (CreateTrial, ResumeTrial)):
            pending += s.on_event(SegmentCompleted(a.trial_id, a.length, loss(hp[a.trial_id], a.length)))
            s.take_sampled()  # as the master does: journaled, then dropped
    hp.clear()
    cur = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return cur / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    sizes = [1000] if a.quick else [1000, 10_000]
    res: dict[str, Any] = {"benchmark": "sampler_cost", "python": platform.python_version(),
                           "numpy": np.__version__, "cpus": os.cpu_count(),
                           "load_avg": os.getloadavg()}
    try:
        import optuna

        res["optuna"] = optuna.__version__
    except ImportError:
        optuna = None
    imp = {"asha_hpc.searcher (random)": import_seconds("import asha_hpc.searcher"),
           "asha_hpc.searcher.tpe": import_seconds("import asha_hpc.searcher.tpe"),
           "asha_hpc.searcher.gp": import_seconds("import asha_hpc.searcher.gp")}
    if optuna is not None:
        imp["optuna"] = import_seconds("import optuna")
        imp["optuna + torch + scipy (GPSampler)"] = import_seconds(
            "import optuna, torch, scipy.optimize", reps=3)
    res["import_s"] = imp
    dec: list[dict[str, Any]] = []
    for n in sizes:
        for sampler in ("tpe", "gp"):
            for shape in ("async_halving", "random"):
                dec.append(dict(ours_ms(shape, n, sampler), system=f"asha_hpc {sampler} (numpy)",
                                results=n, history=shape))
        if optuna is not None:
            dec.append(dict(optuna_ms(n, draws=10 if n > 5000 else 20),
                            system="Optuna TPESampler (ask/tell, in memory)", results=n,
                            history="random"))
            if n <= 1000:
                dec.append(dict(optuna_ms(n, draws=3, kind="gp"),
                                system="Optuna GPSampler (ask/tell, in memory)", results=n,
                                history="random"))
    res["decision"] = dec
    have = {"asha-hpc", "numpy", "pyyaml", "filelock", "submitit", "cloudpickle",
            "typing-extensions"}
    res["weight"] = {"optuna": dist_weight("optuna", have) if optuna is not None else None,
                     "optuna GPSampler (optuna, torch, scipy)":
                         dist_weight(["optuna", "torch", "scipy"], have) if optuna is not None
                         else None}
    res["searcher_bytes_per_trial"] = {s: searcher_bytes(s, 10_000) for s in SAMPLERS}
    if not a.quick:
        res["master_10k"] = {s: master_memory(s, 10_000) for s in SAMPLERS}

    print(f"python {res['python']}, numpy {res['numpy']}, optuna {res.get('optuna')}, "
          f"{res['cpus']} CPUs, load {res['load_avg'][0]:.1f}")
    print("\nimport time (fresh interpreter, numpy already loaded; median of 5)")
    for k, v in imp.items():
        print(f"  {k:<40} {v * 1e3:8.0f} ms")
    print("\ndecision cost: one configuration drawn from the model")
    print(f"  {'system':<42} {'results':>8} {'history':>14} {'median ms':>10} {'p95 ms':>8}"
          f" {'fit reused':>11}")
    for d in dec:
        print(f"  {d['system']:<42} {d['results']:>8,} {d['history']:>14} "
              f"{d['median_ms']:>10.2f} {d['p95_ms']:>8.2f}"
              + (f" {d['reused_ms']:>11.2f}" if "reused_ms" in d else ""))
    for name, w in res["weight"].items():
        if w:
            print(f"\n{name} adds {len(w['distributions'])} distributions, {w['files']:,} files, "
                  f"{w['mb']:.0f} MB: {', '.join(w['distributions'])}")
    print("asha_hpc's tpe and gp add nothing (numpy is a dependency already)")
    b = res["searcher_bytes_per_trial"]
    print("\nsearcher allocations per trial (10,000 trials, adaptive_asha): " +
          ", ".join(f"{k} {v:,.0f} B" for k, v in b.items()))
    if "master_10k" in res:
        for s, m in res["master_10k"].items():
            print(f"master, 10,000 trials on the simulated backend, {s:<6}: peak RSS "
                  f"{m['rss_mb']:.0f} MB, CPU {m['cpu_s']:.1f} s, best {m['best']:.4f}")
    out = ROOT / "benchmarks" / "results" / ("sampler_cost_quick.json" if a.quick else "sampler_cost.json")
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

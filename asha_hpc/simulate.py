"""``asha-hpc simulate``: what a search would cost on N workers, in seconds, before it runs.

    d = simulate(cfg, SimulateOptions(workers=64))      # JSON-able dict (``--json``)
    print(render(d))

Each run is the real master and searcher on the simulated backend (virtual clock, no processes)
in a temporary experiment folder that is deleted afterwards (the simulated backend writes
nothing durably). A run reports the makespan, the busy time of the workers (worker-hours, and
GPU-hours = worker-hours x GPUs per trial), worker utilization = busy / (workers x makespan),
units trained, trials per rung, the best metric and when the search first reported it.
``repeats`` runs use seeds ``experiment_seed + i`` and are summarised as median, min and max.
The what-if table reruns the same seeds with one change each (the other modes, other divisors,
half and twice ``max_trials``).

Learning curves are ``synthetic_curve`` by default, or replayed from a JSON-lines file
(``load_curves``): one object per line,

    {"hparams": {"lr": 0.01, "width": 64}, "curve": {"1": 1.9, "4": 1.1, "16": 0.62}}

(``curve`` may also be a list of ``[length, metric]`` pairs; ``hparams`` may be left out), or
an experiment folder: each trial's results (its searcher metric at each length it completed). A
trial whose hyperparameters equal a line's gets that line's curve; any other trial gets a line
drawn at random (fixed by the seed and its hyperparameters). Lengths between recorded points are
interpolated linearly; before the first and after the last point the curve is flat.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import statistics
import tempfile
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ExperimentConfig
from .errors import AshaError
from .protocol.records import Kind

STATS = ("makespan_s", "worker_hours", "gpu_hours", "held_gpu_hours", "utilization",
         "wasted_worker_hours", "units_trained",
         "time_to_best_s", "best_metric", "trials", "segments", "failed_attempts",
         "nodes_excluded")


# ----------------------------------------------------------------------------- curves file
class ReplayedCurves:
    """Learning curves read from a JSON-lines file; called as ``curve(hparams, length, seed)``."""

    def __init__(self, path: str, curves: list[tuple[dict[str, Any], list[int], list[float]]]) -> None:
        self.path = path
        self.curves = curves
        self._exact = {_canon(h): i for i, (h, _, _) in enumerate(curves) if h}

    def __len__(self) -> int:
        return len(self.curves)

    def pick(self, hparams: dict[str, Any], seed: int) -> int:
        i = self._exact.get(_canon(hparams))
        if i is not None:
            return i
        h = hashlib.sha256(json.dumps([seed, hparams], sort_keys=True, default=str).encode()).digest()
        return int.from_bytes(h[:8], "little") % len(self.curves)

    def __call__(self, hparams: dict[str, Any], length: int, seed: int = 0) -> float:
        _, xs, ys = self.curves[self.pick(hparams, seed)]
        return interpolate(xs, ys, length)


def _canon(h: dict[str, Any]) -> str:
    return json.dumps(h, sort_keys=True, default=str)


def interpolate(xs: Sequence[int], ys: Sequence[float], x: float) -> float:
    """Linear between the recorded points, flat outside them (``xs`` sorted, distinct)."""
    if x <= xs[0]:
        return float(ys[0])
    if x >= xs[-1]:
        return float(ys[-1])
    j = bisect_left(xs, x)
    if xs[j] == x:
        return float(ys[j])
    x0, x1, y0, y1 = xs[j - 1], xs[j], ys[j - 1], ys[j]
    return float(y0 + (y1 - y0) * (x - x0) / (x1 - x0))


def curves_of_experiment(root: Path) -> ReplayedCurves:
    """An experiment folder's results as curves: for each trial, its hyperparameters and the
    searcher's metric at every length a segment completed (the journal's results, in the
    lengths the searcher counts), so a new config can be tried on a real search's trials."""
    from .protocol.records import Kind
    from .views.status import open_experiment

    _, cfg, records, st = open_experiment(root)
    metric = cfg.searcher.metric
    points: dict[int, dict[int, float]] = {}
    for r in records:
        m = (r.get("metrics") or {}).get(metric) if r.get("kind") == Kind.RESULT else None
        if r.get("status") == "completed" and isinstance(m, (int, float)) and \
                not isinstance(m, bool) and math.isfinite(m) and isinstance(r.get("length"), int):
            points.setdefault(int(r["trial"]), {})[r["length"]] = float(m)
    curves = [(st.trials[t].hparams, sorted(pts), [pts[x] for x in sorted(pts)])
              for t, pts in sorted(points.items()) if t in st.trials]
    if not curves:
        raise AshaError(f"{root}: no completed segment reported '{metric}': no curves to replay")
    return ReplayedCurves(str(root), curves)


def load_curves(path: str) -> ReplayedCurves:
    """Read and check a curves file, or an experiment folder's results (``curves_of_experiment``);
    any problem raises AshaError naming the file and line."""
    p = Path(path)
    if p.is_dir():
        from .protocol.expdir import holds_experiment

        if not holds_experiment(p):
            raise AshaError(f"{path}: a folder, but no experiment's: --curves takes a curves file "
                            f"(JSON lines) or an experiment folder")
        return curves_of_experiment(p)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise AshaError(f"{path}: no such curves file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise AshaError(f"{path}: cannot read the curves file ({e})") from None
    curves = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise AshaError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise AshaError(f"{where}: expected a JSON object with 'curve' (and 'hparams'), "
                            f"got {type(obj).__name__}")
        hp = obj.get("hparams", {})
        if not isinstance(hp, dict):
            raise AshaError(f"{where}: 'hparams' must be an object, got {type(hp).__name__}")
        raw = obj.get("curve")
        if raw is None:
            raise AshaError(f"{where}: missing 'curve' (an object {{\"<length>\": metric}} or a "
                            f"list of [length, metric] pairs)")
        if isinstance(raw, dict):
            items = list(raw.items())
        elif isinstance(raw, list) and all(isinstance(x, list) and len(x) == 2 for x in raw):
            items = [(x[0], x[1]) for x in raw]
        else:
            raise AshaError(f"{where}: 'curve' must be an object {{\"<length>\": metric}} or a "
                            f"list of [length, metric] pairs")
        if not items:
            raise AshaError(f"{where}: 'curve' is empty")
        pts: dict[int, float] = {}
        for k, v in items:
            try:
                length = int(k) if not isinstance(k, bool) else -1
                if isinstance(k, float) and k != length:
                    length = -1
            except (TypeError, ValueError, OverflowError):
                length = -1
            if length < 1:
                raise AshaError(f"{where}: curve length {k!r} is not an integer >= 1")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise AshaError(f"{where}: curve metric at length {length} must be a finite "
                                f"number, got {v!r}")
            if length in pts:
                raise AshaError(f"{where}: curve length {length} given twice")
            pts[length] = float(v)
        xs = sorted(pts)
        curves.append((hp, xs, [pts[x] for x in xs]))
    if not curves:
        raise AshaError(f"{path}: no curves (the file is empty)")
    return ReplayedCurves(str(path), curves)


# ----------------------------------------------------------------------------- one run
@dataclass
class SimulateOptions:
    workers: int
    unit_seconds: float | None = None  # None: the config's (simulated.unit_seconds)
    startup_seconds: float | None = None
    queue_wait_seconds: float | None = None
    failure_rate: float | None = None
    curves: str | None = None  # None: simulated.curve (else synthetic); "synthetic"; a file
    repeats: int = 1
    what_if: bool = True


def gpus_per_trial(cfg: ExperimentConfig) -> int:
    """GPUs one trial holds: the Slurm job's (gpus_per_node x nodes) when the config gives it,
    else local.gpus_per_trial, else 1."""
    s = cfg.slurm
    if s.gpus_per_node and (cfg.backend == "slurm" or not cfg.local.gpus_per_trial):
        return s.gpus_per_node * max(s.nodes, 1)
    return cfg.local.gpus_per_trial or 1


def prepared(cfg: ExperimentConfig, opt: SimulateOptions) -> ExperimentConfig:
    """A copy of ``cfg`` on the simulated backend with the options' overrides. The pool setting
    of the config's own backend (``local.workers`` / ``slurm.workers``: a number or auto)
    becomes the simulated one, so the simulation runs the mode the real search would."""
    c = copy.deepcopy(cfg)
    if cfg.backend != "simulated":
        c.simulated.pool = cfg.workers_setting
    c.backend = "simulated"
    c.experiment_dir = None
    sim = c.simulated
    sim.workers = opt.workers
    for key in ("unit_seconds", "startup_seconds", "queue_wait_seconds", "failure_rate"):
        v = getattr(opt, key)
        if v is not None:
            setattr(sim, key, float(v))
    return c


def _scratch() -> str | None:
    """A memory-backed folder for the throw-away experiment when there is one (Linux)."""
    import os

    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def run_once(cfg: ExperimentConfig, curve: Callable | None = None) -> dict[str, Any]:
    """One simulated search (``cfg`` already on the simulated backend): its measures."""
    from .backends.simulated import SimulatedBackend
    from .master.loop import Master
    from .protocol.expdir import ExpDir
    from .protocol.journal import read_journal

    with tempfile.TemporaryDirectory(prefix="asha-simulate-", dir=_scratch()) as tmp:
        exp = ExpDir.create(Path(tmp) / "exp")
        backend = SimulatedBackend(exp.root, cfg.simulated, seed=cfg.experiment_seed, curve=curve,
                                   context_dir=cfg.config_dir,
                                   smaller_is_better=cfg.searcher.smaller_is_better)
        st = Master(exp, cfg, backend=backend, progress=lambda line: None).run()
        recs = read_journal(exp.journal)[0]
    if st.lifecycle != "completed":
        raise AshaError(f"the simulated search ended {st.lifecycle}: {st.message or 'no message'}")
    ran = [Span(j.start, j.end, j.fails) for j in backend.jobs.values()
           if j.start is not None and j.end is not None]
    makespan = max((j.end for j in ran), default=0.0)
    busy = backend.busy_seconds
    workers = cfg.simulated.workers or 1
    wasted = sum(j.end - j.start for j in ran if j.fails)
    best = st.ranked()
    t_best = None
    if best:
        b = best[0]
        for r in recs:
            if (r["kind"] == Kind.RESULT and r.get("trial") == b.id and r.get("status") == "completed"
                    and r.get("length") == b.length):
                t_best = r.get("ended") if r.get("ended") is not None else r.get("time")
                break
    by_length: dict[int, int] = {}
    for rung in st.searcher.rungs():
        by_length[rung.length] = by_length.get(rung.length, 0) + rung.results
    gpus = gpus_per_trial(cfg)
    c = st.counts()
    return {
        "seed": cfg.experiment_seed,
        "makespan_s": makespan,
        "worker_hours": busy / 3600.0,
        "gpu_hours": busy / 3600.0 * gpus,
        # GPU-hours held by jobs: start-up and a warm worker's waits included, queueing not
        "held_gpu_hours": backend.held_seconds / 3600.0 * gpus,
        "workers_modes": [{"time": r.get("time"), "mode": r.get("mode"), "reason": r.get("reason"),
                           "measured": r.get("measured", True)}
                          for r in recs if r["kind"] == Kind.WORKERS_MODE],
        "utilization": busy / (workers * makespan) if makespan > 0 else 0.0,
        "wasted_worker_hours": wasted / 3600.0,
        "all_busy_until_s": all_busy_until(ran, workers),
        "units_trained": sum(t.length for t in st.trials.values()),
        "time_to_best_s": t_best,
        "best_metric": best[0].metric if best else None,
        "best_trial": ({"trial_id": best[0].id, "length": best[0].length,
                        "hparams": best[0].hparams} if best else None),
        "trials": c["total"],
        "segments": sum(1 for r in recs if r["kind"] == Kind.RESULT and r.get("status") == "completed"),
        # a segment's error, a job that ended without a result, a pool job that died before
        # its code ran
        "failed_attempts": sum(1 for r in recs if r["kind"] == Kind.JOB_DEAD
                               or r["kind"] == Kind.RESULT and r.get("status") == "error"
                               or r["kind"] == Kind.WORKER_GONE and r.get("unready")),
        "nodes_excluded": len(st.nodes.bad),
        "trials_failed": c["failed"],
        "trials_per_rung": {str(k): by_length[k] for k in sorted(by_length)},
        "rungs": [{"bracket": r.bracket, "rung": r.rung, "length": r.length,
                   "completed": r.completed, "promoted": r.promoted} for r in st.searcher.rungs()],
    }


@dataclass(frozen=True)
class Span:
    """When a job ran (virtual seconds), and whether it failed."""

    start: float
    end: float
    fails: bool = False


def all_busy_until(jobs: Sequence[Span], workers: int) -> float | None:
    """The last time every worker was busy (a worker handed a new job at the instant its job
    ended counts as busy); from then on the search only drains. None if never all busy."""
    ev = sorted([(j.start, 0) for j in jobs] + [(j.end, 1) for j in jobs])  # starts first
    running, last = 0, None
    for t, kind in ev:
        if kind == 0:
            running += 1
        else:
            if running == workers:
                last = t
            running -= 1
    return last


def _summary(vals: list[float | None]) -> dict[str, float] | None:
    xs = [v for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def run_repeats(cfg: ExperimentConfig, repeats: int, curve: Callable | None) -> list[dict[str, Any]]:
    out = []
    for i in range(repeats):
        c = copy.deepcopy(cfg)
        c.experiment_seed = cfg.experiment_seed + i
        out.append(run_once(c, curve))
    return out


def _setting(section: str, key: str, value: Any) -> Callable[[ExperimentConfig], None]:
    """A change that sets ``section.key`` of a config copy to ``value``."""
    def change(c: ExperimentConfig) -> None:
        setattr(getattr(c, section), key, value)

    return change


def what_if_variants(cfg: ExperimentConfig) -> list[tuple[str, Callable[[ExperimentConfig], None]]]:
    """(label, change) pairs: the other ways to run segments (a job each, a warm worker per
    GPU, ``workers: auto``), the other modes (adaptive_asha), other divisors, half and twice
    max_trials."""
    s = cfg.searcher
    out: list[tuple[str, Callable[[ExperimentConfig], None]]] = []
    gpus = cfg.simulated.workers or concurrency(cfg)
    for setting, label in ((0, "workers 0 (a job per segment)"),
                           (gpus, f"workers {gpus} (warm workers)"), ("auto", "workers auto")):
        if cfg.simulated.pool != setting:
            out.append((label, _setting("simulated", "pool", setting)))
    if s.name == "adaptive_asha" and not s.bracket_rungs:
        for m in ("aggressive", "standard", "conservative"):
            if m != s.mode:
                out.append((f"mode {m}", _setting("searcher", "mode", m)))
    if s.name in ("adaptive_asha", "async_halving"):
        divs = [d for d in (3.0, 4.0, 5.0) if d != s.divisor][:2] if s.divisor in (3.0, 4.0, 5.0) \
            else [3.0, 5.0]
        for d in divs:
            out.append((f"divisor {d:g}", _setting("searcher", "divisor", d)))
    if s.name in ("adaptive_asha", "async_halving", "random"):
        half, double = max(1, s.max_trials // 2), s.max_trials * 2
        if half != s.max_trials:
            out.append((f"max_trials {half} (x0.5)", _setting("searcher", "max_trials", half)))
        out.append((f"max_trials {double} (x2)", _setting("searcher", "max_trials", double)))
    return out


def concurrency(cfg: ExperimentConfig) -> int:
    """Segments the searcher keeps in flight at most (all brackets together)."""
    from .searcher.brackets import bracket_plan

    return sum(b.max_concurrent_trials for b in bracket_plan(cfg.searcher, cfg.space()))


def simulate(cfg: ExperimentConfig, opt: SimulateOptions, source: str = "") -> dict[str, Any]:
    """The whole ``simulate`` answer as a JSON-able dict."""
    if opt.workers < 1:
        raise AshaError(f"--workers must be >= 1, got {opt.workers}")
    if opt.repeats < 1:
        raise AshaError(f"--repeats must be >= 1, got {opt.repeats}")
    for key in ("unit_seconds", "startup_seconds", "queue_wait_seconds"):
        v = getattr(opt, key)
        if v is not None and (not math.isfinite(v) or v < 0 or (key == "unit_seconds" and v == 0)):
            raise AshaError(f"--{key.replace('_', '-')} must be a number "
                            f"{'> 0' if key == 'unit_seconds' else '>= 0'}, got {v}")
    if opt.failure_rate is not None and not 0 <= opt.failure_rate < 1:
        raise AshaError(f"--failure-rate must be in [0, 1), got {opt.failure_rate}")
    curve: Callable | None = None
    curves_name = cfg.simulated.curve or "synthetic"  # None: the config's simulated.curve
    if opt.curves == "synthetic":
        from .backends.simulated import curve_function

        curve, curves_name = curve_function(None, smaller_is_better=cfg.searcher.smaller_is_better), \
            "synthetic"
    elif opt.curves:
        curve = load_curves(opt.curves)
        curves_name = str(opt.curves)
    t0 = time.time()
    base = prepared(cfg, opt)
    runs = run_repeats(base, opt.repeats, curve)
    s, sim = base.searcher, base.simulated
    d: dict[str, Any] = {
        "config": source,
        "searcher": {"name": s.name, "mode": s.mode, "divisor": s.divisor,
                     "max_trials": s.max_trials, "max_length": s.max_length,
                     "length_unit": s.length_unit, "metric": s.metric,
                     "smaller_is_better": s.smaller_is_better},
        "workers": opt.workers,
        "concurrency": concurrency(base),
        "unit_seconds": sim.unit_seconds,
        "startup_seconds": sim.startup_seconds,
        "queue_wait_seconds": sim.queue_wait_seconds,
        "duration_noise": sim.duration_noise,
        "failure_rate": sim.failure_rate,
        "poll_interval_s": base.poll_interval_s,
        "gpus_per_trial": gpus_per_trial(base),
        "workers_setting": sim.pool,
        "workers_modes": runs[0]["workers_modes"],
        "curves": curves_name,
        "curves_count": len(curve) if isinstance(curve, ReplayedCurves) else None,
        "repeats": opt.repeats,
        "seeds": [r["seed"] for r in runs],
    }
    for k in STATS:
        d[k] = _summary([r[k] for r in runs])
    lengths = sorted({int(L) for r in runs for L in r["trials_per_rung"]})
    d["trials_per_rung"] = [{"length": L, "completed": statistics.median(
        [r["trials_per_rung"].get(str(L), 0) for r in runs])} for L in lengths]
    rows = [_what_if_row("as configured", runs)]
    if opt.what_if:
        for label, change in what_if_variants(base):
            c = copy.deepcopy(base)
            change(c)
            rows.append(_what_if_row(label, run_repeats(c, opt.repeats, curve)))
    d["what_if"] = rows
    d["runs"] = runs
    d["wall_s"] = time.time() - t0
    return d


def _what_if_row(label: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {"change": label}
    for k in ("makespan_s", "gpu_hours", "held_gpu_hours", "utilization", "best_metric",
              "time_to_best_s", "trials", "units_trained"):
        sm = _summary([r[k] for r in runs])
        row[k] = sm["median"] if sm else None
    return row


# ----------------------------------------------------------------------------- text
def _hours(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s / 3600:.2f} h" if s >= 360 else f"{s:.0f} s"


def _fmt(k: str, v: float | None) -> str:
    if v is None:
        return "-"
    if k in ("makespan_s", "time_to_best_s"):
        return _hours(v)
    if k in ("worker_hours", "gpu_hours", "held_gpu_hours", "wasted_worker_hours"):
        return f"{v:,.1f}"
    if k == "utilization":
        return f"{100 * v:.1f}%"
    if k in ("units_trained", "trials", "segments", "failed_attempts", "nodes_excluded"):
        return f"{v:,.0f}"
    return f"{v:.6g}"


def _workers_lines(d: dict[str, Any]) -> list[str]:
    """How the simulated search ran its segments: the pool setting and, for ``auto``, the
    mode it ended in with its numbers (an estimate of what the real search would choose)."""
    setting = d.get("workers_setting")
    if setting != "auto":
        return [f"segments ran {'as a job each' if not setting else f'on {setting} warm workers'} "
                f"(workers: {setting})"]
    modes = d.get("workers_modes") or []
    if not modes:
        return ["workers: auto (no decision recorded)"]
    last = modes[-1]
    head = "warm workers" if last["mode"] == "pool" else "a job per segment"
    switches = sum(1 for a, b in zip(modes, modes[1:]) if a["mode"] != b["mode"])
    return [f"workers: auto chose {head}: {last['reason']}"
            + (f" ({switches} switch{'es' if switches != 1 else ''} during the search)"
               if switches else "")]


def render(d: dict[str, Any]) -> str:
    s = d["searcher"]
    head = s["name"]
    if s["name"] == "adaptive_asha":
        head += f" ({s['mode']}, divisor {s['divisor']:g})"
    elif s["name"] == "async_halving":
        head += f" (divisor {s['divisor']:g})"
    unit = s["length_unit"]
    lines = [f"simulated {head}: {s['max_trials']:,} trials, max_length {s['max_length']:,} {unit}; "
             f"{d['workers']:,} workers, {d['unit_seconds']:g} s per unit, start-up "
             f"{d['startup_seconds']:g} s, queue wait {d['queue_wait_seconds']:g} s, "
             f"failure rate {d['failure_rate']:g}",
             f"curves: {d['curves']}" + (f" ({d['curves_count']} curves)" if d["curves_count"] else "")
             + f"; {d['repeats']} run{'s' if d['repeats'] > 1 else ''} (seeds "
             f"{', '.join(map(str, d['seeds']))})"
             + ("; median [min - max]" if d["repeats"] > 1 else "")]
    if d["concurrency"] < d["workers"]:
        lines.append(f"note: the searcher keeps at most {d['concurrency']} trials in flight "
                     f"(max_concurrent_trials), fewer than the {d['workers']} workers")
    lines.append("")
    names = [("makespan", "makespan_s"), ("worker-hours (busy)", "worker_hours"),
             (f"GPU-hours (x{d['gpus_per_trial']} per trial)", "gpu_hours"),
             ("GPU-hours held (start-up, waits)", "held_gpu_hours"),
             ("worker utilization", "utilization"),
             ("worker-hours in failed attempts", "wasted_worker_hours"),
             (f"{unit} trained", "units_trained"),
             ("time to the final best", "time_to_best_s"), (f"best {s['metric']}", "best_metric"),
             ("trials", "trials"), ("segments", "segments"), ("failed attempts", "failed_attempts"),
             ("nodes excluded", "nodes_excluded")]
    width = max(len(n) for n, _ in names)
    for name, k in names:
        sm = d[k]
        if sm is None:
            val = "-"
        else:
            val = _fmt(k, sm["median"])
            if d["repeats"] > 1 and sm["min"] != sm["max"]:
                val += f"  [{_fmt(k, sm['min'])} - {_fmt(k, sm['max'])}]"
        if k == "time_to_best_s" and sm and d["makespan_s"] and d["makespan_s"]["median"]:
            val += f"  ({100 * sm['median'] / d['makespan_s']['median']:.0f}% of the makespan)"
        lines.append(f"{name.ljust(width)}  {val}")
    lines += _workers_lines(d)
    lines += ["", "trials per rung (results recorded at each length): " + ", ".join(
        f"{r['length']:,}: {r['completed']:,.0f}" for r in d["trials_per_rung"])]
    rows = d["what_if"]
    if len(rows) > 1:
        lines += ["", f"what if (median of {d['repeats']} run{'s' if d['repeats'] > 1 else ''}, "
                  f"same seeds):"]
        base = rows[0]
        hdr = ["change", "trials", "makespan", "vs now", "GPU-hours", "held", "util",
               f"best {s['metric']}", "to best"]
        table = []
        for r in rows:
            rel = ("-" if r is base or not base["makespan_s"] or r["makespan_s"] is None
                   else f"{100 * (r['makespan_s'] / base['makespan_s'] - 1):+.0f}%")
            table.append([r["change"], _fmt("trials", r["trials"]), _fmt("makespan_s", r["makespan_s"]),
                          rel, _fmt("gpu_hours", r["gpu_hours"]),
                          _fmt("held_gpu_hours", r.get("held_gpu_hours")),
                          _fmt("utilization", r["utilization"]),
                          _fmt("best_metric", r["best_metric"]), _fmt("time_to_best_s", r["time_to_best_s"])])
        widths = [max(len(x[i]) for x in [hdr] + table) for i in range(len(hdr))]
        fmt = lambda row: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                    for i, (c, w) in enumerate(zip(row, widths)))
        lines += [fmt(hdr)] + [fmt(r) for r in table]
    lines += ["", f"({d['wall_s']:.1f} s of wall time)"]
    return "\n".join(lines)

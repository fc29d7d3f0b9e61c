"""``workers: auto`` against both fixed modes (issue 22): wall time and GPU-seconds held.

    python benchmarks/auto_workers.py                 # simulated sweep + this machine (~8 min)
    python benchmarks/auto_workers.py --quick         # a smaller sweep, short/medium local rows
    python benchmarks/auto_workers.py --slurm         # + the local Slurm cluster (~5 min more)
    python benchmarks/auto_workers.py --digits        # + examples/pytorch_digits, default
                                                      #   (auto) vs workers: 0 (~9 min more)
    python benchmarks/auto_workers.py --no-sim --no-local --slurm   # one part alone
    python benchmarks/auto_workers.py --no-sim --slurm --repeats 3  # the real rows (~40 min)

Every row runs the same search three ways: ``workers: 0`` (a job per segment, the default
before auto), ``workers: N`` (a warm worker per slot) and ``workers: auto``, and reports each
one's wall time (makespan) and GPU-seconds held, and whether auto is within 10% of the better
fixed mode on each (the better one per measure: the modes trade wall time for held time).

Part 1, simulated (``backend: simulated``: the real master, searcher and journal on a virtual
clock): 8 GPUs, adaptive_asha standard, divisor 4, 64 trials, max length 64, 10 s start-up per
new job, poll 1 s, duration noise 0.1; unit times from 1 ms to 1,000 s (segments of about 5
ms to 1.5 h on average) and queue waits of 0, 5 and 30 minutes. Held GPU-seconds are the
simulator's ``held_seconds`` (a job holds its GPU from its start to its exit: start-up and a
warm worker's waits included, queueing not).

Part 2, this machine (``backend: local``, real processes, 2 slots): a sleep-based model (time
per epoch: short 5 ms, medium 1.5 s, long 20 s) in adaptive_asha aggressive, 6 trials, max
length 4 (rungs 1 and 4: 7 segments). Held seconds come from the journal: a segment job holds
its slot from its process start (``job_started``) to its result; a warm worker from its
process start to its release (``worker_gone``) or its last result. No GPUs here: these are
slot-seconds, what a GPU per slot would be held. Each mode runs ``--repeats`` times (default
3), interleaved (jobs, warm, auto, jobs, warm, auto, ...) so that the load of a shared machine
falls on the three alike; rows show the median and the range, and the verdict compares medians.

Part 3, the local Slurm cluster (``--slurm``; ``bash tools/local_slurm.sh start``): the same
model and rows with ``backend: slurm``, 4 (fake, GRES) GPUs, one per job, repeated and
interleaved like part 2. Held GPU-seconds from
``sacct`` (elapsed x allocated GPUs, whole seconds, queueing excluded).

Part 4, ``--digits``: ``asha-hpc run examples/pytorch_digits/digits.yaml`` as shipped (workers:
auto) and with ``local.workers: 0`` (the default before), back to back, wall time of the run.

Writes benchmarks/results/auto_workers.json (auto_workers_quick.json with --quick).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from worker_pool import keep_skipped_parts, slurm_available  # noqa: E402

from asha_hpc.config import parse_config  # noqa: E402
from asha_hpc.master.loop import Master  # noqa: E402
from asha_hpc.protocol.expdir import ExpDir  # noqa: E402
from asha_hpc.protocol.journal import read_journal  # noqa: E402

TOLERANCE = 0.10
SIM_GPUS = 8
SIM_STARTUP_S = 10.0
SIM_UNITS = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]
SIM_QUEUES = [0.0, 300.0, 1800.0]
LOCAL_EPOCH_S = {"short": 0.005, "medium": 1.5, "long": 20.0}
MODES = ["workers 0", "workers N", "auto"]


# ----------------------------------------------------------------------------- measures
def held_from_journal(recs: list[dict[str, Any]]) -> float:
    """Slot-seconds held by jobs: a segment job from its start to its result, a warm worker
    from its start to its release (or its last result when it left by itself)."""
    seg_s = 0.0
    workers: dict[str, dict[str, float]] = {}
    for r in recs:
        k = r["kind"]
        if k == "worker_ready" and isinstance(r.get("job_started"), (int, float)):
            workers.setdefault(r["worker"], {})["start"] = r["job_started"]
        elif k == "result" and isinstance(r.get("ended"), (int, float)):
            w = r.get("worker")
            if w and not (r.get("job_started", 0) < r.get("started", 0) and w not in workers
                          and not r.get("waiting")):
                d = workers.setdefault(w, {})
                if r.get("job_started") is not None and r["job_started"] < r.get("started", 0):
                    d.setdefault("start", r["job_started"])
                d["end"] = r["ended"]
            elif isinstance(r.get("job_started"), (int, float)):
                seg_s += r["ended"] - r["job_started"]
        elif k == "worker_gone":
            for w in r["workers"]:
                if w in workers:
                    workers[w]["end"] = max(workers[w].get("end", 0.0), r["time"])
    pool_s = sum(d["end"] - d["start"] for d in workers.values() if "start" in d and "end" in d)
    return seg_s + pool_s


def within(x: float, best: float) -> bool:
    return x <= best * (1 + TOLERANCE) + 1e-9


def add_verdict(rows: list[dict[str, Any]], wall: str, held: str, per_train: bool) -> None:
    """Per group of three (one per mode): is auto within 10% of the better fixed mode?
    ``per_train``: held time is compared per second of training (``held_per_train``), for the
    simulated sweep: ASHA promotes by the order in which results arrive, so the three runs of
    one row train different amounts (up to +-15% there), which would swamp the mode's own cost
    in raw held time. The real rows compare raw held time, medians of their repeats: almost
    every run trains 9 epochs (one promotion from rung 1 to 4; a second one, 12 epochs, when
    the best rung-1 trial reports after the fourth result), which the median absorbs, and per
    second of measured training would magnify noise (the short row trains 0.3 s); the rows
    keep ``held_per_train`` too."""
    groups: dict[tuple, dict[str, dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["group"], {})[r["mode"]] = r
    for g in groups.values():
        if set(g) != set(MODES):
            continue
        a = g["auto"]
        best_wall = min(g["workers 0"][wall], g["workers N"][wall])
        h = "held_per_train" if per_train else held
        best_held = min(g["workers 0"][h], g["workers N"][h])
        a["wall_vs_best"] = a[wall] / best_wall if best_wall else None
        a["held_vs_best"] = a[h] / best_held if best_held else None
        a["ok"] = within(a[wall], best_wall) and within(a[h], best_held)
        bw = min(("workers 0", "workers N"), key=lambda m: g[m][wall])
        bh = min(("workers 0", "workers N"), key=lambda m: g[m][h])
        if a["group"][0] != "sim":  # seeds, not repeats: their spread is the search's
            a["wall_overlaps_best"] = overlap(a, g[bw], wall)
            a["held_overlaps_best"] = overlap(a, g[bh], h)


def auto_modes(recs: list[dict[str, Any]]) -> str:
    ms = [r for r in recs if r["kind"] == "workers_mode"]
    if not ms:
        return "-"
    out = []
    for r in ms:
        m = "warm" if r["mode"] == "pool" else "jobs"
        if not out or out[-1] != m:
            out.append(m)
    return ">".join(out)


# ----------------------------------------------------------------------------- simulation
def sim_config(mode: str, unit_s: float, queue_s: float, seed: int) -> dict[str, Any]:
    pool: Any = {"workers 0": 0, "workers N": SIM_GPUS, "auto": "auto"}[mode]
    return {
        "name": "autobench", "entrypoint": "unused:train", "backend": "simulated",
        "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 64,
                     "max_trials": 64, "max_concurrent_trials": SIM_GPUS, "mode": "standard",
                     "divisor": 4},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
        "reproducibility": {"experiment_seed": seed}, "poll_interval_s": 1.0,
        "simulated": {"unit_seconds": unit_s, "startup_seconds": SIM_STARTUP_S,
                      "queue_wait_seconds": queue_s, "duration_noise": 0.1,
                      "workers": SIM_GPUS, "pool": pool}}


def run_sim(mode: str, unit_s: float, queue_s: float, seed: int, tmp: Path) -> dict[str, Any]:
    cfg = parse_config(sim_config(mode, unit_s, queue_s, seed), "/tmp")
    exp = ExpDir.create(tmp / f"sim-{mode.replace(' ', '')}-{unit_s}-{queue_s}-{seed}")
    m = Master(exp, cfg, progress=lambda s: None)
    st = m.run()
    recs = read_journal(exp.journal)[0]
    b = m.backend
    ran = [j for j in b.jobs.values() if j.start is not None and j.end is not None]
    makespan = max((r["time"] for r in recs), default=0.0)
    seg = [r["ended"] - r["started"] for r in recs
           if r["kind"] == "result" and r.get("status") == "completed"]
    shutil.rmtree(exp.root, ignore_errors=True)
    return {"group": ("sim", unit_s, queue_s), "mode": mode, "unit_s": unit_s,
            "queue_s": queue_s, "seed": seed, "lifecycle": st.lifecycle,
            "wall_s": makespan, "held_s": b.held_seconds, "train_s": b.train_seconds,
            "held_per_train": b.held_seconds / b.train_seconds if b.train_seconds else None,
            "segment_mean_s": sum(seg) / len(seg) if seg else None, "jobs": len(ran),
            "auto": auto_modes(recs) if mode == "auto" else None}


# ----------------------------------------------------------------------------- real backends
MODEL = '''
import json, time


def train(trial):
    hp = trial.hparams
    epoch = 0
    if trial.latest_checkpoint:
        epoch = json.loads((trial.latest_checkpoint / "s.json").read_text())["epoch"]
    for seg in trial.segments():
        while epoch < seg.length:
            time.sleep(hp["epoch_s"])
            epoch += 1
        with trial.save_checkpoint() as p:
            (p / "s.json").write_text(json.dumps({"epoch": epoch}))
        seg.report(loss=(hp["x"] - 0.3) ** 2 + 1.0 / (1 + epoch))
'''


def real_config(backend: str, mode: str, size: str, tmp: Path, seed: int) -> dict[str, Any]:
    slots = 2 if backend == "local" else 4
    n: Any = {"workers 0": 0, "workers N": slots, "auto": "auto"}[mode]
    cfg: dict[str, Any] = {
        "name": f"autobench-{backend}-{size}-{mode.replace(' ', '')}-{os.getpid()}-{seed}",
        "entrypoint": "model:train", "context_dir": str(tmp), "backend": backend,
        "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 4, "divisor": 4,
                     "max_trials": 6, "max_concurrent_trials": slots, "mode": "aggressive"},
        "hyperparameters": {"x": {"type": "double", "minval": -1, "maxval": 1},
                            "epoch_s": LOCAL_EPOCH_S[size]},
        "reproducibility": {"experiment_seed": seed}, "poll_interval_s": 0.5, "max_restarts": 1}
    if backend == "local":
        cfg["local"] = {"gpus": 0, "max_parallel": slots, "workers": n}
    else:
        cfg["slurm"] = {"gpus_per_node": 1, "timeout_min": 10, "poll_min_interval_s": 1,
                        "workers": n,
                        "setup": [f"export PYTHONPATH={ROOT}${{PYTHONPATH:+:$PYTHONPATH}}"]}
    return cfg


def run_real(backend: str, mode: str, size: str, seed: int, tmp: Path,
             rep: int = 0) -> dict[str, Any]:
    (tmp / "model.py").write_text(MODEL)
    raw = real_config(backend, mode, size, tmp, seed)
    raw["name"] += f"-r{rep}"
    cfg = parse_config(raw, tmp)
    exp = ExpDir.create(tmp / f"{backend}-{size}-{mode.replace(' ', '')}-{seed}-r{rep}")
    m = Master(exp, cfg, progress=lambda s: None)
    t0 = time.perf_counter()
    st = m.run()
    wall = time.perf_counter() - t0
    recs = read_journal(exp.journal)[0]
    seg = [r["ended"] - r["started"] for r in recs
           if r["kind"] == "result" and r.get("status") == "completed"]
    out: dict[str, Any] = {"group": (backend, size), "mode": mode, "size": size, "seed": seed,
                           "lifecycle": st.lifecycle, "wall_s": wall,
                           "held_s": held_from_journal(recs),
                           "segment_mean_s": sum(seg) / len(seg) if seg else None,
                           "auto": auto_modes(recs) if mode == "auto" else None,
                           "rep": rep, "segment_jobs": sum(1 for r in recs if r["kind"] == "submitted"),
                           "pool_workers": sum(len(r["workers"]) for r in recs
                                               if r["kind"] == "workers")}
    last = [r for r in recs if r["kind"] == "workers_mode" and r.get("measured")]
    if last:  # what auto measured when it last decided
        out.update(auto_startup_s=last[-1].get("startup_s"), auto_share=last[-1].get("share"))
    if backend == "slurm":
        held = sacct_held_by_name(cfg.name)
        out.update(journal_held_s=out["held_s"], held_s=held["gpu_s"], jobs=held["jobs"])
    out["train_s"] = sum(seg)
    out["held_per_train"] = out["held_s"] / out["train_s"] if out["train_s"] else None
    out["held_beyond_train_s"] = out["held_s"] - out["train_s"]  # start-ups, waits, idle
    return out


def sacct_held_by_name(name: str) -> dict[str, float]:
    """GPU-seconds every job of experiment ``name`` held (sacct: elapsed x allocated GPUs,
    whole seconds; array tasks one row each), found by job name (``asha-<name>-...``: segment
    jobs, arrays and pool workers alike). Waits until none of them runs."""
    rows: list[list[str]] = []
    for _ in range(60):
        out = subprocess.run(["sacct", "-X", "-n", "-P", "-S", "now-2hours", "-o",
                              "JobID,JobName,State,ElapsedRaw,AllocTRES"],
                             capture_output=True, text=True).stdout
        rows = [r for r in (line.split("|") for line in out.splitlines())
                if len(r) == 5 and r[1].startswith(f"asha-{name}-")]
        if rows and not any(r[2] in ("RUNNING", "PENDING", "COMPLETING") for r in rows):
            break
        time.sleep(1.0)
    gpu_s = 0.0
    for _, _, _, elapsed, tres in rows:
        gpus = sum(int(p.split("=")[1]) for p in tres.split(",") if p.startswith("gres/gpu="))
        gpu_s += float(elapsed or 0) * gpus
    return {"gpu_s": gpu_s, "jobs": len(rows)}


def run_digits(mode: str, tmp: Path) -> dict[str, Any]:
    """The example as shipped (auto), or as the default ran it before ``workers: auto``: a job
    per segment (``local.workers: 0``), each job's torch on as many threads as there are cores
    (``OMP_NUM_THREADS`` = the CPU count; the local backend now shares the cores out)."""
    import yaml

    src = ROOT / "examples" / "pytorch_digits" / "digits.yaml"
    cfg = yaml.safe_load(src.read_text())
    cfg["context_dir"] = str(src.parent)
    if mode == "workers 0":
        cfg.setdefault("local", {})["workers"] = 0
    path = tmp / f"digits-{mode.replace(' ', '')}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    exp = tmp / f"digits-run-{mode.replace(' ', '')}"
    t0 = time.perf_counter()
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    if mode == "workers 0":
        env["OMP_NUM_THREADS"] = str(os.cpu_count() or 1)
    r = subprocess.run([sys.executable, "-m", "asha_hpc.cli", "run", str(path), "--exp-dir",
                        str(exp)], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    recs = read_journal(exp / "journal.jsonl")[0]
    best = [line for line in r.stderr.splitlines() if "best trial" in line]
    return {"mode": mode, "rc": r.returncode, "wall_s": wall, "best": best[-1] if best else None,
            "segments": sum(1 for x in recs if x["kind"] == "result"),
            "auto": auto_modes(recs)}


# ----------------------------------------------------------------------------- output
def fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    if x < 100:
        return f"{x:.2f}"
    if x < 36000:
        return f"{x:,.0f}"
    return f"{x / 3600:,.1f} h"


def print_rows(title: str, rows: list[dict[str, Any]], key_cols: list[str], held_name: str,
               per_train: bool = False) -> None:
    print(f"\n{title}")
    by: dict[tuple, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["group"], {})[r["mode"]] = r
    per = per_train and all(r.get("held_per_train") for r in rows)
    reps = max((r.get("runs", 1) for r in rows), default=1) > 1 and "sim" not in \
        {r["group"][0] for r in rows}
    hdr = key_cols + ["seg mean s", "wall: jobs", "warm", "auto", "held: jobs", "warm", "auto"]
    hdr += ["held/train: jobs", "warm", "auto"] if per else []
    hdr += ["auto vs best (wall, held)", "auto chose", "ok"]
    hdr += ["auto's range meets best's (wall, held)"] if reps else []
    print(" | ".join(hdr))

    def cell(r: dict[str, Any], k: str, f=fmt_s) -> str:
        if reps and f"{k}_min" in r:
            return f"{f(r[k])} [{f(r[k + '_min'])}-{f(r[k + '_max'])}]"
        return f(r[k])

    def ratio(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    def yn(x: bool | None) -> str:
        return "-" if x is None else ("yes" if x else "no")

    for g, ms in by.items():
        if set(ms) != set(MODES):
            continue
        a, z, n = ms["auto"], ms["workers 0"], ms["workers N"]
        keys = [str(x) for x in g[1:]]
        print(" | ".join(keys + [fmt_s(z.get("segment_mean_s")),
                                 cell(z, "wall_s"), cell(n, "wall_s"), cell(a, "wall_s"),
                                 cell(z, "held_s"), cell(n, "held_s"), cell(a, "held_s")]
                         + ([cell(z, "held_per_train", ratio), cell(n, "held_per_train", ratio),
                             cell(a, "held_per_train", ratio)] if per else [])
                         + [f"{a.get('wall_vs_best') or 0:.2f}, {a.get('held_vs_best') or 0:.2f}",
                            a.get("auto") or "-", "yes" if a.get("ok") else "NO"]
                         + ([f"{yn(a.get('wall_overlaps_best'))}, "
                             f"{yn(a.get('held_overlaps_best'))}"] if reps else [])))
    print(f"(held: {held_name}" + ("; held/train: held per second of training, what the "
          "verdict compares" if per else "") + "; auto vs best: auto / the better fixed mode, "
          f"per measure; ok: both within {100 * TOLERANCE:.0f}%"
          + ("; median [min-max] of the repeats, the verdict on medians; range meets: auto's "
             "range overlaps the better mode's, so the gap is within the run-to-run noise"
             if reps else "") + ")")
    if reps:
        print("per mode, medians: pool workers started, segment jobs, held beyond training s, "
              "auto's last measured start-up s and share")
        for g, ms in by.items():
            for m in MODES:
                r = ms.get(m)
                if r is None:
                    continue
                print(f"  {' '.join(str(x) for x in g[1:])} {m:<10} workers "
                      f"{r.get('pool_workers')} jobs {r.get('segment_jobs')} beyond "
                      f"{fmt_s(r.get('held_beyond_train_s'))}"
                      + (f" start-up {fmt_s(r.get('auto_startup_s'))} share "
                         f"{r.get('auto_share')}" if m == "auto" else ""))


SPREAD = ("wall_s", "held_s", "held_per_train")


def median_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (group, mode): the median over runs (seeds, or repeats of a real row) of each
    measure, and the range (``<measure>_min``, ``_max``) of wall and held time."""
    import statistics

    out: dict[tuple, list[dict[str, Any]]] = {}
    for r in runs:
        out.setdefault((tuple(r["group"]), r["mode"]), []).append(r)
    rows = []
    for (_group, mode), rs in out.items():
        row = dict(rs[0])
        for k in ("wall_s", "held_s", "segment_mean_s", "held_per_train", "train_s",
                  "held_beyond_train_s", "auto_startup_s", "auto_share", "pool_workers",
                  "segment_jobs"):
            xs = [r[k] for r in rs if isinstance(r.get(k), (int, float))]
            row[k] = statistics.median(xs) if xs else None
            if k in SPREAD and xs:
                row[f"{k}_min"], row[f"{k}_max"] = min(xs), max(xs)
        if mode == "auto":
            row["auto"] = ", ".join(sorted({str(r["auto"]) for r in rs}))
        row["runs"] = len(rs)
        rows.append(row)
    return rows


def overlap(a: dict[str, Any], b: dict[str, Any], k: str) -> bool | None:
    """Whether the ranges of measure ``k`` over the repeats of two rows overlap (None: one
    run each, no range)."""
    if a.get("runs", 1) < 2 or f"{k}_min" not in a or f"{k}_min" not in b:
        return None
    return a[f"{k}_min"] <= b[f"{k}_max"] and b[f"{k}_min"] <= a[f"{k}_max"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer sweep points, no long local row")
    ap.add_argument("--seeds", type=int, default=None, help="simulated seeds (default 5; 1 quick)")
    ap.add_argument("--no-sim", action="store_true")
    ap.add_argument("--no-local", action="store_true")
    ap.add_argument("--slurm", action="store_true", help="also the local Slurm cluster")
    ap.add_argument("--digits", action="store_true", help="also examples/pytorch_digits")
    ap.add_argument("--sizes", help="local/Slurm rows, comma-separated (short,medium,long)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="runs of each mode per local/Slurm row, interleaved (default 3; 1 quick)")
    ap.add_argument("--out")
    a = ap.parse_args()
    seeds = a.seeds or (1 if a.quick else 5)
    repeats = a.repeats or (1 if a.quick else 3)
    units = [0.001, 0.1, 10.0, 1000.0] if a.quick else SIM_UNITS
    queues = [0.0, 1800.0] if a.quick else SIM_QUEUES
    sizes = (a.sizes or ("short,medium" if a.quick else "short,medium,long")).split(",")
    if a.slurm and slurm_available():
        raise SystemExit(f"--slurm: {slurm_available()}")
    t_all = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="auto_workers_bench_"))
    sim_runs: list[dict[str, Any]] = []
    local_runs: list[dict[str, Any]] = []
    slurm_runs: list[dict[str, Any]] = []
    digits: list[dict[str, Any]] = []
    try:
        if not a.no_sim:
            for q in queues:
                for u in units:
                    for seed in range(seeds):
                        for mode in MODES:
                            sim_runs.append(run_sim(mode, u, q, 21 + seed, tmp))
                    print(f"  sim unit {u:g} s queue {q / 60:.0f} min done",
                          file=sys.stderr, flush=True)
        for backend, runs, skip in (("local", local_runs, a.no_local),
                                    ("slurm", slurm_runs, not a.slurm)):
            if skip:
                continue
            for size in sizes:
                for rep in range(repeats):
                    for mode in MODES:  # interleaved: a shared machine's load hits all three
                        r = run_real(backend, mode, size, 42, tmp, rep)
                        runs.append(r)
                        print(f"  {backend} {size} #{rep + 1} {mode}: wall {r['wall_s']:.1f} s, "
                              f"held {r['held_s']:.1f} s, auto {r.get('auto')}",
                              file=sys.stderr, flush=True)
        if a.digits:
            for mode in ("workers 0", "auto"):
                d = run_digits(mode, tmp)
                digits.append(d)
                print(f"  digits {mode}: {d['wall_s']:.1f} s ({d['auto']})", file=sys.stderr,
                      flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sim_rows = median_rows(sim_runs)
    add_verdict(sim_rows, "wall_s", "held_s", per_train=True)
    local_rows, slurm_rows = median_rows(local_runs), median_rows(slurm_runs)
    for rows in (local_rows, slurm_rows):
        add_verdict(rows, "wall_s", "held_s", per_train=False)
    if sim_rows:
        print_rows(f"Simulated: {SIM_GPUS} GPUs, 64 trials, adaptive_asha standard, max length 64, "
                   f"start-up {SIM_STARTUP_S:g} s; median of {seeds} seed(s); seconds",
                   sim_rows, ["unit s", "queue s"], "GPU-seconds, the simulator's held_seconds",
                   per_train=True)
    if local_rows:
        print_rows(f"This machine, local backend, 2 slots, 6 trials (7 segments), {repeats} "
                   f"run(s) per mode; seconds", local_rows, ["size"], "slot-seconds from the journal")
    if slurm_rows:
        print_rows(f"Local Slurm cluster, 4 GPUs, 6 trials (7 segments), {repeats} run(s) per "
                   f"mode; seconds", slurm_rows, ["size"], "GPU-seconds from sacct")
    if digits:
        by = {d["mode"]: d for d in digits}
        z, au = by.get("workers 0"), by.get("auto")
        print("\nexamples/pytorch_digits (16 trials, 64 epochs), back to back:")
        for d in digits:
            print(f"  {d['mode']:<10} {d['wall_s']:7.1f} s  {d['segments']} segments  auto chose "
                  f"{d['auto']}  {d['best']}")
        if z and au:
            print(f"  speed-up of the default: {z['wall_s'] / au['wall_s']:.1f}x")
    total = time.perf_counter() - t_all
    print(f"\ntotal {total:.0f} s")
    out = Path(a.out) if a.out else HERE / "results" / (
        "auto_workers_quick.json" if a.quick else "auto_workers.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    for rows in (sim_rows, local_rows, slurm_rows, local_runs, slurm_runs):
        for r in rows:
            r["group"] = list(r["group"])
    doc = {"benchmark": "auto_workers", "quick": a.quick, "python": platform.python_version(),
           "cpus": os.cpu_count(), "load_avg": os.getloadavg(), "machine": platform.platform(),
           "tolerance": TOLERANCE,
           "sim_config": {"gpus": SIM_GPUS, "startup_s": SIM_STARTUP_S, "units_s": units,
                          "queues_s": queues, "seeds": seeds},
           "local_config": {"sizes": sizes, "epoch_s": LOCAL_EPOCH_S, "repeats": repeats,
                            "order": "interleaved"},
           "slurm_config": {"sizes": sizes, "epoch_s": LOCAL_EPOCH_S, "repeats": repeats,
                            "order": "interleaved"},
           "sim_rows": sim_rows, "sim_runs": sim_runs, "local_rows": local_rows,
           "local_runs": local_runs, "slurm_rows": slurm_rows, "slurm_runs": slurm_runs,
           "digits_rows": digits, "total_s": total}
    kept = keep_skipped_parts(doc, out, {"sim": not a.no_sim, "local": not a.no_local,
                                         "slurm": a.slurm, "digits": a.digits})
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"wrote {out}" + (f" (kept the earlier {', '.join(kept)} part(s))" if kept else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

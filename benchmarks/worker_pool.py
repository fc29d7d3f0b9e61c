"""Per-segment jobs vs in-place continuation vs the worker pool (issue 8).

    python benchmarks/worker_pool.py            # ~3-5 minutes on 2 cores
    python benchmarks/worker_pool.py --quick    # ~1 minute: fewer trials, one queue wait
    python benchmarks/worker_pool.py --no-local # simulation only
    python benchmarks/worker_pool.py --slurm --no-sim --no-local   # the local Slurm cluster only

Part 1, simulation (``backend: simulated``, virtual clock, the real master loop and journal):
a cluster of 64 GPUs, adaptive_asha (standard mode, divisor 4, max length 256 units of 30 s),
a few hundred trials, 64 concurrent, start-up of 45 s per job, log-normal duration noise
(sigma 0.5), and a queue wait of 0, 5 and 30 minutes for every job submitted. Three modes:

- ``per-segment``: a new job for every segment (the default);
- ``continue``: ``continue_in_place: true`` (a job waits ``continue_wait_s``, default 3 polls,
  for its own trial's next segment, and gets it when the searcher decides at once);
- ``pool``: ``simulated.pool: 64`` (64 long-lived workers, one per GPU).

Measured per run: the makespan (virtual seconds from the first record to the last), GPU-hours
held (``held_seconds``: a job holds its GPU from its start to its exit, start-up and waiting
included, queueing not) vs used (``busy_seconds``: inside segments), and their ratio, trials
completed (reached max length) and trials created, and the hand-off gap: for each trial, the
time from a result's ``ended`` to the next result's ``started`` (journal records, same trial,
consecutive completed segments). As in a real job, a fresh job's ``started`` comes after its
start-up (``startup_seconds``), so the gap runs to the next segment's *training*; GPU-hours
training (``train_seconds``) is the sum of the results' ``ended - started``.

Part 2, this machine (``backend: local``, real processes): the same three modes on a small
synthetic trial (examples/quadratic's ``model:train``: 30 ms of ``sleep`` per epoch, a checkpoint
per segment), 2 slots (``local.max_parallel: 2``; the pool: ``local.workers: 2``), 24 trials,
max length 64, adaptive_asha standard, ``poll_interval_s`` 0.5. Measured: wall time of the
master's run, the hand-off gap as above (here ``started`` is taken in the job process, after
its interpreter start and imports), and the seconds spent inside segments.

Part 3, the local Slurm cluster (``--slurm``; ``bash tools/local_slurm.sh start``; 4 fake GPUs
as GRES): the same model and three modes with ``backend: slurm``, one GPU per job, 4 trials
(or pool workers) at a time, 32 trials, ``poll_interval_s`` 0.5. Every job pays what a real
one does: sbatch, the scheduler, the batch script, a Python start and imports. Measured:
wall time, the hand-off gap, sbatch calls, and GPU-hours held (``sacct``: each job's elapsed
time x its GPUs, queueing excluded) against GPU-hours used (inside segments, from the journal).

Writes benchmarks/results/worker_pool.json (worker_pool_quick.json with --quick).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from asha_hpc.config import parse_config  # noqa: E402
from asha_hpc.master.loop import Master  # noqa: E402
from asha_hpc.protocol.expdir import ExpDir  # noqa: E402
from asha_hpc.protocol.journal import read_journal  # noqa: E402

MODES = ["per-segment", "continue", "pool"]
GPUS = 64
STARTUP_S = 45.0
NOISE = 0.5
UNIT_S = 30.0
MAX_LEN = 256
POLL_S = 10.0


# ----------------------------------------------------------------------------- journal metrics
def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def journal_metrics(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Hand-off gaps (a completed result's ``ended`` -> the same trial's next completed result's
    ``started``), makespan, how many segments were handed over vs submitted."""
    handed = set()
    intents = 0
    intent_t: dict[tuple, float] = {}
    for r in records:
        if r.get("kind") == "intent":
            intents += 1
            intent_t[(r["trial"], r["segment"], r["attempt"])] = r["time"]
            if r.get("worker"):
                handed.add((r["trial"], r["segment"], r["attempt"]))
    # the master's decision (intent journaled) -> the segment starts in its job
    lat_handed: list[float] = []
    lat_fresh: list[float] = []
    for r in records:
        key = (r.get("trial"), r.get("segment"), r.get("attempt"))
        if r.get("kind") == "result" and key in intent_t and isinstance(r.get("started"), (int, float)):
            (lat_handed if key in handed else lat_fresh).append(r["started"] - intent_t[key])
    by_trial: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        if r.get("kind") == "result" and r.get("status") == "completed" \
                and isinstance(r.get("started"), (int, float)) and isinstance(r.get("ended"), (int, float)):
            by_trial.setdefault(r["trial"], []).append(r)
    gaps: list[float] = []
    gaps_handed: list[float] = []
    gaps_fresh: list[float] = []
    seg_s = 0.0
    for rs in by_trial.values():
        rs.sort(key=lambda r: r["segment"])
        for r in rs:
            seg_s += r["ended"] - r["started"]
        for a, b in zip(rs, rs[1:]):
            g = b["started"] - a["ended"]
            was_handed = (b["trial"], b["segment"], b["attempt"]) in handed
            gaps.append(g)
            (gaps_handed if was_handed else gaps_fresh).append(g)
    times = [r["time"] for r in records if isinstance(r.get("time"), (int, float))]
    return {
        "makespan_s": (max(times) - min(times)) if times else None,
        "gaps": len(gaps),
        "gap_median_s": pct(gaps, 0.5), "gap_p90_s": pct(gaps, 0.9),
        "handed_over": len(handed), "intents": intents,
        "gap_handed_median_s": pct(gaps_handed, 0.5), "gap_fresh_median_s": pct(gaps_fresh, 0.5),
        "start_handed_median_s": pct(lat_handed, 0.5), "start_fresh_median_s": pct(lat_fresh, 0.5),
        "segment_seconds": seg_s,
    }


def trial_counts(st, max_len: int) -> dict[str, int]:
    trials = list(st.trials.values())
    return {"trials": len(trials),
            "completed_max": sum(1 for t in trials if t.status == "completed" and t.length >= max_len)}


# ----------------------------------------------------------------------------- simulation
def sim_config(mode: str, trials: int, queue_s: float, seed: int) -> dict[str, Any]:
    sim: dict[str, Any] = {"unit_seconds": UNIT_S, "startup_seconds": STARTUP_S,
                           "queue_wait_seconds": queue_s, "duration_noise": NOISE, "workers": GPUS}
    cfg: dict[str, Any] = {
        "name": f"pool-bench-{mode}", "entrypoint": "unused:train",
        "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": MAX_LEN,
                     "max_trials": trials, "max_concurrent_trials": GPUS,
                     "mode": "standard", "divisor": 4},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1},
                            "n": {"type": "int", "minval": 1, "maxval": 64}},
        "reproducibility": {"experiment_seed": seed}, "backend": "simulated",
        "poll_interval_s": POLL_S, "simulated": sim}
    if mode == "continue":
        cfg["continue_in_place"] = True
    elif mode == "pool":
        sim["pool"] = GPUS
    return cfg


def run_sim(mode: str, trials: int, queue_s: float, seed: int, tmp: Path) -> dict[str, Any]:
    cfg = parse_config(sim_config(mode, trials, queue_s, seed), "/tmp")
    exp = ExpDir.create(tmp / f"sim-{mode}-{int(queue_s)}-{seed}")
    t0 = time.perf_counter()
    m = Master(exp, cfg, progress=lambda s: None)
    st = m.run()
    cpu = time.perf_counter() - t0
    recs = read_journal(exp.journal)[0]
    b = m.backend
    out: dict[str, Any] = {"mode": mode, "queue_wait_s": queue_s, "seed": seed,
                           "lifecycle": st.lifecycle, "run_s": cpu,
                           "busy_gpu_h": b.busy_seconds / 3600.0,
                           "held_gpu_h": b.held_seconds / 3600.0}
    out["held_over_busy"] = (b.held_seconds / b.busy_seconds) if b.busy_seconds else None
    out.update(journal_metrics(recs))
    out["train_gpu_h"] = b.train_seconds / 3600.0
    out["held_over_train"] = (b.held_seconds / b.train_seconds) if b.train_seconds else None
    out.update(trial_counts(st, MAX_LEN))
    out["makespan_h"] = out["makespan_s"] / 3600.0 if out["makespan_s"] is not None else None
    shutil.rmtree(exp.root, ignore_errors=True)
    return out


# ----------------------------------------------------------------------------- local (real)
def local_config(mode: str, trials: int, seed: int) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "name": f"pool-bench-local-{mode}", "entrypoint": "model:train",
        "context_dir": str(ROOT / "examples" / "quadratic"),
        "searcher": {"name": "adaptive_asha", "metric": "val_loss", "smaller_is_better": True,
                     "max_length": {"epochs": 64}, "max_trials": trials,
                     "max_concurrent_trials": 2, "mode": "standard", "divisor": 4},
        "hyperparameters": {"x": {"type": "double", "minval": -1.0, "maxval": 1.0},
                            "y": {"type": "double", "minval": -1.0, "maxval": 1.0},
                            "lr": {"type": "log", "minval": -3, "maxval": -1, "base": 10},
                            "optimizer": {"type": "categorical", "vals": ["sgd", "adam"]}},
        "reproducibility": {"experiment_seed": seed}, "backend": "local",
        "poll_interval_s": 0.5, "max_restarts": 2,
        "local": {"gpus": 0, "max_parallel": 2}}
    if mode == "continue":
        cfg["continue_in_place"] = True
    elif mode == "pool":
        cfg["local"]["workers"] = 2
    return cfg


def run_local(mode: str, trials: int, seed: int, tmp: Path) -> dict[str, Any]:
    cfg = parse_config(local_config(mode, trials, seed), ROOT / "examples" / "quadratic")
    exp = ExpDir.create(tmp / f"local-{mode}-{seed}")
    t0 = time.perf_counter()
    st = Master(exp, cfg, progress=lambda s: None).run()
    wall = time.perf_counter() - t0
    recs = read_journal(exp.journal)[0]
    out: dict[str, Any] = {"mode": mode, "seed": seed, "lifecycle": st.lifecycle, "wall_s": wall}
    out.update(journal_metrics(recs))
    out.update(trial_counts(st, 64))
    out["slot_seconds"] = 2 * wall
    return out


# ----------------------------------------------------------------------------- Slurm (real)
SLURM_SLOTS = 4


def slurm_available() -> str | None:
    """None if a Slurm cluster answers, else why not."""
    import subprocess

    if shutil.which("sbatch") is None:
        return "no sbatch on PATH"
    if subprocess.run(["sinfo", "-h"], capture_output=True).returncode:
        return "sinfo fails: start the local cluster with `bash tools/local_slurm.sh start`"
    return None


def slurm_config(mode: str, trials: int, seed: int) -> dict[str, Any]:
    cfg = local_config(mode, trials, seed)
    cfg["name"] = f"poolbench-{mode}-{os.getpid()}-{seed}"
    cfg["backend"] = "slurm"
    cfg["searcher"]["max_concurrent_trials"] = SLURM_SLOTS
    del cfg["local"]
    cfg["slurm"] = {"gpus_per_node": 1, "timeout_min": 10, "poll_min_interval_s": 1,
                    "setup": [f"export PYTHONPATH={ROOT}${{PYTHONPATH:+:$PYTHONPATH}}"]}
    if mode == "pool":
        cfg["slurm"]["workers"] = SLURM_SLOTS
    return cfg


def sacct_held(job_ids: list[str]) -> dict[str, float]:
    """GPU-seconds and job-seconds the jobs held, from sacct (elapsed x allocated GPUs; an
    array's tasks are separate rows). Waits until none of them is still running."""
    import subprocess

    ids = sorted({j for j in job_ids if j})  # array tasks as <array>_<task>: each its own row
    if not ids:
        return {"gpu_s": 0.0, "job_s": 0.0, "jobs": 0}
    rows: list[list[str]] = []
    for _ in range(60):
        out = subprocess.run(["sacct", "-X", "-n", "-P", "-j", ",".join(ids),
                              "-o", "JobID,State,ElapsedRaw,AllocTRES"],
                             capture_output=True, text=True).stdout
        rows = [line.split("|") for line in out.splitlines() if line.strip()]
        if rows and not any(r[1] in ("RUNNING", "PENDING", "COMPLETING") for r in rows):
            break
        time.sleep(1.0)
    gpu_s = job_s = 0.0
    for _jid, _, elapsed, tres in rows:
        gpus = 0
        for part in tres.split(","):
            if part.startswith("gres/gpu="):
                gpus = int(part.split("=")[1])
        job_s += float(elapsed or 0)
        gpu_s += float(elapsed or 0) * gpus
    return {"gpu_s": gpu_s, "job_s": job_s, "jobs": len(rows)}


def run_slurm(mode: str, trials: int, seed: int, tmp: Path) -> dict[str, Any]:
    cfg = parse_config(slurm_config(mode, trials, seed), ROOT / "examples" / "quadratic")
    exp = ExpDir.create(tmp / f"slurm-{mode}-{seed}")
    m = Master(exp, cfg, progress=lambda s: None)
    t0 = time.perf_counter()
    st = m.run()
    wall = time.perf_counter() - t0
    recs = read_journal(exp.journal)[0]
    jobs = [r["job_id"] for r in recs if r.get("kind") == "submitted" and r.get("job_id")]
    jobs += [j for r in recs if r.get("kind") == "workers_submitted" for j in r["jobs"].values()]
    held = sacct_held(jobs)
    out: dict[str, Any] = {"mode": mode, "seed": seed, "lifecycle": st.lifecycle, "wall_s": wall,
                           "sbatch_calls": m.backend.stats.get("sbatch"),
                           "held_gpu_s": held["gpu_s"], "jobs": held["jobs"]}
    out.update(journal_metrics(recs))
    out.update(trial_counts(st, 64))
    out["held_over_used"] = held["gpu_s"] / out["segment_seconds"] if out["segment_seconds"] else None
    return out


# ----------------------------------------------------------------------------- output
def fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def med_rows(runs: list[dict[str, Any]], keys: list[str], group: list[str]) -> list[dict[str, Any]]:
    out: dict[tuple, list[dict[str, Any]]] = {}
    for r in runs:
        out.setdefault(tuple(r[g] for g in group), []).append(r)
    rows = []
    for k, rs in out.items():
        row = {g: v for g, v in zip(group, k)}
        row["runs"] = len(rs)
        for key in keys:
            xs = [r[key] for r in rs if isinstance(r.get(key), (int, float))]
            row[key] = statistics.median(xs) if xs else None
        rows.append(row)
    return rows


SIM_KEYS = ["makespan_h", "held_gpu_h", "busy_gpu_h", "held_over_busy", "train_gpu_h",
            "held_over_train", "gap_median_s",
            "gap_p90_s", "completed_max", "trials",
            "handed_over", "intents", "start_handed_median_s", "start_fresh_median_s", "run_s"]
LOCAL_KEYS = ["wall_s", "gap_median_s", "gap_p90_s", "start_handed_median_s",
              "start_fresh_median_s", "segment_seconds", "slot_seconds",
              "completed_max", "trials", "handed_over", "intents"]


def print_sim(rows: list[dict[str, Any]], trials: int, seeds: int) -> None:
    print(f"\nSimulation: {GPUS} GPUs, adaptive_asha standard, divisor 4, {trials} trials "
          f"({GPUS} concurrent), max length {MAX_LEN} x {UNIT_S:.0f} s, start-up {STARTUP_S:.0f} s "
          f"per job, duration noise sigma {NOISE}, poll {POLL_S:.0f} s; median of {seeds} seed(s)")
    print(f"{'queue':>6} {'mode':<12} {'makespan h':>10} {'held GPU-h':>10} {'busy GPU-h':>10} "
          f"{'held/busy':>9} {'train GPU-h':>11} {'held/train':>10} {'gap med s':>9} {'gap p90 s':>9} "
          f"{'handed':>9} {'done@max':>8}")
    for r in rows:
        print(f"{r['queue_wait_s'] / 60:>5.0f}m {r['mode']:<12} {fmt(r['makespan_h'], '10.2f')} "
              f"{fmt(r['held_gpu_h'], '10.1f')} {fmt(r['busy_gpu_h'], '10.1f')} "
              f"{fmt(r['held_over_busy'], '9.2f')} {fmt(r['train_gpu_h'], '11.1f')} "
              f"{fmt(r['held_over_train'], '10.2f')} {fmt(r['gap_median_s'], '9.0f')} "
              f"{fmt(r['gap_p90_s'], '9.0f')} "
              f"{fmt(r['handed_over'], '4.0f')}/{fmt(r['intents'], '<4.0f')} "
              f"{fmt(r['completed_max'], '8.0f')}")
    print("held: GPU-hours jobs held a GPU (start-up and waiting included, queueing not); busy: "
          "the simulator's busy_seconds (in segments; a fresh job's start-up counts as busy); "
          "train: the simulator's train_seconds (busy less the start-ups: results' ended - started)")
    print("gap: a result's `ended` -> the same trial's next result's `started` (journal; "
          "`started` after the job's start-up, as in a real job); handed: segments handed to a "
          "waiting job / all intents; done@max: trials trained to max length")


def print_local(rows: list[dict[str, Any]], trials: int, seeds: int) -> None:
    print(f"\nThis machine, local backend: examples/quadratic model:train (30 ms sleep per epoch), "
          f"{trials} trials, max 64 epochs, 2 slots, poll 0.5 s; median of {seeds} run(s)")
    print(f"{'mode':<12} {'wall s':>7} {'gap med s':>9} {'gap p90 s':>9} {'start handed':>12} "
          f"{'start fresh':>11} {'in segments s':>13} "
          f"{'slot s':>7} {'handed':>9} {'done@max':>8}")
    for r in rows:
        print(f"{r['mode']:<12} {fmt(r['wall_s'], '7.1f')} {fmt(r['gap_median_s'], '9.3f')} "
              f"{fmt(r['gap_p90_s'], '9.3f')} {fmt(r['start_handed_median_s'], '12.3f')} "
              f"{fmt(r['start_fresh_median_s'], '11.3f')} {fmt(r['segment_seconds'], '13.1f')} "
              f"{fmt(r['slot_seconds'], '7.1f')} "
              f"{fmt(r['handed_over'], '4.0f')}/{fmt(r['intents'], '<4.0f')} "
              f"{fmt(r['completed_max'], '8.0f')}")
    print("gap: a result's `ended` -> the same trial's next result's `started` (includes the "
          "searcher's wait before promoting it); start handed / fresh: median intent journaled -> "
          "`started`, for segments handed to a waiting job / run in a new job (process start, "
          "imports); in segments: sum of started -> ended; slot s: 2 x wall")


SLURM_KEYS = ["wall_s", "gap_median_s", "gap_p90_s", "start_handed_median_s",
              "start_fresh_median_s", "segment_seconds", "held_gpu_s", "held_over_used",
              "sbatch_calls", "jobs", "completed_max", "trials", "handed_over", "intents"]


def print_slurm(rows: list[dict[str, Any]], trials: int, seeds: int) -> None:
    print(f"\nLocal Slurm cluster: examples/quadratic model:train (30 ms sleep per epoch), "
          f"{trials} trials, max 64 epochs, {SLURM_SLOTS} GPUs (1 per job), poll 0.5 s; median of "
          f"{seeds} run(s)")
    print(f"{'mode':<12} {'wall s':>7} {'gap med s':>9} {'gap p90 s':>9} {'start handed':>12} "
          f"{'start fresh':>11} {'used GPU-s':>10} {'held GPU-s':>10} {'held/used':>9} "
          f"{'sbatch':>6} {'jobs':>5} {'handed':>9} {'done@max':>8}")
    for r in rows:
        print(f"{r['mode']:<12} {fmt(r['wall_s'], '7.1f')} {fmt(r['gap_median_s'], '9.3f')} "
              f"{fmt(r['gap_p90_s'], '9.3f')} {fmt(r['start_handed_median_s'], '12.3f')} "
              f"{fmt(r['start_fresh_median_s'], '11.3f')} {fmt(r['segment_seconds'], '10.1f')} "
              f"{fmt(r['held_gpu_s'], '10.1f')} {fmt(r['held_over_used'], '9.2f')} "
              f"{fmt(r['sbatch_calls'], '6.0f')} {fmt(r['jobs'], '5.0f')} "
              f"{fmt(r['handed_over'], '4.0f')}/{fmt(r['intents'], '<4.0f')} "
              f"{fmt(r['completed_max'], '8.0f')}")
    print("used: GPU-seconds inside segments (journal); held: sacct elapsed x GPUs of every job "
          "(start-up, imports and waiting included, queueing not); sbatch: calls (an array is "
          "one); jobs: sacct rows (array tasks count one each)")


def keep_skipped_parts(doc: dict[str, Any], path: Path, ran: dict[str, bool]) -> list[str]:
    """Parts not run this time (``--no-sim``, ``--no-local``, no ``--slurm``) keep their rows,
    runs and config from the existing file, so one part can be re-measured alone."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    kept = []
    for part, did in ran.items():
        if did or not old.get(f"{part}_rows"):
            continue
        for k in (f"{part}_rows", f"{part}_runs", f"{part}_config"):
            doc[k] = old.get(k)
        kept.append(part)
    return kept


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer trials, one queue wait, 1 local run")
    ap.add_argument("--trials", type=int, help="simulated trials (default 400; 128 with --quick)")
    ap.add_argument("--seeds", type=int, help="simulated seeds (default 10; 2 with --quick)")
    ap.add_argument("--queue-waits", help="minutes, comma-separated (default 0,5,30; 30 with --quick)")
    ap.add_argument("--local-trials", type=int, help="local trials (default 24; 12 with --quick)")
    ap.add_argument("--local-repeats", type=int, help="local runs per mode (default 1)")
    ap.add_argument("--no-local", action="store_true", help="skip the real local comparison")
    ap.add_argument("--slurm", action="store_true",
                    help="also run the three modes on the local Slurm cluster")
    ap.add_argument("--slurm-trials", type=int, help="Slurm trials (default 32; 16 with --quick)")
    ap.add_argument("--no-sim", action="store_true", help="skip the simulation")
    ap.add_argument("--out", help="JSON path (default benchmarks/results/worker_pool[_quick].json)")
    a = ap.parse_args()
    trials = a.trials or (128 if a.quick else 400)
    seeds = a.seeds or (2 if a.quick else 10)
    waits = [float(x) * 60 for x in (a.queue_waits or ("30" if a.quick else "0,5,30")).split(",")]
    ltrials = a.local_trials or (12 if a.quick else 24)
    lreps = a.local_repeats or 1
    strials = a.slurm_trials or (16 if a.quick else 32)
    if a.slurm:
        why = slurm_available()
        if why:
            raise SystemExit(f"--slurm: {why}")
    if a.no_sim:
        waits = []
    t_all = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="worker_pool_bench_"))
    sim_runs: list[dict[str, Any]] = []
    local_runs: list[dict[str, Any]] = []
    slurm_runs: list[dict[str, Any]] = []
    try:
        for q in waits:
            for seed in range(seeds):
                for mode in MODES:
                    r = run_sim(mode, trials, q, 11 + seed, tmp)
                    sim_runs.append(r)
                    print(f"  sim queue {q / 60:.0f} min seed {seed} {mode}: makespan "
                          f"{r['makespan_h']:.2f} h, held/used {fmt(r['held_over_busy'], '.2f')}, "
                          f"gap median {fmt(r['gap_median_s'], '.0f')} s ({r['run_s']:.1f} s to run)",
                          file=sys.stderr, flush=True)
        if not a.no_local:
            for rep in range(lreps):
                for mode in MODES:
                    r = run_local(mode, ltrials, 42 + rep, tmp)
                    local_runs.append(r)
                    print(f"  local {mode} run {rep}: wall {r['wall_s']:.1f} s, gap median "
                          f"{fmt(r['gap_median_s'], '.3f')} s", file=sys.stderr, flush=True)
        if a.slurm:
            for rep in range(lreps):
                for mode in MODES:
                    r = run_slurm(mode, strials, 42 + rep, tmp)
                    slurm_runs.append(r)
                    print(f"  slurm {mode} run {rep}: wall {r['wall_s']:.1f} s, gap median "
                          f"{fmt(r['gap_median_s'], '.3f')} s, held/used "
                          f"{fmt(r['held_over_used'], '.2f')}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sim_rows = med_rows(sim_runs, SIM_KEYS, ["queue_wait_s", "mode"])
    local_rows = med_rows(local_runs, LOCAL_KEYS, ["mode"])
    slurm_rows = med_rows(slurm_runs, SLURM_KEYS, ["mode"])
    if sim_rows:
        print_sim(sim_rows, trials, seeds)
    if local_rows:
        print_local(local_rows, ltrials, lreps)
    if slurm_rows:
        print_slurm(slurm_rows, strials, lreps)
    total = time.perf_counter() - t_all
    print(f"\ntotal {total:.0f} s")
    name = "worker_pool_quick.json" if a.quick else "worker_pool.json"
    out = Path(a.out) if a.out else HERE / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": "worker_pool", "quick": a.quick, "python": platform.python_version(),
        "cpus": os.cpu_count(), "load_avg": os.getloadavg(), "machine": platform.platform(),
        "sim_config": {"gpus": GPUS, "trials": trials, "seeds": seeds, "queue_waits_s": waits,
                       "startup_s": STARTUP_S, "duration_noise": NOISE, "unit_s": UNIT_S,
                       "max_length": MAX_LEN, "poll_s": POLL_S,
                       "searcher": "adaptive_asha standard, divisor 4"},
        "local_config": {"trials": ltrials, "repeats": lreps, "slots": 2, "poll_s": 0.5,
                         "model": "examples/quadratic model:train"},
        "slurm_config": {"trials": strials, "repeats": lreps, "gpus": SLURM_SLOTS, "poll_s": 0.5,
                         "model": "examples/quadratic model:train"} if a.slurm else None,
        "sim_rows": sim_rows, "local_rows": local_rows, "slurm_rows": slurm_rows,
        "sim_runs": sim_runs, "local_runs": local_runs, "slurm_runs": slurm_runs,
        "total_s": total}
    kept = keep_skipped_parts(doc, out, {"sim": bool(waits), "local": not a.no_local,
                                         "slurm": a.slurm})
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"wrote {out}" + (f" (kept the earlier {', '.join(kept)} part(s))" if kept else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

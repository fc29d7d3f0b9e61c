"""Scheduler overhead of the Slurm backend on the local cluster (``bash tools/local_slurm.sh start``).

    python benchmarks/slurm_overhead.py [--trials 80] [--unit-s 0.25] [--poll-interval 1]
                                        [--poll-min-interval 2] [--concurrency 10 50]

Runs the real master in this process (``Master(exp, cfg).run()``) on the Slurm backend, once per
``--concurrency`` (max_concurrent_trials: jobs in flight), with adaptive_asha (80 trials, rungs
1/4/16 units: ~105 segments of 0.25 s per unit). Reports per run:

- sbatch calls per segment (bursts become one ``sbatch --array``);
- sacct + squeue calls per minute (``SlurmBackend.stats``): bounded by ``poll_min_interval_s``,
  so it must not grow with the number of jobs in flight;
- the slot idle gap: for each segment result, the time from the segment's end (the job's
  ``ended``) to the next job's submission (the journal's next ``submitted`` record), median and
  p95. Target: median < poll_interval_s + 1 s. Its parts: segment end -> result journaled (the
  wait for the master's next poll), and the same gap restricted to results that the master
  turned into a submission in the same step (the rest of the p95 is the searcher waiting for a
  promotable trial, with nothing to submit, near the end of the search).

Writes benchmarks/results/slurm_overhead.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from asha_hpc.config import parse_config  # noqa: E402
from asha_hpc.master.loop import Master  # noqa: E402
from asha_hpc.protocol.expdir import ExpDir  # noqa: E402
from asha_hpc.protocol.journal import read_journal  # noqa: E402
from asha_hpc.testing.invariants import check_invariants  # noqa: E402

MODEL = '''
import json, time

def train(trial):
    hp = trial.hparams
    length = 0
    if trial.latest_checkpoint:
        length = json.loads((trial.latest_checkpoint / "s.json").read_text())["length"]
    for seg in trial.segments():
        time.sleep(hp["unit_s"] * (seg.length - length))
        length = seg.length
        with trial.save_checkpoint() as p:
            (p / "s.json").write_text(json.dumps({"length": length}))
        seg.report(loss=(hp["x"] - 0.3) ** 2 + 1.0 / (1 + length))
'''


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def idle_gaps(recs: list[dict[str, Any]]) -> list[float]:
    """Per result: the next ``submitted`` record's time minus the segment's end."""
    gaps = []
    for i, r in enumerate(recs):
        if r["kind"] != "result" or not isinstance(r.get("ended"), (int, float)):
            continue
        nxt = next((s for s in recs[i + 1:] if s["kind"] == "submitted"), None)
        if nxt is not None:
            gaps.append(nxt["time"] - r["ended"])
    return gaps


def gap_parts(recs: list[dict[str, Any]], poll_interval_s: float) -> dict[str, list[float]]:
    """Where the idle gap goes: ``inbox`` = segment end -> result journaled (waiting for the
    master's next poll); ``react`` = segment end -> submission, only for results whose next
    intent was journaled in the same master step (the master had work to hand out: the gap
    without the searcher's own waits for promotable trials)."""
    inbox, react = [], []
    for i, r in enumerate(recs):
        if r["kind"] != "result" or not isinstance(r.get("ended"), (int, float)):
            continue
        inbox.append(r["time"] - r["ended"])
        intent = next((s for s in recs[i + 1:] if s["kind"] == "intent"), None)
        sub = next((s for s in recs[i + 1:] if s["kind"] == "submitted"), None)
        if intent is not None and sub is not None and intent["time"] - r["time"] < 0.5 * poll_interval_s:
            react.append(sub["time"] - r["ended"])
    return {"inbox": inbox, "react": react}


def in_flight(recs: list[dict[str, Any]]) -> dict[str, float]:
    """Jobs submitted and not yet ended (result or job_dead), sampled at every record."""
    live, samples = set(), []
    for r in recs:
        key = (r.get("trial"), r.get("segment"), r.get("attempt"))
        if r["kind"] == "submitted":
            live.add(key)
        elif r["kind"] in ("result", "job_dead", "submit_failed"):
            live.discard(key)
        samples.append(len(live))
    return {"max": max(samples, default=0), "mean": statistics.fmean(samples) if samples else 0}


def run(tmp: Path, concurrency: int, a: argparse.Namespace) -> dict[str, Any]:
    ctx = tmp / f"c{concurrency}"
    ctx.mkdir()
    (ctx / "model.py").write_text(MODEL)
    cfg = parse_config({
        "name": f"bench{concurrency}-{int(time.time()) % 100000}",
        "entrypoint": "model:train",
        "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 16,
                     "max_trials": a.trials, "max_concurrent_trials": concurrency,
                     "mode": "aggressive", "divisor": 4},
        "hyperparameters": {"x": {"type": "double", "minval": -1, "maxval": 1},
                            "unit_s": a.unit_s},
        "reproducibility": {"experiment_seed": 1},
        "backend": "slurm",
        "poll_interval_s": a.poll_interval,
        # a job per segment: the scheduler's load is what this measures (workers: auto would
        # run segments in warm pool workers, with one sbatch for all)
        "slurm": {"timeout_min": 10, "poll_min_interval_s": a.poll_min_interval, "workers": 0,
                  "setup": [f"export PYTHONPATH={REPO}${{PYTHONPATH:+:$PYTHONPATH}}"]},
    }, ctx, source=str(ctx / "bench.yaml"))
    exp = ExpDir.create(ctx / "exp")
    master = Master(exp, cfg, progress=lambda line: None)
    t0 = time.time()
    st = master.run()
    wall = time.time() - t0
    recs = read_journal(exp.journal)[0]
    bad = check_invariants(cfg, recs)
    if st.lifecycle != "completed" or bad:
        raise SystemExit(f"concurrency {concurrency}: search {st.lifecycle}; {bad}")
    stats = dict(master.backend.stats)
    segments = sum(1 for r in recs if r["kind"] == "result")
    minutes = wall / 60.0
    gaps = idle_gaps(recs)
    parts = gap_parts(recs, a.poll_interval)
    flight = in_flight(recs)
    return {
        "max_concurrent_trials": concurrency,
        "segments": segments,
        "wall_s": round(wall, 1),
        "jobs_in_flight_max": flight["max"],
        "jobs_in_flight_mean": round(flight["mean"], 1),
        "sbatch_calls": stats["sbatch"],
        "sbatch_per_segment": round(stats["sbatch"] / max(segments, 1), 3),
        "sacct_calls": stats["sacct"],
        "squeue_calls": stats["squeue"],
        "polls": stats["polls"],
        "query_calls_per_min": round((stats["sacct"] + stats["squeue"]) / minutes, 1),
        "query_calls_per_min_bound": round(2 * 60.0 / a.poll_min_interval, 1),
        "idle_gap_median_s": round(statistics.median(gaps), 3),
        "idle_gap_p95_s": round(percentile(gaps, 0.95), 3),
        "idle_gap_max_s": round(max(gaps), 3),
        "idle_gap_samples": len(gaps),
        "idle_gap_target_s": a.poll_interval + 1.0,
        "end_to_journaled_median_s": round(statistics.median(parts["inbox"]), 3),
        "same_step_gap_median_s": round(statistics.median(parts["react"]), 3),
        "same_step_gap_p95_s": round(percentile(parts["react"], 0.95), 3),
        "same_step_gap_samples": len(parts["react"]),
        "scheduler_errors": stats["sacct_errors"] + stats["squeue_errors"] + stats["submit_errors"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=80)
    ap.add_argument("--unit-s", type=float, default=0.25, help="job seconds per training unit")
    ap.add_argument("--poll-interval", type=float, default=1.0, help="poll_interval_s")
    ap.add_argument("--poll-min-interval", type=float, default=2.0,
                    help="slurm.poll_min_interval_s (sacct/squeue at most this often)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[10, 50])
    a = ap.parse_args()
    if shutil.which("sbatch") is None or subprocess.run(["sinfo", "-h"], capture_output=True).returncode:
        raise SystemExit("no Slurm cluster: start one with `bash tools/local_slurm.sh start`")
    rows = []
    with tempfile.TemporaryDirectory(prefix="asha-slurm-bench-", dir="/tmp") as tmp:
        for c in a.concurrency:
            rows.append(run(Path(tmp), c, a))
            print(f"# concurrency {c}: done in {rows[-1]['wall_s']} s", file=sys.stderr)
    keys = [k for k in rows[0] if k != "max_concurrent_trials"]
    width = max(len(k) for k in keys)
    print(f"{'max_concurrent_trials'.ljust(width)}  "
          + "  ".join(f"{r['max_concurrent_trials']:>8}" for r in rows))
    for k in keys:
        print(f"{k.ljust(width)}  " + "  ".join(f"{r[k]:>8}" for r in rows))
    ok_gap = all(r["idle_gap_median_s"] < r["idle_gap_target_s"] for r in rows)
    cpm = [r["query_calls_per_min"] for r in rows]
    flat = all(r["query_calls_per_min"] <= r["query_calls_per_min_bound"] for r in rows)
    print(f"\nidle gap median < poll_interval_s + 1 s: {'yes' if ok_gap else 'NO'}; "
          f"sacct+squeue calls/min {cpm} (bound {rows[0]['query_calls_per_min_bound']}, "
          f"independent of jobs in flight): {'yes' if flat else 'NO'}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "slurm_overhead.json").write_text(json.dumps({
        "config": {"trials": a.trials, "unit_s": a.unit_s, "poll_interval_s": a.poll_interval,
                   "poll_min_interval_s": a.poll_min_interval, "searcher": "adaptive_asha "
                   "aggressive divisor 4, rungs 1/4/16 units"},
        "runs": rows, "idle_gap_target_met": ok_gap, "polling_bounded": flat}, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Broken nodes: what a node that fails every job costs a search, with the master's rules
(master/nodes.py: retries go elsewhere, a node is excluded on evidence) and without them.

    python benchmarks/broken_nodes.py [--seeds 10]

Simulated searches (adaptive_asha, 40 trials, 8 at a time, max_length 64, max_restarts 5 as in
Determined, 2% of attempts crash anyway) on a cluster of N nodes, the first B of them broken:
every segment placed there fails 5 s after its 20 s start-up with a CUDA error, so they are
free first and the least-busy placement (Slurm's default fills the lowest-named idle nodes
first) keeps feeding them. A job per segment, and a pool of 4 workers. Rows "die": every job
placed on a broken node ends before its code runs and sends nothing (a node without the shared
mount; only the scheduler knows where it ran), so a pool job there runs no trial at all. The
"all" rows: code (or, "die", an environment) that fails on every node, which must still stop
the search within a few jobs; a search still running after LIMIT_H virtual hours is stopped
there and counted as not completed.

Columns, summed over the seeds: searches that completed, trials failed for good, attempts
that failed (a segment's error, or a job that ended without a result), broken nodes excluded /
healthy nodes excluded, the median makespan (virtual hours). "off": the same master with the
rules switched off (no retry avoids a node, no node is excluded, fail-fast as before, a pool
job that dies before its code is replaced at once). Writes benchmarks/results/broken_nodes.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asha_hpc.backends.simulated import SimulatedBackend  # noqa: E402
from asha_hpc.config import parse_config  # noqa: E402
from asha_hpc.master import nodes as nodes_mod  # noqa: E402
from asha_hpc.master.loop import Master  # noqa: E402
from asha_hpc.protocol.expdir import ExpDir  # noqa: E402
from asha_hpc.protocol.journal import read_journal  # noqa: E402
from asha_hpc.testing.invariants import check_invariants  # noqa: E402

SCENARIOS: list[tuple[int, int | str, str]] = [
    (2, 1, "fail"), (8, 1, "fail"), (8, 2, "fail"), (16, 3, "fail"), (8, 0, "fail"),
    (8, "all", "fail"), (8, 1, "die"), (8, 2, "die"), (8, "all", "die")]
LIMIT_H = 24.0


def config(seed: int, nodes: int, broken: int, pool: int, how: str = "fail"):
    return parse_config({
        "name": "broken", "entrypoint": "unused:train",
        "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 64,
                     "max_trials": 40, "max_concurrent_trials": 8, "mode": "standard",
                     "divisor": 4},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
        "reproducibility": {"experiment_seed": seed}, "backend": "simulated",
        "poll_interval_s": 5, "max_restarts": 5,
        "simulated": {"unit_seconds": 10, "duration_noise": 0.5, "failure_rate": 0.02,
                      "startup_seconds": 20, "nodes": nodes, "broken_nodes": broken,
                      "pool": pool, "broken_how": how}}, "/tmp")


def one(seed: int, nodes: int, broken: int | str, pool: int, how: str = "fail") -> dict:
    cfg = config(seed, nodes, 0 if broken == "all" else int(broken), pool, how)
    with tempfile.TemporaryDirectory() as tmp:
        exp = ExpDir.create(Path(tmp) / "exp")
        (exp.root / "experiment.yaml").write_text(json.dumps(cfg.to_dict()))
        backend = SimulatedBackend.from_config(cfg, exp.root)
        if broken == "all":  # the code fails everywhere
            backend.broken = set(backend.hosts)
        m = Master(exp, cfg, backend=backend, progress=lambda s: None)
        if m.start():
            while m.step() and backend.clock.t < LIMIT_H * 3600:
                m._sleep(cfg.poll_interval_s)
        m.close()
        st = m.state
        assert st is not None
        recs = read_journal(exp.journal)[0]
        return {
            **outcome(cfg, st, recs),
            "pool_jobs_died": sum(1 for r in recs if r["kind"] == "worker_gone"
                                  and r.get("unready")),
            "excluded_broken": len(set(st.nodes.bad) & backend.broken),
            "excluded_healthy": len(set(st.nodes.bad) - backend.broken),
            "hours": backend.clock.t / 3600.0,
        }


def outcome(cfg, st, recs: list[dict]) -> dict:
    """What every row counts of one search (its journal checked first): whether it completed,
    trials failed for good, attempts that failed (a segment's error, or a job that ended
    without a result)."""
    problems = check_invariants(cfg, recs)
    assert not problems, problems
    return {
        "completed": st.lifecycle == "completed",
        "failed_trials": sum(t.status == "failed" for t in st.trials.values()),
        "failed_attempts": sum(1 for r in recs if r["kind"] == "result"
                               and r["status"] == "error" or r["kind"] == "job_dead"),
    }


class Off:
    """The rules switched off: no retry avoids a node, none is excluded, fail-fast as before."""

    def __enter__(self):
        h = nodes_mod.NodeHealth
        self.saved = (h.avoid, h._judge, h._judge_jobs, h.elsewhere,
                      Master._pool_hopeless, Master._pool_room)
        h.avoid = lambda self, trial=None: set(self.bad)  # type: ignore[method-assign]
        h._judge = lambda self, host: None  # type: ignore[method-assign]
        h._judge_jobs = lambda self, host: None  # type: ignore[method-assign]
        h.elsewhere = lambda self, hosts: False  # type: ignore[method-assign]
        Master._pool_hopeless = lambda self: False  # type: ignore[method-assign]
        Master._pool_room = lambda self, jobs: jobs  # type: ignore[method-assign]

    def __exit__(self, *exc):
        h = nodes_mod.NodeHealth
        (h.avoid, h._judge, h._judge_jobs, h.elsewhere,  # type: ignore[method-assign]
         Master._pool_hopeless, Master._pool_room) = self.saved  # type: ignore[method-assign]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    args = ap.parse_args()
    rows = []
    print("| nodes (broken) | how | jobs | rules | searches completed | trials failed for good | "
          "attempts failed | pool jobs died before their code | broken / healthy nodes "
          "excluded | makespan h (median) |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for nodes, broken, how in SCENARIOS:
        for pool in (0, 4):
            for rules in ("on", "off"):
                if rules == "off":
                    with Off():
                        runs = [one(s, nodes, broken, pool, how) for s in range(args.seeds)]
                else:
                    runs = [one(s, nodes, broken, pool, how) for s in range(args.seeds)]
                total = {k: sum(r[k] for r in runs) for k in
                         ("completed", "failed_trials", "failed_attempts", "pool_jobs_died",
                          "excluded_broken", "excluded_healthy")}
                done = [r["hours"] for r in runs if r["completed"]]
                row = dict(nodes=nodes, broken=broken, how=how, pool=pool, rules=rules,
                           seeds=args.seeds, **total,
                           hours_median=statistics.median(done) if done else None)
                rows.append(row)
                hours = f"{row['hours_median']:.2f}" if done else "-"
                print(f"| {nodes} ({broken}) | {how} | {'pool of 4' if pool else 'a job each'} | "
                      f"{rules} | {total['completed']}/{args.seeds} | {total['failed_trials']} | "
                      f"{total['failed_attempts']} | {total['pool_jobs_died']} | "
                      f"{total['excluded_broken']} / {total['excluded_healthy']} | {hours} |",
                      flush=True)
    out = Path(__file__).resolve().parent / "results" / "broken_nodes.json"
    out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()

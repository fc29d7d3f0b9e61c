"""Fault injection: every fault of issue 16 (and the master kills before it), N times each.

    python benchmarks/chaos.py [--reps 5] [--kills 40]

Scenarios (simulated searches of 60 trials unless said; the simulated backend plays the
cluster, so every applied metric can be checked against the hyperparameters that made it):

  master killed        the master is killed --kills times at failpoints (before/after journal
                       appends, after submissions and hand-overs, after inbox removals), with a
                       torn or foreign file dropped in while it is dead; resumed each time
  split brain          master A is frozen mid-search, B takes over; A wakes, is fenced at its
                       next write, and two late records it wrote between check and write land
  full disk            a quarter of the segments end with ENOSPC (disk_full) until the disk has
                       room again: they must count nothing and fail no trial
  racing run           two `asha-hpc run` at the same instant on one fresh folder, different
                       seeds and spaces (real processes)
  hostile inbox        ready messages naming /tmp/... and ../.., a forged result with a foreign
                       checkpoint, 200 garbage files, dropped in while the search runs
  broken node          "master killed" on 8 nodes, one of which fails every segment sent to it
                       (master/nodes.py excludes it; each resume derives that from the journal)

Columns: records lost (results a job published that the journal lacks), applied twice,
misattributed (an applied metric that is not what its trial's hyperparameters give),
journal readable (no warning, replay works), trials failed for good, nodes misjudged (broken
ones not excluded, healthy ones excluded). Target: all zeros.
Writes benchmarks/results/chaos.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from asha_hpc.backends.simulated import SimulatedBackend  # noqa: E402
from asha_hpc.config import load_config, parse_config  # noqa: E402
from asha_hpc.master import loop as master_mod  # noqa: E402
from asha_hpc.master.loop import Master  # noqa: E402
from asha_hpc.protocol.expdir import ExpDir, atomic_write_json  # noqa: E402
from asha_hpc.protocol.records import JobDead, Stopped  # noqa: E402
from asha_hpc.testing.chaos import Audit, audit, run_chaos  # noqa: E402


def config(seed: int, trials: int = 60, failure_rate: float = 0.05, **sim):
    return parse_config({
        "name": "chaos", "entrypoint": "unused:train",
        "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 64,
                     "max_trials": trials, "max_concurrent_trials": 8, "mode": "standard",
                     "divisor": 4},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
        "reproducibility": {"experiment_seed": seed}, "backend": "simulated",
        "poll_interval_s": 5, "max_restarts": 2,
        "simulated": {"unit_seconds": 10, "duration_noise": 0.5, "failure_rate": failure_rate,
                      **sim}},
        "/tmp")


def _finish(m: Master) -> None:
    while m.step():
        m.clock.sleep(m.cfg.poll_interval_s)
    m.close()


def master_killed(seed: int, d: Path, kills: int, **sim) -> Audit:
    cfg = config(seed, **sim)
    holder = {}
    real = SimulatedBackend.__init__

    def keep(self, *a, **k):  # the backend run_chaos makes: audited afterwards
        real(self, *a, **k)
        holder["b"] = self

    SimulatedBackend.__init__ = keep  # type: ignore[method-assign]
    try:
        rep = run_chaos(cfg, d, kills=kills, seed=seed)
    finally:
        SimulatedBackend.__init__ = real  # type: ignore[method-assign]
    a = audit(cfg, ExpDir(d / "exp"), holder["b"])
    a.lost = max(a.lost, rep.results_lost)
    return a


def broken_node(seed: int, d: Path, kills: int) -> Audit:
    """Master kills on a cluster of 8 nodes, one broken: the exclusion is derived from the
    journal again at each resume, and must come out the same: that node, no other."""
    return master_killed(seed, d, kills, nodes=8, broken_nodes=1, startup_seconds=20)


def _midway(seed: int, d: Path, steps: int):
    """A simulated search without failures, its master ``steps`` polls in."""
    cfg = config(seed, failure_rate=0.0)
    exp = ExpDir.create(d / "exp")
    m = Master(exp, cfg, progress=lambda s: None)
    m.start()
    for _ in range(steps):
        m.step()
        m.clock.sleep(cfg.poll_interval_s)
    return cfg, exp, m


def split_brain(seed: int, d: Path) -> Audit:
    cfg, exp, a = _midway(seed, d, 10 + seed % 7)
    b = Master(exp, cfg, backend=a.backend, force=True, progress=lambda s: None)
    b.start()
    try:
        a._record(Stopped(reason="woke up"))  # fenced: nothing is written
        raise AssertionError("the stale master was not fenced")
    except master_mod.AshaError:
        pass
    a.journal.fence = None  # frozen between its check and its write: the records land
    live = b.state.live()
    if live:
        t = live[0]
        a._record(JobDead(trial=t.id, segment=t.segment, attempt=t.attempt, job_id=t.job_id,
                          state="failed", counts=True))
    a._record(Stopped(reason="late"))
    a.journal.close()
    _finish(b)
    return audit(cfg, exp, b.backend)  # type: ignore[arg-type]


def full_disk(seed: int, d: Path) -> Audit:
    cfg = config(seed, failure_rate=0.0)
    exp = ExpDir.create(d / "exp")
    backend = SimulatedBackend(exp.root, cfg.simulated, seed=cfg.experiment_seed)
    real = backend._publish
    n = [0]

    def publish(job, spec, extra):  # every 4th result: the disk was full when it saved
        n[0] += 1
        if n[0] % 4:
            return real(job, spec, extra)
        backend.published.remove((spec.trial_id, spec.segment, spec.attempt))
        atomic_write_json(exp.inbox / f"{spec.key}.result.json", {
            "type": "result", "trial": spec.trial_id, "segment": spec.segment,
            "attempt": spec.attempt, "status": "error", "length": spec.length,
            "error": "OSError: [Errno 28] No space left on device",
            "disk_full": {"path": str(exp.trial_dir(spec.trial_id)), "quota": False, "free": 0}},
            durable=False)

    backend._publish = publish  # type: ignore[method-assign]
    st = Master(exp, cfg, backend=backend, progress=lambda s: None).run()
    a = audit(cfg, exp, backend)
    if st.lifecycle != "completed":
        a.notes.append(f"ended {st.lifecycle}")
    a.failed += sum(t.restarts for t in st.trials.values())  # a full disk counts nothing
    return a


def racing_run(seed: int, d: Path) -> Audit:
    raw = {"name": "race", "entrypoint": "unused:train",
           "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 16,
                        "max_trials": 12, "max_concurrent_trials": 4, "divisor": 4},
           "backend": "simulated", "simulated": {"unit_seconds": 10}}
    paths = []
    for i, (opt, hi) in enumerate((("adam", 1.0), ("sgd", 5.0))):
        c = dict(raw, reproducibility={"experiment_seed": seed * 10 + i},
                 hyperparameters={"x": {"type": "double", "minval": 0, "maxval": hi}, "opt": opt})
        paths.append(d / f"c{i}.yaml")
        paths[-1].write_text(yaml.safe_dump(c))
    run = d / "run"
    procs = [subprocess.Popen([sys.executable, "-m", "asha_hpc.cli", "run", str(p), "--exp-dir",
                               str(run)], stderr=subprocess.DEVNULL) for p in paths]
    codes = sorted(p.wait() for p in procs)
    cfg = load_config(run / "experiment.yaml")
    a = audit(cfg, ExpDir(run), SimulatedBackend(run, cfg.simulated, seed=cfg.experiment_seed))
    a.lost = 0  # no backend object here: the winner's own run is audited by its metrics
    if codes != [0, 1]:
        a.notes.append(f"exit codes {codes}")
        a.readable = False
    return a


def hostile_inbox(seed: int, d: Path) -> Audit:
    cfg, exp, m = _midway(seed, d, 5)
    bodies = {"r1.json": {"type": "ready", "worker": str(d / "outside"), "slot": 0},
              "r2.json": {"type": "ready", "worker": "../../escaped", "slot": 0},
              "forged.json": {"type": "result", "trial": 1, "segment": 0, "attempt": 0,
                              "status": "completed", "metrics": {"loss": -1.0}, "length": 1,
                              "checkpoint": "/etc"}}
    for name, body in bodies.items():
        (exp.inbox / name).write_text(json.dumps(body))
    for i in range(200):
        (exp.inbox / f"garbage-{i}.json").write_text('{"type": "res')
    _finish(m)
    a = audit(cfg, exp, m.backend)  # type: ignore[arg-type]
    escaped = [p for p in (d / "outside", d.parent / "escaped", exp.root.parent / "escaped") if p.exists()]
    a.misattributed += len(escaped)
    return a


SCENARIOS = [("master killed", master_killed), ("split brain", split_brain),
             ("full disk", full_disk), ("racing run", racing_run), ("hostile inbox", hostile_inbox),
             ("broken node", broken_node)]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--kills", type=int, default=40)
    a = ap.parse_args()
    logging.disable(logging.WARNING)  # the corrupt files are meant to be warned about
    master_mod.DISK_LOOK_S = 0.0  # simulated time: look for room at every poll
    rows = []
    head = (f"{'scenario':<15} {'reps':>4} {'records lost':>12} {'applied twice':>13} "
            f"{'misattributed':>13} {'journal readable':>16} {'trials failed':>13} "
            f"{'nodes misjudged':>15} {'s':>6}")
    print(head)
    for name, fn in SCENARIOS:
        t0 = time.time()
        tot, notes = Audit(), []
        readable = 0
        for rep in range(a.reps):
            with tempfile.TemporaryDirectory() as tmp:
                r = fn(rep, Path(tmp), a.kills) if fn in (master_killed, broken_node) \
                    else fn(rep, Path(tmp))
            tot.lost += r.lost
            tot.twice += r.twice
            tot.misattributed += r.misattributed
            tot.failed += r.failed
            tot.nodes_wrong += r.nodes_wrong
            readable += r.readable
            notes += r.notes
        dt = time.time() - t0
        print(f"{name:<15} {a.reps:>4} {tot.lost:>12} {tot.twice:>13} {tot.misattributed:>13} "
              f"{f'{readable}/{a.reps}':>16} {tot.failed:>13} {tot.nodes_wrong:>15} {dt:>6.1f}")
        rows.append({"scenario": name, "reps": a.reps, "lost": tot.lost, "applied_twice": tot.twice,
                     "misattributed": tot.misattributed, "readable": readable,
                     "trials_failed": tot.failed, "nodes_misjudged": tot.nodes_wrong,
                     "seconds": round(dt, 1), "notes": notes[:10]})
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "chaos.json").write_text(json.dumps({"reps": a.reps, "kills": a.kills, "rows": rows},
                                               indent=2) + "\n")
    bad = [r for r in rows if r["lost"] or r["applied_twice"] or r["misattributed"]
           or r["readable"] != r["reps"] or r["nodes_misjudged"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Fault injection: kill the master at chosen points, feed it corrupt files, resume, check.

A "kill" is an exception (``Crash``, a BaseException so nothing catches it) raised at a
failpoint; nothing after it runs, as with SIGKILL. Failpoints sit where a real crash hurts most:
right before and right after every journal append, right after the backend accepted a
submission (before its job id is journaled), and right after each inbox file is removed. The
simulated backend plays the cluster: it lives on across master deaths, as real jobs do.

Used by tests/test_faults.py and benchmarks/chaos.py.
"""
from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..backends.simulated import SimulatedBackend
from ..config import ExperimentConfig
from ..master.loop import Master
from ..protocol.expdir import INBOX, ExpDir, attempt_key, result_name
from ..protocol.journal import Journal, read_journal
from ..protocol.records import Kind
from .invariants import check_invariants


class Crash(BaseException):
    """Stands for SIGKILL of the master."""


@dataclass
class ChaosReport:
    kills: int = 0
    corrupt_inputs: int = 0
    results_lost: int = 0
    duplicated: int = 0
    violations: list[str] = field(default_factory=list)
    lifecycle: str = ""
    failpoints: int = 0  # failpoints passed in the whole run (for spreading kills)

    def line(self) -> str:
        return (f"kills survived {self.kills}, corrupt inputs {self.corrupt_inputs}, "
                f"results lost {self.results_lost}, duplicated {self.duplicated}")


class _Failpoints:
    def __init__(self, crash_at: Iterable[int]) -> None:
        self.n = 0
        self.crash_at: set[int] = set(crash_at)

    def hit(self) -> None:
        self.n += 1
        if self.n in self.crash_at:
            raise Crash(f"failpoint {self.n}")


def _patched(fp: _Failpoints, backend: SimulatedBackend):
    """Install failpoints; returns an undo function."""
    real_append = Journal.append
    real_unlink = pathlib.Path.unlink
    real_submit = backend.submit
    real_hand_over = backend.hand_over

    def append(self, recs, sync=True):
        recs = list(recs)
        fp.hit()
        out = real_append(self, recs, sync)
        fp.hit()
        return out

    def unlink(self, *a, **k):
        real_unlink(self, *a, **k)
        if self.parent.name == INBOX:
            fp.hit()

    def submit(specs):
        ids = real_submit(specs)
        fp.hit()
        return ids

    def hand_over(worker, slot, body):  # the job took it; the master dies before going on
        ok = real_hand_over(worker, slot, body)
        fp.hit()
        return ok

    Journal.append = append  # type: ignore[method-assign]
    pathlib.Path.unlink = unlink  # type: ignore[method-assign]
    backend.submit = submit  # type: ignore[method-assign]
    backend.hand_over = hand_over  # type: ignore[method-assign]

    def undo() -> None:
        Journal.append = real_append  # type: ignore[method-assign]
        pathlib.Path.unlink = real_unlink  # type: ignore[method-assign]
        backend.submit = real_submit  # type: ignore[method-assign]
        backend.hand_over = real_hand_over  # type: ignore[method-assign]

    return undo


def _corrupt(exp: ExpDir, rng: np.random.Generator) -> int:
    """While the master is dead: a torn result, a foreign file, a torn journal tail."""
    n = 0
    kind = int(rng.integers(3))
    tag = int(rng.integers(1 << 30))
    if kind == 0:
        (exp.inbox / result_name(attempt_key(99999, 0, tag % 100))).write_text('{"type": "result", "tri')
    elif kind == 1:
        (exp.inbox / f"foreign-{tag}.json").write_text('{"hello": "world"}')
    else:
        with open(exp.journal, "ab") as f:
            f.write(b"0badc0de {\"kind\": \"res")
    n += 1
    return n


def run_chaos(cfg: ExperimentConfig, root: Path, kills: int, seed: int = 0,
              corrupt: bool = True, total_failpoints: int = 0) -> ChaosReport:
    """Run a simulated search to the end, killing the master ``kills`` times at failpoints
    spread over the run (``total_failpoints``: how many a clean run passes; 0 = measure it
    first), corrupting inputs while it is dead, resuming each time; then check everything."""
    rng = np.random.default_rng(seed)
    if total_failpoints <= 0:
        total_failpoints = run_chaos(cfg, root / "clean", 0, seed, corrupt=False,
                                     total_failpoints=1).failpoints
    points = sorted(set(int(x) for x in rng.integers(1, max(total_failpoints, 2), size=kills)))
    exp = ExpDir.create(root / "exp")
    backend = SimulatedBackend(exp.root, cfg.simulated, seed=cfg.experiment_seed)
    fp = _Failpoints(points)
    report = ChaosReport()
    undo = _patched(fp, backend)
    try:
        for _ in range(len(points) + 1):
            master = Master(exp, cfg, backend=backend, force=True, progress=lambda s: None)
            try:
                st = master.run()
                report.lifecycle = st.lifecycle
                break
            except Crash:
                report.kills += 1
                if master.journal is not None:
                    master.journal.close()
                if corrupt:
                    report.corrupt_inputs += _corrupt(exp, rng)
    finally:
        undo()
    report.failpoints = fp.n
    records = read_journal(exp.journal)[0]
    report.violations = check_invariants(cfg, records)
    report.duplicated = sum(1 for v in report.violations if "applied twice" in v)
    # a job that published its result must have that result applied (the chaos runs have no
    # delayed results, so a job declared dead after publishing one means a lost result)
    seen = {(r["trial"], r["segment"], r["attempt"]) for r in records if r["kind"] == Kind.RESULT}
    report.results_lost = sum(1 for key in backend.published if key not in seen)
    if corrupt:  # every corrupt file was moved aside, none was taken for a result
        leftovers = [n for n in os.listdir(exp.inbox) if not n.startswith(".")]
        if leftovers:
            report.violations.append(f"inbox files left behind: {leftovers[:5]}")
    return report


@dataclass
class Audit:
    """What a finished experiment's journal says about the faults it went through."""

    readable: bool = True
    lost: int = 0  # results a job published that the journal does not hold
    twice: int = 0  # results applied twice
    misattributed: int = 0  # results whose metric is not the one their trial's hparams give
    failed: int = 0  # trials that failed for good
    nodes_wrong: int = 0  # broken nodes not excluded, and healthy nodes excluded
    notes: list[str] = field(default_factory=list)


def audit(cfg: ExperimentConfig, exp: ExpDir, backend: SimulatedBackend) -> Audit:
    """Check a simulated experiment against what its backend really ran: every published
    result is in the journal once, and every applied metric is the one its trial's
    hyperparameters give (the simulated curve is a pure function of them)."""
    from ..master.state import replay

    a = Audit()
    try:
        records, _, warnings = read_journal(exp.journal)
        st = replay(cfg, records)
    except Exception as e:  # noqa: BLE001 - unreadable is what is measured
        a.readable, a.notes = False, [str(e)]
        return a
    a.notes = [w for w in warnings if "superseded master" not in w]
    a.readable = not a.notes
    results = [r for r in records if r["kind"] == Kind.RESULT]
    seen = {(r["trial"], r["segment"], r["attempt"]) for r in results}
    a.lost = sum(1 for key in backend.published if key not in seen)
    a.twice = sum(1 for v in check_invariants(cfg, records) if "applied twice" in v)
    for r in results:
        if r["status"] != "completed" or not isinstance(r.get("metrics"), dict):
            continue
        t = st.trials.get(r["trial"])
        want = backend.curve(t.hparams, r["length"], backend.seed) if t is not None else None
        if want is None or r["metrics"].get(cfg.searcher.metric) != want:
            a.misattributed += 1
    a.failed = st.counts()["failed"]
    a.nodes_wrong = len(set(st.nodes.bad) ^ backend.broken)
    return a

"""Invariants every experiment journal must satisfy, whatever crashed when.

Used by the tests and the fault-injection benchmark: after any number of master kills and
resumes, the journal must show no result applied twice, no trial with two live jobs, no more
valid trials than ``max_trials``, and a state equal to its replay.
"""
from __future__ import annotations

from typing import Any

from ..config import ExperimentConfig
from ..master.state import INVALID, replay
from ..protocol.records import Kind


def check_invariants(cfg: ExperimentConfig, records: list[dict[str, Any]]) -> list[str]:
    """Violations found in ``records`` (empty when all is well)."""
    bad: list[str] = []
    applied = set()
    live: dict[int, tuple[Any, Any]] = {}  # trial -> (segment, attempt) submitted, not ended
    for r in records:
        k = r["kind"]
        key = (r.get("trial"), r.get("segment"), r.get("attempt"))
        if k == Kind.RESULT:
            if key in applied:
                bad.append(f"seq {r['seq']}: result for {key} applied twice")
            applied.add(key)
            live.pop(r["trial"], None)
        elif k in (Kind.JOB_DEAD, Kind.SUBMIT_FAILED):
            live.pop(r["trial"], None)
        elif k == Kind.INTENT:
            if r["trial"] in live:
                bad.append(f"seq {r['seq']}: trial {r['trial']} submitted {key[1:]} while "
                           f"{live[r['trial']]} was still live")
            live[r["trial"]] = key[1:]
        elif k == Kind.CANCELLED:
            live.clear()
    st = replay(cfg, records)
    valid = [t for t in st.trials.values() if t.status != INVALID]
    if (cfg.searcher.name in ("adaptive_asha", "async_halving", "random")
            and len(valid) > cfg.searcher.max_trials):
        bad.append(f"{len(valid)} valid trials > max_trials {cfg.searcher.max_trials}")
    if st.lifecycle == "completed":
        if live:
            bad.append(f"completed with live jobs: {live}")
        if not st.searcher_done:
            bad.append("completed but the searcher is not done")
    again = replay(cfg, records)
    if again.searcher.snapshot() != st.searcher.snapshot():
        bad.append("replaying the journal twice gave two different searcher states")
    return bad

"""Journal records are built by one typed constructor per kind (protocol/records.py), and what
they write is what the journal has always held: the same field names, the same fields left out."""
import json
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.master.loop import Master
from asha_hpc.master.state import ExperimentState
from asha_hpc.protocol import records
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.protocol.journal import read_journal
from asha_hpc.protocol.records import UNSET, Intent, JobDead, Kind, Record, WorkerReady

from helpers import sim_cfg

OLD_JOURNAL = Path(__file__).parents[1] / "fixtures" / "old_release_b885ae9" / "run" / "journal.jsonl"
STAMPS = ("kind", "seq", "time", "epoch")  # added by the master and the journal, not the writer


def _constructors() -> dict[str, type[Record]]:
    classes: dict[str, type[Record]] = {}
    for c in vars(records).values():
        if isinstance(c, type) and issubclass(c, Record) and "kind" in vars(c):  # not a base
            assert c.kind.value not in classes, f"two constructors for {c.kind}"
            classes[c.kind.value] = c
    return classes


def _rebuilt(rec: dict) -> dict:
    """``rec`` written again through its kind's constructor, from its own fields."""
    cls = _constructors()[rec["kind"]]
    return cls(**{k: v for k, v in rec.items() if k not in STAMPS}).to_record()


def _bare(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k not in STAMPS[1:]}


def test_every_kind_has_one_constructor_and_one_replay_handler():
    """No kind is replayed that nothing writes: ``trial_failed`` was handled but never written
    by any release (a trial fails for good inside replay, from the result or job_dead that
    used up its restarts), so it is gone from the enum, the table and the readers."""
    kinds = {k.value for k in Kind}
    assert set(_constructors()) == kinds == set(ExperimentState.HANDLERS)
    assert "trial_failed" not in kinds


def test_the_old_release_journal_is_what_the_constructors_write():
    """Every record b885ae9 wrote, rebuilt from its own fields, serialises to the same JSON:
    field names and omitted fields are those of the journals already on disk."""
    recs = read_journal(OLD_JOURNAL)[0]
    assert len({r["kind"] for r in recs}) >= 5
    for r in recs:
        assert json.dumps(_rebuilt(r), sort_keys=True) == json.dumps(_bare(r), sort_keys=True), r


@pytest.mark.parametrize("case", ["pool", "time_limits"])
def test_a_search_journal_round_trips_through_the_constructors(tmp_path, case):
    """A simulated search with failures (job_dead, retries), warm workers (workers,
    worker_ready, hand-over intents) or planned time limits (intents whose timeout_min may be
    null): each record is its constructor's output, a null written where it was written."""
    cfg = sim_cfg(trials=16, concurrent=4, failure_rate=0.2, pool=3) if case == "pool" else \
        sim_cfg(trials=16, concurrent=4, failure_rate=0.2)
    if case == "time_limits":
        cfg.slurm.timeout_min = "auto"
    exp = ExpDir.create(tmp_path / "exp")
    Master(exp, cfg, progress=lambda s: None).run()
    recs = read_journal(exp.journal)[0]
    kinds = {r["kind"] for r in recs}
    assert {"init", "intent", "result", "done"} <= kinds
    if case == "pool":
        assert {"workers", "workers_submitted", "worker_gone"} <= kinds
        assert any(r["kind"] == "intent" and "worker" in r for r in recs)
    else:
        assert any(r["kind"] == "intent" and "timeout_min" in r for r in recs)
    for r in recs:
        assert _rebuilt(r) == _bare(r), r


def test_optional_fields_are_left_out_at_their_default_and_unset_writes_null():
    assert WorkerReady(worker="w0001", slot=0).to_record() == \
        {"kind": "worker_ready", "worker": "w0001", "slot": 0}  # slot 0 is a value, not absent
    assert "disk_full" not in JobDead(trial=1, segment=0, attempt=0, job_id="7", state="FAILED",
                                      counts=True).to_record()
    plain = Intent(trial=1, segment=0, attempt=0, length=4).to_record()
    assert "timeout_min" not in plain and "job_id" not in plain
    planned = Intent(trial=1, segment=0, attempt=0, length=4, timeout_min=None, split=False,
                     basis="the backend's default").to_record()
    assert planned["timeout_min"] is None and planned["split"] is False  # null means "default"


OPTIONAL = {f.name: f.default for f in fields(Intent) if f.metadata.get("optional")}


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({}, optional={
    "timeout_min": st.none() | st.integers(1, 10_000), "split": st.booleans(),
    "basis": st.text(max_size=20), "estimate_s": st.floats(0, 1e6), "worker": st.text(min_size=1, max_size=8),
    "slot": st.integers(0, 100), "job_id": st.none() | st.text(max_size=8)}))
def test_an_intent_writes_exactly_the_fields_given(given_fields):
    """Whatever optional fields a writer passes, those (and the required ones) are written,
    None included where None is a value; nothing else appears."""
    rec = Intent(trial=3, segment=1, attempt=0, length=16, **given_fields).to_record()
    assert set(rec) == {"kind", "trial", "segment", "attempt", "length"} | {
        k for k, v in given_fields.items() if v is not OPTIONAL[k]}
    assert all(rec[k] == v for k, v in given_fields.items() if k in rec)
    assert UNSET not in rec.values()
    json.dumps(rec)

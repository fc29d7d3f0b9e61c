"""Inbox messages (issue 16, point 5): every field of every message is checked in one place
(asha_hpc/protocol/messages.py) before the master acts; a hostile or broken file is moved aside."""
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.master.loop import Master
from asha_hpc.protocol import messages
from asha_hpc.protocol.expdir import ExpDir

from helpers import sim_cfg

ROOT = "/scratch/alice/exp"


@pytest.mark.parametrize("worker", ["/tmp/somewhere", "../../x", "..", "w1/../../x", "", "a" * 65,
                                    "w 1", "w\n1", 7, None, ["w1"]])
def test_worker_ids_that_are_paths_or_not_names_are_refused(worker):
    with pytest.raises(messages.MessageError, match="'worker' must be a plain name"):
        messages.from_json({"type": "ready", "worker": worker, "slot": 0})


@pytest.mark.parametrize("field,value", [("trial", -1), ("trial", True), ("trial", "3"),
                                         ("segment", 1.5), ("attempt", None), ("slot", -2)])
def test_ids_must_be_non_negative_integers(field, value):
    body = {"type": "result", "trial": 1, "segment": 0, "attempt": 0, "status": "completed",
            "worker": "w0001", "slot": 0, field: value}
    with pytest.raises(messages.MessageError, match=f"'{field}' must be a non-negative integer"):
        messages.from_json(body, ROOT)


@pytest.mark.parametrize("ckpt", ["/etc", f"{ROOT}/trials/00002/checkpoints/t2",
                                  f"{ROOT}/trials/00001/checkpoints/../../00002/x",
                                  f"{ROOT}/trials/00001/checkpoints", 5,
                                  "/old/exp/trials/00002/checkpoints/t2",
                                  "/old/exp/trials/00001/other/t2", "trials/00001/checkpoints/"])
def test_a_checkpoint_outside_its_own_trial_is_refused(ckpt):
    body = {"type": "result", "trial": 1, "segment": 0, "attempt": 0, "status": "completed",
            "checkpoint": ckpt}
    with pytest.raises(messages.MessageError, match="checkpoint"):
        messages.from_json(body, ROOT)


NAMES = st.text(st.characters(codec="ascii", exclude_characters="/\0"), min_size=1, max_size=20)


@given(st.lists(NAMES, max_size=4), NAMES)
def test_a_checkpoint_written_before_the_folder_moved_is_named_from_where_it_is_now(old, name):
    """A result written while the folder was elsewhere (moved, copied) names its trial's
    checkpoint by that folder's path: it is the same checkpoint, in this folder."""
    if name in (".", ".."):
        return
    old_root = "/" + "/".join(x for x in old if x not in (".", ".."))
    body = {"type": "result", "trial": 1, "segment": 0, "attempt": 0, "status": "completed",
            "checkpoint": f"{old_root.rstrip('/')}/trials/00001/checkpoints/{name}"}
    msg = messages.from_json(body, ROOT)
    assert isinstance(msg, messages.Result)
    assert msg.checkpoint == f"{ROOT}/trials/00001/checkpoints/{name}"


def test_a_valid_result_becomes_its_journal_record():
    body = {"type": "result", "trial": 1, "segment": 2, "attempt": 0, "status": "completed",
            "metrics": {"loss": 0.5}, "length": 16, "checkpoint": f"{ROOT}/trials/00001/checkpoints/k-0001",
            "host": "node7", "job_id": 1234, "gpus": 2, "worker": "w0003.1", "slot": 4,
            "waiting": True, "started": 10.0, "ended": 20.0, "reached": 16}
    msg = messages.from_json(body, ROOT)
    assert isinstance(msg, messages.Result) and msg.ready == messages.Ready("w0003.1", 4, None, "node7")
    rec = msg.record().to_record()
    assert rec["kind"] == "result" and rec["job_id"] == "1234" and rec["gpus"] == 2
    assert rec["worker"] == "w0003.1" and rec["waiting"] is True and rec["reached"] == 16


def test_a_failed_node_is_kept_for_an_error_only():
    body = {"type": "result", "trial": 1, "segment": 2, "attempt": 0, "status": "error",
            "host": "node7", "failed_node": "node8", "error": "rank 1 on node node8 died"}
    rec = messages.from_json(body, ROOT).record().to_record()
    assert (rec["host"], rec["failed_node"]) == ("node7", "node8")
    done = messages.from_json(dict(body, status="completed", metrics={"loss": 1.0}), ROOT)
    assert "failed_node" not in done.record().to_record()  # a result that worked blames nobody


def test_ends_trial_is_kept_for_an_error_or_a_final_result_only():
    """A job whose training code ended the trial early says so: an error (no result), or a
    completed segment whose model is final (it reported, then ended)."""
    body = {"type": "result", "trial": 1, "segment": 2, "attempt": 0, "status": "error",
            "ends_trial": True, "error": "training stopped at 13 steps"}
    assert messages.from_json(body, ROOT).record().to_record()["ends_trial"] is True
    final = dict(body, status="completed", metrics={"loss": 1.0})
    assert messages.from_json(final, ROOT).record().to_record()["ends_trial"] is True
    for other in (dict(body, status="interrupted"), dict(body, status="invalid_hp"),
                  dict(body, ends_trial="yes"), dict(body, ends_trial=1)):
        assert "ends_trial" not in messages.from_json(other, ROOT).record().to_record()


JSON = st.recursive(st.none() | st.booleans() | st.integers(-3, 3) | st.floats() | st.text(max_size=12),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                    max_leaves=10)
KEYS = st.sampled_from(["type", "trial", "segment", "attempt", "worker", "slot", "status", "metrics",
                        "checkpoint", "length", "error", "host", "job_id", "disk_full", "waiting",
                        "failed_node", "ends_trial", "fatal", "reused", "restored",
                        "skipped_checkpoints", "ignored_checkpoint", "handoff", "warnings"])


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(KEYS, JSON | st.sampled_from(["ready", "result", "started", "../x", "/tmp/y",
                                                     "completed", "w0001"]), max_size=10))
def test_any_json_is_a_typed_message_or_one_message_error(body):
    try:
        msg = messages.from_json(body, ROOT, "m.json")
    except messages.MessageError as e:
        assert str(e)
        return
    worker = getattr(msg, "worker", None) or (msg.extra or {}).get("worker") if not isinstance(
        msg, messages.Ready) else msg.worker
    if worker is not None:
        assert "/" not in worker and ".." not in worker
    if isinstance(msg, messages.Result):
        json.dumps(msg.record().to_record())  # journal-able
    handoff = msg.handoff if isinstance(msg, messages.Ready) else \
        (msg.extra or {}).get("handoff") if isinstance(msg, messages.Result) else None
    assert handoff is None or (isinstance(handoff, int) and handoff >= 0)  # what the pool compares
    said = (msg.extra or {}).get("warnings") if isinstance(msg, messages.Result) else None
    assert said is None or (isinstance(said, list) and 0 < len(said) <= 3 and all(
        isinstance(w, str) and len(w) <= messages.MAX_TEXT for w in said))  # what the master prints


def test_hostile_inbox_files_create_nothing_and_are_moved_aside(tmp_path):
    cfg = sim_cfg(trials=8, failure_rate=0.0)
    exp = ExpDir.create(tmp_path / "exp")
    m = Master(exp, cfg, progress=lambda s: None)
    m.start()
    outside = tmp_path / "somewhere"
    bad = {"r1.json": {"type": "ready", "worker": str(outside), "slot": 0},
           "r2.json": {"type": "ready", "worker": "../../x", "slot": 0},
           "r3.json": {"type": "result", "trial": 1, "segment": 0, "attempt": 0, "status": "completed",
                       "metrics": {"loss": 0.1}, "checkpoint": "/etc"}}
    for name, body in bad.items():
        (exp.inbox / name).write_text(json.dumps(body))
    m.step()
    m.close()
    assert not outside.exists() and not (tmp_path / "x").exists() and not (exp.root.parent / "x").exists()
    assert sorted(os.listdir(exp.inbox)) == [f".rejected-{n}" for n in sorted(bad)]
    assert not m.state.trials[1].rung_metrics  # the forged result was not applied

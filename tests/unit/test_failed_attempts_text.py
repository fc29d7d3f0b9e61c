"""How a failed trial's attempts are told: the ones that counted against max_restarts (a trial
fails for good at max_restarts + 1 of them), and beside them the ones that did not (preempted,
out of time, or failed in a reused warm worker), so that "2 failed attempts" is never said of
three, nor "2 restarts" of one."""
import dataclasses

from asha_hpc.config import parse_config
from asha_hpc.master.state import FAILED, replay
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.views.status import status_dict
from asha_hpc.views.text import render_status_text

CFG = parse_config({"name": "s", "entrypoint": "m:f",
                    "searcher": {"name": "random", "metric": "m", "max_length": 4,
                                 "max_trials": 1, "max_concurrent_trials": 1},
                    "hyperparameters": {"x": 1}, "max_restarts": 1}, "/tmp")


def attempts(*how: str) -> list[dict]:
    recs: list[dict] = [{"kind": "init"}]
    for a, kind in enumerate(how):
        recs.append({"kind": "intent", "trial": 1, "segment": 0, "attempt": a})
        extra = {"reused": True} if kind == "reused" else {}
        status = "interrupted" if kind == "preempted" else "error"
        recs.append({"kind": "result", "trial": 1, "segment": 0, "attempt": a, "status": status,
                     "error": "RuntimeError: CUDA error: an illegal memory access", **extra})
    return recs


def test_the_attempts_that_counted_and_the_ones_that_did_not(tmp_path):
    recs = attempts("reused", "error", "preempted", "error")
    st = replay(CFG, recs)
    t = st.trials[1]
    assert t.status == FAILED and t.restarts == 2 and t.infra_retries == 2
    assert any(text.startswith("trial 1 failed for good after 2 failed attempts (max_restarts "
                               "1): RuntimeError: CUDA error") for _, text in st.events), st.events
    text = render_status_text(status_dict(ExpDir.create(tmp_path / "e"), CFG, st, recs))
    assert ("trial 1 at length 0, after 2 failed attempts (and 2 that did not count: preempted, "
            "lost or out of time, or failed in a reused warm worker): RuntimeError") in text, text


def test_one_failed_attempt_is_not_called_restarts():
    st = replay(dataclasses.replace(CFG, max_restarts=0), attempts("error"))
    assert any(text.startswith("trial 1 failed for good after 1 failed attempt (max_restarts 0)")
               for _, text in st.events), st.events


def test_a_failed_trials_checkpoint_past_its_last_result_is_named(tmp_path):
    """It saved at 16 and then crashed, every attempt: "trial 1 at length 0" alone hid that
    `--retry-failed` goes on from 16, not from the start."""
    from asha_hpc.protocol.checkpoints import MANIFEST

    exp = ExpDir.create(tmp_path / "e")
    ckpt = exp.checkpoints(1) / "c16"
    ckpt.mkdir(parents=True)
    (ckpt / MANIFEST).write_text('{"length": 16, "files": {}}')
    recs = [dict(r, checkpoint=str(ckpt)) if r["kind"] == "result" else r
            for r in attempts("error", "error")]
    st = replay(CFG, recs)
    d = status_dict(exp, CFG, st, recs)
    assert d["failed_trials"][0]["checkpoint_length"] == 16, d["failed_trials"]
    assert "trial 1 at length 0 (its checkpoint holds 16), after 2 failed attempts" in \
        render_status_text(d)


def _reused_then_passed(n: int, **failure) -> list[dict]:
    """``n`` trials whose first attempt failed in a reused warm worker and whose retry passed."""
    recs: list[dict] = [{"kind": "init"}]
    for trial in range(1, n + 1):
        recs.append({"kind": "intent", "trial": trial, "segment": 0, "attempt": 0})
        recs.append({"kind": "result", "trial": trial, "segment": 0, "attempt": 0,
                     "status": "error", "reused": True, **failure})
        recs.append({"kind": "intent", "trial": trial, "segment": 0, "attempt": 1})
        recs.append({"kind": "result", "trial": trial, "segment": 0, "attempt": 1,
                     "status": "completed", "metrics": {"m": 1.0}})
    return recs


def test_peer_ranks_that_died_are_not_read_as_state_the_code_leaves_behind():
    """Three segments failed in warm workers because a rank was killed (kill -9, the OOM
    killer: the record names the dead peer's node) and passed again in a fresh process: the
    master said "the code leaves state behind in its process" of code that leaves none."""
    cfg = dataclasses.replace(CFG, searcher=dataclasses.replace(CFG.searcher, max_trials=3))
    said = "the code leaves state behind"
    killed = replay(cfg, _reused_then_passed(3, failed_node="n1", error="rank 1 on n1 died"))
    assert not any(said in text for _, text in killed.events), killed.events
    leaky = replay(cfg, _reused_then_passed(3, error="ValueError: GlobalHydra is already "
                                                   "initialized"))
    assert any(said in text for _, text in leaky.events), leaky.events


def test_a_result_carried_to_a_longer_length_is_not_told_as_training():
    """A trial whose code ended its training (early stopping) is promoted without a job: its
    events said "reached length 200" of a model trained to 30."""
    from asha_hpc.views.status import _result_line

    rec = {"kind": "result", "trial": 2, "status": "completed", "length": 200,
           "metrics": {"x": 60.0}, "carried": True}
    assert _result_line(rec, "x") == ("trial 2 promoted to length 200 without training (its "
                                      "code ended its training; the model is final): x=60")
    assert _result_line(dict(rec, carried=False), "x") == "trial 2 reached length 200: x=60"


def test_a_segment_a_full_disk_stopped_is_said_as_the_machines_fault():
    """torch.save flattens ENOSPC into its own text: the event line names the full disk (it
    read as the trial's own error), and the error's summary stays beside it."""
    from asha_hpc.views.status import _result_line

    rec = {"kind": "result", "trial": 5, "status": "error", "length": 4,
           "error": "Traceback ...\nRuntimeError: [enforce fail at inline_container.cc:672] . "
                    "unexpected pos 15680 vs 15608\n",
           "disk_full": {"path": "/scratch/u/run/trials/00005", "quota": True, "free": 0}}
    line = _result_line(rec, "loss")
    assert line.startswith("trial 5 stopped: the quota was exhausted (writing "
                           "/scratch/u/run/trials/00005); counted against nothing"), line
    assert "unexpected pos 15680" in line
    assert _result_line(dict(rec, disk_full=None), "loss").startswith("trial 5 error: ")

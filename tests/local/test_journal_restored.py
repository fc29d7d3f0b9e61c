"""A journal restored from an older copy (a backup, a snapshot: what `resume` tells a user to do
when a record of the journal is lost) knows less than the trials' folders hold. The trials it
forgot are drawn again under the same ids, and the promotions it forgot happen again: their jobs
must not take the forgotten attempts' checkpoints for their own (a checkpoint trained past the
new segment, a checkpoint name already taken)."""
import json
from pathlib import Path

from asha_hpc.protocol.expdir import split_attempt_key

from helpers import cli, final_state, journal, make_experiment


def _checkpoint_keys(exp):
    return {(int(p.parent.parent.name), p.name.rsplit("-", 1)[0])
            for p in (exp / "trials").glob("*/checkpoints/*")}


def test_a_journal_restored_from_an_older_copy_resumes_without_the_forgotten_files(tmp_path):
    cfg = make_experiment(tmp_path, searcher={"max_trials": 10}, local={"gpus": [], "max_parallel": 2,
                                                                         "workers": 0})
    exp = tmp_path / "run"
    cli("run", cfg, "--exp-dir", exp)
    _, first = final_state(exp)
    assert max(t.length for t in first.trials.values()) == 16
    lines = (exp / "journal.jsonl").read_text().splitlines(keepends=True)
    kept = lines[:len(lines) * 55 // 100]  # the copy taken part way through the search
    (exp / "journal.jsonl").write_text("".join(kept))
    known = {r["trial"] for r in journal(exp) if r["kind"] == "intent"}
    # attempts whose intent the copy has and whose result it lost: their jobs are long gone
    attempts = {(r["trial"], r["segment"], r["attempt"]) for r in journal(exp) if r["kind"] == "intent"}
    lost = {a[0] for a in attempts - {(r["trial"], r["segment"], r["attempt"])
                                      for r in journal(exp) if r["kind"] == "result"}}
    forgotten = {t for t in first.trials if t not in known}
    assert forgotten, "the cut keeps every trial: the test shows nothing"

    r = cli("resume", exp)
    assert "does not know" in r.stderr and "the journal was restored from an older copy" in r.stderr
    _, st = final_state(exp)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0
    results = [x for x in journal(exp) if x["kind"] == "result"]
    assert not [x for x in results if x["status"] != "completed"], \
        [x.get("error") for x in results if x["status"] != "completed"]
    # retried once, as a job that ended without a result; nothing else was
    assert {t.id: t.restarts for t in st.trials.values() if t.restarts} == {t: 1 for t in lost}
    # what the trials' folders hold now is the journal's own, or lies past every attempt the
    # journal has for its trial (a promotion this run did not make again: moved aside before
    # its intent, should a later resume make it); the rest was kept aside
    intents = {(x["trial"], x["segment"], x["attempt"]) for x in journal(exp) if x["kind"] == "intent"}
    for trial, key in _checkpoint_keys(exp):
        at = tuple(split_attempt_key(key)[1:])
        last = max((s, a) for t, s, a in intents if t == trial)
        assert (trial, *at) in intents or at > last, key
    (aside,) = (exp / "unjournaled").iterdir()
    moved = {int(p.name) for p in (aside / "trials").iterdir()}
    assert moved >= forgotten
    assert any((aside / "trials" / f"{t:05d}" / "checkpoints").is_dir() for t in forgotten)
    # the views read the search as the journal has it
    d = json.loads(cli("status", exp, "--json").stdout)
    assert d["state"] == "completed"
    best = json.loads(cli("best", exp, "--json").stdout)[0]
    assert Path(best["checkpoint"]).is_dir() and not best["checkpoint_missing"]

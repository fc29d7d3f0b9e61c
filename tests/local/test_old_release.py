"""An experiment folder written by the release before the architecture change (commit b885ae9)
still resumes, reports and exports.

tests/fixtures/old_release_b885ae9/ was made by that release's own code (local backend): a
search of 8 trials with ``model.py`` (tests/helpers.py's MODEL), its master SIGKILLed
mid-search. It holds 4 paused trials with their checkpoints, a promoted trial whose result for
length 16 and a new trial's first result wait in the inbox (they arrived after the master
died), and the jobs' submitit folders. The release wrote absolute paths into experiment.yaml
and the inbox messages (``/tmp/oldgen``); the test puts the folder where those paths lead by
rewriting them to its own tmp folder, as if the old release had run there. The journal is
left byte for byte as written (its lines carry checksums).

tests/fixtures/old_release_c43cdc7_tpe/ was made the same way by the last release before the
model samplers' shared code moved out of tpe.py (commit c43cdc7): 16 trials with
``sampler: tpe``, warm workers, the master SIGKILLed once the model had drawn three trials,
the workers killed after it. Two results wait in the inbox.

tests/fixtures/old_release_7f2d743_yaml11/ was made by the last release that read configs as
PyYAML's YAML 1.1 (commit 7f2d743): 12 trials whose constant ``wd: 1e-4`` and categorical
``eps: [1e-8, 1e-6]`` that release read as text, its master stopped with SIGINT after 11
trials, jobs a segment each; three results wait in the inbox.
"""
import json
import os
import shutil
from pathlib import Path

from helpers import cli, final_state, journal

FIXTURES = Path(__file__).parent.parent / "fixtures"
FIXTURE = FIXTURES / "old_release_b885ae9"
OLD_ROOT = "/tmp/oldgen"
TPE_FIXTURE = FIXTURES / "old_release_c43cdc7_tpe"
TPE_OLD_ROOT = "/tmp/oldgen_tpe"
YAML11_FIXTURE = FIXTURES / "old_release_7f2d743_yaml11"
YAML11_OLD_ROOT = "/tmp/oldgen_yaml11"


def _place(tmp_path: Path, fixture: Path = FIXTURE, old_root: str = OLD_ROOT) -> Path:
    shutil.copy(fixture / "model.py", tmp_path / "model.py")
    exp = tmp_path / "run"
    shutil.copytree(fixture / "run", exp)
    for p in [exp / "experiment.yaml", *(exp / "inbox").glob("*.json"),
              *(exp / "workers").glob("*/*.json")]:
        p.write_text(p.read_text().replace(old_root, str(tmp_path)))
    lease = exp / "master.json"
    if lease.exists():  # as its killed master left it: last written at its last heartbeat
        beat = json.loads(lease.read_text())["heartbeat"]
        os.utime(lease, (beat, beat))
    return exp


def test_old_release_folder_reports_then_resumes_and_exports(tmp_path):
    exp = _place(tmp_path)
    before = journal(exp)
    assert not any("config_hash" in r for r in before)  # really the older format

    # status reads it as the old master left it: paused trials, checkpoints on disk
    status = json.loads(cli("status", exp, "--json").stdout)
    assert status["trials"]["paused"] == 4
    assert any((exp / "trials" / f"{t:05d}" / "checkpoints").iterdir() for t in (2, 3))

    r = cli("resume", exp)
    assert "best trial" in r.stderr
    cfg, st = final_state(exp)
    assert st.lifecycle == "completed"
    after = journal(exp)
    assert after[:len(before)] == before  # the old records are kept as they were
    # the results that waited in the inbox were applied, not retried
    applied = {(r["trial"], r["segment"]) for r in after[len(before):] if r["kind"] == "result"}
    assert {(4, 1), (6, 0)} <= applied
    assert not [r for r in after if r["kind"] == "job_dead"]
    # promoted trials went on from their checkpoints: a job log line says from which epoch
    resumed = [json.loads(line) for p in (exp / "trials").glob("*/env.jsonl")
               for line in p.read_text().splitlines() if '"from"' in line]
    assert any(r["from"] > 0 for r in resumed)

    rows = [json.loads(line) for line in
            cli("export", exp, "--format", "jsonl").stdout.splitlines() if line.strip()]
    assert {row["trial_id"] for row in rows} == set(st.trials)
    best = json.loads(cli("status", exp, "--json").stdout)
    assert best["trials"]["completed"] >= 1


def test_old_release_folder_resumes_under_a_cap_given_on_resume(tmp_path):
    """``resume --max-compute`` on a folder whose release had no such option: the cap is
    journaled after the old records and the search ends within it."""
    exp = _place(tmp_path)
    before = journal(exp)
    cfg, st = final_state(exp)
    started = st.searcher.compute_started()
    cap = started + 8  # room for a few more segments of 1-4 units, not for the whole plan
    r = cli("resume", exp, "--max-compute", cap)
    assert f"max_compute set to {cap} units ({started} started so far)" in r.stderr
    cfg, st = final_state(exp)
    after = journal(exp)
    assert after[:len(before)] == before
    assert [(x["units"], x["was"]) for x in after if x["kind"] == "max_compute"] == [(cap, None)]
    assert st.lifecycle == "completed" and st.max_compute == cap
    assert started < st.searcher.compute_started() <= cap


def test_a_record_kind_of_a_newer_release_is_refused_with_one_line(tmp_path):
    """The other direction: a journal holding a kind this release does not know (a newer
    release wrote it) is refused, naming the record and the kind, instead of guessing."""
    import pytest

    from asha_hpc.config import load_config
    from asha_hpc.errors import AshaError
    from asha_hpc.master.state import ExperimentState, replay
    from asha_hpc.protocol.records import Kind

    exp = _place(tmp_path)
    cfg = load_config(exp / "experiment.yaml")
    recs = journal(exp)
    assert {r["kind"] for r in recs} <= {k.value for k in Kind} == set(ExperimentState.HANDLERS)
    future = dict(recs[-1], kind="trial_migrated", seq=recs[-1]["seq"] + 1)
    with pytest.raises(AshaError, match=r"journal record \d+: kind 'trial_migrated' is unknown"):
        replay(cfg, recs + [future])


def test_retention_choice_is_a_pure_function_of_the_state(tmp_path):
    """retention.removable_checkpoints on the old release's state: a paused trial keeps its
    checkpoint while the searcher may still promote it; a stopped trial's goes unless it is
    among the best kept; a failed one's stays (--retry-failed continues from it)."""
    from asha_hpc.config import load_config
    from asha_hpc.master.retention import removable_checkpoints
    from asha_hpc.master.state import FAILED, PAUSED, STOPPED, replay

    exp = _place(tmp_path)
    st = replay(load_config(exp / "experiment.yaml"), journal(exp))
    paused = [t.id for t in st.trials.values() if t.status == PAUSED and t.checkpoint]
    promotable = [i for i in paused if st.searcher.may_be_promoted(i)]
    hopeless = sorted(set(paused) - set(promotable))
    assert promotable and removable_checkpoints(st, keep_best=0) == hopeless
    t = st.trials[promotable[0]]
    t.status = STOPPED
    assert removable_checkpoints(st, keep_best=0) == sorted(hopeless + [t.id])
    assert removable_checkpoints(st, keep_best=len(st.trials)) == []
    t.status = FAILED
    assert removable_checkpoints(st, keep_best=0) == hopeless


def test_old_release_tpe_search_resumes_with_its_draws(tmp_path):
    """A tpe search of the release before model_sampler.py: after the upgrade it resumes to the
    end, keeps every configuration the old model drew (journaled), draws the rest with the
    current model, and applies the results that waited in the inbox."""
    exp = _place(tmp_path, TPE_FIXTURE, TPE_OLD_ROOT)
    before = journal(exp)
    drawn = {r["trial"]: r["hparams"] for r in before if r["kind"] == "sampled"}
    assert len(drawn) >= 3

    cli("resume", exp)
    cfg, st = final_state(exp)
    assert st.lifecycle == "completed" and len(st.trials) == 16
    after = journal(exp)
    assert after[:len(before)] == before
    new = [r for r in after[len(before):] if r["kind"] == "sampled"]
    assert new and not {r["trial"] for r in new} & set(drawn)  # no old draw is drawn again
    for t, hp in drawn.items():
        assert st.trials[t].hparams == hp
    applied = {(r["trial"], r["segment"]) for r in after[len(before):] if r["kind"] == "result"}
    assert {(8, 0), (10, 0)} <= applied
    assert max(t.length for t in st.trials.values()) == 16
    # its warm workers, of the old release, get no segment they could not read: each is told
    # to leave, and no trial counts a failed attempt for it
    old_workers = {"w0000", "w0001"}
    resumed = after[len(before):]
    gone = [r for r in resumed if r["kind"] == "worker_gone" and set(r["workers"]) & old_workers]
    assert gone and all("another release of asha_hpc" in r["why"] for r in gone), gone
    assert not [r for r in resumed if r["kind"] == "intent" and r.get("worker") in old_workers]
    assert not [r for r in resumed if r["kind"] == "job_dead" and r.get("counts")]
    assert all(t.restarts == 0 for t in st.trials.values())


def test_a_folder_a_newer_release_wrote_is_refused_unchanged_and_ours_says_its_format(tmp_path):
    """A master of this release marks the folder with its format; a release that finds a
    higher one (a newer release ran there: results it would misread, train again or drop)
    refuses to resume or read it, with one line, before it changes anything."""
    from asha_hpc.protocol.expdir import FORMAT

    exp = _place(tmp_path)
    assert not (exp / "format").exists()  # the old release wrote none
    r = cli("resume", exp)
    assert (exp / "format").read_text() == f"{FORMAT}\n"
    # said once, where it happens: the release it came from can no longer read it
    assert r.stderr.count(f"{exp}: folder format 1 -> {FORMAT} (this release's): the release "
                          f"that ran it before can no longer resume or read it") == 1, r.stderr
    assert "folder format" not in cli("resume", exp).stderr  # not again
    (exp / "format").write_text(f"{FORMAT + 1}\n")
    files = {p: p.read_bytes() for p in exp.rglob("*") if p.is_file()}
    for cmd in ("resume", "status", "best", "export"):
        r = cli(cmd, exp, check=False)
        assert r.returncode == 1, (cmd, r.stderr)
        assert f"{exp}: written by a newer release of asha_hpc (folder format {FORMAT + 1}; " \
               f"this one" in r.stderr and f"reads up to {FORMAT}): upgrade asha_hpc" in r.stderr
    assert {p: p.read_bytes() for p in exp.rglob("*") if p.is_file()} == files


def test_a_search_that_read_1e_4_as_text_resumes_and_keeps_reading_it_so(tmp_path):
    """This release reads 1e-4 as a number (YAML 1.2); the earlier one read it as text, and its
    journal's config hash says so. status reads the folder as it was, resume goes on (no "no
    longer matches the config"), and every trial, old or new, has the values its search
    started with; the upgrade quotes them in experiment.yaml, so later reads agree."""
    from asha_hpc.protocol.expdir import FORMAT

    exp = _place(tmp_path, YAML11_FIXTURE, YAML11_OLD_ROOT)
    assert (exp / "format").read_text() == "3\n" and "wd: 1e-4\n" in (exp / "experiment.yaml").read_text()
    before = journal(exp)
    status = json.loads(cli("status", exp, "--json").stdout)
    assert status["trials"]["paused"] >= 1
    r = cli("resume", exp)
    assert "no longer matches" not in r.stderr and "folder format 3 -> " in r.stderr
    cfg, st = final_state(exp)
    assert st.lifecycle == "completed" and len(st.trials) == 12
    assert journal(exp)[:len(before)] == before
    for t in st.trials.values():
        assert t.hparams["wd"] == "1e-4" and t.hparams["eps"] in ("1e-8", "1e-6"), t.hparams
    text = (exp / "experiment.yaml").read_text()
    assert "wd: '1e-4'" in text and "- '1e-8'" in text
    assert (exp / "format").read_text() == f"{FORMAT}\n"
    assert json.loads(cli("status", exp, "--json").stdout)["state"] == "completed"
    rows = [json.loads(line) for line in
            cli("export", exp, "--format", "jsonl").stdout.splitlines() if line.strip()]
    assert {row["hparams.wd"] for row in rows} == {"1e-4"}, rows[0]

"""Experiment directory, inbox and the job-side Trial API (checkpoints published atomically)."""
import json
import os
import stat

import pytest

from asha_hpc.job.trial import Trial, latest_checkpoint
from asha_hpc.protocol.expdir import ExpDir, atomic_write_json, publish, scan_inbox


def make_trial(tmp_path, key="t00001-s000-a00", metric="loss"):
    exp = ExpDir.create(tmp_path / "exp")
    return exp, Trial(trial_id=1, hparams={"a": 1}, trial_dir=exp.trial_dir(1),
                      run_dir=exp.run_dir(1, key), segments=[4], first_segment=0,
                      metric=metric, key=key)


def test_experiment_dir_is_private(tmp_path):
    exp = ExpDir.create(tmp_path / "exp")
    assert stat.S_IMODE(os.stat(exp.root).st_mode) == 0o700
    assert exp.inbox.is_dir() and exp.jobs.is_dir()


def test_inbox_skips_temporaries_and_flags_torn_files(tmp_path):
    exp = ExpDir.create(tmp_path / "exp")
    publish(exp.root, "t00001-s000-a00.result.json", {"type": "result", "trial": 1})
    (exp.inbox / ".tmp-in-flight").write_text("{")
    (exp.inbox / "t00002-s000-a00.result.json").write_text('{"type": "res')  # torn
    msgs = scan_inbox(exp.inbox)
    assert [m.name for m in msgs] == ["t00001-s000-a00.result.json", "t00002-s000-a00.result.json"]
    assert msgs[0].body == {"type": "result", "trial": 1} and msgs[0].problem is None
    assert msgs[1].body is None and "torn" in msgs[1].problem


def test_inbox_refuses_files_writable_by_others(tmp_path):
    exp = ExpDir.create(tmp_path / "exp")
    p = exp.inbox / "t00001-s000-a00.result.json"
    atomic_write_json(p, {"type": "result"})
    os.chmod(p, 0o666)
    (m,) = scan_inbox(exp.inbox)
    assert m.body is None and "writable by other users" in m.problem


def test_checkpoint_published_atomically_and_latest_wins(tmp_path):
    exp, trial = make_trial(tmp_path)
    assert trial.latest_checkpoint is None
    with trial.save_checkpoint() as p:
        (p / "w.bin").write_bytes(b"1" * 10)
    first = trial.latest_checkpoint
    with trial.save_checkpoint() as p:
        (p / "w.bin").write_bytes(b"2" * 10)
    second = trial.latest_checkpoint
    assert first != second and (second / "w.bin").read_bytes() == b"2" * 10


def test_checkpoint_that_raises_leaves_previous_latest(tmp_path):
    exp, trial = make_trial(tmp_path)
    with trial.save_checkpoint() as p:
        (p / "w.bin").write_bytes(b"ok")
    good = trial.latest_checkpoint
    with pytest.raises(RuntimeError):
        with trial.save_checkpoint() as p:
            (p / "w.bin").write_bytes(b"half")
            raise RuntimeError("killed mid-save")
    assert trial.latest_checkpoint == good
    assert not [n for n in os.listdir(exp.checkpoints(1)) if n.startswith(".tmp")]


def test_incomplete_or_corrupt_checkpoint_is_skipped(tmp_path):
    exp, trial = make_trial(tmp_path)
    with trial.save_checkpoint() as p:
        (p / "w.bin").write_bytes(b"good")
    good = trial.latest_checkpoint
    root = exp.checkpoints(1)
    (root / "zz-no-manifest").mkdir()  # sorts last, but has no manifest: a killed save
    (root / "zz-no-manifest" / "w.bin").write_bytes(b"x")
    (root / "zy-truncated").mkdir()
    (root / "zy-truncated" / "w.bin").write_bytes(b"x")
    (root / "zy-truncated" / "MANIFEST.json").write_text(json.dumps({"files": {"w.bin": 999}}))
    (root / "zx-garbage").mkdir()
    (root / "zx-garbage" / "MANIFEST.json").write_text("{not json")
    assert latest_checkpoint(root) == good


def test_report_requires_the_metric(tmp_path):
    _, trial = make_trial(tmp_path, metric="val_loss")
    (seg,) = list(trial.segments())
    with pytest.raises(ValueError, match="val_loss"):
        seg.report(loss=1.0)
    seg.report(val_loss=0.5, acc=0.9)
    assert seg.reported == {"val_loss": 0.5, "acc": 0.9}
    lines = (trial.run_dir / "metrics.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    assert last["metrics"] == {"val_loss": 0.5, "acc": 0.9} and last["step"] == 4


def test_open_refuses_a_directory_writable_by_others(tmp_path):
    from asha_hpc.errors import AshaError

    exp = ExpDir.create(tmp_path / "exp")
    exp.config.write_text("name: x\n")
    os.chmod(exp.inbox, 0o777)
    with pytest.raises(AshaError, match=r"inbox: writable by other users; refusing"):
        ExpDir.open(exp.root)
    os.chmod(exp.inbox, 0o700)
    assert ExpDir.open(exp.root).root == exp.root


def test_checkpoint_costs_one_fsync_per_file_plus_two(tmp_path, monkeypatch):
    """The data, the manifest and the rename are durable before a result can name the
    checkpoint; nothing more (each fsync is milliseconds between two segments)."""
    exp, trial = make_trial(tmp_path)
    fsyncs = []
    for name in ("fsync", "fdatasync"):  # either makes data durable: count both
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda fd, real=real: (fsyncs.append(fd), real(fd))[1])
    with trial.save_checkpoint(length=4) as p:
        (p / "w.bin").write_bytes(b"1" * 10)
        (p / "opt.bin").write_bytes(b"2" * 10)
    assert len(fsyncs) == 2 + 2
    ckpt = trial.latest_checkpoint
    man = json.loads((ckpt / "MANIFEST.json").read_text())
    assert man["files"] == {"w.bin": 10, "opt.bin": 10} and man["length"] == 4


def test_only_attempts_from_the_one_about_to_start_on_are_unjournaled(tmp_path):
    """What a trial's folder holds from attempt (segment, attempt) on: checkpoints (published
    or still written), run folders; older attempts and other files stay where they are."""
    exp = ExpDir.create(tmp_path / "e")
    ck, runs = exp.checkpoints(3), exp.trial_dir(3) / "runs"
    for name in ("t00003-s000-a00-0001", "t00003-s001-a00-0001", "t00003-s001-a01-0002",
                 ".tmp-t00003-s002-a00-0001", "t00003-s000-a01-0001"):
        (ck / name).mkdir(parents=True)
    for key in ("t00003-s000-a00", "t00003-s001-a00", "t00003-s002-a00"):
        (runs / key).mkdir(parents=True)
    (exp.trial_dir(3) / "hparams.json").write_text("{}")
    assert [p.name for p in exp.unjournaled(3, 1, 0)] == [
        ".tmp-t00003-s002-a00-0001", "t00003-s001-a00-0001", "t00003-s001-a01-0002",
        "t00003-s001-a00", "t00003-s002-a00"]
    assert [p.name for p in exp.unjournaled(3, 2, 1)] == []
    assert exp.unjournaled(3, 0, 0) == [exp.trial_dir(3)]
    assert exp.unjournaled(4, 0, 0) == [] and exp.unjournaled(4, 1, 0) == []
    dest = exp.set_aside(exp.unjournaled(3, 1, 1), since=0.0)
    assert dest.parent == exp.root / "unjournaled"
    assert sorted(p.name for p in ck.iterdir()) == ["t00003-s000-a00-0001", "t00003-s000-a01-0001",
                                                     "t00003-s001-a00-0001"]
    assert (dest / "trials" / "00003" / "checkpoints" / "t00003-s001-a01-0002").is_dir()
    assert (dest / "trials" / "00003" / "runs" / "t00003-s002-a00").is_dir()

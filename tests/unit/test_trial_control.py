"""TrialControl: the job wrapper's side of a Trial (what jobmain sets and reads), driven as a
job drives it around a training function written as the README's quick start writes one."""
from __future__ import annotations

from asha_hpc.job.trial import Trial, TrialControl, checkpoint_length
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.views.observe import curve_rows

from conftest import require_module

torch = require_module("torch")


def make(tmp_path, key="t00003-s001-a00", lengths=(4,), first=1):
    exp = ExpDir.create(tmp_path / "exp")
    trial = Trial(trial_id=3, hparams={"lr": 0.1}, trial_dir=exp.trial_dir(3),
                  run_dir=exp.run_dir(3, key), segments=list(lengths), first_segment=first,
                  metric="val_loss", key=key, length_unit="epochs")
    return trial, TrialControl(trial)


def train(trial):
    """A plain PyTorch loop over segments: checkpoint each segment, report val_loss."""
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=trial.hparams["lr"])
    x, y = torch.randn(32, 2), torch.randn(32, 1)
    epoch = 0
    for segment in trial.segments():
        while epoch < segment.length:
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            epoch += 1
            if trial.should_stop():
                break
        with trial.save_checkpoint(length=epoch) as path:
            torch.save({"model": model.state_dict(), "epoch": epoch}, path / "model.pt")
        if trial.should_stop():
            return
        segment.report(val_loss=loss.item())


def test_a_job_continues_the_trial_in_place_and_names_checkpoints_by_attempt(tmp_path):
    trial, control = make(tmp_path)
    asked = []

    def next_segment(seg):  # what jobmain's _continue does: publish, then the master decides
        asked.append((seg.index, seg.length, control.segment_metrics(seg.index, seg.length)))
        if seg.index == 1:
            control.start_attempt("t00003-s002-a00", ExpDir(tmp_path / "exp").run_dir(3, "t00003-s002-a00"))
            return 16, 2
        return None

    control.continue_with(next_segment)
    train(trial)
    assert [(i, n) for i, n, _ in asked] == [(1, 4), (2, 16)]
    # each segment's result point is in its own run folder (status, export --curves: its key)
    rows = curve_rows(ExpDir(tmp_path / "exp"))
    assert [(r["key"], r["segment"], r["step"]) for r in rows] == [
        ("t00003-s001-a00", 1, 4), ("t00003-s002-a00", 2, 16)]
    assert all(m is not None and m["val_loss"] > 0 for _, _, m in asked)
    ckpt, length = control.latest_checkpoint()
    assert length == 16 and ckpt is not None and ckpt.name.startswith("t00003-s002-a00-")
    assert control.segment_metrics(2, 4) is None  # segment 2 reached 16, not 4
    assert control.stop_reason is None and not control.stop_requested


def test_a_stop_signal_leaves_a_checkpoint_and_no_report(tmp_path):
    trial, control = make(tmp_path, lengths=(50,))
    control.stop("SIGUSR2")
    train(trial)
    assert control.stop_requested and control.stop_reason == "SIGUSR2"
    assert control.segment_metrics(1, 50) is None and trial.reports == []
    ckpt, length = control.latest_checkpoint()
    assert length == 1 and checkpoint_length(ckpt) == 1


def test_latest_checkpoint_reads_the_disk_when_this_process_saved_none(tmp_path):
    trial, control = make(tmp_path)
    assert control.latest_checkpoint() == (None, None)
    with trial.save_checkpoint(length=7) as path:
        (path / "w.bin").write_bytes(b"w")
    again = Trial(trial_id=3, hparams={}, trial_dir=trial.dir, run_dir=trial.run_dir,
                  segments=[8], first_segment=2, metric="val_loss", key="t00003-s002-a00")
    path, length = TrialControl(again).latest_checkpoint()
    assert length == 7 and path == trial.latest_checkpoint

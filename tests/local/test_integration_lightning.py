"""The Lightning callback with the real package: the example and a foreign-style
``pytorch_lightning`` script end to end through ``asha-hpc run`` (per-segment jobs, then a
worker pool continuing in place), no trial ever retrained from scratch; wrong use, a stop
request and resumption in process."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml

from asha_hpc.job.trial import Trial, checkpoint_length
from asha_hpc.protocol.expdir import ExpDir

from conftest import REPO_ROOT, require_module
from helpers import cli, final_state

require_module("torch")
L = pytest.importorskip("lightning")
FOREIGN = Path(__file__).parent.parent / "foreign"
EXAMPLE = REPO_ROOT / "examples" / "lightning_digits"


def trained_lengths(exp_dir: Path):
    """{trial id: the positions of its learning-curve lines, in order} from metrics.jsonl."""
    out = {}
    for tdir in sorted((exp_dir / "trials").iterdir()):
        steps = []
        for run in sorted((tdir / "runs").iterdir()):
            m = run / "metrics.jsonl"
            if m.exists():
                steps += [json.loads(line)["step"] for line in m.read_text().splitlines()]
        out[int(tdir.name)] = steps
    return out


def test_lightning_digits_example(tmp_path):
    """The example, small: 4 trials to 1 epoch, the best 2 on to 3; each epoch trained once."""
    require_module("sklearn")
    cfg = yaml.safe_load((EXAMPLE / "lightning_digits.yaml").read_text())
    cfg["entrypoint"] = str(EXAMPLE / cfg["entrypoint"])
    cfg["searcher"].update(max_length=3, max_trials=4, divisor=3)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    cli("run", tmp_path / "c.yaml", "--exp-dir", tmp_path / "e", timeout=600)
    _, st = final_state(tmp_path / "e")
    assert st.lifecycle == "completed" and st.counts()["total"] == 4
    best = st.ranked()[0]
    assert best.length == 3 and 0 < best.metric < 2.3  # below chance log-loss
    assert (Path(best.checkpoint) / "lightning.ckpt").is_file()
    curves = trained_lengths(tmp_path / "e")
    for t in st.trials.values():  # one point per epoch trained: resumed, never retrained
        assert curves[t.id] == list(range(1, t.length + 1)), (t.id, curves[t.id])


def foreign_config(tmp_path: Path, hparams: dict | None = None, **local) -> Path:
    cfg = {
        "name": "pl_foreign", "entrypoint": str(FOREIGN / "pl_regression.py") + ":train",
        "searcher": {"name": "async_halving", "metric": "val/mse", "max_length": {"batches": 20},
                     "num_rungs": 3, "divisor": 2, "max_trials": 4, "max_concurrent_trials": 2},
        "hyperparameters": {"lr": {"type": "log", "minval": -3, "maxval": -1, "base": 10},
                            "width": {"type": "int", "minval": 4, "maxval": 32},
                            **(hparams or {})},
        "reproducibility": {"experiment_seed": 5}, "poll_interval_s": 0.3,
        "local": {"gpus": [], "max_parallel": 2, **local},
    }
    path = tmp_path / "pl.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_foreign_pytorch_lightning_steps_in_a_worker_pool(tmp_path):
    """``pytorch_lightning``, steps, validation every 5 batches (not aligned with the rungs
    5, 10, 20): the callback validates at each rung, and in a pool of 2 workers a promoted trial
    continues in place; every optimizer step of every trial is trained exactly once."""
    require_module("pytorch_lightning")
    cli("run", foreign_config(tmp_path, workers=2), "--exp-dir", tmp_path / "e", timeout=600)
    _, st = final_state(tmp_path / "e")
    assert st.lifecycle == "completed" and st.counts()["total"] == 4
    assert max(t.length for t in st.trials.values()) == 20
    for t in st.trials.values():
        log = [json.loads(x)
               for x in (st_dir(tmp_path / "e", t.id) / "trained.jsonl").read_text().splitlines()]
        assert [r["step"] for r in log] == list(range(1, t.length + 1)), t.id
        assert t.metric is not None and t.metric == t.metric  # a number, not NaN
    pids = {json.loads(x)["pid"] for t in st.trials.values()
            for x in (st_dir(tmp_path / "e", t.id) / "trained.jsonl").read_text().splitlines()}
    assert len(pids) <= 2  # two warm workers trained everything


def test_early_stopping_ends_a_trial_with_its_final_model_and_the_search_goes_on(tmp_path):
    """The tutorials' ``EarlyStopping`` (patience 1; every validation after the first counts
    as no improvement): a trial promoted to 20 steps stops at its next validation. The model
    is final: that validation is its result for the segment (and any promotion), with the
    checkpoint taken there; one attempt, nothing retried, and the search goes on to the end."""
    require_module("pytorch_lightning")
    cfg = foreign_config(tmp_path, {"min_delta": 100.0}, workers=0)
    raw = yaml.safe_load(cfg.read_text())  # two trials, the better one promoted: three fits
    raw["searcher"].update(max_trials=2, num_rungs=2)
    cfg.write_text(yaml.safe_dump(raw))
    cli("run", cfg, "--exp-dir", tmp_path / "e", timeout=600)
    _, st = final_state(tmp_path / "e")
    assert st.lifecycle == "completed" and st.counts()["total"] == 2
    assert st.counts()["failed"] == 0
    ended = [t for t in st.trials.values() if t.ended_early is not None]
    assert ended and all(t.length == 20 and 10 < t.ended_early < 20 for t in ended)
    results = [json.loads(x.split(" ", 1)[1]) for x in
               (tmp_path / "e" / "journal.jsonl").read_text().splitlines()]
    for t in ended:
        assert t.attempt == 0 and t.restarts == 0, t.id  # one attempt: never retried
        (r,) = [r for r in results if r["kind"] == "result" and r["trial"] == t.id
                and r.get("ends_trial")]
        assert r["status"] == "completed" and r["reached"] == t.ended_early
        assert "EarlyStopping" in r["error"] and "the model is final" in r["error"]
        assert checkpoint_length(Path(t.checkpoint)) == t.ended_early  # taken at the stop
        assert t.rung_metrics[20] == r["metrics"]["val/mse"] and 10 in t.rung_metrics
    best = cli("best", tmp_path / "e", "--top", "4").stdout
    assert all(f"its code ended training at {t.ended_early}" in best for t in ended)


@pytest.mark.parametrize("workers", [0, 2], ids=["a job per segment", "warm workers"])
def test_code_that_raises_after_its_segment_is_done_keeps_the_result_either_way(tmp_path,
                                                                              workers):
    """``trainer.test()`` after ``fit`` on a model without ``test_step`` raises once the
    segment was checkpointed and reported. A warm worker has published that result before the
    code goes on; a job per segment must not tell another story: the results stand both ways,
    and each job's log shows the error for the user to fix."""
    require_module("pytorch_lightning")
    cfg = foreign_config(tmp_path, {"then_test": {"type": "const", "val": True}}, workers=workers)
    raw = yaml.safe_load(cfg.read_text())  # two trials, the better one promoted: three fits
    raw["searcher"].update(max_trials=2, num_rungs=2)
    cfg.write_text(yaml.safe_dump(raw))
    cli("run", cfg, "--exp-dir", tmp_path / "e", timeout=600)
    _, st = final_state(tmp_path / "e")
    assert st.lifecycle == "completed" and st.counts()["total"] == 2
    assert all(t.status != "failed" and t.restarts == 0 for t in st.trials.values())
    assert max(t.length for t in st.trials.values()) == 20
    logs = "".join(p.read_text(errors="replace")
                   for p in (tmp_path / "e").rglob("*.err") if p.is_file())
    assert "raised after its segment was done" in logs and "test_step" in logs


def test_a_new_trial_that_resumes_another_runs_checkpoint_is_refused(tmp_path):
    """The tutorials' ``ModelCheckpoint(dirpath=...)`` shared by every run and
    ``fit(ckpt_path="last")``: a new trial would train on (and report as its own) the weights
    and optimizer of whichever run saved there last. Refused, naming the way to resume."""
    from asha_hpc.integrations.segments import IntegrationError

    example = load_example()
    shared = tmp_path / "checkpoints"

    def fit(trial, ckpt_path):
        from asha_hpc.integrations.lightning import AshaCallback

        cb = AshaCallback(trial)
        trainer = L.Trainer(max_epochs=cb.max_epochs, limit_train_batches=4, limit_val_batches=1,
                            logger=False, enable_progress_bar=False, enable_model_summary=False,
                            callbacks=[L.pytorch.callbacks.ModelCheckpoint(dirpath=shared,
                                                                           save_last=True), cb])
        trainer.fit(example.LitClassifier(hidden=8), datamodule=example.DigitsDataModule(32),
                    ckpt_path=ckpt_path)

    fit(make_trial(tmp_path / "earlier", 2), None)  # an earlier run leaves last.ckpt there
    assert (shared / "last.ckpt").exists()
    want = (r"trial 1 is new but training resumed at 2 epochs, from a checkpoint that is not "
            r"this trial's .* pass trainer.fit\(\.\.\., ckpt_path=cb.ckpt_path\)")
    with pytest.raises(IntegrationError, match=want):
        fit(make_trial(tmp_path / "now", 2), "last")


def test_early_stopping_in_process_says_what_ended_training(tmp_path):
    from asha_hpc.errors import TrainingEndedEarly

    stop = L.pytorch.callbacks.EarlyStopping(monitor="val_loss", patience=1, min_delta=100.0)
    t = make_trial(tmp_path, 4)
    with pytest.raises(TrainingEndedEarly, match=r"training stopped at 2 epochs, before the "
                                                 r"segment's length 4 \(EarlyStopping, in the "
                                                 r"Trainer's callbacks\): the model is final"):
        tiny_fit(t, extra_callbacks=[stop])
    # the final model's validation is the segment's result, with its checkpoint
    assert [s.length for s in t.reports] == [4] and t.reports[0].reported["val_loss"] > 0
    assert checkpoint_length(t.latest_checkpoint) == 2


def st_dir(exp: Path, tid: int) -> Path:
    return exp / "trials" / f"{tid:05d}"


# ---------------------------------------------------------------------------- in process
def load_example():
    """The example's train.py as a module of its own name (both examples call theirs train)."""
    if "lightning_digits_train" not in sys.modules:
        spec = importlib.util.spec_from_file_location("lightning_digits_train", EXAMPLE / "train.py")
        sys.modules["lightning_digits_train"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["lightning_digits_train"])
    return sys.modules["lightning_digits_train"]


def make_trial(tmp_path, length, segment=0, attempt=0, max_length=6, metric="val_loss",
               unit="epochs"):
    root = tmp_path / "exp"
    exp = ExpDir(root) if root.exists() else ExpDir.create(root)
    key = f"t00001-s{segment:03d}-a{attempt:02d}"
    return Trial(trial_id=1, hparams={}, trial_dir=exp.trial_dir(1), run_dir=exp.run_dir(1, key),
                 segments=[length], first_segment=segment, metric=metric, key=key,
                 length_unit=unit, max_length=max_length)


def tiny_fit(trial, monitor="val_loss", stop_after=None, extra_callbacks=(), **trainer_kw):
    """The example's module on a few batches; ``stop_after``: request a stop after that many
    batches (what the job's signal handler does)."""
    example = load_example()
    from asha_hpc.integrations.lightning import AshaCallback

    class Signal(L.Callback):
        n = 0

        def on_train_batch_end(self, trainer, *a):
            self.n += 1
            if stop_after is not None and self.n == stop_after:
                trial.request_stop("SIGUSR2")

    cb = AshaCallback(trial, monitor=monitor)
    kw = dict(max_epochs=cb.max_epochs, limit_train_batches=4, limit_val_batches=1,
              logger=False, enable_progress_bar=False, enable_model_summary=False)
    kw.update(trainer_kw)
    signal = Signal()
    trainer = L.Trainer(callbacks=[signal, cb, *extra_callbacks], **kw)
    trainer.fit(example.LitClassifier(hidden=8), datamodule=example.DigitsDataModule(32),
                ckpt_path=cb.ckpt_path)
    return cb, signal.n


def test_wrong_max_epochs_is_one_clear_message(tmp_path):
    from asha_hpc.integrations.segments import IntegrationError

    want = (r"Trainer\(max_epochs=10\) but the searcher's max_length is 6 epochs: "
            r"pass Trainer\(max_epochs=cb.max_epochs\)")
    with pytest.raises(IntegrationError, match=want):
        tiny_fit(make_trial(tmp_path, 2), max_epochs=10)


@pytest.mark.parametrize("kw,want", [
    ({"check_val_every_n_epoch": 2}, r"Trainer\(check_val_every_n_epoch=2\) skips the validation"),
    ({"min_epochs": 3}, r"Trainer\(min_epochs=3\) would train past the end of a shorter segment"),
    ({"min_steps": 10}, r"Trainer\(min_steps=10\) would train past"),
    ({"extra_callbacks": [L.pytorch.callbacks.ModelCheckpoint(save_top_k=2, monitor="val_loss")]},
     r"AshaCallback comes before ModelCheckpoint in the Trainer's callbacks: .* put AshaCallback "
     r"last"),
])
def test_trainer_settings_that_would_misrank_or_waste_are_refused(tmp_path, kw, want):
    from asha_hpc.integrations.segments import IntegrationError

    with pytest.raises(IntegrationError, match=want):
        tiny_fit(make_trial(tmp_path, 2), **kw)


def test_a_segment_end_without_a_validation_is_never_ranked_by_an_older_one(tmp_path):
    """Epochs of 4 batches validated every 3 (``val_check_interval=3``): no validation runs at
    an epoch's end, so the segment's end would report the validation of step 7 as step 8's."""
    from asha_hpc.integrations.segments import IntegrationError

    t = make_trial(tmp_path, 2)
    with pytest.raises(IntegrationError, match=r"no validation ran at this segment's end \(2 "
                                                r"epochs, step 8\): 'val_loss' is the one "
                                                r"validated at step 7"):
        tiny_fit(t, val_check_interval=3)
    assert t.reports == []


def test_a_trial_resumed_in_a_new_job_trains_as_if_it_had_gone_on(tmp_path):
    """The user's code seeds at its start (``seed_everything``, as the tutorials do) and the
    data are shuffled, the model has dropout. Four epochs in one go (a trial continued in
    place) and two, then two more in a new job from the checkpoint (the same trial resumed),
    end at the same validation loss: the resumed job draws what the first would have."""
    def fit(trial):
        L.seed_everything(7)
        tiny_fit(trial)
        return trial.reports[-1].reported["val_loss"]

    straight = fit(make_trial(tmp_path / "straight", 4))
    fit(make_trial(tmp_path / "resumed", 2))
    resumed = fit(make_trial(tmp_path / "resumed", 4, segment=1))
    assert resumed == pytest.approx(straight, rel=1e-6)


def test_random_states_survive_a_checkpoint_loaded_weights_only():
    """What the callback keeps loads with ``torch.load(weights_only=True)`` (Lightning's
    default under torch 2.6 and later) and puts every generator back where it was, a pending
    Gaussian draw included."""
    import io
    import random

    import numpy as np
    import torch

    from asha_hpc.integrations.lightning import _rng_states, _set_rng_states

    random.gauss(0, 1)
    np.random.standard_normal()
    buf = io.BytesIO()
    torch.save({"rng": _rng_states()}, buf)
    draws = (random.random(), random.gauss(0, 1), np.random.standard_normal(), torch.rand(3))
    buf.seek(0)
    _set_rng_states(torch.load(buf, weights_only=True)["rng"])
    again = (random.random(), random.gauss(0, 1), np.random.standard_normal(), torch.rand(3))
    assert draws[:3] == again[:3] and torch.equal(draws[3], again[3])


def test_monitor_never_logged_lists_what_was(tmp_path):
    from asha_hpc.integrations.segments import IntegrationError

    with pytest.raises(IntegrationError) as e:
        tiny_fit(make_trial(tmp_path, 2), monitor="valid_loss")
    msg = str(e.value)
    assert "'valid_loss' was never logged" in msg
    assert "'val_acc', 'val_loss'" in msg and "train_loss" in msg


def test_stop_request_checkpoints_mid_segment_and_the_next_job_resumes(tmp_path):
    t = make_trial(tmp_path, 4)
    cb, batches = tiny_fit(t, stop_after=6)  # 4 batches an epoch: stops in epoch 2
    assert t.reports == [] and batches == 6
    assert checkpoint_length(t.latest_checkpoint) == 1  # epochs complete in it
    assert cb.ckpt_path is not None
    t2 = make_trial(tmp_path, 4, attempt=1)  # the retry of the same segment
    _, batches2 = tiny_fit(t2)
    assert [s.length for s in t2.reports] == [4] and t2.reports[0].reported["val_loss"] > 0
    assert batches + batches2 == 4 * 4  # resumed mid-epoch: no batch trained twice


def test_a_job_killed_after_the_last_segments_checkpoint_is_reported_by_its_retry(tmp_path):
    """The last segment (to max_length) saved its checkpoint, and the job was killed before
    its result went out. The retry resumes a checkpoint at max_epochs: Lightning skips the
    training loop (no on_train_start), and the trial failed for good with "the searcher's
    metric was never reported". The metrics saved with the checkpoint are its result."""
    t = make_trial(tmp_path, 6)
    tiny_fit(t)
    (done,) = t.reports
    assert checkpoint_length(t.latest_checkpoint) == 6  # published; then the job was killed
    t2 = make_trial(tmp_path, 6, attempt=1)
    _, batches = tiny_fit(t2)
    assert batches == 0 and [s.length for s in t2.reports] == [6]
    assert t2.reports[0].reported["val_loss"] == pytest.approx(done.reported["val_loss"])


def test_a_fit_without_ckpt_path_after_a_checkpoint_is_refused(tmp_path, monkeypatch):
    from asha_hpc.integrations.lightning import AshaCallback
    from asha_hpc.integrations.segments import IntegrationError

    tiny_fit(make_trial(tmp_path, 2))
    t = make_trial(tmp_path, 4, segment=1)
    cb = AshaCallback(t)
    assert cb.ckpt_path.endswith("lightning.ckpt")
    monkeypatch.setattr(AshaCallback, "ckpt_path", property(lambda self: None))  # forgotten
    want = (r"checkpoint at length 2 .* started from scratch: "
            r"pass trainer.fit\(\.\.\., ckpt_path=cb.ckpt_path\)")
    with pytest.raises(IntegrationError, match=want):
        tiny_fit(t)


@pytest.mark.slow
def test_lightning_ddp_on_two_asha_ranks(tmp_path):
    """``strategy="ddp"`` over the two processes asha_hpc starts (``tasks_per_node: 2``, gloo
    on the CPU): every rank saves its part of the checkpoint, rank 0 reports, and the promoted
    trial resumes from it on both ranks."""
    require_module("sklearn")
    cfg = yaml.safe_load((EXAMPLE / "lightning_digits.yaml").read_text())
    cfg["entrypoint"] = str(FOREIGN / "lightning_ddp.py") + ":train"
    cfg["searcher"] = {"name": "async_halving", "metric": "val_loss", "max_length": {"epochs": 2},
                       "num_rungs": 2, "divisor": 2, "max_trials": 2, "max_concurrent_trials": 1}
    cfg["local"] = {"gpus": [], "tasks_per_node": 2}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    cli("run", tmp_path / "c.yaml", "--exp-dir", tmp_path / "e", timeout=900)
    _, st = final_state(tmp_path / "e")
    assert st.lifecycle == "completed" and max(t.length for t in st.trials.values()) == 2
    curves = trained_lengths(tmp_path / "e")
    for t in st.trials.values():  # rank 0's points only, one per epoch trained
        assert curves[t.id] == list(range(1, t.length + 1)), (t.id, curves[t.id])
    ranks = {json.loads(x)["rank"] for t in st.trials.values()
             for x in (st_dir(tmp_path / "e", t.id) / "trained.jsonl").read_text().splitlines()}
    assert ranks == {0, 1}


@pytest.mark.parametrize("strategy,says", [
    ("ddp", "AshaCallback: the Trainer runs 2 processes (devices x num_nodes) but asha_hpc "
            "started 1 for the trial"),
    ("ddp_spawn", "AshaCallback cannot go to processes Lightning spawns (strategy='ddp_spawn'"),
    # a callback of the user's that keeps the trial is pickled first: the trial says it
    ("ddp_spawn probe", "the trial cannot be pickled for another process (Lightning's "
                        "strategy='ddp_spawn'"),
])
def test_lightning_starting_its_own_processes_stops_the_search_with_what_to_set(tmp_path, strategy,
                                                                                says):
    """``Trainer(devices=2)`` in a trial of one process: Lightning's launcher re-ran the job's
    command, a second copy of the job that trained the same trial beside it (a FileExistsError
    on its checkpoint, gloo's "Connection reset by peer"; as a command it hung); ddp_spawn
    failed to pickle the callback. Either stops the search at once, saying what to set."""
    require_module("sklearn")
    cfg = yaml.safe_load((EXAMPLE / "lightning_digits.yaml").read_text())
    cfg["entrypoint"] = str(FOREIGN / "lightning_ddp.py") + ":train"
    cfg["searcher"].update(max_trials=2, max_concurrent_trials=1)
    cfg["local"] = {"gpus": [], "workers": 0}
    cfg["environment_variables"] = {"DEVICES": "2", "STRATEGY": strategy.split()[0],
                                    **({"PROBE": "1"} if "probe" in strategy else {})}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    r = cli("run", tmp_path / "c.yaml", "--exp-dir", tmp_path / "e", check=False, timeout=600)
    assert r.returncode == 1
    line = [x for x in r.stderr.splitlines() if "experiment failed" in x][0]
    assert says in line and "(trial 1;" in line, line
    assert "tasks_per_node" in line


def test_steps_without_a_validation_loop_report_the_training_metric(tmp_path):
    """unit="steps", no validation (limit_val_batches=0): the segment ends at its step with
    what training_step logged."""
    t = make_trial(tmp_path, 5, max_length=10, metric="train_loss", unit="batches")
    from asha_hpc.integrations.lightning import AshaCallback

    example = load_example()
    cb = AshaCallback(t)
    assert cb.unit == "steps" and cb.max_steps == 10 and cb.max_epochs == -1
    trainer = L.Trainer(max_steps=cb.max_steps, callbacks=[cb], limit_val_batches=0, logger=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(example.LitClassifier(hidden=8), datamodule=example.DigitsDataModule(32),
                ckpt_path=cb.ckpt_path)
    assert [s.length for s in t.reports] == [5] and trainer.global_step == 5
    assert t.reports[0].reported["train_loss"] > 0
    assert checkpoint_length(t.latest_checkpoint) == 5


def test_a_monitor_that_would_replace_the_logged_searcher_metric_is_refused(tmp_path):
    from asha_hpc.integrations.segments import IntegrationError

    # the module logs val_acc and val_loss; the searcher ranks by val_acc
    with pytest.raises(IntegrationError, match=r"the searcher's metric 'val_acc' is logged too "
                                               r"\(.*\), and the callback would replace it with "
                                               r"the monitored 'val_loss'"):
        tiny_fit(make_trial(tmp_path, 2, metric="val_acc"), monitor="val_loss")


SIGTERMED = '''
import os
import signal
import sys

import lightning as L

sys.path.insert(0, EXAMPLE_DIR)
from train import DigitsDataModule, LitClassifier  # noqa: E402

from asha_hpc.integrations.lightning import AshaCallback


def scancel_once(trial, trainer):
    """What scancel or preemption does to the job, once: SIGTERM in the middle of an epoch."""
    marker = trial.dir / "sigterm-sent"
    if trainer.current_epoch == 2 and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGTERM)


class Scancel(L.Callback):
    def __init__(self, trial):
        self.trial = trial

    def on_train_batch_end(self, trainer, *args):
        scancel_once(self.trial, trainer)


class ScancelLate(LitClassifier):
    """The signal after every callback's hook of the batch (Lightning calls the model's last),
    before the loop looks at it: where Slurm's signal lands when a batch is quick."""

    def on_train_batch_end(self, *args):
        scancel_once(self.trial, self.trainer)


def train(trial):
    L.seed_everything(trial.id)
    cb = AshaCallback(trial, monitor="val_loss")
    late = trial.hparams["where"] == "model"
    model = ScancelLate(hidden=16) if late else LitClassifier(hidden=16)
    model.trial = trial
    trainer = L.Trainer(max_epochs=cb.max_epochs,
                        callbacks=[cb] if late else [cb, Scancel(trial)],
                        limit_train_batches=4, limit_val_batches=2, logger=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=DigitsDataModule(32), ckpt_path=cb.ckpt_path)
'''


@pytest.mark.parametrize("where", ["callback", "model"])
def test_sigterm_to_a_lightning_trial_is_an_interruption_not_a_failure(tmp_path, where):
    """SIGTERM (scancel, preemption, `cancel`) in the middle of an epoch, in a callback's hook
    or after every callback's (the model's): the callback checkpoints where training is, the
    segment goes on from that checkpoint, and no restart is counted."""
    (tmp_path / "sigterm_model.py").write_text(
        SIGTERMED.replace("EXAMPLE_DIR", repr(str(EXAMPLE))))
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": "term", "entrypoint": "sigterm_model:train",
        "searcher": {"name": "single", "metric": "val_loss", "max_length": {"epochs": 4}},
        "hyperparameters": {"where": where}, "max_restarts": 0, "poll_interval_s": 0.2,
        "local": {"gpus": [], "workers": 0}}))
    cli("run", cfg, "--exp-dir", tmp_path / "e", timeout=600)
    _, st = final_state(tmp_path / "e")
    (t,) = st.trials.values()
    assert st.lifecycle == "completed" and t.length == 4 and t.restarts == 0, t.error
    results = [r for r in json.loads("[" + ",".join(
        line.split(" ", 1)[1] for line in (tmp_path / "e" / "journal.jsonl").read_text()
        .splitlines()) + "]") if r["kind"] == "result"]
    assert [r["status"] for r in results] == ["interrupted", "completed"], results
    assert results[0]["stop_reason"] == "SIGTERM" and results[0]["reached"] == 2

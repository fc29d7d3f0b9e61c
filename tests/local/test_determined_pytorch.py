"""``det.pytorch`` end to end: Determined's own PyTorch tutorial (examples/tutorials/mnist_pytorch:
train.py and model.py as Determined ships them, the two import lines changed; data.py draws
MNIST-shaped images instead of downloading) runs through ``asha-hpc run`` with its adaptive
config; a promoted trial continues from its checkpoint exactly where an unbroken run would be;
a trial's mistakes get one line naming what to do."""
from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from asha_hpc.cli import main
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.protocol.journal import read_journal

from conftest import require_module

TUTORIAL = Path(__file__).parent.parent / "determined_configs" / "mnist_pytorch"
LEGACY = TUTORIAL.with_name("mnist_pytorch_legacy")  # the same tutorial as a Trial class
SLOW = TUTORIAL.with_name("slow_trainer")  # 50 ms a batch: a pause lands mid-segment


def _results(exp: Path) -> list[dict]:
    records, _, _ = read_journal(ExpDir(exp).journal)
    return [r for r in records if r.get("kind") == "result"]


def _reports(exp: Path, trial: int) -> list[list[dict]]:
    runs = sorted((exp / "trials" / f"{trial:05d}" / "runs").iterdir())
    return [[json.loads(x) for x in (r / "report.jsonl").read_text().splitlines()] for r in runs]


def _run(config: Path, exp: Path, capsys) -> None:
    rc = main(["run", str(config), "--exp-dir", str(exp)])
    err = capsys.readouterr().err
    assert rc == 0, err


@pytest.mark.slow
def test_the_mnist_tutorial_searches_and_a_promoted_trial_goes_on_from_its_checkpoint(
        tmp_path, capsys):
    torch = require_module("torch")
    from asha_hpc.compat.determined import pytorch

    exp = tmp_path / "adaptive"
    _run(TUTORIAL / "adaptive.yaml", exp, capsys)
    results = _results(exp)
    assert len({r["trial"] for r in results}) == 5
    assert all(r["status"] == "completed" for r in results), results
    # each rung is judged at its own length (4, 16 batches), although the tutorial validates
    # only every 100 batches
    assert {(r["segment"], r["metrics"]["batches"]) for r in results} <= {(0, 4), (0, 16), (1, 16)}
    promoted = sorted({r["trial"] for r in results if r["segment"] == 1})
    assert promoted, "adaptive_asha promoted nobody"
    kept = []
    for trial in promoted:
        first, second = _reports(exp, trial)
        steps = [line["step"] for line in second if "step" in line]
        # the second job trained batches 5-16: it restored the checkpoint of the first
        assert steps and min(steps) > 4 and max(steps) == 16, second
        # (the best trials keep their checkpoints: checkpoint_storage is not given)
        kept += [p for p in (exp / "trials" / f"{trial:05d}" / "checkpoints").glob("*/*")
                 if p.is_dir()]
    assert kept
    for saved in kept:
        trial = int(saved.parent.parent.parent.name)
        assert {"state_dict.pth", "trial_state.pkl", "metadata.json"} <= \
            {p.name for p in saved.iterdir()}
        state = pickle.loads((saved / "trial_state.pkl").read_bytes())
        assert (state["trial_id"], state["batches_trained"], state["epochs_trained"]) == \
            (trial, 16, 2)

    # the best trial back from its checkpoint, for inference: its model gives the validation
    # loss the search reported
    assert main(["best", str(exp), "--json"]) == 0
    best = json.loads(capsys.readouterr().out)[0]
    before = set(sys.modules)
    sys.path.insert(0, str(TUTORIAL))
    try:
        import train  # the tutorial's module: its trial class was __main__'s in the jobs

        loaded = pytorch.load_trial_from_checkpoint_path(
            best["load_from"], trial_class=train.MNistTrial,
            trial_kwargs={"hparams": best["hparams"]})
    finally:
        sys.path.remove(str(TUTORIAL))
        for name in set(sys.modules) - before:  # train, model, data: names other tests use
            if str(getattr(sys.modules[name], "__file__", "")).startswith(str(TUTORIAL)):
                del sys.modules[name]
    loaded.model.eval()
    with torch.no_grad():
        losses = [loaded.evaluate_batch(batch, i)["validation_loss"] for i, batch in
                  enumerate(loaded.build_validation_data_loader().get_data_loader())]
    assert sum(losses) / len(losses) == pytest.approx(best["metric"], rel=1e-5)

    # the promoted trial ends where the same trial trained 16 batches in one job ends: the
    # same model, optimizer, data order and random state at batch 4
    trial = promoted[0]
    hparams = json.loads((exp / "trials" / f"{trial:05d}" / "hparams.json").read_text())
    final = [r for r in results if r["trial"] == trial and r["segment"] == 1][0]["metrics"]
    folder = tmp_path / "unbroken"
    shutil.copytree(TUTORIAL, folder)
    cfg = yaml.safe_load((TUTORIAL / "const.yaml").read_text())
    cfg["hyperparameters"] = hparams
    cfg["searcher"].update(time_metric="batches", max_time=16)
    cfg["entrypoint"] = "python3 train.py --epochs 2"
    seed = yaml.safe_load(ExpDir(exp).config.read_text())["reproducibility"]["experiment_seed"]
    cfg["reproducibility"] = {"experiment_seed": seed + trial - 1}  # a trial's: seed + its id
    (folder / "const.yaml").write_text(yaml.safe_dump(cfg))
    _run(folder / "const.yaml", tmp_path / "one_job", capsys)
    (alone,) = _results(tmp_path / "one_job")
    assert alone["metrics"]["batches"] == 16
    assert alone["metrics"]["validation_loss"] == pytest.approx(final["validation_loss"],
                                                                rel=1e-5, abs=1e-7)
    assert alone["metrics"]["accuracy"] == final["accuracy"]


@pytest.mark.slow
def test_a_trial_class_of_determined_0_2x_runs_with_its_imports_unchanged(tmp_path, capsys):
    """The tutorial as Determined 0.13-0.2x shipped it: ``entrypoint: model_def:MNistTrial``,
    ``from determined.pytorch import ...``, ``context.get_hparam``, ``get_per_slot_batch_size``,
    ``get_data_config``, ``min_validation_period``."""
    require_module("torch")
    assert "from determined.pytorch import DataLoader, PyTorchTrial, PyTorchTrialContext" in \
        (LEGACY / "model_def.py").read_text()
    exp = tmp_path / "legacy"
    _run(LEGACY / "adaptive.yaml", exp, capsys)
    results = _results(exp)
    assert len({r["trial"] for r in results}) == 6
    assert all(r["status"] == "completed" for r in results), results
    promoted = sorted({r["trial"] for r in results if r["segment"] == 1})
    assert promoted, "adaptive_asha promoted nobody"
    for trial in promoted:
        first, second = _reports(exp, trial)
        validated = [line["step"] for line in second if "validation_loss" in line.get(
            "metrics", {}) and "step" in line]
        assert validated == [8, 16], second  # min_validation_period: {batches: 8}, the rung


def test_the_tutorials_distributed_config_trains_on_two_ranks(tmp_path, capsys):
    """distributed.yaml: Determined's torch launcher becomes torchrun with the trial's 2 slots;
    the model is wrapped in DistributedDataParallel and each rank trains half of each epoch."""
    torch = require_module("torch")
    exp = tmp_path / "ddp"
    _run(TUTORIAL / "distributed.yaml", exp, capsys)
    (res,) = _results(exp)
    assert res["status"] == "completed"
    assert (res["metrics"]["batches"], res["metrics"]["epochs"]) == (8, 1)  # 512 / 2 ranks / 32
    (saved,) = [p for p in (exp / "trials/00001/checkpoints").glob("*/*") if p.is_dir()]
    state = torch.load(saved / "state_dict.pth", weights_only=False)
    assert all(k.startswith("module.") for k in state["models_state_dict"][0])


@pytest.mark.slow
def test_two_ranks_paused_between_reports_stop_together_where_they_are(tmp_path):
    """Under torchrun the ranks agree every batch (one all-reduce) whether the job must stop,
    so a pause checkpoints where the ranks are, not at the next report 1000 batches on."""
    require_module("torch")
    shutil.copy(SLOW / "train.py", tmp_path / "train.py")
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump({
        "name": "ddp-pause", "hyperparameters": {"lr": 0.05},
        "entrypoint": "python3 -m determined.launch.torch_distributed python3 train.py "
                      "--report-every 1000 --say-batches",
        "searcher": {"name": "single", "metric": "validation_loss", "time_metric": "batches",
                     "max_time": 200},
        "resources": {"slots_per_trial": 2},
        "environment": {"environment_variables": ["OMP_NUM_THREADS=1"]}}))
    exp = tmp_path / "exp"
    run = [sys.executable, "-m", "asha_hpc.cli"]
    master = subprocess.Popen([*run, "run", str(tmp_path / "exp.yaml"), "--exp-dir", str(exp)],
                              stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(
            "rank 1 trained batch 20" in p.read_text() for p in (exp / "jobs").glob("*.out")):
        time.sleep(0.2)
    assert main(["pause", str(exp)]) == 0
    _, err = master.communicate(timeout=120)
    assert "search paused" in err, err
    r = subprocess.run([*run, "resume", str(exp)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (res,) = _results(exp)[-1:]
    assert res["status"] == "completed" and res["metrics"]["batches"] == 200
    # each job trained its part: the second from the batch after the one the pause stopped
    # at (no batch trained twice, none left out), the first stopped long before the end
    logs = sorted((exp / "jobs").glob("*_log.out"), key=lambda p: int(p.name.split("_")[0]))
    per_job = [[int(n) for n in re.findall(r"rank 0 trained batch (\d+)", p.read_text())]
               for p in logs]  # (re: the two ranks' lines interleave)
    assert len(per_job) == 2 and per_job[0] and per_job[1], per_job
    assert per_job[0] + per_job[1] == list(range(1, 201))


def test_scancels_sigterm_to_every_process_lets_a_trainer_with_loader_workers_checkpoint(
        tmp_path):
    """Slurm's scancel (a cancel, a preemption) sends SIGTERM to every process of the job: the
    script and its DataLoader's worker processes. The workers outlive it, and the Trainer
    stores a checkpoint where it is and exits 0 (a worker killed by it failed the batch)."""
    require_module("torch")
    exp, run = tmp_path / "exp", tmp_path / "exp/trials/00001/runs/r0"
    (run / "checkpoint_out").mkdir(parents=True)
    (exp / "experiment.yaml").write_text(yaml.safe_dump({"searcher": {
        "name": "single", "metric": "validation_loss", "max_length": {"batches": 400},
        "time_metric": "batches"}}))
    env = dict(os.environ, ASHA_EXP_DIR=str(exp), ASHA_TRIAL_ID="1",
               ASHA_TRIAL_DIR=str(exp / "trials/00001"), ASHA_RUN_DIR=str(run),
               ASHA_SEGMENT="0", ASHA_TARGET_LENGTH="400", ASHA_LENGTH_UNIT="batches",
               ASHA_METRIC="validation_loss", ASHA_HPARAMS=json.dumps({"lr": 0.05}),
               ASHA_LATEST_CHECKPOINT="", ASHA_CHECKPOINT_DIR=str(run / "checkpoint_out"),
               ASHA_REPORT_FILE=str(run / "report.jsonl"), ASHA_STOP_FILE=str(run / "STOP"))
    p = subprocess.Popen([sys.executable, str(SLOW / "train.py"), "--workers", "2",
                          "--say-batches"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                         text=True, start_new_session=True)
    assert p.stdout is not None
    for line in p.stdout:  # some batches, through the workers
        if line.startswith("rank 0 trained batch 10"):
            break
    os.killpg(p.pid, signal.SIGTERM)  # every process of the job, as scancel does
    p.stdout.read()
    assert p.wait(timeout=60) == 0
    (saved,) = [json.loads(x)["saved"] for x in (run / "report.jsonl").read_text().splitlines()
                if "saved" in x]
    state = pickle.loads((run / "checkpoint_out" / saved / "trial_state.pkl").read_bytes())
    assert 10 <= state["batches_trained"] < 400


def test_a_trial_written_wrong_stops_the_search_at_once_with_one_line(tmp_path, capsys):
    """The tutorial with its optimizer not wrapped: every trial would fail the same way, so
    the first one stops the search (no retries, no other trials) with a line saying what to
    do."""
    require_module("torch")
    folder = tmp_path / "tutorial"
    shutil.copytree(TUTORIAL, folder)
    train = (folder / "train.py").read_text()
    wrapped = """self.optimizer = self.context.wrap_optimizer(
            torch.optim.Adadelta(self.model.parameters(), lr=hparams["learning_rate"])
        )"""
    assert wrapped in train
    (folder / "train.py").write_text(train.replace(wrapped, """self.optimizer = \\
            torch.optim.Adadelta(self.model.parameters(), lr=hparams["learning_rate"])"""))
    exp = tmp_path / "exp"
    assert main(["run", str(folder / "adaptive.yaml"), "--exp-dir", str(exp)]) != 0
    err = capsys.readouterr().err
    assert "experiment failed: PyTorchTrial: no optimizer: wrap it with " \
        "context.wrap_optimizer(optimizer) in the trial's __init__" in err
    assert len(_results(exp)) <= 2  # the trials already started; none retried


def test_the_tutorial_trains_outside_a_search(tmp_path):
    """Determined's local training mode: `python train.py` with no cluster trains, validates
    and checkpoints in the working folder."""
    require_module("torch")
    folder = tmp_path / "tutorial"
    shutil.copytree(TUTORIAL, folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASHA_")}
    out = subprocess.run([sys.executable, "train.py", "--batches", "6"], cwd=folder, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "batch 6 validation: accuracy=" in out.stderr
    (ckpt,) = (folder / "checkpoints").iterdir()
    assert json.loads((ckpt / "metadata.json").read_text())["steps_completed"] == 6


# --------------------------------------------------------------------------- in one process
# Determined's local training mode (no search): fit() in this process, checkpoints in ./checkpoints

def _regression_trial(pytorch, torch, **kw):
    """A PyTorchTrial as Determined's docs write one: a linear model, SGD, an LR scheduler
    stepped per epoch, a callback that counts epochs, and a reducer."""

    class EpochCounter(pytorch.PyTorchCallback):
        def __init__(self):
            self.epochs = 0

        def on_training_epoch_end(self, epoch_idx):
            self.epochs += 1

        def state_dict(self):
            return {"epochs": self.epochs}

        def load_state_dict(self, state_dict):
            self.epochs = state_dict["epochs"]

    class RegressionTrial(pytorch.PyTorchTrial):
        def __init__(self, context):
            self.context = context
            torch.manual_seed(0)
            self.model = context.wrap_model(torch.nn.Linear(3, 1))
            self.opt = context.wrap_optimizer(torch.optim.SGD(self.model.parameters(), lr=0.1))
            self.sched = context.wrap_lr_scheduler(
                # not chainable: a scheduler that was not restored starts its count again
                torch.optim.lr_scheduler.LambdaLR(self.opt, lambda epoch: 0.5 ** epoch),
                step_mode=pytorch.LRScheduler.StepMode.STEP_EVERY_EPOCH)
            self.counter = EpochCounter()
            self.seen = context.wrap_reducer(lambda xs: float(sum(xs)), name="records_seen")
            self.steps = 0

        def build_training_data_loader(self):
            g = torch.Generator().manual_seed(1)
            x = torch.randn(40, 3, generator=g)
            return pytorch.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)),
                                      batch_size=8, shuffle=True)

        def build_validation_data_loader(self):
            x = torch.randn(12, 3, generator=torch.Generator().manual_seed(2))
            return pytorch.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)),
                                      batch_size=5)

        def build_callbacks(self):
            return {"counter": self.counter}

        def train_batch(self, batch, epoch_idx, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.model(x), y)
            self.context.backward(loss)
            self.context.step_optimizer(self.opt)
            self.seen.update(len(x))
            if kw.get("stop_at") == batch_idx + 1:
                self.context.set_stop_requested(True)
            return loss  # a bare loss tensor is {"loss": loss}

        def evaluate_batch(self, batch):  # Determined's older signature: no batch_idx
            x, y = batch
            return {"validation_loss": torch.nn.functional.mse_loss(self.model(x), y).item()}

    return RegressionTrial


def _fit(pytorch, cls, length, ckpt=None, **fit):
    with pytorch.init() as ctx:
        trial = cls(ctx)
        pytorch.Trainer(trial, ctx).fit(max_length=length, latest_checkpoint=ckpt, **fit)
    return trial


def test_a_restart_from_a_checkpoint_ends_where_an_unbroken_run_ends(tmp_path, monkeypatch):
    torch = require_module("torch")
    from asha_hpc.compat.determined import pytorch

    monkeypatch.delenv("ASHA_TRIAL_ID", raising=False)
    monkeypatch.chdir(tmp_path)
    cls = _regression_trial(pytorch, torch)
    whole = _fit(pytorch, cls, pytorch.Epoch(4))
    (tmp_path / "checkpoints").rename(tmp_path / "whole")
    _fit(pytorch, cls, pytorch.Epoch(2))
    (first,) = (tmp_path / "checkpoints").iterdir()
    part = _fit(pytorch, cls, pytorch.Epoch(4), ckpt=first.name)
    assert part.opt.param_groups[0]["lr"] == whole.opt.param_groups[0]["lr"] == 0.1 * 0.5 ** 4
    assert part.counter.epochs == whole.counter.epochs == 4  # the callback's state came back
    for a, b in zip(part.model.parameters(), whole.model.parameters()):
        assert torch.equal(a, b)
    saved = torch.load(next((tmp_path / "whole").iterdir()) / "state_dict.pth",
                       weights_only=False)
    assert saved["callbacks"] == {"counter": {"epochs": 4}}
    assert len(saved["lr_schedulers_state_dict"]) == 1


def test_set_stop_requested_validates_checkpoints_and_ends(tmp_path, monkeypatch, caplog):
    torch = require_module("torch")
    from asha_hpc.compat.determined import pytorch

    monkeypatch.delenv("ASHA_TRIAL_ID", raising=False)
    monkeypatch.chdir(tmp_path)
    caplog.set_level("INFO", logger="determined.pytorch")
    _fit(pytorch, _regression_trial(pytorch, torch, stop_at=3), pytorch.Batch(50))
    assert "batch 3 validation: validation_loss=" in caplog.text
    assert "records_seen=24" in caplog.text  # the reducer: 3 batches of 8
    (ckpt,) = (tmp_path / "checkpoints").iterdir()
    assert json.loads((ckpt / "metadata.json").read_text())["steps_completed"] == 3


def test_gradient_aggregation_steps_the_optimizer_every_n_batches(tmp_path, monkeypatch):
    torch = require_module("torch")
    from asha_hpc.compat.determined import pytorch

    monkeypatch.delenv("ASHA_TRIAL_ID", raising=False)
    monkeypatch.chdir(tmp_path)
    cls = _regression_trial(pytorch, torch)
    with pytorch.init(aggregation_frequency=2) as ctx:
        trial = cls(ctx)
        steps = []
        step = trial.opt.step
        trial.opt.step = lambda *a, **k: (steps.append(ctx.current_train_batch()), step(*a, **k))
        pytorch.Trainer(trial, ctx).fit(max_length=pytorch.Batch(7))
    assert steps == [1, 3, 5]


@pytest.mark.parametrize("mistake, message", [
    ("no_optimizer", "no optimizer: wrap it with context.wrap_optimizer(optimizer)"),
    ("both_evaluations", "define exactly one of evaluate_batch() and evaluate_full_dataset()"),
    ("torch_loader", "build_training_data_loader() returned a DataLoader, not a "
                     "det.pytorch.DataLoader"),
    ("unwrapped_step", "step_optimizer(): this optimizer was not wrapped"),
])
def test_a_trials_mistake_gets_one_line_saying_what_to_do(tmp_path, monkeypatch, mistake,
                                                          message):
    torch = require_module("torch")
    from asha_hpc.compat.determined import pytorch

    monkeypatch.delenv("ASHA_TRIAL_ID", raising=False)
    monkeypatch.chdir(tmp_path)
    base = _regression_trial(pytorch, torch)

    class Mistaken(base):
        def __init__(self, context):
            super().__init__(context)
            if mistake == "no_optimizer":
                context.optimizers.clear()
            if mistake == "unwrapped_step":
                self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)

        def build_training_data_loader(self):
            loader = super().build_training_data_loader()
            return torch.utils.data.DataLoader(loader.dataset, batch_size=8) \
                if mistake == "torch_loader" else loader

        if mistake == "both_evaluations":
            def evaluate_full_dataset(self, data_loader):
                return {"validation_loss": 0.0}

    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        _fit(pytorch, Mistaken, pytorch.Batch(3))

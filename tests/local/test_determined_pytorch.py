"""``det.pytorch`` end to end: Determined's own PyTorch tutorial (examples/tutorials/mnist_pytorch:
train.py and model.py as Determined ships them, the two import lines changed; data.py draws
MNIST-shaped images instead of downloading) runs through ``asha-hpc run`` with its adaptive
config; a promoted trial continues from its checkpoint exactly where an unbroken run would be;
a trial's mistakes get one line naming what to do."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from asha_hpc.cli import main
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.protocol.journal import read_journal

from conftest import require_module

TUTORIAL = Path(__file__).parent.parent / "determined_configs" / "mnist_pytorch"
LEGACY = TUTORIAL.with_name("mnist_pytorch_legacy")  # the same tutorial as a Trial class


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
    require_module("torch")
    exp = tmp_path / "adaptive"
    _run(TUTORIAL / "adaptive.yaml", exp, capsys)
    results = _results(exp)
    assert len({r["trial"] for r in results}) == 8
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

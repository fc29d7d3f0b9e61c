"""The framework callbacks in a script run as a command entrypoint (``AshaCallback()``, the
trial read from the job's variables): a ``run_glue``-shaped ``HfArgumentParser`` script end to
end through ``asha-hpc run``, with the Transformers examples' flags. Promoted trials resume from
their checkpoints (every step trained once), the learning-rate schedule spans max_length, and
``EarlyStoppingCallback`` ends a trial with its final model, as in a function."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import require_module
from helpers import cli, final_state, journal

require_module("torch")
pytest.importorskip("transformers")
require_module("accelerate")
SCRIPT = Path(__file__).parent.parent / "foreign" / "hf_cli_classifier.py"


def command_search(tmp_path, hparams=None, flags=(), said=None):
    """Two trials: the better one is promoted (every job imports transformers again)."""
    cfg = {
        "name": "hf_cli",
        "entrypoint": {"command": [
            sys.executable, str(SCRIPT), "${args}", "--output_dir", "${ASHA_TRIAL_DIR}/out",
            "--max_steps", "${ASHA_MAX_LENGTH}", "--eval_strategy", "steps", "--eval_steps", "5",
            "--logging_steps", "5", "--lr_scheduler_type", "linear",
            "--per_device_train_batch_size", "16", "--save_strategy", "no", "--report_to", "none",
            "--use_cpu", "true", "--disable_tqdm", "true", "--seed", "${ASHA_TRIAL_SEED}",
            *flags]},
        "searcher": {"name": "async_halving", "metric": "eval_loss", "max_length": {"batches": 20},
                     "num_rungs": 2, "divisor": 2, "max_trials": 2, "max_concurrent_trials": 2},
        "hyperparameters": {"learning_rate": {"type": "log", "minval": -3, "maxval": -2},
                            "hidden_size": {"type": "categorical", "vals": [16, 32]},
                            **(hparams or {})},
        "reproducibility": {"experiment_seed": 5}, "poll_interval_s": 0.3,
        "local": {"gpus": [], "max_parallel": 2},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    r = cli("run", tmp_path / "c.yaml", "--exp-dir", tmp_path / "e", timeout=600)
    if said is not None:  # the master's lines
        said.append(r.stderr)
    return final_state(tmp_path / "e")[1]


def evaluate(tmp_path, ckpt: Path) -> float:
    """The checkpoint's eval_loss as the script's Trainer computes it."""
    code = f"""
import sys; sys.path.insert(0, {str(SCRIPT.parent)!r})
from hf_cli_classifier import Parity, compute_metrics
from transformers import BertForSequenceClassification, Trainer, TrainingArguments
t = Trainer(model=BertForSequenceClassification.from_pretrained({str(ckpt)!r}),
            args=TrainingArguments(output_dir={str(tmp_path / 'eval')!r}, use_cpu=True,
                                   report_to="none", disable_tqdm=True),
            eval_dataset=Parity(64, seed=1), compute_metrics=compute_metrics)
print(t.evaluate()["eval_loss"])
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return float(r.stdout.split()[-1])


def test_a_command_script_with_the_callback_resumes_promoted_trials_on_one_schedule(tmp_path):
    st = command_search(tmp_path)
    assert st.lifecycle == "completed" and st.counts()["total"] == 2
    assert st.counts()["failed"] == 0 and all(t.restarts == 0 for t in st.trials.values())
    promoted = [t for t in st.trials.values() if t.length == 20]
    assert promoted
    for t in st.trials.values():  # every step trained once: promoted trials went on from 10
        log = (tmp_path / "e" / "trials" / f"{t.id:05d}" / "trained.jsonl").read_text().split("\n")
        assert [json.loads(x)["step"] for x in log if x] == list(range(1, t.length + 1)), t.id
    best = st.ranked()[0]
    assert best.length == 20
    ckpt = Path(best.checkpoint)
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["global_step"] == 20
    # one linear decay over max_length (20 steps), across the two jobs: not to zero at 10
    lrs = {e["step"]: e["learning_rate"] for e in state["log_history"] if "learning_rate" in e}
    lr0 = best.hparams["learning_rate"]
    assert sorted(lrs) == [5, 10, 15, 20]
    assert lrs[10] == pytest.approx(lr0 * 10 / 20, rel=0.25) and lrs[15] < lrs[10] < lrs[5]
    assert evaluate(tmp_path, ckpt) == pytest.approx(best.metric, rel=1e-5)


def test_early_stopping_in_a_command_script_ends_trials_with_their_final_models(tmp_path):
    st = command_search(tmp_path, {"early_stopping_patience": {"type": "const", "val": 1},
                                   "early_stopping_threshold": {"type": "const", "val": 100.0}},
                        flags=["--metric_for_best_model", "eval_loss"])
    assert st.lifecycle == "completed" and st.counts()["total"] == 2
    assert st.counts()["failed"] == 0 and all(t.restarts == 0 for t in st.trials.values())
    ended = [t for t in st.trials.values() if t.ended_early is not None]
    # at the first evaluation after the rung at 10 (where the callbacks' patience starts anew)
    assert ended and all(t.ended_early == 15 and t.length == 20 for t in ended)
    for t in ended:
        ckpt = Path(t.checkpoint)
        assert json.loads((ckpt / "trainer_state.json").read_text())["global_step"] == 15
        assert evaluate(tmp_path, ckpt) == pytest.approx(t.metric, rel=1e-5)
    logs = "".join(p.read_text() for p in (tmp_path / "e" / "jobs").glob("*.err"))
    assert "Traceback" not in logs  # the script's TrainingEndedEarly is one line, not an error


def test_the_callback_without_a_trial_outside_any_job_does_nothing(tmp_path):
    """The script run by hand (``--help``, a debugging run): it trains as it did, with one
    line saying the callback does nothing."""
    code = f"""
import sys; sys.path.insert(0, {str(SCRIPT.parent)!r})
sys.argv = ["x", "--output_dir", {str(tmp_path / 'out')!r}, "--max_steps", "3", "--use_cpu",
            "true", "--report_to", "none", "--disable_tqdm", "true", "--save_strategy", "no"]
import hf_cli_classifier
hf_cli_classifier.main()
print("trained", open(hf_cli_classifier.os.environ["ASHA_TRIAL_DIR"] + "/trained.jsonl").read().count("step"))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASHA_")}
    env["ASHA_TRIAL_DIR"] = str(tmp_path)  # the script's own witness writes there
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-1] == "3"  # max_steps as given
    assert r.stderr.count("AshaCallback(): not run by asha_hpc (ASHA_TRIAL_ID is not set): the "
                          "callback does nothing") == 1


def test_mistakes_in_a_command_script_stop_the_search_at_once_in_its_terms(tmp_path):
    """``--max_steps ${ASHA_TARGET_LENGTH}`` (the segment's, not max_length): the callback's
    refusal stops the search at the first trial, as in a function, saying what the command
    passes instead of the function's ``cb.max_steps``."""
    with pytest.raises(AssertionError) as failed:
        command_search(tmp_path, flags=["--max_steps", "${ASHA_TARGET_LENGTH}"])
    err = str(failed.value)
    assert "experiment failed" in err and "the first 3 trials" not in err
    assert "TrainingArguments(max_steps=10) but the searcher's max_length is 20 steps" in err
    assert "in a command script, cb.max_steps is --max_steps ${ASHA_MAX_LENGTH}; " \
        "trainer.train(resume_from_checkpoint=cb.resume_from) stays in the script" in err
    assert "--trainer.max_epochs" not in err  # Lightning's, not this script's
    jobs = [r for r in journal(tmp_path / "e") if r["kind"] == "intent"]
    assert len(jobs) <= 2  # the two started at once; no third


def test_the_callback_without_a_trial_in_a_function_entrypoint_stops_the_search(tmp_path):
    (tmp_path / "model.py").write_text(
        "from asha_hpc.integrations.transformers import AshaCallback\n"
        "def train(trial):\n    AshaCallback(metric='eval_loss')\n")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "fn", "entrypoint": "model:train",
        "searcher": {"name": "random", "metric": "eval_loss", "max_length": {"batches": 4},
                     "max_trials": 3, "max_concurrent_trials": 1},
        "hyperparameters": {"x": 1}, "local": {"gpus": []}}))
    r = cli("run", tmp_path / "c.yaml", "--exp-dir", tmp_path / "e", check=False)
    assert r.returncode == 1 and "AshaCallback() without a trial in a function entrypoint: " \
        "pass the trial the function gets, AshaCallback(trial)" in r.stderr
    assert len([x for x in journal(tmp_path / "e") if x["kind"] == "intent"]) == 1


def test_a_lightning_cli_project_as_the_readme_runs_it(tmp_path):
    """The README's LightningCLI recipe: the callback in ``trainer_defaults``, ``${args}``
    through ``"$@"`` (nested ``model: {lr}`` as ``--model.lr=``), max_epochs from the job,
    ``--ckpt_path`` once there is a checkpoint. Promoted trials go on from their checkpoints
    (every epoch trained once), and the checkpoint ``best`` names, loaded, gives its metric."""
    pytest.importorskip("jsonargparse")
    require_module("lightning")
    project = Path(__file__).parent.parent / "foreign" / "lightning_cli"
    cfg = {
        "name": "cli",
        "entrypoint": {"command": [
            "sh", "-c", f'{sys.executable} main.py fit --config config.yaml '
            '--trainer.max_epochs "$ASHA_MAX_LENGTH" --trainer.default_root_dir "$ASHA_TRIAL_DIR" '
            '"$@" ${ASHA_LATEST_CHECKPOINT:+--ckpt_path "$ASHA_LATEST_CHECKPOINT/lightning.ckpt"}',
            "sh", "${args}"]},
        # two trials: the better one is promoted (every Lightning job imports it again)
        "searcher": {"name": "async_halving", "metric": "val_loss", "max_length": {"epochs": 4},
                     "num_rungs": 2, "divisor": 2, "max_trials": 2, "max_concurrent_trials": 2},
        "hyperparameters": {"model": {"lr": {"type": "log", "minval": -2.5, "maxval": -1.5}}},
        "reproducibility": {"experiment_seed": 2}, "poll_interval_s": 0.3,
        "local": {"gpus": [], "max_parallel": 2},
    }
    for name in ("main.py", "config.yaml"):
        (tmp_path / name).write_text((project / name).read_text())
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    cli("run", tmp_path / "c.yaml", "--exp-dir", tmp_path / "e", timeout=900)
    _, st = final_state(tmp_path / "e")
    assert st.lifecycle == "completed" and st.counts()["total"] == 2
    assert st.counts()["failed"] == 0 and all(t.restarts == 0 for t in st.trials.values())
    assert max(t.length for t in st.trials.values()) == 4
    for t in st.trials.values():  # each epoch once: a promoted trial went on from epoch 2
        log = (tmp_path / "e" / "trials" / f"{t.id:05d}" / "epochs.log").read_text().split("\n")
        assert [json.loads(x)["epoch"] for x in log if x] == list(range(1, t.length + 1)), t.id
    best = st.ranked()[0]
    code = f"""
import sys; sys.path.insert(0, {str(tmp_path)!r})
import lightning as L, main
m = main.RegressionModel.load_from_checkpoint({str(Path(best.checkpoint) / 'lightning.ckpt')!r})
print(L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
      .validate(m, datamodule=main.SineDataModule(), verbose=False)[0]["val_loss"])
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert float(r.stdout.split()[-1]) == pytest.approx(best.metric, rel=1e-5)


def test_a_commands_output_dir_shared_by_every_trial_is_said_once_by_the_master(tmp_path):
    """The tutorials' fixed --output_dir, shared by every trial's save_steps checkpoints: the
    callback in the command's process notices it; the master says it once for the search (it
    was in each job's log only)."""
    said: list[str] = []
    st = command_search(tmp_path, flags=("--output_dir", str(tmp_path / "test_trainer")),
                        said=said)  # two trials' jobs, at once, share it
    assert st.lifecycle == "completed"
    lines = [x for x in said[0].splitlines() if "'s code (said once" in x]
    assert len(lines) == 1 and "lies outside trial" in lines[0] and "test_trainer" in lines[0], \
        said[0]


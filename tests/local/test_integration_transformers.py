"""The Transformers callback with the real package: the example and a foreign-style causal-LM
script end to end through ``asha-hpc run`` (every step of every trial trained once: no trial
restarts from scratch after a promotion); wrong use, a stop request and resumption in process."""
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
pytest.importorskip("transformers")
require_module("accelerate")
FOREIGN = Path(__file__).parent.parent / "foreign"
EXAMPLE = REPO_ROOT / "examples" / "transformers_tiny"


def test_transformers_tiny_example(tmp_path):
    """The example, small: 4 trials to 10 steps, the best on to 30 (continue_in_place)."""
    cfg = yaml.safe_load((EXAMPLE / "transformers_tiny.yaml").read_text())
    cfg["entrypoint"] = str(EXAMPLE / cfg["entrypoint"])
    cfg["searcher"].update(max_length={"batches": 30}, max_trials=4, divisor=3)
    cfg["continue_in_place"] = True
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    cli("run", tmp_path / "c.yaml", "--exp-dir", tmp_path / "e", timeout=600, cwd=tmp_path)
    _, st = final_state(tmp_path / "e")
    assert st.lifecycle == "completed" and st.counts()["total"] == 4
    assert st.trials[1].hparams["learning_rate"] == 5e-5  # the example's points_to_evaluate
    best = st.ranked()[0]
    assert best.length == 30 and 0 < best.metric < 0.75  # below chance log-loss (0.69) or near
    ckpt = Path(best.checkpoint)
    assert (ckpt / "model.safetensors").is_file() and (ckpt / "trainer_state.json").is_file()
    assert json.loads((ckpt / "trainer_state.json").read_text())["global_step"] == 30
    for t in st.trials.values():  # each job's curve starts after the last one's: resumed
        runs = []
        for run in sorted((tmp_path / "e" / "trials" / f"{t.id:05d}" / "runs").iterdir()):
            m = run / "metrics.jsonl"
            if m.exists():
                runs.append([json.loads(x)["step"] for x in m.read_text().splitlines()])
        steps = [s for r in runs for s in r]
        assert steps == sorted(steps) and steps[-1] == t.length, (t.id, runs)
        assert all(min(b) > max(a) for a, b in zip(runs, runs[1:])), (t.id, runs)


@pytest.mark.slow
def test_foreign_causal_lm_script(tmp_path):
    """Eval every 7 steps, default save_steps, rungs 5 / 10 / 20: evaluated and saved at the
    rungs anyway, each promoted trial resumed in a new job; every step trained once."""
    cfg = {
        "name": "hf_foreign", "entrypoint": str(FOREIGN / "hf_causal_lm.py") + ":train",
        "searcher": {"name": "async_halving", "metric": "eval_loss", "max_length": {"batches": 20},
                     "num_rungs": 3, "divisor": 2, "max_trials": 4, "max_concurrent_trials": 2},
        "hyperparameters": {"lr": {"type": "log", "minval": -3.5, "maxval": -2, "base": 10},
                            "n_embd": {"type": "categorical", "vals": [16, 32]}},
        "reproducibility": {"experiment_seed": 2}, "poll_interval_s": 0.3,
        "local": {"gpus": [], "max_parallel": 2},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    r = cli("run", tmp_path / "c.yaml", "--exp-dir", tmp_path / "e", timeout=600, cwd=tmp_path)
    _, st = final_state(tmp_path / "e")
    assert st.lifecycle == "completed" and st.counts()["total"] == 4
    assert max(t.length for t in st.trials.values()) == 20
    # and by the master, once for the search (each trial's names its own number)
    assert r.stderr.count("TrainingArguments(output_dir='gpt2-arith') lies outside trial") == 1
    for t in st.trials.values():
        log = (tmp_path / "e" / "trials" / f"{t.id:05d}" / "trained.jsonl").read_text().splitlines()
        assert [json.loads(x)["step"] for x in log] == list(range(1, t.length + 1)), t.id
        assert 0 < t.metric < 4.0  # below chance (log 41 = 3.7) after a few steps, or near
    # the script's output_dir="gpt2-arith" is every trial's: said in each new trial's log
    logs = [p.read_text() for p in (tmp_path / "e" / "jobs").rglob("*_log.err")]
    said = sum(x.count("TrainingArguments(output_dir='gpt2-arith') lies outside trial") for x in logs)
    assert said == 4  # once per trial, at its start


def test_early_stopping_callback_ends_trials_with_their_final_models(tmp_path):
    """The causal-LM script with the tutorials' ``EarlyStoppingCallback`` (patience 1, a
    threshold no evaluation passes: each trial stops at its second evaluation, step 14) in a
    search whose rungs are 10 and 20 steps: every trial promoted to 20 stops at 14 with its
    final model. Nothing fails or is retried; ``best``'s checkpoint is the model that was
    evaluated there: loaded and evaluated, it gives the metric ``best`` shows."""
    cfg = {
        "name": "hf_early", "entrypoint": str(FOREIGN / "hf_causal_lm.py") + ":train",
        "searcher": {"name": "async_halving", "metric": "eval_loss", "max_length": {"batches": 20},
                     "num_rungs": 2, "divisor": 2, "max_trials": 4, "max_concurrent_trials": 2},
        "hyperparameters": {"lr": {"type": "log", "minval": -3, "maxval": -2, "base": 10},
                            "n_embd": {"type": "const", "val": 16},
                            "early_stopping_patience": {"type": "const", "val": 1},
                            "early_stopping_threshold": {"type": "const", "val": 100.0}},
        "reproducibility": {"experiment_seed": 3}, "poll_interval_s": 0.3,
        "local": {"gpus": [], "max_parallel": 2},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    cli("run", tmp_path / "c.yaml", "--exp-dir", tmp_path / "e", timeout=600, cwd=tmp_path)
    _, st = final_state(tmp_path / "e")
    assert st.lifecycle == "completed" and st.counts()["total"] == 4
    assert st.counts()["failed"] == 0 and all(t.restarts == 0 for t in st.trials.values())
    ended = [t for t in st.trials.values() if t.ended_early is not None]
    # stopped at the first evaluation after 10 (the rung's, a warm worker going on in place;
    # or step 14's, in a job that resumed from the rung's checkpoint)
    assert ended and all(t.ended_early in (10, 14) and t.length == 20 for t in ended)
    best = st.ranked()[0]
    out = cli("best", tmp_path / "e").stdout
    if best.ended_early is not None:
        assert f"its code ended training at {best.ended_early}: the model is final" in out
    ckpt = Path(best.checkpoint)
    step = json.loads((ckpt / "trainer_state.json").read_text())["global_step"]
    assert step == (best.ended_early or best.length)
    spec = importlib.util.spec_from_file_location("hf_causal_lm_script", FOREIGN / "hf_causal_lm.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    from transformers import (
        AutoModelForCausalLM,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainingArguments,
    )

    again = Trainer(model=AutoModelForCausalLM.from_pretrained(ckpt),
                    args=TrainingArguments(output_dir=str(tmp_path / "eval"), use_cpu=True,
                                           report_to="none", disable_tqdm=True),
                    eval_dataset=script.ArithmeticSequences(64, seed=1),
                    data_collator=DataCollatorForLanguageModeling(script.make_tokenizer(), mlm=False))
    assert again.evaluate()["eval_loss"] == pytest.approx(best.metric, rel=1e-5)


# ---------------------------------------------------------------------------- in process
def load_example():
    """The example's train.py as a module of its own name (both examples call theirs train)."""
    if "transformers_tiny_train" not in sys.modules:
        spec = importlib.util.spec_from_file_location("transformers_tiny_train", EXAMPLE / "train.py")
        sys.modules["transformers_tiny_train"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["transformers_tiny_train"])
    return sys.modules["transformers_tiny_train"]


def make_trial(tmp_path, length, segment=0, attempt=0, max_length=12):
    root = tmp_path / "exp"
    exp = ExpDir(root) if root.exists() else ExpDir.create(root)
    key = f"t00001-s{segment:03d}-a{attempt:02d}"
    return Trial(trial_id=1, hparams={"hidden_size": 16, "learning_rate": 1e-3, "weight_decay": 0.0},
                 trial_dir=exp.trial_dir(1), run_dir=exp.run_dir(1, key), segments=[length],
                 first_segment=segment, metric="eval_loss", key=key, length_unit="batches",
                 max_length=max_length)


def tiny_train(trial, tmp_path, metric="eval_loss", stop_at=None, extra_callbacks=(),
               resume="cb", **args_kw):
    example = load_example()
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from asha_hpc.integrations.transformers import AshaCallback

    class Signal(TrainerCallback):
        steps = 0

        def on_step_end(self, args, state, control, **kw):
            self.steps += 1
            if stop_at is not None and state.global_step == stop_at:
                trial.request_stop("SIGUSR2")

    cb = AshaCallback(trial, metric=metric)
    kw = dict(output_dir=str(tmp_path / "out"), max_steps=cb.max_steps, report_to=[],
              per_device_train_batch_size=16, use_cpu=True, disable_tqdm=True, save_strategy="no")
    kw.update(args_kw)
    signal = Signal()
    model = example.BertForSequenceClassification(example.BertConfig(
        vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32, num_labels=2))
    trainer = Trainer(model=model, args=TrainingArguments(**kw),
                      train_dataset=example.CountingDataset(256),
                      eval_dataset=example.CountingDataset(64, seed=1),
                      compute_metrics=example.compute_metrics,
                      callbacks=[signal, cb, *extra_callbacks])
    trainer.train(resume_from_checkpoint=cb.resume_from if resume == "cb" else resume)
    return cb, signal.steps


def test_wrong_max_steps_is_one_clear_message(tmp_path):
    from asha_hpc.integrations.segments import IntegrationError

    want = (r"TrainingArguments\(max_steps=-1\) \(training for num_train_epochs=3.0\) but the "
            r"searcher's max_length is 12 steps: pass TrainingArguments\(max_steps=cb.max_steps\)")
    with pytest.raises(IntegrationError, match=want):
        tiny_train(make_trial(tmp_path, 4), tmp_path, max_steps=-1)


def test_checkpoints_of_the_model_alone_are_refused(tmp_path):
    from asha_hpc.integrations.segments import IntegrationError

    with pytest.raises(IntegrationError, match=r"save_only_model=True\) saves no optimizer"):
        tiny_train(make_trial(tmp_path, 4), tmp_path, save_only_model=True)


def test_metric_never_logged_lists_what_was(tmp_path):
    from asha_hpc.integrations.segments import IntegrationError

    with pytest.raises(IntegrationError) as e:
        tiny_train(make_trial(tmp_path, 4), tmp_path, metric="eval_f1")
    msg = str(e.value)
    assert "'eval_f1' was never logged (at 4 batches)" in msg
    assert "'eval_accuracy'" in msg and "'eval_loss'" in msg


def test_stop_request_saves_and_the_retry_resumes_there(tmp_path):
    t = make_trial(tmp_path, 8)
    cb, steps = tiny_train(t, tmp_path, stop_at=3)
    assert t.reports == [] and steps == 3 and checkpoint_length(t.latest_checkpoint) == 3
    assert cb.resume_from == str(t.latest_checkpoint)
    assert not (t.run_dir / "trainer-checkpoints").exists()  # moved, not copied
    t2 = make_trial(tmp_path, 8, attempt=1)
    _, steps2 = tiny_train(t2, tmp_path)
    assert steps2 == 5 and [s.length for s in t2.reports] == [8]
    assert "eval_accuracy" in t2.reports[0].reported
    # the user's output_dir got none of the segment checkpoints
    assert not list((tmp_path / "out").glob("checkpoint-*"))


def test_a_published_checkpoint_names_no_staging_folder_as_the_best(tmp_path, caplog):
    """With ``metric_for_best_model`` the Trainer records ``best_model_checkpoint`` as the folder
    it saved into. At a segment's end that is the staging folder, moved away when the
    checkpoint is published: the resumed job warned that it "does not exist anymore", and
    ``trainer_state.json`` named a folder that is gone."""
    import logging

    t = make_trial(tmp_path, 4)
    tiny_train(t, tmp_path, eval_strategy="steps", eval_steps=2, metric_for_best_model="eval_loss",
               save_strategy="steps")  # the default save_steps: none of the user's own saves
    state = json.loads((t.latest_checkpoint / "trainer_state.json").read_text())
    assert state["global_step"] == 4 and state["best_global_step"] in (2, 4)
    assert state["best_model_checkpoint"] is None
    t2 = make_trial(tmp_path, 8, segment=1)
    with caplog.at_level(logging.WARNING, logger="transformers.trainer"):
        _, steps = tiny_train(t2, tmp_path, eval_strategy="steps", eval_steps=2,
                              metric_for_best_model="eval_loss", save_strategy="steps")
    assert steps == 4 and [s.length for s in t2.reports] == [8]
    assert "does not exist anymore" not in caplog.text
    state = json.loads((t2.latest_checkpoint / "trainer_state.json").read_text())
    assert state["global_step"] == 8 and state["best_model_checkpoint"] is None


def test_a_job_killed_after_the_last_segments_checkpoint_is_reported_by_its_retry(tmp_path):
    """The last segment's checkpoint (at max_steps) was published and the job killed before
    its result went out: the retry reports the metrics saved with it. (The Trainer looks at
    should_training_stop only after a step: one step is trained, and thrown away.)"""
    t = make_trial(tmp_path, 12)
    tiny_train(t, tmp_path)
    (done,) = t.reports
    ckpt = t.latest_checkpoint
    t2 = make_trial(tmp_path, 12, attempt=1)
    _, steps = tiny_train(t2, tmp_path)
    assert steps <= 1 and [s.length for s in t2.reports] == [12] and t2.latest_checkpoint == ckpt
    assert t2.reports[0].reported["eval_loss"] == pytest.approx(done.reported["eval_loss"])


def test_a_new_trial_that_resumes_from_a_shared_output_dir_is_refused(tmp_path):
    """The tutorials' one ``output_dir`` for every run and ``train(resume_from_checkpoint=True)``
    (the last ``checkpoint-N`` there): a new trial would continue another run's weights,
    optimizer and learning rate, and report them as its own. Refused, naming the way."""
    from asha_hpc.integrations.segments import IntegrationError

    tiny_train(make_trial(tmp_path / "earlier", 4), tmp_path, save_strategy="steps", save_steps=2)
    assert (tmp_path / "out" / "checkpoint-2").is_dir()  # the user's own save_steps checkpoint
    want = (r"trial 1 is new but training resumed at 2 batches, from a checkpoint that is not "
            r"this trial's .*pass trainer.train\(resume_from_checkpoint=cb.resume_from\) "
            r"\(None for a new trial\)")
    with pytest.raises(IntegrationError, match=want):
        tiny_train(make_trial(tmp_path / "now", 4), tmp_path, resume=True)


def test_early_stopping_ends_training_with_the_final_models_evaluation(tmp_path):
    """``EarlyStoppingCallback`` (patience 1; every evaluation after the first counts as no
    improvement) ends training at step 2 of 8. The model is final: the evaluation at step 2 is
    the segment's result, with the model saved there (loadable with ``from_pretrained``)."""
    from transformers import EarlyStoppingCallback

    from asha_hpc.errors import TrainingEndedEarly

    example = load_example()
    stop = EarlyStoppingCallback(early_stopping_patience=1, early_stopping_threshold=100.0)
    t = make_trial(tmp_path, 8)
    want = (r"training stopped at 2 steps, before the segment's length 8 \(EarlyStoppingCallback"
            r".*\): the model is final, and its result at 2 stands")
    with pytest.raises(TrainingEndedEarly, match=want):
        tiny_train(t, tmp_path, extra_callbacks=[stop], eval_strategy="steps", eval_steps=1,
                   metric_for_best_model="eval_loss")
    (seg,) = t.reports
    assert seg.length == 8 and seg.reported["eval_loss"] > 0 and "eval_accuracy" in seg.reported
    ckpt = t.latest_checkpoint
    assert checkpoint_length(ckpt) == 2
    assert json.loads((ckpt / "trainer_state.json").read_text())["global_step"] == 2
    model = example.BertForSequenceClassification.from_pretrained(ckpt)  # the final model
    assert model.config.hidden_size == 16


def test_a_segment_that_ends_mid_epoch_evaluates_and_saves_once(tmp_path):
    """``eval_strategy="epoch"`` / ``save_strategy="epoch"``: the segment ends at step 4 of a
    16-step epoch, evaluated there; closing the epoch must not evaluate and save again (one
    more pass over the evaluation set, one more full checkpoint in the user's output_dir)."""
    from transformers import TrainerCallback

    class Count(TrainerCallback):
        evals: list[int] = []
        saves: list[int] = []

        def on_evaluate(self, args, state, control, **kw):
            self.evals.append(state.global_step)

        def on_save(self, args, state, control, **kw):
            self.saves.append(state.global_step)

    t = make_trial(tmp_path, 4)
    count = Count()
    tiny_train(t, tmp_path, extra_callbacks=[count], eval_strategy="epoch", save_strategy="epoch")
    assert [s.length for s in t.reports] == [4]
    assert count.evals == [4] and count.saves == [4]
    assert not list((tmp_path / "out").glob("checkpoint-*"))


def test_a_segment_that_ends_with_an_epoch_and_goes_on_in_place_evaluates_once(tmp_path):
    """The segment ends at step 16, the end of a 16-step epoch, and the next goes on in the same
    job (worker pool, continue_in_place). The Trainer closes the epoch there: with
    ``eval_strategy="epoch"`` it evaluated a second time, which a job resuming at step 16 does
    not, so the random stream, and the results, depended on how the trial continued."""
    from transformers import TrainerCallback

    class Count(TrainerCallback):
        evals: list[int] = []

        def on_evaluate(self, args, state, control, **kw):
            self.evals.append(state.global_step)

    root = tmp_path / "exp"
    exp = ExpDir.create(root)
    key = "t00001-s000-a00"
    t = Trial(trial_id=1, hparams={"hidden_size": 16, "learning_rate": 1e-3, "weight_decay": 0.0},
              trial_dir=exp.trial_dir(1), run_dir=exp.run_dir(1, key), segments=[16, 32],
              first_segment=0, metric="eval_loss", key=key, length_unit="batches", max_length=32)
    count = Count()
    tiny_train(t, tmp_path, extra_callbacks=[count], eval_strategy="epoch")
    assert [s.length for s in t.reports] == [16, 32]
    assert count.evals == [16, 32], count.evals


def test_a_train_without_resume_after_a_checkpoint_is_refused(tmp_path, monkeypatch):
    from asha_hpc.integrations.segments import IntegrationError
    from asha_hpc.integrations.transformers import AshaCallback

    tiny_train(make_trial(tmp_path, 4), tmp_path)
    t = make_trial(tmp_path, 12, segment=1)
    assert AshaCallback(t).resume_from is not None
    monkeypatch.setattr(AshaCallback, "resume_from", property(lambda self: None))  # forgotten
    want = (r"checkpoint at length 4 .* started from scratch: "
            r"pass trainer.train\(resume_from_checkpoint=cb.resume_from\)")
    with pytest.raises(IntegrationError, match=want):
        tiny_train(t, tmp_path)

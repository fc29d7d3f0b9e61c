"""The examples run end to end, as the README says (small budgets for the PyTorch ones)."""
import json
from pathlib import Path

import yaml

from conftest import REPO_ROOT, require_module
from helpers import cli, final_state

EXAMPLES = REPO_ROOT / "examples"


def test_quadratic_quick_start(tmp_path):
    """The README's first command (run from the repository root)."""
    r = cli("run", "examples/quadratic/quadratic.yaml", "--exp-dir", tmp_path / "q", cwd=REPO_ROOT)
    assert "best trial" in r.stderr
    cfg, st = final_state(tmp_path / "q")
    assert st.lifecycle == "completed" and st.counts()["total"] == 24
    plan = json.loads(cli("plan", EXAMPLES / "quadratic" / "quadratic.yaml", "--json").stdout)
    assert sum(plan["preview"].values()) == 24


def test_command_trial(tmp_path):
    cli("run", EXAMPLES / "command_trial" / "command_trial.yaml", "--exp-dir", tmp_path / "c")
    cfg, st = final_state(tmp_path / "c")
    assert st.lifecycle == "completed" and st.counts()["total"] == 9
    top = [t for t in st.trials.values() if t.length == 27]
    assert top and all(t.metric is not None for t in top)
    curve = (tmp_path / "c" / "trials" / f"{top[0].id:05d}" / "runs")
    assert any(p.joinpath("metrics.jsonl").exists() for p in curve.iterdir())


def small(tmp_path, example, name, **over):
    cfg = yaml.safe_load((EXAMPLES / example / name).read_text())
    cfg["entrypoint"] = str(EXAMPLES / example / cfg["entrypoint"])
    cfg["searcher"].update(over.pop("searcher", {}))
    cfg.update(over)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_pytorch_digits(tmp_path):
    require_module("torch")
    require_module("sklearn")
    cfg = small(tmp_path, "pytorch_digits", "digits.yaml",
                searcher={"max_length": 8, "max_trials": 4, "max_concurrent_trials": 2,
                          "mode": "aggressive"})
    cli("run", cfg, "--exp-dir", tmp_path / "d", timeout=600)
    _, st = final_state(tmp_path / "d")
    assert st.lifecycle == "completed"
    best = st.ranked()[0]
    assert best.length == 8 and 0 < best.metric < 2.5  # log-loss well below chance (2.3)
    assert (Path(best.checkpoint) / "state.pt").exists()


def test_ddp_digits_two_ranks_gloo(tmp_path):
    require_module("torch")
    require_module("sklearn")
    cfg = small(tmp_path, "ddp_digits", "ddp_digits.yaml",
                searcher={"max_length": 4, "max_trials": 2, "max_concurrent_trials": 1})
    cli("run", cfg, "--exp-dir", tmp_path / "ddp", timeout=600)
    _, st = final_state(tmp_path / "ddp")
    assert st.lifecycle == "completed"
    assert all(t.metric is not None and t.metric < 2.3 for t in st.trials.values())


def test_a_promoted_pytorch_digits_trial_trains_as_one_uninterrupted_run(tmp_path):
    """The example keeps its random streams (the batches' order, dropout) in its checkpoint:
    trained to 2 epochs, then resumed to 4 in a fresh call, a trial ends where one call
    straight to 4 ends, bit for bit."""
    require_module("torch")
    import importlib.util

    from asha_hpc.job.trial import Trial
    from asha_hpc.protocol.expdir import ExpDir

    spec = importlib.util.spec_from_file_location("digits_train",
                                                  EXAMPLES / "pytorch_digits" / "train.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    hp = {"lr": 0.01, "weight_decay": 0.0, "hidden": 32, "dropout": 0.3, "batch_size": 64}

    def run(root, lengths):
        exp = ExpDir.create(root)
        reports = []
        for i, length in enumerate(lengths):
            key = f"t00001-s{i:03d}-a00"
            t = Trial(trial_id=1, hparams=hp, trial_dir=exp.trial_dir(1),
                      run_dir=exp.run_dir(1, key), segments=[length], first_segment=i,
                      metric="val_loss", key=key, length_unit="epochs", max_length=4)
            mod.train(t)
            reports += [s.reported for s in t.reports]
        return reports

    promoted = run(tmp_path / "promoted", [2, 4])
    straight = run(tmp_path / "straight", [4])
    assert promoted[-1]["val_loss"] == straight[-1]["val_loss"], (promoted, straight)

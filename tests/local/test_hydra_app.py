"""A Hydra app (``@hydra.main``, config groups, dotted overrides) tuned as a command:
``${overrides}`` gives it the sampled values in Hydra's override grammar, its output folder
goes under the attempt's run folder, and its errors are summed up by Hydra's own exception,
not by its "Set the environment variable HYDRA_FULL_ERROR=1" hint, the same line for any
failure. The app is written as Hydra's tutorial writes one."""
import json
import sys

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.protocol.command_args import hydra_value

from helpers import cli, final_state

hydra = pytest.importorskip("hydra")  # CI installs hydra-core (.ci/run)

APP = '''
import json
import os

import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    target = int(os.environ["ASHA_TARGET_LENGTH"])
    epoch = 0
    if os.environ["ASHA_LATEST_CHECKPOINT"]:
        with open(os.path.join(os.environ["ASHA_LATEST_CHECKPOINT"], "state.json")) as f:
            epoch = json.load(f)["epoch"]
    if cfg.model.hidden <= 0:
        raise ValueError(f"negative dimension {cfg.model.hidden}")
    epoch = target
    with open(os.path.join(os.environ["ASHA_CHECKPOINT_DIR"], "state.json"), "w") as f:
        json.dump({"epoch": epoch}, f)
    with open(os.path.join(os.environ["ASHA_RUN_DIR"], "seen.json"), "w") as f:
        json.dump({"lr": cfg.optimizer.lr, "name": cfg.optimizer.name,
                   "hidden": cfg.model.hidden, "tag": cfg.tag}, f)
    loss = (cfg.optimizer.lr - 0.01) ** 2 + 1.0 / epoch
    with open(os.environ["ASHA_REPORT_FILE"], "a") as f:
        f.write(json.dumps({"metrics": {"val_loss": loss}}) + "\\n")


if __name__ == "__main__":
    main()
'''

CONFIG = {"defaults": ["_self_", {"optimizer": "adam"}], "model": {"hidden": 64},
          "tag": "baseline"}


def app(tmp_path, hp, command_tail=()):
    (tmp_path / "my_app.py").write_text(APP)
    (tmp_path / "conf" / "optimizer").mkdir(parents=True)
    (tmp_path / "conf" / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    (tmp_path / "conf" / "optimizer" / "adam.yaml").write_text("name: adam\nlr: 0.001\n")
    (tmp_path / "conf" / "optimizer" / "sgd.yaml").write_text("name: sgd\nlr: 0.1\n")
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump({
        "name": "hydra", "command": [sys.executable, "my_app.py", "${overrides}",
                                     "hydra.run.dir=${ASHA_RUN_DIR}/hydra", *command_tail],
        "searcher": {"name": "adaptive_asha", "metric": "val_loss", "max_length": 4,
                     "max_trials": 4, "max_concurrent_trials": 2, "divisor": 2},
        "hyperparameters": hp, "poll_interval_s": 0.2, "max_restarts": 1,
        "local": {"gpus": [], "workers": 0}}))
    return path


def test_a_hydra_app_takes_the_sampled_values_as_overrides(tmp_path):
    cfg = app(tmp_path, {"optimizer": {"lr": {"type": "log", "minval": -4, "maxval": -1},
                                       "name": {"type": "categorical", "vals": ["adam", "sgd"]}},
                         "model": {"hidden": {"type": "int", "minval": 16, "maxval": 128}},
                         "tag": "it's a 'test' run"})
    exp = tmp_path / "run"
    cli("run", cfg, "--exp-dir", exp)
    _, st = final_state(exp)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0
    for t in st.trials.values():
        (seen, *_) = [json.loads(p.read_text()) for p in
                      (exp / "trials" / f"{t.id:05d}").glob("runs/*/seen.json")]
        hp = t.hparams
        assert seen == {"lr": pytest.approx(hp["optimizer"]["lr"]), "name": hp["optimizer"]["name"],
                        "hidden": hp["model"]["hidden"], "tag": "it's a 'test' run"}
    # Hydra wrote its outputs/ folder under each attempt's run folder, not one shared by all
    assert not (tmp_path / "outputs").exists()
    assert list(exp.glob("trials/*/runs/*/hydra/.hydra/overrides.yaml"))


def test_a_hydra_error_is_named_by_the_error_not_by_hydras_hint(tmp_path):
    cfg = app(tmp_path, {"optimizer": {"lr": {"type": "log", "minval": -4, "maxval": -1}},
                         "model": {"hidden": {"type": "int", "minval": -100, "maxval": -1}}})
    r = cli("run", cfg, "--exp-dir", tmp_path / "run", check=False)
    assert r.returncode == 1
    line = [x for x in r.stderr.splitlines() if "experiment failed" in x][-1]
    # the values differ from trial to trial: the same error all the same (fail-fast)
    assert "first 3 trials" in line and "ValueError: negative dimension" in line, line
    assert "HYDRA_FULL_ERROR" not in line


scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=20))
values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(
    st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), c, max_size=4), max_leaves=10)


@settings(max_examples=300)
@given(values)
def test_hydra_reads_back_any_value_as_it_was_sampled(v):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    got = OverridesParser.create().parse_override("optimizer.lr=" + hydra_value(v)).value()
    assert got == v

"""A command's arguments take the sampled values (``${hparams.lr}``, ``${args}``) and the
job's variables (``${ASHA_MAX_LENGTH}``), so a script that reads flags (argparse,
``HfArgumentParser``) runs unchanged but for its report line; wrong placeholders are refused
when the config is loaded, naming the argument; a shell line's own ``${HOME}`` is left alone."""
import json
import subprocess
import sys

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from asha_hpc.config import load_config
from asha_hpc.errors import ConfigError
from asha_hpc.protocol.command_args import VARIABLES, fill

from helpers import cli, final_state

SCRIPT = '''
import argparse, json, os, sys

ap = argparse.ArgumentParser()
ap.add_argument("--lr", type=float, required=True)
ap.add_argument("--optimizer.name", dest="opt", required=True)
ap.add_argument("--layers", type=int, required=True)
ap.add_argument("--max_steps", type=int, required=True)
ap.add_argument("--tag")
args = ap.parse_args()
with open(os.environ["ASHA_RUN_DIR"] + "/seen.json", "w") as f:
    json.dump({"argv": sys.argv[1:], "vars": sorted(k for k in os.environ if k.startswith("ASHA_"))}, f)
with open(os.environ["ASHA_REPORT_FILE"], "a") as f:
    f.write(json.dumps({"metrics": {"loss": args.lr * args.layers}}) + "\\n")
'''


def config(tmp_path, command, **hp):
    (tmp_path / "flags.py").write_text(SCRIPT)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({
        "name": "flags", "command": command,
        "searcher": {"name": "random", "metric": "loss", "max_length": 8, "max_trials": 2},
        "hyperparameters": hp or {"lr": {"type": "log", "minval": -3, "maxval": -1},
                                  "layers": {"type": "int", "minval": 1, "maxval": 4},
                                  "optimizer": {"name": {"type": "categorical",
                                                         "vals": ["adam", "sgd"]}}},
        "poll_interval_s": 0.2, "max_restarts": 0, "local": {"gpus": [], "workers": 0}}))
    return path


def test_an_argparse_script_gets_its_flags_from_the_search(tmp_path):
    cfg = config(tmp_path, [sys.executable, "flags.py", "${args}", "--max_steps",
                            "${ASHA_MAX_LENGTH}", "--tag", "run-${ASHA_TRIAL_SEED}-$${literal}"])
    exp = tmp_path / "run"
    cli("run", cfg, "--exp-dir", exp)
    c, st = final_state(exp)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0
    for t in st.trials.values():
        trial_dir = exp / "trials" / f"{t.id:05d}"
        (seen,) = [json.loads(p.read_text()) for p in trial_dir.glob("runs/*/seen.json")]
        hp = t.hparams
        assert seen["argv"] == [f"--layers={hp['layers']}", f"--lr={hp['lr']}",
                                f"--optimizer.name={hp['optimizer']['name']}", "--max_steps", "8",
                                "--tag", f"run-{c.experiment_seed + t.id}-${{literal}}"], seen["argv"]
        assert t.metric == pytest.approx(hp["lr"] * hp["layers"])
        assert set(VARIABLES) <= set(seen["vars"])  # every ${ASHA_...} the check lets through


@pytest.mark.parametrize("command,says", [
    (["python3", "flags.py", "--lr", "${hparams.learning_rate}"],
     "command[3] '${hparams.learning_rate}': no hyperparameter 'learning_rate' (there are: "
     "layers, lr, optimizer.name)"),
    (["python3", "flags.py", "--all=${args}"], "command[2] '--all=${args}': ${args} must be an "
                                               "argument of its own"),
    (["python3", "flags.py", "--steps", "${ASHA_STEPS}"], "command[3] '${ASHA_STEPS}': "
                                                           "${ASHA_STEPS} is none of the job's "
                                                           "variables"),
    # the script would get the text '${hparams.lr' as its learning rate
    (["python3", "flags.py", "--lr", "${hparams.lr"], "command[3] '${hparams.lr': '${hparams.lr' "
                                                      "has no closing '}'"),
    (["python3", "flags.py", "--out=${ASHA_TRIAL_DIR/x"], "command[2] '--out=${ASHA_TRIAL_DIR/x': "
                                                          "'${ASHA_TRIAL_DIR/x' has no closing '}'"),
])
def test_a_wrong_placeholder_is_refused_naming_the_argument(tmp_path, command, says):
    with pytest.raises(ConfigError) as e:
        load_config(config(tmp_path, command))
    assert says in str(e.value), str(e.value)


def test_a_shell_lines_own_variables_are_left_to_the_shell(tmp_path):
    load_config(config(tmp_path, ["sh", "-c", "python3 flags.py --data ${HOME}/d $SLURM_JOB_ID"]))
    assert fill(["sh", "-c", "echo ${HOME} $$ ${hparams.lr}"], {"lr": 0.5}, {}) == [
        "sh", "-c", "echo ${HOME} $$ 0.5"]
    # a shell expansion of a job variable (LightningCLI's ckpt_path only once there is one)
    line = 'python main.py fit ${ASHA_LATEST_CHECKPOINT:+--ckpt_path "$ASHA_LATEST_CHECKPOINT/x"}'
    load_config(config(tmp_path, ["sh", "-c", line]))
    assert fill(["sh", "-c", line], {}, {"ASHA_LATEST_CHECKPOINT": "/c"}) == ["sh", "-c", line]
    out = subprocess.run(["sh", "-c", "echo " + line.split(" ", 3)[3]], capture_output=True,
                         text=True, env={"ASHA_LATEST_CHECKPOINT": "/c"}).stdout
    assert out.strip() == "--ckpt_path /c/x"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="${}abhpramsASH_.lr-= ", max_size=20), min_size=1, max_size=4))
@example(["${ASHA_"])
@example(["--lr", "$${hparams.lr"])
def test_any_command_either_loads_and_fills_or_is_refused_in_one_line_each(tmp_path_factory, args):
    """Whatever the arguments, the config loads (and every argument fills without error) or
    each problem names its argument."""
    tmp = tmp_path_factory.mktemp("c")
    try:
        cfg = load_config(config(tmp, ["python3", *args], lr={"type": "double", "minval": 0,
                                                             "maxval": 1}))
    except ConfigError as e:
        assert all(p.startswith("command[") for p in e.problems), e.problems
        return
    env = {v: f"<{v}>" for v in VARIABLES}
    for arg in cfg.entrypoint:  # each placeholder filled; a $${ literal stays one
        (filled,) = fill([arg], {"lr": 0.25}, env) if arg != "${args}" else (["--lr=0.25"],)
        if "$${" not in arg:
            assert "${hparams." not in filled and "${ASHA_" not in filled, (arg, filled)


def test_hf_argument_parser_reads_what_args_becomes():
    """The flags ``${args}`` writes are what Transformers' own HfArgumentParser reads, booleans
    and scheduler names included (the examples' run_*.py scripts parse argv this way)."""
    pytest.importorskip("transformers")
    from dataclasses import dataclass

    from transformers import HfArgumentParser, TrainingArguments

    @dataclass
    class ModelArguments:
        hidden_size: int = 32
        use_fast_tokenizer: bool = True

    hp = {"learning_rate": 3e-5, "weight_decay": 0.01, "hidden_size": 64,
          "use_fast_tokenizer": False, "lr_scheduler_type": "cosine"}
    argv = fill(["${args}", "--output_dir", "${ASHA_RUN_DIR}/out", "--max_steps",
                 "${ASHA_MAX_LENGTH}", "--report_to", "none"], hp,
                {"ASHA_RUN_DIR": "/tmp/run", "ASHA_MAX_LENGTH": "64"})
    model, args = HfArgumentParser((ModelArguments, TrainingArguments)).parse_args_into_dataclasses(
        argv)
    assert (model.hidden_size, model.use_fast_tokenizer) == (64, False)
    assert (args.learning_rate, args.weight_decay, args.max_steps) == (3e-5, 0.01, 64)
    assert str(args.lr_scheduler_type.value) == "cosine" and args.output_dir == "/tmp/run/out"

"""What a new user reads: --help, the master's progress line, YAML errors, a failed search."""
from __future__ import annotations

import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc import cli
from asha_hpc.config import load_config, parse_config
from asha_hpc.errors import ConfigError
from asha_hpc.master.loop import Master, progress_line
from asha_hpc.protocol.expdir import ExpDir, atomic_write


def test_help_lists_only_commands_for_people(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "SUPPRESS" not in out and "slurm-master" not in out
    for cmd in ("run", "resume", "status", "export", "report", "plan", "simulate", "submit"):
        assert re.search(rf"^\s+{cmd}\s", out, re.M), cmd
    # the hidden command still works (master.sbatch runs it)
    assert cli.build_parser().parse_args(["slurm-master", "c.yaml", "--exp-dir", "x"]).cmd == "slurm-master"


def test_progress_line_shows_where_each_bracket_ends(tmp_path):
    cfg = parse_config({
        "name": "brackets", "entrypoint": "unused:train", "backend": "simulated",
        "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 64,
                     "max_trials": 16, "mode": "standard", "divisor": 4},
        "hyperparameters": {"lr": {"type": "double", "minval": 0, "maxval": 1}},
        "reproducibility": {"experiment_seed": 1}}, str(tmp_path))
    exp = ExpDir.create(tmp_path / "run")
    cfg.experiment_dir = str(exp.root)
    atomic_write(exp.config, yaml.safe_dump(cfg.to_dict(), sort_keys=False).encode())
    st_ = Master(exp, cfg, progress=lambda s: None).run()
    line = progress_line(st_, 0.0)
    rungs = line.split("| rungs ")[1].split(" |")[0]
    groups = re.findall(r"\[([^\]]*)\]", rungs)
    assert [[int(x.split(":")[0]) for x in g.split()] for g in groups] == [
        list(b.rung_lengths) for b in st_.searcher.brackets()]
    assert sum(int(x.split(":")[1]) for g in groups for x in g.split()) == sum(
        r.completed for r in st_.searcher.rungs())


@pytest.mark.parametrize("quiet", [False, True], ids=["as ever", "--quiet"])
def test_quiet_says_no_progress_line_until_the_last(tmp_path, capsys, quiet):
    """``run --quiet`` (a master's log on a login node or in a job): the progress line only at
    the end; the lines that say what happened and the result stay."""
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "quiet", "entrypoint": "unused:train", "backend": "simulated",
        "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 64,
                     "max_trials": 16, "mode": "standard", "divisor": 4},
        "hyperparameters": {"lr": {"type": "double", "minval": 0, "maxval": 1}},
        "reproducibility": {"experiment_seed": 1}}))
    args = ["run", str(tmp_path / "c.yaml"), "--exp-dir", str(tmp_path / "run"),
            "--report-every", "0"]
    assert cli.main(args + (["--quiet"] if quiet else [])) == 0
    err = capsys.readouterr().err.splitlines()
    progress = [x for x in err if x.startswith("trials ")]
    assert len(progress) == 1 if quiet else len(progress) >= 2, err
    assert progress[-1].startswith("trials 16/16 | running 0 pending 0"), err
    assert any(x.startswith("asha-hpc: done. best trial ") for x in err), err
    assert any(x.startswith("asha-hpc: experiment 'quiet' in ") for x in err), err


# ----------------------------------------------------------------------------- YAML errors
GOOD = """name: cifar10-resnet
entrypoint: train:main
searcher:
  name: adaptive_asha
  metric: val_accuracy
  smaller_is_better: false
  max_length:
    epochs: 64
  max_trials: 32
hyperparameters:
  lr:
    type: log
    base: 10
    minval: -4
    maxval: -1
  optimizer:
    type: categorical
    vals: [sgd, adam, adamw]
  width:
    type: int
    minval: 16
    maxval: 256
"""


def _error(tmp_path, text: str) -> str:
    p = tmp_path / "exp.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    return str(e.value)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_yaml_error_names_the_line_of_the_mistake(tmp_path_factory, data):
    """A key whose ':' was forgotten, or a list whose ']' was: the line named is the one
    with the mistake (PyYAML notices both on the next line)."""
    lines = GOOD.splitlines()
    def indent(line):
        return len(line) - len(line.lstrip())

    # "key value" above a sibling "key: value" (not valid YAML; a lone "key value" is a string)
    keyed = [i for i, line in enumerate(lines[:-1]) if re.match(r"^\s*\w+: \S", line) and "[" not in line
             and indent(lines[i + 1]) == indent(line)]
    kind = data.draw(st.sampled_from(["colon", "bracket"]))
    if kind == "colon":
        i = data.draw(st.sampled_from(keyed))
        lines[i] = lines[i].replace(": ", " ", 1)
    else:
        i = next(i for i, line in enumerate(lines) if "[" in line)
        lines[i] = lines[i].replace("]", "")
    msg = _error(tmp_path_factory.mktemp("yaml"), "\n".join(lines) + "\n")
    assert re.search(rf"invalid config: line {i + 1}[,:] ", msg), (kind, i, msg)
    assert "not valid YAML" in msg


def test_yaml_error_of_bad_indentation_keeps_its_line(tmp_path):
    lines = GOOD.splitlines()
    lines[5] = " " + lines[5]  # '   smaller_is_better: false' under 'metric: ...'
    assert "line 6," in _error(tmp_path, "\n".join(lines) + "\n")

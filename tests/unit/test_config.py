"""Config validation: every problem reported at once, each naming its path; never a traceback."""
import math
import subprocess
import sys

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.config import load_config, parse_config
from asha_hpc.errors import ConfigError

GOOD = {
    "name": "exp",
    "entrypoint": "model:train",
    "searcher": {"name": "adaptive_asha", "metric": "val_loss", "max_length": {"epochs": 100},
                 "max_trials": 16},
    "hyperparameters": {"lr": {"type": "log", "minval": -4, "maxval": -1, "base": 10},
                        "width": {"type": "int", "minval": 8, "maxval": 64}},
}


def with_(path, value):
    """GOOD with one dotted path set (value None deletes it)."""
    import copy

    d = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    cur = d
    for p in parents:
        cur = cur.setdefault(p, {})
    if value is None:
        cur.pop(last, None)
    else:
        cur[last] = value
    return d


def problems(raw):
    with pytest.raises(ConfigError) as e:
        parse_config(raw, "/tmp")
    return e.value.problems


def test_good_config_and_defaults():
    cfg = parse_config(GOOD, "/tmp")
    s = cfg.searcher
    assert (s.max_length, s.length_unit, s.mode, s.divisor, s.max_rungs, s.max_concurrent_trials) == (
        100, "epochs", "standard", 4.0, 5, 16)
    assert s.smaller_is_better is True and s.stop_once is False
    assert cfg.max_restarts == 5 and cfg.backend == "local"
    assert isinstance(cfg.experiment_seed, int)


@pytest.mark.parametrize("path,value,expected", [
    ("searcher.divisor", 1, "searcher.divisor: must be > 1, got 1"),
    ("searcher.divisor", "four", "searcher.divisor: must be a number, got 'four'"),
    ("searcher.max_trials", 2.5, "searcher.max_trials: must be an integer, got 2.5"),
    ("searcher.max_trials", None, "searcher.max_trials: missing: required for searcher 'adaptive_asha'"),
    ("searcher.metric", None, "searcher.metric: missing"),
    ("searcher.mode", "agressive", "searcher.mode: must be one of aggressive, standard, conservative, got 'agressive'; did you mean 'aggressive'?"),
    ("searcher.name", "asha", "searcher.name: must be one of"),
    ("searcher.max_length", {"epoch": 3}, "searcher.max_length.epoch: unknown unit; did you mean 'epochs'?"),
    ("searcher.max_length", 0, "searcher.max_length: must be an integer >= 1, got 0"),
    ("searcher.max_concurent_trials", 4, "searcher.max_concurent_trials: unknown key; did you mean 'max_concurrent_trials'?"),
    ("searcher.smaller_is_better", "yes", "searcher.smaller_is_better: must be true or false, got 'yes'"),
    ("searcher.bracket_rungs", [3, 0], "searcher.bracket_rungs: must be a list of integers >= 1"),
    ("max_restart", 3, "max_restart: unknown key; did you mean 'max_restarts'?"),
    ("max_restarts", -1, "max_restarts: must be >= 0, got -1"),
    ("backend", "slrum", "backend: must be one of local, slurm, simulated, got 'slrum'; did you mean 'slurm'?"),
    ("poll_interval_s", 0, "poll_interval_s: must be > 0, got 0"),
    ("hung_after_s", 2, "hung_after_s: must be >= 5, got 2"),
    ("hung_after_s", "15m", "hung_after_s: must be a number, got '15m'"),
    ("slurm.timeout_min", 1.5, "slurm.timeout_min: must be an integer, got 1.5"),
    ("slurm.partiton", "gpu", "slurm.partiton: unknown key; did you mean 'partition'?"),
    ("slurm.setup", [1, 2], "slurm.setup: must be a list of shell lines"),
    # sbatch's names for the slurm section's keys
    ("slurm.gpus", 1, "slurm.gpus: unknown key; did you mean 'gpus_per_node'?"),
    ("slurm.time", "01:00:00", "slurm.time: unknown key; did you mean 'timeout_min'?"),
    ("slurm.mem", "32G", "slurm.mem: unknown key; did you mean 'mem_gb'?"),
    # a key put in the wrong section: where it goes
    ("workers", 4, "workers: unknown key; it belongs in another section: local.workers or slurm.workers"),
    ("metric", "loss", "metric: unknown key; it belongs in another section: searcher.metric"),
    ("searcher.partition", "gpu", "searcher.partition: unknown key; it belongs in another section: slurm.partition"),
    ("local.timeout_min", 30, "local.timeout_min: unknown key; it belongs in another section: slurm.timeout_min"),
    ("slurm.max_restarts", 3, "slurm.max_restarts: unknown key; it belongs in another section: max_restarts"),
    ("local.gpus_per_trial", 2, "local.gpus_per_trial: asks for 2 GPUs per trial but local.gpus has 0"),
    ("entrypoint", None, "entrypoint: missing"),
    ("entrypoint", 42, "entrypoint: must be 'module:function' or a command, got 42"),
    ("hyperparameters.lr.minval", 0, "hyperparameters.lr.minval"),
    ("hyperparameters.width.type", "integer", "hyperparameters.width.type"),
    ("hyperparameters.act", {"type": "categorical", "vals": []}, "hyperparameters.act.vals"),
    ("reproducibility.experiment_seed", "abc", "reproducibility.experiment_seed: must be an integer"),
])
def test_bad_field_gives_its_message(path, value, expected):
    raw = with_(path, value)
    if path == "local.gpus_per_trial":
        raw["local"]["gpus"] = []
    msgs = problems(raw)
    assert any(m.startswith(expected) for m in msgs), msgs


def test_all_problems_reported_at_once():
    raw = with_("searcher.divisor", 0.5)
    raw["searcher"]["max_trials"] = "many"
    raw["bogus"] = 1
    msgs = problems(raw)
    assert len(msgs) == 3
    assert {m.split(":")[0] for m in msgs} == {"searcher.divisor", "searcher.max_trials", "bogus"}


def test_count_outside_grid_search_is_said_to_do_nothing():
    raw = dict(GOOD, hyperparameters={"n_units": {"type": "int", "minval": 1, "maxval": 8,
                                                  "count": 4}})
    cfg = parse_config(raw, "/tmp")
    assert any(w.startswith("hyperparameters.n_units.count: count sets the grid searcher's "
                            "points only; adaptive_asha draws any value") for w in cfg.warnings)
    grid = dict(raw, searcher=dict(GOOD["searcher"], name="grid"))
    assert not any("count" in w for w in parse_config(grid, "/tmp").warnings)


@pytest.mark.parametrize("line", ["source ~/venv/bin/activate", ". /scratch/env/bin/activate",
                                  "conda activate torch", "module load anaconda3/2024.02"])
def test_a_setup_line_that_activates_python_warns_that_jobs_run_the_masters(line):
    """The jobs run the master's interpreter unless slurm.python says otherwise: a setup line
    that activates another one changes PATH, not that."""
    import sys

    raw = dict(GOOD, backend="slurm", slurm={"setup": ["module load cuda/12.4", line]})
    (w,) = [w for w in parse_config(raw, "/tmp").warnings if w.startswith("slurm.setup")]
    assert w == (f"slurm.setup: `{line}` activates an environment, but the jobs run the master's "
                 f"Python ({sys.executable}) unless slurm.python names another: set "
                 f"slurm.python: python3 to run the one setup activates (asha_hpc must be "
                 f"installed there too)")
    raw["slurm"]["python"] = "python3"
    cfg = parse_config(raw, "/tmp")
    assert not [w for w in cfg.warnings if w.startswith("slurm.setup")]
    from asha_hpc.backends.slurm import SlurmBackend

    b = SlurmBackend.from_config(cfg, __import__("pathlib").Path("/tmp/x"))
    assert b.python == "python3" and "python" not in b.params
    assert b.params["setup"][1:] == ["set -e", "module load cuda/12.4", line, "set +e"]


def test_a_stop_signal_as_long_as_the_time_limit_is_refused():
    raw = dict(GOOD, backend="slurm", slurm={"timeout_min": 1})
    assert problems(raw) == ["slurm.signal_delay_s: 90 s is not less than timeout_min (1 min): "
                             "every job would be told to stop as it starts; lower it or raise "
                             "timeout_min"]
    raw["slurm"]["signal_delay_s"] = 20
    assert parse_config(raw, "/tmp").slurm.signal_delay_s == 20


@pytest.mark.parametrize("minutes,warned", [(2, True), (4, True), (5, False), (30, False)])
def test_a_stop_signal_that_leaves_a_short_job_little_time_is_warned_about(minutes, warned):
    """The default 90 s with timeout_min 2: Slurm's USR2 came 25-30 s into each job, which
    trained 0-2 epochs after its start-up, and a 16-epoch trial took 20 jobs; nothing said so."""
    raw = dict(GOOD, backend="slurm", slurm={"timeout_min": minutes})
    got = [w for w in parse_config(raw, "/tmp").warnings if w.startswith("slurm.signal_delay_s")]
    assert bool(got) == warned, got
    if minutes == 2:
        assert got == [
            "slurm.signal_delay_s: a job of timeout_min 2 gets SIGUSR2 90 s before its limit, and "
            "Slurm may send it up to 60 s earlier: 0-30 s of each job are left for start-up and "
            "training, and a segment takes many jobs. Raise timeout_min, or lower "
            "signal_delay_s (the time a checkpoint takes, plus a margin)"]


def test_a_grid_search_says_what_it_ignores_and_where_early_stopping_is():
    """Ray's tune.grid_search with an ASHAScheduler stops points early; asha_hpc's grid trains
    every point to max_length: divisor and max_trials are said to do nothing."""
    raw = dict(GOOD, searcher=dict(GOOD["searcher"], name="grid", max_trials=10, divisor=2),
               hyperparameters={"lr": {"type": "categorical", "vals": [0.1, 0.01]}})
    (w,) = [x for x in parse_config(raw, "/tmp").warnings if "grid ignores" in x]
    assert w.startswith("searcher.divisor and max_trials: grid ignores them")
    assert w.endswith("with the grid's points as searcher.points_to_evaluate")
    raw["searcher"].pop("divisor"), raw["searcher"].pop("max_trials")
    assert not [x for x in parse_config(raw, "/tmp").warnings if "ignores" in x]


def test_num_rungs_outside_async_halving_is_said_to_do_nothing():
    raw = dict(GOOD, searcher=dict(GOOD["searcher"], num_rungs=3))
    assert "searcher.num_rungs is read by async_halving only: adaptive_asha ignores it; its " \
        "rungs come from max_rungs" in parse_config(raw, "/tmp").warnings


@pytest.mark.parametrize("metric,warned", [
    ("roc_auc", True), ("val/acc", True), ("eval_f1", True), ("validation_accuracy", True),
    ("score", True), ("val_loss", False), ("val_error_rate", False), ("top1_err", False),
    ("eval/perplexity", False), ("loss", False)])
def test_a_metric_whose_name_says_larger_is_better_is_said_to_be_minimised(metric, warned):
    warnings = parse_config(with_("searcher.metric", metric), "/tmp").warnings
    said = [w for w in warnings if "is minimised" in w]
    assert bool(said) == warned, warnings
    if warned:
        assert said[0].endswith("set searcher.smaller_is_better: false")
    for explicit in (True, False):  # said explicitly: nothing to say
        raw = with_("searcher.metric", metric)
        raw["searcher"]["smaller_is_better"] = explicit
        assert not [w for w in parse_config(raw, "/tmp").warnings if "is minimised" in w]


def test_optuna_and_ray_key_names_point_to_ours():
    raw = with_("searcher.direction", "maximize")
    raw["searcher"].update(num_samples=20, reduction_factor=3)
    got = problems(raw)
    assert "searcher.direction: unknown key; did you mean 'smaller_is_better' (false to " \
        "maximize)?" in got
    assert "searcher.num_samples: unknown key; did you mean 'max_trials'?" in got
    assert "searcher.reduction_factor: unknown key; did you mean 'divisor'?" in got


def test_ray_and_optunas_first_rung_names_point_to_num_rungs():
    raw = with_("searcher.grace_period", 1)
    (p,) = problems(raw)
    assert p.startswith("searcher.grace_period: unknown key; did you mean 'num_rungs' "
                        "(async_halving: the first rung is max_length / divisor^(num_rungs - 1)")


@pytest.mark.parametrize("path,value,hint", [
    ("num_samples", 20, "did you mean 'searcher.max_trials'?"),
    ("mode", "max", "did you mean 'searcher.smaller_is_better' (false to maximize, Ray's mode: max)"),
    ("scheduler", "asha", "did you mean 'searcher.name' (async_halving for Ray's ASHAScheduler"),
    ("searcher.name", "asha", "ASHA is async_halving (one bracket, Ray's ASHAScheduler) or adaptive_asha"),
    ("searcher.name", "BOHB", "BOHB is adaptive_asha with searcher.sampler: tpe"),
    ("searcher.sampler", "bohb", "BOHB's density models are tpe"),
    # Optuna's study.optimize(timeout=) and pruners
    ("searcher.timeout", 600, "no wall-clock budget here: searcher.max_compute caps the training"),
    ("timeout", 600, "no wall-clock budget here"),
    ("searcher.pruner", "MedianPruner", "the early stopping is the searcher's: searcher.name "
                                        "async_halving (Optuna's SuccessiveHalvingPruner)"),
])
def test_ray_tunes_top_level_names_and_values_point_to_ours(path, value, hint):
    """What a Ray Tune user writes first (tune.run's num_samples, mode, scheduler at the top
    level; ASHA or BOHB as a name): one line that says what to write instead."""
    (p,) = problems(with_(path, value))
    assert p.startswith(f"{path}: ") and hint in p, p


@pytest.mark.parametrize("text,hint", [
    ("loguniform(1e-4, 1e-1)", "type: double with log: true, with minval and maxval"),
    ("tune.qloguniform(1e-4, 1e-1, 5e-5)", "type: double with log: true (no step here"),
    ("tune.randint(16, 129)", "Ray's randint(a, b) is minval: a, maxval: b - 1"),
    ("trial.suggest_float('lr', 1e-5, 1e-1, log=True)", "type: double (log: true for log=True)"),
    ("tune.choice([16, 32])", "type: categorical with vals: [...]"),
    ("hp.choice('act', ['relu', 'tanh'])", "type: categorical with vals: [...]"),
    # Hydra's sweeper grammar, pasted from a hydra/sweeper=optuna config
    ("tag(log, interval(0.0001, 0.1))", "with log: true (Hydra's tag(log, interval(...)))"),
    ("interval(0.0001, 0.1)", "type: double (Hydra's interval(a, b))"),
    ("range(16, 128)", "Hydra's range(a, b) excludes b: maxval: b - 1"),
    ("choice(adam, sgd)", "type: categorical with vals: [...]"),
])
def test_another_tools_search_space_written_as_text_is_said_to_be_a_constant(text, hint):
    cfg = parse_config(with_("hyperparameters.lr", text), "/tmp")
    (w,) = [w for w in cfg.warnings if w.startswith("hyperparameters.lr:")]
    assert w.startswith(f"hyperparameters.lr: the constant {text!r} is text that every trial gets "
                        f"as it is, not a search space; to search it, write a mapping: ")
    assert hint in w


@given(text=st.text(max_size=40))
def test_any_other_text_constant_is_taken_without_a_word(text):
    """Text a training function parses itself ("xavier", "cosine(0.1)", "adam") is a constant
    like any other: only another tool's sampling calls are named."""
    from asha_hpc.space import looks_like_a_draw

    cfg = parse_config(with_("hyperparameters.init", {"type": "const", "val": text}), "/tmp")
    said = [w for w in cfg.warnings if w.startswith("hyperparameters.init:")]
    assert bool(said) == (looks_like_a_draw(text) is not None)
    for t in ("xavier", "cosine(0.1)", "normal_(0, 0.02)", "adam", "uniformly", ""):
        assert looks_like_a_draw(t) is None


@pytest.mark.parametrize("mode,direction", [("max", "false"), ("min", "true"),
                                            ("maximize", "false"), ("MINIMIZE", "true")])
def test_ray_and_optunas_mode_names_the_direction_key(mode, direction):
    (p,) = problems(with_("searcher.mode", mode))
    assert p.startswith("searcher.mode: is how aggressively ASHA stops trials here")
    assert p.endswith(f"the metric's direction is smaller_is_better: {direction}")


def test_yaml_words_read_as_booleans_among_hyperparameters_are_named(tmp_path):
    # scikit-learn's penalty-like choices as a Ray or Optuna user writes them in YAML
    (tmp_path / "exp.yaml").write_text(
        "name: x\nentrypoint: m:f\n"
        "searcher: {name: random, metric: loss, smaller_is_better: yes, max_length: 8,\n"
        "           max_trials: 4, points_to_evaluate: [{scaler: off}]}\n"
        "hyperparameters:\n"
        "  scaler: {type: categorical, vals: [auto, on, off, 'no']}\n"
        "  shuffle: {type: categorical, vals: [true, false]}\n")
    cfg = load_config(tmp_path / "exp.yaml")
    said = [w for w in cfg.warnings if "YAML reads" in w]
    assert said == [
        "searcher.points_to_evaluate[0].scaler: YAML reads off (line 4) as false; quote it "
        "('off') where the word is meant",
        "hyperparameters.scaler.vals[1]: YAML reads on (line 6) as true; quote it ('on') where "
        "the word is meant",
        "hyperparameters.scaler.vals[2]: YAML reads off (line 6) as false; quote it ('off') "
        "where the word is meant"]
    assert cfg.searcher.smaller_is_better is True  # a setting's own yes is meant


def test_determined_only_keys_warn_not_fail():
    raw = dict(GOOD, resources={"slots_per_trial": 1}, records_per_epoch=5000)
    cfg = parse_config(raw, "/tmp")
    assert any("resources" in w for w in cfg.warnings)


def test_command_entrypoints():
    assert parse_config(dict(GOOD, entrypoint="python3 train.py --x 1"), "/tmp").entrypoint == [
        "python3", "train.py", "--x", "1"]
    raw = dict(GOOD, command=["python3", "train.py"])
    del raw["entrypoint"]
    assert parse_config(raw, "/tmp").is_command


def test_resolved_config_round_trips(tmp_path):
    cfg = parse_config(GOOD, tmp_path)
    again = parse_config(yaml.safe_load(yaml.safe_dump(cfg.to_dict())), "/elsewhere")
    assert again.searcher == cfg.searcher and again.config_dir == cfg.config_dir
    assert again.experiment_seed == cfg.experiment_seed


@pytest.mark.parametrize("text,expected", [
    ("", "the file is empty"),
    ("searcher: [1, 2\n", "not valid YAML"),
    ("- a\n- b\n", "must be a mapping"),
    ("!!python/object/apply:os.system ['echo pwned']\n", "not valid YAML"),
])
def test_bad_files(tmp_path, text, expected):
    p = tmp_path / "exp.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=expected):
        load_config(p)


def test_cli_reports_config_errors_without_traceback(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(with_("searcher.divisor", 1)))
    r = subprocess.run([sys.executable, "-m", "asha_hpc.cli", "plan", str(p)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "searcher.divisor: must be > 1, got 1" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("entrypoint", ['"', "python train.py --name 'run 1", "python train.py \\"])
def test_a_command_that_cannot_be_split_names_the_entrypoint(entrypoint):
    """An unclosed quotation (or a trailing backslash) in a command entrypoint is one config
    error naming the field, not shlex's ValueError."""
    raw = {"name": "x", "entrypoint": entrypoint,
           "searcher": {"name": "single", "metric": "loss", "max_length": 1},
           "hyperparameters": {}}
    with pytest.raises(ConfigError, match=r"entrypoint: cannot be read as a command .*close the quotation"):
        parse_config(raw, ".")


@settings(max_examples=200, deadline=None)
@given(after=st.one_of(st.integers(-2, 100), st.floats(allow_nan=True, allow_infinity=True),
                       st.text(max_size=4), st.booleans(), st.none(), st.lists(st.integers())),
       repaired=st.one_of(st.integers(-2, 10**6), st.floats(allow_nan=True), st.text(max_size=4),
                          st.none()))
def test_any_readmission_wait_is_taken_or_named(after, repaired):
    """``readmit_nodes_after_h`` (hours, above 0, or null) and ``simulated.repaired_after_s``
    (seconds, at least 0, or null): anything else is one line naming the key."""
    raw = {"name": "n", "entrypoint": "m:f", "backend": "simulated", "readmit_nodes_after_h": after,
           "searcher": {"name": "random", "metric": "loss", "max_length": 4, "max_trials": 2},
           "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
           "simulated": {"nodes": 2, "broken_nodes": 1, "repaired_after_s": repaired}}
    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    after_ok = after is None or (number(after) and after > 0)
    repaired_ok = repaired is None or (number(repaired) and repaired >= 0)
    try:
        cfg = parse_config(raw, "/tmp")
    except ConfigError as e:
        assert not (after_ok and repaired_ok), e.problems
        named = {p.split(":")[0] for p in e.problems}
        assert named == ({"readmit_nodes_after_h"} if not after_ok else set()) | (
            {"simulated.repaired_after_s"} if not repaired_ok else set()), e.problems
        return
    assert after_ok and repaired_ok
    assert cfg.readmit_nodes_after_h == after and cfg.simulated.repaired_after_s == repaired


@settings(max_examples=200, deadline=None)
@given(nodes=st.one_of(st.integers(-3, 40), st.floats(allow_nan=True), st.text(max_size=4),
                       st.booleans(), st.none()),
       broken=st.one_of(st.integers(-3, 40), st.floats(allow_nan=True), st.text(max_size=4),
                        st.none()),
       how=st.one_of(st.sampled_from(["fail", "die", "Die", " fail", ""]), st.text(max_size=5),
                     st.integers(), st.none()))
def test_any_simulated_nodes_are_taken_or_named(nodes, broken, how):
    """``simulated.nodes`` / ``broken_nodes`` / ``broken_how``: whole numbers, at least one
    node, fewer broken than nodes, 'fail' or 'die'; anything else is one line naming the key."""
    raw = {"name": "n", "entrypoint": "m:f", "backend": "simulated",
           "searcher": {"name": "random", "metric": "loss", "max_length": 4, "max_trials": 2},
           "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
           "simulated": {"nodes": nodes, "broken_nodes": broken, "broken_how": how}}
    try:
        cfg = parse_config(raw, "/tmp")
    except ConfigError as e:
        assert any(p.startswith(("simulated.nodes:", "simulated.broken_nodes:",
                                 "simulated.broken_how:")) for p in e.problems), e.problems
        assert (how in ("fail", "die", None)) == (
            not any(p.startswith("simulated.broken_how:") for p in e.problems))
        return
    s = cfg.simulated
    assert s.broken_how == (how or "fail")
    assert isinstance(s.nodes, int) and s.nodes >= 1
    assert isinstance(s.broken_nodes, int) and 0 <= s.broken_nodes < s.nodes


@pytest.mark.parametrize("metric", ["", "   ", "\x85", "\t\n"])
def test_a_blank_metric_name_is_one_error_naming_the_field(metric):
    raw = {"name": "x", "entrypoint": "m:f", "hyperparameters": {},
           "searcher": {"name": "single", "metric": metric, "max_length": 1}}
    with pytest.raises(ConfigError) as e:
        parse_config(raw, ".")
    assert [p for p in e.value.problems if p.startswith("searcher.metric: ")], e.value.problems


_SCALAR = st.one_of(st.text(max_size=8), st.integers(-5, 10**6), st.floats(allow_nan=False),
                    st.booleans())


@settings(max_examples=300, deadline=None)
@given(env=st.one_of(
    st.none(), st.integers(), st.text(max_size=6),
    st.dictionaries(st.text(max_size=8), st.one_of(_SCALAR, st.none(), st.lists(st.integers(),
                                                                                max_size=2)),
                    max_size=4),
    st.lists(st.one_of(st.text(max_size=10), st.integers(),
                       st.tuples(st.text(max_size=6), st.text(max_size=6)).map("=".join)),
             max_size=4)))
def test_environment_variables_any_value_is_taken_or_one_line_each(env):
    """``environment_variables``: NAME: value (or Determined's "NAME=value" list). A name of
    letters, digits and _ with a string, number or boolean is set as text; anything else is
    one line naming the entry."""
    import re as _re

    raw = {"name": "n", "entrypoint": "m:f", "environment_variables": env,
           "searcher": {"name": "random", "metric": "loss", "max_length": 4, "max_trials": 2},
           "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}}}
    name_ok = _re.compile(r"[A-Za-z_][A-Za-z0-9_]*").fullmatch
    if env is None:
        expect_ok = True
    elif isinstance(env, dict):
        expect_ok = all(isinstance(k, str) and name_ok(k) and v is not None
                        and not isinstance(v, list) for k, v in env.items())
    elif isinstance(env, list):
        expect_ok = all(isinstance(e, str) and "=" in e and name_ok(e.partition("=")[0])
                        for e in env)
    else:
        expect_ok = False
    try:
        cfg = parse_config(raw, "/tmp")
    except ConfigError as e:
        assert not expect_ok, e.problems
        assert all(p.startswith("environment_variables") for p in e.problems), e.problems
        return
    assert expect_ok
    assert all(isinstance(v, str) for v in cfg.environment_variables.values())
    assert set(cfg.environment_variables) == (
        set(env) if isinstance(env, dict) else {e.partition("=")[0] for e in env or []})
    again = parse_config(cfg.to_dict(), cfg.config_dir)  # the resolved config, as resume reads it
    assert again.environment_variables == cfg.environment_variables


_ANY = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**4), st.floats(allow_nan=True),
                 st.text(max_size=12), st.lists(st.text(max_size=6), max_size=3))


@settings(max_examples=200, deadline=None)
@given(python=_ANY, setup=st.one_of(_ANY, st.lists(st.text(max_size=30), max_size=3)),
       timeout=_ANY, delay=_ANY, key=st.text(min_size=1, max_size=12))
def test_any_slurm_python_setup_and_signal_delay_gives_a_config_or_its_problems(
        python, setup, timeout, delay, key):
    """slurm.python, setup (the activate warning), timeout_min against signal_delay_s, and a
    key of any name: a config, or problems that each name their field; never a crash."""
    raw = dict(GOOD, backend="slurm", slurm={"python": python, "setup": setup,
                                             "timeout_min": timeout, "signal_delay_s": delay,
                                             key: 1})
    try:
        cfg = parse_config(raw, "/tmp")
    except ConfigError as e:
        assert e.problems and all(p.split(":")[0].startswith("slurm") for p in e.problems), \
            e.problems
        return
    assert cfg.slurm.python is None or isinstance(cfg.slurm.python, str)
    assert all(isinstance(w, str) for w in cfg.warnings)


@settings(max_examples=200, deadline=None)
@given(account=st.one_of(st.none(), st.text(max_size=12)), qos=st.one_of(st.none(), st.text(max_size=12)),
       sbatch=st.lists(st.text(max_size=20), max_size=3))
def test_any_master_job_option_is_an_sbatch_line_or_one_clear_error(account, qos, sbatch):
    """submit's --account, --qos and --sbatch as a user may type them: a script whose #SBATCH
    lines carry them, or an AshaError that names the option; nothing else."""
    from pathlib import Path

    from asha_hpc.errors import AshaError
    from asha_hpc.submit import master_options, render_master_script

    cfg = parse_config(GOOD, "/tmp")
    try:
        extra = master_options(cfg, account, qos, sbatch)
        script = render_master_script(cfg, Path("/tmp/exp.yaml"), Path("/tmp/run"), extra=extra)
    except AshaError as e:
        assert "--sbatch" in str(e) or "cannot go on an #SBATCH line" in str(e), str(e)
        return
    for k, v in extra.items():
        assert f"#SBATCH --{k}={v}" in script.splitlines()


def test_numbers_with_an_exponent_and_no_dot_are_numbers_as_in_yaml_1_2(tmp_path):
    """PyYAML (YAML 1.1) reads 1e-4 as text; Determined (YAML 1.2), OmegaConf and JSON read a
    number. A constant ``weight_decay: 1e-4`` reached the training code as the string "1e-4",
    and a categorical of ``[0, 1e-4, 1e-3]`` searched two strings, without a word."""
    from asha_hpc.yamlfile import read_yaml

    (tmp_path / "exp.yaml").write_text(
        "name: x\nentrypoint: m:f\n"
        "searcher: {name: random, metric: loss, max_length: 8, max_trials: 4,\n"
        "           points_to_evaluate: [{lr: 5e-5, wd: 1e-3}]}\n"
        "hyperparameters:\n"
        "  lr: {type: double, minval: 1e-5, maxval: 1E-1, log: true}\n"
        "  wd: {type: categorical, vals: [0, 1e-4, 1e-3, 1.5e-2]}\n"
        "  warmup: 2e3\n  name: e5-base\n  version: '1e-4'\n")
    cfg = load_config(tmp_path / "exp.yaml")
    hp = cfg.space().sample(np.random.default_rng(0))
    assert type(hp["warmup"]) is float and hp["warmup"] == 2000.0
    assert hp["name"] == "e5-base" and hp["version"] == "1e-4"  # text stays text; quoted too
    assert [type(v) for v in dict(cfg.space().leaves())[("wd",)].vals] == [int, float, float, float]
    assert cfg.searcher.points_to_evaluate == [{"lr": 5e-5, "wd": 1e-3}]
    assert read_yaml("[1e-4, -2E3, +1.5e3, .5e1, 1_0e1, 1e, e5, .e5, 0x1F, yes]") == [
        1e-4, -2000.0, 1500.0, 5.0, 100.0, "1e", "e5", ".e5", 31, True]
    assert yaml.safe_load("1e-4") == "1e-4"  # PyYAML's own loader is left as it is


_WORD = st.sampled_from(["yes", "no", "on", "off", "y", "n", "Yes", "OFF", "true", "auto",
                         "'on'", "null", "1e-3", "relu", "max", "min", "maximize"])


@settings(max_examples=150, deadline=None)
@given(vals=st.lists(_WORD, min_size=1, max_size=4), metric=st.text(max_size=16),
       mode=st.one_of(st.none(), _WORD), explicit=st.one_of(st.none(), st.booleans()))
def test_any_config_file_of_yaml_words_loads_or_says_what_is_wrong(tmp_path_factory, vals, metric,
                                                                   mode, explicit):
    """A config written by hand as a Ray or Optuna user would: YAML 1.1 words among the values,
    any metric name, a direction where ASHA's mode goes. It loads (each word read as a boolean
    named with its line among the warnings) or raises ConfigError; nothing else."""
    path = tmp_path_factory.mktemp("c") / "exp.yaml"
    searcher = {"name": "random", "metric": metric, "max_length": 8, "max_trials": 4}
    if mode is not None:
        searcher["mode"] = mode
    if explicit is not None:
        searcher["smaller_is_better"] = explicit
    text = yaml.safe_dump({"name": "x", "entrypoint": "m:f", "searcher": searcher})
    text += "hyperparameters:\n  c: {type: categorical, vals: [" + ", ".join(vals) + "]}\n"
    try:
        cfg = load_config(path) if path.write_text(text) else None
    except ConfigError as e:
        assert e.problems and all(isinstance(p, str) for p in e.problems)
        return
    assert cfg is not None
    words = [v for v in vals if v.lower() in ("yes", "no", "on", "off")]  # PyYAML: not y, n
    said = [w for w in cfg.warnings if "YAML reads" in w]
    assert len(said) == len(words)
    assert all(w.startswith("hyperparameters.c.vals[") and "(line " in w for w in said)
    if explicit is not None:
        assert not [w for w in cfg.warnings if "is minimised" in w]


def test_a_hydra_submitit_launcher_block_pasted_as_is_says_where_each_key_goes():
    """hydra/launcher/submitit_slurm's keys: its sbatch-only options were offered wrong
    look-alikes (mem_per_gpu: 'trials_per_gpu', cpus_per_gpu: 'cpus_per_task')."""
    raw = with_("slurm", {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher."
                                      "SlurmLauncher", "submitit_folder": "${hydra.sweep.dir}",
                          "timeout_min": 60, "cpus_per_task": None, "gpus_per_node": None,
                          "tasks_per_node": 1, "mem_gb": None, "nodes": 1, "name": "app",
                          "partition": None, "mem_per_gpu": None, "mem_per_cpu": None,
                          "cpus_per_gpu": None, "comment": None, "max_num_timeout": 0,
                          "array_parallelism": 256})
    got = problems(raw)
    assert "slurm.mem_per_gpu: unknown key; an sbatch option without a name of its own here: " \
           "give it as additional_parameters: {mem_per_gpu: ...}" in got
    for key in ("mem_per_cpu", "cpus_per_gpu", "comment"):
        assert any(p.startswith(f"slurm.{key}: unknown key; an sbatch option") for p in got)
    for key in ("_target_", "submitit_folder", "name", "max_num_timeout"):
        assert any(p.startswith(f"slurm.{key}: unknown key; hydra-submitit-launcher's, not "
                                f"needed here") for p in got), key
    assert len(got) == 8  # the keys it shares with the slurm section are taken


def test_a_wandb_sweep_config_moved_over_names_what_to_write_for_each_key(tmp_path):
    """A W&B Sweeps user's sweep.yaml, its keys kept: the `parameters` block renamed
    `hyperparameters` searched nothing (each `distribution:` map was a group of constants, and
    `${args}` passed --learning_rate.distribution=log_uniform_values), and W&B's macros reached
    the script as text. Each key now says what it is here."""
    (tmp_path / "train.py").write_text("")
    (tmp_path / "sweep.yaml").write_text(
        "name: digits\n"
        "method: bayes\n"
        "metric: {name: val_loss, goal: minimize}\n"
        "run_cap: 20\n"
        "early_terminate: {type: hyperband, min_iter: 3, eta: 3}\n"
        "command: [\"${env}\", \"${interpreter}\", \"${program}\", \"${args_no_hyphens}\"]\n"
        "searcher: {name: adaptive_asha, metric: {name: val_loss, goal: minimize},\n"
        "           max_length: 27, max_trials: 20}\n"
        "hyperparameters:\n"
        "  learning_rate: {distribution: log_uniform_values, min: 1e-4, max: 0.1}\n"
        "  batch_size: {distribution: q_log_uniform_values, q: 8, min: 32, max: 256}\n"
        "  fc_layer_size: {distribution: int_uniform, min: 32, max: 256}\n"
        "  optimizer: {values: [adam, sgd]}\n"
        "  epochs: {value: 27}\n"
        "  dropout: {value: 0.1}\n"
        "  sgd: {parameters: {momentum: {values: [0.9, 0.99]}}}\n"
        "  clip: {min: -1, max: 1}\n")
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "sweep.yaml")
    said = "\n".join(e.value.problems)
    for line in [
        "method: unknown key; did you mean 'searcher.sampler' (random, or tpe or gp for W&B's "
        "bayes; its grid is searcher.name: grid)?",
        "run_cap: unknown key; did you mean 'searcher.max_trials'?",
        "early_terminate: unknown key; the early stopping is the searcher's: W&B's hyperband",
        "metric: unknown key; it belongs in another section: searcher.metric",
        "command[0] '${env}': W&B Sweeps' ${env} is not filled here",
        "command[3] '${args_no_hyphens}': W&B Sweeps' ${args_no_hyphens} is not filled here: use "
        "${overrides}",
        "hyperparameters.learning_rate: W&B Sweeps' distribution: log_uniform_values is not "
        "searched here (a map without 'type' is a group of constants): write type: double with "
        "log: true, minval and maxval (W&B's min and max)",
        "hyperparameters.fc_layer_size: W&B Sweeps' distribution: int_uniform",
        "hyperparameters.optimizer: W&B Sweeps' values: write type: categorical, vals: [...]",
        "hyperparameters.epochs: W&B Sweeps' value: write nothing: epochs is the search's "
        "length (searcher.max_length); a command takes each segment's as "
        "--epochs=${ASHA_TARGET_LENGTH}",
        "hyperparameters.dropout: W&B Sweeps' value: write the constant itself (dropout: 0.1)",
        "hyperparameters.sgd: W&B Sweeps' nested parameters: write the nested map itself",
        "searcher.metric: W&B's {name, goal}: write metric: val_loss and smaller_is_better: true"]:
        assert line in said, (line, said)
    assert "clip" not in said  # a group of two constants named min and max stays one
    # moved over as the README says: one warning left, for a flag given twice
    (tmp_path / "sweep.yaml").write_text(
        "name: digits\n"
        "command: [python3, train.py, \"${args}\", \"--epochs=${ASHA_TARGET_LENGTH}\"]\n"
        "searcher: {name: adaptive_asha, metric: val_loss, max_length: 27, max_trials: 20,\n"
        "           sampler: tpe, divisor: 3, max_rungs: 3}\n"
        "hyperparameters:\n"
        "  learning_rate: {type: double, minval: 1e-4, maxval: 0.1, log: true}\n"
        "  optimizer: {type: categorical, vals: [adam, sgd]}\n"
        "  epochs: 27\n")
    cfg = load_config(tmp_path / "sweep.yaml")
    assert [w for w in cfg.warnings if "passes --epochs too" in w] == [
        "command[3] '--epochs=${ASHA_TARGET_LENGTH}': ${args} passes --epochs too (a "
        "hyperparameter), and the script's parser keeps one of the two (argparse: the last): "
        "drop the hyperparameter: the flag gives each segment its length"]


def test_a_length_unit_of_the_users_own_is_shown_and_kept():
    """An RL user's ``max_length: {timesteps: 8000}`` was refused (batches, epochs or records
    only), and a bare 8000 showed as "units" everywhere. A name of one's own is the unit shown,
    kept in the experiment's resolved config; the integrations read "steps" as steps."""
    raw = {"name": "x", "entrypoint": "m:f",
           "searcher": {"name": "random", "metric": "m", "max_length": {"timesteps": 8000},
                        "max_trials": 2}}
    cfg = parse_config(raw, "/tmp")
    assert (cfg.searcher.max_length, cfg.searcher.length_unit) == (8000, "timesteps")
    again = parse_config(yaml.safe_load(yaml.safe_dump(cfg.to_dict())), "/tmp")
    assert (again.searcher.max_length, again.searcher.length_unit) == (8000, "timesteps")
    for bad in ({"Timesteps": 8}, {"a": 1, "b": 2}, {"": 3}):
        with pytest.raises(ConfigError, match=r"searcher.max_length: must be an integer or "
                                              r"\{UNIT: N\}"):
            parse_config(dict(raw, searcher=dict(raw["searcher"], max_length=bad)), "/tmp")

"""``asha_hpc.run``'s config given as a dict: read as the same config written to a YAML file
would be (Python's own types in it too: tuples, numpy's scalars, paths), and its training
function named so that a job can import it, or refused with what to do."""
from __future__ import annotations

import functools
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import asha_hpc
from asha_hpc.api import config_from, function_name
from asha_hpc.config import load_config
from asha_hpc.errors import ConfigError
from asha_hpc.launch import create_experiment
from asha_hpc.yamlfile import write_yaml

_names = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)
_scalars = st.one_of(st.integers(-5, 5), st.booleans(), st.text(max_size=4),
                     st.floats(-10, 10, allow_nan=False))


@st.composite
def leaf(draw):
    kind = draw(st.sampled_from(["int", "double", "log", "categorical", "const"]))
    if kind == "int":
        lo = draw(st.integers(-1000, 1000))
        return {"type": "int", "minval": lo, "maxval": lo + draw(st.integers(1, 10**6))}
    if kind in ("double", "log"):
        lo = draw(st.floats(-8, 8, allow_nan=False))
        return {"type": kind, "minval": lo, "maxval": lo + draw(st.floats(1e-3, 8))}
    if kind == "categorical":
        return {"type": "categorical", "vals": draw(st.lists(_scalars, min_size=1, max_size=5))}
    return draw(_scalars)


spaces = st.recursive(st.dictionaries(_names, leaf(), min_size=1, max_size=4),
                      lambda inner: st.dictionaries(_names, inner, min_size=1, max_size=3),
                      max_leaves=8)


def pythonic(value, draw):
    """``value`` as a Python user may write it: lists as tuples, numbers as numpy's."""
    if isinstance(value, dict):
        return {k: pythonic(v, draw) for k, v in value.items()}
    if isinstance(value, list):
        items = [pythonic(v, draw) for v in value]
        return tuple(items) if draw(st.booleans()) else items
    if isinstance(value, bool):
        return np.bool_(value) if draw(st.booleans()) else value
    if isinstance(value, int) and abs(value) < 2**62:
        return np.int64(value) if draw(st.booleans()) else value
    if isinstance(value, float):
        return np.float64(value) if draw(st.booleans()) else value
    return value


def _searcher():
    return {"name": "adaptive_asha", "metric": "val_loss", "max_length": {"epochs": 16},
            "max_trials": 8}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(space=spaces, data=st.data())
def test_a_dict_config_is_the_yaml_files_config(tmp_path, monkeypatch, space, data):
    raw = {"name": "q", "entrypoint": "model:train", "searcher": _searcher(),
           "hyperparameters": space, "reproducibility": {"experiment_seed": 3}}
    (tmp_path / "c.yaml").write_text(write_yaml(raw))
    try:
        from_file = load_config(tmp_path / "c.yaml").to_dict()
    except ConfigError as e:  # a space the file refuses: the dict is refused alike
        monkeypatch.chdir(tmp_path)
        with pytest.raises(ConfigError) as got:
            config_from(pythonic(raw, data.draw))
        assert sorted(got.value.problems) == sorted(e.problems)  # (a file is written sorted)
        return
    monkeypatch.chdir(tmp_path)
    assert config_from(pythonic(raw, data.draw)).to_dict() == from_file


def train(trial):
    pass


def test_a_function_is_named_as_a_job_imports_it(tmp_path, monkeypatch):
    """By its module, where jobs find that module (the current folder, the interpreter's
    path); by its file, where Python found it only in the running script's folder."""
    here = Path(__file__).parent
    monkeypatch.chdir(here)
    assert function_name(train) == f"{__name__}:train"
    cfg = config_from({"searcher": _searcher(), "hyperparameters": {"lr": 0.1}},
                      entrypoint=train)
    assert cfg.entrypoint == f"{__name__}:train"
    assert cfg.name == "train"  # the folder under asha_runs/ is named after it
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(here), *sys.path[1:]])
    assert function_name(train) == f"{Path(__file__).resolve()}:train"


@pytest.mark.parametrize("fn, says", [
    (lambda trial: None, "is defined inside a function (or is a lambda)"),
    (functools.partial(train), "not a function that a job can import by name"),
])
def test_what_a_job_cannot_import_is_refused(fn, says):
    with pytest.raises(ConfigError) as e:
        function_name(fn)
    assert says in str(e.value)


def test_a_function_of_the_running_script_says_to_move_it_to_a_file(tmp_path, monkeypatch):
    def objective(trial):
        pass

    objective.__module__ = "__main__"
    objective.__qualname__ = "objective"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        asha_hpc.run({"searcher": _searcher(), "hyperparameters": {"lr": 0.1}},
                     entrypoint=objective)
    assert "cannot be a job's: each job imports it from a file" in str(e.value)
    assert not (tmp_path / "asha_runs").exists()  # refused before any folder or job


@pytest.mark.parametrize("config, kw, says", [
    ({"entrypoint": "model:train"}, {"entrypoint": train}, "entrypoint: given twice"),
    ({1: "x"}, {}, "key 1 is not text"),
    ({"hyperparameters": {"lr": {"type": "double", "minval": object()}}}, {},
     "hyperparameters.lr.minval: object"),
    ({"hyperparameters": {"lr": math.nan}, "entrypoint": "m:f", "searcher": _searcher()}, {},
     "hyperparameters"),
])
def test_a_dict_config_names_what_is_wrong(tmp_path, monkeypatch, config, kw, says):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        config_from(config, **kw)
    assert says in str(e.value), str(e.value)


def test_a_files_config_keeps_its_own_entrypoint(tmp_path):
    (tmp_path / "c.yaml").write_text("entrypoint: model:train\n")
    with pytest.raises(ConfigError) as e:
        config_from(Path(tmp_path / "c.yaml"), train)
    assert "give it in" in str(e.value)


def test_a_folder_that_holds_an_experiment_says_how_to_resume_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text("def train(trial):\n    pass\n")
    exp = tmp_path / "runs" / "q"
    create_experiment(config_from({"entrypoint": "model:train", "searcher": _searcher(),
                                   "hyperparameters": {"lr": 0.1}}), exp)
    with pytest.raises(asha_hpc.AshaError) as e:
        asha_hpc.run({"entrypoint": "model:train", "searcher": _searcher(),
                      "hyperparameters": {"lr": 0.1}}, exp_dir=exp)
    assert f"asha_hpc.resume({str(exp)!r}) continues it" in str(e.value)


def test_ray_and_optuna_search_space_objects_say_what_to_write(tmp_path, monkeypatch):
    """A migrant's dict keeps tune.loguniform(...) or Optuna's distributions: each is named
    with the hyperparameter it means here (randint's excluded upper bound made maxval's)."""
    tune = pytest.importorskip("ray.tune")
    distributions = pytest.importorskip("optuna.distributions")
    monkeypatch.chdir(tmp_path)
    cases = {
        "lr": (tune.loguniform(1e-4, 1e-1), "{type: double, minval: 0.0001, maxval: 0.1, log: true}"),
        "layers": (tune.randint(1, 5), "{type: int, minval: 1, maxval: 4}"),
        "act": (tune.choice(["relu", "gelu"]), "{type: categorical, vals: ['relu', 'gelu']}"),
        "drop": (tune.quniform(0, 0.5, 0.1), "a categorical of the values"),
        "wd": (distributions.FloatDistribution(1e-6, 1e-2, log=True),
               "{type: double, minval: 1e-06, maxval: 0.01, log: true}"),
        "units": (distributions.IntDistribution(4, 128), "{type: int, minval: 4, maxval: 128}"),
        "opt": (distributions.CategoricalDistribution(("Adam", "SGD")),
                "{type: categorical, vals: ['Adam', 'SGD']}"),
    }
    for name, (obj, says) in cases.items():
        with pytest.raises(ConfigError) as e:
            config_from({"entrypoint": "model:train", "searcher": _searcher(),
                         "hyperparameters": {name: obj}})
        assert f"hyperparameters.{name}: " in str(e.value) and says in str(e.value), str(e.value)

"""``asha_hpc.run``'s config given as a dict: read as the same config written to a YAML file
would be (Python's own types in it too: tuples, numpy's scalars, paths), and its training
function named so that a job can import it, or refused with what to do."""
from __future__ import annotations

import functools
import math
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
    raw = {"name": "q", "entrypoint": "model.py:train", "searcher": _searcher(),
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
    monkeypatch.chdir(tmp_path)  # a new process started here (a job) does not find it
    assert function_name(train) == f"{Path(__file__).resolve()}:train"


def test_a_module_found_through_sys_path_insert_is_named_by_its_file(tmp_path, monkeypatch):
    """A script that did sys.path.insert(0, its lib folder): a job does not have that folder.
    A plain module is named by its file; a package's module cannot be, and is refused."""
    lib = tmp_path / "lib"
    (lib / "pkg").mkdir(parents=True)
    (lib / "plainmod_api_test.py").write_text("def objective(trial):\n    pass\n")
    (lib / "pkg" / "__init__.py").write_text("")
    (lib / "pkg" / "trainer_api_test.py").write_text("def objective(trial):\n    pass\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.syspath_prepend(str(lib))
    import plainmod_api_test
    from pkg import trainer_api_test

    assert function_name(plainmod_api_test.objective) == \
        f"{(lib / 'plainmod_api_test.py').resolve()}:objective"
    with pytest.raises(ConfigError) as e:
        function_name(trainer_api_test.objective)
    assert f"jobs would not find pkg.trainer_api_test: it is found from {lib.resolve()}" in str(e.value)
    monkeypatch.setenv("PYTHONPATH", str(lib))  # where a job looks too
    assert function_name(trainer_api_test.objective) == "pkg.trainer_api_test:objective"


def test_an_entrypoint_given_as_text_is_named_as_a_job_finds_it(tmp_path, monkeypatch):
    """``"module:function"`` as text: taken where a job finds that module; named by its file
    where this process imported it from elsewhere (a job would import another, or none); refused
    before any job where a job would not find it at all."""
    project, there = tmp_path / "project", tmp_path / "there"
    project.mkdir(), there.mkdir()
    (project / "textentry_api_test.py").write_text("def main(trial):\n    pass\n")
    (there / "textentry_api_test.py").write_text("")  # someone else's, empty
    monkeypatch.chdir(project)
    space = {"searcher": _searcher(), "hyperparameters": {"lr": 0.1}}
    assert config_from(space, entrypoint="textentry_api_test:main").entrypoint == \
        "textentry_api_test:main"
    monkeypatch.chdir(tmp_path)  # no such module here: refused now, not in the first job
    with pytest.raises(ConfigError) as e:
        config_from(space, entrypoint="textentry_api_test:main")
    assert "jobs would not find module 'textentry_api_test'" in str(e.value)
    monkeypatch.syspath_prepend(str(project))  # the running script's folder, say
    import textentry_api_test  # noqa: F401

    for here in (tmp_path, there):  # a job would find none, or the empty one there
        monkeypatch.chdir(here)
        assert config_from(space, entrypoint="textentry_api_test:main").entrypoint == \
            f"{(project / 'textentry_api_test.py').resolve()}:main"


def test_a_module_or_a_method_as_the_entrypoint_says_what_to_pass(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nbtrain_api_test.py").write_text(
        "def train(trial):\n    pass\n\n\nclass Trainer:\n    def fit(self, trial):\n        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import nbtrain_api_test

    with pytest.raises(ConfigError) as e:
        config_from({"searcher": _searcher()}, entrypoint=nbtrain_api_test)
    assert "the module nbtrain_api_test, not a function: pass nbtrain_api_test.FUNCTION (it has: " \
           "train)" in str(e.value)
    with pytest.raises(ConfigError) as e:
        config_from({"searcher": _searcher()}, entrypoint=nbtrain_api_test.Trainer().fit)
    assert "nbtrain_api_test.Trainer.fit is a method: a job imports a module-level function " \
           "by name" in str(e.value)


def test_numpy_arrays_and_ranges_are_lists_and_every_problem_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = config_from({"entrypoint": "train.py:train", "searcher": _searcher(), "hyperparameters": {
        "lr": {"type": "categorical", "vals": np.logspace(-3, -1, 3)},
        "width": {"type": "categorical", "vals": np.array([64])},
        "layers": {"type": "categorical", "vals": range(1, 4)}}})
    spec = cfg.to_dict()["hyperparameters"]
    assert spec["lr"]["vals"] == pytest.approx([0.001, 0.01, 0.1])
    assert spec["width"]["vals"] == [64] and spec["layers"]["vals"] == [1, 2, 3]
    with pytest.raises(ConfigError) as e:
        config_from({"entrypoint": "train.py:train", "searcher": dict(_searcher(), max_concurent_trials=2),
                     "hyperparameters": {"lr": {1, 2}, "wd": object()}})
    said = e.value.problems
    assert said[0].startswith("hyperparameters.lr: a set has no order") and \
        said[1].startswith("hyperparameters.wd: object") and \
        any("max_concurent_trials" in p for p in said[2:]), said


def test_rays_grid_search_is_refused_with_what_to_write(tmp_path, monkeypatch):
    """tune.grid_search([...]) is the dict {"grid_search": [...]}: a group of one constant
    as written, which the code would receive as that dict."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        config_from({"entrypoint": "train.py:train", "searcher": _searcher(),
                     "hyperparameters": {"lr": {"grid_search": [0.1, 0.01]}}})
    assert "hyperparameters.lr: Ray Tune's grid_search: write type: categorical, vals: [0.1, " \
           "0.01]" in str(e.value)


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
    ({"hyperparameters": {"lr": math.nan}, "entrypoint": "train.py:train", "searcher": _searcher()}, {},
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
    (tmp_path / "heldexp_api_test.py").write_text("def train(trial):\n    pass\n")
    exp = tmp_path / "runs" / "q"
    create_experiment(config_from({"entrypoint": "heldexp_api_test:train", "searcher": _searcher(),
                                   "hyperparameters": {"lr": 0.1}}), exp)
    with pytest.raises(asha_hpc.AshaError) as e:
        asha_hpc.run({"entrypoint": "heldexp_api_test:train", "searcher": _searcher(),
                      "hyperparameters": {"lr": 0.1}}, exp_dir=exp)
    assert f"asha_hpc.resume({str(exp)!r}) continues it" in str(e.value)
    loaded = asha_hpc.load(exp)
    assert (loaded.status, loaded.best, loaded.failed) == ("new", None, ())


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
            config_from({"entrypoint": "model.py:train", "searcher": _searcher(),
                         "hyperparameters": {name: obj}})
        assert f"hyperparameters.{name}: " in str(e.value) and says in str(e.value), str(e.value)

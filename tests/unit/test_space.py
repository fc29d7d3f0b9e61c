"""The hyperparameter space (spec section 6): parsing with every problem reported, seeded
sampling in sorted-name order, grid points."""
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.space import parse_space

GOOD = {
    "lr": {"type": "log", "minval": -5, "maxval": -1, "base": 10},
    "width": {"type": "int", "minval": 8, "maxval": 64},
    "dropout": {"type": "double", "minval": 0.0, "maxval": 0.5},
    "act": {"type": "categorical", "vals": ["relu", "tanh", "gelu"]},
    "epochs_const": 3,
    "layers": [64, 32],
    "opt": {"name": {"type": "const", "val": "adam"},
            "betas": {"b1": {"type": "double", "minval": 0.8, "maxval": 0.99}, "b2": 0.999}},
}


def parse_ok(raw):
    space, problems = parse_space(raw)
    assert problems == []
    return space


def test_sample_types_ranges_and_nesting():
    s = parse_ok(GOOD)
    rng = np.random.default_rng(0)
    for _ in range(200):
        h = s.sample(rng)
        assert 1e-5 <= h["lr"] <= 1e-1 and type(h["lr"]) is float
        assert 8 <= h["width"] <= 64 and type(h["width"]) is int
        assert 0.0 <= h["dropout"] <= 0.5 and type(h["dropout"]) is float
        assert h["act"] in ("relu", "tanh", "gelu")
        assert h["epochs_const"] == 3 and h["layers"] == [64, 32]
        assert h["opt"]["name"] == "adam" and h["opt"]["betas"]["b2"] == 0.999
        assert 0.8 <= h["opt"]["betas"]["b1"] <= 0.99
        assert json.loads(json.dumps(h)) == h
    assert s.flat_names() == ["act", "dropout", "epochs_const", "layers", "lr",
                              "opt.betas.b1", "opt.betas.b2", "opt.name", "width"]


def test_int_bounds_inclusive():
    s = parse_ok({"n": {"type": "int", "minval": 0, "maxval": 2}})
    rng = np.random.default_rng(1)
    assert {s.sample(rng)["n"] for _ in range(300)} == {0, 1, 2}


def test_sampling_reproducible_by_seed():
    s = parse_ok(GOOD)
    a = [s.sample(np.random.default_rng(42)) for _ in range(3)]
    r1, r2 = np.random.default_rng(7), np.random.default_rng(7)
    assert [s.sample(r1) for _ in range(5)] == [s.sample(r2) for _ in range(5)]
    assert a[0] == a[1] == a[2]
    assert s.sample(np.random.default_rng(1)) != s.sample(np.random.default_rng(2))


def test_draw_order_is_sorted_names():
    """Adding a parameter whose name sorts last leaves every earlier value alone, in every
    draw (the same Generator stream is consumed in the same order)."""
    s1 = parse_ok(GOOD)
    s2 = parse_ok(dict(GOOD, zz_extra={"type": "double", "minval": 0, "maxval": 1}))
    r1, r2 = np.random.default_rng(3), np.random.default_rng(3)
    for _ in range(5):
        h1 = s1.sample(r1)
        h2 = s2.sample(r2)
        r1.uniform(0, 1)  # zz_extra's draw, to keep the streams aligned
        assert {k: v for k, v in h2.items() if k != "zz_extra"} == h1
    # the order of keys in the file does not matter
    rev = parse_ok(dict(reversed(list(GOOD.items()))))
    assert rev.sample(np.random.default_rng(9)) == s1.sample(np.random.default_rng(9))
    # the draw is name-sorted: lr before width, so lr is the first uniform of the stream
    s = parse_ok({"width": {"type": "double", "minval": 0, "maxval": 1},
                  "lr": {"type": "double", "minval": 0, "maxval": 1}})
    h = s.sample(np.random.default_rng(5))
    r = np.random.default_rng(5)
    assert (h["lr"], h["width"]) == (r.uniform(0, 1), r.uniform(0, 1))


def test_log_is_base_to_uniform_exponent():
    s = parse_ok({"lr": {"type": "log", "minval": -3, "maxval": -1, "base": 2}})
    h = s.sample(np.random.default_rng(11))
    assert h["lr"] == 2.0 ** np.random.default_rng(11).uniform(-3, -1)


def test_grid_points():
    s = parse_ok({"i": {"type": "int", "minval": 0, "maxval": 10, "count": 3}})
    assert [g["i"] for g in s.grid()] == [0, 5, 10]
    s = parse_ok({"i": {"type": "int", "minval": 1, "maxval": 3, "count": 10}})  # capped at 3
    assert [g["i"] for g in s.grid()] == [1, 2, 3]
    s = parse_ok({"i": {"type": "int", "minval": 0, "maxval": 10, "count": 1}})  # midpoint
    assert [g["i"] for g in s.grid()] == [5]
    s = parse_ok({"i": {"type": "int", "minval": 0, "maxval": 4, "count": 4}})
    assert [g["i"] for g in s.grid()] == [0, 1, 3, 4]  # round(0, 1.33, 2.67, 4)
    s = parse_ok({"i": {"type": "int", "minval": 2, "maxval": 5}})  # no count: every integer
    assert [g["i"] for g in s.grid()] == [2, 3, 4, 5]
    s = parse_ok({"x": {"type": "double", "minval": 0, "maxval": 1, "count": 5}})
    assert [g["x"] for g in s.grid()] == [0.0, 0.25, 0.5, 0.75, 1.0]
    s = parse_ok({"x": {"type": "double", "minval": 0, "maxval": 1, "count": 1}})
    assert [g["x"] for g in s.grid()] == [0.5]
    s = parse_ok({"lr": {"type": "log", "minval": -4, "maxval": -1, "base": 10, "count": 4}})
    assert [g["lr"] for g in s.grid()] == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])
    s = parse_ok({"a": {"type": "categorical", "vals": ["x", "y"]}, "c": 7,
                  "b": {"type": "int", "minval": 0, "maxval": 1, "count": 2}})
    assert s.grid() == [{"a": "x", "b": 0, "c": 7}, {"a": "x", "b": 1, "c": 7},
                        {"a": "y", "b": 0, "c": 7}, {"a": "y", "b": 1, "c": 7}]
    assert s.grid_size() == 4
    assert parse_ok({}).grid() == [{}]


def test_grid_problems():
    s = parse_ok({"lr": {"type": "log", "minval": -4, "maxval": -1, "base": 10},
                  "o": {"m": {"type": "double", "minval": 0, "maxval": 1}},
                  "n": {"type": "int", "minval": 0, "maxval": 5}})
    assert s.grid_problems() == ["hyperparameters.lr.count: required for grid search",
                                 "hyperparameters.o.m.count: required for grid search"]
    big = parse_ok({"a": {"type": "int", "minval": 0, "maxval": 10**7}})
    assert "more than" in big.grid_problems()[0]


BAD = [
    ({"lr": {"type": "double", "minval": 1.0, "maxval": 0.5}},
     "hyperparameters.lr.minval: must be < maxval (got minval=1.0, maxval=0.5)"),
    ({"lr": {"type": "double", "minval": 1, "maxval": 1}}, "hyperparameters.lr.minval: must be < maxval"),
    ({"act": {"type": "categorical", "vals": []}}, "hyperparameters.act.vals: must be a non-empty list"),
    ({"act": {"type": "categorical", "vals": "relu"}}, "hyperparameters.act.vals: must be a non-empty list"),
    ({"lr": {"type": "lgo", "minval": 1, "maxval": 2}}, "hyperparameters.lr.type: unknown type 'lgo'; did you mean 'log'?"),
    ({"lr": {"type": "banana"}}, "hyperparameters.lr.type: unknown type 'banana'"),
    ({"lr": {"type": "double", "minval": 0, "maxval": 1, "maxvl": 2}},
     "hyperparameters.lr.maxvl: unknown key; did you mean 'maxval'?"),
    ({"lr": {"type": "double", "minval": 0, "maxval": 1, "base": 2}}, "hyperparameters.lr.base: unknown key"),
    ({"lr": {"type": "double", "minval": "abc", "maxval": 1}}, "hyperparameters.lr.minval: must be a number, got 'abc'"),
    ({"lr": {"type": "double", "minval": True, "maxval": 1}}, "hyperparameters.lr.minval: must be a number, got True"),
    ({"lr": {"type": "double", "minval": 0, "maxval": math.inf}}, "hyperparameters.lr.maxval: must be a finite number"),
    ({"lr": {"type": "double", "maxval": 1}}, "hyperparameters.lr.minval: missing (required for type 'double')"),
    ({"lr": {"type": "double", "minval": "1e-5", "maxval": 1}}, "hyperparameters.lr.minval: must be a number, got '1e-5' (a number written as text: write it without quotes)"),
    # Optuna's habits: values where a log type takes exponents, log: true, conditional spaces
    ({"lr": {"type": "log", "minval": 1e-5, "maxval": 0.1, "base": 10}},
     "hyperparameters.lr: type 'log' takes exponents: minval 1e-05, maxval 0.1 draw 1.00002 .. "
     "1.25893. For values 1e-05 .. 0.1 write minval: -5, maxval: -1 (base 10), or type: double "
     "with log: true"),
    ({"wd": {"type": "log", "minval": 0.001, "maxval": 10}},
     "hyperparameters.wd: type 'log' takes exponents: minval 0.001, maxval 10 draw 1.00231 .. "
     "1e+10. For values 0.001 .. 10 write minval: -3, maxval: 1 (base 10), or type: double "
     "with log: true"),
    ({"lr": {"type": "double", "minval": 0, "maxval": 0.1, "log": True}},
     "hyperparameters.lr.minval: must be > 0 on a log scale (log: true), got 0"),
    ({"lr": {"type": "double", "minval": 0.1, "maxval": 1, "log": "yes"}},
     "hyperparameters.lr.log: must be true or false, got 'yes'"),
    ({"n": {"type": "int", "minval": 32, "maxval": 256, "step": 32}},
     "hyperparameters.n.step: unknown key (type 'int' takes minval, maxval, count, log); values "
     "on a grid of steps: a categorical of them (type: categorical, vals: [32, 64, 96, 128])"),
    ({"lr": {"type": "double", "low": 0.0, "high": 1.0}},
     "hyperparameters.lr.low: unknown key (Optuna's low/high, Ray's lower/upper): write minval"),
    ({"lr": {"type": "loguniform", "minval": 1e-4, "maxval": 0.1}},
     "hyperparameters.lr.type: unknown type 'loguniform' here: write type: double with log: true"),
    ({"n": {"type": "int", "minval": 0, "maxval": 256, "log": True}},
     "hyperparameters.n.minval: must be >= 1 on a log scale (log: true), got 0"),
    ({"opt": {"type": "categorical", "vals": [
        {"name": "sgd", "momentum": {"type": "double", "minval": 0.0, "maxval": 0.99}},
        {"name": "adam"}]}},
     "hyperparameters.opt.vals[0].momentum: a search space inside a categorical value is passed "
     "to the trial as it is written, not searched"),
    ({"n_units": [{"type": "int", "minval": 4, "maxval": 128}, {"type": "int", "minval": 4,
                                                                  "maxval": 128}]},
     "hyperparameters.n_units[0]: a search space inside a list is passed to the trial as it is "
     "written, not searched: declare one hyperparameter per element"),
    ({"my.param": {"type": "double", "minval": 0, "maxval": 1},
      "my": {"param": {"type": "double", "minval": 5, "maxval": 6}}},
     "hyperparameters.my.param: two hyperparameters have this dotted name"),
    ({"lr": {"type": "log", "minval": -3, "maxval": -1, "base": 0}}, "hyperparameters.lr.base: must be > 0, got 0"),
    ({"lr": {"type": "log", "minval": -3, "maxval": -1, "base": -2}}, "hyperparameters.lr.base: must be > 0"),
    ({"lr": {"type": "log", "minval": -3, "maxval": 400, "base": 10}}, "hyperparameters.lr: 10^400 overflows"),
    ({"n": {"type": "int", "minval": 1.5, "maxval": 4}}, "hyperparameters.n.minval: must be an integer, got 1.5"),
    ({"n": {"type": "int", "minval": 1, "maxval": 4, "count": 0}}, "hyperparameters.n.count: must be an integer >= 1, got 0"),
    ({"n": {"type": "int", "minval": 1, "maxval": 4, "count": 2.0}}, "hyperparameters.n.count: must be an integer >= 1"),
    ({"n": {"type": "int", "minval": 1, "maxval": 4, "count": True}}, "hyperparameters.n.count: must be an integer >= 1"),
    ({"c": {"type": "const"}}, "hyperparameters.c.val: missing"),
    ({"c": None}, "hyperparameters.c: has no value"),
    ({"a": {"b": {"c": {"type": "int", "minval": 3, "maxval": 1}}}}, "hyperparameters.a.b.c.minval: must be < maxval"),
    ({1: 3}, "hyperparameters.1: a hyperparameter name must be a non-empty string"),
    ({"x": math.nan}, "hyperparameters.x: a constant must be a finite number"),
]


def test_log_scales_as_optuna_users_write_them():
    """``type: log`` without a base is base 10; ``type: double`` with ``log: true`` takes the
    values themselves (Optuna's ``suggest_float(..., log=True)``) and draws the same as the
    exponents would; categorical values that merely hold a mapping stay values."""
    import numpy as np

    a = parse_ok({"lr": {"type": "log", "minval": -5, "maxval": -1}})
    b = parse_ok({"lr": {"type": "double", "minval": 1e-5, "maxval": 0.1, "log": True}})
    assert a.sample(np.random.default_rng(3)) == pytest.approx(b.sample(np.random.default_rng(3)))
    draws = [b.sample(np.random.default_rng(i))["lr"] for i in range(200)]
    assert 1e-5 <= min(draws) < 1e-4 and 1e-2 < max(draws) <= 0.1
    assert parse_ok({"lr": {"type": "log", "minval": 0.1, "maxval": 0.9}})  # ratio 9: exponents
    assert parse_ok({"n": {"type": "log", "minval": 0.5, "maxval": 3, "base": 2}})  # exponents
    assert parse_ok({"n": {"type": "log", "minval": 0.1, "maxval": 3}})
    c = parse_ok({"opt": {"type": "categorical", "vals": [{"name": "sgd", "momentum": 0.9},
                                                          {"name": "adam", "type": "adamw"}]}})
    assert c.sample(np.random.default_rng(0))["opt"]["name"] in ("sgd", "adam")


@settings(max_examples=200, deadline=None)
@given(lo=st.integers(1, 10_000), span=st.integers(1, 10**6), count=st.none() | st.integers(1, 12),
       seed=st.integers(0, 2**32 - 1), u=st.floats(0, 1))
def test_an_int_on_a_log_scale_as_optuna_and_ray_users_write_it(lo, span, count, seed, u):
    """``{type: int, minval, maxval, log: true}`` (Optuna's ``suggest_int(log=True)``, Ray's
    ``lograndint``): whole numbers in the range, drawn evenly in their logarithm; its grid, and
    what the model samplers decode, stay inside it."""
    from asha_hpc.searcher.model_sampler import _decode, _encode

    hi = lo + span
    spec = {"type": "int", "minval": lo, "maxval": hi, "log": True}
    if count is not None:
        spec["count"] = count
    space = parse_ok({"n": spec})
    ((_, p),) = space.leaves()
    v = space.sample(np.random.default_rng(seed))["n"]
    assert isinstance(v, int) and lo <= v <= hi
    if count is not None:  # (without a count, a grid takes every whole number: not drawn here)
        grid = p.grid_points()
        assert grid == sorted(set(grid)) and all(lo <= g <= hi for g in grid)
        assert len(grid) <= count and p.grid_size() == len(grid)
    d = _decode(p, u)
    assert isinstance(d, int) and lo <= d <= hi
    assert 0.0 <= _encode(p, d) <= 1.0 and _decode(p, _encode(p, d)) == d


def test_an_int_on_a_log_scale_draws_evenly_in_its_logarithm():
    space = parse_ok({"n": {"type": "int", "minval": 4, "maxval": 256, "log": True}})
    draws = [space.sample(np.random.default_rng(i))["n"] for i in range(2000)]
    assert 25 <= float(np.median(draws)) <= 40  # about sqrt(4 * 256) = 32; uniform: 130
    assert sum(d < 16 for d in draws) > 500  # a third of the logarithms lie below 16


@pytest.mark.parametrize("raw,expected", BAD)
def test_bad_spec_gives_its_message(raw, expected):
    _, problems = parse_space(raw)
    assert any(p.startswith(expected) for p in problems), problems


def test_all_problems_at_once_and_custom_path():
    raw = {"a": {"type": "double", "minval": 2, "maxval": 1},
           "b": {"type": "categorical", "vals": []},
           "c": {"type": "lgo"}}
    _, problems = parse_space(raw, "hp")
    assert sorted(p.split(":")[0] for p in problems) == ["hp.a.minval", "hp.b.vals", "hp.c.type"]
    _, problems = parse_space([1, 2])
    assert problems == ["hyperparameters: must be a mapping of name: spec, got [1, 2]"]


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                     max_leaves=12)


_spec = st.dictionaries(
    st.sampled_from(["type", "val", "vals", "minval", "maxval", "base", "count", "log", "vasl"]),
    st.sampled_from(["const", "int", "double", "log", "categorical", "lgo"]) | _json, max_size=5)


@settings(max_examples=200, deadline=None)
@given(raw=_json | st.dictionaries(st.text(max_size=3), _spec | _json, max_size=4))
def test_parse_never_raises(raw):
    space, problems = parse_space(raw)
    assert isinstance(problems, list) and all(isinstance(p, str) for p in problems)
    if not problems:
        space.sample(np.random.default_rng(0))
        space.describe()


def test_describe_one_line_per_hyperparameter():
    s = parse_ok(GOOD)
    lines = s.describe()
    assert len(lines) == len(s.flat_names())
    assert lines[0].startswith("act") and "categorical" in lines[0]
    assert any(line.startswith("lr") and "log" in line and "10^-5" in line for line in lines)
    assert any(line.startswith("opt.betas.b1") and "double" in line for line in lines)


NAME = st.text(alphabet="abcxyz_", min_size=1, max_size=4)
NESTED = st.recursive(st.integers() | st.floats(allow_nan=False) | st.text(max_size=4) | st.booleans(),
                      lambda c: st.dictionaries(NAME, c, max_size=3), max_leaves=12)


@given(st.dictionaries(NAME, NESTED, max_size=4))
def test_flat_hparams_names_every_leaf_by_its_dotted_path(hp):
    """status, export, the text view and the trackers show nested hyperparameters under one
    flattening: every leaf once, under its path; an empty map is a value only with keep_empty."""
    from asha_hpc.space import flat_hparams

    def rebuild(flat):
        out: dict = {}
        for name, v in flat.items():
            *path, leaf = name.split(".")
            d = out
            for p in path:
                d = d.setdefault(p, {})
            d[leaf] = v
        return out

    def drop_empty(d):
        return {k: drop_empty(v) if isinstance(v, dict) else v for k, v in d.items()
                if not (isinstance(v, dict) and not drop_empty(v))}

    assert rebuild(flat_hparams(hp, keep_empty=True)) == hp
    assert rebuild(flat_hparams(hp)) == drop_empty(hp)
    assert not any(isinstance(v, dict) for v in flat_hparams(hp).values())


def test_status_writes_hyperparameter_values_as_the_config_spells_them():
    from asha_hpc.views.text import hp_text

    assert hp_text({"max_depth": None, "pca": {"enabled": True}, "lr": 0.001234567, "n": 3,
                    "q": [10.0, 90.0], "s": "adam"}) == (
        "lr=0.001235 max_depth=null n=3 pca.enabled=true q=[10.0, 90.0] s=adam")

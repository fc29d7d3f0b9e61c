"""``searcher.points_to_evaluate``: configurations the user gives for the first trials (a
paper's defaults, the best of an earlier search), with every sampler."""
from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_sampler import (
    MODELS,
    SPACE,
    _scalars,
    check_in_space,
    created,
    drive,
    master_config,
    raw_config,
    searcher_cfg,
    spaces,
)

from asha_hpc.config import parse_config
from asha_hpc.errors import ConfigError
from asha_hpc.master.loop import Master
from asha_hpc.master.state import config_hash, replay
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.protocol.journal import read_journal
from asha_hpc.searcher import make_searcher
from asha_hpc.space import Categorical, Double, Int, Log, parse_space
from asha_hpc.testing.invariants import check_invariants
from asha_hpc.views.status import export_rows
from asha_hpc.views.trackers import trial_runs

# as a user writes them: a partial config, a nested one, a categorical value given as an int
POINTS = [{"lr": 0.001, "optimizer": "adamw", "model": {"width": 128}},
          {"layers": 3, "dropout": 0.1, "model": {"head": {"bias": False}}}]


def space():
    return parse_space(SPACE)[0]


@pytest.mark.parametrize("sampler", ["random"] + MODELS)
def test_points_come_first_and_leave_the_later_trials_alone(sampler):
    sp = space()
    with_points = created(drive(make_searcher(
        searcher_cfg(sampler=sampler, trials=60, points_to_evaluate=POINTS), sp, 5)))
    without = created(drive(make_searcher(searcher_cfg(sampler=sampler, trials=60), sp, 5)))
    one, two = with_points[1], with_points[2]
    assert (one["lr"], one["optimizer"], one["model"]["width"]) == (0.001, "adamw", 128)
    assert (two["layers"], two["dropout"], two["model"]["head"]["bias"]) == (3, 0.1, False)
    # what a point leaves out is the draw that trial would have had without points
    assert one["layers"] == without[1]["layers"] and two["lr"] == without[2]["lr"]
    for hp in with_points.values():
        check_in_space(sp, hp)
    # the trials created before any result (the first batch) are the same as without points
    for t in range(3, 9):
        assert with_points[t] == without[t]
    if sampler == "random":  # and with nothing to learn from, every later one
        assert {t: hp for t, hp in with_points.items() if t > 2} == \
            {t: hp for t, hp in without.items() if t > 2}


def test_config_problems_name_the_field():
    def problems(**searcher):
        with pytest.raises(ConfigError) as e:
            parse_config(raw_config(**searcher), "/tmp")
        return [x for x in e.value.problems if "points_to_evaluate" in x]

    got = problems(points_to_evaluate=[{"lr": 0.5, "layer": 3, "model": {"width": 100}},
                                       {"layers": 2.5, "model.width": 64}, "lr=0.1"])
    assert got == [
        "searcher.points_to_evaluate[0].lr: 0.5 is outside 1e-05 .. 0.1: change the point "
        "or the range",
        "searcher.points_to_evaluate[0].layer: not a hyperparameter; did you mean layers?",
        "searcher.points_to_evaluate[0].model.width: 100 is not one of the values "
        "(64, 128, 256)",
        "searcher.points_to_evaluate[1].layers: 2.5 is not a whole number (an int "
        "hyperparameter)",
        "searcher.points_to_evaluate[1].model.width: not a hyperparameter; a nested one is "
        "a map: model: {width: ...}",
        "searcher.points_to_evaluate[2]: must be a map of hyperparameter names to values, "
        "got 'lr=0.1'"]
    assert len(problems(points_to_evaluate={"lr": 0.01})) == 1
    assert problems(points_to_evaluate=[{"lr": "1e-3"}]) == [  # quoted in the YAML
        "searcher.points_to_evaluate[0].lr: must be a number, got '1e-3' (a number written as "
        "text: write it without quotes)"]
    assert len(problems(name="grid", points_to_evaluate=POINTS)) == 1
    assert "raise max_trials" in problems(max_trials=1, points_to_evaluate=POINTS)[0]


def test_a_repeated_full_point_is_warned_about():
    """Two points that name every searched hyperparameter with the same values train one
    configuration twice: a warning naming both (a repeat may be meant: the noise of a seed);
    partial points that repeat differ in what is drawn, and get none."""
    full = {"lr": 0.001, "layers": 4, "dropout": 0.1, "optimizer": "adamw",
            "model": {"width": 128, "head": {"bias": True, "sizes": [1, 2]}}}
    again = copy.deepcopy(full)
    again["lr"] = 1.0e-3  # the same value, written otherwise
    cfg = parse_config(raw_config(points_to_evaluate=[full, POINTS[0], again, POINTS[0]]), "/tmp")
    assert cfg.warnings == [
        "searcher.points_to_evaluate[2] repeats [0]: trials 1 and 3 will train the same "
        "configuration; remove one if that is not meant"]
    other = dict(full, layers=5)
    assert parse_config(raw_config(points_to_evaluate=[full, other]), "/tmp").warnings == []


def test_plan_says_which_trials_are_given():
    from asha_hpc.plan import plan, render_plan

    for points, want in ((POINTS, "; trials 1-2: points_to_evaluate"),
                         (POINTS[:1], "; trial 1: points_to_evaluate"), ([], None)):
        cfg = parse_config(raw_config(points_to_evaluate=points), "/tmp")
        head = render_plan(cfg.searcher, cfg.space(), plan(cfg.searcher, cfg.space()))
        head = head.splitlines()[0]
        assert (want in head) if want else "points_to_evaluate" not in head


def test_config_round_trip_and_older_files_keep_their_hash():
    def load(**searcher):
        return parse_config(dict(raw_config(**searcher), reproducibility={"experiment_seed": 3}),
                            "/tmp")

    cfg = load(points_to_evaluate=POINTS)
    again = parse_config(cfg.to_dict(), "/tmp")
    assert again.searcher.points_to_evaluate == POINTS and config_hash(again) == config_hash(cfg)
    plain = load()
    # without points the resolved config is the one an earlier release wrote: its hash (which
    # resume checks) is unchanged
    assert "points_to_evaluate" not in plain.to_dict()["searcher"]
    assert config_hash(plain) != config_hash(cfg)
    assert config_hash(plain) == config_hash(load(points_to_evaluate=[]))


def edges(p):
    """Numbers at, just inside and just outside a numeric leaf's range."""
    if isinstance(p, Int):
        return st.sampled_from([p.minval - 1, p.minval, p.maxval, p.maxval + 1, p.minval + 0.5])
    lo, hi = p.minval, p.maxval
    if isinstance(p, Log):
        lo, hi = sorted((p.base ** lo, p.base ** hi))
    span = hi - lo
    return st.sampled_from([lo, hi, lo - 1e-3 * span - 1e-9, hi + 1e-3 * span + 1e-9,
                            lo + span / 2, math.inf, math.nan])


@st.composite
def space_and_point(draw):
    """A space a user can write, and a point over it: values of the space, values of any type,
    names that are not in it."""
    raw = draw(spaces)
    sp, problems = parse_space(raw)
    if problems:
        return raw, {}
    drawn = sp.sample(np.random.default_rng(draw(st.integers(0, 99))))

    def pick(node, hp):
        out = {}
        for name in node:
            choice = draw(st.sampled_from(["leave", "space", "any", "edge"]))
            if choice == "leave":
                continue
            if isinstance(node[name], dict):
                out[name] = pick(node[name], hp[name]) if choice == "space" else draw(_scalars)
            elif choice == "edge" and isinstance(node[name], (Int, Double)):
                out[name] = draw(edges(node[name]))
            else:
                out[name] = copy.deepcopy(hp[name]) if choice == "space" else draw(_scalars)
        if draw(st.booleans()):
            out[draw(st.text(alphabet="xyz", min_size=1, max_size=3))] = draw(_scalars)
        return out

    return raw, pick(sp.tree, drawn)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sp_point=space_and_point(), sampler=st.sampled_from(["random"] + MODELS))
@example(sp_point=({"c": {"type": "categorical", "vals": [0]}}, {"c": 4.2043544689617263e-78}),
         sampler="random")  # taken as 0, within the tolerance for a step's rounding
def test_any_point_is_taken_or_named(sp_point, sampler):
    """Any point over any space: either the first trial takes exactly its values (and lies in
    the space), or the config is refused with lines that all name the point."""
    raw, point = sp_point
    sp, problems = parse_space(raw)
    if problems:
        return
    cfg_raw = {"name": "t", "entrypoint": "unused:train", "hyperparameters": raw,
               "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 16,
                            "max_trials": 8, "sampler": sampler, "points_to_evaluate": [point]}}
    try:
        cfg = parse_config(cfg_raw, "/tmp")
    except ConfigError as e:
        assert e.problems and all(x.startswith("searcher.points_to_evaluate[0]")
                                  for x in e.problems), e.problems
        return
    first = make_searcher(cfg.searcher, cfg.space(), 1).start()[0].hparams
    check_in_space(cfg.space(), first)

    def same(node, given, got):
        for k, v in given.items():
            if isinstance(node[k], dict):  # nested
                same(node[k], v, got[k])
            elif isinstance(node[k], Double):
                # a value within 1e-9 of the range's scale (10 ** -5 for 1e-5) is taken at
                # its edge (compared as v <= hi + slack: the difference v - hi rounds on its own)
                lo, hi = node[k].minval, node[k].maxval
                if isinstance(node[k], Log):
                    lo, hi = sorted((node[k].base ** lo, node[k].base ** hi))
                slack = 1e-9 * max(abs(lo), abs(hi))
                assert lo - slack <= v <= hi + slack, (k, v, got[k])
                assert got[k] == min(max(float(v), lo), hi), (k, v, got[k])
            elif isinstance(node[k], Categorical) and got[k] != v:
                # a number a step wrote is taken as the value it rounds to (0.30000000000000004
                # for 0.3; 4e-78 for 0), within the tolerance space.py names
                assert isinstance(v, (int, float)) and isinstance(got[k], (int, float)) \
                    and math.isclose(v, got[k], rel_tol=1e-9, abs_tol=1e-12), (k, v, got[k])
            else:
                assert got[k] == v, (k, v, got[k])

    same(cfg.space().tree, point, first)


def test_master_journal_replay_and_export(tmp_path, monkeypatch):
    (tmp_path / "landscape.py").write_text(
        "import math\n"
        "def curve(hp, length, seed):\n"
        "    return (math.log10(hp['lr']) + 3) ** 2 + hp['dropout'] + 2.0 / length\n")
    cfg = master_config(tmp_path, trials=40, sampler="tpe")
    cfg.searcher.points_to_evaluate = POINTS
    exp = ExpDir.create(tmp_path / "exp")
    st_ = Master(exp, cfg, progress=lambda s: None).run()
    recs = read_journal(exp.journal)[0]
    assert st_.lifecycle == "completed" and check_invariants(cfg, recs) == []
    assert st_.trials[1].hparams["lr"] == 0.001 and st_.trials[2].hparams["layers"] == 3
    # given configurations are in the config, not journaled as model draws
    assert not {1, 2} & {r["trial"] for r in recs if r["kind"] == "sampled"}
    again = replay(cfg, recs)
    assert {t: x.hparams for t, x in again.trials.items()} == \
        {t: x.hparams for t, x in st_.trials.items()}
    by = {r["trial_id"]: r["sampled_by"] for r in export_rows(again)}
    assert by[1] == by[2] == "given" and set(by.values()) == {"given", "model", "random"}
    # the same in TensorBoard's and MLflow's exports, as a tag
    assert {r.trial_id: r.tags["asha.sampled_by"] for r in trial_runs(exp, cfg, again)} == by


def test_best_points_start_a_new_search_from_an_earlier_one(tmp_path):
    """``best --points`` prints the best trials as YAML that a new search's config takes as
    it is: its first trials are the earlier search's best configurations."""
    import yaml

    from helpers import cli

    (tmp_path / "landscape.py").write_text(
        "import math\n"
        "def curve(hp, length, seed):\n"
        "    return (math.log10(hp['lr']) + 3) ** 2 + hp['dropout'] + 2.0 / length\n")
    raw = {"name": "first", "entrypoint": "unused:train",
           "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 16,
                        "max_trials": 30, "max_concurrent_trials": 4, "sampler": "tpe"},
           "hyperparameters": SPACE, "reproducibility": {"experiment_seed": 2},
           "backend": "simulated", "simulated": {"curve": "landscape:curve"}}
    (tmp_path / "first.yaml").write_text(yaml.safe_dump(raw))
    cli("run", tmp_path / "first.yaml", "--exp-dir", tmp_path / "first")
    out = cli("best", tmp_path / "first", "--points", "--top", "3").stdout
    best = json.loads(cli("best", tmp_path / "first", "--json", "--top", "3").stdout)
    assert out.startswith("# the best 3 trials of") and out.count("  - {") == 3
    points = yaml.safe_load(out)["points_to_evaluate"]
    # constants are not searched: left out
    assert all("act" not in p["model"] and "seed_list" not in p for p in points)

    raw2 = dict(raw, name="second", searcher=dict(raw["searcher"], points_to_evaluate=points))
    (tmp_path / "second.yaml").write_text(yaml.safe_dump(raw2))
    cli("run", tmp_path / "second.yaml", "--exp-dir", tmp_path / "second")
    again = {r["trial_id"]: r for r in
             json.loads(cli("best", tmp_path / "second", "--json", "--top", "100").stdout)}
    assert [again[t]["hparams"] for t in (1, 2, 3)] == [r["hparams"] for r in best]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=spaces, seed=st.integers(0, 2**32 - 1))
def test_best_points_text_loads_back_as_the_same_configuration(raw, seed):
    """Whatever the space (odd strings, booleans, None, lists and maps as categorical values,
    nested names), ``best --points``'s YAML loads back as points the same space accepts, and
    they give back the searched values of the trial exactly."""
    import yaml

    from asha_hpc.views.text import points_text

    sp, problems = parse_space(raw)
    if problems:
        return
    hp = sp.sample(np.random.default_rng(seed))
    text = points_text([{"trial_id": 7, "metric": 0.5, "length": 16, "hparams": hp}], sp,
                       "val_loss", "runs/q1")
    points = yaml.safe_load(text)["points_to_evaluate"]
    assert len(points) == 1
    point, problems = sp.check_point(points[0], "p")
    assert problems == []
    assert sp.with_point(sp.sample(np.random.default_rng(seed + 1)), point) == hp


def test_best_points_lists_a_configuration_once(tmp_path):
    """A space of categoricals repeats configurations: ``best --points`` lists each once (a
    repeat in points_to_evaluate trains the same configuration twice), and says which trials
    were the same point."""
    import yaml

    from asha_hpc.views.text import points_text

    sp, problems = parse_space({"depth": {"type": "categorical", "vals": [None, 3, 6]},
                                "bootstrap": {"type": "categorical", "vals": [True, False]}})
    assert problems == []
    rows = [{"trial_id": 5, "metric": 0.1, "length": 16, "hparams": {"depth": None, "bootstrap": True}},
            {"trial_id": 2, "metric": 0.1, "length": 16, "hparams": {"depth": None, "bootstrap": True}},
            {"trial_id": 9, "metric": 0.2, "length": 16, "hparams": {"depth": 6, "bootstrap": False}}]
    text = points_text(rows, sp, "loss", "runs/rf")
    points = yaml.safe_load(text)["points_to_evaluate"]
    assert points == [{"depth": None, "bootstrap": True}, {"depth": 6, "bootstrap": False}]
    assert "# trial 2: the same point as trial 5 (loss 0.1 at length 16)" in text


def test_a_point_from_optunas_step_grid_matches_the_value_it_stands_for():
    """Optuna's suggest_float(..., step=0.1) stores 0.1 * 3 = 0.30000000000000004: an Optuna
    trial pasted as a point matches the categorical's 0.3 (it was refused) and is drawn as 0.3;
    a value that is not one of them is still refused."""
    raw = raw_config(points_to_evaluate=[{"dropout": 0.1 * 3}])
    raw["hyperparameters"] = dict(raw["hyperparameters"],
                                  dropout={"type": "categorical",
                                           "vals": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]})
    cfg = parse_config(raw, "/tmp")
    (point,) = cfg.searcher.points_to_evaluate
    value, problems = cfg.space().check_point(point, "p")  # the point as the first trial's
    assert problems == [] and repr(value["dropout"]) == "0.3"
    raw["searcher"]["points_to_evaluate"] = [{"dropout": 0.31}]
    with pytest.raises(ConfigError, match=r"dropout: 0.31 is not one of the values"):
        parse_config(raw, "/tmp")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vals=st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1,
                     max_size=6, unique=True),
       pick=st.integers(min_value=0, max_value=5), ulps=st.integers(min_value=-3, max_value=3))
def test_a_float_a_few_ulps_from_a_categoricals_value_is_that_value(vals, pick, ulps):
    """Whatever the values, a point's float within a few units in the last place of one of them
    (the arithmetic of a step grid) is drawn as that value; a categorical's values never
    collapse into each other (two values that close are one value twice)."""
    target = vals[pick % len(vals)]
    near = target
    for _ in range(abs(ulps)):
        near = math.nextafter(near, math.inf if ulps > 0 else -math.inf)
    raw = raw_config(points_to_evaluate=[{"dropout": near}])
    raw["hyperparameters"] = dict(raw["hyperparameters"],
                                  dropout={"type": "categorical", "vals": vals})
    others = [v for v in vals if v != target]
    if any(math.isclose(near, v, rel_tol=1e-9, abs_tol=1e-12) for v in others):
        return  # the point is as near another value: either is a fair reading
    cfg = parse_config(raw, "/tmp")
    value, problems = cfg.space().check_point(cfg.searcher.points_to_evaluate[0], "p")
    assert problems == [] and value["dropout"] == target

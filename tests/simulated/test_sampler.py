"""``searcher.sampler: tpe`` and ``gp``: each is deterministic, learns, journals its draws so that
resume never fits again, handles every hyperparameter type (nested included), and changes nothing
but the configurations: the bracket arithmetic (who is promoted, when, at what length) stays the
same."""
from __future__ import annotations

import copy
import math
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asha_hpc.config import SearcherConfig, parse_config
from asha_hpc.errors import ConfigError
from asha_hpc.master.loop import Master
from asha_hpc.master.state import replay
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.protocol.journal import read_journal
from asha_hpc.searcher import CreateTrial, ResumeTrial, SegmentCompleted, TrialFailed, make_searcher
from asha_hpc.searcher.gp import GPSampler
from asha_hpc.searcher.model_sampler import ModelSampler
from asha_hpc.searcher.tpe import TPESampler
from asha_hpc.space import Categorical, Const, Double, Int, Log, parse_space
from asha_hpc.testing.invariants import check_invariants
from asha_hpc.views.status import export_rows, status_dict
from asha_hpc.views.text import render_status_text
from asha_hpc.views.trackers import trial_runs

SPACE = {"lr": {"type": "log", "minval": -5, "maxval": -1, "base": 10},
         "layers": {"type": "int", "minval": 1, "maxval": 8},
         "dropout": {"type": "double", "minval": 0.0, "maxval": 0.5},
         "optimizer": {"type": "categorical", "vals": ["adam", "sgd", "adamw"]},
         "model": {"width": {"type": "categorical", "vals": [64, 128, 256]},
                   "act": "gelu",
                   "head": {"bias": {"type": "categorical", "vals": [True, False]},
                            "sizes": {"type": "categorical", "vals": [[1, 2], {"a": 1}]}}},
         "seed_list": [1, 2, 3]}


def loss(hp, length, tid=0):
    """A landscape with one good region: lr 1e-3, 4 layers, adamw, width 128."""
    lr = math.log10(hp["lr"])
    return ((lr + 3) ** 2 + (hp["layers"] - 4) ** 2 / 8 + hp["dropout"]
            + (0.0 if hp["optimizer"] == "adamw" else 0.6)
            + (0.0 if hp["model"]["width"] == 128 else 0.3) + 2.0 / length)


def searcher_cfg(name="adaptive_asha", sampler="tpe", trials=200, **kw):
    return SearcherConfig(name=name, metric="loss", max_length=64, max_trials=trials,
                          max_concurrent_trials=8, divisor=4, sampler=sampler, **kw)


def drive(s, metric=loss, fail=()):
    """Run the searcher to the end, one segment at a time in order; returns the actions."""
    hp, actions, pending = {}, [], list(s.start())
    while pending:
        a = pending.pop(0)
        actions.append(a)
        if isinstance(a, CreateTrial):
            hp[a.trial_id] = a.hparams
        if isinstance(a, (CreateTrial, ResumeTrial)):
            if a.trial_id in fail:
                pending += s.on_event(TrialFailed(a.trial_id))
            else:
                pending += s.on_event(SegmentCompleted(a.trial_id, a.length,
                                                       metric(hp[a.trial_id], a.length, a.trial_id)))
    return actions


MODELS = ["tpe", "gp"]
SAMPLER_CLASS = {"tpe": TPESampler, "gp": GPSampler}


def created(actions):
    return {a.trial_id: a.hparams for a in actions if isinstance(a, CreateTrial)}


# ----------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("sampler", MODELS)
def test_same_seed_same_configs_other_seed_others(sampler):
    space = parse_space(SPACE)[0]
    a = drive(make_searcher(searcher_cfg(sampler=sampler), space, 5))
    b = drive(make_searcher(searcher_cfg(sampler=sampler), space, 5))
    c = drive(make_searcher(searcher_cfg(sampler=sampler), space, 6))
    assert a == b
    assert created(a) != created(c)


@pytest.mark.parametrize("sampler", MODELS)
def test_random_until_a_model_exists_then_learns(sampler):
    """Before any length has enough results a model sampler creates exactly random's trials
    (same stream); with the model, its configurations beat random's on the same budget."""
    space = parse_space(SPACE)[0]
    tpe = make_searcher(searcher_cfg(sampler=sampler), space, 3)
    rnd = make_searcher(searcher_cfg(sampler="random"), space, 3)
    assert tpe.start() == rnd.start()  # 8 trials, no result yet: identical
    a, b = drive(make_searcher(searcher_cfg(sampler=sampler), space, 3)), drive(make_searcher(
        searcher_cfg(sampler="random"), space, 3))
    best = lambda acts: sorted(loss(h, 64) for h in created(acts).values())[:10]  # noqa: E731
    assert sum(best(a)) < sum(best(b))
    model = make_searcher(searcher_cfg(sampler=sampler), space, 3)
    assert isinstance(model._model, SAMPLER_CLASS[sampler])
    drive(model)
    assert model._model.model_draws > 50  # most draws after the start came from the model


@pytest.mark.parametrize("sampler", MODELS)
def test_bracket_arithmetic_unchanged(sampler):
    """Fed the same results per trial id, a model sampler and random make the same promotions, stops and
    bracket bookkeeping: only the configurations differ."""
    space = parse_space(SPACE)[0]

    def by_id(hp, length, tid):  # a fixed value per trial id, whatever its configuration
        return math.sin(tid * 12.9898) * 43758.5453 % 1 + 1.0 / length

    for name, kw in (("adaptive_asha", {}), ("async_halving", {"num_rungs": 4}),
                     ("random", {}), ("adaptive_asha", {"stop_once": True, "mode": "aggressive"})):
        runs = []
        for which in ("random", sampler):
            s = make_searcher(searcher_cfg(name, which, trials=150, **kw), space, 9)
            acts = drive(s, by_id)
            strip = [(type(a).__name__, a.trial_id, getattr(a, "length", None),
                      getattr(a, "reason", None), getattr(a, "bracket", None))
                     for a in acts if hasattr(a, "trial_id")]
            snap = s.snapshot()
            snap.pop("rng")
            runs.append((strip, snap, s.rungs(), s.brackets()))
        assert runs[0] == runs[1], name
        assert sum(x[0] == "CreateTrial" for x in runs[0][0]) == 150


@pytest.mark.parametrize("sampler", MODELS)
def test_failed_and_nan_results_count_as_the_worst(sampler):
    space = parse_space(SPACE)[0]
    s = make_searcher(searcher_cfg(sampler=sampler, trials=120), space, 1)
    nan_lr = lambda hp, length, tid: math.nan if hp["lr"] > 1e-2 else loss(hp, length)  # noqa: E731
    acts = drive(s, nan_lr, fail=set(range(1, 200, 7)))
    late = [h for t, h in created(acts).items() if t > 60]
    assert sum(h["lr"] > 1e-2 for h in late) < len(late) / 2  # the NaN region is avoided


# ----------------------------------------------------------------------------- every type
def _leaf_ok(param, v):
    if isinstance(param, Const):
        return v == param.val
    if isinstance(param, Categorical):
        return any(v == w and type(v) is type(w) for w in param.vals)
    if isinstance(param, Int):
        return type(v) is int and param.minval <= v <= param.maxval
    if isinstance(param, Log):
        lo, hi = sorted((param.base ** param.minval, param.base ** param.maxval))
        return type(v) is float and lo * (1 - 1e-12) <= v <= hi * (1 + 1e-12)
    assert isinstance(param, Double)
    return type(v) is float and param.minval <= v <= param.maxval


def check_in_space(space, hp):
    for path, param in space.leaves():
        v = hp
        for name in path:
            v = v[name]
        assert _leaf_ok(param, v), (path, v)
    assert space.flat_names() == [".".join(p) for p, _ in space.leaves()]


_names = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)
_scalars = st.one_of(st.integers(-5, 5), st.booleans(), st.text(max_size=4), st.none(),
                     st.floats(-10, 10, allow_nan=False))


@st.composite
def leaf_specs(draw):
    kind = draw(st.sampled_from(["int", "double", "log", "categorical", "const", "bare"]))
    if kind == "int":
        lo = draw(st.integers(-1000, 1000))
        return {"type": "int", "minval": lo, "maxval": lo + draw(st.integers(1, 10**6))}
    if kind in ("double", "log"):
        lo = draw(st.floats(-8, 8, allow_nan=False))
        hi = lo + draw(st.floats(1e-3, 8))
        spec = {"type": kind, "minval": lo, "maxval": hi}
        if kind == "log":
            spec["base"] = draw(st.sampled_from([10, 2, math.e, 0.5, 1]))
        return spec
    if kind == "categorical":
        return {"type": "categorical", "vals": draw(st.lists(
            st.one_of(_scalars, st.lists(st.integers(0, 3), max_size=2)), min_size=1, max_size=5))}
    if kind == "const":
        return {"type": "const", "val": draw(_scalars)}
    return draw(st.one_of(st.integers(0, 9), st.text(max_size=3)))


spaces = st.recursive(st.dictionaries(_names, leaf_specs(), min_size=1, max_size=4),
                      lambda inner: st.dictionaries(_names, inner, min_size=1, max_size=3),
                      max_leaves=8)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=spaces, seed=st.integers(0, 2**32), frac=st.sampled_from([0.0, 0.3, 1.0]),
       sampler=st.sampled_from(MODELS))
def test_every_draw_lies_in_the_space(raw, seed, frac, sampler):
    """Any space a user can write (nested, every type, odd values): a model sampler's draws are
    valid values of every leaf, with the space's shape, and plain JSON-able Python types."""
    space, problems = parse_space(raw)
    if problems:
        return
    import json

    s = make_searcher(searcher_cfg(sampler=sampler, trials=60, random_fraction=frac), space, seed)
    def pos(hp, length, tid):
        return hash(json.dumps(hp, sort_keys=True)) % 1000 / 1000 + 1 / length

    for hp in created(drive(s, pos)).values():
        check_in_space(space, hp)
        assert json.loads(json.dumps(hp)) == hp


def test_encode_decode_round_trip():
    space = parse_space(SPACE)[0]
    m = ModelSampler(space, 0, 0.0, None)
    import numpy as np

    rng = np.random.default_rng(0)
    for _ in range(200):
        hp = space.sample(rng)
        back = m.decode(m.encode(hp))
        assert back["optimizer"] == hp["optimizer"] and back["model"] == hp["model"]
        assert back["layers"] == hp["layers"]
        assert back["lr"] == pytest.approx(hp["lr"], rel=1e-9)
        assert back["dropout"] == pytest.approx(hp["dropout"], abs=1e-12)


# ----------------------------------------------------------------------------- config
def raw_config(**searcher):
    return {"name": "t", "entrypoint": "unused:train",
            "searcher": dict({"name": "adaptive_asha", "metric": "loss", "max_length": 64,
                              "max_trials": 40}, **searcher),
            "hyperparameters": SPACE, "backend": "simulated"}


def test_config_defaults_and_round_trip():
    cfg = parse_config(raw_config(), "/tmp")
    assert (cfg.searcher.sampler, cfg.searcher.random_fraction) == ("random", pytest.approx(1 / 3))
    assert "sampler" not in cfg.to_dict()["searcher"]  # files of the default stay as they were
    for sampler in MODELS:
        cfg = parse_config(raw_config(sampler=sampler, random_fraction=0.25), "/tmp")
        again = parse_config(cfg.to_dict(), "/tmp")
        assert (again.searcher.sampler, again.searcher.random_fraction) == (sampler, 0.25)


@pytest.mark.parametrize("searcher,want", [
    ({"sampler": "tpee"},
     "searcher.sampler: must be one of random, tpe, gp, got 'tpee'; did you mean 'tpe'?"),
    ({"sampler": "GP"}, "searcher.sampler: must be one of random, tpe, gp, got 'GP'; did you mean 'gp'?"),
    ({"sampler": "tpe", "name": "grid"}, "searcher.sampler: tpe works with adaptive_asha"),
    ({"sampler": "gp", "name": "grid"}, "searcher.sampler: gp works with adaptive_asha"),
    ({"random_fraction": 0.5}, "searcher.random_fraction: only used with sampler: tpe or gp"),
    ({"sampler": "tpe", "random_fraction": 1.5}, "searcher.random_fraction: must be in [0, 1], got 1.5"),
    ({"sampler": "tpe", "random_fraction": "half"}, "searcher.random_fraction: must be a number"),
])
def test_config_errors_name_the_field(searcher, want):
    with pytest.raises(ConfigError) as e:
        parse_config(raw_config(**searcher), "/tmp")
    lines = [x for x in str(e.value).splitlines() if "sampler" in x or "random_fraction" in x]
    assert len(lines) == 1 and want in lines[0]


@settings(max_examples=60, deadline=None)
@given(v=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3),
                   st.text(max_size=5), st.booleans(), st.none(), st.lists(st.integers(), max_size=2)))
def test_random_fraction_any_user_value(v):
    """Any value: accepted as given when it is a number in [0, 1], else one line naming the key."""
    try:
        cfg = parse_config(raw_config(sampler="tpe", random_fraction=v), "/tmp")
    except ConfigError as e:
        lines = [x for x in str(e).splitlines() if "random_fraction" in x]
        assert len(lines) == 1
        assert not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1)
        return
    assert v is None or cfg.searcher.random_fraction == v


# ----------------------------------------------------------------------------- master, resume
def master_config(tmp_path, trials=80, sampler="tpe", **sim):
    return parse_config({
        "name": "tpe-sim", "entrypoint": "unused:train",
        "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 64,
                     "max_trials": trials, "max_concurrent_trials": 8, "divisor": 4,
                     "sampler": sampler},
        "hyperparameters": SPACE, "reproducibility": {"experiment_seed": 4},
        "backend": "simulated", "poll_interval_s": 10,
        "simulated": dict({"unit_seconds": 30, "curve": "landscape:curve"}, **sim)},
        str(tmp_path))


@pytest.fixture
def landscape(tmp_path):
    (tmp_path / "landscape.py").write_text(
        "import math\n"
        "def curve(hp, length, seed):\n"
        "    lr = math.log10(hp['lr'])\n"
        "    return ((lr + 3) ** 2 + (hp['layers'] - 4) ** 2 / 8 + hp['dropout']\n"
        "            + (0.0 if hp['optimizer'] == 'adamw' else 0.6) + 2.0 / length)\n")
    return tmp_path


@pytest.mark.parametrize("sampler", MODELS)
def test_master_journals_model_draws_and_replay_never_refits(landscape, monkeypatch, sampler):
    cfg = master_config(landscape, sampler=sampler)
    exp = ExpDir.create(landscape / "exp")
    st_ = Master(exp, cfg, progress=lambda s: None).run()
    recs = read_journal(exp.journal)[0]
    assert st_.lifecycle == "completed" and check_invariants(cfg, recs) == []
    sampled = {r["trial"]: r["hparams"] for r in recs if r["kind"] == "sampled"}
    assert len(sampled) > 20
    first_intent = {r["trial"]: r["seq"] for r in recs if r["kind"] == "intent" and r["segment"] == 0}
    seq_of = {r["trial"]: r["seq"] for r in recs if r["kind"] == "sampled"}
    assert all(seq_of[t] < first_intent[t] for t in sampled)  # journaled before submission
    assert all(st_.trials[t].hparams == hp for t, hp in sampled.items())

    cls = SAMPLER_CLASS[sampler]
    fit = cls._model

    def no_fit(self):  # asked only whether a model exists (a random draw): there is none yet
        model = fit(self)
        assert model is None, "replay fitted a model"
        return model

    monkeypatch.setattr(cls, "_model", no_fit)
    again = replay(cfg, recs)  # every model draw comes from the journal
    assert {t: x.hparams for t, x in again.trials.items()} == \
        {t: x.hparams for t, x in st_.trials.items()}
    assert again.searcher.snapshot() == st_.searcher.snapshot()


@pytest.mark.parametrize("sampler", MODELS)
def test_resume_after_losing_the_last_sampled_records(landscape, sampler):
    """A crash between a result and the ``sampled`` record of the draw it led to is
    harmless: replay fits those draws again and gets the same configurations (the draw is a
    function of the seed, the trial id and the results before it), the resumed master journals
    them, and the search completes with every invariant."""
    cfg = master_config(landscape, sampler=sampler)
    exp = ExpDir.create(landscape / "exp")
    m = Master(exp, cfg, progress=lambda s: None)
    assert m.start()
    while m.state.results_applied < 60 and m.step():
        m._sleep(cfg.poll_interval_s)
    m.close()
    recs = read_journal(exp.journal)[0]
    full = replay(cfg, recs)
    last = max(r["seq"] for r in recs if r["kind"] == "sampled")  # a crash right before it
    lost = [r for r in recs if r["kind"] == "sampled" and r["seq"] >= last]
    lines = exp.journal.read_bytes().split(b"\n")
    exp.journal.write_bytes(b"\n".join(lines[:last - 1]) + b"\n")
    cut = replay(cfg, read_journal(exp.journal)[0])
    assert {r["trial"] for r in lost} <= set(cut.trials)  # drawn again, by fitting
    assert all(x.hparams == full.trials[t].hparams for t, x in cut.trials.items())
    got = Master(exp, cfg, progress=lambda s: None, force=True).run()
    recs = read_journal(exp.journal)[0]
    assert got.lifecycle == "completed" and check_invariants(cfg, recs) == []
    again = {r["trial"] for r in recs if r["kind"] == "sampled"}
    assert {r["trial"] for r in lost} <= again
    assert all(got.trials[t].hparams == cut.trials[t].hparams for t in cut.trials)


@pytest.mark.parametrize("sampler", MODELS)
def test_status_and_export_say_which_trials_the_model_drew(landscape, sampler):
    """status counts the trials a model drew (from the journal's ``sampled`` records, the same
    count live and replayed), the text names it, and export marks each trial."""
    cfg = master_config(landscape, sampler=sampler)
    exp = ExpDir.create(landscape / "exp")
    Master(exp, cfg, progress=lambda s: None).run()
    recs = read_journal(exp.journal)[0]
    drawn = {r["trial"] for r in recs if r["kind"] == "sampled"}
    st_ = replay(cfg, recs)
    d = status_dict(exp, cfg, st_, recs)
    assert d["sampler"] == {"name": sampler, "random_fraction": cfg.searcher.random_fraction,
                            "model_draws": len(drawn), "trials": len(st_.trials)}
    assert 0 < len(drawn) < len(st_.trials)
    assert (f"searcher adaptive_asha, sampler {sampler} ({len(drawn)} of {len(st_.trials)} "
            "trials drawn from its model), on simulated") in render_status_text(d)
    rows = export_rows(st_)
    assert {r["trial_id"] for r in rows if r["sampled_by"] == "model"} == drawn
    assert {r["sampled_by"] for r in rows} == {"model", "random"}

    # before the first model draw: every trial so far is random, and the text says why
    first = min(r["seq"] for r in recs if r["kind"] == "sampled")
    early = [r for r in recs if r["seq"] < first]
    st_early = replay(cfg, early)
    text = render_status_text(status_dict(exp, cfg, st_early, early))
    assert (f"sampler {sampler} (0 of {len(st_early.trials)} trials drawn from its model: "
            "random until a length has enough results)") in text


def test_random_sampler_journals_nothing_new(tmp_path):
    cfg = master_config(tmp_path)
    cfg = replace(cfg, searcher=replace(cfg.searcher, sampler="random"),
                  simulated=replace(cfg.simulated, curve=None))
    exp = ExpDir.create(tmp_path / "exp")
    Master(exp, cfg, progress=lambda s: None).run()
    recs = read_journal(exp.journal)[0]
    assert not any(r["kind"] == "sampled" for r in recs)
    st_ = replay(cfg, recs)
    d = status_dict(exp, cfg, st_, recs)
    assert d["sampler"] == {"name": "random"} and ", sampler " not in render_status_text(d)
    assert all(r["sampled_by"] == "random" for r in export_rows(st_))  # the same columns
    assert all("asha.sampled_by" not in r.tags for r in trial_runs(exp, cfg, st_))


def test_simulated_curve_errors_are_one_line(tmp_path):
    from asha_hpc.backends.simulated import curve_function
    from asha_hpc.errors import AshaError

    with pytest.raises(AshaError, match=r"^simulated.curve: cannot import 'nowhere:f'"):
        curve_function("nowhere:f", str(tmp_path))
    (tmp_path / "lands.py").write_text("x = 1\n")
    with pytest.raises(AshaError, match=r"^simulated.curve: lands has no function 'f'"):
        curve_function("lands:f", str(tmp_path))
    raw = copy.deepcopy(raw_config())
    raw["simulated"] = {"curve": "not a function"}
    with pytest.raises(ConfigError, match="simulated.curve: must be 'module:function'"):
        parse_config(raw, "/tmp")


@settings(max_examples=60, deadline=None)
@given(v=st.one_of(st.text(max_size=12), st.integers(), st.none(), st.booleans(),
                   st.lists(st.text(max_size=3), max_size=2),
                   st.from_regex(r"[a-z_/.]{1,8}:[a-z_]{1,6}", fullmatch=True)))
def test_simulated_curve_any_user_value(v):
    """Any value of simulated.curve: a 'module:function' string is taken as given (imported
    only when the backend starts), anything else is one line naming the key."""
    raw = raw_config()
    raw["simulated"] = {"curve": v}
    try:
        cfg = parse_config(raw, "/tmp")
    except ConfigError as e:
        lines = [x for x in str(e).splitlines() if "simulated.curve" in x]
        assert len(lines) == 1 and "'module:function'" in lines[0]
        return
    assert cfg.simulated.curve == v


def test_random_sampler_imports_no_model():
    """The master stays light: with sampler random, the model's module is never imported."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from asha_hpc.config import SearcherConfig\n"
            "from asha_hpc.searcher import make_searcher\n"
            "from asha_hpc.space import parse_space\n"
            "s = make_searcher(SearcherConfig(name='adaptive_asha', metric='m', max_length=16,"
            " max_trials=8), parse_space({'x': {'type': 'double', 'minval': 0, 'maxval': 1}})[0], 0)\n"
            "s.start()\n"
            "print(*(m in sys.modules for m in ('asha_hpc.searcher.tpe', 'asha_hpc.searcher.gp',"
            " 'asha_hpc.searcher.model_sampler', 'optuna')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"] * 4


@pytest.mark.parametrize("sampler,seed", [("tpe", 0), ("tpe", 1), ("gp", 0)])
def test_master_killed_at_many_points_never_changes_a_submitted_config(tmp_path, sampler, seed,
                                                                     monkeypatch):
    """A model sampler under the fault injector: the master killed 30 times (before and after journal
    writes, after submissions), inputs corrupted while it is dead, resumed each time. Every
    invariant holds, and every job ever submitted got the configuration its trial has in the
    final state: a crash between a draw and its ``sampled`` record re-fits to the same one."""
    from asha_hpc.backends.simulated import SimulatedBackend
    from asha_hpc.testing.chaos import run_chaos

    cfg = master_config(tmp_path, trials=60, sampler=sampler)
    cfg = replace(cfg, simulated=replace(cfg.simulated, curve=None))  # the synthetic curve
    seen = {}
    submit = SimulatedBackend.submit

    def spy(self, specs):
        for s in specs:
            if getattr(s, "trial_id", None) is not None and s.exp_dir == str(tmp_path / "exp"):
                seen.setdefault(s.trial_id, []).append(s.hparams)  # not the clean run's
        return submit(self, specs)

    monkeypatch.setattr(SimulatedBackend, "submit", spy)
    rep = run_chaos(cfg, tmp_path, kills=30, seed=seed)
    assert rep.lifecycle == "completed" and rep.kills >= 20
    assert rep.violations == [] and rep.results_lost == 0 and rep.duplicated == 0
    recs = read_journal(tmp_path / "exp" / "journal.jsonl")[0]
    final = replay(cfg, recs)
    assert sum(r["kind"] == "sampled" for r in recs) > 10
    assert len(seen) == 60
    for tid, hps in seen.items():
        assert all(hp == final.trials[tid].hparams for hp in hps), tid


def test_gp_learns_which_hyperparameters_matter():
    """The GP's lengthscales come from the data: on 40 random configurations whose results
    depend on lr alone, lr's lengthscale is the shortest; its draws then go near the best lr."""
    import numpy as np

    from asha_hpc.searcher.gp import _fit

    space = parse_space({"lr": {"type": "log", "minval": -5, "maxval": -1, "base": 10},
                         "dropout": {"type": "double", "minval": 0.0, "maxval": 0.5},
                         "layers": {"type": "int", "minval": 1, "maxval": 8},
                         "opt": {"type": "categorical", "vals": ["adam", "sgd"]}})[0]
    m = GPSampler(space, 0, 1.0, np.random.default_rng(0))  # random draws first
    for tid in range(1, 41):
        hp = m.sample(tid)
        m.observe(tid, 4, (math.log10(hp["lr"]) + 3) ** 2)
    X, y, _ = m._model()
    ls, _, _ = _fit(m._sqdiff(X[:, None, :], X[None, :, :]), y)
    lr = [name for name, _ in m.leaves].index(("lr",))
    assert ls[lr] < np.delete(ls, lr).min()
    m.random_fraction = 0.0
    draws = [m.sample(tid) for tid in range(41, 61)]
    assert sum(abs(math.log10(h["lr"]) + 3) < 0.5 for h in draws) >= 15



def test_gp_reuses_its_fit_while_the_data_stands(monkeypatch):
    """Between two results at the fitted length, gp draws from the fit it has (the expensive
    part of a draw) instead of fitting the same data again: the same draws as fitting every
    time, with fewer fits."""
    from asha_hpc.searcher import gp

    fits = []
    fit = gp._fit
    monkeypatch.setattr(gp, "_fit", lambda *a: fits.append(1) or fit(*a))
    space = parse_space(SPACE)[0]
    kept = drive(make_searcher(searcher_cfg(sampler="gp"), space, 5))
    kept_fits, fits[:] = len(fits), []
    draw = GPSampler._draw

    def fit_every_time(self, *model):
        self._fitted = None
        return draw(self, *model)

    monkeypatch.setattr(GPSampler, "_draw", fit_every_time)
    s = make_searcher(searcher_cfg(sampler="gp"), space, 5)
    assert drive(s) == kept
    assert len(fits) == s._model.model_draws > 50
    assert kept_fits < 0.9 * len(fits)


def test_tpe_refines_the_best_result(monkeypatch):
    """A LOCAL_SHARE of tpe's model draws are steps from the best result of the fitted length:
    with every draw a refinement they stay near it (every leaf type valid, the categoricals
    mostly kept), nearer than the l/g draws, which spread over the whole good region."""
    import numpy as np

    from asha_hpc.searcher import tpe

    space = parse_space({"lr": {"type": "log", "minval": -5, "maxval": -1, "base": 10},
                         "dropout": {"type": "double", "minval": 0.0, "maxval": 0.5},
                         "layers": {"type": "int", "minval": 1, "maxval": 8},
                         "opt": {"type": "categorical", "vals": ["adam", "sgd", "adamw"]}})[0]

    def draws(share):
        monkeypatch.setattr(tpe, "LOCAL_SHARE", share)
        m = TPESampler(space, 0, 1.0, np.random.default_rng(0))  # random draws first
        for tid in range(1, 81):  # a bowl around lr 1e-3, dropout 0.25, with a worse optimizer
            hp = m.sample(tid)
            m.observe(tid, 4, (math.log10(hp["lr"]) + 3) ** 2 + (hp["dropout"] - 0.25) ** 2
                      + (0.5 if hp["opt"] == "sgd" else 0.0))
        best = m.X[int(np.argmin(m.results[4].loss[:80]))]
        m.random_fraction = 0.0
        out = [m.sample(tid) for tid in range(81, 141)]
        for hp in out:
            check_in_space(space, hp)
        x = np.array([m.encode(hp) for hp in out])
        return np.abs(x[:, :3] - best[:3]).max(axis=1), x[:, 3] == best[3], m

    near, same_opt, m = draws(1.0)
    spread, _, _ = draws(0.0)
    assert m.model_draws == 60
    assert np.median(near) < 0.5 * np.median(spread)
    assert near.max() < 0.5  # a few good bandwidths at most
    assert same_opt.mean() > 0.6


@settings(max_examples=60, deadline=None)
@given(v=st.one_of(st.sampled_from(["random", "tpe", "gp", "GP", "Tpe", "bayes", "", " tpe"]),
                   st.text(max_size=6), st.integers(), st.none(), st.booleans(),
                   st.lists(st.text(max_size=3), max_size=2)))
def test_sampler_any_user_value(v):
    """Any value of searcher.sampler: one of random, tpe, gp is taken as given; anything else
    is one line naming the key (None: the default)."""
    try:
        cfg = parse_config(raw_config(sampler=v), "/tmp")
    except ConfigError as e:
        lines = [x for x in str(e).splitlines() if "searcher.sampler" in x]
        assert len(lines) == 1 and "must be one of random, tpe, gp" in lines[0]
        assert v not in ("random", "tpe", "gp")
        return
    assert cfg.searcher.sampler == (v if v is not None else "random")

"""``searcher.warm_start``: a tpe or gp search that starts from an earlier search's results.
The earlier folder is read once and its results journaled (a ``warm_start`` record before
``init``), so the model is fitted from the first trials on, and resume and the views replay the
record without the earlier folder; a folder that cannot serve is refused before anything exists."""
from __future__ import annotations

import json
import shutil
import statistics

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sampler import MODELS, SPACE, check_in_space, loss, spaces

from asha_hpc.cli import main
from asha_hpc.config import parse_config
from asha_hpc.errors import ConfigError
from asha_hpc.launch import create_experiment
from asha_hpc.master.loop import Master
from asha_hpc.master.state import replay
from asha_hpc.protocol.journal import read_journal
from asha_hpc.searcher.tpe import TPESampler
from asha_hpc.space import parse_space
from asha_hpc.testing.invariants import check_invariants
from asha_hpc.views.status import status_dict
from asha_hpc.views.text import render_status_text

CURVE = ("import math\n"
         "def curve(hp, length, seed):\n"
         "    lr = math.log10(hp['lr'])\n"
         "    return ((lr + 3) ** 2 + (hp['layers'] - 4) ** 2 / 8 + hp['dropout']\n"
         "            + (0.0 if hp['optimizer'] == 'adamw' else 0.6) + 2.0 / length)\n")


def raw(trials=64, sampler="tpe", seed=4, space=None, **searcher):
    return {"name": "warm", "entrypoint": "unused:train",
            "searcher": dict({"name": "adaptive_asha", "metric": "loss", "max_length": 64,
                              "max_trials": trials, "max_concurrent_trials": 8, "divisor": 4,
                              "sampler": sampler}, **searcher),
            "hyperparameters": space or SPACE, "reproducibility": {"experiment_seed": seed},
            "backend": "simulated", "poll_interval_s": 10,
            "simulated": {"unit_seconds": 30, "curve": "landscape:curve"}}


@pytest.fixture
def first(tmp_path):
    """An earlier search (random sampling, as a user's first search often is) in tmp/a."""
    (tmp_path / "landscape.py").write_text(CURVE)
    cfg = parse_config(raw(sampler="random"), str(tmp_path))
    exp = create_experiment(cfg, tmp_path / "a")  # as `asha-hpc run` makes it: config in it
    assert Master(exp, cfg, progress=lambda s: None).run().lifecycle == "completed"
    return tmp_path


def run(tmp_path, name, cfg, **kw):
    exp = create_experiment(cfg, tmp_path / name)
    said: list[str] = []
    st_ = Master(exp, cfg, progress=said.append, **kw).run()
    return exp, st_, read_journal(exp.journal)[0], said


def batch_quality(st_, n=8):
    """The median full-length loss of the first ``n`` trials' configurations."""
    return statistics.median(loss(st_.trials[t].hparams, 64) for t in range(1, n + 1))


@pytest.mark.parametrize("sampler", MODELS)
def test_a_warm_started_search_fits_from_its_first_trials(first, sampler):
    cold_cfg = parse_config(raw(sampler=sampler, seed=9), str(first))
    warm_cfg = parse_config(raw(sampler=sampler, seed=9, warm_start="a"), str(first))
    _, cold, _, _ = run(first, "cold", cold_cfg)
    exp, warm, recs, said = run(first, "warm", warm_cfg)
    assert warm.lifecycle == "completed" and check_invariants(warm_cfg, recs) == []
    assert [r["kind"] for r in recs[:2]] == ["warm_start", "init"]
    earlier = replay(parse_config(raw(sampler="random"), str(first)),
                     read_journal(first / "a" / "journal.jsonl")[0])
    with_results = [t for t in earlier.trials.values() if t.rung_metrics]
    rec = recs[0]
    assert rec["source"] == str((first / "a").resolve()) and rec["left_out"] == 0
    assert len(rec["trials"]) == len(with_results)
    assert sum(len(t["losses"]) for t in rec["trials"]) == \
        sum(len(t.rung_metrics) for t in with_results)
    # the first batch: no result of its own yet, so the cold search draws it at random and the
    # warm one from its model (but for the random fraction), near the earlier search's best
    drawn = {r["trial"] for r in recs if r["kind"] == "sampled"}
    assert len(drawn & set(range(1, 9))) >= 3
    assert not cold.model_drawn & set(range(1, 9))
    assert batch_quality(warm) < batch_quality(cold)
    best_before = min(loss(t.hparams, 64) for t in with_results)
    assert min(loss(warm.trials[t].hparams, 64) for t in range(1, 9)) < best_before + 0.5
    # status and the master's own line say where the model's first data came from
    text = render_status_text(status_dict(exp, warm_cfg, warm, recs))
    results = sum(len(t.rung_metrics) for t in with_results)
    line = (f"warm-started from {results} results of {len(with_results)} trials of "
            f"{(first / 'a').resolve()}")
    assert line in text and said[0] == line


@pytest.mark.parametrize("sampler", MODELS)
def test_a_warm_start_too_small_to_fit_says_so(tmp_path, sampler):
    """An earlier search of 4 trials: too few results at any one length for the model, so the
    first trials are random after all; the master's line and status say it, and why."""
    (tmp_path / "landscape.py").write_text(CURVE)
    small = parse_config(raw(trials=4, sampler="random"), str(tmp_path))
    exp = create_experiment(small, tmp_path / "a")
    assert Master(exp, small, progress=lambda s: None).run().lifecycle == "completed"
    cfg = parse_config(raw(trials=8, sampler=sampler, warm_start="a"), str(tmp_path))
    exp, st_, recs, said = run(tmp_path, "b", cfg)
    w = st_.warm
    assert w["most_at_one_length"] < w["model_needs"]
    text = render_status_text(status_dict(exp, cfg, st_, recs))
    tail = (f"; too few at any one length for the model (it needs {w['model_needs']}, the most "
            f"is {w['most_at_one_length']} at length {w['at_length']}): the first trials are "
            f"drawn at random until this search adds results")
    assert said[0].endswith(tail) and tail in text


def test_resume_and_the_views_replay_the_record_not_the_folder(first):
    cfg = parse_config(raw(warm_start="a", seed=11), str(first))
    exp = create_experiment(cfg, first / "b")
    m = Master(exp, cfg, progress=lambda s: None)
    assert m.start()
    while m.state.results_applied < 20 and m.step():
        m._sleep(cfg.poll_interval_s)
    m.close()
    before = replay(cfg, read_journal(exp.journal)[0])
    shutil.rmtree(first / "a")  # the earlier search moved away, or was deleted
    again = replay(cfg, read_journal(exp.journal)[0])
    assert {t: x.hparams for t, x in again.trials.items()} == \
        {t: x.hparams for t, x in before.trials.items()}
    assert again.warm == before.warm and again.warm is not None
    st_ = Master(exp, cfg, progress=lambda s: None).run()
    recs = read_journal(exp.journal)[0]
    assert st_.lifecycle == "completed" and check_invariants(cfg, recs) == []
    assert [r["kind"] for r in recs].count("warm_start") == 1
    assert all(st_.trials[t].hparams == x.hparams for t, x in before.trials.items())


def torn_copy(first, cfg):
    """tmp/b2: a new experiment of ``cfg`` whose journal holds only tmp/b's first record (a
    write torn after it)."""
    b2 = create_experiment(cfg, first / "b2")
    (b2.root / "journal.jsonl").write_bytes(
        (first / "b" / "journal.jsonl").read_bytes().split(b"\n")[0] + b"\n")
    return b2


def test_a_master_that_stopped_after_the_record_does_not_read_it_again(first):
    """The record and ``init`` are one journal group; should only the record be there, the
    next start journals ``init`` and uses the record it has."""
    cfg = parse_config(raw(warm_start="a", seed=12), str(first))
    exp, full, recs, _ = run(first, "b", cfg)
    b2 = torn_copy(first, cfg)
    shutil.rmtree(first / "a")
    st_ = Master(b2, cfg, progress=lambda s: None).run()
    recs2 = read_journal(b2.journal)[0]
    assert [r["kind"] for r in recs2].count("warm_start") == 1
    assert {t: x.hparams for t, x in st_.trials.items()} == \
        {t: x.hparams for t, x in full.trials.items()}


def test_trials_outside_a_narrowed_space_are_left_out_and_counted(first):
    narrowed = dict(SPACE, layers={"type": "int", "minval": 1, "maxval": 4})
    cfg = parse_config(raw(warm_start="a", space=narrowed), str(first))
    exp, st_, recs, said = run(first, "b", cfg)
    earlier = replay(parse_config(raw(sampler="random"), str(first)),
                     read_journal(first / "a" / "journal.jsonl")[0])
    outside = sorted(t.id for t in earlier.trials.values()
                     if t.rung_metrics and t.hparams["layers"] > 4)
    assert outside
    rec = recs[0]
    assert rec["left_out"] == len(outside)
    assert all(t["hparams"]["layers"] <= 4 for t in rec["trials"])
    layers = earlier.trials[outside[0]].hparams["layers"]
    assert said[0].endswith(f" ({len(outside)} left out: not in this space); first left out: "
                            f"trial {outside[0]}: layers: {layers} is outside 1 .. 4: change the "
                            "point or the range")
    text = render_status_text(status_dict(exp, cfg, st_, recs))
    assert f"({len(outside)} left out: not in this space)" in text


def cli_run(tmp_path, capsys, **kw):
    import yaml

    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump(raw(**kw)))
    code = main(["run", str(path), "--exp-dir", str(tmp_path / "b")])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


@pytest.mark.parametrize("change, want", [
    ({"warm_start": "nowhere"}, "nowhere is not a folder: give an earlier search's experiment "
                                "folder (a relative path starts at the config's folder, "),
    # the config's folder holds the first search's folder: the user meant that one
    ({"warm_start": "."}, "a folder of 1 experiment (a), not one: give one of them, e.g. "),
    ({"warm_start": "a", "metric": "error_rate"},
     "searched on 'loss' in units, this search on 'error_rate' in units: its results would teach "
     "the model another goal; warm-start from a search of the same metric and length unit"),
    ({"warm_start": "a", "max_length": {"epochs": 64}},
     "searched on 'loss' in units, this search on 'loss' in epochs"),
    ({"warm_start": "a", "space": {"learning_rate": {"type": "double", "minval": 0, "maxval": 1}}},
     "none of its 64 trials with results fits this search's hyperparameters (trial 1: it has "
     "no learning_rate); warm-start from a search of these hyperparameters, or remove "
     "warm_start"),
])
def test_a_folder_that_cannot_serve_is_refused_before_anything_exists(first, capsys, change,
                                                                      want):
    space = change.pop("space", None)
    code, err = cli_run(first, capsys, space=space, **change)
    assert code != 0 and len(err) == 1, err
    assert err[0].startswith("asha-hpc: error: searcher.warm_start: ") and want in err[0]
    assert not (first / "b").exists()
    assert main(["plan", str(first / "b.yaml")]) != 0  # plan refuses it alike
    assert capsys.readouterr().err.strip().splitlines() == err


def test_config_problems():
    def problems(**searcher):
        with pytest.raises(ConfigError) as e:
            parse_config(raw(**searcher), "/tmp")
        return [x for x in e.value.problems if "warm_start" in x]

    assert problems(sampler="random", warm_start="a") == [
        "searcher.warm_start: feeds the model of sampler tpe or gp, and this search samples at "
        "random: add 'sampler: tpe' (or gp), or remove warm_start"]
    assert problems(warm_start="  ") == ["searcher.warm_start: must not be empty, got '  '"]
    assert problems(warm_start=[]) == ["searcher.warm_start: must name at least one folder, got []"]
    assert problems(warm_start=["a", "a"]) == [
        "searcher.warm_start: names a folder twice, got ['a', 'a']"]
    assert problems(warm_start=["a", " "])[0].startswith("searcher.warm_start: must not be empty")
    assert problems(warm_start=["a", 3])[0].startswith(
        "searcher.warm_start: must be a path (an earlier experiment folder) or a list of them")
    assert problems(warm_start={"a": 1})[0].startswith("searcher.warm_start: must be a path")
    assert parse_config(raw(warm_start=["a", "b"]), "/tmp").searcher.warm_start == ["a", "b"]
    cfg = parse_config(raw(), "/tmp")
    assert "warm_start" not in cfg.to_dict()["searcher"]  # config hashes stay as they were
    cfg = parse_config(raw(warm_start="../q1"), "/tmp")
    assert parse_config(cfg.to_dict(), "/elsewhere").searcher.warm_start == "../q1"
    from asha_hpc.plan import plan, render_plan

    head = render_plan(cfg.searcher, cfg.space(), plan(cfg.searcher, cfg.space())).splitlines()[0]
    assert head.endswith("; new trials: tpe (33% random), its model warm-started from ../q1")


def test_prior_rows_are_no_trials_of_this_search():
    space = parse_space(SPACE)[0]
    rng = np.random.default_rng(0)
    earlier = [space.sample(rng) for _ in range(30)]
    s = TPESampler(space, 3, random_fraction=0.0, rng=np.random.default_rng(1))
    s.prior([{"hparams": hp, "losses": [[1, loss(hp, 1)], [4, None]]} for hp in earlier])
    assert s.prior_rows == 30 and s.results[1].n == 30 and s.results[4].n == 30
    assert np.isinf(s.results[4].loss[:30]).all()  # a diverged result: the worst
    hp = s.sample(1)  # fitted at once: nothing of its own yet
    assert s.model_draws == 1
    check_in_space(space, hp)
    assert np.array_equal(s.X[30], s.encode(hp))
    s.observe(1, 1, 0.0)
    assert s.results[1].rows[30] == 30 and s.results[1].n == 31
    s.observe(2, 1, 0.0)  # a trial not drawn yet: nothing
    assert s.results[1].n == 31
    with pytest.raises(ValueError, match="after trial 1"):
        s.prior([{"hparams": earlier[0], "losses": []}])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mine=spaces, theirs=spaces, seed=st.integers(0, 2**32))
def test_config_of_any_other_search(mine, theirs, seed):
    """Any two spaces a user can write: a configuration of this space maps to itself, and one
    of another either becomes a valid configuration of this space or says which name stops it."""
    space, problems = parse_space(mine)
    other, other_problems = parse_space(theirs)
    if problems or other_problems:
        return
    rng = np.random.default_rng(seed)
    hp = space.sample(rng)
    assert space.config_of(hp) == (hp, "")
    got, why = space.config_of(other.sample(rng))
    if got is None:
        names = [".".join(p) for p, _ in space.leaves()]
        assert any(why == f"it has no {n}" or why.startswith(f"{n}: ") for n in names), why
    else:
        check_in_space(space, got)
        assert why == ""


@pytest.mark.parametrize("sampler", MODELS)
def test_the_fitted_length_follows_this_searchs_own_results(sampler):
    """An earlier search's results fill in the model at the length this search has reached,
    they do not hold it at the length the earlier one reached: until this search has enough
    results of its own somewhere, the model is fitted at the earlier search's longest length
    with enough; then at this search's own longest such length, with the earlier results
    there pooled in. (Held at the earlier search's top length, a warm start lost to starting
    over on Branin: benchmarks/RESULTS.md.)"""
    from test_sampler import SAMPLER_CLASS

    space = parse_space(SPACE)[0]
    rng = np.random.default_rng(0)
    earlier = [space.sample(rng) for _ in range(40)]
    s = SAMPLER_CLASS[sampler](space, 3, random_fraction=1.0, rng=np.random.default_rng(1))
    s.prior([{"hparams": hp, "losses": [[1, loss(hp, 1)]]
              + ([[64, loss(hp, 64)]] if i < 30 else [])} for i, hp in enumerate(earlier)])
    assert s._model() is not None
    assert s._fit_length(lambda n: n >= 20) is s.results[64]
    for t in range(1, 21):
        hp = s.sample(t)
        s.observe(t, 1, loss(hp, 1))
    fitted = s._fit_length(lambda n: n >= 20)
    assert fitted is s.results[1] and (fitted.n, fitted.own) == (60, 20)
    assert s.results[64].own == 0


def test_a_chain_of_searches_keeps_every_result_before_it(first):
    """c warm-started from b, itself warm-started from a: c's model gets a's results through
    b's record (a may be gone by then) and b's own."""
    b_cfg = parse_config(raw(warm_start="a", seed=21, trials=32), str(first))
    _, b, b_recs, _ = run(first, "b", b_cfg)
    shutil.rmtree(first / "a")
    c_cfg = parse_config(raw(warm_start="b", seed=22, trials=16), str(first))
    exp, c, recs, said = run(first, "c", c_cfg)
    rec = recs[0]
    from_a = b_recs[0]["trials"]
    from_b = [t for t in sorted(b.trials.values(), key=lambda t: t.id) if t.rung_metrics]
    assert rec["inherited"] == len(from_a) and len(rec["trials"]) == len(from_a) + len(from_b)
    assert rec["trials"][:len(from_a)] == from_a
    assert [t["hparams"] for t in rec["trials"][len(from_a):]] == [t.hparams for t in from_b]
    assert f"({len(from_a)} of them from the search it was warm-started from)" in said[0]
    assert c.lifecycle == "completed" and check_invariants(c_cfg, recs) == []


def test_run_warns_when_the_earlier_searchs_rungs_disagree(first, capsys, monkeypatch):
    """An earlier search whose short results rank configurations against its long ones (as
    HistGradientBoosting's learning rate does): ``run`` says so before it starts, naming the
    lengths and the correlation; a search whose rungs agree gets no warning."""
    import yaml

    (first / "upside.py").write_text(CURVE + "\n"
                                     "def inverted(hp, length, seed):\n"
                                     "    v = curve(hp, 64, seed)\n"
                                     "    return v if length > 1 else 10.0 - v\n")
    inverted = dict(raw(sampler="random", trials=96), name="inv")
    inverted["simulated"] = {"unit_seconds": 30, "curve": "upside:inverted"}
    cfg = parse_config(inverted, str(first))
    run(first, "inv", cfg)
    capsys.readouterr()
    import asha_hpc.views.status as status

    opened = []
    real_open = status.open_experiment
    monkeypatch.setattr(status, "open_experiment", lambda p: opened.append(p) or real_open(p))
    for source, warned in (("inv", True), ("a", False)):
        path = first / f"from-{source}.yaml"
        path.write_text(yaml.safe_dump(raw(warm_start=source, trials=8)))
        assert main(["run", str(path), "--exp-dir", str(first / f"from-{source}")]) == 0
        # read once: the check before the folder is made hands its record to the master
        assert opened == [(first / source).resolve()]
        opened.clear()
        err = [x for x in capsys.readouterr().err.splitlines() if "warning" in x]
        if warned:
            assert len(err) == 1 and err[0].startswith(
                f"asha-hpc: warning: searcher.warm_start: in {(first / 'inv').resolve()}, the "
                "trials promoted from length ")
            assert "ranked at -" in err[0] and "may teach the model the wrong region" in err[0]
        else:
            assert err == []


def test_warm_start_from_a_folder_an_older_release_wrote(tmp_path):
    """An experiment folder from the last release before the model samplers' shared code
    (tests/fixtures/old_release_c43cdc7_tpe, real local jobs, no warm_start record kind yet)
    serves as an earlier search: its results, as they were journaled then, reach the model."""
    from pathlib import Path

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "old_release_c43cdc7_tpe"
    shutil.copytree(fixture / "run", tmp_path / "old")
    (tmp_path / "line.py").write_text("def curve(hp, length, seed):\n"
                                      "    return (hp['x'] - 0.3) ** 2 + 1.0 / length\n")
    cfg = parse_config({
        "name": "after-upgrade", "entrypoint": "unused:train",
        "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 16,
                     "max_trials": 12, "max_concurrent_trials": 2, "sampler": "tpe",
                     "warm_start": "old"},
        "hyperparameters": {"x": {"type": "double", "minval": -1, "maxval": 1}},
        "backend": "simulated", "simulated": {"curve": "line:curve"}}, str(tmp_path))
    exp, st_, recs, said = run(tmp_path, "new", cfg)
    old_cfg = parse_config(__import__("yaml").safe_load((tmp_path / "old" / "experiment.yaml")
                                                        .read_text()), str(tmp_path / "old"))
    old = replay(old_cfg, read_journal(tmp_path / "old" / "journal.jsonl")[0])
    with_results = [t for t in sorted(old.trials.values(), key=lambda t: t.id) if t.rung_metrics]
    assert with_results and recs[0]["kind"] == "warm_start"
    assert [t["hparams"] for t in recs[0]["trials"]] == [{"x": t.hparams["x"]}
                                                        for t in with_results]
    assert st_.lifecycle == "completed" and st_.warm["trials"] == len(with_results)


def test_several_earlier_searches_warm_start_one_model(first):
    """``warm_start: [a, a2]``: one record per folder, in the order given, before init; the
    model gets both searches' results; replay and status need neither folder."""
    a2_cfg = parse_config(raw(sampler="random", seed=31, trials=32), str(first))
    _, a2, _, _ = run(first, "a2", a2_cfg)
    a = replay(parse_config(raw(sampler="random"), str(first)),
               read_journal(first / "a" / "journal.jsonl")[0])
    cfg = parse_config(raw(warm_start=["a", "a2"], seed=32, trials=16), str(first))
    exp, st_, recs, said = run(first, "b", cfg)
    assert [r["kind"] for r in recs[:3]] == ["warm_start", "warm_start", "init"]
    assert [r["source"] for r in recs[:2]] == [str((first / n).resolve()) for n in ("a", "a2")]
    n_a = sum(1 for t in a.trials.values() if t.rung_metrics)
    n_a2 = sum(1 for t in a2.trials.values() if t.rung_metrics)
    assert [len(r["trials"]) for r in recs[:2]] == [n_a, n_a2]
    assert st_.searcher._model.prior_rows == n_a + n_a2
    assert f"of {n_a + n_a2} trials of {(first / 'a').resolve()} and {(first / 'a2').resolve()}" \
        in said[0]
    assert st_.lifecycle == "completed" and check_invariants(cfg, recs) == []
    shutil.rmtree(first / "a")
    shutil.rmtree(first / "a2")
    again = replay(cfg, read_journal(exp.journal)[0])
    assert again.warm is not None and again.warm["trials"] == n_a + n_a2
    text = render_status_text(status_dict(exp, cfg, again, read_journal(exp.journal)[0]))
    assert f"warm-started from {again.warm['results']} results of {n_a + n_a2} trials" in text


def test_a_listed_folder_warm_started_from_another_gives_each_trial_once(first):
    """b was warm-started from a; ``warm_start: [a, b]`` gives a's trials once (with a), not
    again through b's record."""
    b_cfg = parse_config(raw(warm_start="a", seed=41, trials=16), str(first))
    _, b, b_recs, _ = run(first, "b", b_cfg)
    cfg = parse_config(raw(warm_start=["a", "b"], seed=42, trials=16), str(first))
    _, st_, recs, _ = run(first, "c", cfg)
    from_a, from_b = recs[0], recs[1]
    assert len(from_a["trials"]) == len(b_recs[0]["trials"])
    own_b = [t for t in sorted(b.trials.values(), key=lambda t: t.id) if t.rung_metrics]
    assert from_b.get("inherited", 0) == 0 and len(from_b["trials"]) == len(own_b)
    keys = [json.dumps(t, sort_keys=True) for r in recs[:2] for t in r["trials"]]
    assert len(keys) == len(set(keys))
    assert st_.lifecycle == "completed"


def test_a_folder_listed_after_one_warm_started_from_it_gives_nothing_twice(first):
    """``warm_start: [b, a]``, b warm-started from a: a's trials came with b's record, and a
    adds none of its own. The other order of the case above; it was refused ("none of its
    trials fits this search's hyperparameters")."""
    b_cfg = parse_config(raw(warm_start="a", seed=41, trials=16), str(first))
    _, b, b_recs, _ = run(first, "b", b_cfg)
    cfg = parse_config(raw(warm_start=["b", "a"], seed=42, trials=16), str(first))
    _, st_, recs, _ = run(first, "c", cfg)
    from_b, from_a = recs[0], recs[1]
    assert from_b["inherited"] == len(b_recs[0]["trials"]) and from_a["trials"] == []
    assert st_.lifecycle == "completed" and st_.warm["sources"] == [str(first / "b"), str(first / "a")]


def test_a_folder_named_twice_is_refused(first, capsys):
    code, err = cli_run(first, capsys, warm_start=["a", "./a"])
    assert code != 0 and len(err) == 1
    assert err[0] == (f"asha-hpc: error: searcher.warm_start: names {(first / 'a').resolve()} "
                      "twice: give each folder once")
    assert not (first / "b").exists()


def test_a_torn_group_reads_only_the_folders_whose_records_were_lost(first):
    """Of ``warm_start: [a, a2]``'s group only a's record reached the journal: the next start
    reads a2 alone (a is gone by then), and the search is the one a whole group gives."""
    a2_cfg = parse_config(raw(sampler="random", seed=51, trials=16), str(first))
    run(first, "a2", a2_cfg)
    cfg = parse_config(raw(warm_start=["a", "a2"], seed=52, trials=16), str(first))
    exp, full, recs, _ = run(first, "b", cfg)
    b2 = torn_copy(first, cfg)
    shutil.rmtree(first / "a")
    st_ = Master(b2, cfg, progress=lambda s: None).run()
    recs2 = read_journal(b2.journal)[0]
    assert [r["kind"] for r in recs2[:3]] == ["warm_start", "warm_start", "init"]
    assert [r["trials"] for r in recs2[:2]] == [r["trials"] for r in recs[:2]]
    assert {t: x.hparams for t, x in st_.trials.items()} == \
        {t: x.hparams for t, x in full.trials.items()}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.one_of(st.text(max_size=12), st.lists(st.text(max_size=8), max_size=4),
                       st.lists(st.one_of(st.integers(), st.none(), st.text(max_size=3)), max_size=3),
                       st.integers(), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)))
def test_any_warm_start_value_loads_as_given_or_gets_one_line(value):
    """Whatever a user writes under ``warm_start``: a usable path or list of paths loads as
    written (and round-trips through experiment.yaml); anything else is one problem naming the
    field."""
    try:
        cfg = parse_config(raw(warm_start=value), "/tmp")
    except ConfigError as e:
        mine = [x for x in e.problems if "warm_start" in x]
        assert len(mine) == 1 and mine[0].startswith("searcher.warm_start: ")
        return
    paths = [value] if isinstance(value, str) else value
    assert paths and all(isinstance(x, str) and x.strip() for x in paths)
    assert len(set(paths)) == len(paths)
    assert cfg.searcher.warm_start == value
    assert parse_config(cfg.to_dict(), "/elsewhere").searcher.warm_start == value

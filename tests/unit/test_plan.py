"""plan(): the JSON keys the CLI prints, the preview, and the text rendering."""
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.config import SearcherConfig
from asha_hpc.plan import bracket_preview, plan, render_plan
from asha_hpc.space import parse_space

SPACE, _ = parse_space({"lr": {"type": "log", "minval": -4, "maxval": -1, "base": 10},
                        "act": {"type": "categorical", "vals": ["relu", "tanh"]}})


def cfg(**kw):
    base = dict(metric="val_loss", max_length=1000, max_trials=16, divisor=4,
                max_concurrent_trials=16, mode="standard", length_unit="epochs")
    base.update(kw)
    return SearcherConfig(**base)


def test_plan_json_keys_exactly():
    p = plan(cfg(), SPACE)
    assert {"brackets", "preview", "total_units"} <= set(p)
    for b in p["brackets"]:
        assert set(b) == {"num_rungs", "max_trials", "max_concurrent_trials", "rung_lengths"}
    assert p["brackets"] == [
        {"num_rungs": 3, "max_trials": 12, "max_concurrent_trials": 8, "rung_lengths": [62, 250, 1000]},
        {"num_rungs": 2, "max_trials": 4, "max_concurrent_trials": 8, "rung_lengths": [250, 1000]}]
    assert p["preview"] == {"62": 9, "250": 5, "1000": 2}
    assert list(p["preview"]) == ["62", "250", "1000"]  # ascending length
    assert p["total_units"] == 3808
    assert json.loads(json.dumps(p)) == p


def test_bracket_preview():
    assert bracket_preview([62, 250, 1000], 16, 4.0) == [12, 3, 1]
    assert bracket_preview([250, 1000], 3, 4.0) == [2, 1]  # max(int(3/4), 1) continue
    assert bracket_preview([1000], 5, 4.0) == [5]


def test_plan_other_searchers():
    p = plan(cfg(name="random", max_trials=10), SPACE)
    assert p["brackets"] == [{"num_rungs": 1, "max_trials": 10, "max_concurrent_trials": 10,
                              "rung_lengths": [1000]}]
    assert p["preview"] == {"1000": 10} and p["total_units"] == 10_000
    sp, _ = parse_space({"a": {"type": "categorical", "vals": [1, 2, 3]}})
    p = plan(cfg(name="grid", max_trials=1, max_concurrent_trials=2), sp)
    assert p["brackets"][0]["max_trials"] == 3 and p["preview"] == {"1000": 3}
    p = plan(cfg(name="single"), SPACE)
    assert p["preview"] == {"1000": 1} and p["total_units"] == 1000


def test_plan_warnings():
    p = plan(cfg(mode="conservative", divisor=1.1, max_trials=2, max_length=100), SPACE)
    assert any("more than max_trials" in w for w in p["warnings"])
    p = plan(cfg(name="async_halving", num_rungs=5, max_length=10), SPACE)
    assert any("equal length" in w for w in p["warnings"])
    assert plan(cfg(), SPACE)["warnings"] == []


def test_render_plan():
    c = cfg(mode="conservative")
    text = render_plan(c, SPACE, plan(c, SPACE))
    assert "62, 250, 1,000 epochs" in text
    assert "4,558 epochs" in text and "16 trials" in text
    assert "mode conservative" in text and "val_loss" in text
    assert "lr" in text and "categorical" in text
    lines = text.splitlines()
    assert any(line.split()[:4] == ["0", "3", "12", "6"] for line in lines)
    assert any(line.split() == ["1,000", "epochs", "3"] for line in lines)


def test_least_units_when_a_rung_expects_fewer_results_than_the_divisor():
    """Bracket 0 expects 3 trials at rung 250: fewer than the divisor 4, so under the paper's
    rule none need go on to 1000 (the preview, Determined's, lets one go): at least 3058 of
    the preview's 3808 units."""
    p = plan(cfg(), SPACE)
    assert p["total_units"] == 3808 and p["least_units"] == 9 * 62 + 6 * 250 + 1000
    assert len(p["least_units_why"]) == 1 and p["least_units_why"][0].startswith(
        "bracket 0 expects 3 trials at 250 epochs, fewer than the divisor 4")
    text = render_plan(cfg(), SPACE, p)
    assert "3,808 epochs of training in the preview; at least 3,058 epochs:" in text
    # where the first result of a rung always goes on, or every rung gets enough results
    for c in (cfg(stop_once=True), cfg(name="async_halving", num_rungs=3, max_trials=64)):
        p = plan(c, SPACE)
        assert p["least_units"] == p["total_units"] and p["least_units_why"] == []
        assert "at least" not in render_plan(c, SPACE, p)


@settings(max_examples=200, deadline=None)
@given(max_trials=st.integers(1, 300), divisor=st.sampled_from([2, 3, 4, 5.5]),
       max_length=st.integers(1, 5000), mode=st.sampled_from(["aggressive", "standard", "conservative"]),
       stop_once=st.booleans())
def test_least_never_above_the_preview(max_trials, divisor, max_length, mode, stop_once):
    p = plan(cfg(max_trials=max_trials, divisor=divisor, max_length=max_length, mode=mode,
                 stop_once=stop_once), SPACE)
    assert p["least_units"] <= p["total_units"]
    assert (p["least_units"] < p["total_units"]) == bool(p["least_units_why"])
    assert not (stop_once and p["least_units_why"])


@pytest.mark.parametrize("workers", [1, 4])
def test_finished_search_progress_is_what_it_trained(tmp_path, workers):
    """The digits example's search (16 trials, rungs 4/16/64 and 16/64, divisor 4) on the
    simulated backend: it trains at least the plan's least_units, and once it is over status
    counts progress against what it trained (never "196/244 (100%)"), the preview beside it.
    ASHA promotes as soon as a trial is in the top 1/d of the results so far, so more trials
    than the preview's go up: the preview is an estimate, least_units a bound."""
    from asha_hpc.config import load_config
    from asha_hpc.master.loop import Master
    from asha_hpc.protocol.expdir import ExpDir, atomic_write
    from asha_hpc.views.status import open_experiment, status_dict
    from asha_hpc.views.text import render_status_text

    src = Path(__file__).parent.parent.parent / "examples" / "pytorch_digits" / "digits.yaml"
    c = load_config(src, overrides={"backend": "simulated"})
    c.searcher.max_concurrent_trials = workers
    pl = plan(c.searcher, c.space())
    assert (pl["least_units"], pl["total_units"]) == (196, 244)
    exp = ExpDir.create(tmp_path / "run")
    c.experiment_dir = str(exp.root)
    c.simulated.failure_rate = 0.0
    c.simulated.workers = workers
    atomic_write(exp.config, yaml.safe_dump(c.to_dict(), sort_keys=False).encode())
    assert Master(exp, c, progress=lambda s: None).run().lifecycle == "completed"
    e, c2, records, st_ = open_experiment(exp.root)
    d = status_dict(e, c2, st_, records)
    p = d["progress"]
    done = sum(t.length for t in st_.trials.values())
    assert (p["units_done"], p["units_planned"], p["units_preview"], p["fraction"]) == (done, done, 244, 1.0)
    assert done >= 196
    assert f"progress: {done}/{done} epochs trained (100.0%; plan's preview 244)" in render_status_text(d)


def test_one_unit_is_singular():
    from asha_hpc.plan import unit_name

    assert [unit_name(u, 1) for u in ("batches", "epochs", "records", "units")] == [
        "batch", "epoch", "record", "unit"]
    assert unit_name("batches", 2) == "batches"
    c = cfg(name="single", max_length=1, length_unit="batches")
    text = render_plan(c, SPACE, plan(c, SPACE))
    assert "max_length 1 batch\n" in text and "batche" not in text.replace("batches", "")


def _task_cfg(trials, sampler="random"):
    """benchmarks/search_quality.py's searcher for a task of ``trials`` trials."""
    return SearcherConfig(name="adaptive_asha", metric="loss", max_length=64, max_trials=trials,
                          max_concurrent_trials=16, divisor=4, sampler=sampler)


def test_render_plan_says_what_the_asynchronous_search_trains_over_the_preview():
    """The ratios the text gives are the committed benchmark results' (section 8): random
    sampling's spend over the preview's total, the models' whole plans over random's, and the
    models with three quarters of the trials."""
    import re

    from asha_hpc.plan import ASYNC_EXTRA, MODEL_EXTRA

    text = render_plan(_task_cfg(128), SPACE, plan(_task_cfg(128), SPACE))
    assert "the search is asynchronous" in text and "trials drawn from the model" not in text
    text = render_plan(_task_cfg(128, "gp"), SPACE, plan(_task_cfg(128, "gp"), SPACE))
    assert "gp: trials drawn from the model" in text
    c = cfg(name="random", max_trials=8)  # no early stopping: nothing is promoted
    assert "asynchronous" not in render_plan(c, SPACE, plan(c, SPACE))

    def said(text, n):
        return [float(x) for x in re.findall(r"(\d+(?:\.\d+)?)(?:x|-)", text)[:n]]

    results = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    sq = json.loads((results / "search_quality.json").read_text())["config"]["tasks"]
    low, high = said(ASYNC_EXTRA, 2)
    for t in sq.values():
        ratio = t["budget"] / plan(_task_cfg(t["trials"]), SPACE)["total_units"]
        assert low - 0.05 <= ratio < high + 0.05, t  # the text rounds to one decimal
    cut = json.loads((results / "budget_cut.json").read_text())["tasks"]
    low, high, most = said(MODEL_EXTRA, 3)
    for name in ("digits_mlp", "hgb"):
        for m in ("tpe", "gp"):
            assert low - 0.05 <= cut[name]["rows"][f"{m}, T trials, whole plan"]["compute"] < high + 0.05
    assert max(r["compute"] for t in cut.values() for r in t["rows"].values()) < most + 0.05
    assert "set max_compute" in MODEL_EXTRA


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_render_plan_says_when_the_model_first_draws(sampler):
    """What Optuna's n_startup_trials says there: the results at one length the model needs,
    the searcher's own count, and a warning when max_trials leaves it no room."""
    from asha_hpc.searcher import make_searcher

    need = make_searcher(_task_cfg(128, sampler), SPACE, 0)._model.fit_needs()[0]
    big = render_plan(_task_cfg(128, sampler), SPACE, plan(_task_cfg(128, sampler), SPACE))
    assert f"{sampler}: its model first draws once one length holds {need} results" in big
    assert "few or none of this search's are the model's" not in big
    small = cfg(name="adaptive_asha", sampler=sampler, max_trials=need + 1)
    assert "few or none of this search's are the model's" in render_plan(small, SPACE,
                                                                          plan(small, SPACE))
    assert "its model first draws" not in render_plan(_task_cfg(128), SPACE,
                                                      plan(_task_cfg(128), SPACE))


def test_cheapest_way_to_the_top_rung():
    from asha_hpc.plan import cheapest_top

    # 4 results let the best go on; each later result that comes out best goes on too
    assert cheapest_top([4, 16, 64], 4) == (7 * 4 + 4 * 12 + 48, [7, 4, 1])
    assert cheapest_top([16, 64], 4) == (4 * 16 + 48, [4, 1])
    assert cheapest_top([10, 35, 100], 3.5) == (7 * 10 + 4 * 25 + 65, [7, 4, 1])
    assert cheapest_top([32, 64, 128, 256], 2) == (4 * 32 + 3 * 32 + 2 * 64 + 128, [4, 3, 2, 1])
    assert cheapest_top([100], 4) == (100, [1])


def test_a_cap_no_trial_can_reach_max_length_under_is_said():
    from asha_hpc.plan import top_out_of_reach

    c = cfg(max_length=64, max_trials=24, max_concurrent_trials=4, max_compute=70)
    why = top_out_of_reach(c, SPACE)
    assert why is not None and "searcher.max_compute 70 epochs: no trial can reach max_length 64" \
        in why and "raise max_compute to 112 or more" in why, why
    assert why in plan(c, SPACE)["warnings"]
    assert top_out_of_reach(cfg(max_length=64, max_trials=24, max_compute=112), SPACE) is None
    # where the first result of a rung may go on, one trial straight up is the cheapest way
    assert top_out_of_reach(cfg(max_length=64, max_trials=24, max_compute=70,
                                asha_rule="determined_0.38"), SPACE) is None


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), divisor=st.sampled_from([2, 3, 4, 3.5]),
       max_trials=st.integers(4, 60), mode=st.sampled_from(["aggressive", "standard"]),
       concurrent=st.integers(1, 12))
def test_no_search_reaches_the_top_rung_for_less_than_the_cheapest_way(seed, divisor, max_trials,
                                                                       mode, concurrent):
    """The bound is a bound: drive the real searcher with results in any order; when a trial
    first reaches max_length, the search has trained at least what cheapest_top says."""
    import random

    from asha_hpc.plan import cheapest_top
    from asha_hpc.searcher import CreateTrial, ResumeTrial, SegmentCompleted, make_searcher
    from asha_hpc.searcher.brackets import bracket_plan

    c = cfg(max_length=256, max_trials=max_trials, divisor=divisor, mode=mode,
            max_concurrent_trials=concurrent)
    least = min(cheapest_top(list(b.rung_lengths), float(divisor))[0]
                for b in bracket_plan(c, SPACE))
    s = make_searcher(c, SPACE, seed)
    rng = random.Random(seed)
    flight: dict[int, tuple[int, int]] = {}  # trial -> (from, to)
    trained = 0
    done: dict[int, int] = {}

    def take(actions):
        for a in actions:
            if isinstance(a, (CreateTrial, ResumeTrial)):
                flight[a.trial_id] = (done.get(a.trial_id, 0), a.length)

    take(s.start())
    while flight:
        tid = rng.choice(sorted(flight))
        start, end = flight.pop(tid)
        trained += end - start
        done[tid] = end
        if end == 256:
            assert trained >= least, (trained, least)
            return
        take(s.on_event(SegmentCompleted(tid, end, rng.random())))

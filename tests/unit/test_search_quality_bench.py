"""benchmarks/search_quality.py compares samplers at equal compute: every system must stop at
the budget, report the incumbent it really had, and evaluate configurations of the task's
space; the reading (regret, wins, compute to reach random's value) must add up."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from bench_loader import load_benchmark

from asha_hpc.space import parse_space

from conftest import require_module

ROOT = Path(__file__).resolve().parents[2]
# the BOHB peers' libraries: hpbandster calls ConfigSpace's deprecated API, statsmodels' KDE
# warns about pandas' future default generator on every fit
pytestmark = pytest.mark.filterwarnings("ignore:Please use:DeprecationWarning",
                                        "ignore:After 0.17:FutureWarning")


@pytest.fixture(scope="module")
def sq():
    return load_benchmark("search_quality")


def test_landscapes_match_the_literature(sq):
    L = sq.landscapes
    for x1, x2 in ((-math.pi, 12.275), (math.pi, 2.275), (9.42478, 2.475)):
        assert L.branin({"x1": x1, "x2": x2}, 64) == pytest.approx(L.OPTIMUM["branin"], abs=1e-5)
    x = [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]
    hp = {f"x{i + 1}": v for i, v in enumerate(x)}
    assert L.hartmann6(hp, 64) == pytest.approx(L.OPTIMUM["hartmann6"], abs=1e-6)
    assert L.hartmann6(hp, 1) > L.hartmann6(hp, 16) > L.hartmann6(hp, 64)  # fidelity bias
    assert L.branin({"x1": 1.0, "x2": 3.0}, 64) == L.branin({"x1": 1.0, "x2": 3.0}, 640)


@pytest.mark.parametrize("system", ["asha_hpc tpe", "Optuna TPE + SuccessiveHalving",
                                    "Ray Tune ASHA", "Syne Tune BOHB (async)",
                                    "Ray Tune BOHB"])
def test_every_system_stops_at_the_budget_in_the_space(sq, system):
    for mod in sq.REQUIRES.get(system, ()):
        require_module(mod, "bench")
    task = sq.make_task("branin")
    task.trials = 40
    seen = []
    curve = task.curve

    def spy(hp, length):
        seen.append(dict(hp))
        return curve(hp, length)

    task.curve = spy
    base = sq.run_system(sq.RANDOM, task, 0, None)
    r = sq.run_system(system, task, 0, base["spent"])
    assert r["spent"] <= base["spent"]
    assert r["cut"] == (r["spent"] == base["spent"])  # still running when the budget ran out
    values = [v for _, v in r["trace"]]
    assert r["final"] >= task.optimum
    if r["first_full"] is None:  # nothing reached full length in the budget: the pick's value
        assert r["final"] == curve(r["pick"], 64)
    else:  # once a trial is at full length, the incumbent only improves
        start = next(i for i, (c, _) in enumerate(r["trace"]) if c >= r["first_full"])
        full = values[start:]
        assert full == sorted(full, reverse=True) and r["final"] == values[-1] == min(full)
    if system.startswith("asha_hpc"):  # the compute spent when the pick's trial was created
        assert r["pick_created"] is not None and 0 <= r["pick_created"] < r["spent"]
        assert isinstance(r["pick_from_model"], bool)
    else:
        assert r["pick_created"] is None and r["pick_from_model"] is None
    space = parse_space(task.spec)[0]
    for hp in seen:
        assert set(hp) == set(space.flat_names())
        assert -5 <= hp["x1"] <= 10 and 0 <= hp["x2"] <= 15


def test_reading_adds_up(sq):
    runs = []
    for seed, (a, b) in enumerate([(1.0, 0.5), (2.0, 2.0), (0.6, 0.9)]):
        for name, v in ((sq.RANDOM, a), (sq.TPE, b)):
            runs.append({"system": name, "task": "branin", "seed": seed, "final": v + 0.397887,
                         "spent": 100, "budget": 100, "wall_s": 0.0, "first_full": 100,
                         "trace": [(50, v + 1.397887), (100, v + 0.397887)]})
    # seed 0's tpe: a short incumbent worth 0.5 once trained at 50, its first full-length
    # result at 80
    runs[1].update(trace=[(50, 0.897887), (100, 0.897887)], first_full=80)
    res = sq.analyse(runs, ["branin"], [sq.RANDOM, sq.TPE])["branin"]
    assert sum(r["wins"] for r in res["rows"].values()) == pytest.approx(3)
    assert res["rows"][sq.TPE]["wins"] == pytest.approx(1.5)  # one win, one tie
    assert res["rows"][sq.TPE]["median"] == pytest.approx(0.9, abs=1e-5)
    # seed 0: tpe's 0.5 beats random's final 1.0 at 50, known from its first full-length
    # result at 80; seed 1: 2.0 at 100; seed 2: never
    assert res["tpe_compute_to_random_final"]["per_seed"] == [0.5, 1.0, math.inf]
    assert res["tpe_compute_to_random_final_known"]["per_seed"] == [0.8, 1.0, math.inf]
    assert res["rows"][sq.TPE]["first_full"] == 1.0  # median of 0.8, 1.0, 1.0


def test_syne_tune_bohb_repeats_for_a_seed_and_keeps_the_space(sq):
    """Syne Tune draws the bracket and its random configurations from numpy's global
    generator: the peer seeds it, so a seed gives the same run; integers stay integers with
    both bounds reachable, categoricals are the task's values."""
    require_module("syne_tune", "bench")
    task = sq.make_task("branin")
    task.trials = 40
    budget = sq.run_system(sq.RANDOM, task, 3, None)["spent"]
    a, b = (sq.run_system("Syne Tune BOHB (async)", task, 3, budget) for _ in range(2))
    assert (a["trace"], a["pick"], a["spent"]) == (b["trace"], b["pick"], b["spent"])
    assert a["spent"] == budget  # one unit per result: it trains until the budget is spent

    class Mixed(sq.Task):
        name = "mixed"
        spec = {"width": {"type": "int", "minval": 1, "maxval": 3},
                "act": {"type": "categorical", "vals": ["relu", "tanh"]},
                "lr": {"type": "log", "minval": -3, "maxval": -1, "base": 10}}

        def curve(self, hp, length):
            return hp["width"] + hp["lr"] + (hp["act"] == "tanh") + 1 / length

    seen = []
    mixed = Mixed()
    curve = mixed.curve
    mixed.curve = lambda hp, length: seen.append(dict(hp)) or curve(hp, length)
    sq.run_system("Syne Tune BOHB (async)", mixed, 0, 600)
    assert {hp["width"] for hp in seen} == {1, 2, 3}
    assert all(type(hp["width"]) is int and hp["act"] in ("relu", "tanh")
               and 1e-3 <= hp["lr"] <= 1e-1 for hp in seen)


def test_ray_bohb_runs_hyperband_brackets_resuming_paused_trials(sq):
    """Ray's synchronous HyperBandForBOHB driven as its controller drives it: every bracket of
    the first band keeps n, n/4, ... trials to its milestones (64 -> 16 -> 4 -> 1 at 1, 4, 16,
    64 units), a paused trial resumes where it stopped (each unit trained and counted once),
    the searcher gets each milestone's result, and a seed repeats the run."""
    for mod in sq.REQUIRES["Ray Tune BOHB"]:
        require_module(mod, "bench")
    import collections

    task = sq.make_task("branin")
    run = sq.Run(task, 1500)
    bohb = sq.RayBOHB(task, run, 0)
    sq.run_pool(bohb, stop=run.over)
    assert run.spent == 1500 == sum(t.step for t in bohb.trials)
    brackets = [b for b in bohb.sched._hyperbands[0] if b is not None]
    finals = [sorted(collections.Counter(t.step for t in b._all_trials).items())
              for b in brackets]
    assert finals == [[(1, 48), (4, 12), (16, 3), (64, 1)], [(4, 16), (16, 4), (64, 2)],
                      [(16, 6), (64, 2)], [(64, 4)]]
    seen = {b: len(c) for b, c in bohb.searcher.bohber.configs.items()}
    assert set(seen) == {1, 4, 16, 64} and seen[1] == 64
    again = sq.Run(task, 1500)
    sq.run_pool(sq.RayBOHB(task, again, 0), stop=again.over)
    assert again.trace == run.trace


def test_bohb_ablation_swaps_only_the_model(sq):
    """benchmarks/bohb_ablation.py: hpbandster's generator as the sampler of asha_hpc's own
    adaptive_asha keeps the budget, the space and asha_hpc's rung lengths; its 'no model'
    HyperBand never fits a model."""
    for mod in ("ray.tune", "hpbandster", "ConfigSpace"):
        require_module(mod, "bench")
    from virtual_pool import run_pool  # benchmarks/, on the path once search_quality is loaded

    ab = load_benchmark("bohb_ablation")
    task = ab.sq.make_task("branin")
    task.trials = 40
    budget = ab.sq.run_system(ab.sq.RANDOM, task, 1, None)["spent"]
    run = ab.sq.Run(task, budget)
    ours = ab.OursWithHpbandster(task, run, 1)
    run_pool(ours, stop=run.over)
    assert 0 < run.spent <= budget
    assert ours.hp and all(-5 <= hp["x1"] <= 10 and 0 <= hp["x2"] <= 15
                           for hp in ours.hp.values())
    assert set(ours.at.values()) <= {1, 4, 16, 64}  # segments end at asha_hpc's rungs
    hb = ab.sq.RayBOHB(task, ab.sq.Run(task, budget), 1, ab.NO_MODEL)
    run_pool(hb, stop=hb.run.over)
    assert hb.searcher.bohber.kde_models == {} and len(hb.trials) > 16


def test_budget_cut_runs_the_controls_at_the_budget(tmp_path):
    """benchmarks/budget_cut.py: the first row sets the budget; the cut rows stop at it, the
    max_compute rows plan to it, the whole-plan rows of T trials go past it (a model's plan
    promotes more), half as many trials (--fewer 0.5) spend less than that, the --max-rungs
    rows are cut at it too, and the JSON has every row."""
    import json
    import subprocess
    import sys

    out = tmp_path / "cut.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "budget_cut.py"), "--tasks",
                    "branin", "--seeds", "2", "--first-seed", "100", "--fewer", "0.5", "--max-rungs",
                    "3", "--out", str(out)], check=True, capture_output=True, text=True)
    rows = json.loads(out.read_text())["tasks"]["branin"]["rows"]
    assert len(rows) == 13 and {"tpe, 0.5T trials, whole plan", "gp, 0.5T trials, whole plan"} <= set(rows)
    assert {f"{m}, max_rungs 3, cut" for m in ("random", "tpe", "gp")} <= set(rows)
    # fewer rungs is another search, not the default one again
    assert rows["random, max_rungs 3, cut"]["finals"] != rows["random, T trials (sets the budget)"]["finals"]
    compute = {k: r["compute"] for k, r in rows.items()}
    assert compute["random, T trials (sets the budget)"] == 1.0
    assert all(v <= 1.0 for k, v in compute.items() if k.endswith((", cut", "max_compute")))
    assert all(v > 1.0 for k, v in compute.items() if k.endswith("T trials, whole plan")
               and "0.5T" not in k)
    for m in ("tpe", "gp"):
        assert compute[f"{m}, 0.5T trials, whole plan"] < compute[f"{m}, T trials, whole plan"]
    assert all(len(r["finals"]) == 2 for r in rows.values())


def test_the_benchmark_searcher_takes_the_tasks_max_rungs(sq):
    """budget_cut.py --max-rungs N sets ``task.max_rungs``: asha_hpc's searcher in the benchmark
    then starts its trials at 64 / 4^(N-1) units instead of 1."""
    from asha_hpc.searcher import make_searcher
    from asha_hpc.searcher.base import CreateTrial

    task = sq.make_task("branin")
    firsts = {}
    for n in (5, 3, 2):
        task.max_rungs = n
        s = make_searcher(sq.searcher_config(task, "random"), task.space, 0)
        firsts[n] = min(a.length for a in s.start() if isinstance(a, CreateTrial))
    assert firsts == {5: 1, 3: 4, 2: 16}


def test_task_facts_reads_the_tasks_as_search_quality_runs_them(tmp_path, sq):
    """benchmarks/task_facts.py: seed 0 of its HGB is search_quality's own run of the
    configuration; the promoted-quarter correlations, the seed noise and the picks' creation
    shares are in range and in the JSON."""
    import json
    import subprocess

    require_module("sklearn", "bench")  # the HGB task
    tf = load_benchmark("task_facts")
    task = tf.sq.make_task("hgb")
    hp = task.space.sample(__import__("numpy").random.default_rng(1))
    assert tf.hgb_full(task, hp, 0) == pytest.approx(task.curve(hp, 64), rel=1e-9)
    assert tf.hgb_full(task, hp, 1) > 0

    out = tmp_path / "facts.json"
    noise = tf.seed_noise(task, [task.space.sample(__import__("numpy").random.default_rng(s))
                                 for s in range(8)], 2)
    assert noise["sd"] >= 0 and -1.0 <= noise["seed0_vs_seed1"] <= 1.0

    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "task_facts.py"), "--tasks",
                    "branin", "--configs", "16", "--pick-seeds", "2", "--out", str(out)],
                   check=True, capture_output=True, text=True)
    facts = json.loads(out.read_text())["tasks"]["branin"]
    pq = facts["promoted_quarter"]
    assert set(pq) == {"1->4", "1->64", "4->16", "4->64", "16->64"}
    assert all(-1.0 <= v <= 1.0 for v in pq.values())
    picks = facts["picks"]
    assert set(picks) == {sq.RANDOM, sq.TPE, sq.GP}
    assert all(0.0 <= x < 1.0 for p in picks.values() for x in p["shares"])
    assert all(p["before_any_result"] == sum(x == 0 for x in p["shares"]) for p in picks.values())
    assert picks[sq.RANDOM]["from_model"] == 0
    assert "seed_noise" not in facts  # a function has no training seed


def test_asha_hpc_plans_to_the_budget_and_random_is_unchanged_by_it(sq):
    """asha_hpc runs with searcher.max_compute at the budget: its search ends inside it without
    a cut, and random sampling, whose plan sets the budget, makes the same decisions with it."""
    task = sq.make_task("branin")
    task.trials = 64
    for seed in (0, 1):
        base = sq.run_system(sq.RANDOM, task, seed, None)
        again = sq.run_system(sq.RANDOM, task, seed, base["spent"])
        assert again["trace"] == base["trace"] and not again["cut"]
        cut = sq.run_system(sq.TPE, task, seed, base["spent"], plan=False)
        planned = sq.run_system(sq.TPE, task, seed, base["spent"])
        assert not planned["cut"] and planned["spent"] <= base["spent"]
        assert planned["spent"] > 0.8 * base["spent"]
        assert planned["trace"] != cut["trace"]


def test_keep_reuses_runs_only_where_random_repeats(sq, tmp_path):
    """--keep: a kept system's runs come from the earlier output (its curve and compute to
    random's final too, when that output has no traces), only if random sampling repeats the
    earlier run of the seed exactly; the real tasks' best known counts the kept runs' traces."""
    import json

    task = sq.make_task("branin")
    base = sq.run_system(sq.RANDOM, task, 100, None)
    base["budget"] = base["spent"]
    gp = dict(base, system=sq.GP, final=0.5, trace=[])
    curve = [{"fraction": 1.0, "median": 0.1, "q25": 0.1, "q75": 0.1}]
    old = {"runs": [dict(base, trace=[]), gp],
           "results": {"branin": {"optimum": 0.397887,
                                  "rows": {sq.GP: {"seeds": 1, "curve": curve}},
                                  "gp_compute_to_random_final": {"median": 0.25},
                                  "gp_over_best_peer": 9.0},
                       "digits_mlp": {"optimum": 0.01, "rows": {}}}}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    kept = sq.Kept(path, [sq.TPE])
    assert kept.run(sq.GP, base) == gp
    other = sq.run_system(sq.RANDOM, task, 101, None)
    with pytest.raises(SystemExit, match="seed 101 does not repeat"):
        kept.run(sq.GP, other)
    tpe = sq.run_system(sq.TPE, task, 100, base["budget"])
    res = sq.analyse([base, gp, tpe], ["branin"], [sq.RANDOM, sq.TPE, sq.GP])
    assert res["branin"]["rows"][sq.GP]["curve"][-1]["median"] is None  # no trace: no curve
    kept.fill(res)
    assert res["branin"]["rows"][sq.GP]["curve"] == curve
    assert res["branin"]["gp_compute_to_random_final"] == {"median": 0.25}
    assert "gp_over_best_peer" not in res["branin"]  # read from the finals, never copied
    assert kept.optimum == {"digits_mlp": 0.01}
    real = [dict(r, task="digits_mlp", final=0.2, trace=[]) for r in (base, tpe)]
    assert sq.analyse(real, ["digits_mlp"], [sq.RANDOM, sq.TPE],
                      kept.optimum)["digits_mlp"]["optimum"] == 0.01


def test_ratio_interval_shows_what_the_seeds_can_tell(sq):
    """The target "median regret <= 0.7x the best peer's" read with its spread over seed
    resamples: far apart systems give a tight interval on the right side, a sampler level with
    the peers an interval around 1 that the target never meets, and the best peer is chosen
    again in each resample (the lower of two level peers)."""
    seeds = list(range(40))
    rng = __import__("numpy").random.default_rng(1)
    far = {k: float(v) for k, v in zip(seeds, rng.uniform(0.0, 0.1, 40))}
    peer = {k: float(v) for k, v in zip(seeds, rng.uniform(1.0, 2.0, 40))}
    iv = sq.ratio_interval(far, {"p": peer}, seeds)
    assert iv["q95"] < 0.1 and iv["target_share"] == 1.0 and iv["seeds"] == 40
    level = sq.ratio_interval(peer, {"p": peer}, seeds)
    assert level["q05"] == level["q95"] == 1.0 and level["target_share"] == 0.0
    # two peers: each resample divides by the lower median, so the ratio is never above the
    # one against either peer alone
    other = {k: v * 1.5 for k, v in peer.items()}
    mine = {k: v * 0.8 for k, v in peer.items()}
    assert sq.ratio_interval(mine, {"p": peer, "q": other}, seeds)["q95"] == pytest.approx(0.8)
    # a seed some system lacks is left out, not counted as a regret of 0
    del mine[3]
    assert sq.ratio_interval(mine, {"p": peer}, seeds)["seeds"] == 39


def test_table_reads_an_earlier_output_again(sq, tmp_path, capsys, monkeypatch):
    """--table prints an earlier output's table with today's analysis (the interval too)
    without running a system; runs kept without traces keep that output's curves."""
    import json

    runs = []
    for seed in range(6):
        for name, v in ((sq.RANDOM, 1.0 + seed), (sq.TPE, 0.1 * seed),
                        ("Ray Tune ASHA", 2.0 + seed)):
            runs.append({"system": name, "task": "branin", "seed": seed,
                         "final": v + 0.397887, "spent": 100, "budget": 100, "wall_s": 0.0,
                         "first_full": 100, "trace": []})
    before = sq.analyse(runs, ["branin"], [sq.RANDOM, sq.TPE, "Ray Tune ASHA"])
    curve = [{"fraction": 1.0, "median": 0.3, "q25": 0.2, "q75": 0.4}]
    for row in before["branin"]["rows"].values():
        row["curve"] = curve
    before["branin"]["tpe_compute_to_random_final"] = {"median": 0.25, "per_seed": []}
    before["branin"]["tpe_compute_to_random_final_known"] = {"median": 0.5, "per_seed": []}
    before["branin"].pop("tpe_over_best_peer_interval")
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"runs": runs, "results": before, "config": {"tasks": {
        "branin": {"seeds": 6, "first_seed": 0, "trials": 10, "budget": 100}}}}))
    monkeypatch.setattr(sys, "argv", ["search_quality.py", "--table", str(path)])
    monkeypatch.setattr(sq, "run_system", lambda *a, **k: pytest.fail("ran a system"))
    assert sq.main() == 0
    out = capsys.readouterr().out
    ratio = sq.statistics.median([0.1 * k for k in range(6)]) / \
        sq.statistics.median([2.0 + k for k in range(6)])
    assert f"tpe / best peer (Ray Tune ASHA): {ratio:.2f}x" in out
    assert "over seed resamples; the target holds in 100% of them" in out
    assert "reached random's final value at 0.25 of random's compute" in out


def test_table_reads_outputs_of_other_seeds_as_one(sq, tmp_path, capsys, monkeypatch):
    """--table A B: the runs of two outputs (other seeds of a task) read as one table; the
    real task's best known is the better of theirs; a seed in both is refused."""
    import json

    def output(seeds, best):
        runs = [{"system": name, "task": "hgb", "seed": k, "final": v, "spent": 100 + k,
                 "budget": 100 + k, "wall_s": 0.0, "first_full": 100, "trace": []}
                for k in seeds for name, v in ((sq.RANDOM, 0.5), (sq.TPE, 0.2 + k / 100),
                                               ("Ray Tune ASHA", 0.9))]
        res = sq.analyse(runs, ["hgb"], [sq.RANDOM, sq.TPE, "Ray Tune ASHA"], {"hgb": best})
        return {"runs": runs, "results": res, "config": {"tasks": {"hgb": {
            "seeds": len(seeds), "first_seed": seeds[0], "trials": 10, "budget": 0}}}}

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(output([0, 1, 2], 0.1)))
    b.write_text(json.dumps(output([3, 4], 0.05)))
    monkeypatch.setattr(sys, "argv", ["search_quality.py", "--table", str(a), str(b)])
    assert sq.main() == 0
    out = capsys.readouterr().out
    assert "hgb: 5 seeds (0-4)" in out and "(median 102 units)" in out
    assert "best known 0.05" in out
    tpe = sq.statistics.median([0.2 + k / 100 for k in range(5)]) - 0.05
    assert f"{tpe / (0.9 - 0.05):.2f}x median regret" in out
    assert "reached random's final value" not in out  # runs without traces cannot tell it
    monkeypatch.setattr(sys, "argv", ["search_quality.py", "--table", str(a), str(a)])
    with pytest.raises(SystemExit, match="seed 0 is in two outputs"):
        sq.main()


def test_a_configuration_outside_the_space_fails_its_trial(sq):
    """A peer that proposes a value outside the space (Syne Tune's BOHB gave HGB
    max_leaf_nodes 1) gets a failed trial, the worst result, not a crashed benchmark."""
    require_module("sklearn", "bench")
    task = sq.make_task("hgb")
    hp = {"learning_rate": 0.1, "max_leaf_nodes": 1, "min_samples_leaf": 5,
          "l2_regularization": 0.01, "max_features": 0.5, "max_bins": 63}
    assert task.curve(hp, 4) == math.inf and task.curve(hp, 64) == math.inf
    assert task.curve(dict(hp, max_leaf_nodes=2), 4) < math.inf

"""``asha-hpc simulate``: JSON keys, utilization, what-if rows, replayed curves, bad curve files."""
import json

import pytest
import yaml

from asha_hpc.cli import main
from asha_hpc.config import load_config
from asha_hpc.errors import AshaError
from asha_hpc.simulate import gpus_per_trial, interpolate, load_curves

CONFIG = {
    "name": "simtest", "entrypoint": "model:train",
    "searcher": {"name": "adaptive_asha", "metric": "val_loss", "max_length": {"epochs": 16},
                 "max_trials": 40, "max_concurrent_trials": 8, "mode": "standard", "divisor": 4},
    "hyperparameters": {"lr": {"type": "log", "minval": -4, "maxval": -1, "base": 10},
                        "width": {"type": "int", "minval": 16, "maxval": 64}},
    "reproducibility": {"experiment_seed": 3},
    "slurm": {"gpus_per_node": 4},
}


def write_config(tmp_path, **searcher):
    cfg = json.loads(json.dumps(CONFIG))
    cfg["searcher"].update(searcher)
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def simulate_json(capsys, *args):
    assert main(["simulate", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_keys_and_measures(tmp_path, capsys):
    d = simulate_json(capsys, write_config(tmp_path), "--workers", 8, "--startup-seconds", 20,
                      "--queue-wait-seconds", 5, "--unit-seconds", 30)
    for k in ("makespan_s", "worker_hours", "gpu_hours", "utilization", "units_trained",
              "time_to_best_s", "best_metric", "trials", "trials_per_rung", "what_if", "runs",
              "workers", "gpus_per_trial", "curves", "repeats", "seeds", "wall_s"):
        assert k in d, k
    assert d["workers"] == 8 and d["unit_seconds"] == 30 and d["startup_seconds"] == 20
    assert d["queue_wait_seconds"] == 5 and d["curves"] == "synthetic"
    assert d["gpus_per_trial"] == 4
    u = d["utilization"]["median"]
    assert 0 < u <= 1
    assert d["gpu_hours"]["median"] == pytest.approx(4 * d["worker_hours"]["median"])
    assert d["trials"]["median"] == 40
    assert 0 < d["time_to_best_s"]["median"] <= d["makespan_s"]["median"]
    # the lowest rung holds a result of every trial; higher rungs fewer
    counts = [r["completed"] for r in d["trials_per_rung"]]
    assert counts[0] >= counts[-1] > 0
    run = d["runs"][0]
    assert run["worker_hours"] * 3600 <= 8 * run["makespan_s"] + 1e-6


def test_a_metric_to_maximise_gets_a_rising_synthetic_curve(tmp_path, capsys):
    """``smaller_is_better: false`` (an accuracy): the synthetic curve was a loss, so the
    simulated best "accuracy" was above 1 and every trial got worse with training."""
    from asha_hpc.backends.simulated import synthetic_curve, synthetic_score

    p = write_config(tmp_path, metric="mean_accuracy", smaller_is_better=False)
    for how in ((), ("--curves", "synthetic")):
        d = simulate_json(capsys, p, "--workers", 8, *how)
        assert 0 < d["best_metric"]["median"] < 1
    hp = {"lr": 0.01, "width": 32}
    assert synthetic_score(hp, 1) < synthetic_score(hp, 4) < synthetic_score(hp, 16)
    others = [{"lr": 10 ** -(1 + i / 7), "width": 16 + i} for i in range(20)]
    by_loss = sorted(range(20), key=lambda i: synthetic_curve(others[i], 8))
    assert sorted(range(20), key=lambda i: -synthetic_score(others[i], 8)) == by_loss


def test_utilization_is_one_with_one_worker(tmp_path, capsys):
    p = write_config(tmp_path, max_concurrent_trials=4)
    cfg = yaml.safe_load(p.read_text())
    cfg["local"] = {"workers": 0}  # a job per segment: a warm worker waits between segments
    p.write_text(yaml.safe_dump(cfg))
    d = simulate_json(capsys, p, "--workers", 1, "--no-what-if")
    # one worker, more work queued than it can take: always busy (up to the float sums)
    assert d["utilization"]["median"] == pytest.approx(1.0, abs=1e-9)
    assert d["what_if"] == [d["what_if"][0]] and d["what_if"][0]["change"] == "as configured"


def test_what_if_rows(tmp_path, capsys):
    d = simulate_json(capsys, write_config(tmp_path), "--workers", 8)
    changes = [r["change"] for r in d["what_if"]]
    assert changes == ["as configured", "workers 0 (a job per segment)",
                       "workers 8 (warm workers)", "mode aggressive", "mode conservative",
                       "divisor 3", "divisor 5", "max_trials 20 (x0.5)", "max_trials 80 (x2)"]
    for r in d["what_if"]:
        assert r["makespan_s"] > 0 and 0 < r["utilization"] <= 1 and r["gpu_hours"] > 0
    by = {r["change"]: r for r in d["what_if"]}
    assert by["max_trials 20 (x0.5)"]["trials"] == 20 and by["max_trials 80 (x2)"]["trials"] == 80
    assert by["max_trials 80 (x2)"]["gpu_hours"] > by["as configured"]["gpu_hours"]


def test_async_halving_has_no_mode_rows(tmp_path, capsys):
    d = simulate_json(capsys, write_config(tmp_path, name="async_halving", num_rungs=3,
                                           divisor=3), "--workers", 4)
    changes = [r["change"] for r in d["what_if"]]
    assert changes == ["as configured", "workers 0 (a job per segment)",
                       "workers 4 (warm workers)", "divisor 4", "divisor 5",
                       "max_trials 20 (x0.5)", "max_trials 80 (x2)"]


def test_repeats_give_median_and_spread(tmp_path, capsys):
    d = simulate_json(capsys, write_config(tmp_path), "--workers", 8, "--repeats", 3, "--no-what-if")
    assert d["seeds"] == [3, 4, 5] and len(d["runs"]) == 3
    for k in ("makespan_s", "gpu_hours", "utilization", "best_metric"):
        s = d[k]
        assert s["min"] <= s["median"] <= s["max"]
    assert d["makespan_s"]["min"] < d["makespan_s"]["max"]  # other seeds, other noise


def test_text_output(tmp_path, capsys):
    assert main(["simulate", str(write_config(tmp_path)), "--workers", "16"]) == 0
    out = capsys.readouterr().out
    for s in ("makespan", "GPU-hours (x4 per trial)", "worker utilization", "trials per rung",
              "what if", "mode aggressive", "time to the final best",
              "note: the searcher keeps at most 8 trials in flight"):
        assert s in out, s


def test_curves_file_is_replayed(tmp_path, capsys):
    curves = tmp_path / "curves.jsonl"
    curves.write_text(
        json.dumps({"hparams": {"lr": 0.1}, "curve": {"1": 2.0, "4": 1.0, "16": 0.5}}) + "\n\n"
        + json.dumps({"hparams": {"lr": 0.01}, "curve": [[1, 1.5], [16, 0.25]]}) + "\n"
        + json.dumps({"curve": {"2": 3.0, "16": 0.75}}) + "\n")
    d = simulate_json(capsys, write_config(tmp_path), "--workers", 8, "--curves", curves,
                      "--no-what-if")
    assert d["curves"] == str(curves) and d["curves_count"] == 3
    # every top-rung result is the last point of one of the curves
    assert d["best_metric"]["median"] == 0.25


def test_an_experiment_folders_results_are_replayed(tmp_path, capsys):
    """``--curves runs/q1``: a finished search's trials, each with its results at the lengths
    it reached. The same config and seed draw the same trials, so the simulated search ends
    with the real one's best."""
    from asha_hpc.views.status import open_experiment

    cfg = write_config(tmp_path, max_trials=12)
    exp = tmp_path / "q1"
    assert main(["run", str(cfg), "--exp-dir", str(exp), "--backend", "simulated",
                 "--report-every", "0"]) == 0
    _, _, _, st = open_experiment(exp)
    capsys.readouterr()
    d = simulate_json(capsys, cfg, "--workers", 8, "--curves", exp, "--no-what-if")
    assert d["curves"] == str(exp) and d["curves_count"] == 12
    assert d["best_metric"]["median"] == pytest.approx(st.ranked()[0].metric)
    assert main(["simulate", str(cfg), "--workers", "8", "--curves", str(tmp_path)]) != 0
    assert "a folder, but no experiment's: --curves takes a curves file (JSON lines) or an " \
        "experiment folder" in capsys.readouterr().err


def test_replayed_curves_interpolate_and_match_hparams(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text(json.dumps({"hparams": {"a": 1}, "curve": {"10": 1.0, "20": 0.0}}) + "\n"
                 + json.dumps({"hparams": {"a": 2}, "curve": {"1": 5.0}}) + "\n")
    c = load_curves(str(p))
    assert c({"a": 1}, 15) == 0.5 and c({"a": 1}, 1) == 1.0 and c({"a": 1}, 99) == 0.0
    assert c({"a": 2}, 7) == 5.0
    assert {c.pick({"a": 3, "i": i}, 0) for i in range(50)} == {0, 1}  # others: drawn
    assert c.pick({"a": 3}, 0) == c.pick({"a": 3}, 0)
    assert interpolate([1, 4], [4.0, 1.0], 2) == 3.0


@pytest.mark.parametrize("lines, line_no, words", [
    (['{"curve": {"1": 1.0}}', '{"curve": {"1": 1.0'], 2, "not valid JSON"),
    (['{"hparams": {}}'], 1, "missing 'curve'"),
    (['{"curve": {"1": 1.0}}', '', '{"curve": {"zero": 1.0}}'], 3, "not an integer >= 1"),
    (['{"curve": {"0": 1.0}}'], 1, "not an integer >= 1"),
    (['{"curve": {"4": "x"}}'], 1, "must be a finite number"),
    (['[1, 2]'], 1, "expected a JSON object"),
    (['{"curve": {}}'], 1, "is empty"),
    (['{"curve": 3}'], 1, "'curve' must be"),
    (['{"hparams": [1], "curve": {"1": 1}}'], 1, "'hparams' must be an object"),
])
def test_bad_curves_file_names_file_and_line(tmp_path, capsys, lines, line_no, words):
    curves = tmp_path / "bad.jsonl"
    curves.write_text("\n".join(lines) + "\n")
    rc = main(["simulate", str(write_config(tmp_path)), "--workers", "4", "--curves", str(curves)])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"{curves}:{line_no}:" in err and words in err
    assert "Traceback" not in err


def test_missing_or_empty_curves_file(tmp_path, capsys):
    assert main(["simulate", str(write_config(tmp_path)), "--workers", "4", "--curves",
                 str(tmp_path / "nope.jsonl")]) == 1
    assert "no such curves file" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(AshaError, match="no curves"):
        load_curves(str(empty))


def test_bad_options(tmp_path, capsys):
    cfg = write_config(tmp_path)
    assert main(["simulate", str(cfg), "--workers", "0"]) == 1
    assert "--workers must be >= 1" in capsys.readouterr().err
    assert main(["simulate", str(cfg), "--workers", "2", "--unit-seconds", "0"]) == 1
    assert "--unit-seconds" in capsys.readouterr().err
    assert main(["simulate", str(cfg)]) == 1
    assert "simulate needs the number of GPU slots: --workers N, or simulated.workers in the " \
           "config" in capsys.readouterr().err


def test_the_configs_simulated_workers_are_the_default(tmp_path, capsys):
    raw = dict(CONFIG, simulated={"workers": 3})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    assert simulate_json(capsys, tmp_path / "c.yaml", "--no-what-if")["workers"] == 3
    assert simulate_json(capsys, tmp_path / "c.yaml", "--no-what-if", "--workers", "5")["workers"] == 5


def test_gpus_per_trial(tmp_path):
    base = json.loads(json.dumps(CONFIG))
    cases = [({"slurm": {"gpus_per_node": 2, "nodes": 2}}, 4),
             ({"slurm": {}, "local": {"gpus": 4, "gpus_per_trial": 2}}, 2),
             ({"slurm": {}, "local": {"gpus": 0}}, 1)]
    for extra, want in cases:
        cfg = dict(base, **extra)
        p = tmp_path / "g.yaml"
        p.write_text(yaml.safe_dump(cfg))
        assert gpus_per_trial(load_config(p)) == want, extra


@pytest.mark.parametrize("how, pool", [("fail", 0), ("die", 4)])
def test_a_broken_node_shows_in_failed_attempts_and_nodes_excluded(tmp_path, capsys, how, pool):
    """`simulated: {nodes, broken_nodes, broken_how}` in the config: what the broken node cost
    (failed segments, jobs that ended without a result, pool jobs that died before their code)
    and that it was excluded; none of either on a healthy cluster."""
    cfg = json.loads(json.dumps(CONFIG))
    cfg["simulated"] = {"nodes": 8, "broken_nodes": 1, "broken_how": how, "pool": pool,
                        "startup_seconds": 20}
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(cfg))
    d = simulate_json(capsys, p, "--workers", 8, "--no-what-if")
    assert d["nodes_excluded"]["median"] == 1
    assert d["failed_attempts"]["median"] >= 3  # the evidence it took
    assert main(["simulate", str(p), "--workers", "8", "--no-what-if"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert any(line.split() == ["nodes", "excluded", "1"] for line in text), text
    cfg["simulated"]["broken_nodes"] = 0
    p.write_text(yaml.safe_dump(cfg))
    d = simulate_json(capsys, p, "--workers", 8, "--no-what-if")
    assert d["nodes_excluded"]["median"] == 0 and d["failed_attempts"]["median"] == 0


def test_debug_goes_before_or_after_the_command(tmp_path, capsys):
    """`asha-hpc plan x.yaml --debug` was "unrecognized arguments: --debug"."""
    from asha_hpc.cli import build_parser

    cfg = str(write_config(tmp_path))
    for argv in (["--debug", "plan", cfg], ["plan", cfg, "--debug"]):
        assert build_parser().parse_args(argv).debug is True
    assert build_parser().parse_args(["plan", cfg]).debug is False
    assert main(["plan", cfg, "--debug"]) == 0
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(dict(CONFIG, searcher={"name": "random"})))
    for argv in (["plan", str(tmp_path / "bad.yaml")], ["plan", str(tmp_path / "bad.yaml"), "--debug"]):
        assert main(argv) == 2  # an invalid config, with its traceback or without

"""plan(): the JSON keys the CLI prints, the preview, and the text rendering."""
import json

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

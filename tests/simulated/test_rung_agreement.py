"""``asha-hpc status`` says how the trials promoted from each rung rank at it and at the next,
and warns when a shorter rung's order says little about the longer one's (early stopping there,
and a model sampler fitted on it, may then drop the configurations that would win)."""
from __future__ import annotations

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from asha_hpc.config import parse_config
from asha_hpc.master.loop import Master
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.views.htmlreport import render
from asha_hpc.views.status import AGREE_HIGH, AGREE_LOW, AGREE_MIN_TRIALS, rank_correlation, status_dict
from asha_hpc.views.text import agreement_lines, render_status_text

from helpers import cli

# A learning rate that wins the first epochs and overfits by the last, and one that does not.
CURVES = '''
def overfits(hp, length, seed):
    best = 0.9 if length <= 4 else 0.1
    return (hp["lr"] - best) ** 2 + 1.0 / length


def steady(hp, length, seed):
    return (hp["lr"] - 0.3) ** 2 + 1.0 / length
'''


def _search(tmp_path, curve, full=False, mode="standard", trials=120):
    (tmp_path / "curves.py").write_text(CURVES)
    cfg = parse_config({
        "name": "agreement", "entrypoint": "unused:train",
        "searcher": {"name": "adaptive_asha", "metric": "val_loss", "max_length": {"epochs": 64},
                     "max_trials": trials, "max_concurrent_trials": 8, "divisor": 4,
                     "mode": mode},
        "hyperparameters": {"lr": {"type": "double", "minval": 0, "maxval": 1}},
        "reproducibility": {"experiment_seed": 2}, "backend": "simulated",
        "simulated": {"unit_seconds": 10, "failure_rate": 0.0, "curve": f"curves:{curve}"}},
        str(tmp_path))
    exp = ExpDir.create(tmp_path / curve)
    st_ = Master(exp, cfg, progress=lambda s: None).run()
    assert st_.lifecycle == "completed"
    return (exp, cfg, st_) if full else status_dict(exp, cfg, st_)


def test_a_rung_that_ranks_against_the_next_is_named_with_what_to_do(tmp_path):
    d = _search(tmp_path, "overfits")
    rows = {(r["from"], r["to"]): r for r in d["rung_agreement"]}
    assert rows[(1, 4)]["rank_corr"] > 0.9  # both short: the same order
    assert rows[(4, 16)]["trials"] >= AGREE_MIN_TRIALS and rows[(4, 16)]["rank_corr"] < 0
    text = render_status_text(d)
    assert "promoted trials, rank correlation of their val_loss at a rung and the next: " in text
    assert ("results at 4 epochs rank the promoted trials unlike those at 16: stopping trials "
            "at 4 may drop") in text and "searcher.max_rungs" in text
    page = render(d, [], {}, {}, "svg")  # the HTML report says the same
    assert '<p id="rung-agreement">promoted trials, rank correlation' in page
    assert "unlike those at 16" in page
    assert "mode: aggressive" not in text  # the brackets that start longer are the hedge here


def test_rungs_that_agree_are_shown_without_a_warning(tmp_path):
    d = _search(tmp_path, "steady")
    shown = [r for r in d["rung_agreement"] if r["rank_corr"] is not None]
    assert shown and all(r["rank_corr"] > 0.9 for r in shown)
    assert all(r["rank_corr"] is None for r in d["rung_agreement"]
               if r["trials"] < AGREE_MIN_TRIALS)
    text = render_status_text(d)
    assert "rank correlation of their val_loss" in text and "unlike those at" not in text
    # too few trials reached 64 epochs to judge the last pair: no advice on the mode yet
    assert [r["rank_corr"] for r in d["rung_agreement"] if (r["from"], r["to"]) == (16, 64)] \
        == [None]
    assert "searcher.mode" not in text


def test_rungs_that_all_agree_suggest_one_bracket(tmp_path):
    d = _search(tmp_path, "steady", trials=400)
    rows = {(r["from"], r["to"]): r["rank_corr"] for r in d["rung_agreement"]}
    assert all(rows[p] > 0.9 for p in ((1, 4), (4, 16), (16, 64)))
    assert len(d["brackets"]) > 1  # every rung agrees, and the search hedges: say so
    text = render_status_text(d)
    assert ("results at every rung rank the promoted trials as the next does: searcher.mode: "
            "aggressive (one bracket, every trial starting at 1 epochs) fits more trials in "
            "the same compute (raise max_trials, or set max_compute, to spend it)") in text
    assert "searcher.mode: aggressive" in render(d, [], {}, {}, "svg")
    d["bracket_rungs"] = [4, 3, 2]  # brackets given explicitly: name that key instead
    assert ("searcher.bracket_rungs: [4] (one bracket, every trial starting at 1 epochs)"
            in render_status_text(d))


def test_no_mode_advice_for_a_search_that_is_already_one_bracket(tmp_path):
    d = _search(tmp_path, "steady", mode="aggressive", trials=400)
    assert len(d["brackets"]) == 1
    assert [(r["from"], r["to"]) for r in d["rung_agreement"]] == [(1, 4), (4, 16), (16, 64)]
    for r in d["rung_agreement"]:
        r["rank_corr"] = 1.0  # as if every pair were judged alike
    text = render_status_text(d)
    assert "rank correlation of their val_loss" in text and "searcher.mode" not in text


def test_no_mode_advice_until_every_pair_of_rungs_is_judged(tmp_path):
    d = _search(tmp_path, "steady", trials=400)
    for r in d["rung_agreement"]:
        if (r["from"], r["to"]) == (16, 64):
            r["rank_corr"] = None  # too few trials at 64 so far
    assert "searcher.mode" not in render_status_text(d)
    for r in d["rung_agreement"]:
        if (r["from"], r["to"]) == (16, 64):
            r["rank_corr"] = 0.5  # judged, and not alike enough
    assert "searcher.mode" not in render_status_text(d)


@pytest.mark.parametrize("curve,trials,says", [
    ("overfits", 120, "asha-hpc: results at 4 epochs rank the promoted trials unlike those at 16"),
    ("steady", 400, "asha-hpc: results at every rung rank the promoted trials as the next does: "
                    "searcher.mode: aggressive"),
    ("steady", 120, None),  # every judged pair agrees, the last is not judged: nothing to say
])
def test_run_ends_with_the_advice_status_gives(tmp_path, curve, trials, says):
    """A user who never opens ``status`` reads the advice where the search ends."""
    (tmp_path / "curves.py").write_text(CURVES)
    (tmp_path / "search.yaml").write_text(yaml.safe_dump({
        "name": "agreement", "entrypoint": "unused:train",
        "searcher": {"name": "adaptive_asha", "metric": "val_loss", "max_length": {"epochs": 64},
                     "max_trials": trials, "max_concurrent_trials": 8, "divisor": 4},
        "hyperparameters": {"lr": {"type": "double", "minval": 0, "maxval": 1}},
        "reproducibility": {"experiment_seed": 2}, "backend": "simulated",
        "simulated": {"unit_seconds": 10, "failure_rate": 0.0, "curve": f"curves:{curve}"}}))
    r = cli("run", tmp_path / "search.yaml", "--exp-dir", tmp_path / "exp", "--quiet",
            cwd=tmp_path)
    ending = r.stderr[r.stderr.index("asha-hpc: done. best trial"):].splitlines()
    correlations = [x for x in ending if "rank correlation of their val_loss" in x]
    if says is None:
        assert not correlations and "rank the promoted trials" not in r.stderr, r.stderr
        return
    assert len(correlations) == 1 and correlations[0].startswith("asha-hpc: promoted trials")
    (advice,) = [x for x in ending if "rank the promoted trials" in x]
    assert advice.startswith(says), ending
    status = cli("status", tmp_path / "exp").stdout  # the same words as status's
    assert advice.removeprefix("asha-hpc: ") in status


def test_rank_correlation_known_values():
    assert rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties take their mean rank: ranks (0.5, 0.5, 2, 3) against (0, 1, 2, 3)
    assert rank_correlation([5, 5, 6, 7], [1, 2, 3, 4]) == pytest.approx(0.9486833, abs=1e-6)
    assert rank_correlation([3, 3, 3], [1, 2, 3]) == 0.0  # no order to compare


@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)), min_size=2, max_size=40))
def test_rank_correlation_any_values(pairs):
    a, b = zip(*pairs)
    r = rank_correlation(a, b)
    assert -1.0 - 1e-9 <= r <= 1.0 + 1e-9
    assert r == pytest.approx(rank_correlation(b, a))


def test_the_report_plots_each_trials_rank_at_a_rung_and_the_next(tmp_path):
    from asha_hpc.protocol.journal import read_journal
    from asha_hpc.views.plots import plot_data, svg_panels

    exp, cfg, st_ = _search(tmp_path, "overfits", full=True)
    records = read_journal(exp.root / "journal.jsonl")[0]
    d = plot_data(exp, cfg, st_, records)
    pairs = {(p["from"], p["to"]): p for p in d["agreement"]}
    rows = {(r["from"], r["to"]): r for r in status_dict(exp, cfg, st_)["rung_agreement"]}
    for key, p in pairs.items():  # the same trials and correlation as status
        assert p["trials"] == rows[key]["trials"] == len(p["xs"]) == len(p["ys"])
        assert p["rank_corr"] == rows[key]["rank_corr"]
        assert min(p["xs"]) == 0.0 and max(p["xs"]) == 1.0
    assert pairs[(4, 16)]["rank_corr"] < 0
    svg = svg_panels(d)["agreement"]
    assert svg.count("<circle") == sum(p["trials"] for p in d["agreement"])
    assert "4 vs 16 (" in svg and "rank corr -" in svg
    page = render(status_dict(exp, cfg, st_), [], svg_panels(d), {}, "svg")
    assert 'id="plot-agreement"' in page and "On the dashed diagonal" in page
    from asha_hpc.views.plots import panel_pngs  # matplotlib: in the test extra

    assert panel_pngs(d)["agreement"].startswith(b"\x89PNG")
    # one rung (random search): nothing to compare, no panel
    d["agreement"] = []
    assert "agreement" not in svg_panels(d) and "agreement" not in panel_pngs(d)


RUNGS = [1, 4, 16, 64]
PAIRS = list(zip(RUNGS, RUNGS[1:]))


# the thresholds' edges often, any correlation sometimes
CORR = st.one_of(st.sampled_from([None, AGREE_LOW - 0.01, AGREE_LOW, AGREE_HIGH - 0.01,
                                  AGREE_HIGH, 1.0]), st.floats(-1.0, 1.0))


@given(corrs=st.lists(CORR, min_size=3, max_size=3),
       searcher=st.sampled_from(["adaptive_asha", "async_halving", "random"]),
       brackets=st.integers(1, 4), explicit=st.booleans())
@example(corrs=[1.0, AGREE_HIGH, 0.9], searcher="adaptive_asha", brackets=3, explicit=False)
@example(corrs=[1.0, AGREE_HIGH - 0.01, 0.9], searcher="adaptive_asha", brackets=3,
         explicit=True)
@example(corrs=[1.0, 1.0, None], searcher="adaptive_asha", brackets=3, explicit=False)
@example(corrs=[1.0, 1.0, 1.0], searcher="adaptive_asha", brackets=1, explicit=False)
@example(corrs=[1.0, 1.0, 1.0], searcher="async_halving", brackets=3, explicit=False)
@example(corrs=[1.0, 1.0, 1.0], searcher="adaptive_asha", brackets=2, explicit=True)
def test_the_mode_advice_comes_exactly_when_every_pair_agrees_and_none_is_low(
        corrs, searcher, brackets, explicit):
    """Any correlations, judged or not, any searcher and number of brackets: one line of
    advice exactly when adaptive_asha hedges with more than one bracket, every pair of the
    first bracket's rungs is judged at AGREE_HIGH or more and none is below AGREE_LOW."""
    d = {"metric": "val_loss", "unit": "epochs", "searcher": searcher,
         "bracket_rungs": [4, 3][:brackets] if explicit else None,
         "brackets": [{"rung_lengths": RUNGS[i:]} for i in range(brackets)],
         "rung_agreement": [{"from": a, "to": b, "trials": AGREE_MIN_TRIALS, "rank_corr": c}
                            for (a, b), c in zip(PAIRS, corrs)]}
    text = "\n".join(agreement_lines(d))
    judged = [c for c in corrs if c is not None]
    expected = (searcher == "adaptive_asha" and brackets > 1 and len(judged) == 3
                and all(c >= AGREE_HIGH for c in judged))
    advised = [x for x in text.splitlines() if "one bracket, every trial starting at 1" in x]
    assert len(advised) == int(expected)
    if expected:
        key = "searcher.bracket_rungs: [4]" if explicit else "searcher.mode: aggressive"
        assert key in advised[0]
    if any(c < AGREE_LOW for c in judged):
        assert "rank the promoted trials unlike those at" in text and not advised

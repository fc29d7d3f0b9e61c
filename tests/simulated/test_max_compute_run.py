"""``searcher.max_compute`` through the real master on the simulated backend: the search ends
inside the cap, survives a master killed many times (replay gives the same decisions), and
``status`` says the cap is what it plans to."""
from __future__ import annotations

from asha_hpc.master.state import replay
from asha_hpc.protocol.journal import read_journal
from asha_hpc.testing.chaos import run_chaos
from asha_hpc.testing.invariants import check_invariants
from asha_hpc.views.status import progress

from helpers import sim_cfg


def _capped(cap: int, **sim):
    cfg = sim_cfg(trials=60, **sim)
    cfg.searcher.max_compute = cap
    return cfg


def final_state(cfg, exp):
    recs = read_journal(exp / "journal.jsonl")[0]
    assert check_invariants(cfg, recs) == []
    return replay(cfg, recs)


def test_the_search_ends_inside_its_cap_through_kills(tmp_path):
    free_cfg = _capped(10**9, failure_rate=0.0)
    free = run_chaos(free_cfg, tmp_path / "free", kills=0, seed=1, corrupt=False,
                     total_failpoints=1)
    st_free = final_state(free_cfg, tmp_path / "free" / "exp")
    spent_free = sum(t.length for t in st_free.trials.values())
    cap = spent_free // 2
    cfg = _capped(cap, failure_rate=0.0)
    rep = run_chaos(cfg, tmp_path / "cap", kills=12, seed=1)
    assert free.lifecycle == rep.lifecycle == "completed"
    assert rep.violations == [] and rep.results_lost == 0 and rep.duplicated == 0
    st = final_state(cfg, tmp_path / "cap" / "exp")
    spent = sum(t.length for t in st.trials.values())
    assert cap // 2 < spent <= cap
    assert len(st.trials) < len(st_free.trials)  # fewer trials, to stay inside it
    p = progress(cfg, st, [])
    assert p["capped"] and p["units_preview"] > cap
    assert p["units_done"] == spent


def test_failures_and_retries_keep_the_search_whole(tmp_path):
    cfg = _capped(700, failure_rate=0.1)
    rep = run_chaos(cfg, tmp_path, kills=8, seed=2)
    assert rep.lifecycle == "completed" and rep.violations == []
    st = final_state(cfg, tmp_path / "exp")
    assert st.searcher.done
    # a retry trains its segment again and is never refused, but the lengths the trials
    # reached (each segment once) stay inside the cap
    assert 350 < sum(t.length for t in st.trials.values()) <= 700

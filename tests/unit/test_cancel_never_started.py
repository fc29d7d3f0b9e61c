"""A cancel journals the results that came in first, and those make the searcher create new
trials; such a trial (or one still waiting for a free slot) never had a job. It is no trial
of the search: not listed, not counted as cancelled; status says how many there were."""
from asha_hpc.config import parse_config
from asha_hpc.master.state import CANCELLED, replay
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.views.status import export_rows, status_dict
from asha_hpc.views.text import render_status_text

CFG = parse_config({"name": "s", "entrypoint": "m:f",
                    "searcher": {"name": "random", "metric": "m", "max_length": 4,
                                 "max_trials": 6, "max_concurrent_trials": 2},
                    "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}}},
                   "/tmp")


def test_trials_never_given_a_job_are_not_listed_as_cancelled(tmp_path):
    recs = [{"kind": "init"},
            {"kind": "intent", "trial": 1, "segment": 0, "attempt": 0},
            {"kind": "intent", "trial": 2, "segment": 0, "attempt": 0},
            {"kind": "started", "trial": 2, "segment": 0, "attempt": 0},
            # journaled by the cancel before it cancels: the searcher creates trial 3
            {"kind": "result", "trial": 1, "segment": 0, "attempt": 0, "status": "completed",
             "length": 4, "metrics": {"m": 0.5}},
            {"kind": "cancelled"}]
    before = replay(CFG, recs[:-1])
    assert 3 in before.trials and before.trials[3].status == "queued"
    st = replay(CFG, recs)
    assert sorted(st.trials) == [1, 2] and st.trials[2].status == CANCELLED
    assert st.never_started == 1 and st.counts()["cancelled"] == 1 and st.counts()["total"] == 2
    assert [r["trial_id"] for r in export_rows(st)] == [1, 2]
    text = render_status_text(status_dict(ExpDir.create(tmp_path / "e"), CFG, st, recs))
    assert ("1 cancelled (1 more the search had created was never started: not listed)"
            in text), text

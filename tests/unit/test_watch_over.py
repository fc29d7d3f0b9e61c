"""When watching a search can end (``asha_hpc.watch`` and ``status --watch``): a search over,
or one that started and no master runs nor waits in the queue to. A folder whose master has
made it and not yet started the search reads as "stopped" (no master holds the lease yet) but
has not started: a `watch` called right after the master was launched must go on there."""
from test_failed_attempts_text import CFG, attempts

from asha_hpc.master.state import replay
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.views.status import status_dict
from asha_hpc.views.text import watch_over


def test_a_folder_whose_search_has_not_started_is_watched_on(tmp_path):
    exp = ExpDir.create(tmp_path / "e")
    made = status_dict(exp, CFG, replay(CFG, []), [])  # the config written, nothing journaled
    assert made["state"] == "stopped" and made["started"] is False
    assert not watch_over(made, stopped_too=True)
    recs = attempts("error")[:2]  # started: a segment under way, no master now
    stopped = status_dict(exp, CFG, replay(CFG, recs), recs)
    assert stopped["state"] == "stopped" and stopped["started"] is True
    assert watch_over(stopped, stopped_too=True) and not watch_over(stopped)
    assert not watch_over(dict(stopped, master_job={"job_id": "7"}), stopped_too=True)


def test_a_search_over_or_a_master_job_that_ended_ends_any_watch():
    for state in ("completed", "cancelled", "failed", "ended"):
        assert watch_over({"state": state})
    assert not watch_over({"state": "running", "started": True}, stopped_too=True)
    assert not watch_over({"state": "submitted"}, stopped_too=True)

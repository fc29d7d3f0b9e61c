"""queue.json across masters: a resumed master rewrites what the one before it left (jobs that
no longer pend are not shown as pending) and keeps how long each job has pended for the same
reason, instead of starting the count again."""
from __future__ import annotations

from asha_hpc.backends.base import WAITS, JobState, Pending
from asha_hpc.backends.simulated import SimulatedBackend
from asha_hpc.launch import create_experiment
from asha_hpc.master.loop import Master
from asha_hpc.protocol.queue import Queue, QueuedJob, read_queue, write_queue

from helpers import sim_cfg


class Reasons(SimulatedBackend):
    """Says every job asked about pends for ``reason``."""

    reason = "Priority"

    def pending(self, job_ids):
        return {j: Pending(reason=self.reason, kind=WAITS, means="other jobs come first")
                for j in job_ids}


def _left_behind(exp, reason="Priority", since=1000.0):
    write_queue(exp, Queue(jobs=[QueuedJob(job="777_1", trials=[3], reason=reason, kind=WAITS,
                                           means="other jobs come first", since=since)],
                           submissions_wait=None))


def test_a_resumed_master_does_not_show_what_pended_before_it(tmp_path):
    cfg = sim_cfg(trials=4, failure_rate=0.0)
    exp = create_experiment(cfg, tmp_path / "exp")
    _left_behind(exp)
    st = Master(exp, cfg, backend=SimulatedBackend(exp.root, cfg.simulated),
                progress=lambda s: None).run()
    assert st.lifecycle == "completed"
    after = read_queue(exp)
    assert after is not None and after.jobs == []


def test_a_job_pending_for_the_same_reason_keeps_its_time(tmp_path):
    cfg = sim_cfg(trials=4, failure_rate=0.0)
    exp = create_experiment(cfg, tmp_path / "exp")
    _left_behind(exp, since=1000.0)
    m = Master(exp, cfg, backend=Reasons(exp.root, cfg.simulated), progress=lambda s: None)
    m._see_queue([], {"777_1": JobState.PENDING, "778": JobState.PENDING}, 5000.0)
    q = read_queue(exp)
    assert q is not None
    assert {j.job: j.since for j in q.jobs} == {"777_1": 1000.0, "778": 5000.0}


def test_a_job_pending_for_another_reason_counts_from_now(tmp_path):
    cfg = sim_cfg(trials=4, failure_rate=0.0)
    exp = create_experiment(cfg, tmp_path / "exp")
    _left_behind(exp, reason="Resources", since=1000.0)
    m = Master(exp, cfg, backend=Reasons(exp.root, cfg.simulated), progress=lambda s: None)
    m._see_queue([], {"777_1": JobState.PENDING}, 5000.0)
    q = read_queue(exp)
    assert q is not None and [(j.reason, j.since) for j in q.jobs] == [("Priority", 5000.0)]


def test_status_counts_pending_time_on_the_masters_clock(tmp_path):
    """The master runs on a host whose clock is an hour behind this one's: a job it has seen
    pending for 5 minutes shows as pending 5 minutes, and the master as running."""
    import json
    import os
    import time

    from asha_hpc.views.status import open_experiment, status_dict
    from asha_hpc.views.text import render_status_text

    cfg = sim_cfg(trials=4, failure_rate=0.0)
    cfg.backend = "local"  # a wall clock: status counts to now
    exp = create_experiment(cfg, tmp_path / "exp")
    behind = time.time() - 3600
    exp.lease.write_text(json.dumps({"host": "login2", "pid": 7, "token": "a",
                                     "heartbeat": behind, "started": behind - 600}))
    os.utime(exp.lease)  # written just now, by the file system's clock
    write_queue(exp, Queue(jobs=[QueuedJob(job="2282", trials=[1], reason="Priority",
                                           kind=WAITS, means="other jobs come first",
                                           since=behind - 300)], submissions_wait=None))
    e, c, recs, st = open_experiment(exp.root)
    d = status_dict(e, c, st, recs)
    assert d["state"] == "running"
    text = render_status_text(d)
    assert "queue: 1 job(s) pending: Priority 1 (other jobs come first; up to 5m00s)" in text, text

"""The scheduler cannot take jobs for a while (its controller is down, restarting or failing
over): the master keeps the search, waits with a backoff that grows, says so once, and goes on
when submissions go through again. A refusal of the job itself (an invalid partition) still
aborts after three in a row, with the error."""
from __future__ import annotations

import logging

import pytest

from asha_hpc.backends.base import SubmitError
from asha_hpc.backends.simulated import SimulatedBackend
from asha_hpc.cli import main
from asha_hpc.errors import AshaError
from asha_hpc.launch import create_experiment
from asha_hpc.master.loop import JOBS_PROBE_S, SUBMIT_BACKOFF_MAX_S, SUBMIT_BACKOFF_S, Master
from asha_hpc.master.state import replay
from asha_hpc.protocol.journal import read_journal
from asha_hpc.protocol.queue import read_queue
from asha_hpc.testing.invariants import check_invariants
from asha_hpc.views.status import events

from helpers import sim_cfg


class Refusing(SimulatedBackend):
    """Refuses every submission while the virtual clock is inside ``window``."""

    def __init__(self, *a, window=(0.0, 0.0), transient=True, **kw):
        super().__init__(*a, **kw)
        self.window, self.transient, self.refused = window, transient, []

    def submit(self, specs):
        if self.window[0] <= self.clock.t < self.window[1]:
            if len(self.refused) == 1:  # status while the submissions wait
                main(["status", str(self.exp_dir)])
            self.refused.append(self.clock.t)
            raise SubmitError("sbatch: error: Batch job submission failed: Unable to contact "
                              "slurm controller (connect failure)", transient=self.transient)
        return super().submit(specs)


def _search(tmp_path, **kw):
    cfg = sim_cfg(trials=30, failure_rate=0.0)
    exp = create_experiment(cfg, tmp_path / "exp")
    backend = Refusing(exp.root, cfg.simulated, **kw)
    backend.exp_dir = exp.root
    said: list[str] = []
    return cfg, exp, backend, Master(exp, cfg, backend=backend, progress=said.append), said


def test_an_outage_of_the_scheduler_waits_and_the_search_goes_on(tmp_path, caplog, capsys):
    outage = (300.0, 1500.0)  # 20 minutes, from 5 minutes in
    cfg, exp, backend, m, said = _search(tmp_path, window=outage)
    with caplog.at_level(logging.WARNING, logger="asha_hpc"):
        st = m.run()
    shown = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("submissions wait")]
    assert len(shown) == 1 and "the scheduler cannot take jobs, for " in shown[0]
    assert "Unable to contact slurm controller" in shown[0]
    assert shown[0].endswith("the master tries again by itself")
    after = read_queue(exp)
    assert after is not None and after.submissions_wait is None  # cleared once they went through
    assert st.lifecycle == "completed" and len(st.trials) == 30
    recs = read_journal(exp.journal)[0]
    assert check_invariants(cfg, recs) == []
    # tried again after 10 s, then 20, 40, ... up to every 300 s: a handful of tries, not one a poll
    gaps = [b - a for a, b in zip(backend.refused, backend.refused[1:])]
    # (a submission also waits for a free slot: a gap may be longer than its backoff)
    backoff = [min(SUBMIT_BACKOFF_S * 2 ** i, SUBMIT_BACKOFF_MAX_S) for i in range(len(gaps))]
    assert gaps and all(g >= b for g, b in zip(gaps, backoff)), (gaps, backoff)
    assert gaps[-1] <= SUBMIT_BACKOFF_MAX_S + cfg.poll_interval_s
    assert len(backend.refused) <= 10
    warned = [r.getMessage() for r in caplog.records if "cannot take jobs now" in r.getMessage()]
    assert len(warned) == 1 and "running jobs go on" in warned[0]
    [back] = [s for s in said if s.startswith("the scheduler takes jobs again")]
    assert "they waited 2" in back  # about 20 minutes
    # no restart counted for what the scheduler refused, no trial failed
    assert all(t.restarts == 0 for t in st.trials.values())
    failed = [r for r in recs if r["kind"] == "submit_failed"]
    assert failed and all("Unable to contact slurm controller" in r["error"] for r in failed)


def test_a_refusal_of_the_job_itself_aborts_after_three(tmp_path):
    cfg, exp, backend, m, _ = _search(tmp_path, window=(0.0, 1e9), transient=False)
    with pytest.raises(AshaError, match="refused 3 submissions in a row") as e:
        m.run()
    # where to fix it, and the resume that then goes on (a plain one says "already failed")
    assert str(e.value).endswith(
        f"Fix the cause (resume reads the job options from {exp.root / 'experiment.yaml'}: edit "
        f"them there), then `asha-hpc resume {exp.root} --retry-failed`")
    assert len(backend.refused) == 3
    assert replay(cfg, read_journal(exp.journal)[0]).lifecycle == "failed"


def test_a_long_outage_fails_no_trial(tmp_path):
    """A maintenance window of 8 hours: the master tries again every 5 minutes (about 100
    refused submissions of the same trials), and no trial is given up for it."""
    outage = (300.0, 300.0 + 8 * 3600)
    cfg, exp, backend, m, said = _search(tmp_path, window=outage)
    st = m.run()
    failed = {t.id: t.error for t in st.trials.values() if t.status == "failed"}
    assert not failed, (len(failed), next(iter(failed.values())))
    assert st.lifecycle == "completed" and len(st.trials) == 30
    assert len(backend.refused) > 90
    assert all(t.restarts == 0 and t.infra_retries == 0 for t in st.trials.values())
    # the wait is one line in status while it lasts, not a try per trial in its events
    texts = [e["text"] for e in events(read_journal(exp.journal)[0], "loss", n=10_000)]
    assert not [t for t in texts if "submission failed" in t or "retried" in t]
    assert sum("created" in t for t in texts) == 30


class Limited(SimulatedBackend):
    """Takes at most ``most`` of the user's jobs at once, as a QOS's MaxSubmitJobsPerUser does
    (the user's other jobs: ``others``, which end at ``others_end``)."""

    def __init__(self, *a, most=3, others=0, others_end=float("inf"), **kw):
        super().__init__(*a, **kw)
        self.most, self.others, self.others_end = most, others, others_end
        self.ids: list[str] = []
        self.refused: list[int] = []  # batch sizes refused
        self.peak = 0

    def _held(self) -> int:
        mine = sum(1 for s in self.states(self.ids).values() if not s.terminal)
        return mine + (self.others if self.clock.t < self.others_end else 0)

    def submit(self, specs):
        held = self._held()
        if held + len(specs) > self.most:
            self.refused.append(len(specs))
            raise SubmitError("sbatch failed: sbatch: error: QOSMaxSubmitJobPerUserLimit / "
                              "Batch job submission failed: Job violates accounting/QOS policy "
                              "(job submit limit, user's size and/or time limits)", too_many=True)
        ids = super().submit(specs)
        self.ids += ids
        self.peak = max(self.peak, held + len(ids))
        return ids


def _limited(tmp_path, **kw):
    cfg = sim_cfg(trials=24, concurrent=8, failure_rate=0.0)
    exp = create_experiment(cfg, tmp_path / "exp")
    backend = Limited(exp.root, cfg.simulated, **kw)
    said: list[str] = []
    return cfg, exp, backend, Master(exp, cfg, backend=backend, progress=said.append), said


def test_a_limit_on_jobs_at_once_keeps_that_many_submitted(tmp_path):
    """8 trials at once, but the scheduler takes 3 of the user's jobs: the master halves its
    batch until one goes through, keeps 3 submitted and submits more as they end; it says so
    once, counts nothing against the trials, and does not keep knocking."""
    cfg, exp, backend, m, said = _limited(tmp_path, most=3)
    st = m.run()
    assert st.lifecycle == "completed" and len(st.trials) == 24
    assert all(t.restarts == 0 and t.infra_retries == 0 for t in st.trials.values())
    assert backend.peak == 3
    assert backend.refused[:2] == [8, 4]  # halved until a batch fits (2 went through)
    # after it learnt the limit, only a try now and then (one more job every minute at most)
    assert len(backend.refused) <= 2 + backend.clock.t / JOBS_PROBE_S + 1
    [line] = [s for s in said if "takes no more of your jobs at once" in s]
    assert "QOSMaxSubmitJobPerUserLimit" in line and "submits fewer at a time" in line
    recs = read_journal(exp.journal)[0]
    assert check_invariants(cfg, recs) == []


def test_the_search_grows_back_when_the_users_other_jobs_end(tmp_path):
    """The user's 4 other jobs leave room for 2 of this search's 6; once they end (after an
    hour), the search has 6 submitted at once again."""
    cfg, exp, backend, m, said = _limited(tmp_path, most=6, others=4, others_end=3600.0)
    st = m.run()
    assert st.lifecycle == "completed" and len(st.trials) == 24
    assert all(t.restarts == 0 and t.infra_retries == 0 for t in st.trials.values())
    assert backend.peak == 6

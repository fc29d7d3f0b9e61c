"""A job that pends because it asks for more time than its QOS allows, submitted while the
limits could not be read (slurmdbd down): it is not withdrawn then, since nothing says what
to ask for instead. Its reason never changes, so the master judges it again every
TOO_LONG_AGAIN_S with the limits read anew, and once they can be read it is cancelled while
queued and its segment submitted within them; the search completes and counts no retry."""
from __future__ import annotations

from asha_hpc.backends.base import STUCK, Pending, TimeCap
from asha_hpc.backends.simulated import SimulatedBackend
from asha_hpc.config import parse_config
from asha_hpc.launch import create_experiment
from asha_hpc.master.loop import TOO_LONG_AGAIN_S, Master
from asha_hpc.protocol.journal import read_journal
from asha_hpc.testing.invariants import check_invariants

MAX_WALL = 30  # minutes: the QOS's MaxWall
READABLE_AFTER_S = 3600.0  # the limits cannot be read for the first hour


class QosDown(SimulatedBackend):
    """A QOS of MaxWall 30 min that the limits' database cannot tell for the first hour: a job
    asking for more never starts and pends with QOSMaxWallDurationPerJobLimit."""

    reads = 0

    def _node(self, job):
        if (job.spec.timeout_min or 0) > MAX_WALL:
            return None  # never placed: it pends for ever
        return super()._node(job)

    def pending(self, job_ids):
        return {j: Pending(reason="QOSMaxWallDurationPerJobLimit", kind=STUCK,
                           means="it asks for more time than the QOS allows", too_long=True)
                for j in job_ids if (self.jobs[j].spec.timeout_min or 0) > MAX_WALL}

    def time_cap(self, partition=None, qos=None, account=None):
        self.reads += 1
        if self.clock.t < READABLE_AFTER_S:
            return TimeCap(None)
        return TimeCap(MAX_WALL, "QOS debug MaxWall")


def test_a_job_too_long_for_unreadable_limits_is_withdrawn_once_they_can_be_read(tmp_path):
    cfg = parse_config({
        "name": "qosdown", "entrypoint": "unused:train",
        "searcher": {"name": "random", "metric": "loss", "max_length": 4, "max_trials": 4,
                     "max_concurrent_trials": 4},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
        "backend": "simulated", "poll_interval_s": 5,
        "slurm": {"timeout_min": "auto", "first_guess_min": 60},
        "simulated": {"unit_seconds": 10, "duration_noise": 0.0}}, str(tmp_path))
    exp = create_experiment(cfg, tmp_path / "exp")
    backend = QosDown(exp.root, cfg.simulated)
    said: list[str] = []
    m = Master(exp, cfg, backend=backend, progress=said.append)
    assert m.start()
    for _ in range(5000):  # bounded: without the fix the jobs pend for ever
        if not m.step():
            break
        m._sleep(cfg.poll_interval_s)
    m.close()
    st = m.state
    assert st is not None and st.lifecycle == "completed", said
    recs = read_journal(exp.journal)[0]
    assert check_invariants(cfg, recs) == []
    withdrawn = [r for r in recs if r["kind"] == "job_dead" and r.get("withdrawn")]
    assert len(withdrawn) == 4 and not any(r["counts"] for r in withdrawn)
    # not before the limits could be read, and at the first look after that
    assert all(READABLE_AFTER_S <= r["time"] < READABLE_AFTER_S + TOO_LONG_AGAIN_S + 60
               for r in withdrawn), [r["time"] for r in withdrawn]
    assert withdrawn[0]["withdrawn"] == ("it asked for 60 min, more than QOS debug MaxWall 30 min "
                                         "(QOSMaxWallDurationPerJobLimit)")
    intents = [r for r in recs if r["kind"] == "intent"]
    assert [r["timeout_min"] for r in intents[:4]] == [60] * 4
    assert all(r["timeout_min"] <= MAX_WALL for r in intents[4:])
    assert all(t.restarts == 0 and t.infra_retries == 0 for t in st.trials.values())
    # looked again every TOO_LONG_AGAIN_S (and to plan each submission), not at every poll
    assert backend.reads < READABLE_AFTER_S / cfg.poll_interval_s / 5

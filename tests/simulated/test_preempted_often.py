"""A preemptible partition (a scavenger QOS): every job is preempted after one unit of
training, checkpoints and stops. A trial that gets further each time must finish however many
times it is preempted; one that makes no progress at all is given up after MAX_INFRA_RETRIES,
as before, rather than resubmitted for ever."""
from __future__ import annotations

from asha_hpc.backends.simulated import SIM_PREFIX, SimulatedBackend
from asha_hpc.config import parse_config
from asha_hpc.launch import create_experiment
from asha_hpc.master.loop import Master
from asha_hpc.master.state import MAX_INFRA_RETRIES
from asha_hpc.protocol.expdir import INBOX, atomic_write_json
from asha_hpc.protocol.journal import read_journal
from asha_hpc.testing.invariants import check_invariants

LENGTH = 32  # > MAX_INFRA_RETRIES preemptions for a trial that trains one unit each time


class Scavenger(SimulatedBackend):
    """Preempts each job after ``step`` units of its segment (0: before any progress)."""

    step = 1

    def _publish(self, job, spec, extra, broken):
        start = self.progress.setdefault(spec.trial_id, 0)
        if spec.length - start > self.step:
            self.progress[spec.trial_id] = self.trained[spec.trial_id] = start + self.step
            atomic_write_json(self.exp_dir / INBOX / f"{spec.key}.result.json", dict(
                type="result", trial=spec.trial_id, segment=spec.segment, attempt=spec.attempt,
                key=spec.key, status="interrupted", metrics=None, length=None, error=None,
                checkpoint=None, ended=job.end, host="simulated", job_id=SIM_PREFIX + spec.key,
                stop_reason="SIGTERM (preempted)", reached=start + self.step, **extra),
                durable=False)
            return
        super()._publish(job, spec, extra, broken)


def _search(tmp_path, step):
    cfg = parse_config({
        "name": "scavenger", "entrypoint": "unused:train",
        "searcher": {"name": "random", "metric": "loss", "max_length": LENGTH, "max_trials": 3,
                     "max_concurrent_trials": 3},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
        "backend": "simulated", "poll_interval_s": 5,
        "simulated": {"unit_seconds": 10, "duration_noise": 0.0}}, str(tmp_path))
    exp = create_experiment(cfg, tmp_path / "exp")
    backend = Scavenger(exp.root, cfg.simulated)
    backend.progress, backend.step = {}, step
    st = Master(exp, cfg, backend=backend, progress=lambda s: None).run()
    return cfg, exp, st


def test_a_trial_preempted_again_and_again_finishes_while_it_gets_further(tmp_path):
    cfg, exp, st = _search(tmp_path, step=1)
    assert st.lifecycle == "completed"
    assert all(t.status == "completed" and t.length == LENGTH for t in st.trials.values())
    assert all(t.restarts == 0 and t.infra_retries == 0 for t in st.trials.values())
    recs = read_journal(exp.journal)[0]
    assert check_invariants(cfg, recs) == []
    interrupted = [r for r in recs if r["kind"] == "result" and r["status"] == "interrupted"]
    assert len(interrupted) == 3 * (LENGTH - 1) > MAX_INFRA_RETRIES


def test_a_trial_preempted_without_progress_is_given_up(tmp_path):
    cfg, exp, st = _search(tmp_path, step=0)
    assert all(t.status == "failed" and t.infra_retries == MAX_INFRA_RETRIES + 1
               for t in st.trials.values())
    assert all("interrupted (SIGTERM (preempted))" in (t.error or "") for t in st.trials.values())

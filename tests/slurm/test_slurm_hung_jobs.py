"""A trial job frozen on the real Slurm cluster (SIGSTOP: what a hung node leaves; squeue says
R): found by its stopped heartbeat, journaled dead, cancelled, and its trial goes on from a
checkpoint, not from scratch. (Slurm's cancel wakes it with SIGCONT and SIGTERM: it may train
on and checkpoint until KillWait, and the retry may start from there: same trial, later
state.) The master runs in this process with a short hung_after_s."""
from __future__ import annotations

import os
import signal
import time

import pytest

from asha_hpc.master.loop import Master
from asha_hpc.protocol.checkpoints import checkpoint_length, latest_checkpoint
from asha_hpc.protocol.journal import read_journal

from helpers import FREEZABLE_TRAIN
from slurm_helpers import exp_name, in_process, make_experiment

pytestmark = pytest.mark.slurm


def test_a_frozen_slurm_job_is_cancelled_and_its_trial_goes_on(tmp_path, cleanup):
    cfg_path = make_experiment(tmp_path, "hung", searcher={"name": "random", "max_length": 30,
                                                           "max_trials": 1},
                               hung_after_s=12)  # its job beats every 3 s
    (tmp_path / "model.py").write_text(FREEZABLE_TRAIN)
    cleanup[0].append(exp_name(cfg_path))
    cfg, exp, backend = in_process(tmp_path, cfg_path)
    m = Master(exp, cfg, backend=backend, progress=lambda s: None)
    m.start()
    pids = exp.trial_dir(1) / "pids"
    frozen, at = None, None
    deadline = time.time() + 300
    while m.step():
        assert time.time() < deadline, "the search did not end"
        if frozen is None and pids.exists() and latest_checkpoint(exp.checkpoints(1)) is not None:
            frozen = int(pids.read_text().split()[0])
            os.kill(frozen, signal.SIGSTOP)
            at = checkpoint_length(latest_checkpoint(exp.checkpoints(1)))
        time.sleep(cfg.poll_interval_s)
    m.close()
    recs = read_journal(exp.journal)[0]
    (dead,) = [r for r in recs if r["kind"] == "job_dead"]
    assert dead["hung"].startswith("no heartbeat for ") and dead["counts"] is False
    assert m.state.lifecycle == "completed" and m.state.trials[1].length == 30
    starts = [line.split() for line in pids.read_text().splitlines()]
    assert len(starts) == 2 and int(starts[1][1]) >= at > 0
    assert m.state.trials[1].restarts == 0 and m.state.trials[1].infra_retries == 1

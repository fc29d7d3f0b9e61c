"""A training loop written as PyTorch's tutorials write it, with DataLoader worker processes
(``num_workers=2``): a cancel, or Slurm's SIGTERM to every process of the job, must let it
checkpoint where it is. torch's worker dies of a SIGTERM its parent did not send, and the loop
then failed with "DataLoader worker ... is killed by signal: Terminated" before it could look at
``should_stop()``: an error instead of a checkpoint and an interrupted segment."""
import json
import time

import pytest

from helpers import cli, journal, one_trial_training

pytest.importorskip("torch")

# a training loop as PyTorch's tutorials write it, checkpointing when told to stop
TRAIN = '''
def train(trial):
    import os
    (trial.dir / "pgid").write_text(str(os.getpgid(0)))
    model = torch.nn.Linear(8, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = LOADER
    epoch = 0
    if trial.latest_checkpoint is not None:
        epoch = torch.load(trial.latest_checkpoint / "state.pt")["epoch"]
    for segment in trial.segments():
        while epoch < segment.length and not trial.should_stop():
            for x, y in loader:
                loss = torch.nn.functional.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                (trial.dir / "training").touch()
                if trial.should_stop():
                    break
            else:
                epoch += 1
        with trial.save_checkpoint(length=epoch) as path:
            torch.save({"epoch": epoch}, path / "state.pt")
        if epoch < segment.length:
            return
        segment.report(loss=loss.item())
'''

MODEL = '''
import time

import torch
from torch.utils.data import DataLoader, Dataset


class SlowDigits(Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        time.sleep(0.02)
        return torch.randn(8), torch.tensor(i % 2)


''' + TRAIN.replace("LOADER", '''DataLoader(
        SlowDigits(), batch_size=8, shuffle=True, num_workers=2, persistent_workers=True)''')


def _start(tmp_path, max_length=50):
    (tmp_path / "dl_model.py").write_text(MODEL)
    return one_trial_training(tmp_path, {"entrypoint": "dl_model:train"}, max_length)


def _result(exp):
    result = exp / "inbox" / "t00001-s000-a00.result.json"  # sent after the stop
    deadline = time.time() + 60
    while not result.exists():
        assert time.time() < deadline, "the stopped job sent no result"
        time.sleep(0.2)
    return json.loads(result.read_text())


def test_cancel_lets_a_loop_with_dataloader_workers_checkpoint(tmp_path):
    exp, p = _start(tmp_path)
    try:
        cli("cancel", exp)
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    res = _result(exp)
    assert res["status"] == "interrupted" and res["stop_reason"] == "SIGTERM", res
    assert res["error"] is None and res["checkpoint"], res


def test_a_sigterm_to_every_process_of_the_job_is_an_interruption_not_an_error(tmp_path):
    """Slurm's scancel and preemption signal every process of the job, the workers too. torch's
    worker dies of a SIGTERM its parent did not send, and the loop would fail on its next batch
    before it could checkpoint. In a job the workers outlive it: the loop saves where it is,
    the segment is interrupted, counts as no failure, and goes on from that checkpoint."""
    import os
    import signal

    exp, p = _start(tmp_path, max_length=6)  # max_restarts 0: an error would fail the trial for good
    try:
        os.killpg(int((exp / "trials" / "00001" / "pgid").read_text()), signal.SIGTERM)
        p.wait(timeout=300)  # the master goes on: the segment again, to the end
    finally:
        if p.poll() is None:
            p.kill()
    first, last = [r for r in journal(exp) if r["kind"] == "result"]
    assert first["status"] == "interrupted" and first["stop_reason"] == "SIGTERM", first
    assert first["error"] is None and first["checkpoint"], first
    assert last["status"] == "completed"
    err = "".join(f.read_text() for f in (exp / "jobs").glob("*_log.err"))
    assert "DataLoader worker (pid" not in err, err[-2000:]


STARTED_WORKERS = '''
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset


class Shards(Dataset):
    """A dataset a started worker takes a while to unpickle (opening files, a tokenizer)."""

    def __init__(self, mark):
        self.mark = mark

    def __len__(self):
        return 16

    def __getitem__(self, i):
        return torch.randn(8), torch.tensor(i % 2)

    def __setstate__(self, state):
        self.__dict__.update(state)
        Path(self.mark).touch()
        time.sleep(3)


''' + TRAIN.replace("LOADER", '''DataLoader(
        Shards(str(trial.dir / "unpickling")), batch_size=8, num_workers=2,
        multiprocessing_context=CONTEXT)''')


@pytest.mark.parametrize("context", ["spawn"])
def test_a_sigterm_while_started_workers_start_is_an_interruption_too(tmp_path, context):
    """Workers of ``multiprocessing_context="spawn"`` start as new programs: until they run
    torch's worker loop they would have the default SIGTERM, which ends them. Slurm's SIGTERM
    to every process of the job, landing while they start (unpickling the dataset, at each
    epoch without persistent workers), must still be an interruption that checkpoints, not a
    "DataLoader worker exited unexpectedly" error. Not a forkserver's (Python 3.14's default):
    on a loaded machine a worker the server forked still waits for its data when the signal
    comes, and dies of it (loader_workers.py)."""
    import os
    import signal

    (tmp_path / "dl_spawn.py").write_text(STARTED_WORKERS.replace("CONTEXT", repr(context)))
    exp, p = one_trial_training(tmp_path, {"entrypoint": "dl_spawn:train"}, 2,
                                started="unpickling")
    try:
        os.killpg(int((exp / "trials" / "00001" / "pgid").read_text()), signal.SIGTERM)
        p.wait(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
    first, *rest = [r for r in journal(exp) if r["kind"] == "result"]
    assert first["status"] == "interrupted" and first["stop_reason"] == "SIGTERM", first
    assert first["error"] is None and first["checkpoint"], first
    assert rest and rest[-1]["status"] == "completed", rest
    err = "".join(f.read_text() for f in (exp / "jobs").glob("*_log.err"))
    assert "exited unexpectedly" not in err and "DataLoader worker (pid" not in err, err[-2000:]

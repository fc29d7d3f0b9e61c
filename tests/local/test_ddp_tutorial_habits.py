"""A two-rank PyTorch DDP trial (gloo, CPU) written as the DDP tutorial writes it, with the
tutorial's habits that asha_hpc's API does not take: checkpointing on rank 0 only
(``if rank == 0: save`` then ``dist.barrier()``), and reporting on rank 0 only. Each used to
hang the trial until gloo's 30-minute timeout, without a word; each now fails the search at its
first trial, within seconds, saying what to change. The right way trains to the end."""
import pytest
import yaml

from helpers import cli, final_state, journal

pytest.importorskip("torch")

DDP_SCRIPT = '''
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP


def train(trial):
    habit = trial.hparams["habit"]
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    X = torch.randn(64, 4)
    y = X.sum(dim=1, keepdim=True)
    model = nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    epoch = 0
    if trial.latest_checkpoint is not None:
        state = torch.load(trial.latest_checkpoint / "model.pt")
        model.load_state_dict(state["model"])
        epoch = state["epoch"]
    ddp_model = DDP(model)
    for segment in trial.segments():
        while epoch < segment.length:
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(ddp_model(X[rank::2]), y[rank::2])
            loss.backward()
            optimizer.step()
            epoch += 1
            if habit == "raise once" and rank == 1 and not (trial.dir / "raised").exists():
                (trial.dir / "raised").touch()
                raise RuntimeError("CUDA error: an illegal memory access was encountered")
        if habit == "save on rank 0":
            if rank == 0:
                with trial.save_checkpoint() as path:
                    torch.save({"model": model.state_dict(), "epoch": epoch}, path / "model.pt")
            dist.barrier()
        else:
            with trial.save_checkpoint() as path:
                if rank == 0:
                    torch.save({"model": model.state_dict(), "epoch": epoch}, path / "model.pt")
        if habit != "report on rank 0" or rank == 0:
            segment.report(loss=loss.item())
    if habit == "hang as it ends" and rank == 1:
        import time
        time.sleep(600)  # as torch's gloo teardown does now and then once a peer has left
    dist.destroy_process_group()
'''


def experiment(tmp_path, habit, **extra):
    (tmp_path / "ddp_script.py").write_text(DDP_SCRIPT)
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump({
        "name": "ddp", "entrypoint": "ddp_script:train",
        "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": 4, "max_trials": 2,
                     "max_concurrent_trials": 1, "divisor": 2, "max_rungs": 2},
        "hyperparameters": {"habit": habit}, "reproducibility": {"experiment_seed": 1},
        "poll_interval_s": 0.2, "max_restarts": 2,
        "local": {"gpus": [], "max_parallel": 1, "tasks_per_node": 2}, **extra}))
    return path


@pytest.mark.parametrize("habit,says", [
    ("save on rank 0", "rank 1 did not call trial.save_checkpoint() where rank 0 did, but "
                       "passed a collective of rank 0's there"),
    ("report on rank 0", "segment.report() was called on rank 0 but not on rank 1 for the "
                         "segment to length 2: call it on every rank"),
])
def test_a_tutorial_habit_fails_the_search_at_once_with_what_to_change(tmp_path, habit, says):
    exp = tmp_path / "run"
    r = cli("run", experiment(tmp_path, habit), "--exp-dir", exp, check=False, timeout=240)
    assert r.returncode == 1 and says in r.stderr, r.stderr
    cfg, st = final_state(exp)
    assert st.lifecycle == "failed" and says in st.message
    # every trial would fail alike: one attempt, then the search stopped
    results = [r for r in journal(exp) if r["kind"] == "result"]
    assert len(results) == 1 and results[0]["fatal"] and says in results[0]["error"]


@pytest.mark.parametrize("habit", ["every rank", "raise once"])
def test_every_rank_saving_and_reporting_trains_to_the_end(tmp_path, habit):
    """Done right, the search completes. A rank that raises before the script's
    ``destroy_process_group()`` leaves the group behind: the job destroys it, so that the retry
    in the same warm worker can ``init_process_group`` again."""
    exp = tmp_path / "run"
    cli("run", experiment(tmp_path, habit), "--exp-dir", exp, timeout=300)
    cfg, st = final_state(exp)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0
    assert max(t.length for t in st.trials.values()) == 4
    assert [t.restarts for t in st.trials.values()] == [int(habit == "raise once")] * 2


def test_a_rank_that_hangs_after_its_last_segment_exits_and_frees_the_slot(tmp_path):
    """Rank 1 never returns after its segments are over (torch 2.x's gloo teardown hangs now and
    then once rank 0 has left): with one slot, the search used to wait for ever. The rank exits
    after the grace, saying where it was, and the search goes on to the end."""
    exp = tmp_path / "run"
    cli("run", experiment(tmp_path, "hang as it ends",
                          environment_variables={"ASHA_RANK_EXIT_GRACE_S": "3"}),
        "--exp-dir", exp, timeout=300)
    cfg, st = final_state(exp)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0
    assert max(t.length for t in st.trials.values()) == 4
    logs = "".join(p.read_text(errors="replace") for p in (exp / "jobs").glob("*_log.err"))
    assert "if its code has not returned in 3 s" in logs and "Timeout (0:00:03)!" in logs

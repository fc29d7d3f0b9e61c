"""The Core API shim end to end: scripts written as Determined's Core API tutorial writes them
(tests/determined_configs/1_metrics.py ... 4_distributed.py, stages metrics, checkpoints,
hyperparameter search in the 0.38 and the 0.37 style, distributed) run through
``asha-hpc run`` with their Determined configs unchanged; the shim's edges in process."""
from __future__ import annotations

import json
import os
import runpy
from pathlib import Path

import pytest
import yaml

from asha_hpc.cli import main
from asha_hpc.compat import determined as det
from asha_hpc.config import load_config
from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.protocol.journal import read_journal

from conftest import require_module

CONFIGS = Path(__file__).parent.parent / "determined_configs"


def _run(tmp_path: Path, config: Path, capsys) -> Path:
    exp = tmp_path / config.stem
    rc = main(["run", str(config), "--exp-dir", str(exp)])
    err = capsys.readouterr().err
    assert rc == 0, err
    return exp


def _segments(exp: Path):
    """(trial, segment, status, metrics) of every result in the journal."""
    records, _, _ = read_journal(ExpDir(exp).journal)
    return [r for r in records if r.get("kind") == "result"]


def _reports(exp: Path, trial: int):
    out = {}
    for run in sorted((exp / "trials" / f"{trial:05d}" / "runs").iterdir()):
        out[run.name] = [json.loads(x) for x in (run / "report.jsonl").read_text().splitlines()]
    return out


def test_stage_1_metrics(tmp_path, capsys):
    exp = _run(tmp_path, CONFIGS / "core_api_038_single.yaml", capsys)
    (res,) = _segments(exp)
    assert res["status"] == "completed" and res["metrics"] == {"total": 40}
    curve = [json.loads(x) for x in next((exp / "trials/00001/runs").iterdir()).joinpath(
        "metrics.jsonl").read_text().splitlines()]
    assert [p["step"] for p in curve if "train_total" in p.get("metrics", p)] == [10, 20, 30, 40]
    # the validation at the segment's length is its result: one point of the curve, not two
    assert [p["step"] for p in curve if "total" in p["metrics"]] == [40]


def test_stage_2_checkpoints(tmp_path, capsys):
    exp = _run(tmp_path, CONFIGS / "core_api_checkpoints.yaml", capsys)
    (res,) = _segments(exp)
    assert res["metrics"] == {"total": 40}
    (ckpt,) = (exp / "trials/00001/checkpoints").iterdir()
    (stored,) = [p for p in ckpt.iterdir() if p.is_dir()]  # one storage_id: the newest only
    assert stored.joinpath("state").read_text() == "40,40,1"
    assert json.loads(stored.joinpath("metadata.json").read_text())["steps_completed"] == 40
    # best names the storage_id and the folder its files are in (what restore_path opens)
    assert main(["best", str(exp), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["storage_id"] == stored.name and row["load_from"] == str(stored)
    assert main(["best", str(exp)]) == 0
    assert f"storage_id: {stored.name} (load from {stored})" in capsys.readouterr().out


@pytest.mark.slow
def test_stage_3_hpsearch_038_pauses_at_the_rung_and_resumes_from_its_checkpoint(tmp_path, capsys):
    exp = _run(tmp_path, CONFIGS / "core_api_038_adaptive.yaml", capsys)
    results = _segments(exp)
    assert all(r["status"] == "completed" for r in results)
    promoted = sorted({r["trial"] for r in results if r["segment"] == 1})
    assert promoted, "adaptive_asha promoted nobody"
    for tid in promoted:
        runs = _reports(exp, tid)
        first, second = (runs[k] for k in sorted(runs))
        # the first job stopped at the rung (batches 20 reached) after checkpointing there
        assert [x["step"] for x in first if "step" in x and "total" in x["metrics"]] == [10, 20]
        assert [x["reached"] for x in first if "saved" in x][-1] == 20
        # the promoted job resumed from that checkpoint: its first point is batch 30
        steps = [x["step"] for x in second if "step" in x and "total" in x["metrics"]]
        assert steps == [30, 40, 50, 60, 70, 80]
        assert [x["metrics"] for x in second if set(x) == {"metrics"}][0]["batches"] == 80


@pytest.mark.slow
def test_stage_3_hpsearch_037_operations(tmp_path, capsys):
    exp = _run(tmp_path, CONFIGS / "core_api_037_adaptive.yaml", capsys)
    results = _segments(exp)
    assert all(r["status"] == "completed" for r in results)
    top = [r for r in results if r["length"] == 90]
    assert top
    for r in top:  # trained to 90 in all, whatever the path: the score says so
        hp = json.loads((exp / "trials" / f"{r['trial']:05d}" / "hparams.json").read_text())
        s = hp["step_size"]
        assert r["metrics"]["total"] == pytest.approx(90 * s / (1.0 + abs(s - 4)))


def test_a_script_that_fails_after_storing_goes_on_from_its_last_checkpoint(tmp_path, capsys):
    """Determined registers each checkpoint as its ``store_path`` block ends; a restart goes on
    from the newest. A script that stored at batch 20 and then failed (a node lost, a bug hit
    once) is retried from batch 20, not from scratch."""
    script = (CONFIGS / "2_checkpoints.py").read_text().replace(
        "        total += step_size\n",
        "        total += step_size\n"
        "        if batch == 25 and not pathlib.Path('crashed').exists():\n"
        "            pathlib.Path('crashed').touch()\n"
        "            raise RuntimeError('node lost at batch 25')\n")
    assert "node lost" in script
    (tmp_path / "2_checkpoints.py").write_text(script)
    cfg = yaml.safe_load((CONFIGS / "core_api_checkpoints.yaml").read_text())
    cfg["max_restarts"] = 1
    (tmp_path / "crash.yaml").write_text(yaml.safe_dump(cfg))
    exp = _run(tmp_path, tmp_path / "crash.yaml", capsys)
    (first, second) = sorted((exp / "trials/00001/runs").iterdir())
    steps = {run.name: sorted({x["step"] for x in lines if "step" in x})
             for run, lines in zip((first, second), _reports(exp, 1).values())}
    assert steps == {first.name: [10, 20], second.name: [30, 40]}, steps
    (res,) = [r for r in _segments(exp) if r["status"] == "completed"]
    assert res["metrics"] == {"total": 40}


def test_stage_4_distributed(tmp_path, capsys):
    """slots_per_trial 2: the script launches two workers; allgather sums both ranks'
    step_size every batch, the chief alone reports and checkpoints."""
    exp = _run(tmp_path, CONFIGS / "core_api_distributed.yaml", capsys)
    (res,) = _segments(exp)
    hp = json.loads((exp / "trials/00001/hparams.json").read_text())
    assert res["metrics"] == {"total": 30 * 2 * hp["step_size"], "ranks": 2}


@pytest.mark.slow
def test_038_script_in_the_worker_pool(tmp_path, capsys):
    """The same Determined config with a pool of two workers added (the only line changed is
    the user's own choice of a pool): segments go to long-lived workers, the shim is the same."""
    raw = yaml.safe_load((CONFIGS / "core_api_038_adaptive.yaml").read_text())
    raw.update(local={"workers": 2, "max_parallel": 2}, context_dir=str(CONFIGS))
    cfg = tmp_path / "pool.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    exp = _run(tmp_path, cfg, capsys)
    results = _segments(exp)
    assert len({r["trial"] for r in results}) == 8
    assert all(r["status"] == "completed" for r in results)
    assert any(r.get("worker") for r in results)


# ----------------------------------------------------------------------------- in process
@pytest.fixture
def job(tmp_path, monkeypatch):
    """The environment a job gives a command (jobmain._run_command), for trial 3."""
    exp = tmp_path / "exp"
    run = exp / "trials/00003/runs/r0"
    out = run / "checkpoint_out"
    out.mkdir(parents=True)
    (exp / "experiment.yaml").write_text(yaml.safe_dump({
        "searcher": {"name": "adaptive_asha", "metric": "total", "max_length": {"batches": 20},
                     "time_metric": "batches"},
        "reproducibility": {"experiment_seed": 5},
        "data": {"url": "https://example.org/mnist.tgz", "workers": 2}}))
    env = dict(ASHA_EXP_DIR=str(exp), ASHA_TRIAL_ID="3", ASHA_TRIAL_DIR=str(exp / "trials/00003"),
               ASHA_RUN_DIR=str(run), ASHA_SEGMENT="0", ASHA_TARGET_LENGTH="20",
               ASHA_LENGTH_UNIT="batches", ASHA_METRIC="total",
               ASHA_HPARAMS=json.dumps({"step_size": 2}), ASHA_LATEST_CHECKPOINT="",
               ASHA_CHECKPOINT_DIR=str(out), ASHA_REPORT_FILE=str(run / "report.jsonl"),
               ASHA_STOP_FILE=str(run / "STOP"))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return run


def _lines(run: Path):
    p = run / "report.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def test_cluster_info(job):
    info = det.get_cluster_info()
    assert info.trial.trial_id == 3 and info.trial.hparams == {"step_size": 2}
    assert info.trial.experiment_id == "exp" and info.latest_checkpoint is None


def test_off_cluster_is_none(monkeypatch):
    monkeypatch.delenv("ASHA_TRIAL_ID", raising=False)
    assert det.get_cluster_info() is None


def test_stop_file_preempts_without_a_result(job, monkeypatch):
    """Time limit or preemption: the script checkpoints and leaves; no result is sent (the
    segment is continued later from the checkpoint)."""
    (job / "STOP").touch()
    monkeypatch.setattr("sys.argv", ["2_checkpoints.py"])
    runpy.run_path(str(CONFIGS / "2_checkpoints.py"), run_name="__main__")
    lines = _lines(job)
    assert not any(set(x) == {"metrics"} for x in lines)
    (sid,) = [p.name for p in (job / "checkpoint_out").iterdir()]
    assert (job / "checkpoint_out" / sid / "state").read_text() == "10,10,3"


CORE_LOOP = """
import sys, time
from asha_hpc.compat import determined as det

with det.core.init() as core_context:
    for batch in range(1, 200):
        time.sleep(0.05)
        core_context.train.report_training_metrics(steps_completed=batch, metrics={"x": batch})
        if ASKS and core_context.preempt.should_preempt():
            with core_context.checkpoint.store_path({"steps_completed": batch}) as (path, sid):
                (path / "state").write_text(str(batch))
            sys.exit(0)
"""


@pytest.mark.parametrize("asks", [True, False], ids=["asks", "never asks"])
def test_slurms_sigterm_to_the_script_preempts_a_script_that_asks(job, tmp_path, asks):
    """Slurm's scancel (a cancel, a preemption) sends SIGTERM to the script's own process
    too: a script that asks ``should_preempt()`` is told to stop, checkpoints and exits 0; one
    that never asks ends as SIGTERM's default would (``kill`` still stops it)."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "loop.py"
    script.write_text(f"ASKS = {asks}\n" + CORE_LOOP)
    p = subprocess.Popen([sys.executable, str(script)])
    deadline = time.monotonic() + 60
    while not any("step" in x for x in _lines(job)) and time.monotonic() < deadline:
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=60)
    lines = _lines(job)
    assert not any(set(x) == {"metrics"} for x in lines)  # no result: the segment goes on later
    if not asks:
        assert rc == -signal.SIGTERM
        return
    assert rc == 0
    (sid,) = [p for p in (job / "checkpoint_out").iterdir()]
    stopped_at = int((sid / "state").read_text())
    assert 1 <= stopped_at == max(x["step"] for x in lines if "step" in x) < 199


def test_restore_from_the_latest_storage_id(job, monkeypatch, tmp_path):
    """A promoted trial gets its newest storage_id back and resumes there."""
    with det.core.init() as ctx:
        with ctx.checkpoint.store_path({"steps_completed": 10}) as (path, first):
            (path / "w").write_text("old")
        with ctx.checkpoint.store_path({"steps_completed": 20}) as (path, second):
            (path / "w").write_text("new")
        assert ctx.checkpoint.get_metadata(second) == {"steps_completed": 20}
        with pytest.raises(FileNotFoundError, match="no checkpoint with storage_id"):
            with ctx.checkpoint.restore_path(first):
                pass  # replaced by the newer one
        ctx.train.report_validation_metrics(steps_completed=20, metrics={"total": 1.0, "batches": 20})
        assert ctx.preempt.should_preempt()
    published = tmp_path / "exp/trials/00003/checkpoints/t3-0001"
    published.parent.mkdir(parents=True)
    (job / "checkpoint_out").rename(published)
    monkeypatch.setenv("ASHA_LATEST_CHECKPOINT", str(published))
    info = det.get_cluster_info()
    assert info.latest_checkpoint == second
    with det.core.init() as ctx:
        with ctx.checkpoint.restore_path(info.latest_checkpoint) as path:
            assert (path / "w").read_text() == "new"
    assert [x for x in _lines(job) if set(x) == {"metrics"}] == [
        {"metrics": {"total": 1.0, "batches": 20}}]


def test_failed_store_keeps_the_previous_checkpoint(job):
    with det.core.init() as ctx:
        with ctx.checkpoint.store_path({}) as (path, sid):
            (path / "a").write_text("1")
        with pytest.raises(OSError):
            with ctx.checkpoint.store_path({}) as (path, _):
                raise OSError("disk full")
    assert [p.name for p in (job / "checkpoint_out").iterdir()] == [sid]
    assert det.core.JobEnv.from_env().find(sid) is not None


def test_missing_time_metric_is_one_clear_line(job):
    with pytest.raises(RuntimeError, match=r"lack 'batches' \(searcher.time_metric\)"):
        with det.core.init() as ctx:
            ctx.train.report_validation_metrics(steps_completed=20, metrics={"total": 1.0})


def test_missing_searcher_metric_names_it(job):
    """Every trial would repeat it: the job's fatal line stops the search at the first."""
    with pytest.raises(ValueError, match="lack the searcher's metric 'total'"):
        with det.core.init() as ctx:
            ctx.train.report_validation_metrics(steps_completed=20, metrics={"loss": 1.0, "batches": 20})
    (fatal,) = [x["fatal"] for x in _lines(job) if "fatal" in x]
    assert "lack the searcher's metric 'total' (searcher.metric)" in fatal


def test_invalid_hp_is_reported(job):
    with det.core.init():
        raise det.InvalidHP("step_size too large")
    assert _lines(job) == [{"invalid_hp": "step_size too large"}]


def test_operations_037(job):
    with pytest.raises(RuntimeError, match="without op.report_completed"):
        with det.core.init() as ctx:
            for op in ctx.searcher.operations():
                assert op.length == 20
    with det.core.init() as ctx:
        for op in ctx.searcher.operations():
            ctx.train.report_validation_metrics(steps_completed=op.length, metrics={"acc": 0.5})
            op.report_completed(0.25)
    assert {"metrics": {"acc": 0.5, "total": 0.25}} in _lines(job)


def test_operations_037_only_the_chief_reports_completed(job):
    """0.37's 4_distributed.py: ``if core_context.distributed.rank == 0: op.report_completed``.
    A worker that leaves its operation unreported is no error."""
    dist = det.core.DistributedContext(rank=1, size=2, local_rank=1, local_size=2, cross_rank=0,
                                       cross_size=1)
    ctx = det.core.Context(det.core.JobEnv.from_env(), dist)
    for op in ctx.searcher.operations():
        assert op.length == 20
    assert _lines(job) == []


def test_a_038_script_that_ends_before_the_rung_ends_the_trial(job):
    """searcher.max_time longer than the script's own loop (or its own early stopping): the
    script exits at 12 batches of a segment to 20. In Determined the trial ends there,
    completed; here it ends too, its last validation its result (it was no result, and the
    trial failed), and says where the script stopped."""
    with det.core.init() as ctx:
        ctx.train.report_validation_metrics(steps_completed=12, metrics={"total": 3.0, "batches": 12})
    assert _lines(job)[-2] == {"metrics": {"total": 3.0, "batches": 12}}
    assert _lines(job)[-1] == {"ended_early": "the script ended at batches=12, before the "
                                              "segment's length 20: the trial ends with the "
                                              "validations it reported, and is not retried"}


def test_preempt_modes_as_determined_defines_them(job):
    """``init(preempt_mode=...)``: ChiefOnly, the chief alone asks (no collective a worker
    would have to join; a worker that asks is told it may not); WorkersAskMaster, each rank
    asks on its own and learns that the segment's length was reached."""
    import threading

    def ctx_of(rank, mode):
        dist = det.core.DistributedContext(rank=rank, size=2, local_rank=rank, local_size=2,
                                           cross_rank=0, cross_size=1)
        return det.core.Context(det.core.JobEnv.from_env(), dist, mode)

    answers = []
    chief = ctx_of(0, det.core.PreemptMode.ChiefOnly)
    asking = threading.Thread(target=lambda: answers.append(chief.preempt.should_preempt()),
                              daemon=True)
    asking.start()
    asking.join(10)
    assert answers == [False]  # answered alone: no rank 1 in sight
    with pytest.raises(RuntimeError, match="only the chief may call it"):
        ctx_of(1, det.core.PreemptMode.ChiefOnly).preempt.should_preempt()
    chief = ctx_of(0, det.core.PreemptMode.WorkersAskMaster)
    worker = ctx_of(1, det.core.PreemptMode.WorkersAskMaster)
    assert worker.preempt.should_preempt() is False
    chief.train.report_validation_metrics(steps_completed=20, metrics={"total": 1.0, "batches": 20})
    assert chief.preempt.should_preempt() is True
    assert worker.preempt.should_preempt() is True
    assert {m.name for m in det.core.TensorboardMode} == {"AUTO", "MANUAL"}
    assert det.core.DummyDistributedContext().size == 1


def test_file_collectives_agree_and_clean_up_after_themselves(job):
    """Without torch.distributed, collectives go through files in the attempt's folder: four
    ranks (threads) in a loop of allgather, broadcast and gather get the right values every
    call, and the folder keeps only the last calls' files, not one per rank per call."""
    import threading

    size, calls = 4, 60
    got: dict[int, list] = {r: [] for r in range(size)}

    def rank(r):
        dist = det.core.DistributedContext(rank=r, size=size, local_rank=r, local_size=size,
                                           cross_rank=0, cross_size=1)
        for i in range(calls):
            got[r].append((dist.allgather((r, i)), dist.broadcast(i * 10 + r),
                           dist.gather(r * i), dist.broadcast_local(("b", i, r))))

    threads = [threading.Thread(target=rank, args=(r,), daemon=True) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for r in range(size):
        assert got[r] == [([(q, i) for q in range(size)], i * 10,
                           [q * i for q in range(size)] if r == 0 else None, ("b", i, 0))
                          for i in range(calls)]
    left = os.listdir(job / "det_distributed")
    assert len(left) <= size, sorted(left)  # the last call's files


def test_cluster_info_has_what_scripts_read(job):
    info = det.get_cluster_info()
    assert info.task_id.endswith(".3") and info.allocation_id == "r0" and info.agent_id
    assert info.cluster_id and info.master_url == "" and isinstance(info.gpu_uuids, list)
    assert info.trial.config["searcher"]["metric"] == "total"
    assert (info.trial.steps_completed, info.trial.trial_run_id) == (0, 1)
    assert info.user_data == {"url": "https://example.org/mnist.tgz", "workers": 2}


def test_non_chief_cannot_store(job):
    dist = det.core.DistributedContext(rank=1, size=2, local_rank=1, local_size=2, cross_rank=0,
                                       cross_size=1)
    ctx = det.core.Context(det.core.JobEnv.from_env(), dist)
    with pytest.raises(RuntimeError, match="only the chief"):
        with ctx.checkpoint.store_path({}):
            pass
    ctx.train.report_validation_metrics(steps_completed=20, metrics={"total": 1.0, "batches": 20})
    assert _lines(job) == []  # workers report nothing


def _ranks(size, body):
    """Run ``body(ctx, rank)`` on ``size`` ranks (threads, file collectives); what each
    returned or raised."""
    import threading

    got: dict[int, object] = {}

    def rank(r):
        dist = det.core.DistributedContext(rank=r, size=size, local_rank=r, local_size=size,
                                           cross_rank=0, cross_size=1)
        try:
            got[r] = body(det.core.Context(det.core.JobEnv.from_env(), dist), r)
        except Exception as e:  # noqa: BLE001 - the test compares them
            got[r] = e

    threads = [threading.Thread(target=rank, args=(r,), daemon=True) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return got


def test_a_sharded_checkpoint_is_one_storage_id_holding_every_ranks_files(job):
    """``store_path(shard=True)`` is a collective, as in Determined: every rank gets the same
    folder and storage_id, the checkpoint holds every rank's files and the ranks' metadata, and
    it replaces the previous one only once every rank's block has ended."""
    def body(ctx, r):
        for step in (10, 20):
            with ctx.checkpoint.store_path({"steps_completed": step, f"rank{r}": True},
                                           shard=True) as (path, sid):
                (path / f"rank{r}.pt").write_text(str(step))
        return sid

    got = _ranks(3, body)
    assert len(set(got.values())) == 1 and isinstance(got[0], str), got
    (sid,) = [p.name for p in (job / "checkpoint_out").iterdir()]  # the first one is gone
    assert sid == got[0]
    files = sorted(p.name for p in (job / "checkpoint_out" / sid).iterdir())
    assert files == ["metadata.json", "rank0.pt", "rank1.pt", "rank2.pt"]
    assert all((job / "checkpoint_out" / sid / f"rank{r}.pt").read_text() == "20" for r in range(3))
    with det.core.init() as ctx:
        assert ctx.checkpoint.get_metadata(sid) == {"steps_completed": 20, "rank0": True,
                                                    "rank1": True, "rank2": True}
    saved = _saved_ids(job)  # the chief names each complete one for the job, once
    assert len(saved) == 2 and saved[-1] == sid


def _saved_ids(job):
    return [x["saved"] for x in _lines(job) if "saved" in x]


def test_a_shard_that_fails_stores_nothing_on_any_rank(job):
    def body(ctx, r):
        with ctx.checkpoint.store_path({}, shard=True) as (path, sid):
            (path / f"rank{r}.pt").write_text("1")
        with ctx.checkpoint.store_path({}, shard=True) as (path, _):
            if r == 1:
                raise OSError("disk full on rank 1")
            (path / f"rank{r}.pt").write_text("2")
        return "stored"

    got = _ranks(2, body)
    assert isinstance(got[1], OSError)
    assert isinstance(got[0], RuntimeError) and "rank 1 raised while storing its shard" in str(got[0])
    (sid,) = [p.name for p in (job / "checkpoint_out").iterdir()]  # the first, complete one
    assert (job / "checkpoint_out" / sid / "rank1.pt").read_text() == "1"
    assert _saved_ids(job) == [sid]


def test_a_checkpoint_past_the_next_rung_reports_at_once(job, monkeypatch, tmp_path):
    """Validations every 100 batches, rungs at 20 and 80: the checkpoint at 100 already holds
    the next rung's result; the promoted job reports it at once and stops the script."""
    with det.core.init() as ctx:
        ctx.train.report_validation_metrics(steps_completed=100, metrics={"total": 0.5, "batches": 100})
        with ctx.checkpoint.store_path({"steps_completed": 100}) as (path, sid):
            (path / "w").write_text("100")
        assert ctx.preempt.should_preempt()
    published = tmp_path / "exp/trials/00003/checkpoints/t3-0001"
    published.parent.mkdir(parents=True)
    (job / "checkpoint_out").rename(published)
    (job / "checkpoint_out").mkdir()
    (job / "report.jsonl").unlink()
    monkeypatch.setenv("ASHA_LATEST_CHECKPOINT", str(published))
    monkeypatch.setenv("ASHA_TARGET_LENGTH", "80")
    with det.core.init() as ctx:
        assert ctx.preempt.should_preempt()
    assert _lines(job) == [{"metrics": {"total": 0.5, "batches": 100}}]
    assert ctx.checkpoint.get_metadata(sid) == {"steps_completed": 100}


@pytest.mark.slow
def test_torch_launcher_becomes_torchrun(tmp_path, capsys):
    """`python3 -m determined.launch.torch_distributed python3 torch_ddp.py` with 2 slots runs
    under torchrun: two ranks, DDP over gloo, from_torch_distributed() collectives."""
    require_module("torch")
    exp = _run(tmp_path, CONFIGS / "torch_ddp_038.yaml", capsys)
    (res,) = _segments(exp)
    assert res["status"] == "completed" and res["metrics"]["ranks"] == 2
    # the config samples lr from [0.01, 0.1] with no seed: the loss falls for any of them
    curve = [json.loads(x) for x in next((exp / "trials/00001/runs").iterdir()).joinpath(
        "metrics.jsonl").read_text().splitlines()]
    losses = [p["metrics"]["val_loss"] for p in curve if "val_loss" in p.get("metrics", {})]
    assert losses[0] > losses[1] > losses[2] and losses[-1] == res["metrics"]["val_loss"]
    (ckpt,) = (exp / "trials/00001/checkpoints").iterdir()
    assert len(list(ckpt.glob("*/model.pt"))) == 1


def test_sharded_checkpoints_through_torchrun_restore_each_ranks_shard(tmp_path, capsys):
    """Two ranks under torchrun each store a shard (torch's collectives agree on the
    storage_id); the promoted trial's ranks each find their own shard, and the ranks' exit
    without destroying their process group fails nothing."""
    require_module("torch")
    exp = _run(tmp_path, CONFIGS / "sharded_038.yaml", capsys)
    results = _segments(exp)
    assert [r["status"] for r in results] == ["completed"] * 3, results
    top = [r for r in results if r["metrics"]["batches"] == 40]
    assert len(top) == 1 and top[0]["metrics"]["resumed_at"] == 20
    (ckpt,) = (exp / f"trials/{top[0]['trial']:05d}/checkpoints").iterdir()
    (sid,) = [p for p in ckpt.iterdir() if p.is_dir()]
    assert sorted(p.name for p in sid.iterdir()) == ["metadata.json", "shard-rank0.txt",
                                                     "shard-rank1.txt"]


def test_stage_0_start_reports_nothing_and_completes(tmp_path, capsys):
    """The unmodified script: Determined's single searcher lets a trial that reports nothing
    finish; so does a trial without a length here (its metric is missing: NaN, the worst)."""
    exp = _run(tmp_path, CONFIGS / "core_api_start.yaml", capsys)
    (res,) = _segments(exp)
    assert res["status"] == "completed"
    assert res["metrics"]["total"] != res["metrics"]["total"]  # NaN
    logs = list((exp / "jobs").rglob("*_log.out"))
    assert any("total is now 30" in p.read_text() for p in logs)


def test_a_length_counted_trial_that_reports_nothing_still_fails(tmp_path, capsys):
    raw = yaml.safe_load((CONFIGS / "core_api_start.yaml").read_text())
    raw["searcher"]["max_length"] = {"batches": 30}
    raw["context_dir"] = str(CONFIGS)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    main(["run", str(tmp_path / "c.yaml"), "--exp-dir", str(tmp_path / "exp")])
    capsys.readouterr()
    (res,) = _segments(tmp_path / "exp")
    assert res["status"] == "error" and "the command exited 0 without a result" in res["error"]
    assert "core_context.train.report_validation_metrics(steps_completed, {\"total\": ...})" \
        in res["error"]


@pytest.mark.slurm
def test_core_api_scripts_as_slurm_jobs(tmp_path, capsys):
    """The same configs, unchanged, with `--backend slurm`: the 0.38 search pauses and resumes
    trials across Slurm jobs, and the distributed stage's file collectives work in a job that
    holds the trial's 2 slots (slurm.gpus_per_node 2)."""
    exp = tmp_path / "hp"
    assert main(["run", str(CONFIGS / "core_api_038_adaptive.yaml"), "--backend", "slurm",
                 "--exp-dir", str(exp)]) == 0, capsys.readouterr().err
    results = _segments(exp)
    assert len({r["trial"] for r in results}) == 8 and all(r["status"] == "completed" for r in results)
    assert all(r["job_id"] != str(r.get("pid")) for r in results)  # Slurm job ids, not pids
    for tid in sorted({r["trial"] for r in results if r["segment"] == 1}):
        runs = _reports(exp, tid)
        second = runs[sorted(runs)[1]]
        assert [x["step"] for x in second if "step" in x and "total" in x["metrics"]][0] == 30
    exp = tmp_path / "dist"
    assert main(["run", str(CONFIGS / "core_api_distributed.yaml"), "--backend", "slurm",
                 "--exp-dir", str(exp)]) == 0, capsys.readouterr().err
    (res,) = _segments(exp)
    hp = json.loads((exp / "trials/00001/hparams.json").read_text())
    assert res["metrics"] == {"total": 30 * 2 * hp["step_size"], "ranks": 2}
    assert load_config(exp / "experiment.yaml").slurm.gpus_per_node == 2


# ----------------------------------------------------------------------------- more of the API
def test_user_requested_stop_ends_the_trial_with_its_last_validation(tmp_path, capsys):
    """``report_early_exit(USER_REQUESTED_STOP)`` after a validation: in Determined the trial
    ends as completed and its metrics count. The trial that stops at batch 50 of 100 completes
    with its last validation as its result, and is final (not failed, not retried)."""
    exp = _run(tmp_path, CONFIGS / "early_stop_038.yaml", capsys)
    results = {json.loads((exp / f"trials/{r['trial']:05d}/hparams.json").read_text())
               ["plateau_at"]: r for r in _segments(exp)}
    stopped, full = results[30], results[0]
    assert stopped["status"] == "completed" and stopped["ends_trial"], stopped
    assert stopped["metrics"] == {"loss": pytest.approx(1 / 30), "batches": 50}
    assert full["status"] == "completed" and full["metrics"]["batches"] == 100
    assert not full.get("ends_trial")


def test_user_requested_stop_in_process(job):
    from asha_hpc.job.job_report import read_report

    with det.core.init() as ctx:
        ctx.train.report_validation_metrics(steps_completed=12, metrics={"total": 3.0, "batches": 12})
        ctx.train.report_early_exit(det.core.EarlyExitReason.USER_REQUESTED_STOP)
    got = read_report(job / "report.jsonl")
    assert got.metrics == {"total": 3.0, "batches": 12}
    assert got.ended_early == ("the script reported USER_REQUESTED_STOP at batches=12: the trial "
                               "ends with its last validation as its result")
    assert [x for x in _lines(job) if "ended_early" in x] == [{"ended_early": got.ended_early}]


def test_core_api_extras_through_a_retry(tmp_path, capsys):
    """5_extras.py: its config as Determined gives it (searcher.max_time, data, resources),
    status lines, metadata kept across the trial's two runs, trial_run_id counting them,
    checkpoint.delete and preempt.start/close; the first run fails after batch 20 and the
    retry goes on from there."""
    raw = yaml.safe_load((CONFIGS / "core_api_extras_038.yaml").read_text())
    raw["checkpoint_storage"]["host_path"] = str(tmp_path / "scratch")
    raw["context_dir"] = str(CONFIGS)
    (tmp_path / "extras.yaml").write_text(yaml.safe_dump(raw))
    exp = _run(tmp_path, tmp_path / "extras.yaml", capsys)
    first, second = _segments(exp)
    assert first["status"] == "error" and "node lost at batch 20" in first["error"]
    assert second["status"] == "completed"
    assert second["metrics"] == {"loss": 2.5, "batches": 40, "run": 2, "runs_seen": 2,
                                 "best_before": pytest.approx(100 / 30), "slots": 0}
    points = [p for run in _reports(exp, 1).values() for p in run if "step" in p]
    assert [(p["step"], p["metrics"]["run"]) for p in points] == [(10, 1), (20, 1), (30, 2), (40, 2)]
    assert [p["metrics"]["best_before"] for p in points][:2] == [-1.0, 10.0]
    trial = exp / "trials/00001"
    assert json.loads((trial / "det_metadata.json").read_text()) == {"runs": [1, 2]}
    (ckpt,) = (trial / "checkpoints").iterdir()  # the newest alone, batch 40
    (sid,) = [p for p in ckpt.iterdir() if p.is_dir()]
    assert sid.joinpath("batches").read_text() == "40"
    logs = "".join(p.read_text() for p in (exp / "jobs").rglob("*_log.*"))
    assert "trial 1 status: training, run 1" in logs and "status: training, run 2" in logs


def _use_config(job, raw, config_dir):
    """Write what ``asha-hpc run`` writes for a config file: the resolved config."""
    from asha_hpc.config import parse_config

    cfg = parse_config(raw, config_dir)
    (job.parent.parent.parent.parent / "experiment.yaml").write_text(yaml.safe_dump(cfg.to_dict()))


def test_the_config_holds_the_determined_keys_translation_replaced(job, tmp_path):
    """``info.trial.config`` / ``_config`` as Determined gave it: 0.38's max_time next to
    time_metric, resources.slots_per_trial, checkpoint_storage's type, host_path and
    storage_path, the data section."""
    raw = yaml.safe_load((CONFIGS / "core_api_038_adaptive.yaml").read_text())
    raw.update(resources={"slots_per_trial": 2}, data={"validate_every": 10},
               checkpoint_storage={"type": "shared_fs", "host_path": str(tmp_path / "scratch"),
                                   "storage_path": "det-ckpts", "save_experiment_best": 1})
    _use_config(job, raw, CONFIGS)
    config = det.get_cluster_info().trial._config
    assert config["searcher"]["time_metric"] == "batches" and config["searcher"]["max_time"] == 80
    assert "max_length" not in config["searcher"]  # 0.38 has none; translation made it
    assert config["resources"] == {"slots_per_trial": 2}
    assert config["checkpoint_storage"] == {"type": "shared_fs", "host_path": str(tmp_path / "scratch"),
                                            "storage_path": "det-ckpts", "save_experiment_best": 1}
    assert config["data"] == {"validate_every": 10}
    raw = yaml.safe_load((CONFIGS / "core_api_038_single.yaml").read_text())
    raw.pop("searcher")["max_length"] = None
    raw["searcher"] = {"name": "single", "metric": "total"}  # 0.38: no length at all
    _use_config(job, raw, CONFIGS)
    info = det.get_cluster_info()
    assert "max_length" not in info.trial.config["searcher"]
    assert info.trial.config["resources"] == {"slots_per_trial": 1}
    assert info.trial.config["checkpoint_storage"]["type"] == "shared_fs"


def test_trial_run_id_counts_the_trials_runs(job, monkeypatch):
    """Determined adds one to trial_run_id at every start of the trial: a retry, a promotion.
    The third start here (segment 0 failed once, then segment 1) is run 3."""
    runs = job.parent
    for key in ("t00003-s000-a00", "t00003-s000-a01", "t00003-s001-a00"):
        (runs / key).mkdir()
    monkeypatch.setenv("ASHA_RUN_DIR", str(runs / "t00003-s001-a00"))
    monkeypatch.setenv("ASHA_SEGMENT", "1")
    assert det.get_cluster_info().trial.trial_run_id == 3
    monkeypatch.setenv("ASHA_RUN_DIR", str(runs / "t00003-s000-a01"))
    assert det.get_cluster_info().trial.trial_run_id == 2


def test_metadata_and_status(job, capsys):
    with det.core.init() as ctx:
        assert ctx.train.get_metadata() == {}
        assert ctx.train.set_metadata({"epochs": [1, 2], "best": {"loss": 0.5}}) == {
            "epochs": [1, 2], "best": {"loss": 0.5}}
        with pytest.raises(TypeError, match="must be JSON"):
            ctx.train.set_metadata({"path": job})
        ctx.train.set_status("evaluating")
    assert "trial 3 status: evaluating" in capsys.readouterr().err
    with det.core.init() as ctx:  # the trial's next job
        assert ctx.train.set_metadata({"epochs": [3]}) == {"epochs": [3]}  # replaced, as Determined
        assert ctx.train.get_metadata() == {"epochs": [3]}


def test_checkpoint_delete(job, monkeypatch, tmp_path):
    with det.core.init() as ctx:
        with ctx.checkpoint.store_path({"steps_completed": 10}) as (path, first):
            (path / "w").write_text("10")
        with ctx.checkpoint.store_path({"steps_completed": 20}) as (path, second):
            (path / "w").write_text("20")
        ctx.checkpoint.delete(first)  # replaced by the second already: nothing to do
        ctx.checkpoint.delete(second)
        assert list((job / "checkpoint_out").iterdir()) == []
        with pytest.raises(FileNotFoundError, match="no checkpoint with storage_id nope"):
            ctx.checkpoint.delete("nope")
        with ctx.checkpoint.store_path({"steps_completed": 30}) as (path, third):
            (path / "w").write_text("30")
    published = tmp_path / "exp/trials/00003/checkpoints/t3-0001"
    published.parent.mkdir(parents=True)
    (job / "checkpoint_out").rename(published)
    (job / "checkpoint_out").mkdir()
    other = tmp_path / "exp/trials/00004/checkpoints/t4-0001/other-sid"
    other.mkdir(parents=True)
    other.joinpath("metadata.json").write_text("{}")
    monkeypatch.setenv("ASHA_LATEST_CHECKPOINT", str(published))
    with det.core.init() as ctx:
        with pytest.raises(ValueError, match="checkpoint of trial 00004; a trial deletes only its own"):
            ctx.checkpoint.delete("other-sid")
        ctx.checkpoint.delete(third)
    assert not published.exists() and other.exists()


def test_preempt_start_and_close_keep_the_context_usable(job):
    with det.core.init() as ctx:
        assert ctx.preempt.start() is ctx.preempt
        assert ctx.preempt.should_preempt() is False
        ctx.preempt.close()
        with ctx.preempt:
            ctx.train.report_validation_metrics(steps_completed=20, metrics={"total": 1.0, "batches": 20})
        assert ctx.preempt.should_preempt() is True


def test_experiment_best_validation_reads_the_journal(job):
    """Determined's best searcher-metric value of the experiment: here every segment's result
    in the journal (a failed one has none, NaN is no best) and this job's own validations."""
    from asha_hpc.protocol.journal import Journal

    journal = Journal(job.parent.parent.parent.parent / "journal.jsonl")
    journal.append([{"kind": "result", "trial": 1, "status": "completed", "metrics": {"total": 4.0}},
                    {"kind": "result", "trial": 2, "status": "completed", "metrics": {"total": "nan"}},
                    {"kind": "result", "trial": 2, "status": "error", "metrics": None}])
    journal.close()
    with det.core.init() as ctx:
        assert ctx.train.get_experiment_best_validation() == 4.0
        ctx.train.report_validation_metrics(steps_completed=10, metrics={"total": 2.5, "batches": 10})
        assert ctx.train.get_experiment_best_validation() == 2.5
        # results journaled since the last call count; a line still being written does not yet
        from asha_hpc.protocol.journal import _encode

        path = job.parent.parent.parent.parent / "journal.jsonl"
        line = _encode({"kind": "result", "trial": 3, "seq": 99, "status": "completed",
                        "metrics": {"total": 1.5}})
        with open(path, "ab") as f:
            f.write(line[:20])
        assert ctx.train.get_experiment_best_validation() == 2.5
        with open(path, "ab") as f:
            f.write(line[20:])
        assert ctx.train.get_experiment_best_validation() == 1.5
        path.write_bytes(b"")  # cut back below what was read: read again from its start
        assert ctx.train.get_experiment_best_validation() == 2.5


@pytest.mark.slow
def test_ddp_ranks_exit_cleanly_after_destroying_their_group(tmp_path, capsys):
    """The user's DDP script ends with ``dist.destroy_process_group()`` and no
    ``gc.collect()``: its DDP model, garbage in a reference cycle, was freed after the group was
    gone, which aborted 1 trial in 4 to 6 at exit ("terminate called without an active
    exception") after its work was done. Every rank of every trial frees the model before the
    group is destroyed (a shim that does not collect first fails this in every run), and the
    trials complete."""
    require_module("torch")
    exp = _run(tmp_path, CONFIGS / "ddp_exit_038.yaml", capsys)
    results = _segments(exp)
    assert len(results) == 2
    assert [r for r in results if r["status"] != "completed"] == []
    logs = sorted((exp / "jobs").rglob("*_log.out"))
    lines = [ln for p in logs for ln in p.read_text().splitlines() if ln.startswith("rank ")]
    for rank in (0, 1):
        order = [ln.split(": ", 1)[1] for ln in lines if ln.startswith(f"rank {rank}: ")]
        assert order == ["DDP model freed", "process group destroyed"] * 2, (rank, order)

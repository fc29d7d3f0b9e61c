"""``export --format tensorboard|mlflow``: each export read back with the tool's own reader
(TensorBoard's EventAccumulator and HParams plugin data, MLflow's MlflowClient), and exported
again after more results: everything once, nothing twice."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from asha_hpc import cli
from asha_hpc.backends.simulated import synthetic_curve
from asha_hpc.config import parse_config
from asha_hpc.master.loop import Master
from asha_hpc.protocol.expdir import ExpDir, atomic_write
from asha_hpc.views.status import open_experiment
from asha_hpc.views.trackers import flat_hparams, run_name

from conftest import require_module


def make_cfg(root: Path):
    cfg = parse_config({
        "name": "cifar-resnet", "entrypoint": "train:main",
        "searcher": {"name": "adaptive_asha", "metric": "val_loss", "max_length": {"epochs": 16},
                     "max_trials": 12, "max_concurrent_trials": 3, "mode": "standard",
                     "divisor": 4},
        "hyperparameters": {"learning_rate": {"type": "log", "minval": -4, "maxval": -1, "base": 10},
                            "batch_size": {"type": "categorical", "vals": [32, 64, 128]},
                            "optimizer": {"name": {"type": "categorical", "vals": ["sgd", "adamw"]},
                                          "nesterov": {"type": "categorical", "vals": [True, False]}}},
        "reproducibility": {"experiment_seed": 3}, "backend": "simulated", "max_restarts": 1,
        "simulated": {"unit_seconds": 60, "startup_seconds": 30, "failure_rate": 0.2,
                      "workers": 3}}, "/tmp")
    cfg.experiment_dir = str(root)
    return cfg


def write_curves(root: Path) -> None:
    """What a PyTorch loop's ``trial.report_metrics`` leaves: train_loss and lr every epoch,
    the segment's val_loss at its end (the simulated backend writes no curves)."""
    exp, cfg, records, st = open_experiment(root)
    shutil.rmtree(exp.root / "trials", ignore_errors=True)
    reached: dict[int, int] = {}
    for r in records:
        if r["kind"] == "result" and r["status"] == "completed":
            t = st.trials[r["trial"]]
            run = exp.run_dir(t.id, f"t{t.id:05d}-s{r['segment']:03d}-a{r['attempt']:02d}")
            run.mkdir(parents=True, exist_ok=True)
            lines = [json.dumps({"step": s, "time": 1.7e9 + 60 * s, "train_loss":
                                 synthetic_curve(t.hparams, s, 3) + 0.05, "lr": 0.1 / s})
                     for s in range(reached.get(t.id, 0) + 1, r["length"] + 1)]
            lines.append(json.dumps({"step": r["length"], "time": 1.7e9 + 60 * r["length"],
                                     "val_loss": r["metrics"]["val_loss"]}))
            (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
            reached[t.id] = r["length"]


@pytest.fixture(scope="module")
def searches(tmp_path_factory) -> tuple[Path, Path]:
    """(finished search, the same search halfway: its journal's first half and those curves)."""
    base = tmp_path_factory.mktemp("trackers")
    exp = ExpDir.create(base / "done")
    cfg = make_cfg(exp.root)
    atomic_write(exp.config, yaml.safe_dump(cfg.to_dict(), sort_keys=False).encode())
    assert Master(exp, cfg, progress=lambda s: None).run().lifecycle == "completed"
    write_curves(exp.root)
    half = base / "half"
    shutil.copytree(exp.root, half)
    lines = (half / "journal.jsonl").read_text().splitlines(keepends=True)
    (half / "journal.jsonl").write_text("".join(lines[: len(lines) // 2]))
    write_curves(half)
    return exp.root, half


def expected(root: Path) -> dict[int, dict[str, list[tuple[int, float]]]]:
    """trial -> metric -> [(step, value)], straight from metrics.jsonl and the journal."""
    exp, cfg, records, st = open_experiment(root)
    out: dict[int, dict[str, dict[int, float]]] = {t: {} for t in st.trials}
    for f in sorted(exp.root.glob("trials/*/runs/*/metrics.jsonl")):
        tid = int(f.parts[-4])
        for line in f.read_text().splitlines():
            rec = json.loads(line)
            for k, v in rec.items():
                if k not in ("step", "time"):
                    out[tid].setdefault(k, {})[rec["step"]] = v
    for t in st.trials.values():
        for length, v in t.rung_metrics.items():
            out[t.id].setdefault("val_loss", {})[length] = v
    return {t: {k: sorted(p.items()) for k, p in m.items()} for t, m in out.items()}


def continue_search(half: Path, done: Path) -> None:
    """'More results': the half-way folder catches up with the finished one."""
    shutil.copy(done / "journal.jsonl", half / "journal.jsonl")
    write_curves(half)


def export(capsys, root: Path, fmt: str, out) -> str:
    rc = cli.main(["export", str(root), "--format", fmt, "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    return err


# ----------------------------------------------------------------------------- TensorBoard
def read_tensorboard(out: Path):
    """run -> (scalars {tag: [(step, value)]}, hparams {name: value}, end status or None)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    runs = {}
    for d in sorted(p for p in out.iterdir() if p.is_dir()):
        acc = EventAccumulator(str(d), size_guidance={"scalars": 0, "tensors": 0})
        acc.Reload()
        scalars = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
        content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
        start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
        hp = {k: getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}
        end = content.get(metadata.SESSION_END_INFO_TAG)
        runs[d.name] = (scalars, hp, metadata.parse_session_end_info_plugin_data(end).status
                        if end is not None else None)
    acc = EventAccumulator(str(out))
    acc.Reload()
    experiment = metadata.parse_experiment_plugin_data(
        acc.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.EXPERIMENT_TAG])
    return runs, experiment


def check_tensorboard(out: Path, root: Path, final: bool) -> None:
    from tensorboard.plugins.hparams import api_pb2

    runs, experiment = read_tensorboard(out)
    exp, cfg, records, st = open_experiment(root)
    want = expected(root)
    assert sorted(runs) == [run_name(t) for t in sorted(st.trials)]
    for tid, t in st.trials.items():
        scalars, hp, status = runs[run_name(tid)]
        assert {k: [(s, pytest.approx(v)) for s, v in pts] for k, pts in want[tid].items()} == scalars
        assert hp == {k: (float(v) if isinstance(v, int) and not isinstance(v, bool) else v)
                      for k, v in flat_hparams(t.hparams).items()}
        if final:
            assert status == (api_pb2.STATUS_FAILURE if t.status == "failed" else api_pb2.STATUS_SUCCESS)
        elif t.status in ("running", "pending", "queued", "paused"):
            assert status is None
    assert [m.name.tag for m in experiment.metric_infos][0] == "val_loss"  # the searcher's first
    assert {m.name.tag for m in experiment.metric_infos} >= {"val_loss", "train_loss", "lr"}
    types = {h.name: h.type for h in experiment.hparam_infos}
    assert types == {"learning_rate": api_pb2.DATA_TYPE_FLOAT64, "batch_size": api_pb2.DATA_TYPE_FLOAT64,
                     "optimizer.name": api_pb2.DATA_TYPE_STRING,
                     "optimizer.nesterov": api_pb2.DATA_TYPE_BOOL}  # the table's filters
    names = {h.name: h for h in experiment.hparam_infos}
    assert set(names["optimizer.name"].domain_discrete) <= {"sgd", "adamw"}
    lr = [t.hparams["learning_rate"] for t in st.trials.values()]
    dom = names["learning_rate"].domain_interval
    assert (dom.min_value, dom.max_value) == (min(lr), max(lr))


def test_tensorboard_export_read_back_and_again(searches, tmp_path, capsys):
    require_module("tensorboard", "test")
    done, half = searches
    root = tmp_path / "search"
    shutil.copytree(half, root)
    out = tmp_path / "tb"
    err = export(capsys, root, "tensorboard", out)
    assert "tensorboard --logdir" in err and "0 rewritten" in err
    check_tensorboard(out, root, final=False)

    assert "0 new, 0 rewritten, 0 new points" in export(capsys, root, "tensorboard", out)
    continue_search(root, done)
    err = export(capsys, root, "tensorboard", out)
    assert "0 rewritten" in err and " 0 new points" not in err
    check_tensorboard(out, root, final=True)  # every point exactly once

    # a retried attempt that rewrote history: that trial's run is written again, alone
    f = sorted((root / "trials" / "00001" / "runs").glob("*/metrics.jsonl"))[0]
    lines = f.read_text().splitlines()
    rec = json.loads(lines[0])
    rec["train_loss"] += 1.0
    f.write_text("\n".join([json.dumps(rec)] + lines[1:]) + "\n")
    assert "1 rewritten" in export(capsys, root, "tensorboard", out)
    check_tensorboard(out, root, final=True)


# ----------------------------------------------------------------------------- MLflow
def read_mlflow(uri: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    e = client.get_experiment_by_name("cifar-resnet")
    assert e is not None and e.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = {}
    for r in client.search_runs([e.experiment_id], max_results=1000):
        hist = {k: sorted((m.step, m.value) for m in client.get_metric_history(r.info.run_id, k))
                for k in r.data.metrics}
        runs[r.info.run_name] = (r, hist)
    return runs


def check_mlflow(uri: str, root: Path, final: bool) -> None:
    runs = read_mlflow(uri)
    exp, cfg, records, st = open_experiment(root)
    want = expected(root)
    assert sorted(runs) == [run_name(t) for t in sorted(st.trials)]
    for tid, t in st.trials.items():
        r, hist = runs[run_name(tid)]
        assert hist == {k: [(s, pytest.approx(v)) for s, v in pts] for k, pts in want[tid].items()}
        assert r.data.params == {k: str(v) for k, v in flat_hparams(t.hparams).items()}
        assert r.data.tags["asha.state"] == t.status
        assert r.data.tags["asha.trial_id"] == str(tid)
        lengths = st.searcher.brackets()[t.bracket].rung_lengths
        assert r.data.tags["asha.rung"] == str(list(lengths).index(t.length) if t.length in lengths else -1)
        if final:
            assert r.info.status == ("FAILED" if t.status == "failed" else "FINISHED")
        elif t.status in ("running", "pending", "queued", "paused"):
            assert r.info.status == "RUNNING"


@pytest.mark.slow  # about 10 s: MLflow creates its SQLite tables
def test_mlflow_export_read_back_and_again(searches, tmp_path, capsys):
    require_module("mlflow", "test")
    done, half = searches
    root = tmp_path / "search"
    shutil.copytree(half, root)
    store = tmp_path / "mlruns"
    err = export(capsys, root, "mlflow", store)
    assert "mlflow ui --backend-store-uri" in err
    uri = f"sqlite:///{store.resolve() / 'mlflow.db'}"  # a folder is MLflow's local SQLite store
    check_mlflow(uri, root, final=False)
    assert "0 new, 0 rewritten, 0 new points" in export(capsys, root, "mlflow", store)
    continue_search(root, done)
    err = export(capsys, root, "mlflow", uri)  # a URI works as well as a folder
    assert "0 rewritten" in err
    check_mlflow(uri, root, final=True)


def test_tracker_export_needs_a_target(searches, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for fmt in ("tensorboard", "mlflow"):
        assert cli.main(["export", str(searches[0]), "--format", fmt]) == 1
        assert "give -o OUT" in capsys.readouterr().err

"""``asha-hpc export --format tensorboard|mlflow``: the search, one run per trial, in the
tools people already look at runs with.

Each trial becomes a run named ``trial-00012`` holding its hyperparameters (flattened to dotted
names), every metric its jobs reported as a series per step (``metrics.jsonl``; the searcher's
metric at each rung from the journal, which is the truth when a job wrote no curve), and its
bracket, highest rung, length, state, and where its configuration came from (``asha.sampled_by``:
given, model or random, when the search is not all random).

Exports are incremental: exporting again after more results adds the new points and trials and
updates the states, without duplicating what is already there. If a trial's earlier points
changed (a retried attempt reported different values for steps already exported), that trial's
run is written again from scratch, so the export always mirrors the experiment folder.

The tracker libraries are optional extras, imported here only (never by the master):
``pip install 'asha-hpc[tensorboard]'`` or ``'asha-hpc[mlflow]'``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import space
from ..config import ExperimentConfig
from ..errors import AshaError
from ..master.state import CANCELLED, COMPLETED, FAILED, INVALID, STOPPED, ExperimentState
from ..protocol.expdir import ExpDir, atomic_write_json, read_json
from ..protocol.metrics import finite_float
from .observe import curve_rows

HParam = float | str | bool
Point = tuple[int, float, float]  # (step, value, wall time)

FINAL_STATES = (COMPLETED, STOPPED, FAILED, INVALID, CANCELLED)
TB_MANIFEST = "asha_export.json"  # the TensorBoard export's record of what it wrote


@dataclass
class TrialRun:
    """One trial as a tracker run."""
    trial_id: int
    name: str
    hparams: dict[str, HParam]
    series: dict[str, list[Point]]  # metric -> points sorted by step, one per step
    tags: dict[str, str]
    state: str
    final: bool  # nothing more will happen to it
    start_time: float
    end_time: float | None = None
    metric: float | None = None


def run_name(trial_id: int) -> str:
    return f"trial-{trial_id:05d}"


def _hparam_value(v: Any) -> HParam:
    """A value the trackers store as such: bool, number, string (anything else as JSON)."""
    if isinstance(v, (bool, str)):
        return v
    if isinstance(v, (int, float)):
        return float(v) if isinstance(v, float) else v
    return json.dumps(v, sort_keys=True)


def flat_hparams(hp: dict[str, Any]) -> dict[str, HParam]:
    """A trial's hyperparameters as trackers store them: dotted names, an empty map kept."""
    return {k: _hparam_value(v) for k, v in space.flat_hparams(hp, keep_empty=True).items()}


def trial_runs(exp: ExpDir, cfg: ExperimentConfig, st: ExperimentState) -> list[TrialRun]:
    """Every trial with its series, tags and state (reads metrics.jsonl; pure otherwise)."""
    metric = cfg.searcher.metric
    per_trial: dict[int, dict[str, dict[int, tuple[float, float]]]] = {}
    for r in curve_rows(exp):  # in (segment, attempt) order: a retry's point replaces the first
        step = r.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            continue
        wall = finite_float(r.get("time")) or 0.0
        series = per_trial.setdefault(r["trial_id"], {})
        for k, v in r["metrics"].items():
            f = finite_float(v)
            if f is not None:
                series.setdefault(k, {})[step] = (f, wall)
    lengths = {i: list(b.rung_lengths) for i, b in enumerate(st.searcher.brackets())}
    out = []
    for t in sorted(st.trials.values(), key=lambda t: t.id):
        series = per_trial.get(t.id, {})
        searcher_pts = series.setdefault(metric, {})
        for length, v in t.rung_metrics.items():  # the journal's value is what the searcher saw
            f = finite_float(v)
            if f is not None:
                searcher_pts[int(length)] = (f, searcher_pts.get(int(length), (0.0, 0.0))[1])
        if not searcher_pts:
            del series[metric]
        walls = [w for pts in series.values() for _, w in pts.values() if w]
        start = min(walls) if walls else (t.submitted_at or 0.0)
        rungs = lengths.get(t.bracket, [])
        rung = rungs.index(t.length) if t.length in rungs else -1
        final = t.status in FINAL_STATES or st.lifecycle in ("completed", "cancelled", "failed")
        tags = {"asha.trial_id": str(t.id), "asha.experiment": cfg.name,
                "asha.bracket": str(t.bracket), "asha.rung": str(rung),
                "asha.length": str(t.length), "asha.state": t.status,
                "asha.restarts": str(t.restarts)}
        if finite_float(t.metric) is not None:
            tags[f"asha.{metric}"] = f"{t.metric:.10g}"
        by = st.sampled_by(t.id)
        if by is not None:
            tags["asha.sampled_by"] = by
        out.append(TrialRun(
            trial_id=t.id, name=run_name(t.id), hparams=flat_hparams(t.hparams),
            series={k: sorted((s, v, w) for s, (v, w) in pts.items()) for k, pts in series.items()},
            tags=tags, state=t.status, final=final, start_time=start,
            end_time=(max(walls) if walls else None) if final else None, metric=finite_float(t.metric)))
    return out


def _digest(points: Iterable[Point]) -> str:
    return hashlib.sha1(json.dumps([[s, v] for s, v, _ in points]).encode()).hexdigest()


@dataclass
class ExportSummary:
    trials: int = 0
    new_trials: int = 0
    rewritten: int = 0
    points: int = 0  # new points written

    def line(self, fmt: str, where: str) -> str:
        return (f"exported {self.trials} trials to {where} ({fmt}): {self.new_trials} new, "
                f"{self.rewritten} rewritten, {self.points} new points")


# ----------------------------------------------------------------------------- TensorBoard
def _tb():
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter
    except ImportError:
        raise AshaError("--format tensorboard needs the tensorboard package, which is not "
                        "installed: pip install 'asha-hpc[tensorboard]'") from None
    return event_pb2, summary_pb2, api_pb2, metadata, plugin_data_pb2, RecordWriter


class _EventFile:
    """One TensorBoard event file, written under a temporary name and renamed when complete
    (TensorBoard reads only names containing ``tfevents``)."""
    _seq = 0

    def __init__(self, folder: Path, wall: float) -> None:
        event_pb2, *_ , RecordWriter = _tb()
        self._event_pb2 = event_pb2
        folder.mkdir(parents=True, exist_ok=True)
        _EventFile._seq += 1
        # TensorBoard reads a folder's files in name order: the time in microseconds first
        self.name = (f"events.out.tfevents.{int(time.time() * 1e6):017d}.{_EventFile._seq:06d}."
                     f"{socket.gethostname()}.{os.getpid()}.asha")
        self.path = folder / self.name
        self._tmp = folder / f".tmp-{self.name.replace('tfevents', 'events')}"
        self._w = RecordWriter(open(self._tmp, "wb"))
        self.add(event_pb2.Event(wall_time=wall, file_version="brain.Event:2"))

    def add(self, event) -> None:
        self._w.write(event.SerializeToString())

    def close(self) -> None:
        self._w.close()
        os.replace(self._tmp, self.path)


def _hparams_summary(tag: str, plugin_data):
    _, summary_pb2, _, metadata, _, _ = _tb()
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=tag, metadata=metadata.create_summary_metadata(plugin_data))])


def _hparam_info(api_pb2, name: str, values: list[HParam]):
    """The HParams table's column: its type and domain (the values seen, or their range), so
    that TensorBoard offers the right filters."""
    info = api_pb2.HParamInfo(name=name)
    if all(isinstance(v, bool) for v in values):
        info.type = api_pb2.DATA_TYPE_BOOL
        info.domain_discrete.extend(sorted(set(values)))
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        info.type = api_pb2.DATA_TYPE_FLOAT64
        info.domain_interval.min_value = float(min(values))
        info.domain_interval.max_value = float(max(values))
    else:
        info.type = api_pb2.DATA_TYPE_STRING
        info.domain_discrete.extend(sorted({str(v) for v in values}))
    return info


def export_tensorboard(runs: list[TrialRun], out: Path, metric: str,
                       smaller_is_better: bool) -> ExportSummary:
    """``out/<run>/`` event files per trial (scalars per step; the HParams plugin's session
    start and end), ``out/`` the HParams experiment (hyperparameters and metrics to compare).
    ``out/asha_export.json`` records what was written, so exporting again appends."""
    event_pb2, summary_pb2, api_pb2, metadata, plugin_data_pb2, _ = _tb()
    out.mkdir(parents=True, exist_ok=True)
    man_path = out / TB_MANIFEST
    man, why = read_json(man_path)
    if why == "missing":
        man = {"trials": {}}
    elif man is None or not isinstance(man.get("trials"), dict):
        raise AshaError(f"{man_path}: {why or 'not an asha-hpc export record'}: export into "
                        "a new folder, or remove this one")
    summary = ExportSummary(trials=len(runs))

    def remove(folder: Path, names: Iterable[str]) -> None:
        for n in names:
            try:
                (folder / n).unlink()
            except FileNotFoundError:
                pass

    for run in runs:
        folder = out / run.name
        prev = man["trials"].get(str(run.trial_id))
        points = prev.get("points", {}) if prev else {}
        whole = prev is None or any(  # a changed earlier point: write the trial again
            n > len(run.series.get(k, [])) or _digest(run.series[k][:n]) != d
            for k, (n, d) in points.items())
        if whole:
            if prev is not None:
                remove(folder, prev.get("files", []) + [prev.get("session_file", "")])
                summary.rewritten += 1
            else:
                summary.new_trials += 1
            prev = {"files": [], "points": {}, "session": None, "session_file": ""}
            points = {}
        new = {k: pts[points.get(k, (0, ""))[0]:] for k, pts in run.series.items()}
        if any(new.values()):
            f = _EventFile(folder, run.start_time)
            for k, pts in sorted(new.items()):
                for step, v, wall in pts:
                    f.add(event_pb2.Event(wall_time=wall or run.start_time, step=step,
                                          summary=summary_pb2.Summary(value=[
                                              summary_pb2.Summary.Value(tag=k, simple_value=v)])))
                    summary.points += 1
            f.close()
            prev["files"].append(f.name)
        prev["points"] = {k: [len(pts), _digest(pts)] for k, pts in run.series.items()}
        # the HParams session: its start (hyperparameters) and, once final, its end
        session = json.dumps([run.hparams, run.state, run.final], sort_keys=True)
        if session != prev.get("session"):
            f = _EventFile(folder, run.start_time)
            start = plugin_data_pb2.SessionStartInfo(group_name=run.name,
                                                     start_time_secs=run.start_time)
            for name, hv in sorted(run.hparams.items()):
                if isinstance(hv, bool):
                    start.hparams[name].bool_value = hv
                elif isinstance(hv, (int, float)):
                    start.hparams[name].number_value = hv
                else:
                    start.hparams[name].string_value = hv
            f.add(event_pb2.Event(wall_time=run.start_time, summary=_hparams_summary(
                metadata.SESSION_START_INFO_TAG,
                plugin_data_pb2.HParamsPluginData(session_start_info=start))))
            if run.final:
                status = (api_pb2.STATUS_SUCCESS if run.state in (COMPLETED, STOPPED)
                          else api_pb2.STATUS_FAILURE if run.state in (FAILED, INVALID)
                          else api_pb2.STATUS_ABORTED if run.state == CANCELLED
                          else api_pb2.STATUS_SUCCESS)  # paused when the search ended
                end = plugin_data_pb2.SessionEndInfo(
                    status=status, end_time_secs=run.end_time or run.start_time)
                f.add(event_pb2.Event(wall_time=run.end_time or run.start_time,
                                      summary=_hparams_summary(
                                          metadata.SESSION_END_INFO_TAG,
                                          plugin_data_pb2.HParamsPluginData(session_end_info=end))))
            f.close()
            remove(folder, [prev.get("session_file", "")] if prev.get("session_file") else [])
            prev["session"], prev["session_file"] = session, f.name
        man["trials"][str(run.trial_id)] = prev

    # the experiment: which hyperparameters and metrics the HParams table shows (the
    # searcher's metric first); written again when that set changes
    values: dict[str, dict[str, HParam]] = {}  # name -> repr -> value (True and 1 apart)
    for r in runs:
        for k, hv in r.hparams.items():
            values.setdefault(k, {})[repr(hv)] = hv
    hp_names = sorted(values)
    metrics = [metric] + sorted({k for r in runs for k in r.series} - {metric})
    experiment = json.dumps([hp_names, metrics, {k: sorted(v) for k, v in values.items()}])
    if experiment != man.get("experiment"):
        f = _EventFile(out, min((r.start_time for r in runs), default=time.time()))
        exp_pb = api_pb2.Experiment(
            hparam_infos=[_hparam_info(api_pb2, k, list(values[k].values())) for k in hp_names],
            metric_infos=[api_pb2.MetricInfo(
                name=api_pb2.MetricName(tag=m),
                description=(f"the searcher's metric ({'smaller' if smaller_is_better else 'larger'}"
                             " is better)") if m == metric else "")
                for m in metrics])
        f.add(event_pb2.Event(wall_time=time.time(), summary=_hparams_summary(
            metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=exp_pb))))
        f.close()
        if man.get("experiment_file"):
            remove(out, [man["experiment_file"]])
        man["experiment"], man["experiment_file"] = experiment, f.name
    atomic_write_json(man_path, man)
    return summary


# ----------------------------------------------------------------------------- MLflow
def _mlflow():
    try:
        from mlflow.entities import Metric, Param, RunStatus, RunTag
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise AshaError("--format mlflow needs MLflow, which is not installed: pip install "
                        "'asha-hpc[mlflow]' (mlflow-skinny; the full `mlflow` package for "
                        "`mlflow ui`)") from None
    return MlflowClient, Metric, Param, RunTag, RunStatus


def tracking_uri(target: str) -> tuple[str, str | None]:
    """(tracking URI, artifact location for a new experiment): a URI as given (``http://...``,
    ``sqlite:///...``, ``databricks``), or a folder: ``<folder>/mlflow.db``, the SQLite store
    MLflow recommends for local use (its file store is in maintenance mode)."""
    if ":" in target and not Path(target).exists() and not target.startswith((".", "/")):
        return target, None
    p = Path(target).resolve()
    p.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{p / 'mlflow.db'}", (p / "artifacts").as_uri()


def export_mlflow(runs: list[TrialRun], uri: str, experiment: str, exp_dir: str,
                  artifacts: str | None = None) -> ExportSummary:
    """One MLflow run per trial in experiment ``experiment`` (created if missing): params,
    metrics per step, tags (``asha.*``), status. Runs are found again by their
    ``asha.exp_dir`` and ``asha.trial_id`` tags, and only steps missing from a run's metric
    history are logged."""
    MlflowClient, Metric, Param, RunTag, RunStatus = _mlflow()
    for name in ("mlflow", "alembic"):  # not their INFO lines about creating the tables
        logging.getLogger(name).setLevel(logging.WARNING)
    client = MlflowClient(tracking_uri=uri)
    e = client.get_experiment_by_name(experiment)
    # experimentKind: MLflow 3's UI opens the experiment on its training runs, not on GenAI traces
    exp_id = (e.experiment_id if e is not None
              else client.create_experiment(experiment, artifact_location=artifacts,
                                            tags={"mlflow.experimentKind": "custom_model_development"}))
    found: dict[str, Any] = {}
    token = None
    while True:
        page = client.search_runs([exp_id], filter_string=f"tags.`asha.exp_dir` = '{exp_dir}'",
                                  max_results=1000, page_token=token)
        for r in page:
            tid = r.data.tags.get("asha.trial_id")
            if tid is not None and (tid not in found or r.info.start_time < found[tid].info.start_time):
                found[tid] = r
        token = page.token
        if not token:
            break
    summary = ExportSummary(trials=len(runs))

    def ms(t: float) -> int:  # MLflow's times are in milliseconds
        return int(t * 1000)

    for run in runs:
        existing = found.get(str(run.trial_id))
        have: dict[str, list[tuple[int, float]]] = {}
        if existing is not None:
            for k in existing.data.metrics:
                hist = sorted((m.step, m.value) for m in client.get_metric_history(existing.info.run_id, k))
                have[k] = hist
            same = all(hist == [(s, v) for s, v, _ in run.series.get(k, [])][:len(hist)]
                       for k, hist in have.items())
            if not same:  # a changed earlier point: this trial's run is written again
                client.delete_run(existing.info.run_id)
                existing, have = None, {}
                summary.rewritten += 1
        else:
            summary.new_trials += 1
        tags = [RunTag(k, v) for k, v in run.tags.items()] + [RunTag("asha.exp_dir", exp_dir)]
        if existing is None:
            r = client.create_run(exp_id, start_time=ms(run.start_time), run_name=run.name,
                                  tags={t.key: t.value for t in tags})
            run_id = r.info.run_id
            params = [Param(k, str(v)[:6000]) for k, v in sorted(run.hparams.items())]
            for i in range(0, len(params), 100):
                client.log_batch(run_id, params=params[i:i + 100])
        else:
            run_id = existing.info.run_id
            client.log_batch(run_id, tags=tags)
        new = [Metric(k, v, ms(wall or run.start_time), step)
               for k, pts in sorted(run.series.items()) for step, v, wall in pts[len(have.get(k, [])):]]
        for i in range(0, len(new), 1000):
            client.log_batch(run_id, metrics=new[i:i + 1000])
        summary.points += len(new)
        status = ("RUNNING" if not run.final else
                  "FAILED" if run.state in (FAILED, INVALID) else
                  "KILLED" if run.state == CANCELLED else "FINISHED")
        current = existing.info.status if existing is not None else "RUNNING"
        if status != current:
            if status == "RUNNING":
                client.update_run(run_id, status="RUNNING")
            else:
                client.set_terminated(run_id, status=status,
                                      end_time=ms(run.end_time or run.start_time))
    return summary


def export_trackers(fmt: str, exp: ExpDir, cfg: ExperimentConfig, st: ExperimentState,
                    target: str) -> str:
    """Export to ``fmt`` at ``target``; the line to print."""
    runs = trial_runs(exp, cfg, st)
    if fmt == "tensorboard":
        s = export_tensorboard(runs, Path(target), cfg.searcher.metric,
                               cfg.searcher.smaller_is_better)
        return s.line(fmt, target) + f"; view with `tensorboard --logdir {target}` (HParams tab)"
    if fmt == "mlflow":
        uri, artifacts = tracking_uri(target)
        s = export_mlflow(runs, uri, cfg.name, str(exp.root.resolve()), artifacts)
        return s.line(fmt, uri) + f" in MLflow experiment '{cfg.name}'; view with " \
                                  f"`mlflow ui --backend-store-uri {uri}`"
    raise AshaError(f"export: unknown tracker format '{fmt}'")

"""Seeing a search: status (golden text, JSON keys, midway counts, --watch), export with
learning curves (golden), plots (PNG), the HTML report in headless Chromium, job logs.

Golden files live in tests/golden/; regenerate them with ``ASHA_UPDATE_GOLDEN=1 pytest
tests/test_observe.py`` after an intended change, and review the diff.
"""
from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from asha_hpc import cli
from asha_hpc.backends.simulated import synthetic_curve
from asha_hpc.config import parse_config
from asha_hpc.master.loop import Master
from asha_hpc.master.state import replay
from asha_hpc.protocol.expdir import ExpDir, atomic_write
from asha_hpc.views.observe import curve_rows, find_logs, pick_curve_metric, trial_jobs
from asha_hpc.views.status import open_experiment, status_dict

GOLDEN = Path(__file__).parent.parent / "golden"
UPDATE = os.environ.get("ASHA_UPDATE_GOLDEN") == "1"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


# ----------------------------------------------------------------------------- fixtures
def sim_cfg(root: Path):
    cfg = parse_config({
        "name": "golden", "entrypoint": "unused:train",
        "searcher": {"name": "adaptive_asha", "metric": "loss", "max_length": {"epochs": 64},
                     "max_trials": 20, "max_concurrent_trials": 4, "mode": "standard",
                     "divisor": 4},
        "hyperparameters": {"lr": {"type": "log", "minval": -4, "maxval": -1, "base": 10},
                            "width": {"type": "int", "minval": 16, "maxval": 256},
                            "opt": {"name": {"type": "categorical", "vals": ["sgd", "adam"]}}},
        "reproducibility": {"experiment_seed": 7}, "backend": "simulated", "max_restarts": 1,
        "poll_interval_s": 10,
        "simulated": {"unit_seconds": 60, "startup_seconds": 30, "failure_rate": 0.25,
                      "workers": 4}}, "/tmp")
    cfg.experiment_dir = str(root)
    return cfg


@pytest.fixture(scope="module")
def sim_exp(tmp_path_factory) -> Path:
    """A finished simulated search (deterministic: fixed seed, virtual clock)."""
    root = tmp_path_factory.mktemp("observe") / "sim"
    exp = ExpDir.create(root)
    cfg = sim_cfg(exp.root)
    atomic_write(exp.config, yaml.safe_dump(cfg.to_dict(), sort_keys=False).encode())
    st = Master(exp, cfg, progress=lambda s: None).run()
    assert st.lifecycle == "completed"
    return exp.root


@pytest.fixture(scope="module")
def curves_exp(sim_exp, tmp_path_factory) -> Path:
    """The same search with learning curves on disk (the simulated backend writes none): one
    metrics.jsonl per completed segment, plus a torn line and a run folder without a file."""
    root = tmp_path_factory.mktemp("observe_curves") / "sim"
    shutil.copytree(sim_exp, root)
    exp, cfg, records, st = open_experiment(root)
    reached = {}
    for r in records:
        if r["kind"] == "result" and r["status"] == "completed":
            t = st.trials[r["trial"]]
            key = f"t{t.id:05d}-s{r['segment']:03d}-a{r['attempt']:02d}"
            run = exp.run_dir(t.id, key)
            run.mkdir(parents=True, exist_ok=True)
            lines = [json.dumps({"step": s, "time": 1000.0 + s, "train_loss":
                                 synthetic_curve(t.hparams, s, 7) + 0.05})
                     for s in range(reached.get(t.id, 0) + 1, r["length"] + 1)]
            lines.append(json.dumps({"step": r["length"], "time": 2000.0,
                                     "loss": r["metrics"]["loss"]}))
            (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
            reached[t.id] = r["length"]
    with open(sorted(exp.trial_dir(1).glob("runs/*/metrics.jsonl"))[0], "a") as f:
        f.write('{"step": 99, "train_lo')  # torn last line: skipped
    exp.run_dir(2, "t00002-s000-a09").mkdir(parents=True)
    return root


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        if not UPDATE:
            pytest.fail(f"{path} did not exist: written now, review and commit it")
    assert text == path.read_text(), f"differs from {path} (ASHA_UPDATE_GOLDEN=1 to regenerate)"


def run_cli(capsys, *args) -> str:
    rc = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    assert rc == 0, out.err
    return out.out


_FLOAT = re.compile(r"-?\d+\.\d{9,}(e[-+]\d+)?")


def normalise(text: str, root: Path) -> str:
    """Paths to <EXP>, long floats to 10 significant digits (libm may differ in the last ulp)."""
    text = text.replace(str(root), "<EXP>")
    return _FLOAT.sub(lambda m: f"{float(m.group(0)):.10g}", text)


# ----------------------------------------------------------------------------- status
def test_status_golden(sim_exp, capsys):
    golden("status_sim.txt", normalise(run_cli(capsys, "status", sim_exp), sim_exp))


def test_status_midway_golden_and_counts(sim_exp):
    """Halfway through the journal: running/queued/paused per rung add up, and there is an ETA."""
    exp, cfg, records, _ = open_experiment(sim_exp)
    part = records[: len(records) // 2]
    st = replay(cfg, part)
    d = status_dict(exp, cfg, st, part)
    c = st.counts()
    rt = d["rung_table"]
    assert sum(r["running"] for r in rt) == c["running"]
    assert sum(r["queued"] for r in rt) == c["queued"] + c["pending"]
    assert sum(r["paused"] for r in rt) == c["paused"]
    assert c["running"] + c["paused"] > 0
    p = d["progress"]
    assert 0 < p["fraction"] < 1 and p["eta_seconds"] > 0 and p["units_per_hour"] > 0
    from asha_hpc.views.text import render_status_text

    golden("status_sim_midway.txt", normalise(render_status_text(d), sim_exp))


def test_status_json_keys(sim_exp, capsys):
    d = json.loads(run_cli(capsys, "status", sim_exp, "--json"))
    assert d["state"] == "completed"
    assert set(d["trials"]) >= {"total", "running", "paused", "completed", "failed"}
    assert d["rungs"] and set(d["rungs"][0]) >= {"bracket", "rung", "length", "completed", "promoted"}
    assert set(d["best"]) >= {"trial_id", "metric", "hparams"}
    exp, cfg, records, st = open_experiment(sim_exp)
    assert d["best"]["trial_id"] == st.ranked()[0].id
    assert [t["trial_id"] for t in d["top"]] == [t.id for t in st.ranked()[:5]]
    for r in d["rung_table"]:
        assert set(r) >= {"length", "completed", "running", "queued", "paused", "promoted", "failed"}
        # results recorded at the rung: a trial that failed toward it is counted as failed only
        assert r["completed"] == sum(1 for t in st.trials.values() if t.bracket == r["bracket"]
                                     and r["length"] in t.rung_metrics)
    assert d["compute"]["job_hours"] == pytest.approx(sum(t.compute_s for t in st.trials.values()) / 3600)
    assert d["compute"]["gpu_hours"] is None  # the simulated backend says nothing about GPUs
    assert d["progress"]["fraction"] == 1.0 and d["progress"]["units_planned"] > 0
    assert d["events"][-1]["text"] == "search completed"
    assert any("ended without a result" in e for e in d["recent_events"] + [e["text"] for e in d["events"]]) \
        or st.events  # failures were simulated
    assert sum(t.restarts for t in st.trials.values()) > 0


def test_rungs_count_failed_trials_as_failed_not_as_results(tmp_path):
    """The searcher ranks a trial that failed for good at the rung it trained toward, as its
    worst result; the rung table counts it under ``failed``, never under ``completed``."""
    from helpers import sim_cfg as make_sim_cfg

    exp = ExpDir.create(tmp_path / "sim")
    cfg = make_sim_cfg(trials=24, failure_rate=0.3)
    cfg.max_restarts = 0
    atomic_write(exp.config, yaml.safe_dump(cfg.to_dict(), sort_keys=False).encode())
    st = Master(exp, cfg, progress=lambda s: None).run()
    failed = [t for t in st.trials.values() if t.status == "failed"]
    assert failed, "the seed fails some trials for good"
    d = status_dict(*open_experiment(exp.root)[:2], st, open_experiment(exp.root)[2])
    for r in d["rung_table"]:
        assert r["completed"] == sum(1 for t in st.trials.values() if t.bracket == r["bracket"]
                                     and r["length"] in t.rung_metrics), r
    assert sum(r["failed"] for r in d["rung_table"]) == len(failed)


def test_status_watch_plain_and_rich(sim_exp, capsys):
    out = run_cli(capsys, "status", sim_exp, "--watch", "--interval", "0.2", "--iterations", "3")
    assert out.count("--- ") == 1  # finished search: drawn once, then it returns
    assert "bracket  rung  length" in out
    pytest.importorskip("rich")  # the [ui] extra
    from asha_hpc.views.text import watch

    buf = io.StringIO()
    assert watch(lambda: status_dict(*_state(sim_exp)), 0.2, iterations=2, out=buf,
                 use_rich=True) == 0
    assert "top trials by loss" in buf.getvalue()


def _state(root):
    exp, cfg, records, st = open_experiment(root)
    return exp, cfg, st, records


# ----------------------------------------------------------------------------- export
def test_export_golden(sim_exp, capsys, monkeypatch):
    # started / ended are local times with their offset: the same text in every time zone here
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        text = run_cli(capsys, "export", sim_exp, "--format", "csv")
    finally:
        monkeypatch.undo()
        time.tzset()
    golden("export_sim.csv", normalise(text, sim_exp))
    rows = [json.loads(line) for line in run_cli(capsys, "export", sim_exp, "--format", "jsonl").splitlines()]
    assert len(rows) == 20 and {"trial_id", "state", "restarts", "compute_s", "hparams.opt.name",
                                "loss@4", "loss@64"} <= set(rows[0])


def test_export_curves_csv_and_jsonl(curves_exp, tmp_path, capsys):
    out = tmp_path / "curves.csv"
    run_cli(capsys, "export", curves_exp, "--curves", out, "-o", tmp_path / "trials.csv")
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:6] == ["trial_id", "key", "segment", "attempt", "step", "time"]
    assert {"train_loss", "loss"} <= set(rows[0])
    exp, cfg, records, st = open_experiment(curves_exp)
    assert len(rows) == len(curve_rows(exp))
    assert len({r["trial_id"] for r in rows}) == len(st.trials)
    t1 = [r for r in rows if r["trial_id"] == "1"]
    assert [int(r["step"]) for r in t1 if r["train_loss"]] == list(range(1, st.trials[1].length + 1))
    assert all(float(r["train_loss"]) > 0 for r in t1 if r["train_loss"])
    assert all(r["loss"] == "" or float(r["loss"]) > 0 for r in rows)  # missing = empty cell
    with open(tmp_path / "trials.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 20
    run_cli(capsys, "export", curves_exp, "--format", "jsonl", "--curves", tmp_path / "c.jsonl",
            "-o", tmp_path / "t.jsonl")
    lines = (tmp_path / "c.jsonl").read_text().splitlines()
    assert len(lines) == len(rows) and json.loads(lines[0])["trial_id"] == 1
    assert pick_curve_metric(curve_rows(exp), "loss") == "train_loss"


@pytest.mark.parametrize("args", [["export", "-o", "OUT"], ["export", "--curves", "OUT"],
                                  ["report", "-o", "OUT"]], ids=["export", "curves", "report"])
def test_an_output_in_a_folder_that_does_not_exist_is_one_line(sim_exp, tmp_path, capsys, args):
    out = tmp_path / "no" / "such" / "file.csv"
    code = cli.main([args[0], str(sim_exp), *[str(out) if x == "OUT" else x for x in args[1:]]])
    err = capsys.readouterr().err
    assert code == 1 and err == (f"asha-hpc: error: cannot write {out}: No such file or directory "
                                 f"(there is no folder {out.parent}: create it first)\n")
    assert cli.main(["export", str(sim_exp), "-o", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"asha-hpc: error: cannot write {tmp_path}: Is a directory\n"


@pytest.mark.parametrize("logged,metric,want", [
    # a plain loop that logs its step and epoch with every loss: the loss, not a counter
    (["epoch", "loss", "step"], "val/acc", "loss"),
    (["lr-Adam", "epoch", "train_loss"], "val_loss", "train_loss"),  # Lightning's LR monitor
    (["learning_rate", "grad_norm", "loss", "epoch"], "eval_loss", "loss"),  # the HF Trainer
    (["epoch", "step"], "val/acc", "val/acc"),  # nothing but counters: the searcher's metric
])
def test_the_curve_plotted_is_a_metric_not_a_counter(logged, metric, want):
    """Every point logs the names in ``logged``; the searcher's metric only at segment ends."""
    rows = [{"trial_id": 1, "step": s, "metrics": {k: float(s) for k in logged}} for s in range(8)]
    rows += [{"trial_id": 1, "step": 8, "metrics": {metric: 0.5}}]
    assert pick_curve_metric(rows, metric) == want


# ----------------------------------------------------------------------------- plots
def _check_png(data_or_path, shape):
    image = pytest.importorskip("matplotlib.image")
    src = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else str(data_or_path)
    img = image.imread(src, format="png")
    assert img.shape[:2] == shape, img.shape
    rgb = img[..., :3]
    assert float(rgb.std()) > 0.02  # not a single colour
    assert len({tuple(p) for p in (rgb[::7, ::7].reshape(-1, 3) * 255).astype(int).tolist()}) > 10


def test_plot_png(curves_exp, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "search.png"
    run_cli(capsys, "plot", curves_exp, "-o", out, "--width", "1200", "--height", "400")
    _check_png(out, (400, 1200))


def test_a_curve_metric_no_trial_has_is_refused_naming_those_there(curves_exp):
    """plot --curve-metric nope drew the rung results of the searcher's metric instead,
    saying nothing."""
    from asha_hpc.errors import AshaError
    from asha_hpc.views.plots import plot_data

    exp, cfg, records, st = open_experiment(curves_exp)
    with pytest.raises(AshaError, match=r"--curve-metric nope: no trial's curve has it; they "
                                        r"have .*train_loss"):
        plot_data(exp, cfg, st, records, "nope")
    assert plot_data(exp, cfg, st, records, "train_loss")["curve_metric"] == "train_loss"


def test_plot_data_without_curves_uses_rung_results(sim_exp, curves_exp):
    from asha_hpc.views.plots import plot_data

    exp, cfg, records, st = open_experiment(sim_exp)
    d = plot_data(exp, cfg, st, records)
    assert d["curve_source"] == "rung results" and d["curve_metric"] == "loss"
    assert len(d["curves"]) == len(st.trials) and d["rung_lengths"] == [4, 16, 64]
    # the plot's best is the one `best` names (longest length first), not any rung's minimum
    assert sorted(d["rung_counts"]) == [4, 16, 64] and d["best"][-1][1] == st.ranked()[0].metric
    exp, cfg, records, st = open_experiment(curves_exp)
    d = plot_data(exp, cfg, st, records)
    assert d["curve_source"] == "metrics.jsonl" and d["curve_metric"] == "train_loss"
    assert len(d["curves"][1][0]) == st.trials[1].length  # the torn line was skipped


def test_plot_without_matplotlib_is_a_clear_error(sim_exp, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails
    assert cli.main(["plot", str(sim_exp), "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert "matplotlib" in err and "pip install 'asha-hpc[plot]'" in err
    assert not (tmp_path / "x.png").exists()
    # the report still works, with SVG plots
    assert cli.main(["report", str(sim_exp), "-o", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    # curves, best, trials per rung, and the rung agreement (this search promotes)
    assert page.count("<svg") == 4 and "data:image/png" not in page
    # what was searched, and how, travels with the page: experiment.yaml as the search read it
    import html

    config = (sim_exp / "experiment.yaml").read_text()
    assert '<details id="config">' in page and html.escape(config) in page


# ----------------------------------------------------------------------------- report
class _Dom(HTMLParser):
    """Images, trial table rows, and a few attributes of the dumped DOM."""

    def __init__(self):
        super().__init__()
        self.imgs, self.rows, self.attrs = [], [], {}
        self._table, self._row, self._cell = None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        elif tag == "body":
            self.attrs["body"] = a
        elif tag == "table":
            self._table = a.get("id")
            self.attrs[f"table#{self._table}"] = a
        elif tag == "tr" and self._table == "trials":
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row:
                self.rows.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    msg = "headless Chromium not found: apt-get install -y chromium (.ci/run installs it)"
    if _in_ci():
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def _run_chromium(exe, *args) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail("chromium did not finish in 90 s", pytrace=False)
    if r.returncode != 0:
        pytest.fail(f"chromium failed ({r.returncode}): {r.stderr[-2000:]}", pytrace=False)
    return r


def test_report_in_headless_chromium(curves_exp, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    exe = _chromium()
    report = tmp_path / "report.html"
    run_cli(capsys, "report", curves_exp, "-o", report)
    page = report.read_text()
    assert "<script src" not in page and "<link" not in page and "@import" not in page
    assert "http://" not in page and "https://" not in page  # self-contained: nothing fetched

    dom = _Dom()
    dom.feed(_run_chromium(exe, "--dump-dom", report.as_uri()).stdout)
    assert dom.attrs["body"].get("data-js") == "ready"  # the inline script ran
    pngs = [i for i in dom.imgs if i.get("src", "").startswith("data:image/png;base64,")]
    assert len(pngs) == 4  # curves, best, trials per rung, rung agreement
    for i in pngs:
        _check_png(base64.b64decode(i["src"].split(",", 1)[1]), (380, 560))
    exp, cfg, records, st = open_experiment(curves_exp)
    assert len(dom.rows) == len(st.trials)
    assert dom.attrs["table#trials"].get("data-sorted-by") == "rank"
    ranked = [t.id for t in st.ranked()]
    assert [int(r[1]) for r in dom.rows[:3]] == ranked[:3]  # sorted by rank: best first
    assert [int(r[0]) for r in dom.rows[:3]] == [1, 2, 3]

    shot = tmp_path / "shot.png"
    _run_chromium(exe, "--window-size=1200,900", "--hide-scrollbars", f"--screenshot={shot}",
                  report.as_uri())
    _check_png(shot, (900, 1200))


# ----------------------------------------------------------------------------- logs
def test_find_logs_local_and_slurm_layouts(tmp_path):
    exp = ExpDir.create(tmp_path / "exp")
    (exp.jobs / "local-t00001-s000-a00.json").write_text(json.dumps({"pid": 4242, "gpus": []}))
    (exp.jobs / "4242_0_log.out").write_text("local out\n")
    (exp.jobs / "4242_0_log.err").write_text("local err\n")
    (exp.jobs / "777_3").mkdir()
    (exp.jobs / "777_3" / "777_3_0_log.out").write_text("slurm out\n")
    (exp.jobs / "777_3" / "777_3_0_log.err").write_text("slurm err\n")
    assert find_logs(exp, ["local:t00001-s000-a00"]) == {
        "out": str(exp.jobs / "4242_0_log.out"), "err": str(exp.jobs / "4242_0_log.err")}
    assert find_logs(exp, ["777_3"])["err"] == str(exp.jobs / "777_3" / "777_3_0_log.err")
    assert find_logs(exp, ["sim:t00001-s000-a00", "../etc"]) == {"out": None, "err": None}
    records = [
        {"kind": "intent", "trial": 1, "segment": 0, "attempt": 0, "length": 4},
        {"kind": "submitted", "trial": 1, "segment": 0, "attempt": 0, "job_id": "local:t00001-s000-a00"},
        {"kind": "job_dead", "trial": 1, "segment": 0, "attempt": 0, "job_id": "local:t00001-s000-a00",
         "state": "FAILED"},
        {"kind": "intent", "trial": 1, "segment": 0, "attempt": 1, "length": 4},
        {"kind": "submitted", "trial": 1, "segment": 0, "attempt": 1, "job_id": "777_3"},
        {"kind": "result", "trial": 1, "segment": 0, "attempt": 1, "job_id": "777_3",
         "status": "completed", "started": 1.0, "ended": 2.0},
    ]
    jobs = trial_jobs(exp, records, 1)
    assert [(j["index"], j["key"], j["status"]) for j in jobs] == [
        (0, "t00001-s000-a00", "dead (FAILED)"), (1, "t00001-s000-a01", "completed")]
    assert jobs[0]["out"].endswith("4242_0_log.out") and jobs[1]["out"].endswith("777_3_0_log.out")


MODEL = '''
import sys
def train(trial):
    for seg in trial.segments():
        for step in range(1, seg.length + 1):
            trial.report_metrics(step, train_loss=1.0 / step + trial.hparams["x"])
        print(f"hello from trial {trial.id} to {seg.length}")
        print(f"warning from trial {trial.id}", file=sys.stderr)
        seg.report(loss=trial.hparams["x"] + 1.0 / seg.length)
'''


def tiny_search(tmp_path, capsys, trials, at_once, local) -> Path:
    """A real (tiny) local search of MODEL run to its end; the experiment folder."""
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump({
        "name": "tiny", "entrypoint": "model:train",
        "searcher": {"name": "random", "metric": "loss", "max_length": 3, "max_trials": trials,
                     "max_concurrent_trials": at_once},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
        "reproducibility": {"experiment_seed": 1}, "poll_interval_s": 0.1, "local": local}))
    exp_dir = tmp_path / "run"
    assert cli.main(["run", str(tmp_path / "exp.yaml"), "--exp-dir", str(exp_dir)]) == 0
    capsys.readouterr()
    return exp_dir


def test_logs_of_a_worker_show_the_trials_own_part(tmp_path, capsys):
    """One warm worker trains every trial, all into one pair of log files: ``logs`` shows the
    part of the asked trial's segment (between the banners the job writes at each segment's
    start), ``--whole`` the whole log."""
    exp_dir = tiny_search(tmp_path, capsys, trials=3, at_once=1, local={"gpus": [], "workers": 1})
    for tid in (1, 2, 3):
        out = run_cli(capsys, "logs", exp_dir, tid)
        assert f"hello from trial {tid} to 3" in out, out
        assert all(f"hello from trial {o} " not in out for o in {1, 2, 3} - {tid}), out
        assert out.startswith(f"asha_hpc: ==== t{tid:05d}-s000-a00 ==== trial {tid}, segment 0")
        err = run_cli(capsys, "logs", exp_dir, tid, "--err")
        assert f"warning from trial {tid}" in err and "warning from trial" not in err.replace(
            f"warning from trial {tid}", "")
    whole = run_cli(capsys, "logs", exp_dir, 2, "--whole")
    assert all(f"hello from trial {t} to 3" in whole for t in (1, 2, 3))
    assert cli.main(["logs", str(exp_dir), "2"]) == 0
    assert "its part of a log that several segments share: --whole for all" in \
        capsys.readouterr().err


def test_logs_of_a_job_of_one_segment_do_not_speak_of_other_segments(tmp_path, capsys):
    exp_dir = tiny_search(tmp_path, capsys, trials=1, at_once=1, local={"gpus": [], "workers": 0})
    assert cli.main(["logs", str(exp_dir), "1"]) == 0
    err = capsys.readouterr().err
    assert "several segments" not in err
    assert "the job's own lines before its segment left out: --whole for all" in err


def test_local_search_logs_gpus_curves(tmp_path, capsys):
    """A real (tiny) local search: status/best print the job logs, `logs` shows them, results
    carry gpus (1 each: the local backend hands out ids "0"/"1" in CUDA_VISIBLE_DEVICES; no
    real GPU needed), so GPU-hours = job-hours; curves come from metrics.jsonl."""
    exp_dir = tiny_search(tmp_path, capsys, trials=2, at_once=2,
                          local={"gpus": ["0", "1"], "gpus_per_trial": 1})
    d = json.loads(run_cli(capsys, "status", exp_dir, "--json"))
    assert d["compute"]["gpu_hours"] == pytest.approx(d["compute"]["job_hours"])
    assert d["compute"]["gpu_hours"] > 0
    top = d["top"][0]
    assert top["logs"]["out"] and Path(top["logs"]["out"]).is_file()
    text = run_cli(capsys, "status", exp_dir)
    assert "GPU-hours" in text and top["logs"]["out"] in text
    best = json.loads(run_cli(capsys, "best", exp_dir, "--json"))
    assert best[0]["logs"] == top["logs"]
    assert "logs: " in run_cli(capsys, "best", exp_dir)
    tid = top["trial_id"]
    assert f"hello from trial {tid} to 3" in run_cli(capsys, "logs", exp_dir, tid)
    assert f"warning from trial {tid}" in run_cli(capsys, "logs", exp_dir, tid, "--err", "--attempt", "0")
    assert "out: " in run_cli(capsys, "logs", exp_dir, tid, "--list")
    assert cli.main(["logs", str(exp_dir), str(tid), "--attempt", "5"]) == 1
    assert cli.main(["logs", str(exp_dir), "99"]) == 1
    assert "no trial 99" in capsys.readouterr().err
    rows = curve_rows(ExpDir.open(exp_dir))
    assert {r["trial_id"] for r in rows} == {1, 2}
    assert pick_curve_metric(rows, "loss") == "train_loss"


def test_curves_of_a_search_without_points_have_a_header(sim_exp, tmp_path, capsys):
    """The simulated backend writes no learning curves: ``export --curves`` was an empty file,
    which pandas refuses (EmptyDataError). It is the columns' header, read as no rows."""
    run_cli(capsys, "export", sim_exp, "--format", "csv", "--curves", tmp_path / "c.csv",
            "-o", tmp_path / "t.csv")
    assert (tmp_path / "c.csv").read_text() == "trial_id,key,segment,attempt,step,time\n"
    pd = pytest.importorskip("pandas")
    assert pd.read_csv(tmp_path / "c.csv").empty

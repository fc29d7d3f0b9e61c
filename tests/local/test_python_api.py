"""``asha_hpc.run`` and ``asha_hpc.resume`` from a user's script, with real jobs on the local
backend: the script passes its config as a dict and its training function (a plain PyTorch
loop, as PyTorch's own tutorial writes one) as an object, is started from another folder than
its own, is stopped with Ctrl-C and resumed, and reads its results from what ``run`` returns."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from conftest import require_module
from helpers import cli, final_state, journal

TRAIN = '''
import torch
from torch import nn


def make_data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(256, 8, generator=g)
    y = (X[:, :4].sum(dim=1, keepdim=True) > 0).float()
    return X[:192], y[:192], X[192:], y[192:]


class NeuralNetwork(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.linear_relu_stack = nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.linear_relu_stack(x)


def train(trial):
    config = trial.hparams
    model = NeuralNetwork(config["hidden"])
    loss_fn = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"])
    epoch = 0
    if trial.latest_checkpoint:
        state = torch.load(trial.latest_checkpoint / "model.pt")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch = state["epoch"]
    X, y, X_val, y_val = make_data()
    for segment in trial.segments():
        while epoch < segment.length:
            model.train()
            for i in range(0, len(X), 32):
                loss = loss_fn(model(X[i:i + 32]), y[i:i + 32])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            epoch += 1
            SLOW  # noqa
            if trial.should_stop():
                break
        with trial.save_checkpoint() as path:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "epoch": epoch}, path / "model.pt")
        if epoch < segment.length:
            return
        model.eval()
        with torch.no_grad():
            val_loss = loss_fn(model(X_val), y_val).item()
        segment.report(val_loss=val_loss)
'''

SEARCH = '''
import json
import pathlib
import sys

import asha_hpc
from train import train

config = {
    "searcher": {"name": "adaptive_asha", "metric": "val_loss", "max_length": {"epochs": 8},
                 "max_trials": 6, "max_concurrent_trials": 2, "mode": "standard"},
    "hyperparameters": {
        "lr": {"type": "log", "minval": -3, "maxval": -1},
        "hidden": {"type": "categorical", "vals": (16, 32)},
        "momentum": 0.9,
    },
    "reproducibility": {"experiment_seed": 7},
    "poll_interval_s": 0.2,
}
if __name__ == "__main__":
    result = asha_hpc.run(config, entrypoint=train, exp_dir=sys.argv[1], report_every_s=0)
    assert isinstance(result.best["checkpoint"], pathlib.Path)  # as trial.latest_checkpoint
    print(json.dumps({"status": result.status, "best": result.best,
                      "best_hparams": result.best_hparams, "best_value": result.best_value,
                      "rows": len(result.trials()), "failed": result.failed}, default=str))
'''


def _project(tmp_path: Path, slow: bool = False) -> Path:
    """The user's project folder: train.py and search.py side by side."""
    proj = tmp_path / "proj"
    proj.mkdir()
    slow_line = "import time; time.sleep(0.4)" if slow else "pass"
    (proj / "train.py").write_text(TRAIN.replace("SLOW  # noqa", slow_line))
    (proj / "search.py").write_text(SEARCH)
    return proj


def _script(proj: Path, cwd: Path, exp: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(proj / "search.py"), str(exp)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_a_script_runs_a_search_from_a_dict_and_reads_its_best(tmp_path):
    """Started as ``python proj/search.py`` from another folder: Python finds train.py in the
    script's folder, the jobs find it by its file, and what ``run`` returns is what ``best``
    reads from the folder."""
    require_module("torch")
    proj = _project(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    exp = elsewhere / "runs" / "first"
    p = _script(proj, elsewhere, Path("runs/first"))
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    got = json.loads(out.strip().splitlines()[-1])
    cfg_text = (exp / "experiment.yaml").read_text()
    assert f"entrypoint: {proj / 'train.py'}:train" in cfg_text, cfg_text
    _, st = final_state(exp)
    assert got["status"] == "completed" and got["rows"] == len(st.trials) == 6
    assert got["failed"] == [] and got["best"]["checkpoint"] == best_checkpoint(exp)
    assert st.counts()["failed"] == 0
    best = json.loads(cli("best", exp, "--json").stdout)[0]
    assert got["best"]["trial_id"] == best["trial_id"] == st.ranked()[0].id
    assert got["best_hparams"] == best["hparams"] and got["best_hparams"]["momentum"] == 0.9
    assert got["best_hparams"]["hidden"] in (16, 32)  # a tuple in the dict, a categorical's vals
    assert got["best_value"] == best["metric"] == st.ranked()[0].metric
    assert "asha-hpc: done. best trial" in err
    assert "`asha-hpc best" not in err  # the command's advice: the result is in Python's hands


def test_ctrl_c_returns_a_stopped_result_and_resume_goes_on(tmp_path):
    """Ctrl-C stops the master in ``run``, which returns (Ray Tune's ``fit()`` does alike);
    ``asha_hpc.pause`` frees the jobs it left, and ``asha_hpc.resume`` finishes the search from
    the checkpoints, with no retry counted."""
    require_module("torch")
    proj = _project(tmp_path, slow=True)
    exp = tmp_path / "runs" / "nb"
    p = _script(proj, proj, exp)
    try:
        _first_result(exp)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["status"] == "stopped"
    assert f"Continue with: asha_hpc.resume({str(exp)!r})" in err
    # the jobs go on; `pause` stops them, those that wait for a master too (the README's way to
    # free them at once): no process of the search is left
    paused = _python(proj, f"print(asha_hpc.pause({str(exp)!r}).status)")
    assert paused.stdout.split() == ["stopped"], paused.stderr
    assert "search paused" in paused.stderr and f"asha_hpc.resume({str(exp)!r})" in paused.stderr
    _no_process_left(exp)
    resumed = _python(proj, f"""
        r = asha_hpc.resume({str(exp)!r}, report_every_s=0)
        print(r.status, r.best["trial_id"])
    """)
    assert resumed.returncode == 0, resumed.stderr
    status, best = resumed.stdout.split()
    _, st = final_state(exp)
    assert status == "completed" and int(best) == st.ranked()[0].id
    assert len(st.trials) == 6 and all(t.restarts == 0 for t in st.trials.values())


def test_cancel_from_another_process_ends_the_running_search(tmp_path):
    """``asha_hpc.cancel`` from a second process (another notebook, a terminal's Python) while
    ``run`` runs the search: the master cancels the jobs, ``run`` returns ``cancelled``, and no
    process of the search is left; the results so far stay readable."""
    require_module("torch")
    proj = _project(tmp_path, slow=True)
    exp = tmp_path / "runs" / "c"
    p = _script(proj, proj, exp)
    try:
        _first_result(exp)
        cancelled = _python(proj, f"r = asha_hpc.cancel({str(exp)!r}); print(r.status, len(r.trials()))")
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert cancelled.returncode == 0, cancelled.stderr
    status, rows = cancelled.stdout.split()
    assert status == "cancelled" and int(rows) >= 1, cancelled.stderr
    assert "cancelled the search and its running jobs" in cancelled.stderr
    assert p.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["status"] == "cancelled"
    _no_process_left(exp)


def _python(cwd: Path, code: str) -> subprocess.CompletedProcess:
    """``code`` run by a new Python with asha_hpc imported, as a user's second process."""
    return subprocess.run([sys.executable, "-c", "import asha_hpc\n" + textwrap.dedent(code)],
                          cwd=cwd, capture_output=True, text=True, timeout=300)


def best_checkpoint(exp: Path) -> str:
    return json.loads(cli("best", exp, "--json").stdout)[0]["checkpoint"]


def _first_result(exp: Path) -> None:
    """Until the search in ``exp`` has journaled a result (at most 2 minutes)."""
    deadline = time.time() + 120
    while time.time() < deadline and not any(
            r["kind"] == "result" for r in (journal(exp) if (exp / "journal.jsonl").exists()
                                            else [])):
        time.sleep(0.2)


def _no_process_left(exp: Path) -> None:
    deadline = time.time() + 60
    while time.time() < deadline and _processes(exp):
        time.sleep(0.3)
    assert not _processes(exp)


def _processes(exp: Path) -> list[str]:
    """The command lines of the processes that run this search's jobs."""
    out = subprocess.run(["pgrep", "-af", str(exp / "jobs")], capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if "pgrep" not in line]


def test_a_failed_search_raises_with_what_it_computed(tmp_path):
    """A training function that fails in every trial: ``run`` raises ``SearchFailed``, which
    says how to go on once fixed and holds the result to read."""
    (tmp_path / "objective.py").write_text(textwrap.dedent("""
        def objective(trial):
            raise ValueError(f"bad learning rate {trial.hparams['lr']}")
    """))
    script = textwrap.dedent("""
        import asha_hpc
        from objective import objective

        try:
            asha_hpc.run({"searcher": {"name": "random", "metric": "loss", "max_trials": 4,
                                       "max_length": 2, "max_concurrent_trials": 2},
                          "hyperparameters": {"lr": {"type": "double", "minval": 0.1, "maxval": 1}},
                          "max_restarts": 0, "poll_interval_s": 0.2},
                         entrypoint=objective, exp_dir="runs/bad", report_every_s=0)
        except asha_hpc.SearchFailed as e:
            print("FAILED", e.result.exp_dir, e.result.status, len(e.result.failed))
            print(e)
    """)
    r = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    first, message = r.stdout.split("\n", 1)
    assert first.startswith(f"FAILED {tmp_path.resolve() / 'runs' / 'bad'} failed ")
    assert int(first.rsplit(" ", 1)[1]) >= 1  # the trials that failed, by id in .failed
    bad = str(tmp_path.resolve() / "runs" / "bad")
    assert "ValueError" in r.stderr, r.stderr
    assert f"Fix it, then asha_hpc.resume({bad!r}, retry_failed=True)" in message, message

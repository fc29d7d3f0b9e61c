"""``asha_hpc.watch`` in a real Jupyter kernel (nbclient runs the notebook as Jupyter does):
the README's notebook recipe starts the master without blocking the kernel, and ``watch``
shows the search live in one output redrawn in place, not one output per refresh, until the
search ends; then it returns the search (``load``'s result). Outside a notebook it prints as
``status --watch`` does."""
import shutil
import sys
from pathlib import Path

from conftest import require_module
from helpers import cli

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "quadratic"


def _copy_example(folder: Path) -> None:
    """The quickstart example's files (not the __pycache__ a run of it leaves beside them)."""
    for f in EXAMPLE.iterdir():
        if f.is_file():
            shutil.copy(f, folder / f.name)


def test_watch_redraws_one_output_in_place_until_the_search_ends(tmp_path):
    nbformat = require_module("nbformat", package="nbformat")
    nbclient = require_module("nbclient", package="nbclient")
    require_module("ipykernel", package="ipykernel")
    _copy_example(tmp_path)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import subprocess, sys\n"
            "master = subprocess.Popen([sys.executable, '-m', 'asha_hpc.cli', 'run', "
            "'quadratic.yaml', '--exp-dir', 'runs/nb'], stdout=open('master.log', 'w'), "
            "stderr=subprocess.STDOUT)"),
        nbformat.v4.new_code_cell(
            "import asha_hpc\n"
            "result = asha_hpc.watch('runs/nb', every_s=0.5)\n"
            "print('watched:', result.status, result.best['trial_id'])"),
        nbformat.v4.new_code_cell("master.wait(timeout=120)"),
    ]
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = nb.cells[1].outputs
    displays = [o for o in outputs if o.output_type == "display_data"]
    printed = "".join(o.text for o in outputs if o.output_type == "stream")
    # one output, redrawn: the last drawing says the search is over, after several refreshes
    assert len(displays) == 1, outputs
    text = displays[0].data["text/plain"]
    assert "quadratic  [completed]" in text and "the search is over" in text, text
    refreshes = int(text.rsplit("refresh ", 1)[1].split(":")[0])
    assert refreshes > 1, text
    assert printed.startswith("watched: completed "), outputs
    assert nb.cells[2].outputs[0].data["text/plain"] == "0"  # the master ended well


def test_outside_a_notebook_watch_prints_as_status_watch_does(tmp_path, capsys):
    import subprocess

    import asha_hpc

    _copy_example(tmp_path)
    master = subprocess.Popen([sys.executable, "-m", "asha_hpc.cli", "run",
                               str(tmp_path / "quadratic.yaml"), "--exp-dir",
                               str(tmp_path / "run")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        result = asha_hpc.watch(tmp_path / "run", every_s=0.5)  # waits for the folder first
    finally:
        master.wait(timeout=120)
    out = capsys.readouterr().out
    assert result.status == "completed" and master.returncode == 0
    assert out.count("--- ") > 1 and "[completed]" in out.rsplit("--- ", 1)[1], out


def test_watching_a_search_no_master_runs_ends_at_once(tmp_path, capsys):
    """A master stopped (Ctrl-C) mid-search: nothing changes until a resume, so `watch`
    shows it once and returns, rather than holding the cell for ever."""
    import signal
    import subprocess
    import threading
    import time

    import asha_hpc
    from asha_hpc.protocol.journal import read_journal

    _copy_example(tmp_path)
    run = tmp_path / "run"
    master = subprocess.Popen([sys.executable, "-m", "asha_hpc.cli", "run",
                               str(tmp_path / "quadratic.yaml"), "--exp-dir", str(run)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not (run / "journal.jsonl").exists() or not [
                r for r in read_journal(run / "journal.jsonl")[0] if r["kind"] == "result"]:
            assert time.time() < deadline and master.poll() is None
            time.sleep(0.05)
        master.send_signal(signal.SIGINT)
        assert master.wait(timeout=60) == 130
    finally:
        if master.poll() is None:
            master.kill()
    got = []
    watcher = threading.Thread(target=lambda: got.append(asha_hpc.watch(run, every_s=0.2)),
                               daemon=True)
    try:
        watcher.start()
        watcher.join(timeout=30)
        out = capsys.readouterr().out
        assert not watcher.is_alive() and got[0].status == "stopped", out[-3000:]
        assert out.count("--- ") == 1, out[-3000:]
    finally:  # the stopped master's jobs train on by design; a cancel ends them
        cli("cancel", run)


def test_a_folder_no_master_makes_is_named_after_the_wait(tmp_path):
    """A typo in the folder, or a master that failed to start: one line that names the folder
    and how to start a search, not a traceback from reading a missing journal."""
    import pytest

    import asha_hpc
    from asha_hpc.errors import AshaError

    with pytest.raises(AshaError) as e:
        asha_hpc.watch(tmp_path / "runs" / "typo", every_s=0.1, wait_s=0.3)
    assert f"{tmp_path / 'runs' / 'typo'}: no experiment there after 0.3 s" in str(e.value)
    assert "asha-hpc run CONFIG --exp-dir" in str(e.value)

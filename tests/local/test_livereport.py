"""The live report: ``<exp>/report.html`` is there and current while a real local search runs
(rendered by a child process, replaced atomically) and shows how it ended once the master is
done; ``--report-every 0`` writes none."""
from __future__ import annotations

import re
import threading
import time

import pytest
import yaml

from asha_hpc.config import load_config
from asha_hpc.master.loop import Master
from asha_hpc.protocol.expdir import ExpDir, atomic_write
from asha_hpc.views.livereport import REPORT_NAME
from asha_hpc.views.status import open_experiment

from helpers import cli, make_experiment


def shown(page: str):
    """(state, trials listed, results recorded) as the page says."""
    state = re.search(r"state <b>(\w+)</b>", page)
    trials = re.search(r"<h2>All trials \((\d+)\)</h2>", page)
    assert state and trials, page[:500]
    return state.group(1), int(trials.group(1)), page.count(" reached length ")


@pytest.mark.slow  # a search of a few seconds, to look at the report while it runs
def test_report_current_during_and_after_a_local_search(tmp_path):
    # epochs long enough that the search outlasts a few renders (warm workers, workers: auto,
    # leave no start-up between segments to stretch it)
    cfg_path = make_experiment(tmp_path, hp={"sleep": 0.4})
    cfg = load_config(cfg_path)
    exp = ExpDir.create(tmp_path / "exp")
    cfg.experiment_dir = str(exp.root)
    atomic_write(exp.config, yaml.safe_dump(cfg.to_dict(), sort_keys=False).encode())
    master = Master(exp, cfg, progress=lambda s: None, report_every_s=0.5)
    result = {}
    th = threading.Thread(target=lambda: result.setdefault("st", master.run()))
    th.start()
    report = exp.root / REPORT_NAME
    seen = []
    try:
        while th.is_alive():
            if report.exists():
                page = report.read_text()  # always a whole page: atomic rename
                assert page.rstrip().endswith("</html>")
                if not seen or seen[-1][0] != page:
                    seen.append((page, shown(page)))
            time.sleep(0.1)
    finally:
        th.join(timeout=300)
    assert result["st"].lifecycle == "completed"
    during = [s for _, s in seen if s[0] == "running"]
    assert len(during) >= 2, [s for _, s in seen]  # rendered again and again while it ran
    assert during[-1][2] > during[0][2]  # ... and each time with the results so far
    assert 'http-equiv="refresh"' in next(p for p, s in seen if s[0] == "running")

    page = report.read_text()
    _, _, records, st = open_experiment(exp.root)
    state, trials, _ = shown(page)
    assert (state, trials) == ("completed", len(st.trials))  # the last render: after the end
    assert 'http-equiv="refresh"' not in page
    assert "search completed" in page
    assert oct(report.stat().st_mode & 0o777) == oct(0o644)


def test_cli_run_writes_the_report_unless_told_not_to(tmp_path):
    cfg = make_experiment(tmp_path, searcher={"max_trials": 2, "max_length": 4})
    r = cli("run", cfg, "--exp-dir", tmp_path / "a")
    assert "live report" in r.stderr
    assert shown((tmp_path / "a" / REPORT_NAME).read_text())[:2] == ("completed", 2)
    cli("run", cfg, "--exp-dir", tmp_path / "b", "--report-every", "0")
    assert not (tmp_path / "b" / REPORT_NAME).exists()

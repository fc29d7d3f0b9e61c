"""``python -m asha_hpc.report`` (the name the README and users' scripts call) and
``python -m asha_hpc.job.job_report`` write the same lines into $ASHA_REPORT_FILE."""
import json
import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["asha_hpc.report", "asha_hpc.job.job_report"])
def test_report_command_appends_the_metrics(tmp_path, module):
    out = tmp_path / "report.jsonl"
    env = dict(os.environ, ASHA_REPORT_FILE=str(out))
    for args in (["--step", "5", "loss=0.8"], ["val_loss=0.31", "accuracy=0.9", "opt=adam"]):
        subprocess.run([sys.executable, "-m", module, *args], env=env, check=True)
    assert [json.loads(line) for line in out.read_text().splitlines()] == [
        {"step": 5, "metrics": {"loss": 0.8}},
        {"metrics": {"val_loss": 0.31, "accuracy": 0.9, "opt": "adam"}},
    ]
    bad = subprocess.run([sys.executable, "-m", module, "val_loss"], env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "'val_loss' is not NAME=VALUE" in bad.stderr

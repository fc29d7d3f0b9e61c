"""A command that reported its segment's result and then never exits (a torchrun worker hung in
torch's gloo teardown, freeing a DDP model after its peer left): the job waited for it for
ever, and the search with it. After the rank-exit grace it is killed, with every process
below it (torchrun's workers run in sessions of their own), and its result stands."""
import json
import sys
import time

import yaml

from asha_hpc.protocol.pids import pid_alive

from helpers import cli, final_state

HANGS = '''
import json, os, subprocess, sys, time
target = int(os.environ["ASHA_TARGET_LENGTH"])
hp = json.loads(os.environ["ASHA_HPARAMS"])
# a worker of its own session, as torchrun starts them, that hangs too
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                          start_new_session=True)
with open(os.path.join(os.environ["ASHA_TRIAL_DIR"], "workers"), "a") as f:
    f.write(f"{worker.pid}\\n")
with open(os.path.join(os.environ["ASHA_CHECKPOINT_DIR"], "state.json"), "w") as f:
    json.dump({"epoch": target}, f)
with open(os.environ["ASHA_REPORT_FILE"], "a") as f:
    f.write(json.dumps({"metrics": {"loss": (hp["x"] - 0.3) ** 2 + 1.0 / target}}) + "\\n")
time.sleep(600)  # the teardown that never returns
'''


def test_a_command_that_hangs_after_its_result_is_killed_and_its_result_stands(tmp_path):
    (tmp_path / "hangs.py").write_text(HANGS)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "hangs", "command": [sys.executable, "hangs.py"],
        "searcher": {"name": "async_halving", "metric": "loss", "max_length": 4, "num_rungs": 2,
                     "divisor": 2, "max_trials": 2, "max_concurrent_trials": 2},
        "hyperparameters": {"x": {"type": "double", "minval": 0, "maxval": 1}},
        "environment_variables": {"ASHA_RANK_EXIT_GRACE_S": "3"},
        "poll_interval_s": 0.2, "max_restarts": 0, "local": {"gpus": [], "workers": 0}}))
    exp = tmp_path / "run"
    t0 = time.time()
    cli("run", tmp_path / "c.yaml", "--exp-dir", exp, timeout=300)
    assert time.time() - t0 < 120
    _, st = final_state(exp)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0
    assert all(t.restarts == 0 and t.infra_retries == 0 for t in st.trials.values())
    workers = [int(x) for t in st.trials.values()
               for x in (exp / "trials" / f"{t.id:05d}" / "workers").read_text().split()]
    assert len(workers) >= 2 and not any(pid_alive(p) for p in workers)
    logs = "".join(p.read_text(errors="replace") for p in (exp / "jobs").rglob("*.err"))
    assert "the command reported its result 3 s ago and has not exited" in logs
    ckpts = [json.loads(p.read_text()) for p in exp.glob("trials/*/checkpoints/*/state.json")]
    assert ckpts  # the checkpoint it left before the hang was published

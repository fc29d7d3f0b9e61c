"""A command run once per task (``tasks_per_node: 2``, the ``srun``-per-task style a
LightningCLI or Transformers DDP script uses): its rank 0 leaves the checkpoint in the folder
that the ranks' jobs share, and rank 0's job alone publishes it. When every rank's job published
it, the two raced: one moved the files into a checkpoint the other never joined, and the trial
was left with none (a promoted trial trained again from the start)."""
from __future__ import annotations

import sys

import yaml

from helpers import cli, final_state, journal

SCRIPT = '''import json, os, sys, time
rank = int(os.environ["RANK"])
latest = os.environ["ASHA_LATEST_CHECKPOINT"]
trained = json.load(open(os.path.join(latest, "state.json")))["trained"] if latest else 0
target = int(os.environ["ASHA_TARGET_LENGTH"])
with open(os.path.join(os.environ["ASHA_TRIAL_DIR"], f"starts.rank{rank}"), "a") as f:
    f.write(f"{trained}\\n")
run = os.environ["ASHA_RUN_DIR"]  # the ranks meet, as DDP's init_process_group makes them
open(os.path.join(run, f"met.rank{rank}"), "w").close()
while not os.path.exists(os.path.join(run, f"met.rank{1 - rank}")):
    time.sleep(0.05)
if rank == 0:
    json.dump({"trained": target}, open(os.path.join(os.environ["ASHA_CHECKPOINT_DIR"], "state.json"), "w"))
    with open(os.environ["ASHA_REPORT_FILE"], "a") as f:
        f.write(json.dumps({"metrics": {"loss": 1.0 / (target + float(sys.argv[1]))}}) + "\\n")
else:
    time.sleep(0.5)  # ends after rank 0 has written: both ranks' jobs see the files
'''


def test_a_commands_checkpoint_is_published_once_for_all_its_ranks(tmp_path):
    (tmp_path / "ranks.py").write_text(SCRIPT)
    cfg = {"name": "ranks", "entrypoint": {"command": [sys.executable, "ranks.py", "${hparams.x}"]},
           "hyperparameters": {"x": {"type": "categorical", "vals": [1, 2]}},
           "searcher": {"name": "async_halving", "metric": "loss", "max_length": 4,
                        "num_rungs": 2, "divisor": 2, "max_trials": 2,
                        "max_concurrent_trials": 1},
           "reproducibility": {"experiment_seed": 1}, "poll_interval_s": 0.2,
           "max_restarts": 0, "local": {"gpus": [], "tasks_per_node": 2}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    cli("run", tmp_path / "c.yaml", "--exp-dir", tmp_path / "e", timeout=120)  # it hung
    _, st = final_state(tmp_path / "e")
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0
    results = [r for r in journal(tmp_path / "e") if r["kind"] == "result"]
    assert len(results) == 3 and all(r["checkpoint"] for r in results), results
    (promoted,) = [t for t in st.trials.values() if t.length == 4]
    trial_dir = tmp_path / "e" / "trials" / f"{promoted.id:05d}"
    for rank in (0, 1):  # the promoted segment went on from the first one's checkpoint
        assert (trial_dir / f"starts.rank{rank}").read_text().split() == ["0", "2"], rank

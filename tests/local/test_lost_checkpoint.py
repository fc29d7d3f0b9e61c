"""A trial's checkpoint deleted by hand (a scratch purge, a cleanup of the wrong folder) before
the trial goes on: its job trains it again from the start, and the master says so, naming the
checkpoint, rather than let the lost work pass in silence."""
import json
import shutil
from pathlib import Path

from helpers import cli, final_state, make_experiment


def test_a_promotion_whose_checkpoint_was_deleted_is_named_and_trains_from_the_start(tmp_path):
    cfg = make_experiment(tmp_path, searcher={"max_compute": 40, "max_trials": 8})
    exp = tmp_path / "run"
    r = cli("run", cfg, "--exp-dir", exp)
    assert "max_compute (40 units) ended the search" in r.stderr
    _, before = final_state(exp)
    short = [t for t in before.trials.values()
             if 0 < t.length < 16 and t.checkpoint and Path(t.checkpoint).exists()]
    for t in short:  # cleaned up by hand: the checkpoints of the trials that had stopped
        shutil.rmtree(exp / "trials" / f"{t.id:05d}" / "checkpoints")
    r = cli("resume", exp, "--max-compute", "1000")
    _, after = final_state(exp)
    went_on = [t for t in short if after.trials[t.id].length > t.length]
    assert went_on, "no trial whose checkpoint went was promoted: the test shows nothing"
    for t in went_on:
        assert (f"trial {t.id}: its checkpoint {Path(t.checkpoint).name} is gone from "
                f"{Path(t.checkpoint).parent} (deleted or moved?) and no other is left: it "
                f"trains again from the start to length") in r.stderr
        starts = [json.loads(x) for x in (exp / "trials" / f"{t.id:05d}" / "env.jsonl")
                  .read_text().splitlines()]
        froms = [s["from"] for s in starts if "from" in s]
        assert froms[0] == 0 and froms[1] == 0  # from nothing, as said
    assert r.stderr.count("(deleted or moved?)") == len(went_on)  # once each

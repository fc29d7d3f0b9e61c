"""Checkpoint pruning keeps a newer checkpoint another rank is already writing."""
from pathlib import Path

from asha_hpc.job.trial import Trial


def test_prune_keeps_newer_temporary_folder(tmp_path: Path):
    t = Trial(trial_id=1, hparams={}, trial_dir=tmp_path, run_dir=tmp_path / "runs" / "k",
              segments=[4], first_segment=0, metric="loss", key="t00001-s000-a01")
    root = tmp_path / "checkpoints"
    names = ["t00001-s000-a00-0002", ".tmp-t00001-s000-a00-0003",  # a killed attempt's
             "t00001-s000-a01-0002", "t00001-s000-a01-0003",  # older / just published
             ".tmp-t00001-s000-a01-0004"]  # rank 1 already writes the next one
    for n in names:
        (root / n).mkdir(parents=True)
    t._prune(root, keep="t00001-s000-a01-0003")
    assert sorted(p.name for p in root.iterdir()) == [".tmp-t00001-s000-a01-0004",
                                                      "t00001-s000-a01-0003"]

"""An experiment folder moved or copied elsewhere (to project space, to a colleague) names its
own checkpoints: export, best and the results API named the old folder's, which was gone, or
was another copy. And best names a checkpoint whose files no longer match its manifest so."""
import csv
import shutil
from pathlib import Path

from asha_hpc.views.results import trials

from conftest import REPO_ROOT
from helpers import cli


def test_a_copied_experiment_names_its_own_checkpoints(tmp_path):
    cli("run", REPO_ROOT / "examples" / "quadratic" / "quadratic.yaml", "--exp-dir",
        tmp_path / "first")
    shutil.copytree(tmp_path / "first", tmp_path / "copy")
    cli("export", tmp_path / "copy", "--format", "csv", "-o", tmp_path / "t.csv")
    named = [r["checkpoint"] for r in csv.DictReader(open(tmp_path / "t.csv")) if r["checkpoint"]]
    assert named and all(c.startswith(str(tmp_path / "copy") + "/") for c in named)
    best = cli("best", tmp_path / "copy").stdout
    assert f"checkpoint: {tmp_path / 'copy'}/trials/" in best
    assert all(r["checkpoint"].startswith(str(tmp_path / "copy"))
               for r in trials(tmp_path / "copy") if r["checkpoint"])
    shutil.rmtree(tmp_path / "first")  # moved: the old folder is gone
    assert f"checkpoint: {tmp_path / 'copy'}/trials/" in cli("best", tmp_path / "copy").stdout
    # a checkpoint whose files no longer match its manifest is named so, not offered as sound
    best_ckpt = [x.split("checkpoint: ")[1].split()[0] for x in
                 cli("best", tmp_path / "copy").stdout.splitlines() if "checkpoint: " in x][0]
    victim = next(p for p in Path(best_ckpt).iterdir() if p.name != "MANIFEST.json")
    victim.write_text(victim.read_text() + "torn")
    assert f"checkpoint: {best_ckpt} (incomplete: {victim.name} has the wrong size)" in \
        cli("best", tmp_path / "copy").stdout

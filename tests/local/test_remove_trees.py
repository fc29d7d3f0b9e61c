"""Checkpoint folders the master removes for retention: one that cannot be removed (here a
filesystem mounted inside it; for users a read-only or immutable folder) is returned with why,
not taken for gone (the journal said its space was freed while it was all still there)."""
import subprocess

from asha_hpc.protocol.expdir import remove_trees

from helpers import mount_tmpfs


def test_a_folder_that_cannot_be_removed_is_named_with_why(tmp_path):
    stuck, fine = tmp_path / "t1" / "checkpoints", tmp_path / "t2" / "checkpoints"
    for p in (stuck, fine):
        (p / "c-0001").mkdir(parents=True)
        (p / "c-0001" / "weights.bin").write_bytes(b"x" * 1024)
    mount_tmpfs(stuck / "c-0001" / "busy", "1m")
    try:
        kept = remove_trees([stuck, fine, tmp_path / "missing"])
        assert list(kept) == [stuck] and "busy" in kept[stuck], kept
        assert "Device or resource busy" in kept[stuck]
        assert not fine.exists() and stuck.exists()
    finally:
        subprocess.run(["umount", "-l", str(stuck / "c-0001" / "busy")], check=False)
    assert remove_trees([stuck]) == {} and not stuck.exists()

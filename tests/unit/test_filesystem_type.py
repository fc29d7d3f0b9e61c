"""Which filesystem an experiment folder is on (protocol/expdir.filesystem_type), for the
warning and the message of a search whose Slurm jobs cannot write into it."""
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asha_hpc.protocol.expdir import NODE_LOCAL_FS, filesystem_type


def test_a_folder_is_on_the_filesystem_of_its_mount_point():
    assert filesystem_type(Path("/dev/shm")) == "tmpfs"  # Linux: POSIX shared memory
    assert filesystem_type(Path("/dev/shm/not/made/yet")) == "tmpfs"  # its nearest parent's
    assert filesystem_type(Path("/proc/self/fd")) == "proc"
    assert filesystem_type(Path("/")) not in (None, "tmpfs", "proc")
    assert {"tmpfs", "ext4"} <= NODE_LOCAL_FS and not {"nfs", "nfs4", "lustre"} & NODE_LOCAL_FS


def test_a_symlink_counts_where_it_leads(tmp_path):
    (tmp_path / "shm").symlink_to("/dev/shm")
    assert filesystem_type(tmp_path / "shm" / "exp") == "tmpfs"


def test_the_last_mount_at_a_point_hides_the_ones_before_and_no_table_says_nothing(tmp_path):
    table = tmp_path / "mounts"
    table.write_text("tmpfs /dev/shm tmpfs rw 0 0\nfs01:/export /dev/shm nfs4 rw 0 0\nshort\n")
    assert filesystem_type(Path("/dev/shm/exp"), table) == "nfs4"
    assert filesystem_type(Path("/dev/shm"), tmp_path / "missing") is None


def test_a_mount_point_with_a_space_in_its_name(tmp_path):
    """/proc/mounts writes a space as \\040."""
    folder = tmp_path / "my projects"
    folder.mkdir()
    r = subprocess.run(["mount", "-t", "ramfs", "ramfs", str(folder)], capture_output=True,
                       text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a ramfs (needs root): {r.stderr.strip()}")
    try:
        assert filesystem_type(folder / "exp") == "ramfs"
        assert filesystem_type(tmp_path) != "ramfs"
    finally:
        subprocess.run(["umount", str(folder)], check=False)
    assert not os.path.ismount(folder)


@settings(max_examples=200, deadline=None)
@given(name=st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
                    max_size=40))
def test_any_folder_name_a_user_gives_reads_as_a_type_and_never_raises(name):
    """A folder that does not exist yet, with any name (spaces, '..', unicode, a leading
    '/'): the filesystem it would be made on."""
    kind = filesystem_type(Path("/dev/shm") / name)
    assert kind is None or (isinstance(kind, str) and kind)
    if ".." not in name and not name.startswith("/"):
        assert kind == "tmpfs"

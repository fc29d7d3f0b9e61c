"""Which filesystem an experiment folder is on (protocol/expdir.filesystem_type), for the
message of a search whose Slurm jobs could not write their logs into it."""
from pathlib import Path

from asha_hpc.protocol.expdir import NODE_LOCAL_FS, filesystem_type

MOUNTS = """\
/dev/vda1 / ext4 rw,relatime 0 0
tmpfs /tmp tmpfs rw,nosuid,nodev 0 0
fs01:/export/home /home nfs4 rw,vers=4.2 0 0
10.1.0.5@o2ib:/scratch /scratch lustre rw,flock 0 0
fs01:/export/my\\040projects /home/ann/my\\040projects nfs rw 0 0
short line
"""


def test_the_deepest_mount_point_holding_the_folder_names_its_filesystem(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text(MOUNTS)
    for folder, kind in [("/tmp/asha/exp", "tmpfs"), ("/tmp", "tmpfs"), ("/tmpx/exp", "ext4"),
                         ("/home/ann/run", "nfs4"), ("/scratch/ann/exp", "lustre"),
                         ("/home/ann/my projects/exp", "nfs"), ("/opt/exp", "ext4")]:
        assert filesystem_type(Path(folder), mounts) == kind, folder
    assert {"tmpfs", "ext4"} <= NODE_LOCAL_FS and not {"nfs", "nfs4", "lustre"} & NODE_LOCAL_FS


def test_a_symlink_counts_where_it_leads(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text(MOUNTS.replace("/scratch", str(tmp_path / "real")))
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert filesystem_type(tmp_path / "link" / "exp", mounts) == "lustre"


def test_without_a_mount_table_it_is_not_known(tmp_path):
    assert filesystem_type(tmp_path, tmp_path / "missing") is None
    assert filesystem_type(Path("/"), Path("/proc/mounts")) is not None  # this machine's

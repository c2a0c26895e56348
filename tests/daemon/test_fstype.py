"""Network filesystems are recognised so the daemon relies on scanning there."""

from __future__ import annotations

from pathlib import Path

from heygem_daemon.intake.fstype import filesystem_type, is_network_filesystem


def test_the_longest_mount_point_decides(tmp_path):
    """/srv/share on nfs4 inside / on ext4: a folder in the share is on nfs4."""
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/vda / ext4 rw 0 0\nnas:/x /srv/share nfs4 rw 0 0\n//nas/y /srv/smb\\040drive cifs rw 0 0\n")
    assert filesystem_type(Path("/srv/share/inbox"), str(mounts)) == "nfs4"
    assert is_network_filesystem(Path("/srv/smb drive/in"), str(mounts))
    assert not is_network_filesystem(Path("/srv/sharex"), str(mounts))


def test_a_local_temporary_folder_is_not_a_network_filesystem(tmp_path):
    """The test's own tmp folder is local on this machine."""
    assert not is_network_filesystem(tmp_path)

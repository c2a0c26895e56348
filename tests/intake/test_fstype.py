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


def test_an_autofs_mount_point_is_the_filesystem_autofs_mounted_there(tmp_path):
    """autofs lists the mount point twice (its trigger and the real share): the real one decides,
    whichever line comes first."""
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/vda / ext4 rw 0 0\n"
        "/etc/auto.nas /mnt/nas autofs rw,fd=7,pgrp=1,timeout=300,minproto=5,maxproto=5,indirect 0 0\n"
        "nas:/export /mnt/nas nfs4 rw,vers=4.2 0 0\n"
        "//nas/media /mnt/media cifs rw 0 0\n"
        "/etc/auto.media /mnt/media autofs rw,fd=8,direct 0 0\n"
    )
    assert "nfs4" == filesystem_type(Path("/mnt/nas/inbox"), str(mounts))
    assert "cifs" == filesystem_type(Path("/mnt/media/inbox"), str(mounts))
    assert is_network_filesystem(Path("/mnt/nas/inbox"), str(mounts))


def test_an_autofs_mount_point_not_yet_mounted_is_autofs_and_scanned(tmp_path):
    """Before autofs has mounted anything only its own entry is there; it is taken for a share."""
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/vda / ext4 rw 0 0\n/etc/auto.nas /mnt/nas autofs rw,indirect 0 0\n")
    assert "autofs" == filesystem_type(Path("/mnt/nas/inbox"), str(mounts))
    assert is_network_filesystem(Path("/mnt/nas/inbox"), str(mounts))


def test_a_later_mount_on_the_same_point_hides_the_earlier_one(tmp_path):
    """Mounting over a mount point stacks: the last line for that point is what a path reaches."""
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/vda / ext4 rw 0 0\n/dev/vdb /srv ext4 rw 0 0\nnas:/x /srv nfs rw 0 0\n")
    assert "nfs" == filesystem_type(Path("/srv/inbox"), str(mounts))

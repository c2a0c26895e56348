"""Which filesystem a folder lives on, to decide whether inotify can help at all.

inotify only sees changes made through this kernel: on NFS/SMB shares, files
written by other hosts never raise an event, so the daemon relies on its scan
there and skips the observer (which would only cost watches).  Read from
/proc/self/mounts because neither os nor watchdog exposes the fs type.
"""

from __future__ import annotations

import os
from pathlib import Path

#: "autofs" alone means the share is not mounted yet; autofs mounts network shares
#: almost always, and scanning costs only the inotify wake-up hints if it does not
NETWORK_FS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "9p", "afs", "fuse.sshfs",
    "fuse.glusterfs", "fuse.cephfs", "fuse.rclone", "lustre", "gpfs", "beegfs", "virtiofs", "autofs",
})


def filesystem_type(path: Path, mounts: str = "/proc/self/mounts") -> str | None:
    """The fs type of the mount holding ``path`` (longest matching mount point), or None."""
    try:
        target = os.path.realpath(path)
        with open(mounts, encoding="utf-8") as fh:
            rows = [line.split() for line in fh]
    except OSError:
        return None
    best, fstype = -1, None
    for row in rows:
        if len(row) < 3:
            continue
        point = row[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (len(point) > best or (len(point) == best and _covers(row[2], fstype))):
            best, fstype = len(point), row[2]
    return fstype


def _covers(later: str, earlier: str | None) -> bool:
    """Whether a later entry for the same mount point is the one files live on.

    A later mount is stacked on top of an earlier one, so it wins; except that
    autofs is only the trigger: when it has mounted the share, the table lists
    both, and the real filesystem (nfs, cifs, ...) is where the files are."""
    return later != "autofs" or earlier in (None, "autofs")


def is_network_filesystem(path: Path, mounts: str = "/proc/self/mounts") -> bool:
    return filesystem_type(path, mounts) in NETWORK_FS

"""What this process's control groups allow it: the memory left below their limits, its CPU quota.

systemd puts a service in a cgroup of its own (``MemoryMax=``, ``CPUQuota=`` are limits on
it), and a container runtime does the same (``docker --memory``, ``--cpus``).  /proc/meminfo
and the CPU affinity do not show those limits, so start-up reads them here to plan the
videos in flight (runtime.py).  Hand-written: neither the standard library nor psutil reads
cgroup limits.  Both hierarchies are read: cgroup v2 (Debian 12+, Ubuntu 22.04+) and v1's
per-controller mounts (older hosts, some container set-ups, this build box).
"""

from __future__ import annotations

from pathlib import Path

#: a cgroup v1 memory limit this large means none (the kernel shows "unlimited" as 2**63 rounded to a page)
_NO_LIMIT = 1 << 60
#: each version's memory files: the limit, the usage, and the page cache it can reclaim (in memory.stat)
_MEMORY_V1 = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
_MEMORY_V2 = ("memory.max", "memory.current", "inactive_file")


def cgroup_memory_left(self_cgroup: Path, cgroups: Path) -> int | None:
    """The least that this process's memory cgroup and its ancestors leave below their limits
    (their reclaimable page cache counts as free, as in MemAvailable); None: no limit, or none
    readable."""
    found = _groups(self_cgroup, cgroups, "memory")
    if found is None:
        return None
    chain, v1 = found
    limit_file, used_file, reclaimable = _MEMORY_V1 if v1 else _MEMORY_V2
    least: int | None = None
    for group in chain:
        limit = _read_int(group / limit_file)
        if limit is not None and limit < _NO_LIMIT:
            used = _read_int(group / used_file) or 0
            left = max(0, limit - used + _stat(group / "memory.stat", reclaimable))
            least = left if least is None else min(least, left)
    return least


def cgroup_cpu_quota(self_cgroup: Path, cgroups: Path) -> float | None:
    """The CPU time this process's cgroup and its ancestors allow, in cores (the least of them);
    None: no quota, or none readable."""
    found = _groups(self_cgroup, cgroups, "cpu")
    if found is None:
        return None
    chain, v1 = found
    least: float | None = None
    for group in chain:
        if v1:
            quota, period = _read_int(group / "cpu.cfs_quota_us"), _read_int(group / "cpu.cfs_period_us")
        else:  # "max 100000" (none) or "400000 100000"
            fields = _read(group / "cpu.max").split()
            quota, period = (_int(fields[0]), _int(fields[1])) if len(fields) == 2 else (None, None)
        if quota is not None and period:  # v1 writes -1 for none, which _read_int does not take
            cores = quota / period
            least = cores if least is None else min(least, cores)
    return least


def _groups(self_cgroup: Path, cgroups: Path, controller: str) -> tuple[list[Path], bool] | None:
    """This process's group for ``controller`` and its ancestors up to the mount, and whether that
    is a v1 hierarchy: v1's mount of the controller where there is one, else the v2 hierarchy."""
    try:
        entries = [line.split(":", 2) for line in self_cgroup.read_text(encoding="ascii").splitlines()]
    except OSError:
        return None
    v1 = [e[2] for e in entries if len(e) == 3 and controller in e[1].split(",")]
    v2 = [e[2] for e in entries if len(e) == 3 and e[0] == "0" and e[1] == ""]
    if v1 and (cgroups / controller).is_dir():  # "cpu" is often a link to "cpu,cpuacct"
        mount, path, is_v1 = cgroups / controller, v1[0], True
    elif v2:
        mount, path, is_v1 = cgroups, v2[0], False
    else:
        return None
    group = _group_dir(mount, path)
    chain = [group]
    while chain[-1] != mount:
        chain.append(chain[-1].parent)
    return chain, is_v1


def _group_dir(mount: Path, path: str) -> Path:
    """The folder of cgroup ``path`` under ``mount``.  A container (or a cgroup namespace)
    mounts its own subtree there while /proc/self/cgroup may name it from the host's root:
    the longest tail of the path that exists under the mount is this process's group, and
    the mount itself at worst."""
    parts = [p for p in path.split("/") if p and p != ".."]
    for start in range(len(parts)):
        candidate = mount.joinpath(*parts[start:])
        if candidate.is_dir():
            return candidate
    return mount


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return ""


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None  # "max", "-1": no limit


def _read_int(path: Path) -> int | None:
    return _int(_read(path))


def _stat(path: Path, key: str) -> int:
    for line in _read(path).splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return _int(value.strip()) or 0
    return 0

"""The Debian package: what debian/ ships agrees with systemd/ and the unit, the environment
builder picks torch's build from one setting, and the .deb builds with Debian's tools.

The whole life cycle (install, upgrade with a job running, remove, purge) needs a booted Debian
root and takes minutes: scripts/package_lifecycle.sh, run by .ci/run after the suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEBIAN = REPO / "debian"
BUILD_VENV = DEBIAN / "build-venv"


def test_the_package_ships_the_repositorys_unit_sysusers_and_tmpfiles_files_not_copies():
    """debian/heygem-daemon.{service,sysusers,tmpfiles} are links to systemd/, so they cannot drift."""
    links = {name: os.readlink(DEBIAN / name) for name in
             ("heygem-daemon.service", "heygem-daemon.sysusers", "heygem-daemon.tmpfiles")}
    assert {"heygem-daemon.service": "../systemd/heygem-daemon.service",
            "heygem-daemon.sysusers": "../systemd/heygem-daemon.sysusers.conf",
            "heygem-daemon.tmpfiles": "../systemd/heygem-daemon.tmpfiles.conf"} == links


def test_the_units_program_is_the_environment_the_package_builds():
    """ExecStart runs /opt/heygem/venv/bin/heygem-daemon, the link build-venv points at its environment."""
    unit = (REPO / "systemd" / "heygem-daemon.service").read_text(encoding="utf-8")
    assert "ExecStart=/opt/heygem/venv/bin/heygem-daemon run --config /etc/heygem/daemon.toml" in unit
    assert "ROOT=${HEYGEM_PACKAGE_ROOT:-/opt/heygem}" in BUILD_VENV.read_text(encoding="utf-8")


@pytest.fixture
def share(tmp_path: Path) -> Path:
    """/usr/share/heygem-daemon as the package lays it out: a wheel, torch's pin, the template."""
    folder = tmp_path / "share"
    folder.mkdir()
    (folder / "heygem_daemon-0.1.0-py3-none-any.whl").write_bytes(b"wheel")
    (folder / "torch-requirement").write_text("torch==2.13.0\n", encoding="utf-8")
    shutil.copy(DEBIAN / "default.template", folder / "default.template")
    return folder


def _dry_run(share: Path, tmp_path: Path, settings: str | None = None, **env: str) -> subprocess.CompletedProcess:
    defaults = tmp_path / "default"
    if settings is not None:
        defaults.write_text(settings, encoding="utf-8")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HEYGEM_")}
    return subprocess.run(["sh", str(BUILD_VENV), "--dry-run"], capture_output=True, text=True, timeout=30,
                          env={**clean, "HEYGEM_PACKAGE_SHARE": str(share), "HEYGEM_PACKAGE_ROOT": str(tmp_path / "opt"),
                               "HEYGEM_PACKAGE_DEFAULTS": str(defaults), **env})


def _torch_step(result: subprocess.CompletedProcess) -> str:
    assert 0 == result.returncode, result.stderr
    [step] = [line for line in result.stdout.splitlines() if line.endswith("torch==2.13.0")]
    return " ".join(step.split()[2:])


def test_without_a_setting_torch_is_pypis_build_which_runs_on_cuda_and_cpu_hosts(share, tmp_path):
    """No /etc/default/heygem-daemon, no HEYGEM_TORCH: plain `pip install torch==2.13.0` (PyPI's CUDA build)."""
    assert "torch==2.13.0" == _torch_step(_dry_run(share, tmp_path))


def test_heygem_torch_cpu_in_the_settings_file_takes_pytorchs_cpu_index(share, tmp_path):
    """HEYGEM_TORCH=cpu: torch from https://download.pytorch.org/whl/cpu, the rest from PyPI."""
    result = _dry_run(share, tmp_path, "HEYGEM_TORCH=cpu\n")
    assert "--index-url https://download.pytorch.org/whl/cpu torch==2.13.0" == _torch_step(result)
    assert result.stdout.splitlines()[-1].endswith("heygem_daemon-0.1.0-py3-none-any.whl")
    assert "--index-url" not in result.stdout.splitlines()[-1]


def test_the_environment_beats_the_file_and_torch_pip_options_replace_the_index(share, tmp_path):
    """HEYGEM_TORCH=cuda apt install ... overrides the file; HEYGEM_TORCH_PIP_OPTIONS replaces the index
    choice (another CUDA build, or a folder of wheels), and HEYGEM_PIP_OPTIONS goes to every step."""
    result = _dry_run(share, tmp_path, "HEYGEM_TORCH=cpu\n", HEYGEM_TORCH="cuda")
    assert "torch==2.13.0" == _torch_step(result)
    result = _dry_run(share, tmp_path, 'HEYGEM_TORCH_PIP_OPTIONS="--index-url https://download.pytorch.org/whl/cu126"\n'
                                       'HEYGEM_PIP_OPTIONS="--proxy http://proxy:3128"\n')
    assert "--proxy http://proxy:3128 --index-url https://download.pytorch.org/whl/cu126 torch==2.13.0" == \
        _torch_step(result)
    assert "--proxy http://proxy:3128" in result.stdout.splitlines()[-1]


def test_a_wrong_torch_setting_stops_with_the_values_it_takes(share, tmp_path):
    """HEYGEM_TORCH=gpu: exit 1, naming cuda and cpu and the file to fix."""
    result = _dry_run(share, tmp_path, "HEYGEM_TORCH=gpu\n")
    assert (1, "heygem-daemon: HEYGEM_TORCH must be cuda or cpu, not 'gpu' "
               f"({tmp_path / 'default'})") == (result.returncode, result.stderr.strip())


def test_the_deb_builds_from_a_clean_clone_with_the_conffile_and_the_systemd_files(tmp_path):
    """scripts/build-deb.sh (dpkg-buildpackage): daemon.toml is a conffile; the unit, sysusers and
    tmpfiles files, the wheel and the environment builder are inside; the wheel holds the program."""
    for tool in ("dpkg-buildpackage", "dh", "dpkg-deb", "git"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt install dpkg-dev debhelper); "
                        "scripts/package_lifecycle.sh installs and checks it in CI")
    out = tmp_path / "deb"
    subprocess.run([str(REPO / "scripts" / "build-deb.sh"), str(out)], check=True, capture_output=True, timeout=300)
    [deb] = out.glob("heygem-daemon_*_all.deb")
    conffiles = subprocess.run(["dpkg-deb", "-I", str(deb), "conffiles"], capture_output=True, text=True, check=True)
    assert ["/etc/heygem/daemon.toml"] == conffiles.stdout.split()
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    names = {line.split()[-1].lstrip(".") for line in listing.splitlines()}
    assert {"/lib/systemd/system/heygem-daemon.service", "/usr/lib/sysusers.d/heygem-daemon.conf",
            "/usr/lib/tmpfiles.d/heygem-daemon.conf", "/etc/heygem/daemon.toml",
            "/usr/lib/heygem-daemon/build-venv", "/usr/share/heygem-daemon/torch-requirement"} <= names
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path / "x")], check=True)
    [wheel] = (tmp_path / "x" / "usr/share/heygem-daemon").glob("heygem_daemon-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert {"heygem_daemon/cli.py", "heygem_daemon/notify/spool.py"} <= set(archive.namelist())

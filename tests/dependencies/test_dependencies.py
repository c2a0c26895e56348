"""The declared dependencies install as binary wheels on every supported Python.

A new release of any dependency can drop a Python version's wheel or pin
numpy; these tests resolve the whole set the way ``scripts/setup.sh`` installs
it (``pip install`` of the package and its ``test`` extra), for each Python
version ``pyproject.toml`` declares, without installing anything.
They need PyPI and skip, saying so, when it cannot be reached.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PYTHONS = ["3.11", "3.12", "3.13"]


def _declared() -> list[str]:
    project = PYPROJECT["project"]
    # the ray extra too: .ci/run installs it, and every node of a cluster installs it
    return project["dependencies"] + project["optional-dependencies"]["test"] + project["optional-dependencies"]["ray"]


def _pypi_reachable() -> bool:
    try:
        urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=10).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def resolutions(tmp_path_factory) -> dict[str, dict]:
    """pip's --report of a dry-run install for each Python version, resolved concurrently."""
    if not _pypi_reachable():
        pytest.skip("PyPI (https://pypi.org) is unreachable: dependency resolution needs the network")
    work = tmp_path_factory.mktemp("resolve")
    running = {}
    for version in PYTHONS:
        report = work / f"report-{version}.json"
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                   "--target", str(work / f"never-{version}"), "--python-version", version,
                   "--only-binary=:all:", "--report", str(report), *_declared()]
        running[version] = (subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
                            report)
    results = {}
    for version, (process, report) in running.items():
        output, _ = process.communicate(timeout=900)
        results[version] = {"rc": process.returncode, "output": output[-3000:],
                            "report": json.loads(report.read_text()) if report.is_file() else None}
    return results


def _installs(result: dict) -> dict[str, str]:
    return {item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
            for item in result["report"]["install"]}


def test_pyproject_declares_the_supported_pythons():
    """requires-python and the classifiers name 3.11-3.13, the versions resolved below."""
    project = PYPROJECT["project"]
    assert project["requires-python"] == ">=3.11,<3.14"
    declared = [c.rsplit(" :: ", 1)[1] for c in project["classifiers"]
                if c.startswith("Programming Language :: Python :: 3.")]
    assert declared == PYTHONS


@pytest.mark.network
@pytest.mark.parametrize("version", PYTHONS)
def test_dependencies_resolve_as_wheels(resolutions, version):
    """Every declared dependency, torch's pin included, has a wheel for this Python; no mediapipe."""
    result = resolutions[version]
    assert result["rc"] == 0, f"pip could not resolve the dependencies for Python {version}:\n{result['output']}"
    installs = _installs(result)
    assert installs["torch"].split("+")[0] == "2.13.0"  # the local CPU build is 2.13.0+cpu
    assert "ai-edge-litert" in installs
    assert "mediapipe" not in installs


@pytest.mark.network
def test_numpy_2_on_python_313(resolutions):
    """On Python 3.13 the resolved numpy is 2.x (nothing in the set caps it below 2)."""
    result = resolutions["3.13"]
    assert result["rc"] == 0, result["output"]
    assert int(_installs(result)["numpy"].split(".")[0]) >= 2

"""Imports run downward, with the data flow: wiring → notify, housekeeping → intake → jobs → render → engines →
media, faces, speech → the shared bottom (types, fsutil, errors, logging, settings, workerproc).

Engines sit above speech/: the builtin engine's ``prepare`` is built from speech analysis,
while nothing in media/, faces/ or speech/ knows an engine; the value types they once took
from engines/base.py (AudioClip, Face, SAMPLE_RATE) live in types.py at the bottom.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "heygem_daemon"

#: top to bottom; a module may import its own package and anything in a lower layer
LAYERS: list[set[str]] = [
    # executors/ is wiring too: it decides where videos render, and a Ray actor is a process start-up
    {"cli", "commands", "service", "runtime", "status", "sdnotify", "__init__", "executors"},
    {"notify", "housekeeping"},
    {"intake"},
    {"jobs"},
    # one output video: plan, tracking or the cached track, the engine, encode (jobs hand it a task)
    {"render"},
    {"engines"},
    {"media", "faces", "speech"},
    {"types", "fsutil", "errors", "logging", "settings", "workerproc", "cgroups"},
]
#: layers whose members may also import each other (the wiring, and the bottom)
OPEN_LAYERS = {0, len(LAYERS) - 1}


def _part(dotted: str) -> str:
    """The top-level part of heygem_daemon a dotted module name lies in."""
    return dotted.split(".")[1] if "." in dotted else "__init__"


def _layer(part: str) -> int:
    return next(index for index, members in enumerate(LAYERS) if part in members)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: list[str]) -> bool:
    path = PACKAGE.parent.joinpath(*dotted)
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _targets(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) for every import of our own package in ``path``."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("heygem_daemon")]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if (node.module or "").startswith("heygem_daemon"):
                    found.append((node.lineno, node.module))
                continue
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            if node.module:
                found.append((node.lineno, ".".join([*base, node.module])))
            else:
                # ``from . import name``: a module when one has that name, else the package itself
                found += [(node.lineno, ".".join([*base, a.name]) if _is_module([*base, a.name]) else ".".join(base))
                          for a in node.names]
    return found


def _violations() -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _part(_module_name(path))
        for line, target in _targets(path):
            dest = _part(target)
            if dest == source:
                continue
            up = _layer(dest) < _layer(source)
            sideways = _layer(dest) == _layer(source) and _layer(source) not in OPEN_LAYERS
            if up or sideways:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}")
    return bad


def test_every_part_of_the_package_has_a_layer():
    """A new package or top-level module must be placed in LAYERS before it is used."""
    parts = {_part(_module_name(p)) for p in PACKAGE.rglob("*.py")}
    placed = set().union(*LAYERS)
    assert [] == sorted(parts - placed)


def test_no_import_runs_against_the_data_flow():
    """No module imports a higher layer, nor a sibling package of its own layer."""
    assert [] == _violations()


def test_the_checker_sees_relative_imports_inside_functions(tmp_path):
    """The checker resolves ``from ..x import y`` at any depth, in function bodies too."""
    probe = PACKAGE / "media" / "probe.py"
    assert any(target == "heygem_daemon.errors" for _, target in _targets(probe))
    commands = PACKAGE / "commands.py"
    assert any(target == "heygem_daemon.service" for _, target in _targets(commands))

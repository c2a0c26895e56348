"""Engine names → factories. Engines are imported lazily: torch-heavy modules
load only when a job asks for them."""

from __future__ import annotations

import importlib
import time
from typing import Callable

from ..errors import EngineError
from ..logging import get_logger
from .base import Engine, EngineConfig

log = get_logger()

EngineFactory = Callable[[EngineConfig], Engine]

#: name → "module:callable"; tests and plugins may add entries with ``register``
_BUILTIN_ENGINES: dict[str, str] = {
    "builtin": "heygem_daemon.engines.builtin:BuiltinEngine",
    "wav2lip": "heygem_daemon.engines.wav2lip:Wav2LipEngine",
    "musetalk": "heygem_daemon.engines.musetalk:MuseTalkEngine",
}


class EngineRegistry:
    """Creates each engine once per (name, device) and keeps it resident."""

    def __init__(self, config: EngineConfig, extra: dict[str, str] | None = None) -> None:
        self._config = config
        self._targets = dict(_BUILTIN_ENGINES)
        self._targets.update(extra or {})
        self._instances: dict[str, Engine] = {}

    @property
    def names(self) -> list[str]:
        return sorted(self._targets)

    def knows(self, name: str) -> bool:
        return name in self._targets

    def get(self, name: str) -> Engine:
        if name not in self._instances:
            self._instances[name] = self._create(name)
        return self._instances[name]

    def check(self, name: str) -> None:
        """Raise EngineError when engine ``name`` cannot run with this configuration
        (unknown, or its model not configured), without loading any model: an engine
        class may say so in a ``check_config(config)`` static method."""
        check = getattr(self._factory(name), "check_config", None)
        if check is not None:
            check(self._config)

    def _create(self, name: str) -> Engine:
        factory = self._factory(name)
        started = time.perf_counter()
        engine = factory(self._config)
        # the daemon creates its default engine before READY; this event shows
        # when any engine is created and what it cost (doctor prints it too)
        log.info("engine_created", engine=name, device=str(getattr(engine, "device", "cpu")),
                 load_s=round(time.perf_counter() - started, 3))
        return engine

    def _factory(self, name: str) -> EngineFactory:
        target = self._targets.get(name)
        if target is None:
            raise EngineError(
                f"Unknown engine '{name}'.", hint=f"Use one of: {', '.join(self.names)}."
            )
        module_name, _, attr = target.partition(":")
        try:
            factory: EngineFactory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise EngineError(f"Engine '{name}' is not available: {exc}.") from exc
        return factory

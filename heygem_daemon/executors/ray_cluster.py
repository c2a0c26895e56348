"""The Ray executor: a job's videos rendered by engine actors spread over a Ray cluster.

The daemon that claimed the job stays the only writer to the share: actors stream
each encoded MP4 back in chunks and this module writes them into the unit's
partial file in staging; the runner commits it.  Ray is imported here only, so the
default install never needs it.

Failures.  A video that fails on its own (no face, a bad file) comes back as a
``Failed`` message and fails once, as on one host; Ray never retries application
errors (``retry_exceptions=False``).  A worker or node that dies mid-video makes
the stream raise a Ray system error: the partial file is truncated and the video
is handed to another live actor, up to ``ray.max_video_attempts`` times in all.
Ray's own task retry (``max_task_retries``) is not used for renders: a retried
stream would splice chunks of two different encodes into one file, and a restart
in the dead actor's slot waits for a node that may never come back.  The dead
actor is dropped from the pool, so Ray frees its resources; the pool grows again
at the next job when the cluster has room.  Committing stays the runner's, once
per output, so no video is ever published twice.
"""

from __future__ import annotations

import contextvars
import socket
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ..engines.base import Engine
from ..errors import EngineError, HeygemError, StopRequested
from ..jobs.execution import Finish, VideoUnit, raise_first
from ..jobs.report import OutputReport
from ..logging import get_logger
from ..render.plan import resolve_features
from ..settings import RaySettings, Settings
from .ray_worker import Failed, HeygemRenderer, RenderRequest, Rendered

if TYPE_CHECKING:
    import ray

log = get_logger()

#: chunks in flight per stream before the actor waits for the daemon (bounds object-store use)
STREAM_BACKPRESSURE = 4
#: how long a job's pool stays resident after the job (a new job reuses the loaded engines)
IDLE_RELEASE_S = 300.0
#: how often waits on the cluster look at the stop flag
POLL_S = 0.5


def connect(config: RaySettings) -> Any:
    """Join the cluster at ``config.address``; returns the ``ray`` module. Raises HeygemError."""
    try:
        import ray
    except ImportError as exc:
        raise HeygemError("executor 'ray' needs Ray, which is not installed.",
                          hint="Install it with: pip install 'heygem-daemon[ray]'.") from exc
    if ray.is_initialized():
        return ray
    hint = ("Start it with 'ray start --head' (and 'ray start --address=HEAD:6379' on each worker host), "
            "or set executor = \"local\".")
    try:
        _reachable(_head_address(config.address), config.connect_timeout_s)
        # log_to_driver=False: workers' output stays in the cluster's log files, not in our JSON log
        ray.init(address=config.address, namespace="heygem", log_to_driver=False, configure_logging=False)
    except (OSError, RuntimeError, ValueError) as exc:  # ConnectionError is an OSError
        raise HeygemError(f"Cannot join the Ray cluster at '{config.address}': {_cause(exc).rstrip('.')}.", hint=hint) from exc
    return ray


def _head_address(address: str) -> str:
    """HOST:PORT of the head; "auto" is resolved as ray.init resolves it (RAY_ADDRESS, then
    the cluster ``ray start`` recorded on this host), raising ConnectionError when there is none."""
    if address != "auto":
        return address
    # a private helper of the pinned Ray (the ray extra), the one ray.init itself uses for "auto"
    from ray._private.services import canonicalize_bootstrap_address_or_die

    return str(canonicalize_bootstrap_address_or_die(address))


def _reachable(address: str, timeout_s: float) -> None:
    """Fail fast when nothing listens there: ray.init retries a dead head for many minutes
    (measured: more than 10 with ray 2.60), which would hold the daemon's start-up."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got '{address}'")
    with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
        pass


@dataclass
class _Actor:
    name: str
    handle: Any
    ready: Any
    #: filled once the actor answered describe(): node name, device
    node: str = ""
    device: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Pool:
    """The resident actors of one engine."""

    engine: str
    actors: list[_Actor] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Work:
    """The units still to render, shared by the actors' threads.

    A thread ends only when nothing is left to take *and* nothing is in flight: a
    unit in flight comes back when its actor dies, and some live thread must be there
    to take it.
    """

    def __init__(self, units: Sequence[VideoUnit], threads: int) -> None:
        self.todo: deque[VideoUnit] = deque(units)
        self.attempts: dict[int, int] = {}
        self.cond = threading.Condition()
        self.in_flight = 0
        self.live = threads
        self.abort = False

    def take(self) -> VideoUnit | None | bool:
        """A unit; None when all is done; False after a short wait (look at the stop flag, ask again)."""
        with self.cond:
            if self.todo and not self.abort:
                self.in_flight += 1
                return self.todo.popleft()
            if self.finished():
                return None
            self.cond.wait(POLL_S)
            return False

    def done(self) -> None:
        with self.cond:
            self.in_flight -= 1
            self.cond.notify_all()

    def give_back(self, unit: VideoUnit) -> None:
        with self.cond:
            self.todo.appendleft(unit)
            self.in_flight -= 1
            self.cond.notify_all()

    def finished(self) -> bool:
        with self.cond:
            return self.abort or (not self.todo and self.in_flight == 0)

    def stop_all(self) -> None:
        with self.cond:
            self.abort = True
            self.cond.notify_all()

    def leave(self) -> bool:
        """A thread whose actor died leaves unless it is the last one (that one gets a new actor)."""
        with self.cond:
            if self.live > 1:
                self.live -= 1
                return True
            return False

    def exit(self) -> None:
        with self.cond:
            self.live -= 1


class RayExecutor:
    name = "ray"

    def __init__(self, settings: Settings, extra_engines: dict[str, str]) -> None:
        self.settings = settings
        self.config = settings.ray
        self.extra_engines = dict(extra_engines)
        self.ray = connect(self.config)
        self._pools: dict[str, _Pool] = {}
        self._idle_timer: threading.Timer | None = None
        self._names: dict[str, str] = {}
        self._serial = 0
        log.info("ray_connected", address=self.config.address, nodes=len(self._alive_nodes()),
                 resources=self.ray.cluster_resources())

    # -- the executor protocol ----------------------------------------------------------------------
    def prepare(self, engine_name: str) -> None:
        """Start the default engine's actors before the daemon reports ready; they load in the
        background, and each is logged (``ray_actor_ready``, with its node) once its engine is loaded."""
        pool = self._pool_for(engine_name, wanted=self._capacity())
        for actor in pool.actors:
            threading.Thread(target=self._announce, args=(actor,), name="ray-actor-ready", daemon=True).start()

    def _announce(self, actor: _Actor) -> None:
        try:
            self._resolve(actor, timeout=None)
        except (HeygemError, self.ray.exceptions.RayError) as exc:
            log.warning("ray_actor_unavailable", actor=actor.name, error=str(exc))

    def render(self, engine: Engine, units: Sequence[VideoUnit], finish: Finish,
               check_stop: Callable[[], None]) -> None:
        if not units:
            return
        self._cancel_idle_release()
        try:
            pool = self._pool_for(engine.name, wanted=len(units))
            inputs = _Inputs(self.ray, shipped=not self.config.shared_paths)
            actors = list(pool.actors)
            work = _Work(units, len(actors))
            with ThreadPoolExecutor(len(actors), thread_name_prefix="ray-video") as threads:
                futures = [threads.submit(contextvars.copy_context().run, self._drive, pool, actor, work, inputs,
                                          finish, check_stop) for actor in actors]
                errors = [f.exception() for f in futures]
        finally:
            self._schedule_idle_release()
        raise_first(errors)

    def close(self) -> None:
        self._cancel_idle_release()
        self._release_all()
        if self.ray.is_initialized():
            self.ray.shutdown()

    # -- one actor's thread ----------------------------------------------------------------------------
    def _drive(self, pool: _Pool, actor: _Actor, work: _Work, inputs: "_Inputs", finish: Finish,
               check_stop: Callable[[], None]) -> None:
        try:
            while self._wait_ready(actor, work, check_stop):
                unit = work.take()
                if unit is None:
                    break
                if unit is False:
                    check_stop()
                    continue
                assert isinstance(unit, VideoUnit)
                try:
                    self._render_one(actor, unit, inputs, finish, check_stop)
                except _Lost as lost:
                    self._drop(pool, actor)
                    self._retry_or_fail(unit, work, lost, finish)
                    if work.leave():
                        return
                    actor = self._replace(pool)
                    continue
                work.done()
        except StopRequested:
            # the daemon must stop now: end the actor's render with it (a new actor serves the next start)
            self._drop(pool, actor)
            work.stop_all()
            raise
        except BaseException:
            work.stop_all()
            raise
        work.exit()

    def _wait_ready(self, actor: _Actor, work: _Work, check_stop: Callable[[], None]) -> bool:
        """Wait for a new actor to be placed and loaded; False when no work is left for it."""
        while not self._resolve(actor, timeout=POLL_S):
            check_stop()
            if work.finished():
                return False
        return True

    def _resolve(self, actor: _Actor, timeout: float | None) -> bool:
        """Whether the actor has loaded its engine (learning its node the first time)."""
        if actor.node:
            return True
        done, _ = self.ray.wait([actor.ready], timeout=timeout)
        if not done:
            return False
        try:
            info = self.ray.get(done[0])
        except self.ray.exceptions.RayError as exc:
            raise EngineError(f"The engine could not be started on the Ray cluster: {_cause(exc)}") from exc
        with actor.lock:
            if not actor.node:
                actor.node, actor.device = self._node_name(info["node_id"]), info["device"]
                log.info("ray_actor_ready", actor=actor.name, node=actor.node, device=actor.device,
                         pid=info["pid"], host=info["host"])
        return True

    def _render_one(self, actor: _Actor, unit: VideoUnit, inputs: "_Inputs", finish: Finish,
                    check_stop: Callable[[], None]) -> None:
        unit.started = time.perf_counter()
        unit.where = f"ray {actor.node} {actor.device}"
        with unit.bound():
            try:
                # a node gets the voice's features themselves: wait here while the job computes them
                features = resolve_features(unit.features, check_stop)
            except HeygemError as exc:
                finish(unit, exc)
                return
            log.info("ray_video_started", node=actor.node, actor=actor.name)
            request = RenderRequest(label=f"{unit.job}: {unit.pair.video} + {unit.pair.audio}", task=unit.task,
                                    features=features, report_json=unit.report.model_dump_json(),
                                    chunk_bytes=self.config.chunk_mib * 1024 * 1024)
            stream = actor.handle.render.options(
                num_returns="streaming", _generator_backpressure_num_objects=STREAM_BACKPRESSURE,
            ).remote(request, inputs.ref(unit.task.video_path), inputs.ref(unit.task.audio_path))
            try:
                outcome = self._receive(stream, unit, check_stop, actor.node)
            except self.ray.exceptions.RayTaskError as exc:
                # our render code raised something that is not a HeygemError: this video fails alone
                outcome = EngineError(f"Rendering failed on Ray node {actor.node}: {_cause(exc)}")
            except self.ray.exceptions.RayError as exc:
                unit.task.output_path.unlink(missing_ok=True)
                raise _Lost(actor.node, exc) from exc
        finish(unit, outcome)

    def _receive(self, stream: Any, unit: VideoUnit, check_stop: Callable[[], None], node: str
                 ) -> HeygemError | None:
        """Consume one render's messages; the MP4's chunks go straight into the partial file."""
        with open(unit.task.output_path, "wb") as partial:
            while True:
                check_stop()
                ready, _ = self.ray.wait([stream], timeout=POLL_S)
                if not ready:
                    continue
                try:
                    item = self.ray.get(next(stream))
                except StopIteration:
                    break
                if isinstance(item, bytes):
                    partial.write(item)
                elif isinstance(item, float):
                    unit.progress(item)
                elif isinstance(item, (Rendered, Failed)):
                    _update(unit.report, item.report_json)
                    unit.where = f"{unit.where.rsplit(' ', 1)[0]} {item.device}"
                    _relay(item.events, node)
                    if isinstance(item, Failed):
                        return item.error
            partial.flush()
        return None

    def _retry_or_fail(self, unit: VideoUnit, work: _Work, lost: "_Lost", finish: Finish) -> None:
        tries = work.attempts.get(unit.pair.index, 0) + 1
        work.attempts[unit.pair.index] = tries
        with unit.bound():
            if tries < self.config.max_video_attempts:
                log.warning("ray_video_retried", node=lost.node, attempt=tries, error=_cause(lost.error))
                work.give_back(unit)
                return
            log.error("ray_video_given_up", node=lost.node, attempts=tries, error=_cause(lost.error))
        work.done()
        finish(unit, EngineError(f"Its Ray worker was lost {tries} times (last on node {lost.node}: "
                                 f"{_cause(lost.error)}).", hint="Check the cluster's nodes with 'ray status'."))

    # -- the pools -------------------------------------------------------------------------------------
    def _pool_for(self, engine_name: str, wanted: int) -> _Pool:
        for other in [name for name in self._pools if name != engine_name]:
            # one engine's actors at a time: a job of another engine needs the cluster's room
            self._release(self._pools.pop(other))
        pool = self._pools.setdefault(engine_name, _Pool(engine_name))
        target = max(1, min(wanted, self._capacity()))
        with pool.lock:
            nodes = {self._node_name(n["NodeID"]) for n in self._alive_nodes()}
            pool.actors = [a for a in pool.actors if self._alive(a, nodes)]
            while len(pool.actors) < target:
                pool.actors.append(self._new_actor(engine_name))
        return pool

    def _replace(self, pool: _Pool) -> _Actor:
        actor = self._new_actor(pool.engine)
        with pool.lock:
            pool.actors.append(actor)
        return actor

    def _drop(self, pool: _Pool, actor: _Actor) -> None:
        with pool.lock:
            if actor in pool.actors:
                pool.actors.remove(actor)
        self.ray.kill(actor.handle, no_restart=True)

    def _new_actor(self, engine_name: str) -> _Actor:
        self._serial += 1
        name = f"heygem-{engine_name}-{self._serial}-{time.strftime('%H%M%S')}"
        remote = self.ray.remote(HeygemRenderer).options(
            name=name, num_cpus=self.config.num_cpus, num_gpus=self.config.num_gpus,
            resources=dict(self.config.resources) or None,
            # the daemon replaces lost actors itself (module doc); Ray only reports the loss
            max_restarts=0, max_task_retries=0,
        )
        handle = remote.remote(_plain(self.settings), engine_name, self.extra_engines)
        log.info("ray_actor_created", actor=name, engine=engine_name, num_gpus=self.config.num_gpus,
                 num_cpus=self.config.num_cpus)
        return _Actor(name, handle, handle.describe.remote())

    def _alive(self, actor: _Actor, nodes: set[str]) -> bool:
        """A resident actor whose node is among ``nodes``, the cluster's live ones (a dead node's
        actors are dropped)."""
        if not actor.node:
            return True  # still starting
        if actor.node in nodes:
            return True
        self.ray.kill(actor.handle, no_restart=True)
        return False

    def _capacity(self) -> int:
        """How many actors the cluster's resources hold (or ray.actors_per_engine)."""
        if self.config.actors_per_engine:
            return self.config.actors_per_engine
        total = self.ray.cluster_resources()
        asks = {"CPU": self.config.num_cpus, "GPU": self.config.num_gpus, **self.config.resources}
        fits = [int(total.get(key, 0.0) // need) for key, need in asks.items() if need > 0]
        return max(1, min(fits)) if fits else max(1, len(self._alive_nodes()))

    def _alive_nodes(self) -> list[dict[str, Any]]:
        return [n for n in self.ray.nodes() if n.get("Alive")]

    def _node_name(self, node_id: str) -> str:
        if node_id not in self._names:
            for node in self.ray.nodes():
                self._names[node["NodeID"]] = node.get("NodeName") or node.get("NodeManagerAddress", "?")
        return self._names.get(node_id, node_id[:8])

    def _release(self, pool: _Pool) -> None:
        with pool.lock:
            for actor in pool.actors:
                self.ray.kill(actor.handle, no_restart=True)
            pool.actors.clear()
        log.info("ray_actors_released", engine=pool.engine)

    def _release_all(self) -> None:
        for name in list(self._pools):
            self._release(self._pools.pop(name))

    def _schedule_idle_release(self) -> None:
        # resident engines make the next job start at once; an idle daemon gives the room back
        # so other daemons sharing the cluster can place their actors
        self._idle_timer = threading.Timer(IDLE_RELEASE_S, self._release_all)
        self._idle_timer.daemon = True
        self._idle_timer.start()

    def _cancel_idle_release(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None


def describe_cluster(settings: Settings, extra_engines: dict[str, str], engine_names: list[str]) -> list[str]:
    """For ``doctor``: each node with its resources and the engines it can run (a probe task per node)."""
    ray = connect(settings.ray)
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from .ray_worker import node_engines

    probe = ray.remote(node_engines)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    asks = [probe.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
            .remote(_plain(settings), engine_names, extra_engines) for n in nodes]
    lines = [f"{len(nodes)} node(s) at {settings.ray.address}; each engine actor asks for "
             f"{settings.ray.num_cpus:g} CPU, {settings.ray.num_gpus:g} GPU"]
    for node, ask in zip(nodes, asks):
        res = node.get("Resources", {})
        head = f"{node.get('NodeName') or node.get('NodeManagerAddress')} ({node.get('NodeManagerAddress')}): " \
               f"{res.get('CPU', 0):g} CPU, {res.get('GPU', 0):g} GPU"
        try:
            found = ray.get(ask, timeout=120)
        except ray.exceptions.RayError as exc:
            lines.append(f"{head}; cannot run heygem-daemon here: {_cause(exc)}")
            continue
        ok = [name for name, verdict in found["engines"].items() if verdict == "ok"]
        missing = [f"{name} ({verdict})" for name, verdict in found["engines"].items() if verdict != "ok"]
        cuda = f"; CUDA: {', '.join(found['cuda'])}" if found["cuda"] else ""
        lines.append(f"{head}{cuda}; engines: {', '.join(ok) or 'none'}"
                     + (f"; not: {'; '.join(missing)}" if missing else ""))
    return lines


class _Inputs:
    """Each input file of the job once in the object store (when the share is not on the nodes)."""

    def __init__(self, ray_module: Any, *, shipped: bool) -> None:
        self.ray = ray_module
        self.shipped = shipped
        self._refs: dict[Path, Any] = {}
        self._lock = threading.Lock()

    def ref(self, path: Path) -> Any:
        if not self.shipped:
            return None
        with self._lock:
            if path not in self._refs:
                # a memory map: the file's pages go straight into the object store, not through a copy
                data = np.memmap(path, dtype=np.uint8, mode="r") if path.stat().st_size else np.zeros(0, np.uint8)
                self._refs[path] = self.ray.put(np.asarray(data))
            return self._refs[path]


@dataclass
class _Lost(Exception):
    """The actor (its worker process or its node) died under a video."""

    node: str
    error: BaseException


def _relay(events: list[dict[str, Any]], node: str) -> None:
    """A node's events for this video, into the daemon's log (and so the job's log.jsonl), with the node."""
    for event in events:
        name, level = str(event.pop("event", "node_event")), str(event.pop("level", "info"))
        event.pop("node", None)
        emit = getattr(log, level if level in ("debug", "info", "warning", "error") else "info")
        emit(name, node=node, **event)


def _update(report: OutputReport, report_json: str) -> None:
    fresh = OutputReport.model_validate_json(report_json)
    for name in OutputReport.model_fields:
        setattr(report, name, getattr(fresh, name))


def _plain(settings: Settings) -> Settings:
    """The settings as a plain Settings (the loaded ones are a subclass made per config file)."""
    return Settings.model_validate(settings.model_dump())


def _cause(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


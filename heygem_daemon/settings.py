"""Settings: one object built at start-up and passed down.

Sources, strongest first: explicit arguments (the CLI's flags), ``HEYGEM_*``
environment variables (nested keys with ``__``, e.g.
``HEYGEM_LIMITS__MAX_DURATION_S``), the TOML file (``--config`` or
``/etc/heygem/daemon.toml``), then the defaults below.  Only this module reads
the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_PATH = Path("/etc/heygem/daemon.toml")

ShorterPolicy = Literal["pingpong", "loop", "freeze"]
LongerPolicy = Literal["trim", "keep"]


class OutputSettings(BaseModel):
    """Defaults for the ``[output]`` table of job.toml."""

    model_config = {"extra": "forbid"}

    max_height: int = Field(1080, ge=16, le=8640)
    crf: int = Field(20, ge=0, le=51)
    preset: Literal[
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
    ] = "veryfast"
    when_video_shorter: ShorterPolicy = "pingpong"
    when_video_longer: LongerPolicy = "trim"


class LimitSettings(BaseModel):
    """Inputs over these limits are validation errors, never an out-of-memory."""

    model_config = {"extra": "forbid"}

    max_file_bytes: int = Field(8 * 1024**3, ge=1)
    max_duration_s: float = Field(2 * 3600.0, gt=0)
    max_width: int = Field(7680, ge=16)
    #: inputs taller than this are refused (``output.max_height`` scales down instead);
    #: "max_height", its name before 2026-11-29, is still accepted here
    max_input_height: int = Field(4320, ge=16, validation_alias=AliasChoices("max_input_height", "max_height"))
    max_pixels: int = Field(7680 * 4320, ge=256)
    max_fps: float = Field(120.0, gt=0)
    max_streams: int = Field(16, ge=1)
    max_files_per_job: int = Field(500, ge=1)
    max_pairs_per_job: int = Field(1000, ge=1)
    max_job_toml_bytes: int = Field(256 * 1024, ge=64)
    probe_timeout_s: float = Field(30.0, gt=0)


class ModelSettings(BaseModel):
    """Local model paths. Nothing is ever downloaded."""

    model_config = {"extra": "forbid"}

    wav2lip: Path | None = None
    phonemes: Path | None = None


class Settings(BaseSettings):
    """Everything the daemon can be told, with the defaults an admin gets."""

    model_config = SettingsConfigDict(
        env_prefix="HEYGEM_",
        env_nested_delimiter="__",
        extra="forbid",
        toml_file=None,
    )

    inbox: Path = Path("inbox")
    outbox: Path = Path("outbox")
    #: state that is not on the share (scheduler journal, host id)
    state_dir: Path | None = None
    #: face-track and audio-feature caches
    cache_dir: Path | None = None

    settle_seconds: float = Field(10.0, ge=0)
    poll_interval: float = Field(5.0, gt=0)
    #: "auto": inotify plus scans, or scans only when the inbox is on a network
    #: filesystem (NFS, SMB...); "always": scans only.  Scanning never stops,
    #: since inotify never fires for files written by other NFS/SMB hosts.
    polling: Literal["auto", "always"] = "auto"
    lease_seconds: float = Field(120.0, ge=5)
    heartbeat_seconds: float = Field(15.0, gt=0)
    retry_seconds: float = Field(30.0, gt=0)
    #: a job.toml naming a file that never arrives is failed (with a clear
    #: error) after the folder has been quiet this long
    incomplete_timeout_s: float = Field(900.0, ge=0)

    default_engine: str = "builtin"
    #: extra engines, name → "module:factory" (plugins; the tests add one)
    engines: dict[str, str] = Field(default_factory=dict)
    #: a job that crashed the daemon this many times is failed instead of retried
    max_attempts: int = Field(5, ge=1)
    device: str = "auto"
    workers: int = Field(1, ge=1, le=64)
    keep_sources: bool = True
    stop_timeout_s: float = Field(60.0, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    output: OutputSettings = OutputSettings()
    limits: LimitSettings = LimitSettings()
    models: ModelSettings = ModelSettings()
    #: "local": this host's thread pool (``workers``); "ray": a Ray cluster ([ray]); "auto": Ray when
    #: the extra is installed and a cluster answers at ``ray.address``, else local
    executor: ExecutorName = "local"
    ray: RaySettings = Field(default_factory=lambda: RaySettings())

    @field_validator("device")
    @classmethod
    def _device_shape(cls, value: str) -> str:
        if value in ("auto", "cpu") or (value.startswith("cuda") and _cuda_index_ok(value)):
            return value
        raise ValueError("device must be 'auto', 'cpu', 'cuda' or 'cuda:N'")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    # -- derived paths -------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.state_dir or self.inbox / ".heygem" / "state"

    @property
    def cache_path(self) -> Path:
        # not inside the inbox: frame spools churn, and the inbox is watched (and
        # often a share); the systemd example sets /var/cache/heygem
        return self.cache_dir or Path.home() / ".cache" / "heygem"

    @property
    def claimed_path(self) -> Path:
        return self.inbox / ".heygem" / "claimed"

    @property
    def staging_path(self) -> Path:
        return self.outbox / ".staging"


def _cuda_index_ok(value: str) -> bool:
    if value == "cuda":
        return True
    _, _, index = value.partition(":")
    return index.isdigit()


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings once at start-up.

    ``config`` names the TOML file; without it ``HEYGEM_CONFIG`` or
    ``/etc/heygem/daemon.toml`` is used when present.  ``overrides`` (CLI flags)
    beat everything; ``None`` values are dropped so unset flags don't mask env.
    """
    path = config or _env_config_path()
    if path is None and DEFAULT_CONFIG_PATH.is_file():
        path = DEFAULT_CONFIG_PATH
    if path is not None and not Path(path).is_file():
        from .errors import HeygemError

        raise HeygemError(f"Config file {path} does not exist.", hint="Pass --config with a readable TOML file.")
    given = {k: v for k, v in overrides.items() if v is not None}

    class _FromFile(Settings):
        model_config = SettingsConfigDict(toml_file=path)

    from pydantic import ValidationError

    from .errors import HeygemError

    try:
        return _FromFile(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        where = f" in {path}" if path else ""
        raise HeygemError(f"Invalid settings{where}: {problems}.") from None
    except (OSError, ValueError) as exc:  # unreadable file, TOML syntax
        raise HeygemError(f"Cannot read settings file {path}: {exc}.") from None


def _env_config_path() -> Path | None:
    value = os.environ.get("HEYGEM_CONFIG")
    return Path(value) if value else None


# -- where a job's videos are rendered (issue 15) -----------------------------------------------
ExecutorName = Literal["local", "ray", "auto"]


class RaySettings(BaseModel):
    """The ``[ray]`` table: rendering a job's videos on a Ray cluster (``executor = "ray"``)."""

    model_config = {"extra": "forbid"}

    #: the cluster to join: "auto" is the one ``ray start`` set up on this host; else "HOST:PORT" of its head
    address: str = "auto"
    #: the job folders are mounted at the same path on every node: workers read inputs by path;
    #: false ships each input once per job through Ray's object store
    shared_paths: bool = False
    #: what each engine actor asks of its node (0 GPUs on CPU-only clusters)
    num_gpus: float = Field(0.0, ge=0)
    num_cpus: float = Field(1.0, ge=0)
    #: custom resources every actor asks for, e.g. {"heygem" = 1} to keep actors on hosts started with it
    resources: dict[str, float] = Field(default_factory=dict)
    #: actors per engine; 0: as many as the cluster's resources hold when a job starts
    actors_per_engine: int = Field(0, ge=0, le=1024)
    #: a video whose worker or node dies is handed to another actor up to this many times in all
    max_video_attempts: int = Field(3, ge=1, le=20)
    #: the encoded MP4 comes back in chunks of this size, written straight into staging
    chunk_mib: int = Field(8, ge=1, le=256)
    #: seconds to wait for the head to answer at start-up (a dead head fails start-up instead of hanging)
    connect_timeout_s: float = Field(10.0, gt=0)
    #: where workers keep frame spools, face tracks and encoded outputs until sent (default: cache_dir)
    worker_cache_dir: Path | None = None


Settings.model_rebuild()

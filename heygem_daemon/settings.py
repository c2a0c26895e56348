"""Settings: one object built at start-up and passed down.

Sources, strongest first: explicit arguments (the CLI's flags), ``HEYGEM_*``
environment variables (nested keys with ``__``, e.g.
``HEYGEM_LIMITS__MAX_DURATION_S``), the TOML file (``--config`` or
``/etc/heygem/daemon.toml``), then the defaults below.  Only this module reads
the environment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
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
    #: MuseTalk's models/ folder (musetalkV15/, sd-vae/, whisper/): docs/musetalk.md
    musetalk: Path | None = None


# -- notifications, retention and teams (issue 14) ------------------------------------
#: an e-mail address as people type it: local part, @, a domain with a dot (or localhost for tests)
EMAIL_PATTERN = r"[^@\s<>,;\"]+@([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*)"


class WebhookSettings(BaseModel):
    """``[notify.webhook]``: a signed JSON POST when a job is finished or failed."""

    model_config = {"extra": "forbid"}

    #: http:// or https:// address; unset: no webhook
    url: str | None = Field(None, pattern=r"^https?://[^\s]+$")
    #: HMAC-SHA256 key for the X-Heygem-Signature header (HEYGEM_NOTIFY__WEBHOOK__SECRET); never logged
    secret: SecretStr | None = None
    timeout_s: float = Field(10.0, gt=0, le=300)
    #: tries in all, the first included
    attempts: int = Field(5, ge=1, le=20)
    #: wait before the first retry; doubled after each failed try, at most 10 minutes
    backoff_s: float = Field(5.0, gt=0)


class EmailSettings(BaseModel):
    """``[notify.email]``: mail through an SMTP server that offers STARTTLS."""

    model_config = {"extra": "forbid"}

    #: unset: no e-mail is sent
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_user: str | None = None
    #: HEYGEM_NOTIFY__EMAIL__SMTP_PASSWORD; never logged
    smtp_password: SecretStr | None = None
    #: the CA file the server's certificate is checked against (default: the system's CAs)
    ca_file: Path | None = None
    from_address: str = Field("heygem-daemon@localhost", pattern="^" + EMAIL_PATTERN + "$")
    #: recipient domains mail may go to; a job asking for another domain gets a warning, not mail
    allowed_domains: list[str] = Field(default_factory=list)
    timeout_s: float = Field(30.0, gt=0, le=600)
    attempts: int = Field(3, ge=1, le=20)
    backoff_s: float = Field(30.0, gt=0)

    @field_validator("allowed_domains")
    @classmethod
    def _lower_domains(cls, value: list[str]) -> list[str]:
        return [d.strip().lower().lstrip("@") for d in value if d.strip()]


class NotifySettings(BaseModel):
    """``[notify]``: who hears about finished and failed jobs.  Everything is optional."""

    model_config = {"extra": "forbid"}

    #: addresses mailed about every job, besides those its job.toml names (a team's notify list)
    recipients: list[str] = Field(default_factory=list)
    #: deliveries waiting (retries included); past it new ones are dropped and shown on the page
    queue_size: int = Field(200, ge=1, le=100_000)
    webhook: WebhookSettings = WebhookSettings()
    email: EmailSettings = EmailSettings()


class RetentionSettings(BaseModel):
    """``[retention]``: old outbox jobs go to ``outbox/.trash``, then away; caches stay under a cap."""

    model_config = {"extra": "forbid"}

    #: days a published job stays in the outbox; 0: forever
    days: float = Field(0.0, ge=0)
    #: days a job stays in outbox/.trash before it is deleted
    trash_days: float = Field(7.0, ge=0)
    #: a job with a file read or written this recently is being used: it is left alone
    busy_seconds: float = Field(900.0, ge=0)
    #: how often retention looks (seconds)
    interval_s: float = Field(600.0, gt=0)
    #: face tracks and speech features under cache_dir, least recently used evicted past this; 0: no cap
    cache_max_bytes: int = Field(20 * 1024**3, ge=0)


def _octal_mode(value: str | None) -> str | None:
    if value is None:
        return None
    if not re.fullmatch(r"0?[0-7]{3}", value):
        raise ValueError("mode must be octal permission bits in quotes, like \"0640\"")
    return value


class PublishSettings(BaseModel):
    """``[publish]``: owner group and mode of published files, so share permissions hold."""

    model_config = {"extra": "forbid"}

    #: group name given to every published file and folder; unset: the daemon's own group
    group: str | None = None
    #: file mode in octal ("0640"); folders get the matching x bits and setgid; unset: the umask's
    mode: str | None = None

    _mode_is_octal = field_validator("mode")(_octal_mode)


class TeamOutput(BaseModel):
    """A team's ``[teams.output]``: the keys it sets override the daemon's ``[output]``."""

    model_config = {"extra": "forbid"}

    max_height: int | None = None
    crf: int | None = None
    preset: str | None = None
    when_video_shorter: str | None = None
    when_video_longer: str | None = None


class TeamSettings(BaseModel):
    """``[[teams]]``: one watched inbox with its own outbox and defaults."""

    model_config = {"extra": "forbid"}

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    inbox: Path
    outbox: Path
    default_engine: str | None = None
    output: TeamOutput = TeamOutput()
    #: addresses mailed about every job of this team (replaces notify.recipients)
    notify: list[str] | None = None
    group: str | None = None
    mode: str | None = None
    retention_days: float | None = Field(None, ge=0)

    _mode_is_octal = field_validator("mode")(_octal_mode)


class StatusSettings(BaseModel):
    """``[status]``: the page people open on the share (``outbox/index.html``)."""

    model_config = {"extra": "forbid"}

    #: IANA time zone the page shows times in ("Europe/Berlin"); unset: the host's own zone
    timezone: str | None = None
    #: how often an open page looks for news, in seconds
    refresh_s: float = Field(5.0, ge=1, le=3600)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}': use an IANA name like 'Europe/Berlin' or 'UTC'") from None
        return value


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
    #: videos of a job rendered at the same time (1..64), or "auto": from the cores and the
    #: host's and GPU's free memory (runtime.auto_workers; ``doctor`` prints the choice)
    workers: int | Literal["auto"] = 1
    keep_sources: bool = True
    stop_timeout_s: float = Field(60.0, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    output: OutputSettings = OutputSettings()
    limits: LimitSettings = LimitSettings()
    models: ModelSettings = ModelSettings()
    #: the status page (issue 14, part A)
    status: StatusSettings = StatusSettings()

    # issue 14: who hears about jobs, how long results stay, where files go, one folder per team
    notify: NotifySettings = NotifySettings()
    retention: RetentionSettings = RetentionSettings()
    publish: PublishSettings = PublishSettings()
    #: several watched inboxes; empty: inbox/outbox above are the one (implicit) team
    teams: list[TeamSettings] = Field(default_factory=list)

    #: "local": this host's thread pool (``workers``); "ray": a Ray cluster ([ray]); "auto": Ray when
    #: the extra is installed and a cluster answers at ``ray.address``, else local
    executor: ExecutorName = "local"
    ray: RaySettings = Field(default_factory=lambda: RaySettings())

    @field_validator("workers", mode="before")
    @classmethod
    def _workers_shape(cls, value: Any) -> Any:
        text = str(value).strip()
        if text == "auto":
            return "auto"
        if isinstance(value, bool) or not text.isdigit() or not 1 <= int(text) <= 64:
            raise ValueError(f'workers must be "auto" or a whole number from 1 to 64, not {value!r}')
        return int(text)

    @field_validator("device")
    @classmethod
    def _device_shape(cls, value: str) -> str:
        if value in ("auto", "cpu") or (value.startswith("cuda") and _cuda_index_ok(value)):
            return value
        raise ValueError("device must be 'auto', 'cpu', 'cuda' or 'cuda:N'")

    @model_validator(mode="after")
    def _teams_apart(self) -> "Settings":
        names = [t.name for t in self.teams]
        if len(set(names)) != len(names):
            raise ValueError("teams: each team needs its own name")
        folders = [p.resolve() for t in self.teams for p in (t.inbox, t.outbox)]
        if len(set(folders)) != len(folders):
            raise ValueError("teams: each team needs its own inbox and outbox, and no folder may be both")
        for team in self.teams:  # a wrong [teams.output] value fails at start-up, not at the first job
            try:
                self.team_settings(team)
            except ValidationError as exc:
                wrong = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise ValueError(f"team '{team.name}' [teams.output]: {wrong}") from None
        return self

    def team_settings(self, team: TeamSettings) -> "Settings":
        """The settings a team's jobs run with: these, with the team's folders and defaults.

        Its state (queue, page history) lives under ``state_dir/teams/<name>`` when a
        state_dir is set, else in the team's own inbox, as for the implicit team."""
        output = OutputSettings.model_validate(
            {**self.output.model_dump(), **team.output.model_dump(exclude_none=True)}, strict=True)
        notify = self.notify
        if team.notify is not None:
            notify = notify.model_copy(update={"recipients": list(team.notify)})
        publish = PublishSettings(group=team.group if team.group is not None else self.publish.group,
                                  mode=team.mode if team.mode is not None else self.publish.mode)
        retention = self.retention
        if team.retention_days is not None:
            retention = retention.model_copy(update={"days": team.retention_days})
        return self.model_copy(update={
            "inbox": team.inbox, "outbox": team.outbox,
            "default_engine": team.default_engine or self.default_engine,
            "output": output, "notify": notify, "publish": publish, "retention": retention,
            "state_dir": self.state_dir / "teams" / team.name if self.state_dir else None,
            "teams": [],
        })

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

"""job.toml model and the validation of a job folder into a :class:`JobPlan`.

Everything in a job folder is untrusted.  The folder is listed with
:func:`scan_folder` (no links, no sub-folders), job.toml is read through
:func:`open_regular` with a size cap, and every name it holds must be a plain
file name directly inside the folder.  Every problem is a JobValidationError
whose message names the key and says how to fix it.
"""

from __future__ import annotations

import difflib
import os
import re
import string
import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Collection, Iterable
from typing import Any, Callable, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import JobValidationError, LimitExceededError, raise_setting
from ..logging import get_logger
from ..settings import EMAIL_PATTERN, OutputSettings, Settings
from .folder import AUDIO_EXTS, JOB_TOML, VIDEO_EXTS, Entry, open_regular, partial_names, scan_folder

log = get_logger()

_T = TypeVar("_T")

DEFAULT_OUTPUT_NAME = "{video}_{audio}.mp4"
PLACEHOLDERS = ("job", "video", "audio", "index")
MAX_TRANSCRIPT_CHARS = 20_000
MAX_OUTPUT_NAME_BYTES = 200
PRIORITY_RANGE = (-1000, 1000)
MAX_NOTIFY = 50
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(1, 10)} | {f"LPT{i}" for i in range(1, 10)}
)
#: bidirectional overrides make "gpj.mp4" look like something else in file browsers
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: a zero-padded width for {index}, e.g. {index:03d}; anything else is refused
_INDEX_SPEC = re.compile(r"0?[1-9]?d?")


class OutputSpec(BaseModel):
    """The ``[output]`` table; unset keys fall back to ``settings.output``.

    Ranges and choices are checked against OutputSettings when resolved, so
    they live in one place.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    max_height: int | None = None
    crf: int | None = None
    preset: str | None = None
    when_video_shorter: str | None = None
    when_video_longer: str | None = None


class JobSpec(BaseModel):
    """What a job.toml may say.  Strict: TOML has real types, so "5" is not 5."""

    model_config = ConfigDict(extra="forbid", strict=True)

    audio: str | list[str] | None = None
    videos: list[str] | None = None
    engine: str | None = None
    transcript: str | None = Field(None, max_length=MAX_TRANSCRIPT_CHARS)
    priority: int = Field(0, ge=PRIORITY_RANGE[0], le=PRIORITY_RANGE[1])
    output_name: str = Field(DEFAULT_OUTPUT_NAME, max_length=1000)
    output: OutputSpec = OutputSpec()
    #: e-mail addresses told when the job is finished or failed (only the admin's allowed domains)
    notify: list[str] | None = Field(None, max_length=MAX_NOTIFY)


@dataclass(frozen=True)
class OutputPair:
    """One output video: ``index`` is its 0-based position in JobPlan.pairs
    (``{index}`` in output_name renders it 1-based, for people)."""

    video: str
    audio: str
    output: str
    index: int


@dataclass(frozen=True)
class JobPlan:
    """A validated job: file names are exactly as on disk, output names NFC."""

    name: str
    folder: Path
    engine: str
    transcript: str | None
    priority: int
    output: OutputSettings
    audios: tuple[str, ...]
    videos: tuple[str, ...]
    pairs: tuple[OutputPair, ...]
    has_job_toml: bool
    has_ready: bool
    #: the job's notify addresses in the allowed domains (the others were refused with a warning)
    notify: tuple[str, ...] = ()


def load_job(
    folder: Path, settings: Settings, *, known_engines: Collection[str], name: str | None = None
) -> JobPlan:
    """Validate a job folder and plan its outputs, or raise JobValidationError.

    Every problem is found in one pass and the error names them all (one a
    line): a wrong type does not hide a wrong choice, nor one missing file the
    next.  Checks that depend on a broken key are skipped rather than guessed.
    ``name`` is the job's name when the folder was renamed on claiming
    (default: the folder's own name); it feeds ``{job}``.
    """
    limits = settings.limits
    entries = scan_folder(folder, max_files=limits.max_files_per_job)
    _refuse_unfinished(entries)  # a copy in progress: other findings would be premature
    problems = _Problems()
    has_toml = any(e.kind == "toml" for e in entries)
    spec, broken = JobSpec(), set[str]()
    if has_toml:
        spec, broken = problems.collect(_read_spec_leniently, folder / JOB_TOML, limits.max_job_toml_bytes,
                                        default=(JobSpec(), {"*"}))

    def usable(key: str) -> bool:  # "*": job.toml could not be read at all
        return not broken & {key, "*"}

    by_name = {e.name: e for e in entries}
    audios = problems.attempt(_select_audios, spec, entries, by_name, has_toml) if usable("audio") else None
    videos = problems.attempt(_select_videos, spec, entries, by_name) if usable("videos") else None
    problems.attempt(_check_sizes, [by_name[n] for n in (*(audios or ()), *(videos or ()))], limits.max_file_bytes)
    output = problems.attempt(resolve_output, spec.output, settings.output) if usable("output") else None
    engine = problems.attempt(_engine, spec.engine, settings.default_engine, known_engines) if usable("engine") else None
    job_name = name if name is not None else folder.name
    pairs = None
    if audios is not None and videos is not None and usable("output_name"):
        pairs = problems.attempt(plan_pairs, job_name, spec.output_name, audios, videos,
                                 max_pairs=limits.max_pairs_per_job)
    notify = problems.attempt(check_addresses, spec.notify or []) if usable("notify") else None
    problems.raise_any()
    assert audios is not None and videos is not None and pairs is not None and output and engine
    allowed, refused = split_by_domain(notify or [], settings.notify.email.allowed_domains)
    if refused:
        # not a failure: the videos are still wanted, only this mail is not ours to send
        log.warning("notify_domain_refused", job=job_name, addresses=refused,
                    allowed_domains=settings.notify.email.allowed_domains,
                    hint="job.toml notify names addresses outside the domains the administrator allows; "
                         "no mail goes to them")
    plan = JobPlan(
        name=job_name,
        folder=folder,
        engine=engine,
        transcript=spec.transcript or None,
        priority=spec.priority,
        output=output,
        audios=audios,
        videos=videos,
        pairs=pairs,
        has_job_toml=has_toml,
        has_ready=any(e.kind == "ready" for e in entries),
        notify=tuple(allowed),
    )
    log.debug("job_validated", job=job_name, pairs=len(pairs), engine=plan.engine)
    return plan


def validate_folder(folder: Path, settings: Settings, known_engines: Collection[str]) -> JobPlan:
    """What ``heygem-daemon validate DIR`` runs: a plan, or a JobValidationError."""
    return load_job(folder, settings, known_engines=known_engines)


class _Problems:
    """Validation problems gathered across independent checks, raised together."""

    def __init__(self) -> None:
        self.errors: list[JobValidationError] = []

    def attempt(self, check: Callable[..., _T], *args: Any, **kwargs: Any) -> _T | None:
        """``check``'s result, or None with its problem recorded."""
        try:
            return check(*args, **kwargs)
        except JobValidationError as exc:
            self.errors.append(exc)
            return None

    def collect(self, check: Callable[..., tuple[_T, list[JobValidationError]]], *args: Any,
                default: _T) -> _T:
        """For checks that report problems and still give a usable result."""
        try:
            result, found = check(*args)
        except JobValidationError as exc:
            self.errors.append(exc)
            return default
        self.errors.extend(found)
        return result

    def raise_any(self) -> None:
        if self.errors:
            raise JobValidationError.combine(self.errors)


# -- job.toml ----------------------------------------------------------------------


def read_spec(path: Path, *, max_bytes: int) -> JobSpec:
    """Read and validate job.toml without ever reading more than ``max_bytes``."""
    (spec, _broken), problems = _read_spec_leniently(path, max_bytes)
    if problems:
        raise JobValidationError.combine(problems)
    return spec


def parse_spec(text: str) -> JobSpec:
    """Parse job.toml text into a JobSpec; errors name the key and the fix."""
    (spec, _broken), problems = _parse_spec_leniently(text)
    if problems:
        raise JobValidationError.combine(problems)
    return spec


def _read_spec_leniently(path: Path, max_bytes: int) -> tuple[tuple[JobSpec, set[str]], list[JobValidationError]]:
    """((spec, broken keys), problems): the spec holds every key that is valid, so the
    checks of the rest of the folder can still run; an unreadable file raises."""
    data = _read_capped(path, max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col(data, exc.start)
        raise JobValidationError(
            f"job.toml is not valid UTF-8 text (line {line}, column {col}).",
            hint="Save it again as UTF-8 (every editor offers this).",
        ) from None
    return _parse_spec_leniently(text.removeprefix("\ufeff"))  # Windows editors may add a BOM


def _parse_spec_leniently(text: str) -> tuple[tuple[JobSpec, set[str]], list[JobValidationError]]:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise JobValidationError(
            f"job.toml is not valid TOML: {exc}.",
            hint='Check the quotes and brackets on that line, e.g. audio = "voice.wav".',
        ) from None
    except RecursionError:
        raise JobValidationError("job.toml is nested too deeply to read.") from None
    try:
        return (JobSpec.model_validate(raw), set()), []
    except ValidationError as exc:
        problems = [_spec_error(exc)]
        broken = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
    valid = {k: v for k, v in raw.items() if k not in broken}
    # a wrong type elsewhere must not hide a wrong choice in [output] (checked when resolved)
    if "output" in broken and isinstance(raw.get("output"), dict):
        problems += _output_choice_problems(raw["output"])
    try:
        return (JobSpec.model_validate(valid), broken), problems
    except ValidationError:
        return (JobSpec(), broken | {"*"}), problems


def _output_choice_problems(table: dict[str, Any]) -> list[JobValidationError]:
    """Problems of the [output] keys that have the right type but a wrong value."""
    typed = {}
    for key, value in table.items():
        try:
            OutputSpec.model_validate({key: value})
            typed[key] = value
        except ValidationError:
            continue  # already reported with its type
    try:
        resolve_output(OutputSpec.model_validate(typed), OutputSettings())
    except JobValidationError as exc:
        return [exc]
    return []


def resolve_output(spec: OutputSpec, defaults: OutputSettings) -> OutputSettings:
    """The job's output settings: its [output] table over the daemon's defaults."""
    given = spec.model_dump(exclude_none=True)
    try:
        return OutputSettings.model_validate({**defaults.model_dump(), **given}, strict=True)
    except ValidationError as exc:
        raise _spec_error(exc, prefix="output") from None


def _read_capped(path: Path, max_bytes: int) -> bytes:
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise _toml_too_big(size, max_bytes)
        chunks: list[bytes] = []
        left = max_bytes + 1  # the file may grow after fstat: never read past the cap
        while left > 0:
            chunk = os.read(fd, min(left, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise _toml_too_big(len(data), max_bytes)
    return data


def _toml_too_big(size: int, max_bytes: int) -> LimitExceededError:
    return LimitExceededError(
        f"job.toml is {size:,} bytes; the limit is {max_bytes:,} bytes.",
        key="limits.max_job_toml_bytes",
        hint="A job.toml holds a few settings; check that the right file was named job.toml.",
    )


def _line_col(data: bytes, pos: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, pos) + 1
    return data.count(b"\n", 0, pos) + 1, pos - line_start + 1


# -- pydantic errors → sentences ---------------------------------------------------


def _spec_error(exc: ValidationError, prefix: str | None = None) -> JobValidationError:
    messages: dict[str, str] = {}
    for err in exc.errors():
        key = _key_path(err["loc"], prefix)
        messages.setdefault(key, _describe(key, err))
    first = next(iter(messages))
    return JobValidationError("\n".join(messages.values()), key=first)


def _key_path(loc: tuple[Any, ...], prefix: str | None) -> str:
    parts = [str(p) for p in loc if isinstance(p, str)]
    if prefix:
        return f"{prefix}.{parts[0]}" if parts else prefix
    if parts[0] == "output" and len(parts) > 1:
        return f"output.{parts[1]}"
    return parts[0]


def _describe(key: str, err: Any) -> str:
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    item = next((p + 1 for p in err["loc"] if isinstance(p, int)), None)
    where = f"'{key}'" if item is None else f"item {item} of '{key}'"
    if kind == "extra_forbidden":
        return _unknown_key(key)
    if key == "audio":
        return (
            "job.toml: 'audio' must be a file name in quotes, like audio = \"voice.wav\", "
            f'or a list of them, like audio = ["a.wav", "b.wav"]; got {_show(value)}.'
        )
    if key == "notify" and kind in ("string_type", "list_type", "too_long"):
        return (f'job.toml: \'notify\' must be a list of at most {MAX_NOTIFY} e-mail addresses, '
                f'like notify = ["alice@example.com"]; {where} is {_show(value)}.')
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"job.toml: {where} must be a whole number, got {_show(value)}."
    if kind == "string_type" and item is not None:
        return f"job.toml: {where} must be a file name in quotes, got {_show(value)}."
    if kind == "string_type":
        return f'job.toml: {where} must be text in quotes, like {key.split(".")[-1]} = "...", got {_show(value)}.'
    if kind == "list_type":
        return f'job.toml: {where} must be a list of file names, like {key} = ["a.mp4", "b.mov"], got {_show(value)}.'
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"job.toml: '{key}' must be a table: write [{key}] on its own line and the settings below it."
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"job.toml: {where} must be {_bound(kind, ctx)}, got {_show(value)}."
    if kind == "string_too_long":
        return (
            f"job.toml: '{key}' is too long ({len(value):,} characters); "
            f"the limit is {ctx.get('max_length', 0):,}."
        )
    if kind == "literal_error":
        return f"job.toml: '{key}' must be one of {ctx.get('expected')}, got {_show(value)}."
    return f"job.toml: '{key}' is not valid: {err['msg']} (got {_show(value)})."


def _unknown_key(key: str) -> str:
    table, _, leaf = key.rpartition(".")
    model = OutputSpec if table == "output" else JobSpec
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(leaf, allowed, n=1, cutoff=0.6)
    guess = f" Did you mean '{close[0]}'?" if close else ""
    where = " in [output]" if table else ""
    return f"job.toml: unknown key '{key}'.{guess} Allowed keys{where}: {', '.join(allowed)}."


def _bound(kind: str, ctx: dict[str, Any]) -> str:
    words = {
        "greater_than_equal": ("at least", "ge"),
        "less_than_equal": ("at most", "le"),
        "greater_than": ("more than", "gt"),
        "less_than": ("less than", "lt"),
    }
    text, name = words[kind]
    return f"{text} {ctx.get(name)}"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return repr(value)


# -- notify addresses --------------------------------------------------------------


def check_addresses(addresses: list[str]) -> list[str]:
    """The job's notify list, each a plain e-mail address (one problem per bad one)."""
    wrong = [
        JobValidationError(
            f"job.toml: item {number} of 'notify' ({_show(address)}) is not an e-mail address.",
            key="notify",
            hint='Write addresses in quotes, like notify = ["alice@example.com"].',
        )
        for number, address in enumerate(addresses, 1)
        if not re.fullmatch(EMAIL_PATTERN, address.strip())
    ]
    if wrong:
        raise JobValidationError.combine(wrong)
    return list(dict.fromkeys(a.strip() for a in addresses))


def split_by_domain(addresses: Iterable[str], allowed_domains: Collection[str]) -> tuple[list[str], list[str]]:
    """(allowed, refused): an address is allowed when its domain is one the admin lists
    (compared without case; sub-domains are not implied)."""
    allowed_set = {d.lower() for d in allowed_domains}
    allowed: list[str] = []
    refused: list[str] = []
    for address in addresses:
        domain = address.rpartition("@")[2].lower()
        (allowed if domain in allowed_set else refused).append(address)
    return allowed, refused


# -- choosing files ----------------------------------------------------------------


def _refuse_unfinished(entries: list[Entry]) -> None:
    partial = partial_names(entries)
    if partial:
        raise JobValidationError(
            f"The job folder still holds {_names(partial)}, which look like copies in progress.",
            hint="Wait until copying has finished, or remove those files.",
        )
    for entry in entries:
        if entry.kind == "other" and entry.name.casefold() in ("job.toml", "job.toml.txt"):
            raise JobValidationError(
                f"The job settings file is named '{entry.name}'; it must be named exactly 'job.toml'.",
                key="job.toml",
                hint="Rename it (on Windows, turn on 'File name extensions' to see the whole name).",
            )


def _select_audios(spec: JobSpec, entries: list[Entry], by_name: dict[str, Entry], has_toml: bool) -> tuple[str, ...]:
    if spec.audio is not None:
        wanted = [spec.audio] if isinstance(spec.audio, str) else spec.audio
        return _named_files("audio", wanted, by_name)
    found = [e.name for e in entries if e.kind == "audio"]
    if len(found) == 1:
        return (found[0],)
    if not found:
        raise JobValidationError(
            f"The job folder holds no audio file ({_exts(AUDIO_EXTS)}).",
            key="audio",
            hint="Add the voice recording to the job folder.",
        )
    where = "job.toml does not say which to use" if has_toml else "no job.toml"
    todo = "add to job.toml" if has_toml else "add a job.toml with"
    raise JobValidationError(
        f"Found {len(found)} audio files ({', '.join(found)}) and {where}: "
        f'{todo} audio = "{found[0]}" (or a list, to make a video for each audio).',
        key="audio",
    )


def _select_videos(spec: JobSpec, entries: list[Entry], by_name: dict[str, Entry]) -> tuple[str, ...]:
    if spec.videos is not None:
        return _named_files("videos", spec.videos, by_name)
    found = tuple(e.name for e in entries if e.kind == "video")
    if not found:
        raise JobValidationError(
            f"The job folder holds no video file ({_exts(VIDEO_EXTS)}).",
            key="videos",
            hint="Add at least one video of the person talking.",
        )
    return found


def _named_files(key: str, wanted: list[str], by_name: dict[str, Entry]) -> tuple[str, ...]:
    if not wanted:
        raise JobValidationError(f"job.toml: '{key}' is an empty list; name at least one file.", key=key)
    problems = _Problems()
    chosen: list[str] = []
    for raw in wanted:
        name = problems.attempt(_named_file, key, raw, by_name, chosen)
        if name is not None:
            chosen.append(name)
    problems.raise_any()  # every missing or wrong file named, not just the first
    return tuple(chosen)


def _named_file(key: str, raw: str, by_name: dict[str, Entry], chosen: list[str]) -> str:
    kind, exts = ("audio", AUDIO_EXTS) if key == "audio" else ("video", VIDEO_EXTS)
    entry = _match_name(key, raw, by_name)
    if entry.kind != kind:
        raise JobValidationError(
            f"job.toml names {key} '{raw}' but that is not {'an audio' if kind == 'audio' else 'a video'} "
            f"file; {kind} files end in {_exts(exts)}.",
            key=key,
        )
    if entry.name in chosen:
        raise JobValidationError(f"job.toml: '{key}' names '{raw}' twice; list each file once.", key=key)
    return entry.name


def _match_name(key: str, raw: str, by_name: dict[str, Entry]) -> Entry:
    """The entry ``raw`` names: exactly, or else by NFC form (macOS copies store NFD)."""
    _check_plain_name(key, raw)
    if raw in by_name:
        return by_name[raw]
    wanted = unicodedata.normalize("NFC", raw)
    hits = [e for n, e in by_name.items() if unicodedata.normalize("NFC", n) == wanted]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise JobValidationError(
            f"job.toml names {key} '{raw}', and the job folder holds {len(hits)} files that differ only "
            "in how their accented letters are stored.",
            key=key,
            hint="Keep one of them.",
        )
    close = difflib.get_close_matches(raw, list(by_name), n=1, cutoff=0.6)
    guess = f" Did you mean '{close[0]}'?" if close else ""
    raise JobValidationError(
        f"job.toml names {key} '{raw}' but there is no such file in the job folder.{guess}", key=key
    )


def _check_plain_name(key: str, raw: str) -> None:
    if not raw:
        problem = "is empty"
    elif "\x00" in raw:
        problem = "contains a NUL character"
    elif "/" in raw or "\\" in raw or raw in (".", "..") or re.match(r"[A-Za-z]:", raw):
        problem = "is a path, not a file name inside the job folder"
    elif raw.startswith("."):
        problem = "is a hidden file (its name starts with a dot), and hidden files are ignored"
    else:
        return
    shown = raw.replace("\x00", "\\0")
    raise JobValidationError(
        f"job.toml: {key} '{shown}' {problem}.",
        key=key,
        hint=f"Put the file directly into the job folder and give just its name, e.g. {key} = {_example(key)}.",
    )


def _check_sizes(entries: Iterable[Entry], max_bytes: int) -> None:
    too_big = [
        LimitExceededError(
            f"'{entry.name}' is {_human(entry.size)}; the limit is {_human(max_bytes)}.",
            key="limits.max_file_bytes",
            hint=f"Use a shorter or smaller file. {raise_setting('limits.max_file_bytes')}",
        )
        for entry in entries
        if entry.size > max_bytes
    ]
    if too_big:
        raise JobValidationError.combine(list(too_big))


def _engine(asked: str | None, default: str, known: Collection[str]) -> str:
    engine = asked if asked is not None else default
    if engine in known:
        return engine
    choices = ", ".join(sorted(known))
    if asked is None:
        raise JobValidationError(
            f"The daemon's default_engine '{engine}' is unknown; use one of {choices}.", key="default_engine"
        )
    raise JobValidationError(f"job.toml: engine '{engine}' is unknown; use one of {choices}.", key="engine")


# -- output names ------------------------------------------------------------------


def plan_pairs(
    job: str, template: str, audios: tuple[str, ...], videos: tuple[str, ...], *, max_pairs: int
) -> tuple[OutputPair, ...]:
    """Every video × every audio (video-major), each with its checked output name."""
    count = len(audios) * len(videos)
    if count > max_pairs:
        raise LimitExceededError(
            f"The job asks for {count} outputs ({len(videos)} videos × {len(audios)} audio files); "
            f"the limit is {max_pairs}.",
            key="limits.max_pairs_per_job",
            hint="Split it into several jobs.",
        )
    parts = parse_output_name(template)
    pairs: list[OutputPair] = []
    seen: dict[str, OutputPair] = {}
    for video in videos:
        for audio in audios:
            index = len(pairs)
            output = render_output_name(parts, template, job=job, video=video, audio=audio, index=index)
            clash = seen.get(output.casefold())
            if clash is not None:
                raise _duplicate_output(template, output, clash, video, audio)
            pair = OutputPair(video=video, audio=audio, output=output, index=index)
            seen[output.casefold()] = pair
            pairs.append(pair)
    return tuple(pairs)


def parse_output_name(template: str) -> list[tuple[str, str | None, str]]:
    """Split output_name into (literal, placeholder, format) parts; refuse anything
    but {job} {video} {audio} {index}, so no attribute or item access can run."""
    try:
        raw = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise _name_error(template, f"has unbalanced braces ({exc})", "write {{ or }} for a literal brace") from None
    parts: list[tuple[str, str | None, str]] = []
    for literal, field, spec, conversion in raw:
        if field is None:
            parts.append((literal, None, ""))
            continue
        if field not in PLACEHOLDERS or conversion:
            shown = "{" + field + (f"!{conversion}" if conversion else "") + "}"
            raise _name_error(template, f"uses {shown}", "only {job}, {video}, {audio} and {index} are allowed")
        if spec and not (field == "index" and _INDEX_SPEC.fullmatch(spec)):
            raise _name_error(
                template, f"formats {{{field}:{spec}}}", "only {index} takes a width, e.g. {index:03d}"
            )
        parts.append((literal, field, spec or ""))
    return parts


def render_output_name(
    parts: list[tuple[str, str | None, str]], template: str, *, job: str, video: str, audio: str, index: int
) -> str:
    """One output file name: NFC, a single safe path component, ending in .mp4."""
    values: dict[str, Any] = {
        "job": job,
        "video": os.path.splitext(video)[0],
        "audio": os.path.splitext(audio)[0],
        "index": index + 1,
    }
    text = "".join(lit + (format(values[field], spec) if field else "") for lit, field, spec in parts)
    name = unicodedata.normalize("NFC", text)
    problem = unsafe_name_reason(name)
    if problem is None and not name.lower().endswith(".mp4"):
        name += ".mp4"
    if problem is None and len(name.encode("utf-8")) > MAX_OUTPUT_NAME_BYTES:
        problem = f"is longer than {MAX_OUTPUT_NAME_BYTES} bytes"
    if problem is not None:
        shown = name.encode("unicode_escape").decode("ascii") if not name.isprintable() else name
        raise _name_error(
            template,
            f"gives '{shown}' for video '{video}' and audio '{audio}', which {problem}",
            "change output_name",
        )
    return name


def unsafe_name_reason(name: str) -> str | None:
    """Why ``name`` is not a safe single file name on Linux, macOS and Windows shares."""
    if not name:
        return "is empty"
    if "/" in name or "\\" in name:
        return "contains a folder separator (/ or \\)"
    if "\x00" in name:
        return "contains a NUL character"
    if any(unicodedata.category(c) == "Cc" or c in _BIDI_CONTROLS for c in name):
        return "contains a control character"
    if name.startswith("."):
        return "starts with a dot (hidden file)"
    if name.endswith((".", " ")):
        return "ends in a dot or a space, which Windows cannot store"
    if name.split(".")[0].rstrip(" ").upper() in _WINDOWS_RESERVED:
        return "is a name reserved by Windows (CON, PRN, AUX, NUL, COM1-9, LPT1-9)"
    return None


def _duplicate_output(template: str, output: str, clash: OutputPair, video: str, audio: str) -> JobValidationError:
    return JobValidationError(
        f"job.toml: output_name '{template}' gives the same file name '{output}' for two outputs "
        f"({clash.video} + {clash.audio}, and {video} + {audio}).",
        key="output_name",
        hint='Add {index} to output_name, e.g. output_name = "{video}_{audio}_{index}.mp4".',
    )


def _name_error(template: str, problem: str, fix: str) -> JobValidationError:
    shown = template.replace("\x00", "\\0")
    return JobValidationError(f"job.toml: output_name '{shown}' {problem}; {fix}.", key="output_name")


# -- small helpers -----------------------------------------------------------------


def _names(names: list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _exts(exts: Iterable[str]) -> str:
    return " ".join(sorted(exts))


def _example(key: str) -> str:
    return '"voice.wav"' if key == "audio" else '["alice.mp4"]'


def _human(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"

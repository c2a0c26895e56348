"""The one-shot CLI commands: validate, status, doctor, demo."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

from .errors import HeygemError
from .runtime import configure_runtime
from .settings import Settings


def validate(settings: Settings, args: argparse.Namespace) -> int:
    """Check a job folder without running it: job.toml and files, media limits, that
    the engine can run here, and that sampled frames show a face.  Exit 1 on a problem;
    warnings (a face not found in the samples) leave the exit code 0."""
    from .engines.registry import EngineRegistry
    from .jobs.spec import load_job
    from .service import engine_config

    engines = EngineRegistry(engine_config(settings), settings.engines)
    settings = team_for(settings, args.folder)  # a folder in a team's inbox gets that team's defaults
    try:
        plan = load_job(args.folder, settings, known_engines=engines.names)
    except HeygemError as exc:
        print("INVALID: " + "\n  ".join(str(exc).splitlines()))
        return 1
    problems: list[str] = []
    try:
        engines.check(plan.engine)
    except HeygemError as exc:
        problems.append(f"engine {plan.engine}: {exc}")
    videos = _probe_files(plan, settings, problems)
    warnings = [w for name, video in videos.items() if (w := _face_warning(plan.folder / name, video))]
    warnings += _notify_warnings(plan.folder, settings)
    _print_validation(plan, problems, warnings, as_json=args.json)
    if problems:
        print("INVALID: the job would fail (see PROBLEM lines)")
        return 1
    print(f"OK ({len(warnings)} warning{'s' if len(warnings) != 1 else ''})" if warnings else "OK")
    return 0


def team_for(settings: Settings, folder: Path) -> Settings:
    """The settings a job folder runs with: its team's when it lies in a team's inbox."""
    where = folder.resolve()
    for team in settings.teams:
        if where.is_relative_to(team.inbox.resolve()):
            return settings.team_settings(team)
    return settings


def _notify_warnings(folder: Path, settings: Settings) -> list[str]:
    """Addresses job.toml asks to notify that the admin's domains leave out (a warning, as in the daemon)."""
    from .jobs.folder import peek_job_toml
    from .jobs.spec import split_by_domain

    asked = (peek_job_toml(folder, settings.limits.max_job_toml_bytes) or {}).get("notify") or []
    domains = settings.notify.email.allowed_domains
    _, refused = split_by_domain([a for a in asked if isinstance(a, str)], domains)
    return [f"notify: no mail will go to {a}: only {', '.join(domains) or 'no'} domains may be mailed"
            for a in refused]


def _probe_files(plan, settings: Settings, problems: list[str]) -> dict:
    """Probe every file of the plan; returns the videos that can be read, by name."""
    from .media.probe import probe

    videos = {}
    for name in (*plan.audios, *plan.videos):
        try:
            info = probe(plan.folder / name, settings.limits)
        except HeygemError as exc:
            problems.append(f"{name}: {exc}")
            continue
        if name in plan.videos and info.video is None:
            problems.append(f"{name}: has no video stream")
        elif name in plan.videos:
            videos[name] = info.video
        if name in plan.audios and info.audio is None:
            problems.append(f"{name}: has no audio stream")
    return videos


#: frames sampled across each video when looking for a face
FACE_SAMPLES = 8


def _face_warning(path: Path, video) -> str | None:
    """A warning when no sampled frame shows a face (a warning: the samples may miss it)."""
    from .faces.tracker import FaceTracker
    from .media.frames import sample_frames

    frames = sample_frames(path, video, count=FACE_SAMPLES)
    if frames and FaceTracker().track(frames).frames_with_face > 0:
        return None
    return (f"{path.name}: no face found in {len(frames)} frames sampled across the video; "
            "it will fail unless a face is visible and turned towards the camera.")


def _print_validation(plan, problems: list[str], warnings: list[str], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"job": plan.name, "engine": plan.engine, "outputs": [p.output for p in plan.pairs],
                          "problems": problems, "warnings": warnings}, indent=2, ensure_ascii=False))
        return
    print(f"job '{plan.name}': engine {plan.engine}, {len(plan.audios)} audio × {len(plan.videos)} video")
    if plan.notify:
        print(f"  notify {', '.join(plan.notify)}")
    for pair in plan.pairs:
        print(f"  {pair.video} + {pair.audio} -> {pair.output}")
    for problem in problems:
        print(f"  PROBLEM {problem}")
    for warning in warnings:
        print(f"  WARNING {warning}")


def status(settings: Settings, args: argparse.Namespace) -> int:
    """Print the daemon's live overview from outbox/status.json (each team's, with [[teams]])."""
    codes = []
    for name, team in _teams(settings):
        if name:
            print(f"== team {name}")
        codes.append(_print_status(team.outbox))
    return max(codes)


def _print_status(outbox: Path) -> int:
    path = outbox / "status.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"no status at {path}: {exc}")
        return 1
    print(f"host {data['host']}, updated {data['updated_at']}")
    if data.get("problem"):
        print(f"PROBLEM: {data['problem']}")
    for title, key in (("running", "running"), ("queued", "queued"), ("waiting", "waiting"), ("recent", "recent")):
        rows = data.get(key, [])
        print(f"{title}: {len(rows)}")
        for row in rows[:20]:
            print(f"  {row['job']}  {row.get('state', '')}  {row.get('detail', '')}")
    notices = data.get("notices", [])
    print(f"notices: {len(notices)}")
    for notice in notices[:10]:
        print(f"  {notice.get('at', '')}  {notice.get('kind', '')}: {notice.get('text', '')}")
    return 0


def doctor(settings: Settings, args: argparse.Namespace) -> int:
    """Check what the daemon needs; exit 1 when something essential is missing."""
    checks: list[tuple[str, bool, str]] = []
    for tool in ("ffmpeg", "ffprobe"):
        exe = shutil.which(tool)
        version = ""
        if exe:
            out = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=20).stdout
            version = out.splitlines()[0] if out else ""
        checks.append((tool, exe is not None, version or "not found: install ffmpeg (apt install ffmpeg)"))
    checks.append(_gpu_check(settings))
    plan = configure_runtime(settings)  # engines load here as they do in the daemon
    checks.append(("runtime", True, plan.summary()))
    checks.append(_default_engine_check(settings))
    checks += [_weights_check(settings, name) for name in _WEIGHTED_ENGINES]
    checks.append(_phonemes_check(settings))
    checks.append(_phones_check())
    checks.append(_alignment_check())
    for name, team in _teams(settings):
        for label, folder in (("inbox", team.inbox), ("outbox", team.outbox)):
            checks.append(_folder_check(f"{label} ({name})" if name else label, folder))
        checks.append(_publish_check(name, team))
    checks += _notify_checks(settings)
    checks.append(_retention_check(settings))
    checks += _executor_checks(settings, plan.workers)
    essential_ok = all(ok for name, ok, _ in checks if not name.startswith(("engine", "speech", "notify")))
    for name, ok, detail in checks:
        print(f"[{'ok' if ok else 'FAIL'}] {name}: {detail}")
    return 0 if essential_ok else 1


def _executor_checks(settings: Settings, workers: int) -> list[tuple[str, bool, str]]:
    """Where videos render; for a Ray cluster, its nodes, their GPUs and the engines each can run."""
    if settings.executor == "local":
        return [("executor", True, f"local: {workers} video(s) at a time on this host")]
    from .engines.registry import EngineRegistry
    from .executors.ray_cluster import describe_cluster
    from .service import engine_config

    names = EngineRegistry(engine_config(settings), settings.engines).names
    try:
        lines = describe_cluster(settings, settings.engines, names)
    except HeygemError as exc:
        return [("executor", settings.executor == "auto", f"{settings.executor}: {exc}"
                 + (" Jobs run on this host instead." if settings.executor == "auto" else ""))]
    return [("executor", True, f"ray: {lines[0]}")] + [("ray node", True, line) for line in lines[1:]]


def _gpu_check(settings: Settings) -> tuple[str, bool, str]:
    try:
        import torch
    except ImportError as exc:
        return ("torch", False, str(exc))
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        return ("gpu", True, f"CUDA {torch.version.cuda}: {names}; device setting '{settings.device}'")
    return ("gpu", True, f"no CUDA GPU (torch {torch.__version__}); engines run on CPU")


def _default_engine_check(settings: Settings) -> tuple[str, bool, str]:
    """Create the default engine as the daemon does before READY, and say what it cost."""
    from .engines.registry import EngineRegistry
    from .service import engine_config

    name = settings.default_engine
    started = time.perf_counter()
    try:
        engine = EngineRegistry(engine_config(settings), settings.engines).get(name)
    except (HeygemError, ImportError) as exc:
        return (f"engine {name} (default)", False, f"cannot be created: {exc}")
    seconds = time.perf_counter() - started
    return (f"engine {name} (default)", True, f"created in {seconds:.2f} s on {getattr(engine, 'device', 'cpu')}; "
            "the daemon does this once, before it reports ready")


#: engines whose weights an admin configures, and what ``models.<name>`` holds for each
_WEIGHTED_ENGINES = {"wav2lip": "checkpoint", "musetalk": "weights"}


def _weights_check(settings: Settings, name: str) -> tuple[str, bool, str]:
    """Load the engine's weights as the daemon would: a missing or ill-fitting part is named."""
    from .engines.registry import EngineRegistry
    from .service import engine_config

    holds = _WEIGHTED_ENGINES[name]
    path = getattr(settings.models, name)
    if path is None:
        return (f"engine {name}", False, f"no {holds} configured (models.{name}); builtin engine needs none")
    try:
        engine = EngineRegistry(engine_config(settings)).get(name)
    except (HeygemError, ImportError) as exc:
        return (f"engine {name}", False, str(exc))
    describe = getattr(engine, "describe", lambda: {holds: str(path)})
    return (f"engine {name}", True, json.dumps(describe(), default=str))


def _phonemes_check(settings: Settings) -> tuple[str, bool, str]:
    folder = settings.models.phonemes
    if folder is None:
        return ("speech phonemes", True, "not configured (models.phonemes): without a transcript, "
                "mouth shapes come from loudness only")
    try:
        from .engines.device import select_device
        from .speech.phonemes import PhonemeRecognizer

        recognizer = PhonemeRecognizer(folder, device=select_device(settings.device))
        return ("speech phonemes", True, json.dumps(recognizer.describe()))
    except (HeygemError, ImportError) as exc:
        return ("speech phonemes", False, f"{exc} Jobs still run, with loudness-only mouth shapes.")


def _phones_check() -> tuple[str, bool, str]:
    """The default speech stage: pocketsphinx's phone recogniser starts with the model its wheel ships."""
    from .speech.phones import PhoneRecognitionFailed, open_decoder

    try:
        open_decoder()
    except PhoneRecognitionFailed as exc:
        return ("speech phones", False, f"{exc}: mouth shapes fall back to loudness alone")
    return ("speech phones", True, "pocketsphinx phone recogniser: mouth shapes from the phones heard (default)")


def _alignment_check() -> tuple[str, bool, str]:
    from importlib import metadata

    try:
        from pocketsphinx import Decoder  # noqa: F401 - importable means alignment works offline

        version = metadata.version("pocketsphinx")
    except (ImportError, metadata.PackageNotFoundError) as exc:
        return ("speech alignment", False, f"pocketsphinx missing ({exc}): job transcripts are ignored")
    return ("speech alignment", True, f"pocketsphinx {version}: English transcripts give mouth shapes")


def _teams(settings: Settings) -> list[tuple[str, Settings]]:
    """(name, settings) per team; one unnamed team without [[teams]]."""
    return [(t.name, settings.team_settings(t)) for t in settings.teams] or [("", settings)]


def _publish_check(name: str, team: Settings) -> tuple[str, bool, str]:
    from .jobs.publish import Permissions

    label = f"publish ({name})" if name else "publish"
    if team.publish.group is None and team.publish.mode is None:
        return (label, True, "files keep the daemon's group and umask (publish.group / mode unset)")
    try:
        perms = Permissions.from_settings(team.publish)
    except HeygemError as exc:
        return (label, False, str(exc))
    if perms.gid is not None and os.geteuid() != 0 and perms.gid not in os.getgroups():
        return (label, False, f"this user is not in group '{team.publish.group}': jobs would wait to be published")
    dir_mode = f"{perms.dir_mode:o}" if perms.dir_mode is not None else "umask + setgid"
    return (label, True, f"group {team.publish.group or '(unchanged)'}, files {team.publish.mode or 'umask'}, "
                         f"folders {dir_mode}")


def _notify_checks(settings: Settings) -> list[tuple[str, bool, str]]:
    """What is configured; the SMTP server is asked whether it offers STARTTLS (nothing is sent)."""
    from .notify.webhook import shown

    hook = settings.notify.webhook
    checks = [("notify webhook", True, "not configured" if hook.url is None else
               f"{shown(hook.url)}, {'signed (X-Heygem-Signature)' if hook.secret else 'UNSIGNED: set a secret'}")]
    email = settings.notify.email
    if email.smtp_host is None:
        return [*checks, ("notify email", True, "not configured (notify.email.smtp_host)")]
    import smtplib

    try:
        with smtplib.SMTP(email.smtp_host, email.smtp_port, timeout=10) as smtp:
            smtp.ehlo()
            starttls = smtp.has_extn("starttls")
    except (OSError, smtplib.SMTPException) as exc:
        return [*checks, ("notify email", False, f"{email.smtp_host}:{email.smtp_port} not reachable: {exc}")]
    domains = ", ".join(email.allowed_domains) or "none (job.toml addresses are never mailed)"
    return [*checks, ("notify email", starttls, f"{email.smtp_host}:{email.smtp_port} "
                      f"{'offers STARTTLS' if starttls else 'does NOT offer STARTTLS: no mail will be sent'}; "
                      f"allowed domains: {domains}")]


def _retention_check(settings: Settings) -> tuple[str, bool, str]:
    from .housekeeping.cache import cache_files

    keep = settings.retention
    jobs = f"outbox jobs kept {keep.days:g} days, then {keep.trash_days:g} in .trash" if keep.days else \
        "outbox jobs kept forever (retention.days = 0)"
    used = sum(f.size for f in cache_files(settings.cache_path)) if settings.cache_path.is_dir() else 0
    cap = f"cap {keep.cache_max_bytes / 1e9:.1f} GB" if keep.cache_max_bytes else "no cap"
    return ("retention", True, f"{jobs}; cache {used / 1e9:.2f} GB, {cap}")


def _folder_check(label: str, folder: Path) -> tuple[str, bool, str]:
    if not folder.is_dir():
        return (label, False, f"{folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        return (label, False, f"{folder} is not writable by this user")
    usage = shutil.disk_usage(folder)
    free_gb = usage.free / 1024**3
    return (label, free_gb > 1.0, f"{folder.resolve()}: {free_gb:.1f} GB free, device {os.stat(folder).st_dev}")


def demo(settings: Settings, args: argparse.Namespace) -> int:
    """Drop the bundled sample job into the inbox and process it once."""
    from .service import Daemon

    name = time.strftime("sample-%Y%m%d-%H%M%S")
    staging = settings.inbox / f".{name}.copying"
    staging.mkdir(parents=True)
    assets = resources.files("heygem_daemon") / "assets"
    for asset, target in (("sample_face.mp4", "presenter.mp4"), ("sample_voice.m4a", "voice.m4a")):
        with resources.as_file(assets / asset) as src:
            shutil.copyfile(src, staging / target)
    (staging / "READY").touch()
    os.rename(staging, settings.inbox / name)
    print(f"demo: job '{name}' dropped into {settings.inbox}", file=sys.stderr)
    daemon = Daemon(settings, handle_signals=True)
    daemon.run(until=lambda d: bool(d.published))
    result = next((p for p in daemon.published if p is not None), None)
    if result is None:
        print("demo: the job did not finish", file=sys.stderr)
        return 1
    report = json.loads((result / "report.json").read_text(encoding="utf-8"))
    print(f"demo: {report['status']}: {result}", file=sys.stderr)
    for out in report["outputs"]:
        print(f"  {out['file'] or out['error']}", file=sys.stderr)
    return 0 if report["status"] == "done" else 1

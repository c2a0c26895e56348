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
    _print_validation(plan, problems, warnings, as_json=args.json)
    if problems:
        print("INVALID: the job would fail (see PROBLEM lines)")
        return 1
    print(f"OK ({len(warnings)} warning{'s' if len(warnings) != 1 else ''})" if warnings else "OK")
    return 0


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
    for pair in plan.pairs:
        print(f"  {pair.video} + {pair.audio} -> {pair.output}")
    for problem in problems:
        print(f"  PROBLEM {problem}")
    for warning in warnings:
        print(f"  WARNING {warning}")


def status(settings: Settings, args: argparse.Namespace) -> int:
    """Print the daemon's live overview from outbox/status.json."""
    path = settings.outbox / "status.json"
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
    configure_runtime(settings)  # engines load here as they do in the daemon
    checks.append(_default_engine_check(settings))
    checks.append(_engine_check(settings))
    checks.append(_phonemes_check(settings))
    checks.append(_phones_check())
    checks.append(_alignment_check())
    for label, folder in (("inbox", settings.inbox), ("outbox", settings.outbox)):
        checks.append(_folder_check(label, folder))
    checks += _executor_checks(settings)
    essential_ok = all(ok for name, ok, _ in checks if not name.startswith(("engine", "speech")))
    for name, ok, detail in checks:
        print(f"[{'ok' if ok else 'FAIL'}] {name}: {detail}")
    return 0 if essential_ok else 1


def _executor_checks(settings: Settings) -> list[tuple[str, bool, str]]:
    """Where videos render; for a Ray cluster, its nodes, their GPUs and the engines each can run."""
    if settings.executor == "local":
        return [("executor", True, f"local: {settings.workers} video(s) at a time on this host")]
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


def _engine_check(settings: Settings) -> tuple[str, bool, str]:
    path = settings.models.wav2lip
    if path is None:
        return ("engine wav2lip", False, "no checkpoint configured (models.wav2lip); builtin engine needs none")
    try:
        from .engines.base import EngineConfig
        from .engines.wav2lip import Wav2LipEngine

        engine = Wav2LipEngine(EngineConfig(device=settings.device, models={"wav2lip": path}))
        describe = getattr(engine, "describe", lambda: {"checkpoint": str(path)})
        return ("engine wav2lip", True, json.dumps(describe(), default=str))
    except (HeygemError, ImportError) as exc:
        return ("engine wav2lip", False, str(exc))


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

"""``heygem-daemon run | validate DIR | status | doctor | demo``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from .errors import HeygemError


def _settings_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML settings file (default /etc/heygem/daemon.toml)")
    parser.add_argument("--inbox", type=Path)
    parser.add_argument("--outbox", type=Path)
    parser.add_argument("--engine", dest="default_engine")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--workers", type=_workers, help='videos rendered at once: 1..64 or "auto"')
    parser.add_argument("--settle-seconds", type=float, dest="settle_seconds")
    parser.add_argument("--poll-interval", type=float, dest="poll_interval")
    parser.add_argument("--polling", choices=["auto", "always"])
    parser.add_argument("--log-level", dest="log_level", choices=["debug", "info", "warning", "error"])


def _workers(text: str) -> int | str:
    """``--workers 4`` or ``--workers auto``; the settings check the range."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number or "auto", got {text!r}') from None


_SETTING_KEYS = ("inbox", "outbox", "default_engine", "device", "workers", "settle_seconds",
                 "poll_interval", "polling", "log_level")


def _load(args: argparse.Namespace):
    from .settings import load_settings

    return load_settings(args.config, **{k: getattr(args, k, None) for k in _SETTING_KEYS})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="heygem-daemon", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("run", "watch the inbox and process jobs (foreground; systemd runs this)"),
        ("status", "show queued, running and finished jobs from the outbox's status.json"),
        ("doctor", "check ffmpeg, GPU, model paths, folders and free space"),
        ("demo", "make a sample job in the inbox, process it once and exit"),
    ):
        _settings_args(sub.add_parser(name, help=text, description=text))
    validate = sub.add_parser("validate", help="check a job folder without running it")
    _settings_args(validate)
    validate.add_argument("folder", type=Path)
    validate.add_argument("--json", action="store_true", help="print the plan as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _load(args)
        from .logging import configure

        configure(settings.log_level, stream=sys.stdout if args.command in ("run", "demo") else sys.stderr)
        if args.command == "run":
            from .service import Daemon

            return Daemon(settings).run()
        from . import commands

        return getattr(commands, args.command)(settings, args)
    except HeygemError as exc:
        print(f"heygem-daemon: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""One exception family with messages written for people.

Every error a user can cause or meet derives from :class:`HeygemError`; its
``str()`` is the sentence that lands in ERROR.txt.  Control-flow signals
(stop requests) are kept apart so they are never reported as failures.
"""

from __future__ import annotations


class HeygemError(Exception):
    """Base of every user-facing error. ``str(err)`` is shown to people."""

    #: short machine-readable kind, written into report.json errors
    kind = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} {self.hint}"
        return self.message


class JobValidationError(HeygemError, ValueError):
    """The job folder or its job.toml cannot be run as it is."""

    kind = "validation"

    def __init__(self, message: str, *, key: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.key = key


class UnsafeInputError(JobValidationError):
    """A file in the job folder is not a plain regular file we may read."""

    kind = "unsafe_input"


class LimitExceededError(JobValidationError):
    """An input is over a configured limit (size, duration, resolution...)."""

    kind = "limit"


class MediaError(HeygemError):
    """ffmpeg/ffprobe could not read or write a media file."""

    kind = "media"


class NoFaceError(HeygemError):
    """A video has no detectable face in any frame."""

    kind = "no_face"


class EngineError(HeygemError):
    """A lip-sync engine cannot run (missing weights, bad checkpoint...)."""

    kind = "engine"


class OutboxUnavailableError(HeygemError):
    """The outbox cannot take the result now (disk full, not writable); retried."""

    kind = "outbox"


class StopRequested(Exception):
    """Control flow, not a failure: the daemon is stopping; checkpoint and leave."""

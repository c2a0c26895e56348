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
        #: every problem this error stands for (more than itself when combined)
        self.problems: list[JobValidationError] = [self]

    @classmethod
    def combine(cls, errors: list["JobValidationError"]) -> "JobValidationError":
        """One error naming every problem, one a line, so a job is fixed in one go."""
        if len(errors) == 1:
            return errors[0]
        # one kind of problem keeps its class (a LimitExceededError stays one)
        same = type(errors[0]) if all(type(e) is type(errors[0]) for e in errors) else cls
        combined = same("\n".join(str(e) for e in errors), key=errors[0].key)
        combined.problems = [p for e in errors for p in e.problems]
        return combined


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


# -- words for people ---------------------------------------------------------------

#: what to do with a media file ffmpeg cannot read (its own words go to the log)
UNREADABLE_HINT = (
    "The file may be incomplete (copy it again), or in a format the daemon cannot read "
    "(export it as MP4 with H.264 video)."
)


def for_admin(remedy: str) -> str:
    """A fix only the daemon's administrator can make, labelled so people know whom to ask."""
    return f"(For the administrator: {remedy}.)"


def raise_setting(key: str) -> str:
    """The labelled admin remedy of raising a limit in the daemon's settings."""
    return for_admin(f"raise {key} in the daemon's settings")


def duration_text(seconds: float) -> str:
    """A duration as h:mm:ss, as players show it (``2:00:00``, ``0:04:07``), not 7200 s."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"

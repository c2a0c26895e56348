"""heygem-daemon: folder-watching lip-sync service."""

__version__ = "0.1.0"

"""Untrusted inputs: playlists and other protocols are never opened."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable, Iterator

import pytest

from heygem_daemon.errors import MediaError
from heygem_daemon.media import FrameReader, decode_audio, ffmpeg_base_args, probe
from heygem_daemon.media.safety import hardened_input, input_url
from heygem_daemon.settings import LimitSettings


class FifoTrap:
    """A FIFO that records whether anybody opened it for reading."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self.opened = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="fifo-trap", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            try:
                # a non-blocking open for writing succeeds only while a reader has it open
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue
            self.opened.set()
            os.close(fd)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def trap(tmp_path: Path) -> Iterator[FifoTrap]:
    """A FIFO that notices if ffmpeg follows a playlist entry to it."""
    fifo = FifoTrap(tmp_path / "secret.ts")
    yield fifo
    fifo.close()


def _hls(tmp_path: Path, trap: FifoTrap) -> Path:
    playlist = tmp_path / "x.mp4"
    playlist.write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n"
        "#EXTINF:10,\nfile:///etc/passwd\n"
        f"#EXTINF:10,\nfile://{trap.path}\n"
        "#EXTINF:10,\nhttp://127.0.0.1:9/segment.ts\n#EXT-X-ENDLIST\n"
    )
    return playlist


def _concat(tmp_path: Path, trap: FifoTrap) -> Path:
    listing = tmp_path / "list.mp4"
    listing.write_text(f"ffconcat version 1.0\nfile '/etc/passwd'\nfile '{trap.path}'\n")
    return listing


def _probe(path: Path) -> None:
    probe(path, LimitSettings(probe_timeout_s=10))


def _read(path: Path) -> None:
    with FrameReader(path, (64, 64)) as reader:
        list(reader)


def _audio(path: Path) -> None:
    decode_audio(path, LimitSettings(probe_timeout_s=10))


@pytest.mark.parametrize("make_list", [_hls, _concat], ids=["hls", "ffconcat"])
@pytest.mark.parametrize("use", [_probe, _read, _audio], ids=["probe", "reader", "audio"])
def test_playlist_is_refused(
    tmp_path: Path, trap: FifoTrap, make_list: Callable[[Path, FifoTrap], Path], use: Callable[[Path], None]
) -> None:
    """A playlist disguised as .mp4 is a MediaError; no entry of it is ever opened."""
    disguised = make_list(tmp_path, trap)
    with pytest.raises(MediaError) as caught:
        use(disguised)
    assert "root:" not in str(caught.value)
    assert not trap.opened.is_set()


def test_input_is_absolute_file_url(tmp_path: Path) -> None:
    """Inputs are passed as file: URLs of absolute paths after the whitelists."""
    args = hardened_input(Path("relative.mp4"))
    assert ["-protocol_whitelist", "file"] == args[:2]
    assert "-format_whitelist" == args[2]
    assert "hls" not in args[3].split(",") and "concat" not in args[3].split(",")
    assert ["-i", input_url(Path("relative.mp4"))] == args[-2:]
    assert args[-1] == "file:" + str(Path.cwd() / "relative.mp4")


def test_base_args_never_interactive() -> None:
    """Every run is quiet and never reads the terminal."""
    assert {"-hide_banner", "-nostdin"} <= set(ffmpeg_base_args())

"""An avatar video's self-analysis: its own speech and mouth → calibration and sync figure.

Runs once per avatar video (cached beside its face track, keyed by content
hash), before the video is rendered, and only for engines with a
speech-to-mouth stage (``engine.adapt``).  It looks at the first
``WINDOW_S`` seconds: puts the video's own sound through the engine's
speech stage while it tracks the same frames and builds the mouth library
from them, and hands sound and track to
:func:`heygem_daemon.speech.avatar.analyse`.  The track is stored as the
video's face track (or, when the video goes on past the window, as a track of
its first frames), so the render pass does not track those frames again; and
the frames are decoded once, at the output size, into the caller's frame
spool, from which the mouth library and the render pass read them back.

A self-analysis is a refinement: whatever goes wrong here is logged and the
video renders with the generic opening range, never fails.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
import json
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..engines.base import AudioClip, AudioFeatures
from ..engines.builtin_library import MouthLibrary
from ..engines.builtin_geometry import source_gap
from ..errors import HeygemError
from ..faces.track import FaceTrack
from ..fsutil import write_atomic
from ..logging import get_logger
from ..media.audio import decode_audio
from ..media.frame_spool import FrameSpool
from ..media.frames import FrameReader, decode_rate
from ..speech.avatar import VERSION, AvatarProfile, analyse, profile_without_speech
from ..speech.curve import MouthCurve
from ..settings import LimitSettings
from .mouths import build_mouths, library_path, load_library, store_library
from .face_source import first_frames_key
from .outcome import Timings
from .pipeline import read_ahead
from .plan import VideoPlan, VideoTools

log = get_logger()

#: seconds of the avatar video analysed (bounds the time and memory it costs)
WINDOW_S = 30.0


def avatar_profile(video_path: Path, plan: VideoPlan, tools: VideoTools, limits: LimitSettings,
                   timings: Timings | None = None,
                   decoded: FrameSpool | None = None) -> tuple[AvatarProfile, MouthLibrary | None]:
    """The cached profile and mouth library of this video, or a new analysis (stored for next time).

    The analysis's tracking time is added to ``timings.faces``: it tracks the frames the render
    pass then takes from the cache.  The frames it decodes go into ``decoded`` (at ``plan.size``)."""
    path, mouths_path = _profile_path(tools, plan.digest), library_path(tools, plan)
    cached, mouths = _load(path), load_library(mouths_path)
    if cached is not None and mouths is not None:
        log.info("avatar_from_cache", rest_gap=cached.rest_gap, open_gap=cached.open_gap, mouth_entries=len(mouths))
        return cached, mouths
    started = time.perf_counter()
    try:
        profile, mouths = _analyse(video_path, plan, tools, limits, timings or Timings(), decoded)
    except HeygemError as exc:
        log.warning("avatar_analysis_failed", error=str(exc), fallback="generic opening range")
        return AvatarProfile(sync_reason=f"the video's own sound could not be analysed: {exc}"), None
    _store(path, profile)
    if mouths is not None:
        store_library(mouths_path, mouths)
    log.info("avatar_analysed", seconds=round(time.perf_counter() - started, 2), rest_gap=profile.rest_gap,
             open_gap=profile.open_gap, sync=profile.sync and profile.sync.__dict__, sync_reason=profile.sync_reason)
    return profile, mouths


def _analyse(video_path: Path, plan: VideoPlan, tools: VideoTools, limits: LimitSettings,
             timings: Timings, decoded: FrameSpool | None) -> tuple[AvatarProfile, MouthLibrary | None]:
    fps = plan.info.fps
    count = min(max(plan.info.frame_count, 1), int(WINDOW_S * fps))
    # The video's own sound goes through the engine's speech stage (mostly pocketsphinx, in C)
    # while its frames are tracked and its mouths collected: neither needs the other until the
    # calibration at the end, and on two cores the speech stage was the analysis's longest part.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="avatar-speech") as pool:
        speech = pool.submit(_own_speech, video_path, plan, tools, limits, count) if plan.has_audio else None
        try:
            started = time.perf_counter()
            track = _track(video_path, plan, tools, count, decoded)
            timings.faces += time.perf_counter() - started
            tools.check_stop()
            width, height = plan.size
            gaps = np.array([_gap(track, i, width, height) for i in range(len(track))])
            try:
                mouths: MouthLibrary | None = build_mouths(video_path, plan, tools, track, gaps, decoded)
            except HeygemError as exc:  # the painted mouth interior still works without it
                log.warning("mouth_library_failed", error=str(exc), fallback="painted mouth interior")
                mouths = None
        finally:
            if speech is not None and not speech.done():
                speech.cancel()
        features = speech.result() if speech is not None else None
    tools.check_stop()
    return _calibrate(features, gaps, fps), mouths


def _own_speech(video_path: Path, plan: VideoPlan, tools: VideoTools, limits: LimitSettings,
                count: int) -> AudioFeatures:
    """The first ``count`` frames' worth of the video's own sound, through the engine's speech stage."""
    seconds = count / plan.info.fps
    own = decode_audio(video_path, limits, digest=f"{plan.digest}-own", max_seconds=seconds)
    window = own.samples[: int(seconds * own.sample_rate)]
    return tools.engine.prepare(AudioClip(window, own.sample_rate, digest=f"{plan.digest}-own{count}"))


def _calibrate(features: AudioFeatures | None, gaps: NDArray[np.float64], fps: float) -> AvatarProfile:
    """The person's opening range and sync figure, from the tracked ``gaps`` and the video's own sound."""
    if features is None:
        return profile_without_speech(gaps, "the video has no sound track")
    if not isinstance(features.data, MouthCurve):
        return AvatarProfile(sync_reason="the engine's audio features are not a mouth curve")
    return analyse(features.data, gaps, fps)


def _track(video_path: Path, plan: VideoPlan, tools: VideoTools, count: int,
           decoded: FrameSpool | None) -> FaceTrack:
    """The first ``count`` frames tracked, and cached for the render pass: as the whole video's
    track when the video ended within them, else as a track of its first frames (which any later
    output no longer than them takes, whatever the length of its speech)."""
    # decoded at the output size, the render pass's own, so that it reads these frames back from
    # ``decoded`` instead of decoding them again (the tracker shrinks them around the face itself)
    with FrameReader(video_path, plan.size, fps_text=decode_rate(plan.info), spool=decoded) as reader:
        # the decode's own work (the pipe, the colour conversion, keeping the frame) overlaps the tracking
        track = tools.tracker.track(read_ahead(itertools.islice(iter(reader), count)))
        # probe's frame count may be short: the video ended only if no frame follows
        ended = len(track) < count or (count >= plan.info.frame_count and reader.read() is None)
        if decoded is not None:
            decoded.whole = ended and decoded.count == reader.frames_read
    if len(track) > 0:
        key = plan.digest if ended else first_frames_key(plan, len(track))
        tools.track_cache.put(key, tools.tracker.name, track)
        log.info("faces_tracked", frames=len(track), with_face=track.frames_with_face, whole_video=ended)
    return track


def _gap(track: FaceTrack, index: int, width: int, height: int) -> float:
    face = track.face(index, width, height)
    if face is None or face.landmarks is None:
        return float("nan")
    return source_gap(np.asarray(face.landmarks, dtype=np.float64))


def _profile_path(tools: VideoTools, digest: str) -> Path:
    entry = tools.track_cache.path_for(digest, tools.tracker.name)
    return entry.with_name(entry.name.removesuffix(".npz") + f".avatar-v{VERSION}.json")


def _load(path: Path) -> AvatarProfile | None:
    try:
        profile = AvatarProfile.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:  # a cache is never a source of failures
        log.warning("avatar_cache_unreadable", path=str(path), error=str(exc))
        return None
    return profile if profile.version == VERSION else None


def _store(path: Path, profile: AvatarProfile) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(profile.to_dict()))
    except OSError as exc:
        log.warning("avatar_cache_unwritable", path=str(path), error=str(exc))

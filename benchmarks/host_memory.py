"""Host memory one video in flight takes, with the CPU's render batches and with a GPU's.

    .venv/bin/python benchmarks/host_memory.py [--video V] [--sizes 720,1080] [--seconds 40]

A GPU engine gets render batches of up to 512 MB (``render/video.py GPU_BATCH_BYTES``: its
network needs ~128 frames a call), the CPU 24 MB; the pipeline's queues hold a few batches
each, so a video on a GPU host holds several times the frames.  ``workers = "auto"``
divides the host memory by what a video takes (``runtime.py``), so that figure has to be
measured, on this machine too: the engine here only passes frames through (in place, as
wav2lip on a GPU does), and claims a CUDA device only so that the render pass sizes its
batches for one; nothing runs on a GPU.  Each run is a child process (its own peak RSS,
``VmHWM``): the pipeline of ``render/video.py make_video`` on a cold face cache (the
frames the tracker holds count too), the clip centred in a frame of each size.
Prints, per size and batch size: frames per batch, RSS before the video (tracker loaded),
peak RSS and the difference, and the peak of this process and its ffmpeg children
together (sampled every 20 ms) less the same RSS before: what the video adds to the host.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO / ".." / "shared" / "media"

CHILD = """
import json, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, {repo!r})
from heygem_daemon.engines.base import AudioFeatures
from heygem_daemon.faces.cache import FaceTrackCache
from heygem_daemon.faces.tracker import FaceTracker
from heygem_daemon.jobs.report import OutputReport
from heygem_daemon.media.audio import decode_audio
from heygem_daemon.render.video import VideoTask, VideoTools, frames_per_batch, make_video
from heygem_daemon.settings import LimitSettings, OutputSettings

def rss_mb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024

class PassThrough:
    '''Darkens each face's box in place: the frames travel as a GPU engine's do, nothing is computed.'''
    name = "passthrough"
    batch_size = 128
    renders_in_place = True
    def __init__(self, device):
        self.device = device
    def prepare(self, audio, *, transcript=None):
        return AudioFeatures(data=np.zeros(1, np.float32), duration_s=audio.duration_s, source="none")
    def render(self, frames, faces, features, frame_indices, fps, *, in_place=False):
        out = frames if in_place else frames.copy()
        for b, face in enumerate(faces):
            if face is not None:
                x0, y0, x1, y1 = np.clip(face.box.astype(int), 0, None)
                out[b, y0:y1, x0:x1] //= 2
        return out

if {slow_fps}:  # the encoder as the slowest stage, as on a GPU host: every queue before it fills
    import time
    from heygem_daemon.media.frames import FrameWriter
    _write = FrameWriter.write
    def _slow_write(self, frames):
        time.sleep(len(frames) / {slow_fps})
        return _write(self, frames)
    FrameWriter.write = _slow_write
work = Path({work!r})
if {engine!r} == "passthrough":
    engine = PassThrough({device!r})
else:  # a real engine on the CPU, as the daemon makes it
    from heygem_daemon.engines.base import EngineConfig
    from heygem_daemon.engines.registry import EngineRegistry
    from heygem_daemon.runtime import configure_runtime
    from heygem_daemon.settings import Settings
    configure_runtime(Settings(default_engine={engine!r}))
    engine = EngineRegistry(EngineConfig(device="cpu")).get({engine!r})
    getattr(engine, "warm_up", lambda: None)()
tracker = FaceTracker()
tracker.track(iter([np.zeros((64, 64, 3), np.uint8)]))  # loaded and warm, as in a running daemon
clip = decode_audio(Path({audio!r}), LimitSettings())
tools = VideoTools(engine, tracker, FaceTrackCache(work / "cache-{device}"), lambda: None)
before = rss_mb("VmRSS")
import threading, psutil
tree_peak = [0.0]
done = threading.Event()
def sample():  # this process and its ffmpeg children together, every 20 ms
    me = psutil.Process()
    while not done.wait(0.02):
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        tree_peak[0] = max(tree_peak[0], total / 2**20)
threading.Thread(target=sample, daemon=True).start()
task = VideoTask(Path({video!r}), Path({audio!r}), clip.duration_s, work / "out.mp4",
                 OutputSettings(max_height=4320), LimitSettings(), work / "spool")
report = OutputReport(video="v", audio="a")
make_video(task, engine.prepare(clip), tools, report)
done.set()
from heygem_daemon.media.probe import probe
size = probe(Path({video!r}), LimitSettings()).video
print(json.dumps({{"before": before, "peak": rss_mb("VmHWM"), "tree": tree_peak[0], "frames": report.frames,
                  "batch": frames_per_batch(engine, (size.width, size.height))}}))
"""


def centred(src: Path, height: int, seconds: float, work: Path) -> tuple[Path, Path]:
    video, audio = work / f"clip{height}.mp4", work / f"clip{height}.wav"
    width = height * 16 // 9
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-t", f"{seconds}", "-i", str(src), "-vf",
                    f"scale=-2:{height}:flags=bicubic,pad={width}:{height}:(ow-iw)/2:0",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-an", str(video)], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-t", f"{seconds}", "-i", str(src), "-vn", "-ac", "1",
                    "-ar", "16000", str(audio)], check=True)
    return video, audio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=MEDIA / "talk_en_40s.mp4")
    parser.add_argument("--sizes", default="720,1080")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--engine", default="passthrough",
                        help="passthrough (CPU and GPU-sized batches), or a real engine on the CPU (e.g. builtin: "
                             "its avatar analysis keeps frames for the render pass)")
    parser.add_argument("--encoder-fps", type=float, default=0.0,
                        help="hold the encoder to this rate (a GPU host, where libx264 is the slowest stage)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="heygem-memory-"))
    try:
        print(f"{'size':>6} {'batches for':>11} {'frames':>6} {'per batch':>9} {'RSS before':>10} "
              f"{'peak RSS':>9} {'the video':>9} {'with ffmpeg':>11}")
        for height in [int(h) for h in args.sizes.split(",")]:
            video, audio = centred(args.video, height, args.seconds, work)
            for device in ("cpu", "cuda") if args.engine == "passthrough" else ("cpu",):
                code = CHILD.format(repo=str(REPO), work=str(work), device=device, video=str(video), engine=args.engine,
                                    audio=str(audio), slow_fps=args.encoder_fps)
                out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
                if out.returncode != 0:
                    raise SystemExit(out.stderr[-3000:])
                run = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{height:>5}p {'a GPU' if device == 'cuda' else 'the CPU':>11} {run['frames']:>6} "
                      f"{run['batch']:>9} {run['before']:>8.0f}MB {run['peak']:>7.0f}MB "
                      f"{run['peak'] - run['before']:>7.0f}MB {run['tree'] - run['before']:>9.0f}MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

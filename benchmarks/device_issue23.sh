#!/usr/bin/env bash
# Issue 23's device figures in one prepared run (about 6-8 minutes on the 16-core H200 host).
# Prepare here, from the project root:
#   ../shared/tools/device-bundle.sh && cp ../shared/media/talk_en_40s.mp4 .device/media/
# then call the device's `run` with carry [".device"], timeout_s 590, and the command
#   bash benchmarks/device_issue23.sh
# and give the machine back.  Prints, and leaves under $OUT: the GPU, the wav2lip stage table
# (gpu_check.py: decode, network, crop + paste, encode, end to end) and whole jobs through the
# real daemon (daemon_jobs.py: one 720p video, four new avatars together, the same four again),
# with four bare ffmpeg transcodes side by side for scale.
set -uo pipefail
source .device/activate.sh
OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv 2>&1 | tee "$OUT/gpu.txt"
nproc | sed 's/^/cores: /' | tee -a "$OUT/gpu.txt"
timeout 200 python3 benchmarks/gpu_check.py .device/media/talk_en_40s.mp4 --device cuda --frames 1500 2>&1 \
  | grep -v '^{' | tee "$OUT/gpu_check.txt"
timeout 340 python3 benchmarks/daemon_jobs.py --engine wav2lip --videos 4 --seconds 40 --height 720 \
  --workers auto --device cuda --timeout 150 2>&1 | grep -v '^{' | tail -25 | tee "$OUT/daemon_jobs.txt"

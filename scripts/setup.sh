#!/usr/bin/env bash
# One command on a fresh Debian/Ubuntu machine: installs ffmpeg and the Python
# environment (.venv), then processes the bundled sample job into ./outbox.
#   scripts/setup.sh            # install + demo
#   scripts/setup.sh --no-demo  # install only (CI)
#   HEYGEM_SKIP_CHROMIUM=1 scripts/setup.sh   # without the browser the page tests use
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt=()
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || need_apt+=(ffmpeg)
# Headless Chromium for the status page tests (tests/status/test_browser.py); they
# skip without it, and fail under CI=true.  HEYGEM_SKIP_CHROMIUM=1 leaves it out.
if [ "${HEYGEM_SKIP_CHROMIUM:-0}" != 1 ] && ! command -v chromium >/dev/null \
   && ! command -v chromium-browser >/dev/null && ! command -v google-chrome >/dev/null; then
  need_apt+=(chromium)
fi
# Any CPython 3.11-3.13 will do (pyproject.toml: requires-python); the
# system's python3 first (Debian 12: 3.11, Ubuntu 24.04: 3.12, Debian 13 and
# Ubuntu 25.x: 3.13), then any versioned one installed beside it.
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3 python3.13 python3.12 python3.11; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))'; then
      PY=$cand; break
    fi
  done
fi
[ -n "$PY" ] || need_apt+=(python3 python3-venv)
if [ -n "$PY" ] && ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then need_apt+=(python3-venv); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} with apt"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  PY=${PY:-python3}
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch is pinned (pyproject.toml) to 2.13.0: on these machines pip takes the
# CPU wheel that lies on disk; on a GPU server install the CUDA build of the
# same version first (README, "GPU servers").
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e '.[test]'
echo "setup: environment ready in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"

if [ "${1:-}" != "--no-demo" ]; then
  mkdir -p inbox outbox
  .venv/bin/heygem-daemon demo --inbox inbox --outbox outbox --settle-seconds 0 --log-level warning
fi

#!/usr/bin/env bash
# Set up everything on a fresh Debian/Ubuntu machine: system packages, a virtual environment in
# .venv, and the Python packages. `--dev` adds what the tests need (Chromium for the browser test).
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

need=()
command -v ffmpeg >/dev/null || need+=(ffmpeg)  # torchcodec decodes audio through FFmpeg's libraries
[ $dev = 1 ] && ! command -v chromium >/dev/null && need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/pip install -q --upgrade pip
if [ $dev = 1 ]; then
  .venv/bin/pip install -q -r requirements-dev.txt
else
  .venv/bin/pip install -q -r requirements.txt
fi
echo "set up: $(.venv/bin/python -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)')"

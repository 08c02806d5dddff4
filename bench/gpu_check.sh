#!/usr/bin/env bash
# The GPU path in one go: the seed preset in fp32, bf16 and fp16 (with its scaler) on CUDA, pinned memory and
# non-blocking copies; prints images/s, peak GPU memory and the loss after N steps per precision; then every VAE
# family at 64x64 and 218x178 (images/s against vae, peak memory, the loss falling) and its evaluation's time;
# with --full-schedule --n 37500, the seed's 50 epochs over 30,000 images to their end (target <= 5 minutes).
#   bash bench/gpu_check.sh [--steps 200] [--batch 64] [--full-schedule --n 37500]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=${PYTHON:-.venv/bin/python}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
exec "$PY" bench/gpu_check.py "$@"

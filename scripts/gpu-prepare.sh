#!/usr/bin/env bash
# Prepares `.device/` (git-ignored) for scripts/gpu-session.sh on a lent GPU machine, which has no Rust
# toolchain and no network: the CUDA build of the trainer (stripped, gzipped), MiniLM with f16 weights
# (half the size; the trainer widens them to f32), the TweepFake CSVs gzipped, and Debian's Vulkan
# loader and libglvnd for the WebGPU checks (`.gl/`: NVIDIA's Vulkan driver there loads through
# libGLX_nvidia, which needs libGLdispatch; without it wgpu finds no Vulkan adapter).
# Everything must stay under the 64 MiB a call may carry.
# Usage: scripts/gpu-prepare.sh      (the first CUDA build takes 25-30 min on 2 cores; docs/cuda.md)
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${SHARED_DIR:-../shared}"

cargo fetch -q
# shellcheck disable=SC1091
source "$shared/cuda/setup.sh"
CARGO_TARGET_DIR=target/cuda cargo build --release -p native-trainer --features cuda
mkdir -p .device/minilm .device/data .gl
strip -o .device/native-trainer target/cuda/release/native-trainer
gzip -9f .device/native-trainer

scripts/fetch-minilm.sh
python3 - <<'EOF'
import numpy as np
from safetensors.numpy import load_file, save_file
tensors = load_file(".models/all-MiniLM-L6-v2/model.safetensors")
save_file({k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in tensors.items()},
          ".device/minilm/model.safetensors", metadata={"format": "pt"})
EOF
cp .models/all-MiniLM-L6-v2/{config.json,tokenizer.json} .device/minilm/
for split in train validation; do gzip -9c "$shared/data/tweepfake/$split.csv" > ".device/data/$split.csv.gz"; done
(cd .gl && apt-get download libvulkan1 libglvnd0 libegl1 libgl1 libglx0 libgles2 libopengl0)
du -sh .device .gl

#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine that has only the Rust toolchain; idempotent.
#   - everything the main job needs (scripts/setup.sh), and the rustfmt and clippy components (the lints)
#   - Debian: chromium + chromium-driver (browser and page tests), mesa-vulkan-drivers + libvulkan1
#     (lavapipe: the WebGPU backend's native tests run on it), nodejs (the page's JS unit tests),
#     firefox-esr (the page's CPU path in a second browser)
#   - crates.io: geckodriver (drives Firefox)
#   - PyPI: numpy, safetensors, tokenizers (reference quantizer and token-id parity; never torch)
#   - npm registry: fast-check and linkedom, as package-lock.json pins them (the page's property tests, the
#     extension's extraction tests; no npm needed)
#   - the pretrained all-MiniLM-L6-v2 (scripts/fetch-minilm.sh): parity on a real checkpoint
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

scripts/setup.sh

# The lints (rustfmt, clippy) are rustup components.
for component in rustfmt clippy; do
  rustup component list --installed | grep -q "^$component" || rustup component add "$component"
done

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null || ! ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 || ! command -v node >/dev/null || ! command -v firefox-esr >/dev/null; then
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver firefox-esr mesa-vulkan-drivers libvulkan1 nodejs >/dev/null
fi

if ! python3 -c "import numpy, safetensors, tokenizers" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check numpy safetensors "tokenizers==0.22.1"
fi

if [ "$(geckodriver --version 2>/dev/null | awk 'NR==1 {print $2}')" != "0.37.1" ]; then
  cargo install --quiet geckodriver --version 0.37.1
fi

python3 scripts/fetch-js-deps.py

scripts/fetch-minilm.sh

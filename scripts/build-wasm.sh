#!/usr/bin/env bash
# Builds the browser package reproducibly: the release wasm (simd128, see .cargo/config.toml) and its
# JS/TypeScript bindings into www/pkg, and prints the sizes (raw and gzip).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
cargo build -p tweetguard --target wasm32-unknown-unknown --release
wasm-bindgen --target web --out-dir www/pkg target/wasm32-unknown-unknown/release/tweetguard.wasm
wasm="www/pkg/tweetguard_bg.wasm"
printf 'wasm: %s bytes raw, %s bytes gzip -9\n' "$(stat -c %s "$wasm")" "$(gzip -9 -c "$wasm" | wc -c)"

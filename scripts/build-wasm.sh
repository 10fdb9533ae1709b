#!/usr/bin/env bash
# Builds the browser package into www/pkg: the wasm module (simd128, see .cargo/config.toml) and its
# JS/TypeScript bindings, and prints the sizes (raw and gzip).
#   scripts/build-wasm.sh         release build (what users get; thin LTO)
#   scripts/build-wasm.sh --dev   test-profile build (shares its compiled dependencies with the browser tests)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
profile=release
[ "${1:-}" = "--dev" ] && profile=debug
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
if [ "$profile" = release ]; then
  cargo build -p tweetguard --lib --target wasm32-unknown-unknown --release
else
  cargo build -p tweetguard --lib --target wasm32-unknown-unknown
fi
wasm-bindgen --target web --out-dir www/pkg "target/wasm32-unknown-unknown/$profile/tweetguard.wasm"
wasm="www/pkg/tweetguard_bg.wasm"
printf 'wasm (%s): %s bytes raw, %s bytes gzip -9\n' "$profile" "$(stat -c %s "$wasm")" "$(gzip -9 -c "$wasm" | wc -c)"

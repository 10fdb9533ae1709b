#!/usr/bin/env bash
# Builds the browser package: two wasm modules with their JS/TypeScript bindings, and prints their sizes.
#   www/pkg/          baseline: wasm simd128 (every current browser)
#   www/pkg/relaxed/  simd128 + relaxed SIMD (int8 dot products; Chromium 114+, Firefox 120+); the worker
#                     loads it where `WebAssembly.validate` accepts a relaxed instruction
# Usage:
#   scripts/build-wasm.sh         the `wasm-release` profile (fat LTO, one codegen unit): what users get
#   scripts/build-wasm.sh --dev   the test profile (shares its compiled dependencies with the browser tests)
# The baseline flags are .cargo/config.toml's; the relaxed build adds +relaxed-simd in its own target folder
# (different flags would otherwise rebuild every dependency on each switch).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
profile=wasm-release
[ "${1:-}" = "--dev" ] && profile=dev
out_profile=$profile
[ "$profile" = dev ] && out_profile=debug
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

# shellcheck source=scripts/wasm-flags.sh
source scripts/wasm-flags.sh
for variant in baseline relaxed; do
  if [ "$variant" = baseline ]; then
    target_dir=target out=www/pkg
    cargo build -p tweetguard --lib --target wasm32-unknown-unknown --profile "$profile"
  else
    target_dir=target/relaxed out=www/pkg/relaxed
    cargo build -p tweetguard --lib --target wasm32-unknown-unknown --profile "$profile" --target-dir "$target_dir" \
      --config "target.wasm32-unknown-unknown.rustflags=$RELAXED_RUSTFLAGS"
  fi
  wasm-bindgen --target web --out-dir "$out" "$target_dir/wasm32-unknown-unknown/$out_profile/tweetguard.wasm"
  wasm="$out/tweetguard_bg.wasm"
  printf 'wasm %s (%s): %s bytes raw, %s bytes gzip -9\n' "$variant" "$profile" "$(stat -c %s "$wasm")" "$(gzip -9 -c "$wasm" | wc -c)"
done

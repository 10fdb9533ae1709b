#!/usr/bin/env bash
# Runs every test: native (parity with PyTorch goldens, int8 format, tokenizer parity with the Python
# wheel, bad input, CLI), the web page end to end (native-trainer serve + chromedriver), and the core in
# headless Chromium and Firefox ESR (the same parity and error cases on a page and in a dedicated worker). Installs
# prerequisites first (scripts/setup-tests.sh), so it works on a fresh machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
stage() { printf '\n=== %s (%s, +%ss)\n' "$1" "$(date +%T)" "$SECONDS"; }

stage "setup (every shell script parsed first: a syntax error fails here, not halfway through)"
for script in scripts/*.sh .ci/run; do bash -n "$script"; done
scripts/setup-tests.sh

stage "lints: rustfmt, clippy (native, and both wasm builds) with warnings as errors, node --check over www/"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# shellcheck source=scripts/wasm-flags.sh
source scripts/wasm-flags.sh
wasm_targets=(-p tweetguard --target wasm32-unknown-unknown --lib --test browser_page --test browser_worker)
cargo clippy "${wasm_targets[@]}" -- -D warnings
cargo clippy "${wasm_targets[@]}" --target-dir target/relaxed --config "target.wasm32-unknown-unknown.rustflags=$RELAXED_RUSTFLAGS" -- -D warnings
for js in www/*.js www/tests/*.mjs extension/src/*.js extension/tests/*.mjs; do node --check "$js"; done

stage "the page's and the extension's JavaScript tests (CSV parsing and export, SHA-256, explanations, model store, service worker; tweet extraction from mock x.com pages)"
node --test www/tests/ extension/tests/

stage "browser package for the page tests (test profile)"
scripts/build-wasm.sh --dev

stage "native tests (incl. the page end-to-end tests in headless Chromium)"
cargo test --workspace

export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}" WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-300}"
stage "browser tests, simd128 build (headless Chromium: page and dedicated worker)"
cargo test -p tweetguard --target wasm32-unknown-unknown --test browser_page --test browser_worker

stage "browser tests, simd128 build in Firefox ESR (page and dedicated worker; it has no WebGPU, so those cases skip and say so)"
env -u CHROMEDRIVER GECKODRIVER="${GECKODRIVER:-$(command -v geckodriver)}" \
  cargo test -p tweetguard --target wasm32-unknown-unknown --test browser_page --test browser_worker

stage "browser tests, relaxed-SIMD build (what Chromium runs: the race between the relaxed and simd128 int8 kernels, checked to have run)"
cargo test -p tweetguard --target wasm32-unknown-unknown --target-dir target/relaxed \
  --config "target.wasm32-unknown-unknown.rustflags=$RELAXED_RUSTFLAGS" --test browser_page --test browser_worker

stage "done"

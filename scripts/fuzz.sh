#!/usr/bin/env bash
# The fuzzing campaign (docs/fuzzing.md), outside CI: each cargo-fuzz target (libFuzzer, nightly) for RUNS
# inputs, then the page's fast-check properties for as many. New coverage is merged into
# fuzz/corpus/<target>/ (committed, so it is kept small: KEEP_BYTES per file, CORPUS_BYTES per target), crashes stay in
# fuzz/artifacts/<target>/ (copy them to fuzz/regressions/<target>/ once fixed). Prints one line per target.
#
#   scripts/fuzz.sh [TARGET...]     env: RUNS=1000000 TIMEOUT=10 (s per input) RSS_MB=2048 KEEP_BYTES=65536
#                                        CORPUS_BYTES=1048576 (per target) JS=1 (0 skips the page's properties)
#                                        SANITIZER=none|address (address: ~10x slower; for the unsafe
#                                        int8 kernels under `weights`)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
runs="${RUNS:-1000000}"; timeout="${TIMEOUT:-10}"; rss="${RSS_MB:-2048}"; keep="${KEEP_BYTES:-65536}"
corpus_cap="${CORPUS_BYTES:-1048576}"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
sanitizer="${SANITIZER:-none}"
# One build folder per sanitizer, so switching does not rebuild everything.
build=(-s "$sanitizer" --target-dir "fuzz/target-$sanitizer")

targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
# Built once (BUILD=0 reuses the last build), then each target's binary runs directly.
[ "${BUILD:-1}" = 0 ] || cargo +nightly fuzz build "${build[@]}"
bin="fuzz/target-$sanitizer/x86_64-unknown-linux-gnu/release"
for target in "${targets[@]}"; do
  work="fuzz/target/work/$target"; log="fuzz/target/$target.log"
  mkdir -p "$work" "fuzz/corpus/$target" "fuzz/artifacts/$target"
  start=$(date +%s)
  # -rss_limit_mb also caps any single allocation: "no unbounded allocation" is checked, not assumed.
  status=0
  "$bin/$target" "$work" "fuzz/corpus/$target" -runs="$runs" -timeout="$timeout" -rss_limit_mb="$rss" \
    -artifact_prefix="fuzz/artifacts/$target/" -print_final_stats=1 >"$log" 2>&1 || status=$?
  seconds=$(( $(date +%s) - start ))
  executed=$(awk '/stat::number_of_executed_units/ {print $NF}' "$log" | tail -n 1)
  "$bin/$target" -merge=1 "fuzz/corpus/$target" "$work" >/dev/null 2>&1 || true
  # The corpus is committed: of the inputs git does not track yet (the seeds it does), drop those over
  # KEEP_BYTES, then the largest until the folder holds at most CORPUS_BYTES.
  untracked() { find "fuzz/corpus/$target" -type f | while read -r f; do git ls-files --error-unmatch "$f" >/dev/null 2>&1 || echo "$f"; done; }
  untracked | while read -r f; do [ "$(stat -c %s "$f")" -le "$keep" ] || rm -f "$f"; done
  while [ "$(du -sb "fuzz/corpus/$target" | cut -f1)" -gt "$corpus_cap" ]; do
    largest=$(untracked | xargs -r ls -S | sed -n 1p)
    [ -n "$largest" ] || break
    rm -f "$largest"
  done
  crashes=$(find "fuzz/artifacts/$target" -type f 2>/dev/null | wc -l)
  echo "$target: ${executed:-?} inputs in ${seconds}s, exit $status, $crashes saved crashes, corpus $(find "fuzz/corpus/$target" -type f | wc -l) files ($log)"
done

if [ "${JS:-1}" = 1 ]; then
  python3 scripts/fetch-js-deps.py >/dev/null
  start=$(date +%s)
  FUZZ_RUNS="$runs" node --test www/tests/fuzz.test.mjs | grep -E '^(not )?ok|Counterexample'
  echo "page properties: $runs inputs each in $(( $(date +%s) - start ))s"
fi

#!/usr/bin/env bash
# Side by side, in one run on this machine, on the same first N validation tweets: our browser CPU path
# (headless Chromium, end to end through the page's workers, tokenization included) and native CLI against
# ONNX Runtime Web and native ONNX Runtime with their int8 MiniLM (../shared/bench/ort-web/run.sh, which
# times inference only). ROUNDS rounds, interleaved; prints medians and the ratios issue 10 sets goals for.
#
#   scripts/bench-vs-ort.sh            env: MODEL (default the shipped model), N=512, ROUNDS=2, OUT=runs/bench-vs-ort,
#                                           CHROME_ARG (one extra Chromium switch for our page runs)
#
# CHROME_ARG=--js-flags=--no-enable-avx-vnni shows a CPU with VNNI what CPUs without it get: V8 then lowers
# relaxed SIMD's 8-bit dot products as it must there. ONNX Runtime Web runs without the switch: its wasm has
# no relaxed SIMD (only i32x4.dot_i16x8_s, which V8 lowers the same way either way).
#
# Needs the release browser package (scripts/build-wasm.sh), python3, node + npm, chromium + chromedriver
# (scripts/setup-tests.sh). The peer's venv, npm packages and models live in ORT_WORKDIR
# (default ~/.cache/tweetguard-ort-web). Run it on a quiet machine: nothing else should be busy.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
model="${MODEL:-models/tweetguard-minilm-l6}"
csv="$(realpath "${CSV:-../shared/data/tweepfake/validation.csv}")"
n="${N:-512}"; rounds="${ROUNDS:-2}"; out="${OUT:-runs/bench-vs-ort}"
ort_work="${ORT_WORKDIR:-$HOME/.cache/tweetguard-ort-web}"
peer="$(realpath ../shared/bench/ort-web/run.sh)"
[ -f www/pkg/relaxed/tweetguard_bg.wasm ] || { echo "build the browser package first: scripts/build-wasm.sh" >&2; exit 1; }
cargo build --release -p native-trainer
bin="$root/target/release/native-trainer"
rm -rf "$out"; mkdir -p "$out"

for round in $(seq "$rounds"); do
  dir="$out/round-$round"; mkdir -p "$dir"
  echo "== round $round of $rounds: ONNX Runtime (web: 1 and 2 threads; native: 1 and 2)"
  CSV="$csv" N="$n" RUNS=1 THREADS="1 2" BATCHES=1,32 bash "$peer" "$ort_work" > "$dir/ort.log"
  cp "$ort_work"/results/*.json "$dir/"
  echo "== round $round: ours in the browser (1 worker, batch 1 and 32; all workers, batch 32)"
  NATIVE_TRAINER="$bin" python3 scripts/bench-browser.py "$model" --file "$csv" --n "$n" --batch 1,32 --workers 1 \
    ${CHROME_ARG:+"--chrome-arg=$CHROME_ARG"} > "$dir/ours_web_1.json"
  NATIVE_TRAINER="$bin" python3 scripts/bench-browser.py "$model" --file "$csv" --n "$n" --batch 32 --workers all \
    ${CHROME_ARG:+"--chrome-arg=$CHROME_ARG"} > "$dir/ours_web_all.json"
  echo "== round $round: ours natively (1 thread and all cores)"
  RAYON_NUM_THREADS=1 "$bin" bench --model "$model" --input "$csv" --limit "$n" --batch-size 1,32 --json > "$dir/ours_native_1.json"
  "$bin" bench --model "$model" --input "$csv" --limit "$n" --batch-size 1,32 --json > "$dir/ours_native_all.json"
done

{
  echo "date: $(date -u +%FT%TZ); chromium: $(chromium --version 2>/dev/null); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc)${CHROME_ARG:+; our page runs with $CHROME_ARG}"
  python3 scripts/bench_vs_ort_table.py "$out" "$n" "$model"
} | tee "$out/table.md"

#!/usr/bin/env bash
# The main job, from a fresh clone: build the CLI and the browser package, classify example tweets from
# the command line, then serve the web page on http://127.0.0.1:${PORT:-8080}/ (Ctrl+C stops it).
#
# It serves the shipped model (models/tweetguard-minilm-l6: all-MiniLM-L6-v2 fine-tuned on TweepFake,
# int8; its MODEL_CARD.md says how it was made) without training anything. Variables:
#   MODEL=DIR     serve another model folder instead (an export's OUT/ or OUT/model/)
#   TRAIN=1       fine-tune a new model first with the shipped model's recipe (all 20,712 rows, 3 epochs,
#                 release build: about 26 minutes on 2 quiet CPU cores) into RUN_DIR (default runs/minilm),
#                 reused on the next run; TRAIN_EPOCHS and TRAIN_LIMIT (rows) shorten it
#   PORT=P        the port (default 8080)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
input="${1:-examples/tweets.txt}"
stage() { printf '\n== %s (+%ss)\n' "$1" "$SECONDS"; }

stage "setup: wasm target, wasm-bindgen-cli$([ "${TRAIN:-0}" = 1 ] && echo ', the pretrained MiniLM')"
scripts/setup.sh
model="${MODEL:-models/tweetguard-minilm-l6}"

if [ "${TRAIN:-0}" = 1 ]; then
  run_dir="${RUN_DIR:-runs/minilm}"
  model="$run_dir"
  # Training wants the release build; predict and serve then use it too (one build, not two).
  stage "building the CLI (release, for training)"
  cargo build --release -p native-trainer
  bin=target/release/native-trainer
  if [ -f "$run_dir/model/manifest.json" ]; then
    stage "reusing the model trained in $run_dir (delete it to train again)"
  else
    limit_args=()
    [ -n "${TRAIN_LIMIT:-}" ] && limit_args=(--limit "$TRAIN_LIMIT")
    stage "fine-tuning all-MiniLM-L6-v2 on TweepFake (CPU; the shipped model's recipe)"
    "$bin" train --model .models/all-MiniLM-L6-v2 --output-dir "$run_dir" --overwrite-output-dir \
      --num-train-epochs "${TRAIN_EPOCHS:-3}" --learning-rate 5e-5 --train-batch-size 32 --ema-decay 0.999 --seed 0 \
      --device cpu "${limit_args[@]}"
  fi
fi

if [ -z "${bin:-}" ]; then
  stage "building the CLI"
  cargo build -p native-trainer
  bin=target/debug/native-trainer
fi
stage "building the browser package (two wasm builds)"
scripts/build-wasm.sh

stage "classifying $input (int8, as the browser runs it)"
"$bin" predict --model "$model" --input "$input"

stage "serving the page: open http://127.0.0.1:${PORT:-8080}/ and paste tweets (they never leave the browser)"
exec "$bin" serve --model "$model" --port "${PORT:-8080}"

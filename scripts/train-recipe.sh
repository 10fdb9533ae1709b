#!/usr/bin/env bash
# The shipped model's recipe, in one place, on the CPU:
#   scripts/train-recipe.sh TRAIN_CSV VALIDATION_CSV OUT_DIR   trains it into OUT_DIR (the model folder
#                                                              in OUT_DIR/model), as the shipped model was made
#   scripts/train-recipe.sh --cv TRAIN_CSV OUT_DIR [FOLDS]     its grouped cross-validation (native-trainer cv,
#                                                              4 folds by default) into OUT_DIR/cv_results.md
# Fetches the pretrained all-MiniLM-L6-v2 (scripts/fetch-minilm.sh) and builds the CLI first. Extra
# native-trainer flags go in RECIPE_EXTRA (e.g. RECIPE_EXTRA="--normalize-tweets" to measure a lever);
# CV_DIR=DIR (a finished --cv run of this recipe) puts its seen- and unseen-account figures into the
# trained model's card and manifest, as the shipped model's are.
# Time on 2 cores: about 25 minutes for the model, about 20 per fold of the cross-validation.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

# The recipe: the PyTorch reference's fine-tuning (3 epochs, AdamW, lr 5e-5 with 6 % warmup and linear
# decay, batch 32, max length 128, weight decay 0.01, clipping 1.0; the CLI's defaults where not given)
# plus an exponential moving average of the weights, which is what is exported.
recipe=(--model .models/all-MiniLM-L6-v2 --num-train-epochs 3 --learning-rate 5e-5 --train-batch-size 32
  --ema-decay 0.999 --seed 0 --device cpu)
# shellcheck disable=SC2206 # word splitting of the extra flags is the point
recipe+=(${RECIPE_EXTRA:-})

usage() {
  sed -n '2,6p' "$0" >&2
  exit 2
}

cv=0
if [ "${1:-}" = --cv ]; then
  cv=1
  shift
  [ $# -ge 2 ] && [ $# -le 3 ] || usage
else
  [ $# -eq 3 ] || usage
fi
for file in "$1" "${2:-}"; do
  case "$file" in *.csv) [ -f "$file" ] || { echo "no such file: $file" >&2; exit 2; } ;; esac
done

# Paths as the caller gave them, but relative to the repository when inside it (they are recorded in the
# model card), since the commands run from the repository's root.
here() {
  local path
  case "$1" in /*) path="$1" ;; *) path="$PWD/$1" ;; esac
  echo "${path#"$root"/}"
}
args=()
for arg in "$@"; do args+=("$(here "$arg")"); done
[ "$cv" = 1 ] && [ $# -eq 3 ] && args[2]="$3" # the fold count is not a path
cd "$root"
scripts/fetch-minilm.sh
cargo build --release -p native-trainer
trainer=target/release/native-trainer

if [ "$cv" = 1 ]; then
  exec "$trainer" cv "${recipe[@]}" --train-file "${args[0]}" --output-dir "${args[1]}" --folds "${args[2]:-4}"
fi
# With CV_DIR=... (a finished `--cv` run of this recipe), its figures go into the card and the manifest.
# The temperature stays fitted on the validation split: the folds' models are less confident than one
# trained on every row, so their unseen-account temperature does not carry over (docs/quality.md);
# RECIPE_EXTRA=--calibrate-on-unseen-accounts takes it anyway.
cv_flags=()
[ -n "${CV_DIR:-}" ] && cv_flags=(--cross-validation "$(here "$CV_DIR")")
exec "$trainer" train "${recipe[@]}" --train-file "${args[0]}" --validation-file "${args[1]}" --output-dir "${args[2]}" \
  "${cv_flags[@]}"

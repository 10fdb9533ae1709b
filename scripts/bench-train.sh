#!/usr/bin/env bash
# CPU fine-tuning speed side by side, in one run on this machine: our training step (`native-trainer bench
# --mode train`) against PyTorch's (../shared/bench/torch-train/bench_torch.py: BertForSequenceClassification,
# AdamW, dropout on, gradient clipping) on the same shape and threads, ROUNDS rounds interleaved; prints
# samples/s of each round, the medians and the ratio (goal: >= 1.0).
#
#   scripts/bench-train.sh       env: SEQ=64 BATCH=32 THREADS=$(nproc) ROUNDS=3 STEPS=6 WARMUP=2
#                                     TORCH_PYTHON (default ~/.cache/torch-venv/bin/python)
#
# PyTorch is not a dependency of the product or of CI: make the venv once with
#   python3 -m venv ~/.cache/torch-venv && ~/.cache/torch-venv/bin/pip install torch==2.11.0 transformers==5.17.0
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
seq="${SEQ:-64}"; batch="${BATCH:-32}"; threads="${THREADS:-$(nproc)}"; rounds="${ROUNDS:-3}"
steps="${STEPS:-6}"; warmup="${WARMUP:-2}"
python="${TORCH_PYTHON:-$HOME/.cache/torch-venv/bin/python}"
[ -x "$python" ] || { echo "no PyTorch venv at $python (see the header of $0)" >&2; exit 1; }
cargo build --release -p native-trainer
ours=() theirs=()
for round in $(seq "$rounds"); do
  o=$(RAYON_NUM_THREADS="$threads" target/release/native-trainer bench --preset minilm --seq-len "$seq" --batch "$batch" \
        --mode train --device cpu --iters "$steps" --warmup "$warmup" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["train"][0]["samples_per_s"])')
  t=$("$python" ../shared/bench/torch-train/bench_torch.py --seq "$seq" --batch "$batch" --threads "$threads" --steps "$steps" --warmup "$warmup" \
        | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["train_samples_per_s"])')
  printf 'round %s: ours %.1f samples/s, PyTorch %.1f samples/s\n' "$round" "$o" "$t"
  ours+=("$o"); theirs+=("$t")
done
python3 - "$seq" "$batch" "$threads" "${ours[*]}" "${theirs[*]}" <<'PY'
import statistics, sys
seq, batch, threads, ours, theirs = sys.argv[1], sys.argv[2], sys.argv[3], list(map(float, sys.argv[4].split())), list(map(float, sys.argv[5].split()))
o, t = statistics.median(ours), statistics.median(theirs)
print(f"\nMiniLM shape, seq {seq}, batch {batch}, {threads} threads, AdamW + dropout, {len(ours)} rounds")
print("| stack | samples/s (median) | min-max |\n|---|---|---|")
print(f"| native-trainer | {o:.1f} | {min(ours):.1f}-{max(ours):.1f} |")
print(f"| PyTorch | {t:.1f} | {min(theirs):.1f}-{max(theirs):.1f} |")
print(f"\nratio ours / PyTorch: **{o / t:.2f}x** (goal >= 1.0)")
PY

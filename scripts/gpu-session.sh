#!/usr/bin/env bash
# The CUDA checks of one GPU session, in one go (device time is scarce): run on the lent H100 machine from
# the repository root, after scripts/gpu-prepare.sh filled `.device/` and `.gl/` here.
#   1. bench: training steps/s (f32 and bf16 mixed precision) at the reference shapes, and inference of
#      the WebGPU backend (Vulkan) against candle's CUDA path;
#   2. the reference fine-tune (MiniLM, 3 epochs, lr 5e-5, batch 32, max length 128) with seed 0 alone,
#      timed; then seeds 1 and 2 and a bf16 run of seed 0 side by side;
#   3. seed 0's model checked by HF transformers (`hf/`), scikit-learn (metrics) and the WebGPU backend
#      (int8 validation accuracy and tweets/s of the browser's code on a real GPU).
# Logs and small result files go to $OUT/results.tgz, rewritten after each step so a cut-off run still
# reports. Usage: bash scripts/gpu-session.sh [SECONDS_BUDGET]   (default 520)
# STEPS picks parts (default all: train-bench infer-bench seed0 more-seeds checks model-bench); EPOCHS
# shortens the fine-tunes (default 3).
# A dry run here on the CPU (without the benches, which take minutes on a CPU):
#   DEVICE=cpu BACKEND=cpu BIN=target/debug/native-trainer STEPS="seed0 checks model-bench" EPOCHS=1 \
#   TRAIN_EXTRA="--limit 64 --eval-limit 64" bash scripts/gpu-session.sh
set -u
budget="${1:-520}"
deadline=$((SECONDS + budget))
out="${OUT:-/tmp/gpu-out}"
res=/tmp/res
mkdir -p "$out" "$res" /tmp/data /tmp/runs
device="${DEVICE:-cuda}" backend="${BACKEND:-webgpu}" iters="${ITERS:-}"
warm() { if [ -n "$iters" ]; then echo 0; else echo "$1"; fi; }
read -r -a extra <<< "${TRAIN_EXTRA:-}"
steps=" ${STEPS:-train-bench infer-bench seed0 more-seeds checks model-bench} "
want() { [[ "$steps" == *" $1 "* ]]; }
bin="${BIN:-/tmp/native-trainer}"
[ -n "${BIN:-}" ] || { gunzip -c .device/native-trainer.gz > "$bin" && chmod +x "$bin"; }
for split in train validation; do gunzip -c ".device/data/$split.csv.gz" > "/tmp/data/$split.csv"; done
export TWEEPFAKE_DIR=/tmp/data RUST_LOG=info NO_COLOR=1
export LD_LIBRARY_PATH="/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}"
# The GPU machine has NVIDIA's Vulkan driver but neither the Vulkan loader nor libglvnd, which the
# driver's ICD library needs (/work/.library/device/README.md).
if command -v nvidia-smi > /dev/null; then
  for deb in .gl/*.deb; do dpkg -x "$deb" /; done
  ldconfig
  icd=$(ls /usr/local/nvidia/share/vulkan/icd.d/nvidia*.json /usr/share/vulkan/icd.d/nvidia*.json /etc/vulkan/icd.d/nvidia*.json 2>/dev/null | head -1)
  export VK_DRIVER_FILES="$icd" VK_LOADER_DEBUG=error
fi
export WGPU_BACKEND=vulkan

save() { tar czf "$out/results.tgz" -C /tmp res; }
# step NAME COMMAND...: runs it with its log in $res/NAME.log, prints the status, time and log tail.
step() {
  local name="$1" started=$SECONDS rc
  shift
  echo "== $name: $*"
  "$@" > "$res/$name.log" 2>&1
  rc=$?
  echo "-- $name: rc $rc, $((SECONDS - started)) s"
  grep -v '^\s*$' "$res/$name.log" | grep -v 'ETA' | tail -n 12
  save
  return $rc
}
left() { echo $((deadline - SECONDS)); }

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nproc; ldd "$bin" | grep -i 'not found'
  echo "Vulkan ICD: ${VK_DRIVER_FILES:-none}"; ldconfig -p | grep -iE 'libvulkan|GLdispatch|GLX_nvidia'; } 2>&1 | tee "$res/machine.txt"
tr=(train --model .device/minilm --device "$device" --num-train-epochs "${EPOCHS:-3}" --learning-rate 5e-5 --train-batch-size 32 --max-seq-length 128 --overwrite-output-dir "${extra[@]}")

want train-bench && for precision in f32 bf16; do
  step "bench-minilm-train-$precision" "$bin" bench --preset minilm --seq-len 64 --batch 32 --mode train --device "$device" --precision "$precision" --warmup "$(warm 5)" --iters "${iters:-30}"
  step "bench-bertbase-train-$precision" "$bin" bench --preset bert-base --seq-len 128 --batch 32 --mode train --device "$device" --precision "$precision" --warmup "$(warm 3)" --iters "${iters:-15}"
done
want infer-bench && {
step bench-minilm-infer-b256 "$bin" bench --preset minilm --seq-len 64 --batch 256 --mode infer --device "$device" --backend "$backend" --warmup "$(warm 3)" --iters "${iters:-10}" --profile
step bench-minilm-infer-b1 "$bin" bench --preset minilm --seq-len 64 --batch 1 --mode infer --device "$device" --backend "$backend" --warmup "$(warm 5)" --iters "${iters:-50}" --profile
}
want seed0 && step train-seed0-f32 "$bin" "${tr[@]}" --seed 0 --output-dir /tmp/runs/s0

# Three more runs side by side on the one GPU (each is launch-bound at batch 32); their epoch timings are
# not solo figures. They end 80 s before the deadline to leave time for the checks below.
side_by_side() {
  local limit=$(($(left) - 80)) spec name
  if [ "$limit" -lt 60 ]; then echo "only $limit s left: skipped"; return 1; fi
  for spec in "s1 --seed 1" "s2 --seed 2" "s0-bf16 --seed 0 --precision bf16"; do
    set -- $spec
    name=$1
    shift
    timeout "$limit" "$bin" "${tr[@]}" "$@" --output-dir "/tmp/runs/$name" > "$res/train-$name.log" 2>&1 &
  done
  wait
}
want more-seeds && step train-s1-s2-s0bf16 side_by_side
for run in /tmp/runs/*; do
  [ -d "$run" ] || continue
  name=$(basename "$run")
  mkdir -p "$res/$name"
  cp "$run"/{eval_results.txt,training_loss.tsv,training_curve.svg,confusion_matrix.svg} "$run/model/"{MODEL_CARD.md,manifest.json} "$res/$name/" 2>/dev/null
  echo "$name: $(grep -E '^(eval_(f32|int8)_(accuracy|f1|mcc)|temperature|ece_)' "$run/eval_results.txt" 2>/dev/null | tr '\n' ' ')"
done | tee "$res/summary.txt"
save

want checks && step check-hf python3 tests/python/check_hf_export.py /tmp/runs/s0 "$bin"
want checks && step check-metrics python3 tests/python/check_metrics.py /tmp/runs/s0 /tmp/data/validation.csv
want model-bench && step eval-s0-int8 "$bin" eval --model /tmp/runs/s0 --backend "$backend"
want model-bench && step bench-s0-int8 "$bin" bench --model /tmp/runs/s0 --backend "$backend" --batch-size 1,32,256 --limit 1024 --counters
echo "done with $(left) s of the budget left"

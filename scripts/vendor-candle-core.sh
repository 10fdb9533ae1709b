#!/usr/bin/env bash
# Rebuilds third_party/candle-core: candle-core from crates.io (the version Cargo.lock resolves) with
# third_party/candle-core-backprop.patch applied, minus its tests, benches and examples (their targets are
# dropped from its manifest). Run it after changing candle's version; drop the vendored copy, the patch and
# the [patch.crates-io] entry in Cargo.toml once upstream releases the change (third_party/README.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
version="$(grep -A1 '^name = "candle-core"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
# A throwaway crate that depends on exactly that version, so cargo downloads its source.
mkdir -p "$work/fetch/src" && touch "$work/fetch/src/lib.rs"
printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\ncandle-core = "=%s"\n' "$version" > "$work/fetch/Cargo.toml"
source_dir="$(cargo metadata --manifest-path "$work/fetch/Cargo.toml" --format-version 1 |
  python3 -c 'import json, sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "candle-core").rsplit("/", 1)[0])')"
rm -rf third_party/candle-core
cp -r "$source_dir" third_party/candle-core
cd third_party/candle-core
rm -rf tests benches examples Cargo.lock Cargo.toml.orig .cargo_vcs_info.json .cargo-ok
python3 - <<'PY'
import re
manifest = open("Cargo.toml").read()
manifest = re.sub(r"\n\[\[(example|test|bench)\]\]\n(?:[^\[\n][^\n]*\n|\n(?!\[))*", "\n", manifest)
# Upstream's code is not ours to lint: its rustc warnings (an unused import in the wasm build) would only be
# noise in this repository's builds.
manifest += '\n[lints.rust]\nunused = { level = "allow", priority = -1 }\n'
open("Cargo.toml", "w").write(manifest)
PY
patch -p1 --no-backup-if-mismatch < ../candle-core-backprop.patch
# Upstream formats with rustfmt's defaults; this repository's rustfmt.toml (one level up) sets wider lines.
printf '# upstream candle formats with rustfmt defaults (the repository root sets a wider line)\n' > rustfmt.toml
echo "third_party/candle-core: candle-core $version, patched"

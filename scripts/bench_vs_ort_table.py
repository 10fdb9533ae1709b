#!/usr/bin/env python3
"""The table of scripts/bench-vs-ort.sh: medians over its rounds of our tweets/s and ONNX Runtime's, and the
ratios issue 10 sets goals for, then the page's memory and download. Usage: bench_vs_ort_table.py OUT_DIR N [MODEL_DIR]"""
import glob, gzip, json, os, statistics, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out, n = sys.argv[1], sys.argv[2]
model_dir = sys.argv[3] if len(sys.argv) > 3 else os.path.join(ROOT, "models/tweetguard-minilm-l6")
rounds = sorted(glob.glob(os.path.join(out, "round-*")))
samples = {}


def add(key, value):
    samples.setdefault(key, []).append(value)


for r in rounds:
    for page in json.load(open(os.path.join(r, "browser_ort.json"))):
        if page.get("ok") and isinstance(page.get("res"), dict):
            for row in page["res"].get("rows", []):
                add(("ORT Web int8 (inference only)", row["threads"], row["batch"]), row["tps_median"])
    native = os.path.join(r, "native.json")
    if os.path.exists(native):
        for row in json.load(open(native))["results"]:
            if row["model"] == "int8dyn":
                add(("ORT native int8 (inference only)", row["threads"], row["batch"]), row["tps_median"])
    for name, stack, threads in [("ours_web_1", "ours, page (end to end)", "1 worker"), ("ours_web_all", "ours, page (end to end)", "all workers"),
                                 ("ours_native_1", "ours, native CLI (end to end)", 1), ("ours_native_all", "ours, native CLI (end to end)", os.cpu_count())]:
        text = open(os.path.join(r, name + ".json")).read()
        result = json.loads(text[text.index("{"):])
        for run in result.get("runs", result.get("calls", [])):
            add((stack, threads, run.get("batchSize", run.get("batch_size"))), run.get("tweetsPerSecond", run.get("tweets_per_s")))

median = {k: statistics.median(v) for k, v in samples.items()}
print(f"\n{len(rounds)} rounds, the first {n} TweepFake validation tweets; tweets/s, median of the rounds (min-max)\n")
print("| stack | threads | batch | tweets/s | min-max |\n|---|---|---|---|---|")
for k in sorted(samples, key=lambda k: (k[0], str(k[1]), k[2])):
    print(f"| {k[0]} | {k[1]} | {k[2]} | {median[k]:.1f} | {min(samples[k]):.1f}-{max(samples[k]):.1f} |")


def ratio(label, ours, theirs, goal):
    if ours in median and theirs in median:
        value = median[ours] / median[theirs]
        print(f"| {label} | {median[ours]:.1f} / {median[theirs]:.1f} | **{value:.2f}x** | {goal} |")


print("\n| ratio | ours / theirs | ratio | goal |\n|---|---|---|---|")
web, native = "ORT Web int8 (inference only)", "ORT native int8 (inference only)"
page, cli = "ours, page (end to end)", "ours, native CLI (end to end)"
ratio("one thread, one tweet per call (page)", (page, "1 worker", 1), (web, 1, 1), ">= 1.5x")
ratio("one thread, 32 tweets per call (page)", (page, "1 worker", 32), (web, 1, 32), "-")
best_web_2 = max(((web, 2, b) for b in (1, 32) if (web, 2, b) in median), key=lambda k: median[k], default=None)
if best_web_2:
    ratio(f"bulk: all workers vs ORT Web 2 threads (its best batch, {best_web_2[2]})", (page, "all workers", 32), best_web_2, ">= 1.5x")
ratio("native, one thread, one tweet per call", (cli, 1, 1), (native, 1, 1), ">= 0.5x")


def page_result(name):
    text = open(os.path.join(rounds[-1], name + ".json")).read()
    return json.loads(text[text.index("{"):])


mib = lambda b: f"{b / 2**20:.1f} MiB"
first = page_result("ours_web_1")
print(f"\nMemory: wasm heap after load {mib(first['wasmHeapBytes']) if first.get('wasmHeapBytes') else 'not reported'} "
      f"per worker ({first.get('wasmBuild')} build; weights stay int8)")
if not os.path.exists(os.path.join(model_dir, "model.int8.safetensors")):
    model_dir = os.path.join(model_dir, "model")  # an export's OUT/
model_bytes = sum(os.path.getsize(os.path.join(model_dir, f)) for f in ("model.int8.safetensors", "config.json", "tokenizer.json"))
for build, path in [("baseline", "www/pkg/tweetguard_bg.wasm"), ("relaxed", "www/pkg/relaxed/tweetguard_bg.wasm")]:
    wasm = gzip.compress(open(os.path.join(ROOT, path), "rb").read(), 9)
    print(f"Download ({build} build): wasm {mib(len(wasm))} gzip + model {mib(model_bytes)} (weights, config, tokenizer) "
          f"= {mib(len(wasm) + model_bytes)}")

"""Checks that an exported `OUT/hf` folder loads in HF transformers as BertForSequenceClassification and
gives the same probabilities as the Rust core on the same weights (`native-trainer predict --model OUT/hf`).

Needs torch + transformers (a developer machine, not CI).
Usage: python3 check_hf_export.py OUT_DIR [NATIVE_TRAINER_BINARY]
"""
import json
import subprocess
import sys

import torch
from transformers import AutoTokenizer, BertForSequenceClassification

out = sys.argv[1]
binary = sys.argv[2] if len(sys.argv) > 2 else "target/debug/native-trainer"
texts = ["just setting up my twttr", "The decade in the significantly easier schedule I Don't like h",
         "@friend happy birthday!! hope you have the best day 🎂", "word " * 200]
model = BertForSequenceClassification.from_pretrained(f"{out}/hf").eval()
tok = AutoTokenizer.from_pretrained(f"{out}/hf")
with torch.no_grad():
    enc = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    hf = torch.softmax(model(**enc).logits, -1).tolist()
rust = subprocess.run([binary, "predict", "--model", f"{out}/hf", "--input", "-", "--format", "lines"],
                      input="\n".join(texts), capture_output=True, text=True, check=True)
rows = [json.loads(line) for line in rust.stdout.splitlines()]
labels = model.config.id2label
worst = 0.0
for text, h, r in zip(texts, hf, rows):
    for i, p in enumerate(h):
        worst = max(worst, abs(p - r["probabilities"][labels[i]]))
print(f"HF transformers loads {out}/hf; max |probability difference| vs the Rust core: {worst:.2e}")
assert worst < 1e-4, worst

"""Recomputes a training run's f32 validation metrics with scikit-learn from its `predictions.txt` and the
validation file's gold labels, and compares them with `eval_results.txt` (to 1e-6, the file's precision).

Needs pandas + scikit-learn (a developer or GPU machine, not CI).
Usage: python3 check_metrics.py OUT_DIR VALIDATION_CSV
"""
import sys

import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef, precision_score, recall_score

out, validation = sys.argv[1], sys.argv[2]
gold = (pd.read_csv(validation, sep=";", dtype=str, keep_default_na=False)["account.type"] == "bot").astype(int).tolist()
predicted = [int(line.strip() == "bot") for line in open(f"{out}/predictions.txt", encoding="utf-8") if line.strip()]
if len(predicted) > len(gold):
    sys.exit(f"{len(predicted)} predictions for {len(gold)} validation rows")
gold = gold[: len(predicted)]  # a run with --eval-limit N validates on the first N rows
ours = {}
for line in open(f"{out}/eval_results.txt", encoding="utf-8"):
    if line.startswith("eval_f32_"):
        key, value = line.split(" = ")
        ours[key.removeprefix("eval_f32_")] = float(value)
sklearn = {
    "accuracy": accuracy_score(gold, predicted),
    "precision": precision_score(gold, predicted),
    "recall": recall_score(gold, predicted),
    "f1": f1_score(gold, predicted),
    "mcc": matthews_corrcoef(gold, predicted),
}
bad = {k: (ours.get(k), v) for k, v in sklearn.items() if ours.get(k) is None or abs(ours[k] - v) > 1e-6}
print(f"{len(gold)} rows; scikit-learn: " + ", ".join(f"{k} {v:.6f}" for k, v in sklearn.items()))
sys.exit(f"eval_results.txt disagrees with scikit-learn (ours, sklearn): {bad}" if bad else 0)

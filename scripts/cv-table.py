#!/usr/bin/env python3
"""Compares recipes' grouped cross-validations (folders of `native-trainer cv`) on the folds all of them
have done, so every row is read on the same families and the same held-out tweets: docs/quality.md's
experiment table. For each folder: seen and unseen accounts' pooled accuracy with the folds' standard
deviation, GPT-2 caught, human tweets right, ECE (unseen: with a temperature fitted on the other folds'
unseen tweets) and the minutes per fold.

    scripts/cv-table.py runs/cv-shipped-recipe runs/cv-normalized ...
"""
import json
import math
import pathlib
import statistics
import sys


def folds_done(folder):
    return {int(p.parent.name.split("-")[1]) for p in folder.glob("fold-*/fold.json")}


def read(folder, folds):
    rows, minutes = [], []
    for fold in sorted(folds):
        summary = json.loads((folder / f"fold-{fold}" / "fold.json").read_text())
        minutes.append(summary["seconds"] / 60)
        for line in (folder / f"fold-{fold}" / "predictions.jsonl").read_text().splitlines():
            row = json.loads(line)
            row["fold"], row["temperature"] = fold, summary["temperature"]
            rows.append(row)
    return rows, minutes


def right(row):
    return (row["logits"][1] > row["logits"][0]) == (row["label"] == 1)


def nll(rows, t):
    total = 0.0
    for r in rows:
        a, b = r["logits"][0] / t, r["logits"][1] / t
        m = max(a, b)
        log_z = m + math.log(math.exp(a - m) + math.exp(b - m))
        total += log_z - (b if r["label"] == 1 else a)
    return total / max(len(rows), 1)


def fit_temperature(rows):
    """Golden-section search on log T in [0.05, 20], as metrics::fit_temperature."""
    lo, hi = math.log(0.05), math.log(20)
    phi = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        c, d = hi - phi * (hi - lo), lo + phi * (hi - lo)
        if nll(rows, math.exp(c)) < nll(rows, math.exp(d)):
            hi = d
        else:
            lo = c
    return math.exp((lo + hi) / 2)


def ece(rows, temperature_of, bins=15):
    sums = [[0.0, 0.0, 0] for _ in range(bins)]
    for r in rows:
        t = temperature_of(r)
        p_bot = 1 / (1 + math.exp(-(r["logits"][1] - r["logits"][0]) / t))
        conf = max(p_bot, 1 - p_bot)
        b = min(int(conf * bins), bins - 1)
        sums[b][0] += conf
        sums[b][1] += right(r)
        sums[b][2] += 1
    return sum(abs(c - k) for c, k, n in sums if n) / max(len(rows), 1)


def describe(rows, set_name, folds):
    rows = [r for r in rows if r["set"] == set_name]
    per_fold = [statistics.mean(right(r) for r in rows if r["fold"] == f) for f in sorted(folds)]
    sd = statistics.stdev(per_fold) if len(per_fold) > 1 else 0.0
    share = lambda gen: statistics.mean(right(r) for r in rows if r["generator"] == gen) if any(r["generator"] == gen for r in rows) else float("nan")
    if set_name == "unseen" and len(folds) > 1:
        temperature = {f: fit_temperature([r for r in rows if r["fold"] != f]) for f in folds}
        calibration = ece(rows, lambda r: temperature[r["fold"]])
    else:
        calibration = ece(rows, lambda r: r["temperature"])
    accuracy = statistics.mean(right(r) for r in rows)
    return f"{accuracy:.4f} ± {sd:.4f} | {share('gpt2'):.3f} | {share('human'):.3f} | {calibration:.4f}"


def main(folders):
    folders = [pathlib.Path(f) for f in folders]
    common = set.intersection(*(folds_done(f) for f in folders))
    if not common:
        sys.exit("no fold is done in every folder")
    print(f"Folds {', '.join(map(str, sorted(common)))} (done in every folder compared).\n")
    print("| recipe | seen: accuracy ± folds' sd | GPT-2 | human | ECE | unseen: accuracy ± folds' sd | GPT-2 | human | ECE (cross-fitted T) | minutes per fold |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for folder in folders:
        rows, minutes = read(folder, common)
        print(f"| {folder.name} | {describe(rows, 'seen', common)} | {describe(rows, 'unseen', common)} | {statistics.mean(minutes):.1f} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])

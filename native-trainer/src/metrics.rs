//! Evaluation metrics as `run_glue.py` and scikit-learn report them: accuracy, precision, recall, F1 and
//! MCC for the positive class (`bot`), a per-class `classification_report`, and calibration (expected
//! calibration error, temperature fitted on held-out logits).

use std::fmt::Write;

/// Binary metrics with class 1 as the positive class.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Metrics {
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub mcc: f64,
    /// `confusion[gold][predicted]`.
    pub confusion: [[u64; 2]; 2],
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

/// Per-class precision, recall, F1 and support.
fn per_class(c: &[[u64; 2]; 2], class: usize) -> (f64, f64, f64, u64) {
    let tp = c[class][class] as f64;
    let predicted = (c[0][class] + c[1][class]) as f64;
    let support = c[class][0] + c[class][1];
    let (p, r) = (ratio(tp, predicted), ratio(tp, support as f64));
    (p, r, ratio(2.0 * p * r, p + r), support)
}

impl Metrics {
    pub fn compute(predicted: &[u32], gold: &[u32]) -> Self {
        assert_eq!(predicted.len(), gold.len());
        let mut confusion = [[0u64; 2]; 2];
        for (&p, &g) in predicted.iter().zip(gold) {
            confusion[g as usize][p as usize] += 1;
        }
        let [[tn, fp], [fn_, tp]] = confusion.map(|r| r.map(|v| v as f64));
        let (precision, recall, f1, _) = per_class(&confusion, 1);
        let denominator = ((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_)).sqrt();
        Metrics {
            accuracy: ratio(tp + tn, predicted.len() as f64),
            precision,
            recall,
            f1,
            mcc: ratio(tp * tn - fp * fn_, denominator),
            confusion,
        }
    }

    /// scikit-learn's `classification_report` layout.
    pub fn report(&self, labels: &[&str]) -> String {
        let c = &self.confusion;
        let total: u64 = c.iter().flatten().sum();
        let mut out = format!("{:>14} {:>9} {:>9} {:>9} {:>9}\n\n", "", "precision", "recall", "f1-score", "support");
        let rows: Vec<_> = (0..2).map(|k| per_class(c, k)).collect();
        for (label, (p, r, f, s)) in labels.iter().zip(&rows) {
            let _ = writeln!(out, "{label:>14} {p:>9.4} {r:>9.4} {f:>9.4} {s:>9}");
        }
        let _ = writeln!(out, "\n{:>14} {:>9} {:>9} {:>9.4} {total:>9}", "accuracy", "", "", self.accuracy);
        let mean = |f: fn(&(f64, f64, f64, u64)) -> f64| rows.iter().map(f).sum::<f64>() / 2.0;
        let weighted = |f: fn(&(f64, f64, f64, u64)) -> f64| {
            rows.iter().map(|row| f(row) * row.3 as f64).sum::<f64>() / total.max(1) as f64
        };
        let (mp, mr, mf) = (mean(|r| r.0), mean(|r| r.1), mean(|r| r.2));
        let (wp, wr, wf) = (weighted(|r| r.0), weighted(|r| r.1), weighted(|r| r.2));
        let _ = writeln!(out, "{:>14} {mp:>9.4} {mr:>9.4} {mf:>9.4} {total:>9}", "macro avg");
        let _ = writeln!(out, "{:>14} {wp:>9.4} {wr:>9.4} {wf:>9.4} {total:>9}", "weighted avg");
        out
    }
}

fn softmax_rows(logits: &[Vec<f32>], temperature: f64) -> Vec<Vec<f64>> {
    logits
        .iter()
        .map(|row| {
            let scaled: Vec<f64> = row.iter().map(|&l| l as f64 / temperature).collect();
            let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let exps: Vec<f64> = scaled.iter().map(|l| (l - max).exp()).collect();
            let sum: f64 = exps.iter().sum();
            exps.into_iter().map(|e| e / sum).collect()
        })
        .collect()
}

/// Mean negative log-likelihood of the gold labels at a temperature.
pub fn nll(logits: &[Vec<f32>], gold: &[u32], temperature: f64) -> f64 {
    let probs = softmax_rows(logits, temperature);
    probs.iter().zip(gold).map(|(p, &g)| -p[g as usize].max(1e-300).ln()).sum::<f64>() / gold.len().max(1) as f64
}

/// Equal-width confidence bins of the reliability diagram and the expected calibration error.
pub const CALIBRATION_BINS: usize = 15;

/// One bin of the top-class confidence: how many texts fell in it, their mean confidence and the share
/// labelled right.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ReliabilityBin {
    pub low: f64,
    pub high: f64,
    pub count: usize,
    pub mean_confidence: f64,
    pub accuracy: f64,
}

/// The reliability diagram's bins ([`CALIBRATION_BINS`] of them, empty ones included) at a temperature.
pub fn reliability(logits: &[Vec<f32>], gold: &[u32], temperature: f64) -> Vec<ReliabilityBin> {
    let mut sums = [(0f64, 0f64, 0usize); CALIBRATION_BINS];
    for (p, &g) in softmax_rows(logits, temperature).iter().zip(gold) {
        let (best, conf) = p.iter().enumerate().fold((0, 0.0), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
        let bin = ((conf * CALIBRATION_BINS as f64) as usize).min(CALIBRATION_BINS - 1);
        sums[bin].0 += conf;
        sums[bin].1 += f64::from(u8::from(best as u32 == g));
        sums[bin].2 += 1;
    }
    let width = 1.0 / CALIBRATION_BINS as f64;
    sums.iter()
        .enumerate()
        .map(|(i, &(conf, correct, count))| ReliabilityBin {
            low: i as f64 * width,
            high: (i + 1) as f64 * width,
            count,
            mean_confidence: ratio(conf, count as f64),
            accuracy: ratio(correct, count as f64),
        })
        .collect()
}

/// Expected calibration error of the top-class confidence over [`CALIBRATION_BINS`] equal-width bins.
pub fn ece(logits: &[Vec<f32>], gold: &[u32], temperature: f64) -> f64 {
    let n = gold.len().max(1) as f64;
    reliability(logits, gold, temperature)
        .iter()
        .map(|b| (b.mean_confidence - b.accuracy).abs() * b.count as f64)
        .sum::<f64>()
        / n
}

/// How the texts of one generator (TweepFake's `class_type`) were labelled: for a bot generator,
/// `accuracy` is its recall (bots caught); for `human`, the share of human texts labelled human.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GeneratorRow {
    pub generator: String,
    pub rows: u64,
    pub predicted_human: u64,
    pub predicted_bot: u64,
    pub accuracy: f64,
}

/// The generators' order in reports: TweepFake's four, then any other in name order.
const GENERATOR_ORDER: [&str; 4] = ["human", "gpt2", "rnn", "others"];

/// Per-generator rows (the confusion matrix by class) of predictions against examples' gold labels;
/// examples without a generator are left out, so a file without `class_type` gives no rows.
pub fn by_generator(predicted: &[u32], examples: &[crate::data::Example]) -> Vec<GeneratorRow> {
    let mut counts: std::collections::BTreeMap<(usize, &str), [u64; 3]> = Default::default();
    for (&p, e) in predicted.iter().zip(examples) {
        let Some(generator) = e.generator.as_deref() else { continue };
        let rank = GENERATOR_ORDER.iter().position(|g| *g == generator).unwrap_or(GENERATOR_ORDER.len());
        let entry = counts.entry((rank, generator)).or_default();
        entry[p.min(1) as usize] += 1;
        entry[2] += u64::from(p == e.label);
    }
    counts
        .into_iter()
        .map(|((_, generator), [human, bot, correct])| GeneratorRow {
            generator: generator.to_string(),
            rows: human + bot,
            predicted_human: human,
            predicted_bot: bot,
            accuracy: ratio(correct as f64, (human + bot) as f64),
        })
        .collect()
}

/// The per-generator rows as a Markdown table.
pub fn generator_table(rows: &[GeneratorRow]) -> String {
    let mut out = String::from(
        "| generator | texts | labelled human | labelled bot | right (bots: recall) |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.4} |",
            r.generator, r.rows, r.predicted_human, r.predicted_bot, r.accuracy
        );
    }
    out
}

/// The temperature in [0.05, 20] that minimises the NLL (golden-section search on log T).
pub fn fit_temperature(logits: &[Vec<f32>], gold: &[u32]) -> f64 {
    let f = |log_t: f64| nll(logits, gold, log_t.exp());
    let (mut a, mut b) = (0.05f64.ln(), 20f64.ln());
    let phi = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..60 {
        let (c, d) = (b - phi * (b - a), a + phi * (b - a));
        if f(c) < f(d) {
            b = d;
        } else {
            a = c;
        }
    }
    ((a + b) / 2.0).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_scikit_learn() {
        // sklearn: y_true=[1,1,1,0,0,0,1,0], y_pred=[1,0,1,0,1,0,1,0]
        let m = Metrics::compute(&[1, 0, 1, 0, 1, 0, 1, 0], &[1, 1, 1, 0, 0, 0, 1, 0]);
        assert_eq!(m.confusion, [[3, 1], [1, 3]]);
        assert!((m.accuracy - 0.75).abs() < 1e-12);
        assert!((m.precision - 0.75).abs() < 1e-12 && (m.recall - 0.75).abs() < 1e-12);
        assert!((m.mcc - 0.5).abs() < 1e-12);
        let report = m.report(&["human", "bot"]);
        assert!(report.contains("macro avg") && report.contains("0.7500"), "{report}");
    }

    #[test]
    fn generators_are_counted_in_tweepfake_order_and_unknown_ones_kept() {
        let example = |label, generator: Option<&str>| crate::data::Example {
            generator: generator.map(str::to_string),
            ..crate::data::Example::new("t", label)
        };
        let examples = [
            example(1, Some("rnn")),
            example(1, Some("gpt2")),
            example(1, Some("gpt2")),
            example(0, Some("human")),
            example(1, Some("markov")),
            example(0, None),
        ];
        let rows = by_generator(&[1, 0, 1, 1, 1, 0], &examples);
        let names: Vec<&str> = rows.iter().map(|r| r.generator.as_str()).collect();
        assert_eq!(names, ["human", "gpt2", "rnn", "markov"]);
        assert_eq!((rows[1].rows, rows[1].predicted_human, rows[1].predicted_bot, rows[1].accuracy), (2, 1, 1, 0.5));
        assert_eq!((rows[0].predicted_bot, rows[0].accuracy), (1, 0.0));
        let table = generator_table(&rows);
        assert!(table.contains("| gpt2 | 2 | 1 | 1 | 0.5000 |"), "{table}");
    }

    #[test]
    fn reliability_bins_add_up_to_the_ece() {
        let logits: Vec<Vec<f32>> = (0..100).map(|i| vec![0.0, if i % 3 == 0 { -2.0 } else { 1.0 }]).collect();
        let gold: Vec<u32> = (0..100).map(|i| u32::from(i % 5 != 0)).collect();
        let bins = reliability(&logits, &gold, 1.0);
        assert_eq!(bins.len(), CALIBRATION_BINS);
        assert_eq!(bins.iter().map(|b| b.count).sum::<usize>(), 100);
        let by_hand: f64 =
            bins.iter().map(|b| (b.mean_confidence - b.accuracy).abs() * b.count as f64).sum::<f64>() / 100.0;
        assert!((ece(&logits, &gold, 1.0) - by_hand).abs() < 1e-12 && by_hand > 0.0);
    }

    #[test]
    fn temperature_fixes_overconfidence() {
        // Logits 4x too sharp for a 75 % accurate model.
        let logits: Vec<Vec<f32>> =
            (0..400).map(|i| if i % 2 == 0 { vec![0.0, 4.4] } else { vec![4.4, 0.0] }).collect();
        let gold: Vec<u32> = (0..400).map(|i| if i % 4 == 0 { 0 } else { (i % 2 == 0) as u32 }).collect();
        let t = fit_temperature(&logits, &gold);
        assert!(ece(&logits, &gold, t) < 0.01 && ece(&logits, &gold, 1.0) > 0.1, "t={t}");
        assert!((1.0 / (1.0 + (-4.4 / t).exp()) - 0.75).abs() < 1e-3);
    }
}

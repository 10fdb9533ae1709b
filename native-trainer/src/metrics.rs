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

/// Expected calibration error of the top-class confidence over 15 equal-width bins.
pub fn ece(logits: &[Vec<f32>], gold: &[u32], temperature: f64) -> f64 {
    const BINS: usize = 15;
    let mut bins = [(0f64, 0f64, 0usize); BINS];
    for (p, &g) in softmax_rows(logits, temperature).iter().zip(gold) {
        let (best, conf) = p.iter().enumerate().fold((0, 0.0), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
        let bin = ((conf * BINS as f64) as usize).min(BINS - 1);
        bins[bin].0 += conf;
        bins[bin].1 += f64::from(u8::from(best as u32 == g));
        bins[bin].2 += 1;
    }
    let n = gold.len().max(1) as f64;
    bins.iter().filter(|b| b.2 > 0).map(|(conf, correct, _)| (conf - correct).abs()).sum::<f64>() / n
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

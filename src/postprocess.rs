//! Logits to what users read: temperature-scaled softmax probabilities, the winning label and its score.

use std::collections::BTreeMap;

use serde::Serialize;

/// One text's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Prediction {
    /// The most probable label.
    pub label: String,
    /// Its calibrated probability.
    pub score: f32,
    /// Every label's calibrated probability.
    pub probabilities: BTreeMap<String, f32>,
    /// Whether the text was cut to the model's maximum length.
    pub truncated: bool,
    /// Raw logits, before temperature scaling (not part of the JS contract; handy for evaluation).
    #[serde(skip)]
    pub logits: Vec<f32>,
}

/// Numerically stable softmax of `logits / temperature`.
pub fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
    let scaled: Vec<f32> = logits.iter().map(|l| l / temperature).collect();
    let max = scaled.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = scaled.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// Builds a [`Prediction`] from one row of logits. Ties go to the lower class index.
pub fn predict(logits: &[f32], labels: &[String], temperature: f32, truncated: bool) -> Prediction {
    let probs = softmax(logits, temperature);
    let best = probs.iter().enumerate().fold(0, |best, (i, p)| if *p > probs[best] { i } else { best });
    Prediction {
        label: labels[best].clone(),
        score: probs[best],
        probabilities: labels.iter().cloned().zip(probs.iter().copied()).collect(),
        truncated,
        logits: logits.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_stable_for_large_logits() {
        let p = softmax(&[1000.0, 999.0], 1.0);
        assert!((p[0] - 0.731_058_6).abs() < 1e-6 && (p[0] + p[1] - 1.0).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn temperature_softens_scores() {
        let labels = vec!["human".to_string(), "bot".to_string()];
        let sharp = predict(&[0.0, 2.0], &labels, 1.0, false);
        let soft = predict(&[0.0, 2.0], &labels, 2.0, false);
        assert_eq!(sharp.label, "bot");
        assert_eq!(soft.label, "bot");
        assert!(soft.score < sharp.score);
        assert!((soft.score - 1.0 / (1.0 + (-1.0f32).exp())).abs() < 1e-6);
    }
}

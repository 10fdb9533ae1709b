//! Evaluating a classifier on labelled examples: logits through the core crate's `classify` (the path
//! the browser runs), then run_glue-style metrics, result lines and `predictions.txt`.

use std::path::Path;

use anyhow::Result;
use tweetguard::{Classification, Classifier};

use crate::data::{Example, LABELS};
use crate::metrics::{self, GeneratorRow, Metrics};
use crate::output::write_atomic;

/// Metrics and argmax predictions of one set of logits.
pub struct Evaluation {
    pub metrics: Metrics,
    pub predictions: Vec<u32>,
}

impl Evaluation {
    pub fn from_logits(logits: &[Vec<f32>], gold: &[u32]) -> Self {
        let predictions: Vec<u32> = logits.iter().map(|l| u32::from(l[1] > l[0])).collect();
        Self { metrics: Metrics::compute(&predictions, gold), predictions }
    }

    /// `eval_{prefix}accuracy = 0.873000` lines, as run_glue writes them.
    pub fn result_lines(&self, prefix: &str) -> String {
        let m = &self.metrics;
        [("accuracy", m.accuracy), ("precision", m.precision), ("recall", m.recall), ("f1", m.f1), ("mcc", m.mcc)]
            .iter()
            .map(|(key, value)| format!("eval_{prefix}{key} = {value:.6}\n"))
            .collect()
    }

    /// How the texts of each generator were labelled (empty when the examples name none).
    pub fn by_generator(&self, examples: &[Example]) -> Vec<GeneratorRow> {
        metrics::by_generator(&self.predictions, examples)
    }

    /// `eval_{prefix}{generator}_right = 0.737000` lines (bots: recall; human: accuracy), then the
    /// confusion matrix by generator as a table; nothing when the examples name no generator.
    pub fn generator_lines(&self, prefix: &str, examples: &[Example]) -> String {
        let rows = self.by_generator(examples);
        if rows.is_empty() {
            return String::new();
        }
        let lines: String =
            rows.iter().map(|r| format!("eval_{prefix}{}_right = {:.6}\n", r.generator, r.accuracy)).collect();
        format!("{lines}\n{prefix}by generator:\n{}", metrics::generator_table(&rows))
    }

    /// `predictions.txt`: one label per line.
    pub fn write_predictions(&self, path: &Path) -> Result<()> {
        let text: String = self.predictions.iter().map(|&p| format!("{}\n", LABELS[p as usize])).collect();
        write_atomic(path, text.as_bytes())
    }
}

/// Logits of `examples` through the core crate's `classify`, the path the browser runs.
pub fn core_logits(classifier: &Classifier, examples: &[Example]) -> Result<(Vec<Vec<f32>>, Classification)> {
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let output = pollster::block_on(classifier.classify(&texts))?;
    let logits = output.results.iter().map(|r| r.logits.clone()).collect();
    Ok((logits, output))
}

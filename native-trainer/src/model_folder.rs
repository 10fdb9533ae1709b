//! Writes the model folder of docs/contracts.md section 2: `model/` (int8 weights, config, tokenizer,
//! `manifest.json` with sizes and SHA-256, `MODEL_CARD.md`), `hf/` (f32, loads in HF transformers as
//! `BertForSequenceClassification`), `eval_results.txt`, `predictions.txt` and `confusion_matrix.svg`, plus
//! `training_loss.tsv` and `training_curve.svg` after training. Calibrates a temperature on the validation
//! logits, and evaluates the int8 model through the core crate, the code the browser runs. Every file is
//! written atomically (temporary file, then rename).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use tweetguard::weights::quant;
use tweetguard::{BertConfig, Classifier, LoadOptions, ModelBytes};

use crate::data::{Example, LABELS};
use crate::evaluation::{core_logits, Evaluation};
use crate::history::TrainingHistory;
use crate::metrics::{self, Metrics};
use crate::output::{replace_dir, write_atomic};
use crate::plots;

/// Everything needed to write a model folder.
pub struct Export {
    pub config: BertConfig,
    pub tokenizer: Vec<u8>,
    /// f32 safetensors with HF names.
    pub hf_weights: Vec<u8>,
    pub max_length: usize,
    /// f32 logits of the validation rows, for metrics and calibration.
    pub validation_logits: Vec<Vec<f32>>,
    pub validation: Vec<Example>,
    /// Loss per step and metrics per epoch of training; empty for a plain export.
    pub history: TrainingHistory,
    pub training_args: serde_json::Value,
    pub source: String,
    /// The recipe's grouped cross-validation ([`crate::cv_report::headline`]), when given.
    pub cross_validation: Option<serde_json::Value>,
    /// Take the temperature fitted on the cross-validation's unseen accounts instead of fitting one on
    /// the validation split.
    pub calibrate_on_unseen_accounts: bool,
}

/// What was written, for the summary line.
pub struct Outcome {
    pub f32: Metrics,
    pub int8: Metrics,
    pub temperature: f64,
    pub ece_before: f64,
    pub ece_after: f64,
}

impl Outcome {
    pub fn summary(&self) -> String {
        format!(
            "validation: f32 accuracy {:.4} F1 {:.4} MCC {:.4}; int8 accuracy {:.4} F1 {:.4} MCC {:.4}; \
             temperature {:.3} (ECE {:.4} -> {:.4})",
            self.f32.accuracy,
            self.f32.f1,
            self.f32.mcc,
            self.int8.accuracy,
            self.int8.f1,
            self.int8.mcc,
            self.temperature,
            self.ece_before,
            self.ece_after
        )
    }
}

fn metrics_json(m: &Metrics) -> serde_json::Value {
    serde_json::json!({"accuracy": m.accuracy, "precision": m.precision, "recall": m.recall, "f1": m.f1, "mcc": m.mcc})
}

impl Export {
    pub fn write(self, out: &Path) -> Result<Outcome> {
        let gold: Vec<u32> = self.validation.iter().map(|e| e.label).collect();
        let unseen_temperature = self.calibrate_on_unseen_accounts.then(|| self.unseen_temperature()).transpose()?;
        let temperature =
            unseen_temperature.unwrap_or_else(|| metrics::fit_temperature(&self.validation_logits, &gold));
        let (ece_before, ece_after) = (
            metrics::ece(&self.validation_logits, &gold, 1.0),
            metrics::ece(&self.validation_logits, &gold, temperature),
        );
        let f32_eval = Evaluation::from_logits(&self.validation_logits, &gold);

        let config_json = self.config.to_json().into_bytes();
        let int8 = quant::quantize_safetensors(&self.hf_weights)?;
        let classifier = pollster::block_on(Classifier::load(
            ModelBytes { config: &config_json, tokenizer: &self.tokenizer, weights: (&int8).into() },
            LoadOptions {
                max_length: Some(self.max_length),
                backend: tweetguard::BackendChoice::Cpu,
                ..Default::default()
            },
        ))
        .context("loading the exported int8 model through the core crate")?;
        let (int8_logits, _) = core_logits(&classifier, &self.validation)?;
        let int8_eval = Evaluation::from_logits(&int8_logits, &gold);
        let agreement = Agreement::between(&self.validation_logits, &int8_logits);
        let int8_by_generator = int8_eval.by_generator(&self.validation);

        replace_dir(&out.join("hf"), |hf| {
            write_atomic(&hf.join("config.json"), &config_json)?;
            write_atomic(&hf.join("tokenizer.json"), &self.tokenizer)?;
            write_atomic(&hf.join("model.safetensors"), &self.hf_weights)
        })?;

        let mut card =
            self.model_card(&f32_eval.metrics, &int8_eval.metrics, &agreement, temperature, ece_before, ece_after);
        if let Some(cv) = &self.cross_validation {
            card += &crate::cv_report::card_section(cv);
        }
        card += &by_generator_section(&int8_by_generator);
        let files: [(&str, &[u8]); 4] = [
            ("config.json", &config_json),
            ("tokenizer.json", &self.tokenizer),
            ("model.int8.safetensors", &int8),
            ("MODEL_CARD.md", card.as_bytes()),
        ];
        let listed: Vec<_> = files
            .iter()
            .map(|(name, bytes)| {
                serde_json::json!({"path": name, "bytes": bytes.len(), "sha256": hex::encode(Sha256::digest(bytes))})
            })
            .collect();
        let mut manifest = serde_json::json!({
            "format_version": 1,
            "labels": LABELS,
            "max_length": self.max_length,
            "dtype": "int8",
            "weight_format": quant::format_of(&int8)?,
            "files": listed,
            "metrics": {"validation": {"f32": metrics_json(&f32_eval.metrics), "int8": metrics_json(&int8_eval.metrics), "rows": gold.len(),
                "int8_by_generator": int8_by_generator,
                "int8_vs_f32": {"same_label": agreement.same_label, "max_abs_logit_diff": agreement.max_abs_diff, "mean_abs_logit_diff": agreement.mean_abs_diff}}},
            "calibration": {"temperature": temperature, "ece_before": ece_before, "ece_after": ece_after,
                "fitted_on": if unseen_temperature.is_some() { "cross-validation: unseen accounts" } else { "validation" }},
            "training_args": self.training_args,
            "source": self.source,
        });
        if let Some(cv) = &self.cross_validation {
            manifest["metrics"]["cross_validation"] = cv.clone();
        }
        let manifest = serde_json::to_string_pretty(&manifest)?;
        // Built whole and swapped in: the folder is never new weights beside an old manifest.
        replace_dir(&out.join("model"), |model| {
            for (name, bytes) in files {
                write_atomic(&model.join(name), bytes)?;
            }
            write_atomic(&model.join("manifest.json"), manifest.as_bytes())
        })?;

        let mut results = f32_eval.result_lines("f32_") + &int8_eval.result_lines("int8_");
        let _ = writeln!(
            results,
            "temperature = {temperature:.6}\nece_before = {ece_before:.6}\nece_after = {ece_after:.6}"
        );
        let _ = writeln!(results, "\nf32 classification report:\n{}", f32_eval.metrics.report(&LABELS));
        let _ = writeln!(results, "int8 classification report:\n{}", int8_eval.metrics.report(&LABELS));
        results += &f32_eval.generator_lines("f32_", &self.validation);
        results += &int8_eval.generator_lines("int8_", &self.validation);
        write_atomic(&out.join("eval_results.txt"), results.as_bytes())?;
        f32_eval.write_predictions(&out.join("predictions.txt"))?;
        let panels = [
            ("f32 weights", f32_eval.metrics.confusion),
            ("int8 weights (the browser's)", int8_eval.metrics.confusion),
        ];
        write_atomic(&out.join("confusion_matrix.svg"), plots::confusion_matrices(&panels, &LABELS)?.as_bytes())?;
        if !self.history.is_empty() {
            write_atomic(&out.join("training_loss.tsv"), self.history.loss_tsv().as_bytes())?;
            write_atomic(&out.join("training_curve.svg"), plots::training_curve(&self.history)?.as_bytes())?;
        }
        Ok(Outcome { f32: f32_eval.metrics, int8: int8_eval.metrics, temperature, ece_before, ece_after })
    }

    /// The temperature `cv` fitted on every fold's unseen-account tweets.
    fn unseen_temperature(&self) -> Result<f64> {
        self.cross_validation
            .as_ref()
            .and_then(|cv| cv["unseen_temperature"].as_f64())
            .filter(|t| t.is_finite() && *t > 0.0)
            .ok_or_else(|| {
                anyhow::anyhow!("calibrating on unseen accounts needs --cross-validation with finished folds")
            })
    }

    fn model_card(
        &self,
        f32: &Metrics,
        int8: &Metrics,
        agreement: &Agreement,
        temperature: f64,
        ece_before: f64,
        ece_after: f64,
    ) -> String {
        let mut card = format!(
            "# tweetguard bot-or-human classifier\n\n\
             Fine-tuned from `{source}` ({layers} layers, hidden {hidden}) to tell bot-written tweets from human ones.\n\n\
             ## Data\nTweepFake (Fagni et al., 2021): tweets from 17 human accounts and 23 bot accounts, 2019-2020. \
             Validation rows used here: {rows}.\n\n\
             ## Metrics (validation)\n| weights | accuracy | precision | recall | F1 | MCC |\n|---|---|---|---|---|---|\n\
             | f32 | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |\n| int8 (what the browser runs) | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |\n\n\
             int8 minus f32 accuracy: {:+.2} points (negative: int8 is worse). The int8 model gives the f32 model's label \
             on {same} of {rows} rows; logits differ by at most {max_diff:.3} ({mean_diff:.4} on average).\n\n\
             ## Calibration\nScores are softmax probabilities at temperature {temperature:.3}, {fitted} \
             (expected calibration error on the validation split {ece_before:.4} at temperature 1, {ece_after:.4} at {temperature:.3}).\n\n\
             ## Intended use and limits\n- English tweets, judged one at a time; a single tweet is weak evidence about an account.\n\
             - Trained against 2019-2020 generators (Markov chains, RNNs, GPT-2, templates). It is **not** a detector of modern \
             LLM-written text, and it will be wrong on styles it never saw.\n\
             - Do not use it alone to accuse, suspend or moderate people.\n",
            f32.accuracy, f32.precision, f32.recall, f32.f1, f32.mcc,
            int8.accuracy, int8.precision, int8.recall, int8.f1, int8.mcc,
            (int8.accuracy - f32.accuracy) * 100.0,
            source = self.source,
            layers = self.config.num_hidden_layers,
            hidden = self.config.hidden_size,
            rows = self.validation.len(),
            same = agreement.same_label,
            max_diff = agreement.max_abs_diff,
            mean_diff = agreement.mean_abs_diff,
            fitted = if self.calibrate_on_unseen_accounts {
                "fitted on the grouped cross-validation's tweets of accounts its folds never saw (the accounts users \
                 meet; its ECE there is the cross-validated estimate below)"
            } else {
                "fitted on the validation split"
            },
        );
        if !self.history.is_empty() {
            card += &self.training_section();
        }
        card
    }

    /// How the model was trained: the arguments, the machine and each epoch's validation.
    fn training_section(&self) -> String {
        let mut section = String::from(
            "\n## Training\nThe epoch metrics are measured on the validation split, which also chose the recipe: \
             they are not a held-out test.\n\n| epoch | train loss | validation loss | accuracy | F1 | MCC | last weights' accuracy | samples/s |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for e in &self.history.epochs {
            let last = e.last_weights_accuracy.map_or("-".to_string(), |a| format!("{a:.4}"));
            let _ = writeln!(
                section,
                "| {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {last} | {:.1} |",
                e.epoch,
                e.train_loss,
                e.validation_loss,
                e.validation_accuracy,
                e.validation_f1,
                e.validation_mcc,
                e.samples_per_s
            );
        }
        let _ = write!(
            section,
            "\nTrained on {machine} with `native-trainer train` and these arguments:\n\n```json\n{args}\n```\n",
            machine = machine(),
            args = serde_json::to_string_pretty(&self.training_args).unwrap_or_default(),
        );
        section
    }
}

/// The card's sections that [`record`] writes, by heading: replaced where present, appended otherwise.
const CROSS_VALIDATION_HEADING: &str = "\n## Cross-validated estimate";
const BY_GENERATOR_HEADING: &str = "\n## By generator (validation, int8)";

/// The card's per-generator section (empty when the validation rows name no generator).
fn by_generator_section(rows: &[metrics::GeneratorRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    format!(
        "{BY_GENERATOR_HEADING}\nTweepFake's `class_type`: which generator wrote the text. \
         For bots, the share caught is their recall; for humans, the share labelled human.\n\n{}",
        metrics::generator_table(rows)
    )
}

/// `card` without the section that starts at `heading` (up to the next `## ` heading).
fn without_section(card: &str, heading: &str) -> String {
    let Some(start) = card.find(heading) else { return card.to_string() };
    let rest = &card[start + heading.len()..];
    let end = rest.find("\n## ").map_or(card.len(), |i| start + heading.len() + i);
    format!("{}{}", &card[..start], &card[end..])
}

/// Records in an exported model folder (`model/`, with its manifest) what was measured after its export,
/// without touching its weights: the per-generator rows of `eval` on the validation split (`by_generator`)
/// and, where given, the recipe's grouped cross-validation. The card's sections are replaced or appended,
/// the manifest's figures and the card's size and SHA-256 updated, and the folder swapped whole.
pub fn record(
    dir: &Path,
    by_generator: &[metrics::GeneratorRow],
    cross_validation: Option<serde_json::Value>,
) -> Result<()> {
    let read =
        |name: &str| std::fs::read(dir.join(name)).with_context(|| format!("reading {}", dir.join(name).display()));
    let mut manifest: serde_json::Value = serde_json::from_slice(&read("manifest.json")?)
        .with_context(|| format!("reading {}", dir.join("manifest.json").display()))?;
    let card_bytes = read("MODEL_CARD.md")?;
    let mut card = String::from_utf8(card_bytes).context("MODEL_CARD.md is not UTF-8")?;
    card = without_section(&without_section(&card, CROSS_VALIDATION_HEADING), BY_GENERATOR_HEADING);
    card = card.trim_end().to_string() + "\n";
    if let Some(cv) = &cross_validation {
        card += &crate::cv_report::card_section(cv);
        manifest["metrics"]["cross_validation"] = cv.clone();
    }
    if !by_generator.is_empty() {
        card += &by_generator_section(by_generator);
        manifest["metrics"]["validation"]["int8_by_generator"] = serde_json::to_value(by_generator)?;
    }
    let Some(files) = manifest["files"].as_array_mut() else {
        anyhow::bail!("{}: the manifest lists no files", dir.display())
    };
    let listed: Vec<String> = files.iter().filter_map(|f| f["path"].as_str().map(str::to_string)).collect();
    for file in files.iter_mut().filter(|f| f["path"] == "MODEL_CARD.md") {
        file["bytes"] = card.len().into();
        file["sha256"] = hex::encode(Sha256::digest(card.as_bytes())).into();
    }
    let manifest = serde_json::to_string_pretty(&manifest)?;
    let kept: Vec<(String, Vec<u8>)> = listed
        .iter()
        .filter(|name| *name != "MODEL_CARD.md")
        .map(|name| Ok((name.clone(), read(name)?)))
        .collect::<Result<_>>()?;
    replace_dir(dir, |staging| {
        for (name, bytes) in &kept {
            write_atomic(&staging.join(name), bytes)?;
        }
        write_atomic(&staging.join("MODEL_CARD.md"), card.as_bytes())?;
        write_atomic(&staging.join("manifest.json"), manifest.as_bytes())
    })
}

/// How closely the int8 model follows the f32 model on the same rows.
pub struct Agreement {
    pub same_label: usize,
    pub max_abs_diff: f32,
    pub mean_abs_diff: f32,
}

impl Agreement {
    pub fn between(f32_logits: &[Vec<f32>], int8_logits: &[Vec<f32>]) -> Self {
        let argmax = |row: &[f32]| row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i);
        let same_label = f32_logits.iter().zip(int8_logits).filter(|(a, b)| argmax(a) == argmax(b)).count();
        let diffs = f32_logits.iter().zip(int8_logits).flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()));
        let (count, sum, max_abs_diff) =
            diffs.fold((0usize, 0.0f32, 0.0f32), |(n, sum, max), d| (n + 1, sum + d, max.max(d)));
        let mean_abs_diff = sum / count.max(1) as f32;
        Self { same_label, max_abs_diff, mean_abs_diff }
    }
}

/// The CPU and core count, for the record.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu} ({cores} threads available)")
}

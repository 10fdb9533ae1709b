//! What `cv` writes and how it sums folds up. Per fold: `fold.json` (held-out families, rows, temperature,
//! time) and `predictions.jsonl` (every evaluated tweet with its set, family, generator, gold label and
//! raw int8 logits). Over the folds done: `cv_results.md` and `cv_results.json` (tweet metrics for seen and
//! unseen accounts, pooled and as the folds' mean and spread; by generator; by family; calibration with the
//! folds' own temperatures and with one fitted on the other folds' unseen tweets; account verdicts with an
//! "uncertain" answer) and `reliability.svg`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use rand::seq::IndexedRandom;
use rand::SeedableRng;

use crate::data::Example;
use crate::metrics::{self, GeneratorRow, Metrics, ReliabilityBin};
use crate::output::write_atomic;

/// Which accounts an evaluated tweet's author belongs to, from the fold's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Set {
    /// An account whose other tweets the fold trained on.
    Seen,
    /// An account of a family the fold never saw.
    Unseen,
}

impl Set {
    fn name(self) -> &'static str {
        match self {
            Set::Seen => "seen accounts",
            Set::Unseen => "unseen accounts",
        }
    }
}

/// One evaluated tweet of one fold.
pub struct FoldPrediction {
    pub fold: usize,
    pub set: Set,
    pub family: String,
    pub example: Example,
    /// Raw int8 logits `[human, bot]`, before any temperature.
    pub logits: Vec<f32>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PredictionLine {
    set: Set,
    family: String,
    account: Option<String>,
    generator: Option<String>,
    label: u32,
    logits: Vec<f32>,
    text: String,
}

/// What one fold was.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FoldSummary {
    pub fold: usize,
    pub families: Vec<String>,
    pub train_rows: usize,
    /// The temperature the fold's export fitted on its `seen` tweets.
    pub temperature: f64,
    /// Wall time of training, export and evaluation.
    pub seconds: f64,
}

const FOLD_FILE: &str = "fold.json";
const PREDICTIONS_FILE: &str = "predictions.jsonl";

/// Whether a fold's folder holds a finished fold.
pub fn fold_done(dir: &Path) -> bool {
    dir.join(FOLD_FILE).is_file() && dir.join(PREDICTIONS_FILE).is_file()
}

/// Writes a finished fold: its predictions first, its summary (the mark of a finished fold) last.
pub fn write_fold(dir: &Path, summary: &FoldSummary, predictions: &[FoldPrediction]) -> Result<()> {
    let mut lines = String::new();
    for p in predictions {
        let line = PredictionLine {
            set: p.set,
            family: p.family.clone(),
            account: p.example.account.clone(),
            generator: p.example.generator.clone(),
            label: p.example.label,
            logits: p.logits.clone(),
            text: p.example.text.clone(),
        };
        lines += &serde_json::to_string(&line)?;
        lines.push('\n');
    }
    write_atomic(&dir.join(PREDICTIONS_FILE), lines.as_bytes())?;
    write_atomic(&dir.join(FOLD_FILE), serde_json::to_string_pretty(summary)?.as_bytes())
}

fn read_fold(dir: &Path) -> Result<(FoldSummary, Vec<FoldPrediction>)> {
    let read =
        |name| std::fs::read_to_string(dir.join(name)).with_context(|| format!("reading {}", dir.join(name).display()));
    let summary: FoldSummary = serde_json::from_str(&read(FOLD_FILE)?)?;
    let predictions = read(PREDICTIONS_FILE)?
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let p: PredictionLine = serde_json::from_str(line)
                .with_context(|| format!("{}:{}", dir.join(PREDICTIONS_FILE).display(), i + 1))?;
            let example = Example { text: p.text, label: p.label, account: p.account, generator: p.generator };
            Ok(FoldPrediction { fold: summary.fold, set: p.set, family: p.family, example, logits: p.logits })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((summary, predictions))
}

/// Mean and sample standard deviation.
fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n.max(1.0);
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// Logits divided by a temperature (so metrics at temperature 1 see calibrated scores).
fn scaled(logits: &[f32], temperature: f64) -> Vec<f32> {
    logits.iter().map(|&l| (f64::from(l) / temperature) as f32).collect()
}

/// Metrics of a set of tweets.
#[derive(serde::Serialize)]
struct SetReport {
    tweets: usize,
    pooled: Metrics,
    fold_accuracy: Vec<f64>,
    accuracy_mean: f64,
    accuracy_sd: f64,
    by_generator: Vec<GeneratorRow>,
    /// With each fold's own temperature (fitted on its seen tweets, as an export does).
    ece_fold_temperature: f64,
    /// Unseen only: with a temperature fitted on the other folds' unseen tweets.
    ece_cross_fitted: Option<f64>,
    /// Unseen only: the temperature fitted on every fold's unseen tweets (the one to ship).
    pooled_unseen_temperature: Option<f64>,
    reliability: Vec<ReliabilityBin>,
    accounts: Vec<AccountVerdicts>,
}

/// Account verdicts from `tweets` tweets per account.
#[derive(serde::Serialize)]
struct AccountVerdicts {
    tweets: usize,
    accounts: usize,
    /// Accounts weighted equally: the share labelled right by the sign of the mean calibrated log-odds.
    accuracy: f64,
    /// The share of verdicts that are "uncertain" ([`uncertain`]).
    uncertain: f64,
    /// Accuracy of the verdicts that are not "uncertain".
    decided_accuracy: f64,
}

/// Draws per account and size for the account verdicts.
const ACCOUNT_DRAWS: usize = 200;
/// Tweets per account for which verdicts are reported.
const ACCOUNT_SIZES: [usize; 3] = [1, 5, 10];

/// An account verdict is "uncertain" when the mean calibrated bot probability of its tweets is between
/// 0.25 and 0.75 (the mean log-odds within ln 3 of zero), or, from 5 tweets on, when fewer than 70 % of
/// them agree: tweets that disagree are not evidence to act on.
pub fn uncertain(log_odds: &[f64]) -> bool {
    let mean = log_odds.iter().sum::<f64>() / log_odds.len().max(1) as f64;
    let bot_votes = log_odds.iter().filter(|&&z| z > 0.0).count() as f64 / log_odds.len().max(1) as f64;
    mean.abs() < 3f64.ln() || (log_odds.len() >= 5 && (0.3..=0.7).contains(&bot_votes))
}

fn account_verdicts(rows: &[(&FoldPrediction, f64)], size: usize) -> AccountVerdicts {
    let mut by_account: BTreeMap<(usize, &str), Vec<f64>> = BTreeMap::new();
    let mut gold: BTreeMap<(usize, &str), u32> = BTreeMap::new();
    for (p, temperature) in rows {
        let key = (p.fold, p.example.account.as_deref().unwrap_or_default());
        by_account.entry(key).or_default().push(f64::from(p.logits[1] - p.logits[0]) / temperature);
        gold.insert(key, p.example.label);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(size as u64);
    let (mut right, mut undecided, mut decided_right, mut decided, mut accounts) = (0.0, 0.0, 0.0, 0.0, 0usize);
    for (key, log_odds) in by_account.iter().filter(|(_, z)| z.len() >= size) {
        accounts += 1;
        let is_bot = gold[key] == 1;
        let (mut r, mut u, mut dr, mut d) = (0usize, 0usize, 0usize, 0usize);
        for _ in 0..ACCOUNT_DRAWS {
            let draw: Vec<f64> = log_odds.choose_multiple(&mut rng, size).copied().collect();
            let says_bot = draw.iter().sum::<f64>() > 0.0;
            r += usize::from(says_bot == is_bot);
            if uncertain(&draw) {
                u += 1;
            } else {
                d += 1;
                dr += usize::from(says_bot == is_bot);
            }
        }
        right += r as f64 / ACCOUNT_DRAWS as f64;
        undecided += u as f64 / ACCOUNT_DRAWS as f64;
        if d > 0 {
            decided += 1.0;
            decided_right += dr as f64 / d as f64;
        }
    }
    let n = accounts.max(1) as f64;
    AccountVerdicts {
        tweets: size,
        accounts,
        accuracy: right / n,
        uncertain: undecided / n,
        decided_accuracy: if decided > 0.0 { decided_right / decided } else { 0.0 },
    }
}

fn set_report(predictions: &[FoldPrediction], summaries: &[FoldSummary], set: Set) -> Option<SetReport> {
    let rows: Vec<&FoldPrediction> = predictions.iter().filter(|p| p.set == set).collect();
    if rows.is_empty() {
        return None;
    }
    let temperature_of = |fold| summaries.iter().find(|s| s.fold == fold).map_or(1.0, |s| s.temperature);
    let gold: Vec<u32> = rows.iter().map(|p| p.example.label).collect();
    let logits: Vec<Vec<f32>> = rows.iter().map(|p| p.logits.clone()).collect();
    let predicted: Vec<u32> = logits.iter().map(|l| u32::from(l[1] > l[0])).collect();
    let examples: Vec<Example> = rows.iter().map(|p| p.example.clone()).collect();
    let fold_scaled: Vec<Vec<f32>> = rows.iter().map(|p| scaled(&p.logits, temperature_of(p.fold))).collect();
    let fold_accuracy: Vec<f64> = summaries
        .iter()
        .map(|s| {
            let idx: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].fold == s.fold).collect();
            idx.iter().filter(|&&i| predicted[i] == gold[i]).count() as f64 / idx.len().max(1) as f64
        })
        .collect();
    let (accuracy_mean, accuracy_sd) = mean_sd(&fold_accuracy);
    // Unseen accounts: a temperature fitted on the other folds' unseen tweets, as a shipped model would
    // be calibrated on accounts it never saw.
    let cross_fitted: Option<Vec<f64>> = (set == Set::Unseen && summaries.len() >= 2).then(|| {
        let per_fold: BTreeMap<usize, f64> = summaries
            .iter()
            .map(|s| {
                let others: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].fold != s.fold).collect();
                let l: Vec<Vec<f32>> = others.iter().map(|&i| logits[i].clone()).collect();
                let g: Vec<u32> = others.iter().map(|&i| gold[i]).collect();
                (s.fold, metrics::fit_temperature(&l, &g))
            })
            .collect();
        rows.iter().map(|p| per_fold[&p.fold]).collect()
    });
    let account_temperature: Vec<f64> = match &cross_fitted {
        Some(t) => t.clone(),
        None => rows.iter().map(|p| temperature_of(p.fold)).collect(),
    };
    let ece_cross_fitted = cross_fitted.as_ref().map(|t| {
        let l: Vec<Vec<f32>> = rows.iter().zip(t).map(|(p, &t)| scaled(&p.logits, t)).collect();
        metrics::ece(&l, &gold, 1.0)
    });
    let with_temperature: Vec<(&FoldPrediction, f64)> = rows.iter().copied().zip(account_temperature).collect();
    Some(SetReport {
        tweets: rows.len(),
        pooled: Metrics::compute(&predicted, &gold),
        accuracy_mean,
        accuracy_sd,
        fold_accuracy,
        by_generator: metrics::by_generator(&predicted, &examples),
        ece_fold_temperature: metrics::ece(&fold_scaled, &gold, 1.0),
        ece_cross_fitted,
        pooled_unseen_temperature: (set == Set::Unseen).then(|| metrics::fit_temperature(&logits, &gold)),
        reliability: metrics::reliability(&fold_scaled, &gold, 1.0),
        accounts: ACCOUNT_SIZES.iter().map(|&n| account_verdicts(&with_temperature, n)).collect(),
    })
}

/// One family's unseen tweets.
#[derive(serde::Serialize)]
struct FamilyRow {
    family: String,
    fold: usize,
    tweets: usize,
    accuracy: f64,
    human_right: Option<f64>,
    bots_caught: Option<f64>,
}

fn family_rows(predictions: &[FoldPrediction]) -> Vec<FamilyRow> {
    let mut groups: BTreeMap<(&str, usize), Vec<&FoldPrediction>> = BTreeMap::new();
    for p in predictions.iter().filter(|p| p.set == Set::Unseen) {
        groups.entry((&p.family, p.fold)).or_default().push(p);
    }
    let share = |rows: &[&FoldPrediction], label: u32| {
        let of: Vec<_> = rows.iter().filter(|p| p.example.label == label).collect();
        (!of.is_empty()).then(|| {
            of.iter().filter(|p| u32::from(p.logits[1] > p.logits[0]) == label).count() as f64 / of.len() as f64
        })
    };
    groups
        .into_iter()
        .map(|((family, fold), rows)| FamilyRow {
            family: family.to_string(),
            fold,
            tweets: rows.len(),
            accuracy: rows.iter().filter(|p| u32::from(p.logits[1] > p.logits[0]) == p.example.label).count() as f64
                / rows.len() as f64,
            human_right: share(&rows, 0),
            bots_caught: share(&rows, 1),
        })
        .collect()
}

fn generator_right(report: &SetReport, generator: &str) -> String {
    report.by_generator.iter().find(|r| r.generator == generator).map_or("-".into(), |r| format!("{:.4}", r.accuracy))
}

fn markdown(summaries: &[FoldSummary], folds: usize, sets: &[(Set, SetReport)], families: &[FamilyRow]) -> String {
    let done: Vec<String> = summaries.iter().map(|s| s.fold.to_string()).collect();
    let minutes = summaries.iter().map(|s| s.seconds).sum::<f64>() / 60.0;
    let mut md = format!(
        "# Grouped cross-validation\n\nFolds done: {} of {folds} ({}); {minutes:.1} minutes of training and evaluation in all. \
         Each fold holds out whole persona families (unseen accounts) and a share of every other account's tweets \
         (seen accounts); int8 logits through the core crate, as the browser runs them.\n\n",
        summaries.len(),
        done.join(", ")
    );
    if summaries.len() < folds {
        md += "**Partial: not every fold is done, so these figures cover only the families of the folds listed.**\n\n";
    }
    md += "| accounts | tweets | accuracy (pooled) | folds' mean ± sd | F1 | MCC | human right | GPT-2 caught | RNN caught | others caught | ECE (fold's temperature) | ECE (cross-fitted temperature) |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (set, r) in sets {
        let _ = writeln!(
            md,
            "| {} | {} | {:.4} | {:.4} ± {:.4} | {:.4} | {:.4} | {} | {} | {} | {} | {:.4} | {} |",
            set.name(),
            r.tweets,
            r.pooled.accuracy,
            r.accuracy_mean,
            r.accuracy_sd,
            r.pooled.f1,
            r.pooled.mcc,
            generator_right(r, "human"),
            generator_right(r, "gpt2"),
            generator_right(r, "rnn"),
            generator_right(r, "others"),
            r.ece_fold_temperature,
            r.ece_cross_fitted.map_or("-".into(), |e| format!("{e:.4}")),
        );
    }
    for (set, r) in sets {
        let _ = write!(
            md,
            "\n## {}: confusion matrix by generator\n\n{}",
            set.name(),
            metrics::generator_table(&r.by_generator)
        );
        let _ = write!(
            md,
            "\n## {}: account verdicts\nMean calibrated log-odds of N tweets drawn from one account ({ACCOUNT_DRAWS} draws per \
             account, accounts weighted equally); \"uncertain\" when the mean bot probability is between 0.25 and 0.75 or, \
             from 5 tweets on, fewer than 70 % of the tweets agree.\n\n\
             | tweets per account | accounts | right (always answering) | uncertain | right when not uncertain |\n|---|---|---|---|---|\n",
            set.name()
        );
        for a in &r.accounts {
            let _ = writeln!(
                md,
                "| {} | {} | {:.4} | {:.4} | {:.4} |",
                a.tweets, a.accounts, a.accuracy, a.uncertain, a.decided_accuracy
            );
        }
        if let Some(t) = r.pooled_unseen_temperature {
            let _ = writeln!(md, "\nTemperature fitted on every fold's unseen tweets: {t:.4}.");
        }
    }
    md += "\n## Unseen accounts by family\n\n| family | fold | tweets | accuracy | human right | bots caught |\n|---|---|---|---|---|---|\n";
    let show = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.4}"));
    for f in families {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.4} | {} | {} |",
            f.family,
            f.fold,
            f.tweets,
            f.accuracy,
            show(f.human_right),
            show(f.bots_caught)
        );
    }
    md +=
        "\n## Folds\n\n| fold | held-out families | training tweets | temperature | minutes |\n|---|---|---|---|---|\n";
    for s in summaries {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.4} | {:.1} |",
            s.fold,
            s.families.join(", "),
            s.train_rows,
            s.temperature,
            s.seconds / 60.0
        );
    }
    md
}

/// The headline of a cross-validation folder (its `cv_results.json`) for a model folder's manifest and
/// card: for seen and unseen accounts, tweets, pooled accuracy, the folds' mean and spread, GPT-2 caught,
/// human right and ECE, and the unseen accounts' account verdicts and pooled temperature.
pub fn headline(dir: &Path) -> Result<serde_json::Value> {
    let path = dir.join("cv_results.json");
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("reading {} (run `cv` first)", path.display()))?,
    )
    .with_context(|| format!("reading {}", path.display()))?;
    let right = |set: &serde_json::Value, generator: &str| {
        set["by_generator"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["generator"] == generator))
            .map(|r| r["accuracy"].clone())
    };
    let set = |name: &str| {
        let s = &results["sets"][name];
        serde_json::json!({
            "tweets": s["tweets"],
            "accuracy": s["pooled"]["accuracy"],
            "accuracy_mean": s["accuracy_mean"],
            "accuracy_sd": s["accuracy_sd"],
            "gpt2_caught": right(s, "gpt2"),
            "human_right": right(s, "human"),
            "ece": if s["ece_cross_fitted"].is_null() { s["ece_fold_temperature"].clone() } else { s["ece_cross_fitted"].clone() },
            "accounts": s["accounts"],
        })
    };
    let done = results["done"].as_array().map_or(0, Vec::len);
    if done == 0 || results["sets"]["unseen"].is_null() {
        anyhow::bail!("{} has no finished fold", path.display());
    }
    Ok(serde_json::json!({
        "folds": results["folds"],
        "folds_done": done,
        "grouped_by": "persona family (native-trainer/src/families.rs)",
        "seen": set("seen"),
        "unseen": set("unseen"),
        "unseen_temperature": results["sets"]["unseen"]["pooled_unseen_temperature"],
    }))
}

/// The model card's section for a [`headline`].
pub fn card_section(headline: &serde_json::Value) -> String {
    let num = |v: &serde_json::Value| v.as_f64().map_or("-".to_string(), |v| format!("{v:.4}"));
    let mut section = format!(
        "\n## Cross-validated estimate (grouped by persona family)\n`native-trainer cv` of this recipe on the training \
         split, {} of {} folds: each fold trained without whole persona families (a human account and the bots \
         imitating it) and without a held-out 10 % of every other account's tweets. **Unseen accounts is the \
         figure to expect on accounts the model never saw**, which is most accounts on x.com; seen accounts is \
         what TweepFake's own split measures.\n\n\
         | accounts | tweets | accuracy | folds' mean ± sd | GPT-2 caught | human right | ECE |\n|---|---|---|---|---|---|---|\n",
        headline["folds_done"], headline["folds"]
    );
    for (name, set) in [("seen", &headline["seen"]), ("unseen", &headline["unseen"])] {
        let _ = writeln!(
            section,
            "| {name} | {} | {} | {} ± {} | {} | {} | {} |",
            set["tweets"],
            num(&set["accuracy"]),
            num(&set["accuracy_mean"]),
            num(&set["accuracy_sd"]),
            num(&set["gpt2_caught"]),
            num(&set["human_right"]),
            num(&set["ece"])
        );
    }
    if let Some(accounts) = headline["unseen"]["accounts"].as_array() {
        section +=
            "\nAccount verdicts on unseen accounts (mean calibrated log-odds of N tweets; \"uncertain\" when the \
                    mean bot probability is between 0.25 and 0.75 or the tweets disagree):\n\n\
                    | tweets per account | right | uncertain | right when not uncertain |\n|---|---|---|---|\n";
        for a in accounts {
            let _ = writeln!(
                section,
                "| {} | {} | {} | {} |",
                a["tweets"],
                num(&a["accuracy"]),
                num(&a["uncertain"]),
                num(&a["decided_accuracy"])
            );
        }
    }
    section
}

/// Summarises the folds done under `out` (of `folds`) into `cv_results.md`, `cv_results.json` and
/// `reliability.svg`, and logs the headline.
pub fn write_report(out: &Path, folds: usize) -> Result<()> {
    let mut summaries = Vec::new();
    let mut predictions = Vec::new();
    for fold in 0..folds {
        let dir = out.join(format!("fold-{fold}"));
        if fold_done(&dir) {
            let (summary, rows) = read_fold(&dir)?;
            summaries.push(summary);
            predictions.extend(rows);
        }
    }
    if summaries.is_empty() {
        anyhow::bail!("{} holds no finished fold yet", out.display());
    }
    let sets: Vec<(Set, SetReport)> = [Set::Seen, Set::Unseen]
        .into_iter()
        .filter_map(|s| set_report(&predictions, &summaries, s).map(|r| (s, r)))
        .collect();
    let families = family_rows(&predictions);
    write_atomic(&out.join("cv_results.md"), markdown(&summaries, folds, &sets, &families).as_bytes())?;
    let json = serde_json::json!({
        "folds": folds,
        "done": summaries,
        "sets": sets.iter().map(|(s, r)| (format!("{s:?}").to_lowercase(), r)).collect::<BTreeMap<_, _>>(),
        "families": families,
    });
    write_atomic(&out.join("cv_results.json"), serde_json::to_string_pretty(&json)?.as_bytes())?;
    let curves: Vec<(String, Vec<ReliabilityBin>)> =
        sets.iter().map(|(s, r)| (format!("{} ({} tweets)", s.name(), r.tweets), r.reliability.clone())).collect();
    write_atomic(&out.join("reliability.svg"), crate::plots::reliability_diagram(&curves)?.as_bytes())?;
    for (set, r) in &sets {
        tracing::info!(
            "cv, {} fold(s), {}: accuracy {:.4} (folds {:.4} ± {:.4}), GPT-2 caught {}, human right {}, ECE {:.4}",
            summaries.len(),
            set.name(),
            r.pooled.accuracy,
            r.accuracy_mean,
            r.accuracy_sd,
            generator_right(r, "gpt2"),
            generator_right(r, "human"),
            r.ece_cross_fitted.unwrap_or(r.ece_fold_temperature)
        );
    }
    tracing::info!("report: {}", out.join("cv_results.md").display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncertain_when_the_mean_is_near_the_boundary_or_the_tweets_disagree() {
        assert!(uncertain(&[0.5]));
        assert!(!uncertain(&[2.0]));
        assert!(!uncertain(&[-3.0, -2.0, -4.0, -2.5, -3.5]));
        // A confident mean from tweets split 3 to 2.
        assert!(uncertain(&[9.0, 9.0, 9.0, -1.0, -1.0]));
    }

    fn prediction(fold: usize, set: Set, account: &str, label: u32, bot_logit: f32) -> FoldPrediction {
        let family = crate::families::family_of(account).unwrap().to_string();
        let example = Example {
            account: Some(account.into()),
            generator: Some(if label == 1 { "gpt2" } else { "human" }.into()),
            ..Example::new("t", label)
        };
        FoldPrediction { fold, set, family, example, logits: vec![0.0, bot_logit] }
    }

    /// Two folds written and read back: pooled and per-fold accuracy, per generator and per family, and
    /// account verdicts that are right for a consistently labelled account and wrong for a consistently
    /// mislabelled one.
    #[test]
    fn folds_sum_up_into_the_report() {
        let tmp = tempfile::tempdir().unwrap();
        let mut fold0 = Vec::new();
        for i in 0..20 {
            fold0.push(prediction(0, Set::Unseen, "kevinhookebot", 1, 3.0)); // all caught
            fold0.push(prediction(0, Set::Unseen, "kevinhooke", 0, if i < 16 { -3.0 } else { 3.0 })); // 80 %
            fold0.push(prediction(0, Set::Seen, "dril", 0, -3.0));
        }
        let mut fold1 = Vec::new();
        for _ in 0..20 {
            fold1.push(prediction(1, Set::Unseen, "dril_gpt2", 1, -2.0)); // all missed
            fold1.push(prediction(1, Set::Unseen, "dril", 0, -2.0));
            fold1.push(prediction(1, Set::Seen, "kevinhooke", 0, -3.0));
        }
        let summary = |fold, families: &[&str]| FoldSummary {
            fold,
            families: families.iter().map(|f| f.to_string()).collect(),
            train_rows: 40,
            temperature: 1.5,
            seconds: 60.0,
        };
        write_fold(&tmp.path().join("fold-0"), &summary(0, &["kevinhooke"]), &fold0).unwrap();
        write_fold(&tmp.path().join("fold-1"), &summary(1, &["dril"]), &fold1).unwrap();
        assert!(fold_done(&tmp.path().join("fold-1")) && !fold_done(&tmp.path().join("fold-2")));
        write_report(tmp.path(), 3).unwrap();

        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(tmp.path().join("cv_results.json")).unwrap()).unwrap();
        let unseen = &json["sets"]["unseen"];
        assert_eq!(unseen["tweets"], 80);
        assert_eq!(unseen["pooled"]["accuracy"], 0.7); // (20 + 16 + 0 + 20) / 80
        assert_eq!(unseen["fold_accuracy"], serde_json::json!([0.9, 0.5]));
        assert_eq!(json["sets"]["seen"]["pooled"]["accuracy"], 1.0);
        let accounts = &unseen["accounts"][2]; // 10 tweets per account
        assert_eq!((accounts["tweets"].as_u64(), accounts["accounts"].as_u64()), (Some(10), Some(4)));
        // kevinhookebot and dril always right, dril_gpt2 always wrong, kevinhooke (4 of 20 tweets called bot)
        // right in every draw of 10.
        let accuracy = accounts["accuracy"].as_f64().unwrap();
        assert!((accuracy - 0.75).abs() < 1e-12, "{accuracy}");
        // Fold 0's unseen tweets are scaled by the temperature fitted on fold 1's, which are right half the
        // time whatever their score: the largest temperature, so both fold-0 accounts are always
        // uncertain. Fold 1's, by fold 0's temperature, stay confident (dril_gpt2 confidently wrong).
        assert_eq!(accounts["uncertain"].as_f64(), Some(0.5));
        assert_eq!(accounts["decided_accuracy"].as_f64(), Some(0.5));
        let families = json["families"].as_array().unwrap();
        assert_eq!(families.len(), 2);
        assert_eq!((families[0]["family"].as_str(), families[0]["bots_caught"].as_f64()), (Some("dril"), Some(0.0)));
        let md = std::fs::read_to_string(tmp.path().join("cv_results.md")).unwrap();
        assert!(md.contains("Folds done: 2 of 3 (0, 1)") && md.contains("**Partial"), "{md}");
        assert!(md.contains("| unseen accounts | 80 | 0.7000 | 0.7000 ± 0.2828 |"), "{md}");
        assert!(std::fs::read_to_string(tmp.path().join("reliability.svg")).unwrap().starts_with("<svg"));
    }
}

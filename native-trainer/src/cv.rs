//! `cv`: grouped cross-validation of a training recipe on the training split, the estimate that chooses
//! recipes without touching the validation split. Persona families ([`crate::families`]) are dealt into
//! folds; for each fold the recipe (`train`'s flags) is trained on the other folds' families less a share of
//! their tweets, then the fold's int8 model, as the browser runs it, labels
//! - `unseen`: every tweet of the fold's own families (accounts it never saw: what users meet), and
//! - `seen`: the held-out share of the training families' tweets (accounts it studied: what TweepFake's
//!   own split measures). It is also the fold's validation set, for its temperature and epoch metrics.
//!
//! Each fold is its own `train` run under `OUT/fold-K/run` (so an interrupted fold resumes from its last
//! epoch checkpoint) and ends in `OUT/fold-K/predictions.tsv`; a fold with predictions is not run again.
//! After every fold, and with `--report-only`, the folds done so far are summarised ([`crate::cv_report`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tweetguard::backend::CpuEngine;
use tweetguard::{BackendChoice, LoadOptions};

use crate::checkpoint;
use crate::cv_report::{self, FoldPrediction, FoldSummary, Set};
use crate::data::{Dataset, Example, LABELS};
use crate::evaluation::core_logits;
use crate::families;
use crate::model_dir::ModelFiles;
use crate::output::write_atomic;
use crate::train::{self, TrainArgs};

#[derive(clap::Args, Debug, Clone)]
pub struct CvArgs {
    /// The recipe: `train`'s flags. `--output-dir` is the cross-validation's folder, `--train-file` the
    /// labelled TweepFake CSV to split (default `$TWEEPFAKE_DIR/train.csv`); `--validation-file` and
    /// `--resume` are not taken (each fold makes its own validation set and resumes by itself).
    #[command(flatten)]
    pub recipe: TrainArgs,
    /// Number of folds (families dealt into groups of about equal rows).
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Run only these folds (0-based, comma-separated); default: every fold not yet done.
    #[arg(long, value_delimiter = ',')]
    pub fold: Vec<usize>,
    /// Share of each training family's tweets held out as the `seen` evaluation set.
    #[arg(long, default_value_t = 0.1)]
    pub seen_fraction: f64,
    /// Summarise the folds done so far without training.
    #[arg(long)]
    pub report_only: bool,
}

/// The rows of one fold: what it trains on, and its two evaluation sets.
pub struct FoldSplit<'a> {
    pub families: Vec<&'static str>,
    pub train: Vec<&'a Example>,
    pub seen: Vec<&'a Example>,
    pub unseen: Vec<&'a Example>,
}

/// Splits `examples` for fold `fold` of `assignment`: the fold's families are `unseen`; of every other
/// account's tweets a seeded `seen_fraction` (rounded, per account, so each account keeps its share) is
/// `seen`, the rest `train`.
pub fn split_fold<'a>(
    examples: &'a [Example],
    families: &[&'static str],
    assignment: &std::collections::BTreeMap<&'static str, usize>,
    fold: usize,
    seen_fraction: f64,
    seed: u64,
) -> FoldSplit<'a> {
    let mut by_account: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    let mut unseen = Vec::new();
    for (i, (example, family)) in examples.iter().zip(families).enumerate() {
        if assignment[family] == fold {
            unseen.push(&examples[i]);
        } else {
            by_account.entry(example.account.as_deref().unwrap_or_default()).or_default().push(i);
        }
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (0xc0ffee + fold as u64));
    let mut held = vec![false; examples.len()];
    for rows in by_account.values_mut() {
        rows.shuffle(&mut rng);
        let take = (rows.len() as f64 * seen_fraction).round() as usize;
        for &i in &rows[..take.min(rows.len())] {
            held[i] = true;
        }
    }
    let kept = |want: bool| -> Vec<&'a Example> {
        (0..examples.len())
            .filter(|&i| assignment[families[i]] != fold && held[i] == want)
            .map(|i| &examples[i])
            .collect()
    };
    let fold_families = assignment.iter().filter(|(_, &f)| f == fold).map(|(family, _)| *family).collect();
    FoldSplit { families: fold_families, train: kept(false), seen: kept(true), unseen }
}

/// Writes examples as a TweepFake CSV that `train` reads back (`screen_name;text;account.type;class_type`).
fn write_tweepfake_csv(path: &Path, examples: &[&Example]) -> Result<()> {
    let mut writer = csv::WriterBuilder::new().delimiter(b';').from_writer(Vec::new());
    writer.write_record(["screen_name", "text", "account.type", "class_type"])?;
    for e in examples {
        let (account, generator) = (e.account.as_deref().unwrap_or(""), e.generator.as_deref().unwrap_or(""));
        writer.write_record([account, &e.text, LABELS[e.label as usize], generator])?;
    }
    let bytes = writer.into_inner().map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    write_atomic(path, &bytes)
}

fn fold_dir(out: &Path, fold: usize) -> PathBuf {
    out.join(format!("fold-{fold}"))
}

/// `train`'s arguments for one fold: the recipe, on the fold's files, resuming its own checkpoints.
fn fold_recipe(args: &CvArgs, dir: &Path) -> Result<TrainArgs> {
    let run = dir.join("run");
    let resumable = !checkpoint::list(&run)?.is_empty();
    Ok(TrainArgs {
        train_file: Some(dir.join("data/train.csv")),
        validation_file: Some(dir.join("data/seen.csv")),
        output_dir: run,
        overwrite_output_dir: !resumable,
        resume: resumable.then_some(None),
        limit: None,
        eval_limit: None,
        cross_validation: None,
        calibrate_on_unseen_accounts: false,
        ..args.recipe.clone()
    })
}

/// Trains and evaluates one fold, writing its predictions and summary.
fn run_fold(args: &CvArgs, split: &FoldSplit, fold: usize) -> Result<()> {
    let started = Instant::now();
    let dir = fold_dir(&args.recipe.output_dir, fold);
    for (name, rows) in [("train", &split.train), ("seen", &split.seen), ("unseen", &split.unseen)] {
        write_tweepfake_csv(&dir.join(format!("data/{name}.csv")), rows)?;
    }
    tracing::info!(
        "fold {fold} of {}: held-out families {:?}; training on {} tweets, evaluating {} seen and {} unseen",
        args.folds,
        split.families,
        split.train.len(),
        split.seen.len(),
        split.unseen.len()
    );
    let recipe = fold_recipe(args, &dir)?;
    let run_dir = recipe.output_dir.clone();
    train::run(recipe).with_context(|| format!("training fold {fold}"))?;

    // The fold's exported int8 model, loaded and run as the page runs it.
    let files = ModelFiles::read(&run_dir)?;
    let options = LoadOptions { backend: BackendChoice::Cpu, cpu_engine: CpuEngine::Int8, ..Default::default() };
    let classifier = files.classifier(options)?;
    let mut predictions = Vec::new();
    for (set, rows) in [(Set::Seen, &split.seen), (Set::Unseen, &split.unseen)] {
        let owned: Vec<Example> = rows.iter().map(|&e| e.clone()).collect();
        let (logits, _) = core_logits(&classifier, &owned)?;
        for (example, logits) in owned.into_iter().zip(logits) {
            let family = families::family_of(example.account.as_deref().unwrap_or_default())?;
            predictions.push(FoldPrediction { fold, set, family: family.to_string(), example, logits });
        }
    }
    let summary = FoldSummary {
        fold,
        families: split.families.iter().map(|f| f.to_string()).collect(),
        train_rows: split.train.len(),
        temperature: files.temperature().map_or(1.0, f64::from),
        seconds: started.elapsed().as_secs_f64(),
    };
    cv_report::write_fold(&dir, &summary, &predictions)?;
    // The fold's model stays for inspection; its optimiser checkpoints (about 0.3 GB each) are no longer needed.
    crate::output::remove_path(&run_dir.join(checkpoint::DIR))?;
    tracing::info!("fold {fold} done in {:.0} s", summary.seconds);
    Ok(())
}

pub fn run(args: CvArgs) -> Result<()> {
    let out = args.recipe.output_dir.clone();
    if args.report_only {
        return cv_report::write_report(&out, args.folds);
    }
    if args.recipe.validation_file.is_some() || args.recipe.resume.is_some() {
        bail!("cv makes each fold's validation set and resumes folds by itself: drop --validation-file and --resume");
    }
    if !(0.0..0.5).contains(&args.seen_fraction) || args.seen_fraction == 0.0 {
        bail!("--seen-fraction {} must be in (0, 0.5)", args.seen_fraction);
    }
    let path = args.recipe.train_file.clone().unwrap_or_else(crate::data::default_train_file);
    let data = Dataset::read(&path, args.recipe.skip_bad_rows, args.recipe.limit)?;
    data.warn_skipped();
    let families = families::families_of(&data.examples).with_context(|| format!("reading {}", path.display()))?;
    let assignment = families::assign_folds(&families, args.folds)?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let wanted: Vec<usize> = if args.fold.is_empty() { (0..args.folds).collect() } else { args.fold.clone() };
    if let Some(bad) = wanted.iter().find(|&&f| f >= args.folds) {
        bail!("--fold {bad}: folds are numbered 0 to {}", args.folds - 1);
    }
    for fold in wanted {
        if cv_report::fold_done(&fold_dir(&out, fold)) {
            tracing::info!("fold {fold}: done already ({}), skipped", fold_dir(&out, fold).display());
            continue;
        }
        let split = split_fold(&data.examples, &families, &assignment, fold, args.seen_fraction, args.recipe.seed);
        run_fold(&args, &split, fold)?;
        cv_report::write_report(&out, args.folds)?;
    }
    cv_report::write_report(&out, args.folds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples() -> Vec<Example> {
        let accounts =
            [("dril", 0, 20), ("dril_gpt2", 1, 20), ("kevinhooke", 0, 30), ("kevinhookebot", 1, 30), ("zawvrk", 0, 10)];
        accounts
            .iter()
            .flat_map(|&(account, label, n)| {
                (0..n).map(move |i| Example {
                    account: Some(account.into()),
                    ..Example::new(format!("{account} {i}"), label)
                })
            })
            .collect()
    }

    #[test]
    fn a_fold_keeps_its_families_out_of_training_and_holds_out_a_share_of_every_other_account() {
        let examples = examples();
        let families = families::families_of(&examples).unwrap();
        let assignment = families::assign_folds(&families, 2).unwrap();
        // kevinhooke (60 rows) alone; dril (40) and zawvrk (10) together.
        assert_eq!(assignment["kevinhooke"], 0);
        assert_eq!(assignment["dril"], assignment["zawvrk"]);
        let split = split_fold(&examples, &families, &assignment, 0, 0.1, 7);
        assert_eq!(split.families, ["kevinhooke"]);
        assert_eq!(split.unseen.len(), 60);
        assert!(split.unseen.iter().all(|e| e.account.as_deref().unwrap().starts_with("kevinhooke")));
        let count =
            |rows: &[&Example], account: &str| rows.iter().filter(|e| e.account.as_deref() == Some(account)).count();
        assert_eq!(
            (count(&split.seen, "dril"), count(&split.seen, "dril_gpt2"), count(&split.seen, "zawvrk")),
            (2, 2, 1)
        );
        assert_eq!(split.train.len() + split.seen.len(), 50);
        assert!(split.train.iter().all(|t| !split.seen.iter().any(|s| std::ptr::eq(*s, *t))));
        let again = split_fold(&examples, &families, &assignment, 0, 0.1, 7);
        assert!(again.seen.iter().zip(&split.seen).all(|(a, b)| std::ptr::eq(*a, *b)), "seeded");
    }

    #[test]
    fn fold_files_read_back_as_they_were_written() {
        let tmp = tempfile::tempdir().unwrap();
        let rows = [
            Example {
                account: Some("dril".into()),
                generator: Some("human".into()),
                ..Example::new("a \"quoted\"; text\nover two lines", 0)
            },
            Example { account: Some("dril_gpt2".into()), generator: Some("gpt2".into()), ..Example::new("plain", 1) },
        ];
        let path = tmp.path().join("f.csv");
        write_tweepfake_csv(&path, &rows.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(Dataset::read(&path, false, None).unwrap().examples, rows);
    }
}

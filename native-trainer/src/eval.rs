//! `eval`: evaluate a model folder on a labelled file through the core crate (the int8 path the browser
//! runs, when the folder has int8 weights), printing run_glue-style metrics and a classification report,
//! and writing `eval_results.txt` and `predictions.txt` when asked.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use tweetguard::HeadInit;

use crate::data::{Dataset, LABELS};
use crate::evaluation::{core_logits, Evaluation};
use crate::model_dir::ModelArgs;
use crate::output::write_atomic;

#[derive(clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Labelled file (.csv TweepFake, .tsv CoLA-style); default `$TWEEPFAKE_DIR/validation.csv`.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Write eval_results.txt and predictions.txt here.
    #[arg(long)]
    output_dir: Option<PathBuf>,
    #[arg(long)]
    limit: Option<usize>,
    /// Record the per-generator figures (and, with --cross-validation, the recipe's grouped CV) in the
    /// exported model folder's card and manifest; its weights stay as they are. Needs the whole file.
    #[arg(long)]
    record: bool,
    /// A `cv` folder of the model's recipe, recorded with --record.
    #[arg(long, value_name = "CV_DIR", requires = "record")]
    cross_validation: Option<PathBuf>,
    #[arg(long)]
    skip_bad_rows: bool,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let (files, classifier) = args.model.load(HeadInit::Require)?;
    let path = args.data.unwrap_or_else(crate::data::default_validation_file);
    let data = Dataset::read(&path, args.skip_bad_rows, args.limit)?;
    data.warn_skipped();
    let (logits, output) = core_logits(&classifier, &data.examples)?;
    let gold: Vec<u32> = data.examples.iter().map(|e| e.label).collect();
    let eval = Evaluation::from_logits(&logits, &gold);
    let temperature = files.temperature().map_or(1.0, f64::from);
    let mut report = eval.result_lines("");
    let _ = writeln!(report, "eval_ece = {:.6}", crate::metrics::ece(&logits, &gold, temperature));
    report += &eval.generator_lines("", &data.examples);
    let _ = writeln!(
        report,
        "\n{} rows of {}, {} on {}:\n{}",
        gold.len(),
        path.display(),
        files.weights_name,
        output.backend.as_str(),
        eval.metrics.report(&LABELS)
    );
    print!("{report}");
    tracing::info!(
        "{:.1} texts/s (tokenize {:.0} ms, infer {:.0} ms)",
        gold.len() as f64 / ((output.timings.tokenize_ms + output.timings.infer_ms) / 1e3),
        output.timings.tokenize_ms,
        output.timings.infer_ms
    );
    if args.record {
        if files.manifest.is_none() || args.limit.is_some() {
            anyhow::bail!("--record needs an exported model folder (with manifest.json) and every row (no --limit)");
        }
        let claimed = files.manifest.as_ref().and_then(|m| m.metrics.pointer("/validation/int8/accuracy")?.as_f64());
        let rows = files.manifest.as_ref().and_then(|m| m.metrics.pointer("/validation/rows")?.as_u64());
        if rows != Some(gold.len() as u64)
            || claimed.is_none_or(|a| (a - eval.metrics.accuracy).abs() > 0.5 / gold.len() as f64)
        {
            anyhow::bail!(
                "{} is not the split the model folder was exported with (rows {rows:?}, int8 accuracy {claimed:?} there, \
                 {} rows and {:.4} here): --record only adds figures to the export's own validation record",
                path.display(),
                gold.len(),
                eval.metrics.accuracy
            );
        }
        let cv = args.cross_validation.as_deref().map(crate::cv_report::headline).transpose()?;
        crate::model_folder::record(&files.dir, &eval.by_generator(&data.examples), cv)?;
        tracing::info!("recorded in {}", files.dir.display());
    }
    if let Some(dir) = args.output_dir {
        write_atomic(&dir.join("eval_results.txt"), report.as_bytes())?;
        eval.write_predictions(&dir.join("predictions.txt"))?;
    }
    Ok(())
}

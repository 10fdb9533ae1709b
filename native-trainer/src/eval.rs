//! `eval`: evaluate a model folder on a labelled file through the core crate (the int8 path the browser
//! runs, when the folder has int8 weights), printing run_glue-style metrics and a classification report,
//! and writing `eval_results.txt` and `predictions.txt` when asked.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use tweetguard::backend::CpuEngine;
use tweetguard::{BackendChoice, Classifier, LoadOptions};

use crate::data::{Dataset, LABELS};
use crate::export::{core_logits, write_atomic, Evaluation};
use crate::model_dir::ModelFiles;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// Model folder (exported OUT/, OUT/model/, or an HF classification checkpoint).
    #[arg(long)]
    model: PathBuf,
    /// Labelled file (.csv TweepFake, .tsv CoLA-style); default `$TWEEPFAKE_DIR/validation.csv`.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Write eval_results.txt and predictions.txt here.
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Inference backend: auto, webgpu or cpu.
    #[arg(long, default_value = "auto")]
    backend: BackendChoice,
    /// CPU engine: auto (int8 engine for int8 models, f32 reference otherwise), int8 or reference.
    #[arg(long, default_value = "auto")]
    cpu_engine: CpuEngine,
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long)]
    skip_bad_rows: bool,
    /// Texts per forward pass; default: the backend's (4 on the CPU, 64 on WebGPU).
    #[arg(long)]
    batch_size: Option<usize>,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let files = ModelFiles::read(&args.model)?;
    let options = LoadOptions {
        backend: args.backend,
        cpu_engine: args.cpu_engine,
        temperature: files.temperature(),
        max_length: files.max_length(None),
        batch_size: args.batch_size,
        ..Default::default()
    };
    let classifier = pollster::block_on(Classifier::load(files.bytes(), options))
        .with_context(|| format!("loading {}", files.dir.display()))?;
    let path = args.data.unwrap_or_else(|| crate::data::tweepfake_dir().join("validation.csv"));
    let data = Dataset::read(&path, args.skip_bad_rows, args.limit)?;
    if !data.skipped.is_empty() {
        tracing::warn!("skipped {} malformed rows (first: {})", data.skipped.len(), data.skipped[0]);
    }
    let (logits, output) = core_logits(&classifier, &data.examples)?;
    let gold: Vec<u32> = data.examples.iter().map(|e| e.label).collect();
    let eval = Evaluation::from_logits(&logits, &gold);
    let mut report = eval.result_lines("");
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
    if let Some(dir) = args.output_dir {
        write_atomic(&dir.join("eval_results.txt"), report.as_bytes())?;
        eval.write_predictions(&dir.join("predictions.txt"))?;
    }
    Ok(())
}

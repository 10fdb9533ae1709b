//! `export`: turn a fine-tuned Hugging Face BERT classification checkpoint (for example one trained with
//! PyTorch) into the model folder the browser loads: int8 weights, manifest, model card, calibration and
//! metrics and a confusion matrix on a labelled validation file, computed through the core crate.

use std::path::PathBuf;

use anyhow::Result;
use tweetguard::{BackendChoice, BertConfig, LoadOptions};

use crate::data::Dataset;
use crate::evaluation::core_logits;
use crate::history::TrainingHistory;
use crate::model_dir::ModelFiles;
use crate::model_folder::Export;
use crate::output::prepare_output_dir;

#[derive(clap::Args, serde::Serialize)]
pub struct ExportArgs {
    /// HF checkpoint folder with a trained classifier head (f32/f16 model.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// Where the model folder goes.
    #[arg(long)]
    output_dir: PathBuf,
    #[arg(long)]
    overwrite_output_dir: bool,
    /// Labelled validation file for metrics and calibration; default `$TWEEPFAKE_DIR/validation.csv`.
    #[arg(long)]
    validation_file: Option<PathBuf>,
    #[arg(long)]
    eval_limit: Option<usize>,
    #[arg(long)]
    skip_bad_rows: bool,
    #[arg(long, default_value_t = 128)]
    max_seq_length: usize,
}

pub fn run(args: ExportArgs) -> Result<()> {
    prepare_output_dir(&args.output_dir, args.overwrite_output_dir)?;
    let files = ModelFiles::read_for_training(&args.model)?;
    let config = BertConfig::from_json(&files.config)?;
    let options =
        LoadOptions { backend: BackendChoice::Cpu, max_length: Some(args.max_seq_length), ..Default::default() };
    let classifier = files.classifier(options)?;
    let path = args.validation_file.clone().unwrap_or_else(crate::data::default_validation_file);
    let validation = Dataset::read(&path, args.skip_bad_rows, args.eval_limit)?;
    validation.warn_skipped();
    let (logits, _) = core_logits(&classifier, &validation.examples)?;
    let hf_weights = tweetguard::weights::quant::float_safetensors_as_f32(&files.weights)?;
    let outcome = Export {
        config,
        tokenizer: files.tokenizer.clone(),
        hf_weights,
        max_length: args.max_seq_length,
        validation_logits: logits,
        validation: validation.examples,
        history: TrainingHistory::default(),
        training_args: serde_json::to_value(&args)?,
        source: args.model.display().to_string(),
        cross_validation: None,
        calibrate_on_unseen_accounts: false,
    }
    .write(&args.output_dir)?;
    tracing::info!("{}", outcome.summary());
    Ok(())
}

//! `predict`: classify texts from a file or standard input with a model folder, one JSON line per text
//! (`{"text","label","score","probabilities","backend","truncated"}`, docs/contracts.md section 4).

use std::io::Write;

use anyhow::Result;
use tweetguard::HeadInit;

use crate::input::{self, InputFormat};
use crate::model_dir::ModelArgs;

#[derive(clap::Args)]
pub struct PredictArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Texts to classify (`-` for standard input).
    #[arg(long, default_value = "-")]
    input: String,
    /// Layout of the input.
    #[arg(long, value_enum, default_value_t = InputFormat::Lines)]
    format: InputFormat,
    /// CSV column holding the text.
    #[arg(long, default_value = "text")]
    text_column: String,
    /// For a bare BERT checkpoint without a classifier: attach a random head seeded with this value.
    /// The labels are then meaningless (an untrained model); every output line says so.
    #[arg(long)]
    untrained_head_seed: Option<u64>,
}

pub fn run(args: PredictArgs) -> Result<()> {
    let head = args.untrained_head_seed.map_or(HeadInit::Require, |seed| HeadInit::RandomIfMissing { seed });
    let (files, classifier) = args.model.load(head)?;
    let info = classifier.info();
    if info.untrained_head {
        tracing::warn!(
            "{} has no classifier head; using an UNTRAINED random head: labels are meaningless",
            files.dir.display()
        );
    }
    let source = input::read_source(&args.input)?;
    let texts = input::texts(&source, &args.input, args.format, &args.text_column)?;
    let output = pollster::block_on(classifier.classify(&texts))?;
    if let Some(reason) = &output.fallback_reason {
        tracing::info!("{reason}");
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (text, result) in texts.iter().zip(&output.results) {
        let mut line = serde_json::json!({
            "text": text,
            "label": result.label,
            "score": result.score,
            "probabilities": result.probabilities,
            "backend": output.backend,
            "truncated": result.truncated,
        });
        if info.untrained_head {
            line["untrained_head"] = true.into();
        }
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    tracing::info!(
        "classified {} texts with {} on {} in {:.1} ms (tokenize {:.1} ms, infer {:.1} ms)",
        texts.len(),
        files.weights_name,
        output.backend.as_str(),
        output.timings.tokenize_ms + output.timings.infer_ms,
        output.timings.tokenize_ms,
        output.timings.infer_ms
    );
    Ok(())
}

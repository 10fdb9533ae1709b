//! `train`: fine-tune a BERT checkpoint for bot-vs-human classification, as `run_glue.py` does: AdamW
//! (weight decay except on biases and LayerNorm), linear warmup then linear decay, gradient clipping,
//! dropout, shuffled length-padded batches. Evaluates and checkpoints after each epoch (`--resume`
//! continues from a checkpoint to the same weights as an uninterrupted run), calibrates a temperature on
//! the validation split, and exports the model folder (docs/contracts.md section 2).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use tweetguard::model::{seed_dropout, Mode};
use tweetguard::tokenize::{batches_by_length, BertTokenizer, EncodedBatch};

use crate::checkpoint::{self, Checkpoint, TrainerState};
use crate::data::{self, Dataset, Example};
use crate::evaluation::Evaluation;
use crate::history::{EpochRecord, StepLoss, TrainingHistory};
use crate::logging;
use crate::metrics;
use crate::model_dir::ModelFiles;
use crate::model_folder;
use crate::optim::{clip_factor, grad_norm, AdamW};
use crate::output;
use crate::trainable::{Precision, Trainable};

/// Where training math runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    Cpu,
    Cuda,
    /// CUDA when built with it and a GPU is present, else CPU.
    Auto,
}

/// A short name of a device for logs and reports.
pub fn device_name(device: &Device) -> &'static str {
    match device {
        Device::Cpu => "cpu",
        Device::Cuda(_) => "cuda",
        Device::Metal(_) => "metal",
    }
}

pub fn device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda if !cfg!(feature = "cuda") => {
            bail!("this binary was built without CUDA: rebuild with `--features cuda` (docs/cuda.md)")
        }
        DeviceChoice::Cuda => Device::new_cuda(0).context("opening CUDA device 0"),
        DeviceChoice::Auto => Ok(Device::cuda_if_available(0).unwrap_or(Device::Cpu)),
    }
}

#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct TrainArgs {
    /// Pretrained checkpoint folder (config.json, tokenizer.json, model.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// Training file (.csv TweepFake, .tsv CoLA-style); default `$TWEEPFAKE_DIR/train.csv`.
    #[arg(long)]
    pub train_file: Option<PathBuf>,
    /// Validation file; default `$TWEEPFAKE_DIR/validation.csv`.
    #[arg(long)]
    pub validation_file: Option<PathBuf>,
    /// Where the model folder and reports go.
    #[arg(long)]
    pub output_dir: PathBuf,
    /// Replace an existing output folder.
    #[arg(long)]
    pub overwrite_output_dir: bool,
    #[arg(long, default_value_t = 128)]
    pub max_seq_length: usize,
    #[arg(long, default_value_t = 32)]
    pub train_batch_size: usize,
    #[arg(long, default_value_t = 64)]
    pub eval_batch_size: usize,
    #[arg(long, default_value_t = 5e-5)]
    pub learning_rate: f64,
    #[arg(long, default_value_t = 3.0)]
    pub num_train_epochs: f64,
    #[arg(long, default_value_t = 0.06)]
    pub warmup_ratio: f64,
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    /// Keep an exponential moving average of the weights with this decay per step (e.g. 0.999) and
    /// validate and export the average instead of the last weights. Checkpoints hold both.
    #[arg(long)]
    pub ema_decay: Option<f64>,
    /// Seeds the head's initialisation, and the shuffling and dropout of each epoch.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where training math runs.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Math of the training steps: f32, or bf16 over f32 master weights (autocast; for CUDA, where
    /// tensor cores make it pay). Validation and the exported weights are f32 either way.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// Use only the first N training rows (quick runs).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Use only the first N validation rows.
    #[arg(long)]
    pub eval_limit: Option<usize>,
    /// Skip malformed rows (counted and reported) instead of stopping.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Continue from a checkpoint: the newest in OUTPUT_DIR/checkpoints, or the given checkpoint folder
    /// (or output folder). The other arguments must match the checkpoint's, except where things are
    /// written, the device, the precision and validation.
    #[arg(long, value_name = "CHECKPOINT", num_args = 0..=1)]
    pub resume: Option<Option<PathBuf>>,
    /// Keep only the newest N epoch checkpoints in OUTPUT_DIR/checkpoints (0 keeps all).
    #[arg(long, default_value_t = 2)]
    pub save_total_limit: usize,
}

/// Learning rate at `step` of `total`: linear warmup over `warmup` steps, then linear decay to 0.
pub fn lr_at(step: usize, total: usize, warmup: usize, peak: f64) -> f64 {
    if step < warmup {
        peak * (step + 1) as f64 / warmup as f64
    } else {
        peak * (total - step) as f64 / (total - warmup).max(1) as f64
    }
}

/// Biases and LayerNorm parameters are not decayed (as in HF examples).
fn decays(name: &str) -> bool {
    !(name.ends_with(".bias") || name.contains("LayerNorm"))
}

/// AdamW over every variable of `model`, decaying the weights that [`decays`] names, with a weight
/// average of decay `ema_decay` if given.
pub fn optimizer(model: &Trainable, weight_decay: f64, ema_decay: Option<f64>) -> Result<AdamW> {
    let optimizer = AdamW::new(model.named_vars(), |name| if decays(name) { weight_decay } else { 0.0 })?;
    match ema_decay {
        Some(decay) => optimizer.with_weight_average(decay),
        None => Ok(optimizer),
    }
}

/// One optimisation step on a padded batch: forward with dropout, cross-entropy, backward, gradient
/// clipping to `max_grad_norm`, AdamW at `lr`. Returns the batch's mean loss; a non-finite loss is an
/// error and leaves the weights untouched.
pub fn train_step(
    model: &Trainable,
    optimizer: &mut AdamW,
    batch: &EncodedBatch,
    labels: &[u32],
    lr: f64,
    max_grad_norm: f64,
) -> Result<f64> {
    let labels = Tensor::new(labels, &model.device)?;
    let loss = candle_nn::loss::cross_entropy(&model.forward(batch, Mode::Train)?, &labels)?;
    let value = loss.to_scalar::<f32>()? as f64;
    if !value.is_finite() {
        bail!("the loss became {value}: lower --learning-rate or check the data");
    }
    let grads = loss.backward()?;
    let factor = clip_factor(grad_norm(&grads, optimizer.vars())?, max_grad_norm);
    optimizer.step(&grads, lr, factor)?;
    Ok(value)
}

/// Batches of row indices with little padding: the shuffled rows are cut into pools of 50 batches, each
/// pool is sorted by length and cut into batches, and the batches are shuffled (seeded).
pub fn bucketed_batches(encodings: &[tweetguard::tokenize::Encoding], batch_size: usize, seed: u64) -> Vec<Vec<usize>> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let pool_size = batch_size * 50;
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for (p, pool) in encodings.chunks(pool_size).enumerate() {
        let offset = p * pool_size;
        batches.extend(
            batches_by_length(pool, batch_size).into_iter().map(|b| b.into_iter().map(|i| i + offset).collect()),
        );
    }
    batches.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed));
    batches
}

/// Token ids of every example, computed once.
pub fn encode_all(encoder: &BertTokenizer, examples: &[&Example]) -> Result<Vec<tweetguard::tokenize::Encoding>> {
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    Ok(encoder.encode(&texts)?)
}

/// f32 logits of `examples` with the model in inference mode (batched by length, returned in order).
pub fn predict_logits(
    model: &Trainable,
    encoder: &BertTokenizer,
    examples: &[&Example],
    batch_size: usize,
) -> Result<Vec<Vec<f32>>> {
    let encodings = encode_all(encoder, examples)?;
    let mut logits = vec![Vec::new(); examples.len()];
    for chunk in batches_by_length(&encodings, batch_size) {
        let batch = encoder.pad(&chunk.iter().map(|&i| &encodings[i]).collect::<Vec<_>>());
        let rows = model.forward(&batch, Mode::Infer)?.to_device(&Device::Cpu)?.to_vec2::<f32>()?;
        for (&i, row) in chunk.iter().zip(rows) {
            logits[i] = row;
        }
    }
    Ok(logits)
}

/// Where a run starts: the pretrained model with zero moments, or a checkpoint.
struct Start {
    model: Trainable,
    optimizer: AdamW,
    completed_epochs: usize,
    history: TrainingHistory,
}

fn start(
    args: &TrainArgs,
    files: &ModelFiles,
    config: tweetguard::BertConfig,
    device: Device,
    base_sha256: &str,
) -> Result<Start> {
    let Some(resume) = &args.resume else {
        let model = Trainable::from_checkpoint(config, files.weights.clone(), args.seed, device)?
            .with_precision(args.precision);
        let optimizer = optimizer(&model, args.weight_decay, args.ema_decay)?;
        return Ok(Start { model, optimizer, completed_epochs: 0, history: TrainingHistory::default() });
    };
    let (dir, saved) = Checkpoint::open_for_resume(&args.output_dir, resume.as_deref())?;
    saved
        .state
        .ensure_resumable(base_sha256, &serde_json::to_value(args)?)
        .with_context(|| format!("cannot resume from {}", dir.display()))?;
    let model = Trainable::from_checkpoint(config, saved.weights, args.seed, device)
        .with_context(|| format!("loading {}", dir.display()))?
        .with_precision(args.precision);
    let mut optimizer = optimizer(&model, args.weight_decay, args.ema_decay)?;
    optimizer
        .load_state(&saved.optimizer)
        .with_context(|| format!("loading the optimizer state of {}", dir.display()))?;
    tracing::info!(
        "resuming from {} (epoch {} done, step {})",
        dir.display(),
        saved.state.completed_epochs,
        saved.state.global_step
    );
    Ok(Start { model, optimizer, completed_epochs: saved.state.completed_epochs, history: saved.state.history })
}

pub fn run(args: TrainArgs) -> Result<()> {
    let started = Instant::now();
    if args.resume.is_none() {
        let earlier = checkpoint::list(&args.output_dir)?;
        if !earlier.is_empty() && !args.overwrite_output_dir {
            bail!(
                "{} holds checkpoints of an earlier run: pass --resume to continue it, or --overwrite-output-dir to start over",
                args.output_dir.display()
            );
        }
        output::prepare_output_dir(&args.output_dir, args.overwrite_output_dir)?;
        // A new run's checkpoints must not mix with an earlier run's.
        checkpoint::remove_all(&args.output_dir)?;
    }
    let device = device(args.device)?;
    let files = ModelFiles::read_for_training(&args.model)?;
    let mut config = tweetguard::BertConfig::from_json(&files.config)?;
    config.set_labels(&data::LABELS);
    let encoder = BertTokenizer::from_json(&files.tokenizer, args.max_seq_length)?;
    let train_path = args.train_file.clone().unwrap_or_else(data::default_train_file);
    let val_path = args.validation_file.clone().unwrap_or_else(data::default_validation_file);
    let train = Dataset::read(&train_path, args.skip_bad_rows, args.limit)?;
    let validation = Dataset::read(&val_path, args.skip_bad_rows, args.eval_limit)?;
    train.warn_skipped();
    validation.warn_skipped();
    tracing::info!(
        "training {} on {} rows, validating on {} rows, on {} in {}",
        args.model.display(),
        train.examples.len(),
        validation.examples.len(),
        device_name(&device),
        args.precision.as_str()
    );
    if args.precision == Precision::Bf16 && device.is_cpu() {
        tracing::warn!(
            "--precision bf16 is meant for CUDA: on the CPU it is slower than f32 (2.7x per MiniLM step in `bench`)"
        );
    }
    let base_sha256 = checkpoint::fingerprint(&files.weights);
    let Start { model, mut optimizer, mut completed_epochs, mut history } =
        start(&args, &files, config, device, &base_sha256)?;

    let steps_per_epoch = train.examples.len().div_ceil(args.train_batch_size);
    let total_steps = ((steps_per_epoch as f64) * args.num_train_epochs).ceil().max(1.0) as usize;
    let warmup = (args.warmup_ratio * total_steps as f64) as usize;
    let val_refs: Vec<&Example> = validation.examples.iter().collect();
    let gold: Vec<u32> = val_refs.iter().map(|e| e.label).collect();
    let mut step = history.global_step();
    let mut last_logits = None;
    while step < total_steps {
        // Shuffling and dropout depend on the seed and the epoch only, so a resumed run repeats them.
        let epoch_seed = args.seed.wrapping_add(completed_epochs as u64);
        seed_dropout(&model.device, epoch_seed)?;
        let order = train.shuffled(epoch_seed);
        let encodings = encode_all(&encoder, &order)?;
        let batches = bucketed_batches(&encodings, args.train_batch_size, epoch_seed);
        let bar = logging::progress_bar(
            batches.len().min(total_steps - step) as u64,
            "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}",
        );
        bar.set_prefix(format!("{}", completed_epochs + 1));
        let epoch_start = Instant::now();
        let (mut loss_sum, mut seen) = (0f64, 0usize);
        for rows in &batches {
            if step >= total_steps {
                break;
            }
            let lr = lr_at(step, total_steps, warmup, args.learning_rate);
            let batch = encoder.pad(&rows.iter().map(|&i| &encodings[i]).collect::<Vec<_>>());
            let labels: Vec<u32> = rows.iter().map(|&i| order[i].label).collect();
            let loss = train_step(&model, &mut optimizer, &batch, &labels, lr, args.max_grad_norm)
                .with_context(|| format!("step {} (epoch {})", step + 1, completed_epochs + 1))?;
            loss_sum += loss * rows.len() as f64;
            seen += rows.len();
            step += 1;
            history.steps.push(StepLoss { step, loss });
            let rate = seen as f64 / epoch_start.elapsed().as_secs_f64();
            bar.set_message(format!("loss {:.4} lr {lr:.2e} {rate:.1} samples/s", loss_sum / seen as f64));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let samples_per_s = seen as f64 / epoch_start.elapsed().as_secs_f64();
        let mut logits = predict_logits(&model, &encoder, &val_refs, args.eval_batch_size)?;
        let mut last_weights_accuracy = None;
        if optimizer.has_weight_average() {
            last_weights_accuracy = Some(Evaluation::from_logits(&logits, &gold).metrics.accuracy);
            optimizer.swap_weight_average()?;
            let averaged = predict_logits(&model, &encoder, &val_refs, args.eval_batch_size);
            optimizer.swap_weight_average()?;
            logits = averaged?;
        }
        let eval = Evaluation::from_logits(&logits, &gold);
        completed_epochs += 1;
        let record = EpochRecord {
            epoch: completed_epochs,
            step,
            train_loss: loss_sum / seen.max(1) as f64,
            validation_loss: metrics::nll(&logits, &gold, 1.0),
            validation_accuracy: eval.metrics.accuracy,
            validation_f1: eval.metrics.f1,
            validation_mcc: eval.metrics.mcc,
            last_weights_accuracy,
            samples_per_s,
        };
        tracing::info!(
            "epoch {}: train loss {:.4}, {:.1} samples/s; validation loss {:.4} accuracy {:.4} F1 {:.4} MCC {:.4}{}",
            record.epoch,
            record.train_loss,
            record.samples_per_s,
            record.validation_loss,
            record.validation_accuracy,
            record.validation_f1,
            record.validation_mcc,
            last_weights_accuracy
                .map_or(String::new(), |a| format!(" (weight average; last weights: accuracy {a:.4})"))
        );
        history.epochs.push(record);
        let state = TrainerState {
            format_version: checkpoint::FORMAT_VERSION,
            completed_epochs,
            global_step: step,
            seed: args.seed,
            base_model_sha256: base_sha256.clone(),
            training_args: serde_json::to_value(&args)?,
            history: history.clone(),
            files_sha256: Default::default(), // filled in by checkpoint::save
        };
        // A checkpoint that cannot be written (a full disk) costs only the chance to resume from this
        // epoch: training goes on, the epoch is not lost.
        match checkpoint::save(&args.output_dir, &state, &model, &optimizer, &files.tokenizer, args.save_total_limit) {
            Ok(saved) => tracing::info!("checkpoint: {}", saved.display()),
            Err(err) => tracing::warn!("could not write the checkpoint of epoch {completed_epochs}: {err:#}"),
        }
        last_logits = Some(logits);
    }
    // What is exported: the weight average when there is one.
    if optimizer.has_weight_average() {
        optimizer.swap_weight_average()?;
    }
    // The last epoch's validation logits are current: the model has not changed since. A resumed run
    // that had nothing left to train computes them here.
    let logits = match last_logits {
        Some(logits) => logits,
        None => predict_logits(&model, &encoder, &val_refs, args.eval_batch_size)?,
    };
    let outcome = model_folder::Export {
        config: model.config.clone(),
        tokenizer: files.tokenizer.clone(),
        hf_weights: model.hf_safetensors()?,
        max_length: args.max_seq_length,
        validation_logits: logits,
        validation: validation.examples.clone(),
        history,
        training_args: serde_json::to_value(&args)?,
        source: args.model.display().to_string(),
    }
    .write(&args.output_dir)?;
    tracing::info!("{}", outcome.summary());
    tracing::info!(
        "done in {:.1} s; model folder: {}",
        started.elapsed().as_secs_f64(),
        args.output_dir.join("model").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        assert!((lr_at(0, 100, 10, 1.0) - 0.1).abs() < 1e-12);
        assert!((lr_at(9, 100, 10, 1.0) - 1.0).abs() < 1e-12);
        assert!((lr_at(10, 100, 10, 1.0) - 1.0).abs() < 1e-12);
        assert!((lr_at(99, 100, 10, 1.0) - 1.0 / 90.0).abs() < 1e-12);
        assert!(lr_at(55, 100, 0, 1.0) < lr_at(54, 100, 0, 1.0));
    }

    #[test]
    fn no_decay_on_biases_and_layer_norm() {
        assert!(decays("encoder.layer.0.attention.self.query.weight"));
        assert!(!decays("encoder.layer.0.attention.self.query.bias"));
        assert!(!decays("embeddings.LayerNorm.weight"));
    }

    /// `TrainArgs` as the command line gives them.
    fn parse(flags: &[&str]) -> TrainArgs {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: TrainArgs,
        }
        <Cli as clap::Parser>::try_parse_from(std::iter::once("train").chain(flags.iter().copied())).unwrap().args
    }

    /// A small CoLA-style TSV: bot-ish and human-ish texts, alternating.
    fn write_tsv(path: &std::path::Path, rows: usize) {
        let text = (0..rows)
            .map(|i| match i % 2 {
                0 => format!("x\t1\t\tbuy followers now, click the link {i}\n"),
                _ => format!("x\t0\t\ti had lunch with my sister today and it was nice {i}\n"),
            })
            .collect::<String>();
        std::fs::write(path, text).unwrap();
    }

    fn f32_weights(out: &std::path::Path) -> HashMap<String, Vec<f32>> {
        let bytes = std::fs::read(out.join("hf/model.safetensors")).unwrap();
        candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .unwrap()
            .into_iter()
            .map(|(name, t)| (name, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
            .collect()
    }

    /// Two epochs straight and one epoch then `--resume` for the second end at the same weights (dropout on:
    /// its masks are seeded per epoch), with the same loss curve; changed settings are refused; only
    /// `--save-total-limit` checkpoints stay; an earlier run's checkpoints are never mixed in; the plots
    /// are written.
    #[test]
    fn resuming_reaches_the_weights_of_an_uninterrupted_run() {
        let tmp = std::env::temp_dir().join(format!("tg-resume-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        let (train_file, val_file) = (tmp.join("train.tsv"), tmp.join("val.tsv"));
        write_tsv(&train_file, 40);
        write_tsv(&val_file, 12);
        let tiny = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny");
        let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
        let (straight, resumed, refused) = (tmp.join("straight"), tmp.join("resumed"), tmp.join("refused"));
        let common = [
            "--model",
            &path(&tiny),
            "--train-file",
            &path(&train_file),
            "--validation-file",
            &path(&val_file),
            "--device",
            "cpu",
            "--num-train-epochs",
            "2",
            "--train-batch-size",
            "8",
            "--seed",
            "3",
            "--max-seq-length",
            "32",
        ]
        .map(str::to_string);
        let run_at = |learning_rate: &str, extra: &[&str]| {
            let flags: Vec<&str> = common
                .iter()
                .map(String::as_str)
                .chain(["--learning-rate", learning_rate])
                .chain(extra.iter().copied())
                .collect();
            run(parse(&flags))
        };
        let run_with = |extra: &[&str]| run_at("1e-3", extra);

        run_with(&["--output-dir", &path(&straight)]).unwrap();
        assert_eq!(checkpoint::list(&straight).unwrap().iter().map(|(e, _)| *e).collect::<Vec<_>>(), [1, 2]);
        for file in ["training_curve.svg", "confusion_matrix.svg", "training_loss.tsv"] {
            assert!(std::fs::read_to_string(straight.join(file)).unwrap().starts_with(if file.ends_with("svg") {
                "<svg"
            } else {
                "step"
            }));
        }
        let epoch_1 = straight.join("checkpoints/epoch-1");
        for file in
            ["model.safetensors", "optimizer.safetensors", "config.json", "tokenizer.json", "trainer_state.json"]
        {
            assert!(epoch_1.join(file).is_file(), "{file} missing from the checkpoint");
        }

        run_with(&["--output-dir", &path(&resumed), "--resume", &path(&epoch_1), "--save-total-limit", "1"]).unwrap();
        let (a, b) = (f32_weights(&straight), f32_weights(&resumed));
        assert_eq!(a.len(), b.len());
        for (name, values) in &a {
            let max_diff = values.iter().zip(&b[name]).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            assert!(max_diff <= 1e-5, "{name} differs by {max_diff} after resuming");
        }
        let losses = |out: &std::path::Path| std::fs::read_to_string(out.join("training_loss.tsv")).unwrap();
        assert_eq!(losses(&straight), losses(&resumed), "the resumed run continues the loss curve");

        // A newest checkpoint damaged after it was written (here: truncated) is skipped with its reason, and
        // `--resume` continues from the older whole one, to the same weights.
        let torn = tmp.join("torn");
        for epoch in ["epoch-1", "epoch-2"] {
            let (from, to) = (straight.join("checkpoints").join(epoch), torn.join("checkpoints").join(epoch));
            std::fs::create_dir_all(&to).unwrap();
            for file in std::fs::read_dir(&from).unwrap() {
                let file = file.unwrap().path();
                std::fs::copy(&file, to.join(file.file_name().unwrap())).unwrap();
            }
        }
        let damaged = torn.join("checkpoints/epoch-2/model.safetensors");
        let bytes = std::fs::read(&damaged).unwrap();
        std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
        let err = Checkpoint::read(&torn.join("checkpoints/epoch-2")).err().expect("a truncated checkpoint is refused");
        assert!(format!("{err:#}").contains("model.safetensors is damaged: its SHA-256"), "{err:#}");
        run_with(&["--output-dir", &path(&torn), "--resume"]).unwrap();
        let repaired = f32_weights(&torn);
        for (name, values) in &a {
            let max_diff = values.iter().zip(&repaired[name]).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            assert!(max_diff <= 1e-5, "{name} differs by {max_diff} after resuming past a damaged checkpoint");
        }
        // Asked for by name, a damaged checkpoint is an error; with every one damaged, so is `--resume`.
        std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
        let err = run_with(&["--output-dir", &path(&refused), "--resume", &path(&torn.join("checkpoints/epoch-2"))])
            .unwrap_err();
        assert!(format!("{err:#}").contains("is damaged"), "{err:#}");
        let optimizer_1 = torn.join("checkpoints/epoch-1/optimizer.safetensors");
        std::fs::write(&optimizer_1, b"not safetensors").unwrap();
        let err = run_with(&["--output-dir", &path(&torn), "--resume"]).unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains("every checkpoint is damaged") && message.contains("optimizer.safetensors"),
            "{message}"
        );

        // With a weight average: it is checkpointed with the moments, a resumed run exports the average an
        // uninterrupted one does, and that average is not the last weights.
        let (ema_straight, ema_resumed) = (tmp.join("ema-straight"), tmp.join("ema-resumed"));
        run_with(&["--output-dir", &path(&ema_straight), "--ema-decay", "0.8"]).unwrap();
        let ema_epoch_1 = ema_straight.join("checkpoints/epoch-1");
        run_with(&["--output-dir", &path(&ema_resumed), "--ema-decay", "0.8", "--resume", &path(&ema_epoch_1)])
            .unwrap();
        let (averaged, averaged_resumed) = (f32_weights(&ema_straight), f32_weights(&ema_resumed));
        for (name, values) in &averaged {
            let max_diff = values.iter().zip(&averaged_resumed[name]).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            assert!(max_diff <= 1e-5, "{name}: the averaged weights differ by {max_diff} after resuming");
        }
        let moved =
            averaged.iter().any(|(name, values)| values.iter().zip(&a[name]).any(|(x, y)| (x - y).abs() > 1e-4));
        assert!(moved, "the exported average must differ from the last weights");
        let err = run_with(&["--output-dir", &path(&refused), "--resume", &path(&ema_epoch_1)]).unwrap_err();
        assert!(format!("{err:#}").contains("--ema-decay"), "{err:#}");
        assert_eq!(losses(&resumed).lines().count(), 1 + 2 * 5);
        assert_eq!(
            checkpoint::list(&resumed).unwrap().iter().map(|(e, _)| *e).collect::<Vec<_>>(),
            [2],
            "--save-total-limit 1"
        );

        let err = run_at("2e-3", &["--output-dir", &path(&refused), "--resume", &path(&epoch_1)]).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains("cannot resume") && message.contains("--learning-rate"), "{message}");
        let err = run_with(&["--output-dir", &path(&refused), "--resume"]).unwrap_err();
        assert!(format!("{err:#}").contains("nothing to resume"), "{err:#}");

        // A fresh run never mixes with an earlier run's checkpoints: it refuses, or with
        // --overwrite-output-dir it deletes them first.
        let stale = refused.join("checkpoints/epoch-7");
        std::fs::create_dir_all(&stale).unwrap();
        std::fs::write(stale.join("trainer_state.json"), "{}").unwrap();
        let err = run_with(&["--output-dir", &path(&refused)]).unwrap_err();
        assert!(format!("{err:#}").contains("--resume to continue it"), "{err:#}");
        run_with(&["--output-dir", &path(&refused), "--overwrite-output-dir"]).unwrap();
        assert_eq!(checkpoint::list(&refused).unwrap().iter().map(|(e, _)| *e).collect::<Vec<_>>(), [1, 2]);
        let _ = std::fs::remove_dir_all(&tmp);
    }

    fn tiny_trainable() -> (Trainable, BertTokenizer) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny");
        let files = ModelFiles::read_for_training(&dir).unwrap();
        let config = tweetguard::BertConfig::from_json(&files.config).unwrap();
        assert_eq!(files.weights_name, "model.safetensors");
        let model = Trainable::from_checkpoint(config, files.weights.clone(), 0, Device::Cpu).unwrap();
        (model, BertTokenizer::from_json(&files.tokenizer, 32).unwrap())
    }

    const TEXTS: [&str; 3] = ["a bot wrote this", "i wrote this myself, honestly", "hi"];

    /// Every trainable tensor receives a non-zero, finite f32 gradient (candle's fused LayerNorm would
    /// block them), in f32 and through the bf16 casts of mixed precision.
    #[test]
    fn every_parameter_gets_a_gradient() {
        let batch = tiny_trainable().1.encode_batch(&TEXTS).unwrap();
        for precision in [Precision::F32, Precision::Bf16] {
            let model = tiny_trainable().0.with_precision(precision);
            let logits = model.forward(&batch, Mode::Train).unwrap();
            assert_eq!(logits.dtype(), candle_core::DType::F32);
            let loss =
                candle_nn::loss::cross_entropy(&logits, &Tensor::new(&[1u32, 0, 1], &Device::Cpu).unwrap()).unwrap();
            let grads = loss.backward().unwrap();
            let named = model.named_vars();
            assert_eq!(named.len(), 5 + 16 * 2 + 4, "embeddings 5, 16 per layer, pooler 2, classifier 2");
            for (name, var) in &named {
                let g = grads.get(var).unwrap_or_else(|| panic!("{precision:?}: {name} has no gradient"));
                assert_eq!(g.dtype(), candle_core::DType::F32, "{precision:?}: {name}");
                let norm = g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
                assert!(norm > 0.0 && norm.is_finite(), "{precision:?}: {name}: gradient norm {norm}");
            }
        }
    }

    /// Mixed precision computes the f32 model's function: with the same dropout masks, bf16 training
    /// logits are within bf16 rounding (8 significant bits through 2 layers) of f32's, and the loss's
    /// gradients point the same way (cosine > 0.99 over all parameters).
    #[test]
    fn bf16_steps_follow_f32() {
        let batch = tiny_trainable().1.encode_batch(&TEXTS).unwrap();
        let labels = Tensor::new(&[1u32, 0, 1], &Device::Cpu).unwrap();
        let run = |precision| {
            let model = tiny_trainable().0.with_precision(precision);
            seed_dropout(&Device::Cpu, 5).unwrap();
            let logits = model.forward(&batch, Mode::Train).unwrap();
            let loss = candle_nn::loss::cross_entropy(&logits, &labels).unwrap();
            let grads = loss.backward().unwrap();
            let flat: Vec<f32> = model
                .named_vars()
                .iter()
                .flat_map(|(_, v)| grads.get(v).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap())
                .collect();
            (logits.flatten_all().unwrap().to_vec1::<f32>().unwrap(), flat)
        };
        let (f32_logits, f32_grads) = run(Precision::F32);
        let (bf16_logits, bf16_grads) = run(Precision::Bf16);
        assert_ne!(f32_logits, bf16_logits, "the bf16 pass must round somewhere");
        for (a, b) in f32_logits.iter().zip(&bf16_logits) {
            assert!((a - b).abs() <= 0.02 + 0.02 * a.abs(), "f32 {a} vs bf16 {b}");
        }
        let dot: f64 = f32_grads.iter().zip(&bf16_grads).map(|(a, b)| *a as f64 * *b as f64).sum();
        let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let cosine = dot / (norm(&f32_grads) * norm(&bf16_grads));
        assert!(cosine > 0.99, "gradient cosine {cosine}");
    }
}

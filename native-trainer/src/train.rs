//! `train`: fine-tune a BERT checkpoint for bot-vs-human classification, as `run_glue.py` does: AdamW
//! (weight decay except on biases and LayerNorm), linear warmup then linear decay, gradient clipping,
//! dropout, shuffled length-padded batches. Evaluates and checkpoints after each epoch (`--resume`
//! continues from a checkpoint to the same weights as an uninterrupted run), calibrates a temperature on
//! the validation split, and exports the model folder (docs/contracts.md section 2).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use tweetguard::model::seed_dropout;
use tweetguard::tokenize::BertTokenizer;

use crate::checkpoint::{self, Checkpoint, TrainerState};
use crate::data::{self, Dataset, Example};
use crate::device::{device, device_name, DeviceChoice};
use crate::evaluation::Evaluation;
use crate::history::{EpochRecord, StepLoss, TrainingHistory};
use crate::logging;
use crate::metrics;
use crate::model_dir::ModelFiles;
use crate::model_folder;
use crate::optim::AdamW;
use crate::output;
use crate::step::{bucketed_batches, encode_all, lr_at, optimizer, predict_logits, train_step};
use crate::trainable::{Precision, Trainable};

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
    /// Layer-wise learning-rate decay: the top layer, pooler and classifier at the learning rate, each
    /// layer below at this factor of the one above, the embeddings below the lowest (e.g. 0.85).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")] // absent when off: older checkpoints resume as they were
    pub layer_lr_decay: Option<f64>,
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
    /// Read `@mentions` as `@user` and links as `http` (tweetguard::tweet_text), in training and wherever
    /// the model runs: the rule goes into the exported tokenizer.json.
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")] // absent when off: older checkpoints resume as they were
    pub normalize_tweets: bool,
    /// A `cv` folder of this recipe: its seen- and unseen-account figures go into the manifest and the card.
    #[arg(long, value_name = "CV_DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_validation: Option<PathBuf>,
    /// Calibrate the scores with the temperature that `cv` fitted on its unseen accounts (needs
    /// --cross-validation) instead of one fitted on the validation split: users meet unseen accounts.
    #[arg(long, requires = "cross_validation")]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub calibrate_on_unseen_accounts: bool,
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
        let optimizer = optimizer(&model, args.weight_decay, args.ema_decay, args.layer_lr_decay)?;
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
    let mut optimizer = optimizer(&model, args.weight_decay, args.ema_decay, args.layer_lr_decay)?;
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

/// Refuses to start over an earlier run's checkpoints unless asked to, then makes the output folder
/// ready for a new run (a resumed run keeps its folder as it is).
fn prepare_output(args: &TrainArgs) -> Result<()> {
    if args.resume.is_some() {
        return Ok(());
    }
    let earlier = checkpoint::list(&args.output_dir)?;
    if !earlier.is_empty() && !args.overwrite_output_dir {
        bail!(
            "{} holds checkpoints of an earlier run: pass --resume to continue it, or --overwrite-output-dir to start over",
            args.output_dir.display()
        );
    }
    output::prepare_output_dir(&args.output_dir, args.overwrite_output_dir)?;
    // A new run's checkpoints must not mix with an earlier run's.
    checkpoint::remove_all(&args.output_dir)
}

/// The training and validation splits, read and checked.
struct Splits {
    train: Dataset,
    validation: Dataset,
}

impl Splits {
    fn read(args: &TrainArgs) -> Result<Splits> {
        let train_path = args.train_file.clone().unwrap_or_else(data::default_train_file);
        let val_path = args.validation_file.clone().unwrap_or_else(data::default_validation_file);
        let splits = Splits {
            train: Dataset::read(&train_path, args.skip_bad_rows, args.limit)?,
            validation: Dataset::read(&val_path, args.skip_bad_rows, args.eval_limit)?,
        };
        splits.train.warn_skipped();
        splits.validation.warn_skipped();
        Ok(splits)
    }

    fn validation_refs(&self) -> Vec<&Example> {
        self.validation.examples.iter().collect()
    }

    fn gold(&self) -> Vec<u32> {
        self.validation.examples.iter().map(|e| e.label).collect()
    }
}

/// The learning-rate schedule's steps.
struct Schedule {
    total: usize,
    warmup: usize,
}

impl Schedule {
    fn new(args: &TrainArgs, train_rows: usize) -> Schedule {
        let steps_per_epoch = train_rows.div_ceil(args.train_batch_size);
        let total = ((steps_per_epoch as f64) * args.num_train_epochs).ceil().max(1.0) as usize;
        Schedule { total, warmup: (args.warmup_ratio * total as f64) as usize }
    }
}

/// A run between epochs: the model, its optimiser and what has been done.
struct Run<'a> {
    args: &'a TrainArgs,
    files: ModelFiles,
    encoder: BertTokenizer,
    model: Trainable,
    optimizer: AdamW,
    completed_epochs: usize,
    history: TrainingHistory,
    base_sha256: String,
}

/// What one epoch of steps did.
struct EpochTraining {
    mean_loss: f64,
    samples_per_s: f64,
}

impl Run<'_> {
    fn step(&self) -> usize {
        self.history.global_step()
    }

    /// The next epoch's steps (fewer where the schedule ends inside it). Shuffling and dropout depend on
    /// the seed and the epoch only, so a resumed run repeats them.
    fn train_epoch(&mut self, train: &Dataset, schedule: &Schedule) -> Result<EpochTraining> {
        let args = self.args;
        let epoch_seed = args.seed.wrapping_add(self.completed_epochs as u64);
        seed_dropout(&self.model.device, epoch_seed)?;
        let order = train.shuffled(epoch_seed);
        let encodings = encode_all(&self.encoder, &order)?;
        let batches = bucketed_batches(&encodings, args.train_batch_size, epoch_seed);
        let first = self.step();
        let bar = logging::progress_bar(
            batches.len().min(schedule.total - first) as u64,
            "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}",
        );
        bar.set_prefix(format!("{}", self.completed_epochs + 1));
        let epoch_start = Instant::now();
        let (mut loss_sum, mut seen) = (0f64, 0usize);
        for (step, rows) in (first..schedule.total).zip(&batches) {
            let lr = lr_at(step, schedule.total, schedule.warmup, args.learning_rate);
            let batch = self.encoder.pad(&rows.iter().map(|&i| &encodings[i]).collect::<Vec<_>>());
            let labels: Vec<u32> = rows.iter().map(|&i| order[i].label).collect();
            let loss = train_step(&self.model, &mut self.optimizer, &batch, &labels, lr, args.max_grad_norm)
                .with_context(|| format!("step {} (epoch {})", step + 1, self.completed_epochs + 1))?;
            loss_sum += loss * rows.len() as f64;
            seen += rows.len();
            self.history.steps.push(StepLoss { step: step + 1, loss });
            let rate = seen as f64 / epoch_start.elapsed().as_secs_f64();
            bar.set_message(format!("loss {:.4} lr {lr:.2e} {rate:.1} samples/s", loss_sum / seen as f64));
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(EpochTraining {
            mean_loss: loss_sum / seen.max(1) as f64,
            samples_per_s: seen as f64 / epoch_start.elapsed().as_secs_f64(),
        })
    }

    /// Validation logits of the weights that are exported (the weight average where one is kept), and
    /// the last weights' accuracy when those differ.
    fn validate(&mut self, splits: &Splits) -> Result<(Vec<Vec<f32>>, Option<f64>)> {
        let (refs, batch) = (splits.validation_refs(), self.args.eval_batch_size);
        let logits = predict_logits(&self.model, &self.encoder, &refs, batch)?;
        if !self.optimizer.has_weight_average() {
            return Ok((logits, None));
        }
        let last_weights_accuracy = Evaluation::from_logits(&logits, &splits.gold()).metrics.accuracy;
        self.optimizer.swap_weight_average()?;
        let averaged = predict_logits(&self.model, &self.encoder, &refs, batch);
        self.optimizer.swap_weight_average()?;
        Ok((averaged?, Some(last_weights_accuracy)))
    }

    /// Records a finished epoch in the history and the log.
    fn record_epoch(&mut self, trained: EpochTraining, logits: &[Vec<f32>], gold: &[u32], last_weights: Option<f64>) {
        let eval = Evaluation::from_logits(logits, gold);
        self.completed_epochs += 1;
        let record = EpochRecord {
            epoch: self.completed_epochs,
            step: self.step(),
            train_loss: trained.mean_loss,
            validation_loss: metrics::nll(logits, gold, 1.0),
            validation_accuracy: eval.metrics.accuracy,
            validation_f1: eval.metrics.f1,
            validation_mcc: eval.metrics.mcc,
            last_weights_accuracy: last_weights,
            samples_per_s: trained.samples_per_s,
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
            last_weights.map_or(String::new(), |a| format!(" (weight average; last weights: accuracy {a:.4})"))
        );
        self.history.epochs.push(record);
    }

    /// Saves the epoch's checkpoint. One that cannot be written (a full disk) costs only the chance to
    /// resume from this epoch: training goes on, the epoch is not lost.
    fn checkpoint(&self) -> Result<()> {
        let args = self.args;
        let state = TrainerState {
            format_version: checkpoint::FORMAT_VERSION,
            completed_epochs: self.completed_epochs,
            global_step: self.step(),
            seed: args.seed,
            base_model_sha256: self.base_sha256.clone(),
            training_args: serde_json::to_value(args)?,
            history: self.history.clone(),
            files_sha256: Default::default(), // filled in by checkpoint::save
        };
        let (model, optimizer, tokenizer) = (&self.model, &self.optimizer, &self.files.tokenizer);
        match checkpoint::save(&args.output_dir, &state, model, optimizer, tokenizer, args.save_total_limit) {
            Ok(saved) => tracing::info!("checkpoint: {}", saved.display()),
            Err(err) => tracing::warn!("could not write the checkpoint of epoch {}: {err:#}", self.completed_epochs),
        }
        Ok(())
    }

    /// Writes the model folder from the exported weights (the weight average where one is kept) and
    /// their validation logits (`None`: computed here, for a resumed run with nothing left to train).
    fn export(mut self, splits: &Splits, last_logits: Option<Vec<Vec<f32>>>) -> Result<model_folder::Outcome> {
        let args = self.args;
        if self.optimizer.has_weight_average() {
            self.optimizer.swap_weight_average()?;
        }
        let logits = match last_logits {
            Some(logits) => logits,
            None => predict_logits(&self.model, &self.encoder, &splits.validation_refs(), args.eval_batch_size)?,
        };
        model_folder::Export {
            config: self.model.config.clone(),
            tokenizer: self.files.tokenizer.clone(),
            hf_weights: self.model.hf_safetensors()?,
            max_length: args.max_seq_length,
            validation_logits: logits,
            validation: splits.validation.examples.clone(),
            history: self.history,
            training_args: serde_json::to_value(args)?,
            source: args.model.display().to_string(),
            cross_validation: args.cross_validation.as_deref().map(crate::cv_report::headline).transpose()?,
            calibrate_on_unseen_accounts: args.calibrate_on_unseen_accounts,
        }
        .write(&args.output_dir)
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    let started = Instant::now();
    prepare_output(&args)?;
    let device = device(args.device)?;
    let mut files = ModelFiles::read_for_training(&args.model)?;
    if args.normalize_tweets {
        files.tokenizer = tweetguard::tweet_text::with_tweet_normalization(&files.tokenizer)?;
    }
    let mut config = tweetguard::BertConfig::from_json(&files.config)?;
    config.set_labels(&data::LABELS);
    let encoder = BertTokenizer::from_json(&files.tokenizer, args.max_seq_length)?;
    let splits = Splits::read(&args)?;
    tracing::info!(
        "training {} on {} rows, validating on {} rows, on {} in {}",
        args.model.display(),
        splits.train.examples.len(),
        splits.validation.examples.len(),
        device_name(&device),
        args.precision.as_str()
    );
    if args.precision == Precision::Bf16 && device.is_cpu() {
        tracing::warn!(
            "--precision bf16 is meant for CUDA: on the CPU it is slower than f32 (2.7x per MiniLM step in `bench`)"
        );
    }
    let base_sha256 = checkpoint::fingerprint(&files.weights);
    let Start { model, optimizer, completed_epochs, history } = start(&args, &files, config, device, &base_sha256)?;
    let mut run = Run { args: &args, files, encoder, model, optimizer, completed_epochs, history, base_sha256 };
    let schedule = Schedule::new(&args, splits.train.examples.len());
    let gold = splits.gold();
    let mut last_logits = None;
    while run.step() < schedule.total {
        let trained = run.train_epoch(&splits.train, &schedule)?;
        let (logits, last_weights) = run.validate(&splits)?;
        run.record_epoch(trained, &logits, &gold, last_weights);
        run.checkpoint()?;
        last_logits = Some(logits);
    }
    let outcome = run.export(&splits, last_logits)?;
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
}

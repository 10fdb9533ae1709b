//! `train`: fine-tune a BERT checkpoint for bot-vs-human classification, as `run_glue.py` does: AdamW
//! (weight decay except on biases and LayerNorm), linear warmup then linear decay, gradient clipping,
//! dropout, shuffled length-padded batches. Evaluates after each epoch, calibrates a temperature on the
//! validation split, and exports the model folder (docs/contracts.md section 2).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use indicatif::{ProgressBar, ProgressStyle};
use tweetguard::model::Mode;
use tweetguard::tokenize::{batches_by_length, TextEncoder};

use crate::data::{self, Dataset, Example};
use crate::export::{self, Evaluation};
use crate::model_dir::ModelFiles;
use crate::trainable::Trainable;

/// Where training math runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    Cpu,
    Cuda,
    /// CUDA when built with it and a GPU is present, else CPU.
    Auto,
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
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where training math runs.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Use only the first N training rows (quick runs).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Use only the first N validation rows.
    #[arg(long)]
    pub eval_limit: Option<usize>,
    /// Skip malformed rows (counted and reported) instead of stopping.
    #[arg(long)]
    pub skip_bad_rows: bool,
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

/// Scales gradients so their global L2 norm is at most `max_norm`; returns the norm before clipping.
fn clip_grad_norm(grads: &mut candle_core::backprop::GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    let squares = vars.iter().filter_map(|v| grads.get(v)).map(|g| g.sqr()?.sum_all()).collect::<candle_core::Result<Vec<_>>>()?;
    // One device-to-host read per step, not one per tensor.
    let norm = (Tensor::stack(&squares, 0)?.sum_all()?.to_scalar::<f32>()? as f64).sqrt();
    if norm > max_norm {
        let factor = max_norm / (norm + 1e-6);
        for var in vars {
            if let Some(g) = grads.remove(var) {
                grads.insert(var, (g * factor)?);
            }
        }
    }
    Ok(norm)
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
        batches.extend(batches_by_length(pool, batch_size).into_iter().map(|b| b.into_iter().map(|i| i + offset).collect()));
    }
    batches.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed));
    batches
}

/// Token ids of every example, computed once.
pub fn encode_all(encoder: &TextEncoder, examples: &[&Example]) -> Result<Vec<tweetguard::tokenize::Encoding>> {
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    Ok(encoder.encode(&texts)?)
}

/// f32 logits of `examples` with the model in inference mode (batched by length, returned in order).
pub fn predict_logits(model: &Trainable, encoder: &TextEncoder, examples: &[&Example], batch_size: usize) -> Result<Vec<Vec<f32>>> {
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

pub fn run(args: TrainArgs) -> Result<()> {
    let started = Instant::now();
    export::prepare_output_dir(&args.output_dir, args.overwrite_output_dir)?;
    let device = device(args.device)?;
    let files = ModelFiles::read_for_training(&args.model)?;
    let mut config = tweetguard::BertConfig::from_json(&files.config)?;
    config.set_labels(&data::LABELS);
    let encoder = TextEncoder::from_json(&files.tokenizer, args.max_seq_length)?;
    let train_path = args.train_file.clone().unwrap_or_else(|| data::tweepfake_dir().join("train.csv"));
    let val_path = args.validation_file.clone().unwrap_or_else(|| data::tweepfake_dir().join("validation.csv"));
    let train = Dataset::read(&train_path, args.skip_bad_rows, args.limit)?;
    let validation = Dataset::read(&val_path, args.skip_bad_rows, args.eval_limit)?;
    for set in [&train, &validation] {
        if !set.skipped.is_empty() {
            eprintln!("skipped {} malformed rows of {} (first: {})", set.skipped.len(), set.path.display(), set.skipped[0]);
        }
    }
    eprintln!(
        "training {} on {} rows, validating on {} rows, device {:?}",
        args.model.display(),
        train.examples.len(),
        validation.examples.len(),
        device
    );
    let model = Trainable::from_checkpoint(config, files.weights.clone(), args.seed, device)?;
    let named = model.named_vars();
    let vars: Vec<Var> = named.iter().map(|(_, v)| v.clone()).collect();
    let group = |decay: bool| named.iter().filter(|(n, _)| decays(n) == decay).map(|(_, v)| v.clone()).collect::<Vec<_>>();
    let params = |weight_decay| ParamsAdamW { lr: args.learning_rate, weight_decay, ..Default::default() };
    let mut optimizers = [AdamW::new(group(true), params(args.weight_decay))?, AdamW::new(group(false), params(0.0))?];

    let steps_per_epoch = train.examples.len().div_ceil(args.train_batch_size);
    let total_steps = ((steps_per_epoch as f64) * args.num_train_epochs).ceil().max(1.0) as usize;
    let warmup = (args.warmup_ratio * total_steps as f64) as usize;
    let val_refs: Vec<&Example> = validation.examples.iter().collect();
    let gold: Vec<u32> = val_refs.iter().map(|e| e.label).collect();
    let mut curve = Vec::new();
    let mut step = 0;
    let mut epoch = 0;
    let mut logits = Vec::new();
    while step < total_steps {
        let order = train.shuffled(args.seed.wrapping_add(epoch as u64));
        let encodings = encode_all(&encoder, &order)?;
        let batches = bucketed_batches(&encodings, args.train_batch_size, args.seed.wrapping_add(epoch as u64));
        let bar = ProgressBar::new(batches.len().min(total_steps - step) as u64);
        bar.set_style(ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}").expect("template"));
        bar.set_prefix(format!("{}", epoch + 1));
        let epoch_start = Instant::now();
        let (mut loss_sum, mut seen) = (0f64, 0usize);
        for rows in &batches {
            if step >= total_steps {
                break;
            }
            let lr = lr_at(step, total_steps, warmup, args.learning_rate);
            optimizers.iter_mut().for_each(|o| o.set_learning_rate(lr));
            let batch = encoder.pad(&rows.iter().map(|&i| &encodings[i]).collect::<Vec<_>>());
            let labels = Tensor::new(rows.iter().map(|&i| order[i].label).collect::<Vec<u32>>(), &model.device)?;
            let logits = model.forward(&batch, Mode::Train)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &labels)?;
            let loss_value = loss.to_scalar::<f32>()? as f64;
            if !loss_value.is_finite() {
                bail!("the loss became {loss_value} at step {step} (epoch {}): lower --learning-rate or check the data", epoch + 1);
            }
            let mut grads = loss.backward()?;
            clip_grad_norm(&mut grads, &vars, args.max_grad_norm)?;
            for opt in &mut optimizers {
                opt.step(&grads)?;
            }
            loss_sum += loss_value * rows.len() as f64;
            seen += rows.len();
            step += 1;
            curve.push((step, loss_value));
            let rate = seen as f64 / epoch_start.elapsed().as_secs_f64();
            bar.set_message(format!("loss {:.4} lr {lr:.2e} {rate:.1} samples/s", loss_sum / seen as f64));
            bar.inc(1);
        }
        bar.finish();
        logits = predict_logits(&model, &encoder, &val_refs, args.eval_batch_size)?;
        let eval = Evaluation::from_logits(&logits, &gold);
        eprintln!(
            "epoch {}: train loss {:.4}, {:.1} samples/s; validation accuracy {:.4} F1 {:.4} MCC {:.4}",
            epoch + 1,
            loss_sum / seen.max(1) as f64,
            seen as f64 / epoch_start.elapsed().as_secs_f64(),
            eval.metrics.accuracy,
            eval.metrics.f1,
            eval.metrics.mcc
        );
        epoch += 1;
    }
    // `logits` are the last epoch's validation logits: the model has not changed since.
    let outcome = export::Export {
        config: model.config.clone(),
        tokenizer: files.tokenizer.clone(),
        hf_weights: model.hf_safetensors()?,
        max_length: args.max_seq_length,
        validation_logits: logits,
        validation: validation.examples.clone(),
        loss_curve: curve,
        training_args: serde_json::to_value(&args)?,
        source: args.model.display().to_string(),
    }
    .write(&args.output_dir)?;
    eprintln!("{}", outcome.summary());
    eprintln!("done in {:.1} s; model folder: {}", started.elapsed().as_secs_f64(), args.output_dir.join("model").display());
    Ok(())
}

#[cfg(test)]
mod tests {
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

    /// Every trainable tensor receives a non-zero gradient (candle's fused LayerNorm would block them).
    #[test]
    fn every_parameter_gets_a_gradient() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny");
        let files = ModelFiles::read_for_training(&dir).unwrap();
        let config = tweetguard::BertConfig::from_json(&files.config).unwrap();
        assert_eq!(files.weights_name, "model.safetensors");
        let model = Trainable::from_checkpoint(config, files.weights.clone(), 0, Device::Cpu).unwrap();
        let encoder = TextEncoder::from_json(&files.tokenizer, 32).unwrap();
        let batch = encoder.encode_batch(&["a bot wrote this", "i wrote this myself, honestly", "hi"]).unwrap();
        let logits = model.forward(&batch, Mode::Train).unwrap();
        let loss = candle_nn::loss::cross_entropy(&logits, &Tensor::new(&[1u32, 0, 1], &Device::Cpu).unwrap()).unwrap();
        let grads = loss.backward().unwrap();
        let named = model.named_vars();
        assert_eq!(named.len(), 5 + 16 * 2 + 4, "embeddings 5, 16 per layer, pooler 2, classifier 2");
        for (name, var) in &named {
            let g = grads.get(var).unwrap_or_else(|| panic!("{name} has no gradient"));
            let norm = g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(norm > 0.0 && norm.is_finite(), "{name}: gradient norm {norm}");
        }
    }
}

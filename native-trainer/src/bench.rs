//! `bench`: how fast training and inference run on this machine.
//!
//! - Shapes mode (no `--model`): a BERT of a preset or given shape with random weights. Training is timed
//!   as whole optimisation steps (forward with dropout, backward, clipping, AdamW) through the trainer's
//!   model on `--device`, in each `--precision`; inference as forward passes of the core crate's backend
//!   (`--backend`, chosen as `Classifier` chooses) over random token ids, with the f32 weights and the
//!   same weights in int8, plus the trainer's own f32 inference when `--device` is a GPU.
//! - Model mode (`--model DIR`): a model folder as `predict` loads it, timed on real texts: load time, then
//!   tweets/s and the p50/p95 latency of `classify` calls of each `--batch-size`.
//!
//! Prints a table, or one JSON object with `--json`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use tweetguard::backend::webgpu::ApiCounts;
use tweetguard::backend::{BackendChoice, CpuEngine, Engine, EngineOptions};
use tweetguard::model::Mode;
use tweetguard::tokenize::EncodedBatch;
use tweetguard::weights::quant;
use tweetguard::{BertConfig, HeadInit, LoadOptions};

use crate::data::LABELS;
use crate::device::{self, DeviceChoice};
use crate::input::{self, InputFormat};
use crate::model_dir::ModelFiles;
use crate::step;
use crate::trainable::{Precision, Trainable};

/// Shapes of well-known checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// all-MiniLM-L6-v2: 6 layers, hidden 384, 12 heads, intermediate 1536.
    Minilm,
    /// bert-base-uncased: 12 layers, hidden 768, 12 heads, intermediate 3072.
    BertBase,
}

/// What shapes mode times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchMode {
    Train,
    Infer,
    Both,
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Model mode: time this model folder (exported OUT/, OUT/model/ or an HF checkpoint) on real texts.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Model mode: texts to classify (`-` for standard input); default `$TWEEPFAKE_DIR/validation.csv`.
    #[arg(long, requires = "model")]
    input: Option<String>,
    /// Model mode: layout of the input; default csv for `.csv` files, lines otherwise.
    #[arg(long, value_enum, requires = "model")]
    format: Option<InputFormat>,
    /// Model mode: CSV column holding the text.
    #[arg(long, default_value = "text")]
    text_column: String,
    /// Model mode: use the first N texts.
    #[arg(long, default_value_t = 512)]
    limit: usize,
    /// Model mode: texts per `classify` call; repeat or comma-separate for several (default 1 and 32).
    #[arg(long, value_delimiter = ',', requires = "model")]
    batch_size: Vec<usize>,
    /// Model mode: maximum tokens per text, special tokens included (default 128).
    #[arg(long, requires = "model")]
    max_length: Option<usize>,

    /// Shapes mode: the shape to start from (default minilm); the flags below override parts of it.
    #[arg(long, value_enum, conflicts_with = "model")]
    preset: Option<Preset>,
    /// Shapes mode: encoder layers.
    #[arg(long, conflicts_with = "model")]
    layers: Option<usize>,
    /// Shapes mode: hidden size.
    #[arg(long, conflicts_with = "model")]
    hidden: Option<usize>,
    /// Shapes mode: attention heads (default: the preset's, or hidden / 64 when --hidden is given).
    #[arg(long, conflicts_with = "model")]
    heads: Option<usize>,
    /// Shapes mode: feed-forward size (default: the preset's, or 4 * hidden when --hidden is given).
    #[arg(long, conflicts_with = "model")]
    intermediate: Option<usize>,
    /// Shapes mode: vocabulary size.
    #[arg(long, default_value_t = 30522, conflicts_with = "model")]
    vocab: usize,
    /// Shapes mode: tokens per sequence.
    #[arg(long, default_value_t = 128, conflicts_with = "model")]
    seq_len: usize,
    /// Shapes mode: sequences per batch.
    #[arg(long, default_value_t = 32, conflicts_with = "model")]
    batch: usize,
    /// Shapes mode: time training steps, inference, or both.
    #[arg(long, value_enum, default_value_t = BenchMode::Both, conflicts_with = "model")]
    mode: BenchMode,
    /// Shapes mode: where training math runs.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto, conflicts_with = "model")]
    device: DeviceChoice,
    /// Shapes mode: precision of the training steps; repeat or comma-separate to time several.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "f32", conflicts_with = "model")]
    precision: Vec<Precision>,

    /// Inference backend: auto, webgpu or cpu.
    #[arg(long, default_value = "auto")]
    backend: BackendChoice,
    /// CPU engine: auto (int8 engine for int8 models, f32 reference otherwise), int8 or reference.
    #[arg(long, default_value = "auto")]
    cpu_engine: CpuEngine,
    /// Shapes mode: also time each kernel of one pass (WebGPU: timestamp queries; the int8 CPU engine:
    /// the wall time of each operation).
    #[arg(long, conflicts_with = "model")]
    profile: bool,
    /// Model mode: count the WebGPU calls of each timed classify call (objects created, uploads, submits,
    /// readbacks) and print the most any call made.
    #[arg(long, requires = "model")]
    counters: bool,
    /// Untimed iterations before timing (shapes mode: steps or batches; model mode: calls).
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Shapes mode: timed iterations per measurement.
    #[arg(long, default_value_t = 10)]
    iters: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// The model's dimensions in shapes mode.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Shape {
    layers: usize,
    hidden: usize,
    heads: usize,
    intermediate: usize,
    vocab: usize,
    seq_len: usize,
    batch: usize,
}

impl Shape {
    /// The preset's shape with the explicit flags applied.
    fn from_args(args: &BenchArgs) -> Self {
        let (layers, hidden, heads, intermediate) = match args.preset.unwrap_or(Preset::Minilm) {
            Preset::Minilm => (6, 384, 12, 1536),
            Preset::BertBase => (12, 768, 12, 3072),
        };
        let custom_hidden = args.hidden;
        let hidden = custom_hidden.unwrap_or(hidden);
        Shape {
            layers: args.layers.unwrap_or(layers),
            hidden,
            heads: args.heads.unwrap_or(if custom_hidden.is_some() { (hidden / 64).max(1) } else { heads }),
            intermediate: args.intermediate.unwrap_or(if custom_hidden.is_some() { 4 * hidden } else { intermediate }),
            vocab: args.vocab,
            seq_len: args.seq_len,
            batch: args.batch,
        }
    }

    /// A BERT classifier config of this shape with the product's labels (validated).
    fn config(&self) -> Result<BertConfig> {
        let json = serde_json::json!({
            "vocab_size": self.vocab,
            "hidden_size": self.hidden,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "intermediate_size": self.intermediate,
            "max_position_embeddings": self.seq_len.max(512),
            "id2label": {"0": LABELS[0], "1": LABELS[1]},
        });
        BertConfig::from_json(json.to_string().as_bytes()).context("the benchmark shape is not a valid BERT")
    }

    /// A batch of random token ids, every position attended.
    fn random_batch(&self, rng: &mut impl Rng) -> EncodedBatch {
        let cells = self.batch * self.seq_len;
        EncodedBatch {
            input_ids: (0..cells).map(|_| rng.random_range(0..self.vocab as u32)).collect(),
            type_ids: vec![0; cells],
            attention_mask: vec![1; cells],
            batch_size: self.batch,
            seq_len: self.seq_len,
            truncated: vec![false; self.batch],
        }
    }
}

#[derive(Debug, serde::Serialize)]
pub struct TrainTiming {
    device: String,
    precision: Precision,
    ms_per_step: f64,
    samples_per_s: f64,
}

#[derive(Debug, serde::Serialize)]
pub struct InferTiming {
    dtype: &'static str,
    backend: &'static str,
    /// Why the backend that ran is not the one asked for, if it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback_reason: Option<String>,
    ms_per_batch: f64,
    sequences_per_s: f64,
}

/// Time of one kernel role over one pass (`--profile`): GPU time on WebGPU, wall time on the int8 CPU engine.
#[derive(Debug, serde::Serialize)]
pub struct KernelTiming {
    dtype: &'static str,
    kernel: &'static str,
    dispatches: usize,
    ms: f64,
    /// Fraction of the pass's summed kernel time.
    share: f64,
}

#[derive(Debug, serde::Serialize)]
pub struct ShapesReport {
    mode: &'static str,
    shape: Shape,
    warmup: usize,
    iters: usize,
    train: Vec<TrainTiming>,
    infer: Vec<InferTiming>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    profile: Vec<KernelTiming>,
}

#[derive(Debug, serde::Serialize)]
pub struct CallTiming {
    batch_size: usize,
    calls: usize,
    tweets_per_s: f64,
    p50_ms: f64,
    p95_ms: f64,
    /// With `--counters` on WebGPU: the most of each WebGPU call any timed classify call made.
    #[serde(skip_serializing_if = "Option::is_none")]
    webgpu_calls: Option<ApiCounts>,
}

#[derive(Debug, serde::Serialize)]
pub struct ModelReport {
    mode: &'static str,
    model: String,
    weights: &'static str,
    dtype: String,
    backend: String,
    /// Why the backend that ran is not the one asked for, if it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback_reason: Option<String>,
    load_ms: f64,
    texts: usize,
    calls: Vec<CallTiming>,
}

#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Report {
    Shapes(ShapesReport),
    Model(ModelReport),
}

pub fn run(args: BenchArgs) -> Result<()> {
    let json = args.json;
    let report = measure(args)?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// Runs the benchmark the arguments describe.
pub fn measure(args: BenchArgs) -> Result<Report> {
    match &args.model {
        Some(dir) => bench_model(dir, &args).map(Report::Model),
        None => bench_shapes(&args).map(Report::Shapes),
    }
}

/// Mean seconds per call of `iteration` over `iters` timed calls, after `warmup` untimed ones.
fn seconds_per_iteration(warmup: usize, iters: usize, mut iteration: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..warmup {
        iteration()?;
    }
    let started = Instant::now();
    for _ in 0..iters.max(1) {
        iteration()?;
    }
    Ok(started.elapsed().as_secs_f64() / iters.max(1) as f64)
}

fn bench_shapes(args: &BenchArgs) -> Result<ShapesReport> {
    let shape = Shape::from_args(args);
    let config = shape.config()?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let batch = shape.random_batch(&mut rng);
    let trains = matches!(args.mode, BenchMode::Train | BenchMode::Both);
    let device = device::device(args.device)?;
    let mut model = Trainable::random(config.clone(), device)?;

    let mut infer = Vec::new();
    let mut profile = Vec::new();
    if matches!(args.mode, BenchMode::Infer | BenchMode::Both) {
        let f32_weights = model.hf_safetensors()?;
        let int8_weights = quant::quantize_safetensors(&f32_weights)?;
        for (dtype, weights) in [("f32", f32_weights), ("int8", int8_weights)] {
            let options = EngineOptions { backend: args.backend, cpu: args.cpu_engine, head: HeadInit::Require };
            let load = Engine::load(weights, &config, LABELS.len(), &options, &batch);
            let (engine, _) = pollster::block_on(load).with_context(|| format!("loading the {dtype} weights"))?;
            let seconds = seconds_per_iteration(args.warmup, args.iters, || {
                Ok(pollster::block_on(engine.logits(&batch)).map(drop)?)
            })?;
            infer.push(InferTiming {
                dtype,
                backend: engine.kind().as_str(),
                fallback_reason: engine.fallback_reason(),
                ms_per_batch: seconds * 1e3,
                sequences_per_s: shape.batch as f64 / seconds,
            });
            if args.profile {
                match pollster::block_on(engine.profile(&batch)) {
                    Ok(Some(pass)) => profile.extend(kernel_timings(dtype, &pass.kernels)),
                    Ok(None) => tracing::warn!(
                        "--profile: the {dtype} model runs on the f32 reference, which does not time its kernels"
                    ),
                    Err(err) => tracing::warn!("--profile: {err}"),
                }
            }
        }
    }

    if !model.device.is_cpu() {
        // The trainer's own inference (validation) on the training device, for comparison with the
        // core crate's backends above.
        let seconds = seconds_per_iteration(args.warmup, args.iters, || {
            drop(model.forward(&batch, Mode::Infer)?);
            Ok(model.device.synchronize()?)
        })?;
        infer.push(InferTiming {
            dtype: "f32",
            backend: "candle-cuda",
            fallback_reason: None,
            ms_per_batch: seconds * 1e3,
            sequences_per_s: shape.batch as f64 / seconds,
        });
    }

    let mut train = Vec::new();
    if trains {
        let labels: Vec<u32> = (0..shape.batch).map(|_| rng.random_range(0..LABELS.len() as u32)).collect();
        for &precision in &args.precision {
            // The same model for each precision: its weights move between measurements, which changes
            // no timing.
            model.precision = precision;
            let mut optimizer = step::optimizer(&model, 0.01, None, None)?;
            let seconds = seconds_per_iteration(args.warmup, args.iters, || {
                step::train_step(&model, &mut optimizer, &batch, &labels, 1e-5, 1.0)?;
                // The step's last kernels may still be queued on a GPU: count them in.
                Ok(model.device.synchronize()?)
            })?;
            train.push(TrainTiming {
                device: device::device_name(&model.device).to_string(),
                precision,
                ms_per_step: seconds * 1e3,
                samples_per_s: shape.batch as f64 / seconds,
            });
        }
    }
    Ok(ShapesReport { mode: "shapes", shape, warmup: args.warmup, iters: args.iters.max(1), train, infer, profile })
}

/// One row per kernel role (in first-dispatch order): its dispatches and summed time.
fn kernel_timings(dtype: &'static str, dispatches: &[(&'static str, f64)]) -> Vec<KernelTiming> {
    let total: f64 = dispatches.iter().map(|(_, ms)| ms).sum();
    let mut rows: Vec<KernelTiming> = Vec::new();
    for &(kernel, ms) in dispatches {
        match rows.iter_mut().find(|r| r.kernel == kernel) {
            Some(row) => {
                row.dispatches += 1;
                row.ms += ms;
            }
            None => rows.push(KernelTiming { dtype, kernel, dispatches: 1, ms, share: 0.0 }),
        }
    }
    for row in &mut rows {
        row.share = if total > 0.0 { row.ms / total } else { 0.0 };
    }
    rows
}

/// The value at quantile `q` of sorted values (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or(0.0)
}

/// The texts of model mode: `--input` (or the validation split), the first `--limit` of them.
fn bench_texts(args: &BenchArgs) -> Result<Vec<String>> {
    let path = match &args.input {
        Some(path) => path.clone(),
        None => crate::data::default_validation_file().display().to_string(),
    };
    let format = args.format.unwrap_or(if Path::new(&path).extension().is_some_and(|e| e == "csv") {
        InputFormat::Csv
    } else {
        InputFormat::Lines
    });
    let mut texts = input::texts(&input::read_source(&path)?, &path, format, &args.text_column)?;
    texts.truncate(args.limit);
    if texts.is_empty() {
        bail!("{path} has no texts to time");
    }
    Ok(texts)
}

fn bench_model(dir: &Path, args: &BenchArgs) -> Result<ModelReport> {
    let texts = bench_texts(args)?;
    let batch_sizes = if args.batch_size.is_empty() { vec![1, 32] } else { args.batch_size.clone() };
    if batch_sizes.contains(&0) {
        bail!("--batch-size must be at least 1");
    }
    let load_start = Instant::now();
    let files = ModelFiles::read(dir)?;
    // The backend's default passes (no batch size), as `predict` and the page run them.
    let options = LoadOptions {
        backend: args.backend,
        max_length: args.max_length,
        cpu_engine: args.cpu_engine,
        ..Default::default()
    };
    let classifier = files.classifier(options)?;
    let load_ms = load_start.elapsed().as_secs_f64() * 1e3;

    let mut calls = Vec::new();
    let mut fallback_reason = None;
    for &size in &batch_sizes {
        let chunks: Vec<&[String]> = texts.chunks(size).collect();
        for chunk in chunks.iter().cycle().take(args.warmup) {
            pollster::block_on(classifier.classify(chunk))?;
        }
        let mut latencies = Vec::with_capacity(chunks.len());
        let mut webgpu_calls = None;
        for chunk in &chunks {
            let before = classifier.gpu_counts();
            let started = Instant::now();
            let output = pollster::block_on(classifier.classify(chunk))?;
            latencies.push(started.elapsed().as_secs_f64() * 1e3);
            fallback_reason = output.fallback_reason;
            if let (true, Some(before), Some(after)) = (args.counters, before, classifier.gpu_counts()) {
                let call = after.since(before);
                webgpu_calls = Some(webgpu_calls.map_or(call, |most: ApiCounts| most.most(call)));
            }
        }
        let total_s = latencies.iter().sum::<f64>() / 1e3;
        latencies.sort_by(f64::total_cmp);
        calls.push(CallTiming {
            batch_size: size,
            calls: chunks.len(),
            tweets_per_s: texts.len() as f64 / total_s,
            p50_ms: quantile(&latencies, 0.5),
            p95_ms: quantile(&latencies, 0.95),
            webgpu_calls,
        });
    }
    let info = classifier.info();
    Ok(ModelReport {
        mode: "model",
        model: files.dir.display().to_string(),
        weights: files.weights_name,
        dtype: info.dtype,
        backend: info.backend,
        fallback_reason,
        load_ms,
        texts: texts.len(),
        calls,
    })
}

impl Report {
    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        match self {
            Report::Shapes(r) => {
                let s = &r.shape;
                let _ = writeln!(
                    out,
                    "BERT {} layers, hidden {}, {} heads, intermediate {}, vocab {}; batch {} x {} tokens; {} warm-up + {} timed iterations\n",
                    s.layers, s.hidden, s.heads, s.intermediate, s.vocab, s.batch, s.seq_len, r.warmup, r.iters
                );
                let _ = writeln!(out, "{:<16} {:<8} {:>12} {:>14}", "what", "where", "ms/iter", "sequences/s");
                for t in &r.train {
                    let what = format!("train step {}", t.precision.as_str());
                    let _ =
                        writeln!(out, "{what:<16} {:<8} {:>12.1} {:>14.1}", t.device, t.ms_per_step, t.samples_per_s);
                }
                for i in &r.infer {
                    let _ = writeln!(
                        out,
                        "{:<16} {:<8} {:>12.1} {:>14.1}",
                        format!("inference {}", i.dtype),
                        i.backend,
                        i.ms_per_batch,
                        i.sequences_per_s
                    );
                }
                if !r.profile.is_empty() {
                    let _ = writeln!(out, "\nGPU time per kernel, one pass (timestamp queries):");
                    let _ = writeln!(
                        out,
                        "{:<6} {:<26} {:>10} {:>10} {:>7}",
                        "dtype", "kernel", "dispatches", "ms", "share"
                    );
                    for k in &r.profile {
                        let _ = writeln!(
                            out,
                            "{:<6} {:<26} {:>10} {:>10.3} {:>6.1}%",
                            k.dtype,
                            k.kernel,
                            k.dispatches,
                            k.ms,
                            k.share * 100.0
                        );
                    }
                }
                for reason in r
                    .infer
                    .iter()
                    .filter_map(|i| i.fallback_reason.as_deref())
                    .collect::<std::collections::BTreeSet<_>>()
                {
                    let _ = writeln!(out, "\nnote: {reason}");
                }
            }
            Report::Model(r) => {
                let _ = writeln!(
                    out,
                    "{} ({}, {}) on {}: loaded in {:.1} ms; {} texts\n",
                    r.model, r.weights, r.dtype, r.backend, r.load_ms, r.texts
                );
                let _ = writeln!(
                    out,
                    "{:>10} {:>7} {:>10} {:>9} {:>9}",
                    "batch size", "calls", "tweets/s", "p50 ms", "p95 ms"
                );
                for c in &r.calls {
                    let _ = writeln!(
                        out,
                        "{:>10} {:>7} {:>10.1} {:>9.2} {:>9.2}",
                        c.batch_size, c.calls, c.tweets_per_s, c.p50_ms, c.p95_ms
                    );
                }
                for c in r.calls.iter().filter(|c| c.webgpu_calls.is_some()) {
                    let n = c.webgpu_calls.expect("filtered");
                    let _ = writeln!(
                        out,
                        "WebGPU calls per classify call of {} (most): {} buffers, {} bind groups, {} layouts, {} pipelines, \
                         {} shader modules created; {} uploads, {} submits, {} readbacks",
                        c.batch_size,
                        n.buffers,
                        n.bind_groups,
                        n.layouts,
                        n.pipelines,
                        n.shader_modules,
                        n.uploads,
                        n.submits,
                        n.readbacks
                    );
                }
                if let Some(reason) = &r.fallback_reason {
                    let _ = writeln!(out, "\nnote: {reason}");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(flags: &[&str]) -> std::result::Result<BenchArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(flags.iter().copied())).map(|cli| cli.args)
    }

    fn positive(value: &serde_json::Value, field: &str) {
        let number = value[field].as_f64().unwrap_or_else(|| panic!("{field} missing in {value}"));
        assert!(number > 0.0 && number.is_finite(), "{field} = {number} in {value}");
    }

    #[test]
    fn shapes_mode_times_training_and_both_weight_types() {
        let args = parse(&[
            "--layers",
            "1",
            "--hidden",
            "32",
            "--seq-len",
            "8",
            "--batch",
            "2",
            "--iters",
            "1",
            "--device",
            "cpu",
            "--backend",
            "cpu",
            "--precision",
            "f32,bf16",
        ])
        .unwrap();
        let report = measure(args).unwrap();
        let table = report.table();
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["mode"], "shapes");
        assert_eq!(
            json["shape"],
            serde_json::json!({"layers": 1, "hidden": 32, "heads": 1, "intermediate": 128, "vocab": 30522, "seq_len": 8, "batch": 2})
        );
        let train = json["train"].as_array().unwrap();
        let runs: Vec<_> =
            train.iter().map(|t| (t["device"].as_str().unwrap(), t["precision"].as_str().unwrap())).collect();
        assert_eq!(runs, [("cpu", "f32"), ("cpu", "bf16")]);
        for timing in train {
            positive(timing, "ms_per_step");
            positive(timing, "samples_per_s");
        }
        let infer = json["infer"].as_array().unwrap();
        assert_eq!(infer.iter().map(|i| i["dtype"].as_str().unwrap()).collect::<Vec<_>>(), ["f32", "int8"]);
        for timing in infer {
            assert_eq!(timing["backend"], "cpu");
            positive(timing, "ms_per_batch");
            positive(timing, "sequences_per_s");
        }
        assert!(
            table.contains("train step bf16") && table.contains("inference int8") && table.contains("hidden 32"),
            "{table}"
        );
    }

    #[test]
    fn presets_and_overrides() {
        let shape = |flags: &[&str]| Shape::from_args(&parse(flags).unwrap());
        assert_eq!(
            (shape(&[]).layers, shape(&[]).hidden, shape(&[]).heads, shape(&[]).intermediate),
            (6, 384, 12, 1536)
        );
        let base = shape(&["--preset", "bert-base", "--layers", "2"]);
        assert_eq!((base.layers, base.hidden, base.heads, base.intermediate), (2, 768, 12, 3072));
        let custom = shape(&["--hidden", "256", "--heads", "8"]);
        assert_eq!((custom.heads, custom.intermediate), (8, 1024));
        assert!(Shape { heads: 5, ..custom }.config().unwrap_err().to_string().contains("not a valid BERT"));
        let only_infer = measure(
            parse(&[
                "--layers",
                "1",
                "--hidden",
                "32",
                "--seq-len",
                "4",
                "--batch",
                "1",
                "--iters",
                "1",
                "--warmup",
                "0",
                "--mode",
                "infer",
                "--vocab",
                "64",
                "--backend",
                "cpu",
            ])
            .unwrap(),
        )
        .unwrap();
        assert!(matches!(only_infer, Report::Shapes(ShapesReport { ref train, .. }) if train.is_empty()));
    }

    #[test]
    fn model_mode_reports_load_time_throughput_and_latencies() {
        let texts = std::env::temp_dir().join(format!("tg-bench-{}.txt", std::process::id()));
        std::fs::write(
            &texts,
            "just setting up my twttr\nhello world\n\nbuy followers now\nlunch with my sister\nlast one\n",
        )
        .unwrap();
        let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny");
        let args = parse(&[
            "--model",
            tiny.to_str().unwrap(),
            "--input",
            texts.to_str().unwrap(),
            "--backend",
            "cpu",
            "--warmup",
            "1",
        ])
        .unwrap();
        let report = measure(args).unwrap();
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["mode"], "model");
        assert_eq!(json["texts"], 5);
        assert_eq!(json["weights"], "model.int8.safetensors");
        positive(&json, "load_ms");
        let calls = json["calls"].as_array().unwrap();
        assert_eq!(
            calls.iter().map(|c| (c["batch_size"].as_u64().unwrap(), c["calls"].as_u64().unwrap())).collect::<Vec<_>>(),
            [(1, 5), (32, 1)]
        );
        for timing in calls {
            for field in ["tweets_per_s", "p50_ms", "p95_ms"] {
                positive(timing, field);
            }
            assert!(timing["p95_ms"].as_f64() >= timing["p50_ms"].as_f64());
        }
        assert!(report.table().contains("tweets/s"));
        let _ = std::fs::remove_file(&texts);
    }

    #[test]
    fn model_and_shape_flags_do_not_mix() {
        assert!(parse(&["--model", "m", "--layers", "2"]).is_err());
        assert!(parse(&["--batch-size", "4"]).is_err());
        assert_eq!(
            parse(&["--model", "m", "--batch-size", "1,8", "--batch-size", "64"]).unwrap().batch_size,
            [1, 8, 64]
        );
    }

    #[test]
    fn kernel_timings_sum_each_role_in_first_dispatch_order() {
        let rows = kernel_timings("int8", &[("qkv", 1.0), ("attention", 2.0), ("qkv", 3.0), ("classifier", 4.0)]);
        let got: Vec<_> = rows.iter().map(|r| (r.kernel, r.dispatches, r.ms, r.share)).collect();
        assert_eq!(got, [("qkv", 2, 4.0, 0.4), ("attention", 1, 2.0, 0.2), ("classifier", 1, 4.0, 0.4)]);
        assert!(kernel_timings("f32", &[("qkv", 0.0)]).iter().all(|r| r.share == 0.0));
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let sorted: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!((quantile(&sorted, 0.5), quantile(&sorted, 0.95)), (10.0, 19.0));
        assert_eq!(quantile(&[3.0], 0.95), 3.0);
    }
}

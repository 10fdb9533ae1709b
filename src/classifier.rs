//! The public Rust API: load a classifier from the bytes of a model folder, classify texts, describe the
//! model. The JS API in [`crate::bindings`] is a thin layer over this, with the same shape.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::backend::{BackendChoice, BackendKind, CpuEngine, Engine, EngineOptions};
use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::postprocess::{self, Prediction};
use crate::tokenize::{batches_by_length, BertTokenizer, EncodedBatch, DEFAULT_MAX_LENGTH};
use crate::weights::{stored_dtype, HeadInit, WeightDtype};

/// A text for the load-time self-check of a GPU against the CPU path.
const PROBE_TEXTS: [&str; 2] =
    ["just setting up my twttr", "Check out this new article about machine learning and data https://t.co/x"];

/// The three files a classifier is built from, as bytes (the core never touches files or the network).
/// The weights may be lent or given: given (`Cow::Owned`, as the browser does), the loader packs them
/// without a copy, so the wasm heap never holds two of them.
#[derive(Debug, Clone)]
pub struct ModelBytes<'a> {
    /// `config.json`
    pub config: &'a [u8],
    /// `tokenizer.json`
    pub tokenizer: &'a [u8],
    /// `model.int8.safetensors`, or f32/f16 `model.safetensors` with HF names.
    pub weights: Cow<'a, [u8]>,
}

/// Options for [`Classifier::load`].
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    pub backend: BackendChoice,
    /// Token limit per text, special tokens included; defaults to 128, capped by the model's positions.
    pub max_length: Option<usize>,
    /// Softmax temperature from calibration (the manifest's); 1.0 when absent.
    pub temperature: Option<f32>,
    /// Texts per forward pass (texts of one call are sorted by length first); `None` picks the
    /// backend's default ([`Engine::default_batch`]).
    pub batch_size: Option<usize>,
    /// Which CPU engine runs the model on the CPU path.
    pub cpu_engine: CpuEngine,
    /// What to do with a checkpoint that has no classifier head.
    pub head: HeadInit,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            backend: BackendChoice::Auto,
            max_length: None,
            temperature: None,
            batch_size: None,
            cpu_engine: CpuEngine::Auto,
            head: HeadInit::Require,
        }
    }
}

/// Timings of one `classify` call, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    pub tokenize_ms: f64,
    pub infer_ms: f64,
}

/// The result of one `classify` call.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Classification {
    pub backend: BackendKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    pub timings: Timings,
    pub results: Vec<Prediction>,
}

/// What a loaded classifier is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    pub labels: Vec<String>,
    pub max_length: usize,
    pub dtype: String,
    pub backend: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
    /// What computes the CPU path's logits: `"int8 <instruction set>"` (e.g. `wasm-relaxed-simd`,
    /// `avx512-vnni`) or `"f32 reference"`; absent while only the GPU is loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_kernel: Option<String>,
    /// Why those kernels, where a race at load chose them (the relaxed-SIMD build on a CPU whose speed
    /// decides between relaxed SIMD and `simd128`), with the times.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_kernel_reason: Option<String>,
    /// False in a development build of the crate (debug assertions on, our code barely optimised): the
    /// benchmark page refuses to time one.
    pub optimized: bool,
    /// True when the head was freshly initialised: the labels mean nothing yet.
    pub untrained_head: bool,
    pub temperature: f32,
    /// Bytes of wasm linear memory when `info()` is called: the heap's high-water mark so far (wasm memory
    /// never shrinks), weights, tokenizer and arena included; absent natively.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heap_bytes: Option<u64>,
}

/// A BERT sequence classifier ready to run.
pub struct Classifier {
    labels: Vec<String>,
    tokenizer: BertTokenizer,
    engine: Engine,
    dtype: WeightDtype,
    temperature: f32,
    batch_size: Option<usize>,
    untrained_head: bool,
}

impl Classifier {
    /// Parses, validates and loads a model on the backend the options ask for (WebGPU needs an async
    /// adapter request, hence `async`; natively, `pollster::block_on` it). Every mismatch between config,
    /// tokenizer and weights is an error here, so `classify` cannot fail on them later.
    pub async fn load(bytes: ModelBytes<'_>, options: LoadOptions) -> Result<Self> {
        let config = BertConfig::from_json(bytes.config)?;
        let labels = config.labels()?;
        let max_length = options.max_length.unwrap_or(DEFAULT_MAX_LENGTH);
        if max_length > config.max_position_embeddings {
            return Err(Error::Input(format!(
                "max_length {max_length} exceeds the model's {} positions",
                config.max_position_embeddings
            )));
        }
        let temperature = options.temperature.unwrap_or(1.0);
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(Error::Input(format!("temperature must be a positive number, got {temperature}")));
        }
        if options.batch_size == Some(0) {
            return Err(Error::Input("batch_size must be at least 1".into()));
        }
        let tokenizer = BertTokenizer::from_json(bytes.tokenizer, max_length)?;
        let max_id = tokenizer.max_token_id() as usize;
        if max_id >= config.vocab_size {
            return Err(Error::Tokenizer(format!(
                "the tokenizer produces ids up to {max_id} but the model's embedding table has {} rows: \
                 tokenizer.json and config.json do not belong together",
                config.vocab_size
            )));
        }
        let weights = bytes.weights.into_owned();
        let dtype = stored_dtype(&weights)?;
        let probe = tokenizer.pad(&tokenizer.encode(&PROBE_TEXTS)?.iter().collect::<Vec<_>>());
        let engine_options = EngineOptions { backend: options.backend, cpu: options.cpu_engine, head: options.head };
        let (engine, untrained_head) = Engine::load(weights, &config, labels.len(), &engine_options, &probe).await?;
        Ok(Self { labels, tokenizer, engine, dtype, temperature, batch_size: options.batch_size, untrained_head })
    }

    /// Describes the loaded model.
    pub fn info(&self) -> ModelInfo {
        ModelInfo {
            labels: self.labels.clone(),
            max_length: self.tokenizer.max_length(),
            dtype: format!("{:?}", self.dtype).to_lowercase(),
            backend: self.engine.kind().as_str().to_string(),
            adapter: self.engine.adapter(),
            cpu_kernel: self.engine.cpu_kernel(),
            cpu_kernel_reason: self.engine.cpu_kernel_reason(),
            optimized: !cfg!(debug_assertions),
            untrained_head: self.untrained_head,
            temperature: self.temperature,
            heap_bytes: wasm_heap_bytes(),
        }
    }

    /// Destroys the GPU device as a driver reset would, so that tests can check the CPU fallback.
    #[doc(hidden)]
    pub fn simulate_device_loss(&self) {
        self.engine.simulate_device_loss();
    }

    /// The tokenizer, for callers that need token ids.
    pub fn tokenizer(&self) -> &BertTokenizer {
        &self.tokenizer
    }

    /// The WebGPU calls made on this classifier's GPU device so far (`None` without one): read before and
    /// after a call to see what it cost (`bench --counters`, and the tests of the per-call budget).
    pub fn gpu_counts(&self) -> Option<crate::backend::webgpu::ApiCounts> {
        self.engine.gpu_counts()
    }

    /// The time of each kernel of one pass over `texts` as one batch (benchmarks): GPU time per dispatch
    /// on WebGPU, wall time per operation on the int8 CPU engine; empty on the f32 reference.
    pub async fn profile<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<(&'static str, f64)>> {
        let texts: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings = self.tokenizer.encode(&texts)?;
        let batch = self.tokenizer.pad(&encodings.iter().collect::<Vec<_>>());
        Ok(self.engine.profile(&batch).await?.map(|p| p.kernels).unwrap_or_default())
    }

    /// Classifies texts. Texts are grouped into batches of similar length (less padding), and results
    /// come back in the input order. Any text is accepted: empty texts classify as `[CLS] [SEP]`, long
    /// ones are truncated and flagged.
    pub async fn classify<S: AsRef<str>>(&self, texts: &[S]) -> Result<Classification> {
        let texts: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let started = Instant::now();
        let encodings = self.tokenizer.encode(&texts)?;
        let batch_size = self.batch_size.unwrap_or_else(|| self.engine.default_batch());
        let batches = batches_by_length(&encodings, batch_size);
        let padded: Vec<EncodedBatch> = batches
            .iter()
            .map(|chunk| self.tokenizer.pad(&chunk.iter().map(|&i| &encodings[i]).collect::<Vec<_>>()))
            .collect();
        let mut timings = Timings { tokenize_ms: ms_since(started), infer_ms: 0.0 };
        let infer_start = Instant::now();
        let (logits, ran_on) = self.engine.logits_of_batches(&padded).await?;
        timings.infer_ms = ms_since(infer_start);
        let mut results: Vec<Option<Prediction>> = vec![None; texts.len()];
        for ((chunk, batch), logits) in batches.iter().zip(&padded).zip(&logits) {
            for ((&index, row), truncated) in chunk.iter().zip(logits).zip(&batch.truncated) {
                results[index] = Some(postprocess::predict(row, &self.labels, self.temperature, *truncated));
            }
        }
        Ok(Classification {
            backend: ran_on,
            fallback_reason: self.engine.fallback_reason(),
            timings,
            results: results.into_iter().map(|r| r.expect("every text is in one batch")).collect(),
        })
    }
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// The size of the wasm module's linear memory, in bytes; `None` natively.
fn wasm_heap_bytes() -> Option<u64> {
    #[cfg(target_arch = "wasm32")]
    return Some(core::arch::wasm32::memory_size::<0>() as u64 * 65_536);
    #[cfg(not(target_arch = "wasm32"))]
    None
}

//! Inference backends and the choice between them (docs/contracts.md, section 3). The CPU backend always
//! works: our int8 engine (`int8/`: x86 SIMD natively, wasm simd128 and relaxed SIMD in the browser) for
//! int8 models, candle's f32 path (`cpu.rs`, the reference engine) otherwise; the WebGPU backend
//! (`webgpu/`) runs where a GPU adapter exists.
//! `auto` takes WebGPU only on a real GPU whose self-check agrees with the CPU path, and a GPU that fails
//! later hands over to the CPU.

pub mod cpu;
pub mod int8;
pub mod webgpu;

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::tokenize::EncodedBatch;
use crate::weights::{HeadInit, WeightStore};
use cpu::CpuBackend;
pub use cpu::CpuEngine;
use webgpu::{WebGpuAdapter, WebGpuBackend};

/// The time of each kernel of one forward pass (`bench --profile`): GPU time per dispatch on WebGPU,
/// wall time per operation on the int8 CPU engine.
#[derive(Debug, Clone)]
pub struct KernelProfile {
    /// Each kernel in order: its role and its time in milliseconds.
    pub kernels: Vec<(&'static str, f64)>,
    pub logits: Vec<Vec<f32>>,
}

/// What the caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The fastest backend that works here.
    #[default]
    Auto,
    /// WebGPU compute shaders; an error where unavailable.
    WebGpu,
    /// candle on the CPU (wasm SIMD in the browser).
    Cpu,
}

impl std::str::FromStr for BackendChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "webgpu" => Ok(Self::WebGpu),
            "cpu" => Ok(Self::Cpu),
            other => Err(Error::Input(format!("unknown backend {other:?}: expected auto, webgpu or cpu"))),
        }
    }
}

/// The backend that actually ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    WebGpu,
    Cpu,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebGpu => "webgpu",
            Self::Cpu => "cpu",
        }
    }
}

/// The backend a classifier runs on, chosen at load time (docs/contracts.md, section 3), with the CPU
/// path as the fallback for a GPU that fails later: once a GPU call fails, that call and every later
/// one run on the CPU, and the results say why.
pub struct Engine {
    gpu: Option<WebGpuBackend>,
    cpu: Mutex<Option<Arc<CpuBackend>>>,
    /// What the CPU backend is built from when it is needed after load (GPU fallback); dropped once it
    /// is built, so a CPU-only classifier holds its weights once.
    source: Mutex<Option<CpuSource>>,
    /// Why the caller's choice is not what runs: set at load by `auto`, or when the GPU fails.
    reason: Mutex<Option<String>>,
}

/// How [`Engine::load`] builds a model.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub backend: BackendChoice,
    pub cpu: CpuEngine,
    pub head: HeadInit,
}

struct CpuSource {
    weights: Vec<u8>,
    config: BertConfig,
    num_labels: usize,
    head: HeadInit,
    engine: CpuEngine,
}

impl CpuSource {
    /// Builds the CPU backend, giving it the weights (no copy: the heap holds the file once, then its
    /// packed form).
    fn build(self) -> Result<(CpuBackend, bool)> {
        let dtype = crate::weights::stored_dtype(&self.weights)?;
        let store = WeightStore::from_bytes(self.weights, self.head)?;
        CpuBackend::load(store, dtype, &self.config, self.num_labels, self.engine)
    }
}

/// How closely WebGPU's logits must match the CPU's on the load-time self-check of `auto`: WebGPU computes
/// the int8 format's reference semantics, the CPU path (the int8 engine) quantizes activations too.
fn agrees(gpu: &[Vec<f32>], cpu: &[Vec<f32>]) -> bool {
    crate::tolerance::INT8_COMPUTE.allows_all(gpu, cpu)
}

/// Milliseconds of the faster of two runs of `pass` (the first may pay for warm-up), with its result.
async fn timed<T, F: std::future::Future<Output = Result<T>>>(mut pass: impl FnMut() -> F) -> Result<(T, f64)> {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..2 {
        let started = web_time::Instant::now();
        out = Some(pass().await?);
        best = best.min(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok((out.expect("ran twice"), best))
}

impl Engine {
    fn with_cpu(cpu: CpuBackend, reason: Option<String>) -> Engine {
        Engine { gpu: None, cpu: Mutex::new(Some(Arc::new(cpu))), source: Mutex::new(None), reason: Mutex::new(reason) }
    }

    /// Loads the model on the backend `options.backend` resolves to. `probe` is a small batch for the
    /// self-check and timing `auto` runs before choosing a GPU. Returns the engine and whether the head
    /// is untrained.
    pub async fn load(
        weights: Vec<u8>,
        config: &BertConfig,
        num_labels: usize,
        options: &EngineOptions,
        probe: &EncodedBatch,
    ) -> Result<(Engine, bool)> {
        let choice = options.backend;
        let source = CpuSource { weights, config: config.clone(), num_labels, head: options.head, engine: options.cpu };
        let on_cpu = |source: CpuSource, reason: Option<String>| -> Result<(Engine, bool)> {
            let (cpu, untrained) = source.build()?;
            Ok((Engine::with_cpu(cpu, reason), untrained))
        };
        let fall_back = |source, why: &dyn std::fmt::Display| {
            on_cpu(source, Some(format!("{why}; running on the CPU (SIMD) backend")))
        };
        if choice == BackendChoice::Cpu {
            return on_cpu(source, None);
        }
        let adapter = match WebGpuAdapter::request().await {
            Ok(adapter) => adapter,
            Err(err) if choice == BackendChoice::Auto => return fall_back(source, &err),
            Err(err) => return Err(err),
        };
        if choice == BackendChoice::Auto {
            if let Some(why) = adapter.software_reason() {
                return on_cpu(source, Some(format!("{why}; the CPU (SIMD) backend is faster there")));
            }
        }
        let (gpu, untrained) = match Self::load_gpu(adapter, &source).await {
            Ok(loaded) => loaded,
            Err(err) if choice == BackendChoice::Auto => return fall_back(source, &err),
            Err(err) => return Err(err),
        };
        if choice == BackendChoice::WebGpu {
            let engine = Engine {
                gpu: Some(gpu),
                cpu: Mutex::new(None),
                source: Mutex::new(Some(source)),
                reason: Mutex::new(None),
            };
            return Ok((engine, untrained));
        }
        // auto on a real GPU: it must agree with the CPU on the probe, and be faster.
        let (cpu, _) = source.build()?;
        let (expected, cpu_ms) = timed(|| std::future::ready(cpu.logits(probe))).await?;
        let (got, gpu_ms) = match timed(|| gpu.logits(probe)).await {
            Ok(measured) => measured,
            Err(err) => {
                return Ok((
                    Engine::with_cpu(cpu, Some(format!("{err}; running on the CPU (SIMD) backend"))),
                    untrained,
                ))
            }
        };
        let name = gpu.adapter_name().to_string();
        if !agrees(&got, &expected) {
            let why = format!("WebGPU on {name} disagreed with the CPU path on the load-time self-check; running on the CPU (SIMD) backend");
            return Ok((Engine::with_cpu(cpu, Some(why)), untrained));
        }
        if gpu_ms >= cpu_ms {
            let why = format!("WebGPU on {name} took {gpu_ms:.1} ms for the load-time probe, the CPU ({}) {cpu_ms:.1} ms; running on the CPU", cpu.kernel());
            return Ok((Engine::with_cpu(cpu, Some(why)), untrained));
        }
        // The CPU backend stays built: it takes over at once if the GPU fails later.
        let engine = Engine {
            gpu: Some(gpu),
            cpu: Mutex::new(Some(Arc::new(cpu))),
            source: Mutex::new(None),
            reason: Mutex::new(None),
        };
        Ok((engine, untrained))
    }

    /// Opens the device and uploads the weights; also says whether the head was freshly made.
    async fn load_gpu(adapter: WebGpuAdapter, source: &CpuSource) -> Result<(WebGpuBackend, bool)> {
        let gpu = adapter.open().await?;
        let store = WeightStore::from_bytes(source.weights.clone(), source.head)?;
        let created_head = store.created_head_flag();
        // Shader compilation and uploads report errors asynchronously: collect them before trusting the GPU.
        let scope = gpu.error_scope();
        let backend = WebGpuBackend::load(gpu, &store, &source.config, source.num_labels)?;
        if let Some(error) = scope.pop().await {
            return Err(Error::Backend {
                backend: "webgpu",
                message: format!("setting up the model on the GPU failed: {error}"),
            });
        }
        Ok((backend, created_head.load(std::sync::atomic::Ordering::Relaxed)))
    }

    fn cpu(&self) -> Result<Arc<CpuBackend>> {
        let mut cpu = self.cpu.lock().map_err(|_| Error::cpu("the backend lock was poisoned"))?;
        if cpu.is_none() {
            let source = self.source.lock().map_err(|_| Error::cpu("the backend lock was poisoned"))?.take();
            let source = source.ok_or_else(|| Error::cpu("the model's weights are gone"))?;
            *cpu = Some(Arc::new(source.build()?.0));
        }
        Ok(cpu.as_ref().expect("just built").clone())
    }

    /// What computes the CPU path's logits (`"int8 avx512-vnni"`, `"f32 reference"`, ...), once built.
    pub fn cpu_kernel(&self) -> Option<String> {
        self.cpu.lock().ok()?.as_ref().map(|cpu| cpu.kernel())
    }

    /// Why the CPU path's kernels were chosen, where a race at load chose them.
    pub fn cpu_kernel_reason(&self) -> Option<String> {
        self.cpu.lock().ok()?.as_ref().and_then(|cpu| cpu.kernel_reason())
    }

    /// Whether a call has fallen back from the GPU already (the reason is then set).
    fn fell_back(&self) -> bool {
        self.reason.lock().map(|r| r.is_some()).unwrap_or(true)
    }

    /// The GPU backend while it is usable: no call fell back, and the device reported no loss or error.
    fn usable_gpu(&self) -> Option<&WebGpuBackend> {
        self.gpu.as_ref().filter(|g| !self.fell_back() && g.failure().is_none())
    }

    /// Logits for one batch and the backend that computed them.
    pub async fn logits(&self, batch: &EncodedBatch) -> Result<(Vec<Vec<f32>>, BackendKind)> {
        let (mut logits, kind) = self.logits_of_batches(std::slice::from_ref(batch)).await?;
        Ok((logits.remove(0), kind))
    }

    /// Logits for several batches (each its own padded length) and the backend that computed them. On
    /// WebGPU every batch runs in one submit, read back once.
    pub async fn logits_of_batches(&self, batches: &[EncodedBatch]) -> Result<(Vec<Vec<Vec<f32>>>, BackendKind)> {
        // A device that failed since the last call makes `logits` fail at once, which records why.
        if let Some(gpu) = self.gpu.as_ref().filter(|_| !self.fell_back()) {
            match gpu.logits_of_batches(batches).await {
                Ok(logits) => return Ok((logits, BackendKind::WebGpu)),
                Err(err @ Error::Backend { .. }) => {
                    if let Ok(mut reason) = self.reason.lock() {
                        *reason = Some(format!("{err}; switched to the CPU (SIMD) backend for this and later calls"));
                    }
                }
                Err(other) => return Err(other),
            }
        }
        let cpu = self.cpu()?;
        let logits = batches.iter().map(|batch| cpu.logits(batch)).collect::<Result<_>>()?;
        Ok((logits, BackendKind::Cpu))
    }

    /// The WebGPU calls the GPU device has counted so far (`None` without one): what a classify call costs,
    /// read before and after it.
    pub fn gpu_counts(&self) -> Option<webgpu::ApiCounts> {
        self.gpu.as_ref().map(WebGpuBackend::counts)
    }

    /// Time per kernel of one pass over `batch` (`bench --profile`): GPU time from timestamp queries
    /// while WebGPU runs, wall time of each operation on the int8 CPU engine; `None` on the f32
    /// reference.
    pub async fn profile(&self, batch: &EncodedBatch) -> Result<Option<KernelProfile>> {
        if let Some(gpu) = self.usable_gpu() {
            return gpu.profile(batch).await.map(Some);
        }
        self.cpu()?.profile(batch)
    }

    /// Texts per forward pass when the caller sets none: the int8 engine and WebGPU run wide passes
    /// (the int8 engine lays texts end to end without padding; a GPU wants the work); the f32 reference
    /// pads each pass to its longest text, so it runs small length-sorted passes. Measured in headless
    /// Chromium on the reference (MiniLM, calls of 32 validation tweets): 5.4 tweets/s with passes of
    /// 32, 11.8 with passes of 4, 10.4 with passes of 1.
    pub fn default_batch(&self) -> usize {
        const WIDE: usize = 64;
        const REFERENCE: usize = 4;
        match (self.kind(), self.cpu.lock().ok().and_then(|c| c.clone())) {
            (BackendKind::Cpu, Some(cpu)) if matches!(*cpu, CpuBackend::Reference { .. }) => REFERENCE,
            _ => WIDE,
        }
    }

    /// The backend the next call will use.
    pub fn kind(&self) -> BackendKind {
        if self.usable_gpu().is_some() {
            BackendKind::WebGpu
        } else {
            BackendKind::Cpu
        }
    }

    /// Why the backend running is not the caller's first choice, if it is not.
    pub fn fallback_reason(&self) -> Option<String> {
        self.reason.lock().ok().and_then(|r| r.clone())
    }

    /// The GPU adapter's name while WebGPU runs.
    pub fn adapter(&self) -> Option<String> {
        self.usable_gpu().map(|g| g.adapter_name().to_string())
    }

    /// Destroys the GPU device as a driver reset would; the next call falls back to the CPU. For tests.
    pub fn simulate_device_loss(&self) {
        if let Some(gpu) = &self.gpu {
            gpu.simulate_device_loss();
        }
    }
}

//! The WebGPU backend: the whole BERT forward pass in WGSL compute shaders through wgpu (the browser's
//! WebGPU on wasm; Vulkan, Metal or DX12 natively). Weights are uploaded once and stay int8 on the GPU
//! (4 values per `u32`, dequantized inside the matrix kernel: the format's reference semantics);
//! activations live in a workspace sized for the largest (batch, sequence) seen; one command buffer per
//! batch; logits come back through `map_async`. Batches whose activations would exceed the device's
//! buffer limits are split into smaller ones.

mod device;
pub mod kernels;

use std::sync::Mutex;

use candle_nn::Init;
use wgpu::util::DeviceExt;

pub use device::{Gpu, GpuAdapter};
use device::gpu_error;
use kernels::{Activation, Binder, GpuMatrix, Kernels};

use crate::config::{BertConfig, HiddenAct};
use crate::error::Result;
use crate::tokenize::EncodedBatch;
use crate::weights::{StoredMatrix, WeightStore};

struct Layer {
    qkv: GpuMatrix,
    qkv_bias: wgpu::Buffer,
    attention_out: GpuMatrix,
    attention_out_bias: wgpu::Buffer,
    attention_norm: (wgpu::Buffer, wgpu::Buffer),
    intermediate: GpuMatrix,
    intermediate_bias: wgpu::Buffer,
    output: GpuMatrix,
    output_bias: wgpu::Buffer,
    output_norm: (wgpu::Buffer, wgpu::Buffer),
}

struct Weights {
    word: GpuMatrix,
    position: GpuMatrix,
    token_type: GpuMatrix,
    embeddings_norm: (wgpu::Buffer, wgpu::Buffer),
    layers: Vec<Layer>,
    pooler: GpuMatrix,
    pooler_bias: wgpu::Buffer,
    classifier: GpuMatrix,
    classifier_bias: wgpu::Buffer,
}

/// Activation buffers for up to `tokens` tokens and `rows` texts, reused across calls.
struct Workspace {
    tokens: usize,
    rows: usize,
    ids: wgpu::Buffer,
    types: wgpu::Buffer,
    mask: wgpu::Buffer,
    hidden: [wgpu::Buffer; 2],
    scratch: wgpu::Buffer,
    qkv: wgpu::Buffer,
    context: wgpu::Buffer,
    intermediate: wgpu::Buffer,
    pooled: wgpu::Buffer,
    logits: wgpu::Buffer,
    staging: wgpu::Buffer,
    binder: Binder,
}

/// A model loaded on a GPU device.
pub struct WebGpuBackend {
    gpu: Gpu,
    kernels: Kernels,
    weights: Weights,
    hidden: usize,
    heads: usize,
    intermediate: usize,
    labels: usize,
    eps: f32,
    act: Activation,
    workspace: Mutex<Option<Workspace>>,
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn u32_bytes(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn storage(gpu: &Gpu, label: &str, bytes: &[u8]) -> wgpu::Buffer {
    // A binding may not be empty: pad to one word.
    let contents = if bytes.is_empty() { &[0u8; 4][..] } else { bytes };
    gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents,
        usage: wgpu::BufferUsages::STORAGE,
    })
}

fn scratch(gpu: &Gpu, label: &str, floats: usize, extra: wgpu::BufferUsages) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (floats.max(1) * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE | extra,
        mapped_at_creation: false,
    })
}

/// Uploads a matrix as stored: int8 stays int8.
pub fn upload_matrix(gpu: &Gpu, name: &str, stored: &StoredMatrix, rows: usize, cols: usize) -> Result<GpuMatrix> {
    let (data, scales, int8) = match stored {
        StoredMatrix::Int8(m) => {
            let bytes: Vec<u8> = m.values.iter().map(|&v| v as u8).collect();
            (bytes, f32_bytes(&m.scales), true)
        }
        StoredMatrix::F32(values) => (f32_bytes(values), Vec::new(), false),
    };
    let limit = gpu.limits.max_storage_buffer_binding_size.min(gpu.limits.max_buffer_size);
    if data.len() as u64 > limit {
        return Err(gpu_error(format!(
            "{name} needs {} bytes in one buffer; this device allows {limit}",
            data.len()
        )));
    }
    Ok(GpuMatrix { data: storage(gpu, name, &data), scales: storage(gpu, name, &scales), rows, cols, int8 })
}

impl WebGpuBackend {
    /// Uploads the model described by `config` from `store` onto the device.
    pub fn load(gpu: Gpu, store: &WeightStore, config: &BertConfig, num_labels: usize, max_seq: usize) -> Result<Self> {
        let (h, inter) = (config.hidden_size, config.intermediate_size);
        let weight_init = Init::Randn { mean: 0.0, stdev: config.initializer_range };
        let zeros = Init::Const(0.0);
        let matrix = |name: &str, rows: usize, cols: usize| -> Result<GpuMatrix> {
            let stored = store.matrix(&format!("{name}.weight"), &[rows, cols], weight_init)?;
            upload_matrix(&gpu, name, &stored, rows, cols)
        };
        let vector = |name: &str, len: usize, init: Init| -> Result<wgpu::Buffer> {
            Ok(storage(&gpu, name, &f32_bytes(&store.tensor_f32(name, &[len], init)?)))
        };
        let norm = |prefix: &str| -> Result<(wgpu::Buffer, wgpu::Buffer)> {
            Ok((vector(&format!("{prefix}.weight"), h, Init::Const(1.0))?, vector(&format!("{prefix}.bias"), h, zeros)?))
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let names = ["query", "key", "value"].map(|n| format!("{p}.attention.self.{n}"));
            let parts = names
                .iter()
                .map(|n| store.matrix(&format!("{n}.weight"), &[h, h], weight_init))
                .collect::<Result<Vec<_>>>()?;
            let qkv = upload_matrix(&gpu, &format!("{p}.qkv"), &StoredMatrix::stack(parts, h)?, 3 * h, h)?;
            let mut qkv_bias = Vec::with_capacity(3 * h);
            for n in &names {
                qkv_bias.extend(store.tensor_f32(&format!("{n}.bias"), &[h], zeros)?);
            }
            layers.push(Layer {
                qkv,
                qkv_bias: storage(&gpu, "qkv.bias", &f32_bytes(&qkv_bias)),
                attention_out: matrix(&format!("{p}.attention.output.dense"), h, h)?,
                attention_out_bias: vector(&format!("{p}.attention.output.dense.bias"), h, zeros)?,
                attention_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                intermediate: matrix(&format!("{p}.intermediate.dense"), inter, h)?,
                intermediate_bias: vector(&format!("{p}.intermediate.dense.bias"), inter, zeros)?,
                output: matrix(&format!("{p}.output.dense"), h, inter)?,
                output_bias: vector(&format!("{p}.output.dense.bias"), h, zeros)?,
                output_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        let weights = Weights {
            word: matrix("embeddings.word_embeddings", config.vocab_size, h)?,
            position: matrix("embeddings.position_embeddings", config.max_position_embeddings, h)?,
            token_type: matrix("embeddings.token_type_embeddings", config.type_vocab_size, h)?,
            embeddings_norm: norm("embeddings.LayerNorm")?,
            layers,
            pooler: matrix("pooler.dense", h, h)?,
            pooler_bias: vector("pooler.dense.bias", h, zeros)?,
            classifier: matrix("classifier", num_labels, h)?,
            classifier_bias: vector("classifier.bias", num_labels, zeros)?,
        };
        let int8 = [&weights.word, &weights.position, &weights.token_type];
        if int8.iter().any(|m| m.int8 != weights.word.int8) {
            return Err(crate::Error::Weights("the three embedding tables must share one storage type".into()));
        }
        let act = match config.hidden_act {
            HiddenAct::Gelu => Activation::Gelu,
            HiddenAct::GeluNew => Activation::GeluTanh,
            HiddenAct::Relu => Activation::Relu,
        };
        let kernels = Kernels::new(&gpu, max_seq);
        Ok(Self {
            gpu,
            kernels,
            weights,
            hidden: h,
            heads: config.num_attention_heads,
            intermediate: inter,
            labels: num_labels,
            eps: config.layer_norm_eps as f32,
            act,
            workspace: Mutex::new(None),
        })
    }

    /// The adapter's name, e.g. "NVIDIA H100 (Vulkan)".
    pub fn adapter_name(&self) -> &str {
        &self.gpu.adapter_name
    }

    /// Why the device cannot be used any more, once that is known.
    pub fn failure(&self) -> Option<String> {
        self.gpu.failure()
    }

    /// Destroys the device, as a driver reset would (for tests of the CPU fallback).
    pub fn simulate_device_loss(&self) {
        self.gpu.simulate_loss();
    }

    /// Dispatches in one forward pass: embeddings and their LayerNorm, 7 per layer, pooler and classifier.
    fn dispatches_per_pass(&self) -> usize {
        4 + 7 * self.weights.layers.len()
    }

    /// Texts per GPU pass for sequences of `seq` tokens, so that no activation buffer exceeds the
    /// device's binding limit.
    fn rows_per_pass(&self, seq: usize) -> Result<usize> {
        let limit = self.gpu.limits.max_storage_buffer_binding_size.min(self.gpu.limits.max_buffer_size) as usize;
        let widest = (3 * self.hidden).max(self.intermediate) * 4;
        let rows = limit / (seq * widest).max(1);
        if rows == 0 {
            return Err(gpu_error(format!("one sequence of {seq} tokens needs {} bytes; this device allows {limit}", seq * widest)));
        }
        Ok(rows)
    }

    /// GPU time per kernel of one forward pass over `batch` (which must fit one pass), measured with
    /// timestamp queries around each dispatch, each in a compute pass of its own; also the logits, which
    /// equal [`Self::logits`]'s. Fails where the device has no timestamp queries.
    pub async fn profile(&self, batch: &EncodedBatch) -> Result<KernelProfile> {
        if !self.gpu.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Err(gpu_error(format!("the adapter {} has no timestamp queries", self.gpu.adapter_name)));
        }
        let (rows, seq) = (batch.batch_size, batch.seq_len);
        let per_pass = self.rows_per_pass(seq)?;
        if rows == 0 || rows > per_pass {
            return Err(gpu_error(format!("profiling needs 1 to {per_pass} texts of {seq} tokens")));
        }
        let timing = Timing::new(&self.gpu, self.dispatches_per_pass() as u32);
        let mut ws = self.workspace(rows * seq, rows);
        let (ids, types, mask) = (&batch.input_ids, &batch.type_ids, &batch.attention_mask);
        let (flat, labels) = self.run(&mut ws, ids, types, mask, rows, seq, Some(&timing)).await?;
        let ticks = read_back_bytes(&self.gpu, &timing.readback, labels.len() as u64 * 16).await?;
        let ticks: Vec<u64> = ticks.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
        let ns_per_tick = f64::from(self.gpu.queue.get_timestamp_period());
        let kernels = labels
            .iter()
            .zip(ticks.chunks_exact(2))
            .map(|(label, t)| (*label, t[1].saturating_sub(t[0]) as f64 * ns_per_tick / 1e6))
            .collect();
        Ok(KernelProfile { kernels, logits: flat.chunks(self.labels).map(<[f32]>::to_vec).collect() })
    }

    /// Logits, one row per text. Fails (and the caller falls back to the CPU) on a lost device or any
    /// GPU error.
    pub async fn logits(&self, batch: &EncodedBatch) -> Result<Vec<Vec<f32>>> {
        if batch.batch_size == 0 {
            return Ok(Vec::new());
        }
        if let Some(why) = self.gpu.failure() {
            return Err(gpu_error(why));
        }
        let seq = batch.seq_len;
        let per_pass = self.rows_per_pass(seq)?;
        let mut logits = Vec::with_capacity(batch.batch_size);
        for start in (0..batch.batch_size).step_by(per_pass) {
            let rows = per_pass.min(batch.batch_size - start);
            let range = start * seq..(start + rows) * seq;
            let flat = self
                .forward(&batch.input_ids[range.clone()], &batch.type_ids[range.clone()], &batch.attention_mask[range], rows, seq)
                .await?;
            logits.extend(flat.chunks(self.labels).map(<[f32]>::to_vec));
        }
        if logits.iter().flatten().any(|l| !l.is_finite()) {
            return Err(gpu_error("the model produced non-finite logits"));
        }
        Ok(logits)
    }

    fn workspace(&self, tokens: usize, rows: usize) -> Workspace {
        let gpu = &self.gpu;
        let copy_dst = wgpu::BufferUsages::COPY_DST;
        let (h, i) = (self.hidden, self.intermediate);
        Workspace {
            tokens,
            rows,
            ids: scratch(gpu, "ids", tokens, copy_dst),
            types: scratch(gpu, "types", tokens, copy_dst),
            mask: scratch(gpu, "mask", tokens, copy_dst),
            hidden: [scratch(gpu, "hidden.0", tokens * h, copy_dst), scratch(gpu, "hidden.1", tokens * h, copy_dst)],
            scratch: scratch(gpu, "scratch", tokens * h, copy_dst),
            qkv: scratch(gpu, "qkv", tokens * 3 * h, copy_dst),
            context: scratch(gpu, "context", tokens * h, copy_dst),
            intermediate: scratch(gpu, "intermediate", tokens * i, copy_dst),
            pooled: scratch(gpu, "pooled", rows * h, copy_dst),
            logits: scratch(gpu, "logits", rows * self.labels, wgpu::BufferUsages::COPY_SRC),
            staging: gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("staging"),
                size: (rows * self.labels * 4) as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            binder: Binder::new(gpu, self.dispatches_per_pass()),
        }
    }

    async fn forward(&self, ids: &[u32], types: &[u32], mask: &[u32], rows: usize, seq: usize) -> Result<Vec<f32>> {
        let tokens = rows * seq;
        // The workspace is taken out for the call and put back after it, so no lock is held across an
        // await; a concurrent call (possible from JS) builds its own.
        let cached = self.workspace.lock().map_err(|_| gpu_error("the workspace lock was poisoned"))?.take();
        let mut ws = match cached {
            Some(ws) if ws.tokens >= tokens && ws.rows >= rows => ws,
            other => {
                let (old_tokens, old_rows) = other.as_ref().map_or((0, 0), |w| (w.tokens, w.rows));
                self.workspace(tokens.max(old_tokens), rows.max(old_rows))
            }
        };
        let result = self.run(&mut ws, ids, types, mask, rows, seq, None).await.map(|(logits, _)| logits);
        if let Ok(mut slot) = self.workspace.lock() {
            *slot = Some(ws);
        }
        result
    }

    /// Records the whole forward pass for `rows` texts of `seq` tokens into one command buffer, submits
    /// it and reads the logits back; with `timing`, each dispatch is timed (and labelled, in order).
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        ws: &mut Workspace,
        ids: &[u32],
        types: &[u32],
        mask: &[u32],
        rows: usize,
        seq: usize,
        timing: Option<&Timing>,
    ) -> Result<(Vec<f32>, Vec<&'static str>)> {
        let tokens = rows * seq;
        let (gpu, k, w) = (&self.gpu, &self.kernels, &self.weights);
        let (h, heads) = (self.hidden, self.heads);
        let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
        gpu.queue.write_buffer(&ws.ids, 0, &u32_bytes(ids));
        gpu.queue.write_buffer(&ws.types, 0, &u32_bytes(types));
        gpu.queue.write_buffer(&ws.mask, 0, &u32_bytes(mask));
        let mut encoder = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("forward") });
        let labels = {
            let mut rec = match timing {
                None => Recording::Single(
                    encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("bert"), timestamp_writes: None }).forget_lifetime(),
                ),
                Some(t) => Recording::Timed { encoder: &mut encoder, queries: &t.queries, labels: Vec::new() },
            };
            let binder = &mut ws.binder;
            let [x, y] = &ws.hidden;
            let tables = [&w.word, &w.position, &w.token_type];
            rec.record("embeddings", |p| k.embeddings(binder, p, &ws.ids, &ws.types, tables, &ws.scratch, tokens, seq));
            let (g, b) = &w.embeddings_norm;
            rec.record("layernorm", |p| k.layer_norm(binder, p, &ws.scratch, None, g, b, x, tokens, h, self.eps));
            for layer in &w.layers {
                rec.record("qkv", |p| k.linear(binder, p, x, h, tokens, &layer.qkv, &layer.qkv_bias, &ws.qkv, Activation::None));
                rec.record("attention", |p| k.attention(binder, p, &ws.qkv, &ws.mask, &ws.context, rows, seq, h, heads));
                rec.record("attention output", |p| {
                    k.linear(binder, p, &ws.context, h, tokens, &layer.attention_out, &layer.attention_out_bias, &ws.scratch, Activation::None)
                });
                let (g, b) = &layer.attention_norm;
                rec.record("layernorm", |p| k.layer_norm(binder, p, &ws.scratch, Some(x), g, b, y, tokens, h, self.eps));
                rec.record("intermediate + activation", |p| {
                    k.linear(binder, p, y, h, tokens, &layer.intermediate, &layer.intermediate_bias, &ws.intermediate, self.act)
                });
                rec.record("output", |p| {
                    let (out, bias) = (&layer.output, &layer.output_bias);
                    k.linear(binder, p, &ws.intermediate, self.intermediate, tokens, out, bias, &ws.scratch, Activation::None)
                });
                let (g, b) = &layer.output_norm;
                rec.record("layernorm", |p| k.layer_norm(binder, p, &ws.scratch, Some(y), g, b, x, tokens, h, self.eps));
            }
            // The [CLS] row of each text: stride seq * hidden.
            rec.record("pooler", |p| k.linear(binder, p, x, seq * h, rows, &w.pooler, &w.pooler_bias, &ws.pooled, Activation::Tanh));
            rec.record("classifier", |p| {
                k.linear(binder, p, &ws.pooled, h, rows, &w.classifier, &w.classifier_bias, &ws.logits, Activation::None)
            });
            rec.finish()
        };
        if let Some(t) = timing {
            t.resolve(&mut encoder, labels.len() as u32);
        }
        let bytes = (rows * self.labels * 4) as u64;
        encoder.copy_buffer_to_buffer(&ws.logits, 0, &ws.staging, 0, bytes);
        ws.binder.upload(&gpu.queue);
        gpu.queue.submit([encoder.finish()]);
        if let Some(error) = scope.pop().await {
            return Err(gpu_error(format!("a GPU command failed: {error}")));
        }
        Ok((read_back(gpu, &ws.staging, bytes).await?, labels))
    }
}

/// GPU time per dispatch of one forward pass ([`WebGpuBackend::profile`]).
#[derive(Debug, Clone)]
pub struct KernelProfile {
    /// Each dispatch in order: its kernel's role and its GPU time in milliseconds.
    pub kernels: Vec<(&'static str, f64)>,
    pub logits: Vec<Vec<f32>>,
}

/// Where a forward pass's dispatches go: all into one compute pass, or each into a pass of its own
/// between two timestamp writes (profiling).
#[allow(clippy::large_enum_variant)] // one short-lived value per forward pass
enum Recording<'a> {
    Single(wgpu::ComputePass<'static>),
    Timed { encoder: &'a mut wgpu::CommandEncoder, queries: &'a wgpu::QuerySet, labels: Vec<&'static str> },
}

impl Recording<'_> {
    fn record(&mut self, label: &'static str, dispatch: impl FnOnce(&mut wgpu::ComputePass<'_>)) {
        match self {
            Recording::Single(pass) => dispatch(pass),
            Recording::Timed { encoder, queries, labels } => {
                let index = 2 * labels.len() as u32;
                let timestamps = wgpu::ComputePassTimestampWrites {
                    query_set: queries,
                    beginning_of_pass_write_index: Some(index),
                    end_of_pass_write_index: Some(index + 1),
                };
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(label), timestamp_writes: Some(timestamps) });
                dispatch(&mut pass);
                labels.push(label);
            }
        }
    }

    /// The labels of the timed dispatches, in order (none when untimed).
    fn finish(self) -> Vec<&'static str> {
        match self {
            Recording::Single(_) => Vec::new(),
            Recording::Timed { labels, .. } => labels,
        }
    }
}

/// Timestamp queries for profiling, two per dispatch, resolved and copied to a mappable buffer.
struct Timing {
    queries: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    readback: wgpu::Buffer,
}

impl Timing {
    fn new(gpu: &Gpu, dispatches: u32) -> Timing {
        let count = 2 * dispatches;
        let buffer = |label, usage| {
            gpu.device.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size: u64::from(count) * 8, usage, mapped_at_creation: false })
        };
        Timing {
            queries: gpu.device.create_query_set(&wgpu::QuerySetDescriptor { label: Some("timestamps"), ty: wgpu::QueryType::Timestamp, count }),
            resolved: buffer("timestamps", wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC),
            readback: buffer("timestamps readback", wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST),
        }
    }

    /// Records the copy of the first `dispatches` pairs of timestamps to the mappable buffer.
    fn resolve(&self, encoder: &mut wgpu::CommandEncoder, dispatches: u32) {
        let count = 2 * dispatches;
        encoder.resolve_query_set(&self.queries, 0..count, &self.resolved, 0);
        encoder.copy_buffer_to_buffer(&self.resolved, 0, &self.readback, 0, u64::from(count) * 8);
    }
}

/// Copies `bytes` of a mappable buffer of f32 values to the host, without blocking the browser's thread.
pub async fn read_back(gpu: &Gpu, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<f32>> {
    let bytes = read_back_bytes(gpu, buffer, bytes).await?;
    Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// Copies `bytes` of a mappable buffer to the host, without blocking the browser's thread.
async fn read_back_bytes(gpu: &Gpu, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
    let slice = buffer.slice(..bytes);
    let (sender, receiver) = futures_channel::oneshot::channel();
    slice.map_async(wgpu::MapMode::Read, move |result| {
        sender.send(result).ok();
    });
    // Natively, wait for the GPU here; in the browser the callback fires from the event loop.
    #[cfg(target_arch = "wasm32")]
    let _ = gpu;
    #[cfg(not(target_arch = "wasm32"))]
    gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| gpu_error(format!("waiting for the GPU failed: {e}")))?;
    receiver
        .await
        .map_err(|_| gpu_error("the GPU readback was cancelled"))?
        .map_err(|e| gpu_error(format!("the GPU readback failed: {e}")))?;
    let values = {
        let view = slice.get_mapped_range().map_err(|e| gpu_error(format!("the GPU readback failed: {e:?}")))?;
        view.to_vec()
    };
    buffer.unmap();
    Ok(values)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

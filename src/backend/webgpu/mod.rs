//! The WebGPU backend: the BERT pass of [`crate::pass`] in WGSL compute shaders through wgpu (the
//! browser's WebGPU on wasm; Vulkan, Metal or DX12 natively). Weights are uploaded once and stay int8 on
//! the GPU (4 values per `u32`, dequantized inside the matrix kernel: the format's reference semantics).
//! The pass is turned once, at load, into a plan of dispatches ([`Step`]); each call encodes the plan
//! for its batch into one command buffer over a workspace sized for the largest (batch, sequence) seen,
//! and reads the logits back through `map_async`. Batches whose activations would exceed the device's
//! buffer limits are split into smaller ones.

mod device;
pub mod kernels;

use std::collections::HashMap;
use std::sync::Mutex;

use candle_nn::Init;
use wgpu::util::DeviceExt;

use device::gpu_error;
pub use device::{Gpu, WebGpuAdapter};
use kernels::{AttentionOp, Binder, EmbeddingsOp, EpilogueOp, Kernels, LayerNormOp, LinearOp, WebGpuMatrix};

use super::KernelProfile;
use crate::config::{BertConfig, HiddenAct};
use crate::error::{Error, Result};
use crate::pass::{self, Epilogue, Linear, Norm, Rows, Slot, EMBEDDING_TABLES};
use crate::tokenize::EncodedBatch;
use crate::weights::{StoredMatrix, WeightStore};

/// The model on the GPU, by the pass's names.
struct Weights {
    /// Word, position and token-type tables.
    tables: [WebGpuMatrix; 3],
    linears: HashMap<Linear, (WebGpuMatrix, wgpu::Buffer)>,
    /// `(gamma, beta)`.
    norms: HashMap<Norm, (wgpu::Buffer, wgpu::Buffer)>,
}

/// A workspace buffer: a slot of the pass, or the scratch a linear layer writes before its LayerNorm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Buf {
    Slot(Slot),
    Scratch,
}

/// Which rows of its input a linear layer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Every token (`tokens` rows).
    Tokens,
    /// The `[CLS]` row of each text in a per-token buffer (`texts` rows, stride `seq` rows).
    ClsOfTokens,
    /// One row per text.
    Texts,
}

/// One dispatch of the pass, before buffers and sizes are known.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Embeddings { out: Buf },
    LayerNorm { input: Buf, residual: Option<Buf>, norm: Norm, out: Buf },
    Linear { linear: Linear, input: Buf, read: Read, out: Buf, act: EpilogueOp },
    Attention { qkv: Buf, out: Buf },
}

impl Step {
    /// The kernel's role, for profiles.
    fn label(&self) -> &'static str {
        match self {
            Step::Embeddings { .. } => "embeddings",
            Step::LayerNorm { .. } => "layernorm",
            Step::Linear { linear, .. } => linear.role(),
            Step::Attention { .. } => "attention",
        }
    }
}

/// Turns the pass into steps: a linear layer with a residual LayerNorm is two dispatches (the product
/// into the scratch buffer, then the norm), the embeddings two (the sum, then the norm).
struct Planner {
    steps: Vec<Step>,
    act: EpilogueOp,
    layouts: HashMap<Slot, Rows>,
}

impl pass::Ops for Planner {
    type Error = Error;

    fn embed(&mut self, out: Slot) -> Result<()> {
        self.steps.push(Step::Embeddings { out: Buf::Scratch });
        self.steps.push(Step::LayerNorm {
            input: Buf::Scratch,
            residual: None,
            norm: Norm::Embeddings,
            out: Buf::Slot(out),
        });
        self.layouts.insert(out, Rows::Tokens);
        Ok(())
    }

    fn linear(&mut self, linear: Linear, input: Slot, output: Slot, epilogue: Epilogue, rows: Rows) -> Result<()> {
        let read = match (rows, self.layouts.get(&input)) {
            (Rows::Tokens, _) => Read::Tokens,
            (Rows::Cls, Some(Rows::Tokens)) => Read::ClsOfTokens,
            (Rows::Cls, _) => Read::Texts,
        };
        let act = match epilogue {
            Epilogue::Activation => self.act,
            Epilogue::Tanh => EpilogueOp::Tanh,
            Epilogue::None | Epilogue::ResidualNorm { .. } => EpilogueOp::None,
        };
        let input = Buf::Slot(input);
        match epilogue {
            Epilogue::ResidualNorm { residual, norm } => {
                if rows == Rows::Cls {
                    return Err(gpu_error("the WebGPU pass runs every layer on every token"));
                }
                self.steps.push(Step::Linear { linear, input, read, out: Buf::Scratch, act });
                self.steps.push(Step::LayerNorm {
                    input: Buf::Scratch,
                    residual: Some(Buf::Slot(residual)),
                    norm,
                    out: Buf::Slot(output),
                });
            }
            _ => self.steps.push(Step::Linear { linear, input, read, out: Buf::Slot(output), act }),
        }
        self.layouts.insert(output, rows);
        Ok(())
    }

    fn attention(&mut self, qkv: Slot, output: Slot, queries: Rows) -> Result<()> {
        if queries == Rows::Cls {
            return Err(gpu_error("the WebGPU attention kernel computes every query"));
        }
        self.steps.push(Step::Attention { qkv: Buf::Slot(qkv), out: Buf::Slot(output) });
        self.layouts.insert(output, Rows::Tokens);
        Ok(())
    }
}

/// Activation buffers for up to `tokens` tokens and `rows` texts, reused across calls, with the binder of
/// their passes.
struct Workspace {
    tokens: usize,
    rows: usize,
    buffers: Buffers,
    binder: Binder,
}

/// The workspace's buffers.
struct Buffers {
    ids: wgpu::Buffer,
    types: wgpu::Buffer,
    mask: wgpu::Buffer,
    hidden: wgpu::Buffer,
    attended: wgpu::Buffer,
    scratch: wgpu::Buffer,
    qkv: wgpu::Buffer,
    context: wgpu::Buffer,
    intermediate: wgpu::Buffer,
    pooled: wgpu::Buffer,
    logits: wgpu::Buffer,
    staging: wgpu::Buffer,
}

impl Buffers {
    fn buffer(&self, buf: Buf) -> &wgpu::Buffer {
        match buf {
            Buf::Scratch => &self.scratch,
            Buf::Slot(Slot::Hidden) => &self.hidden,
            Buf::Slot(Slot::Attended) => &self.attended,
            Buf::Slot(Slot::Qkv) => &self.qkv,
            Buf::Slot(Slot::Context) => &self.context,
            Buf::Slot(Slot::Intermediate) => &self.intermediate,
            Buf::Slot(Slot::Pooled) => &self.pooled,
            Buf::Slot(Slot::Logits) => &self.logits,
        }
    }
}

/// A model loaded on a GPU device.
pub struct WebGpuBackend {
    gpu: Gpu,
    kernels: Kernels,
    weights: Weights,
    /// The pass as dispatches, made once at load.
    plan: Vec<Step>,
    hidden: usize,
    heads: usize,
    intermediate: usize,
    labels: usize,
    eps: f32,
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
pub fn upload_matrix(gpu: &Gpu, name: &str, stored: &StoredMatrix, rows: usize, cols: usize) -> Result<WebGpuMatrix> {
    let (data, scales, int8) = match stored {
        StoredMatrix::Int8(m) => {
            let bytes: Vec<u8> = m.values.iter().map(|&v| v as u8).collect();
            (bytes, f32_bytes(&m.scales), true)
        }
        StoredMatrix::F32(values) => (f32_bytes(values), Vec::new(), false),
    };
    let limit = gpu.limits.max_storage_buffer_binding_size.min(gpu.limits.max_buffer_size);
    if data.len() as u64 > limit {
        return Err(gpu_error(format!("{name} needs {} bytes in one buffer; this device allows {limit}", data.len())));
    }
    Ok(WebGpuMatrix { data: storage(gpu, name, &data), scales: storage(gpu, name, &scales), rows, cols, int8 })
}

impl WebGpuBackend {
    /// Uploads the model described by `config` from `store` onto the device.
    pub fn load(gpu: Gpu, store: &WeightStore, config: &BertConfig, num_labels: usize, max_seq: usize) -> Result<Self> {
        let h = config.hidden_size;
        let weight_init = Init::Randn { mean: 0.0, stdev: config.initializer_range };
        let zeros = Init::Const(0.0);
        let vector = |name: &str, len: usize, init: Init| -> Result<wgpu::Buffer> {
            Ok(storage(&gpu, name, &f32_bytes(&store.tensor_f32(name, &[len], init)?)))
        };
        let table_rows = [config.vocab_size, config.max_position_embeddings, config.type_vocab_size];
        let table = |i: usize| -> Result<WebGpuMatrix> {
            let name = EMBEDDING_TABLES[i];
            upload_matrix(
                &gpu,
                name,
                &store.matrix(&format!("{name}.weight"), &[table_rows[i], h], weight_init)?,
                table_rows[i],
                h,
            )
        };
        let tables = [table(0)?, table(1)?, table(2)?];
        if tables.iter().any(|t| t.int8 != tables[0].int8) {
            return Err(Error::Weights("the three embedding tables must share one storage type".into()));
        }
        let mut linears = HashMap::new();
        for linear in Linear::all(config.num_hidden_layers) {
            let (rows, cols) = linear.shape(config, num_labels);
            let parts = linear.parts();
            let part_rows = rows / parts.len();
            let (mut stored, mut bias) = (Vec::with_capacity(parts.len()), Vec::with_capacity(rows));
            for name in &parts {
                stored.push(store.matrix(&format!("{name}.weight"), &[part_rows, cols], weight_init)?);
                bias.extend(store.tensor_f32(&format!("{name}.bias"), &[part_rows], zeros)?);
            }
            let label = &parts[0];
            let matrix = upload_matrix(&gpu, label, &StoredMatrix::stack(stored, cols)?, rows, cols)?;
            linears.insert(linear, (matrix, storage(&gpu, label, &f32_bytes(&bias))));
        }
        let mut norms = HashMap::new();
        for norm in Norm::all(config.num_hidden_layers) {
            let prefix = norm.prefix();
            norms.insert(
                norm,
                (
                    vector(&format!("{prefix}.weight"), h, Init::Const(1.0))?,
                    vector(&format!("{prefix}.bias"), h, zeros)?,
                ),
            );
        }
        let act = match config.hidden_act {
            HiddenAct::Gelu => EpilogueOp::Gelu,
            HiddenAct::GeluNew => EpilogueOp::GeluTanh,
            HiddenAct::Relu => EpilogueOp::Relu,
        };
        let mut planner = Planner { steps: Vec::new(), act, layouts: HashMap::new() };
        pass::run(&mut planner, config.num_hidden_layers, Rows::Tokens)?;
        let kernels = Kernels::new(&gpu, max_seq);
        Ok(Self {
            gpu,
            kernels,
            weights: Weights { tables, linears, norms },
            plan: planner.steps,
            hidden: h,
            heads: config.num_attention_heads,
            intermediate: config.intermediate_size,
            labels: num_labels,
            eps: config.layer_norm_eps as f32,
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

    /// Dispatches in one forward pass.
    fn dispatches_per_pass(&self) -> usize {
        self.plan.len()
    }

    /// Texts per GPU pass for sequences of `seq` tokens, so that no activation buffer exceeds the
    /// device's binding limit.
    fn rows_per_pass(&self, seq: usize) -> Result<usize> {
        let limit = self.gpu.limits.max_storage_buffer_binding_size.min(self.gpu.limits.max_buffer_size) as usize;
        let widest = (3 * self.hidden).max(self.intermediate) * 4;
        let rows = limit / (seq * widest).max(1);
        if rows == 0 {
            return Err(gpu_error(format!(
                "one sequence of {seq} tokens needs {} bytes; this device allows {limit}",
                seq * widest
            )));
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
        let ticks: Vec<u64> =
            ticks.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
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
                .forward(
                    &batch.input_ids[range.clone()],
                    &batch.type_ids[range.clone()],
                    &batch.attention_mask[range],
                    rows,
                    seq,
                )
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
            buffers: Buffers {
                ids: scratch(gpu, "ids", tokens, copy_dst),
                types: scratch(gpu, "types", tokens, copy_dst),
                mask: scratch(gpu, "mask", tokens, copy_dst),
                hidden: scratch(gpu, "hidden", tokens * h, copy_dst),
                attended: scratch(gpu, "attended", tokens * h, copy_dst),
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
            },
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
        let gpu = &self.gpu;
        let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let Workspace { buffers, binder, .. } = ws;
        gpu.queue.write_buffer(&buffers.ids, 0, &u32_bytes(ids));
        gpu.queue.write_buffer(&buffers.types, 0, &u32_bytes(types));
        gpu.queue.write_buffer(&buffers.mask, 0, &u32_bytes(mask));
        let mut encoder = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("forward") });
        let labels = {
            let mut rec = match timing {
                None => Recording::Single(
                    encoder
                        .begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: Some("bert"),
                            timestamp_writes: None,
                        })
                        .forget_lifetime(),
                ),
                Some(t) => Recording::Timed { encoder: &mut encoder, queries: &t.queries, labels: Vec::new() },
            };
            for step in &self.plan {
                rec.record(step.label(), |p| self.encode(step, buffers, binder, p, rows, seq));
            }
            rec.finish()
        };
        if let Some(t) = timing {
            t.resolve(&mut encoder, labels.len() as u32);
        }
        let bytes = (rows * self.labels * 4) as u64;
        encoder.copy_buffer_to_buffer(&buffers.logits, 0, &buffers.staging, 0, bytes);
        binder.upload(&gpu.queue);
        gpu.queue.submit([encoder.finish()]);
        if let Some(error) = scope.pop().await {
            return Err(gpu_error(format!("a GPU command failed: {error}")));
        }
        Ok((read_back(gpu, &buffers.staging, bytes).await?, labels))
    }
}

impl WebGpuBackend {
    /// Records one step of the plan for `rows` texts of `seq` tokens.
    fn encode(
        &self,
        step: &Step,
        ws: &Buffers,
        binder: &mut Binder,
        pass: &mut wgpu::ComputePass,
        rows: usize,
        seq: usize,
    ) {
        let (k, w) = (&self.kernels, &self.weights);
        let tokens = rows * seq;
        match *step {
            Step::Embeddings { out } => {
                let tables = [&w.tables[0], &w.tables[1], &w.tables[2]];
                k.embeddings(
                    binder,
                    pass,
                    &EmbeddingsOp { ids: &ws.ids, types: &ws.types, tables, out: ws.buffer(out), tokens, seq },
                );
            }
            Step::LayerNorm { input, residual, norm, out } => {
                let (gamma, beta) = &w.norms[&norm];
                let op = LayerNormOp {
                    x: ws.buffer(input),
                    residual: residual.map(|r| ws.buffer(r)),
                    gamma,
                    beta,
                    out: ws.buffer(out),
                    rows: tokens,
                    cols: self.hidden,
                    eps: self.eps,
                };
                k.layer_norm(binder, pass, &op);
            }
            Step::Linear { linear, input, read, out, act } => {
                let (weight, bias) = &w.linears[&linear];
                let (x_stride, m) = match read {
                    Read::Tokens => (weight.cols, tokens),
                    Read::ClsOfTokens => (seq * weight.cols, rows),
                    Read::Texts => (weight.cols, rows),
                };
                k.linear(
                    binder,
                    pass,
                    &LinearOp { x: ws.buffer(input), x_stride, rows: m, weight, bias, out: ws.buffer(out), act },
                );
            }
            Step::Attention { qkv, out } => {
                let op = AttentionOp {
                    qkv: ws.buffer(qkv),
                    mask: &ws.mask,
                    out: ws.buffer(out),
                    batch: rows,
                    seq,
                    hidden: self.hidden,
                    heads: self.heads,
                };
                k.attention(binder, pass, &op);
            }
        }
    }
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
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(label),
                    timestamp_writes: Some(timestamps),
                });
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
            gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: u64::from(count) * 8,
                usage,
                mapped_at_creation: false,
            })
        };
        Timing {
            queries: gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count,
            }),
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
    gpu.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| gpu_error(format!("waiting for the GPU failed: {e}")))?;
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

#[cfg(test)]
mod plan_tests {
    use super::*;

    /// The pass as WebGPU dispatches: embeddings and their norm, seven per layer (the two residual
    /// norms separate), then the pooler on the [CLS] rows of the per-token hidden states and the
    /// classifier on the pooled rows.
    #[test]
    fn the_plan_has_seven_dispatches_per_layer_and_reads_cls_rows_for_the_head() {
        let mut planner = Planner { steps: Vec::new(), act: EpilogueOp::Gelu, layouts: HashMap::new() };
        pass::run(&mut planner, 3, Rows::Tokens).unwrap();
        let steps = planner.steps;
        assert_eq!(steps.len(), 4 + 7 * 3);
        assert_eq!(steps[0], Step::Embeddings { out: Buf::Scratch });
        let labels: Vec<&str> = steps[2..9].iter().map(Step::label).collect();
        assert_eq!(
            labels,
            ["qkv", "attention", "attention output", "layernorm", "intermediate + activation", "output", "layernorm"]
        );
        assert!(matches!(
            steps[steps.len() - 2],
            Step::Linear { linear: Linear::Pooler, read: Read::ClsOfTokens, act: EpilogueOp::Tanh, .. }
        ));
        assert!(matches!(
            steps[steps.len() - 1],
            Step::Linear { linear: Linear::Classifier, read: Read::Texts, act: EpilogueOp::None, .. }
        ));
        let mut cls_only = Planner { steps: Vec::new(), act: EpilogueOp::Gelu, layouts: HashMap::new() };
        assert!(pass::run(&mut cls_only, 2, Rows::Cls).is_err(), "the WebGPU kernels compute every query");
    }
}

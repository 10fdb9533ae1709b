//! The WebGPU backend: the BERT pass of [`crate::pass`] in WGSL compute shaders through wgpu (the
//! browser's WebGPU on wasm; Vulkan, Metal or DX12 natively). Weights are uploaded once and stay int8 on
//! the GPU (4 values per `u32`, dequantized inside the kernels: the format's reference semantics).
//!
//! The pass is turned once, at load, into a plan of steps ([`Step`]); the last layer runs for the
//! `[CLS]` rows only from its attention queries on, and the pooler and classifier are one kernel. A
//! workspace (activation buffers sized for the largest pass seen, the uniform slots, and a bind group
//! per step) is made on the first call that needs it and reused. A call then costs: one upload of the
//! token ids of all its passes, one of the dispatches' parameter blocks, one submit in which every
//! pass runs (each pass's inputs copied into place on the GPU, its logits copied out), and one readback
//! of the logits; the error scope's answer is awaited after the readback is requested, not before.
//! [`ApiCounts`] counts these calls; the tests hold a call to that budget.

mod device;
pub mod kernels;

use std::collections::HashMap;
use std::sync::Mutex;

use candle_nn::Init;

use device::gpu_error;
pub use device::{ApiCounts, Gpu, WebGpuAdapter};
use kernels::{
    AttentionOp, EmbedNormOp, EpilogueOp, HeadOp, Kernels, LayerNormOp, LinearOp, MatmulShape, TableRows, Uniforms,
    WebGpuMatrix,
};

use super::KernelProfile;
use crate::config::{BertConfig, HiddenAct};
use crate::error::{Error, Result};
use crate::pass::{self, Epilogue, Linear, Norm, Rows, Slot, EMBEDDING_TABLES};
use crate::tokenize::EncodedBatch;
use crate::weights::{StoredMatrix, WeightStore};

/// The model on the GPU, by the pass's names.
struct Weights {
    /// Word, position and token-type rows, one after the other.
    tables: WebGpuMatrix,
    table_rows: TableRows,
    /// Every linear layer but the classifier, with its bias.
    linears: HashMap<Linear, (WebGpuMatrix, wgpu::Buffer)>,
    /// Gamma then beta, per LayerNorm.
    norms: HashMap<Norm, wgpu::Buffer>,
    /// The classifier's f32 weights (`[labels, hidden]`) then biases.
    classifier: wgpu::Buffer,
}

/// A workspace buffer: a slot of the pass, or the scratch a linear layer writes before its LayerNorm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Buf {
    Slot(Slot),
    Scratch,
}

/// Which rows of a buffer an operation reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Every token (`tokens` rows).
    Tokens,
    /// The `[CLS]` row of each text in a per-token buffer (`texts` rows, stride `seq` rows).
    ClsOfTokens,
    /// One row per text.
    Texts,
}

impl Read {
    /// How an operation producing `rows` reads a buffer written with `layout`.
    fn of(rows: Rows, layout: Option<&Rows>) -> Read {
        match (rows, layout) {
            (Rows::Tokens, _) => Read::Tokens,
            (Rows::Cls, Some(Rows::Tokens)) => Read::ClsOfTokens,
            (Rows::Cls, _) => Read::Texts,
        }
    }

    /// `(rows, floats between rows)` for rows `width` wide in a pass of `texts` texts of `seq` tokens.
    fn rows_and_stride(self, texts: usize, seq: usize, width: usize) -> (usize, usize) {
        match self {
            Read::Tokens => (texts * seq, width),
            Read::ClsOfTokens => (texts, seq * width),
            Read::Texts => (texts, width),
        }
    }
}

/// One step of the pass, before buffers and sizes are known.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    /// The embeddings and their LayerNorm.
    EmbedNorm {
        out: Buf,
    },
    Linear {
        linear: Linear,
        input: Buf,
        read: Read,
        out: Buf,
        act: EpilogueOp,
    },
    LayerNorm {
        input: Buf,
        residual: Buf,
        residual_read: Read,
        norm: Norm,
        out: Buf,
    },
    Attention {
        qkv: Buf,
        out: Buf,
        queries: Rows,
    },
    /// The pooler and the classifier, into the logits.
    Head {
        input: Buf,
        read: Read,
    },
}

impl Step {
    /// The kernel's role, for profiles.
    fn label(&self) -> &'static str {
        match self {
            Step::EmbedNorm { .. } => "embeddings + layernorm",
            Step::LayerNorm { .. } => "layernorm",
            Step::Linear { linear, .. } => linear.role(),
            Step::Attention { .. } => "attention",
            Step::Head { .. } => "pooler + classifier",
        }
    }
}

/// What a profile calls the dispatch that adds up a linear layer's split-K partial sums.
pub const SPLIT_SUM_LABEL: &str = "split-k sum";

/// Uniform slots (at most dispatches) per step: a linear layer split along k is two dispatches.
const SLOTS_PER_STEP: usize = 2;

/// Turns the pass into steps: a linear layer with a residual LayerNorm is two (the product into the
/// scratch buffer, then the norm); the pooler and the classifier are one.
struct Planner {
    steps: Vec<Step>,
    act: EpilogueOp,
    /// How each slot was last written: per token or per text.
    layouts: HashMap<Slot, Rows>,
    /// The pooler's input, waiting for the classifier to make the head step.
    pooler_input: Option<(Buf, Read)>,
}

impl Planner {
    fn plan(layers: usize, act: EpilogueOp) -> Result<Vec<Step>> {
        let mut planner = Planner { steps: Vec::new(), act, layouts: HashMap::new(), pooler_input: None };
        pass::run(&mut planner, layers, Rows::Cls)?;
        Ok(planner.steps)
    }

    fn read(&self, rows: Rows, slot: Slot) -> Read {
        Read::of(rows, self.layouts.get(&slot))
    }
}

impl pass::Ops for Planner {
    type Error = Error;

    fn embed(&mut self, out: Slot) -> Result<()> {
        self.steps.push(Step::EmbedNorm { out: Buf::Slot(out) });
        self.layouts.insert(out, Rows::Tokens);
        Ok(())
    }

    fn linear(&mut self, linear: Linear, input: Slot, output: Slot, epilogue: Epilogue, rows: Rows) -> Result<()> {
        let read = self.read(rows, input);
        match (linear, epilogue) {
            (Linear::Pooler, Epilogue::Tanh) => self.pooler_input = Some((Buf::Slot(input), read)),
            (Linear::Classifier, Epilogue::None) => {
                let (input, read) =
                    self.pooler_input.take().ok_or_else(|| gpu_error("the classifier before the pooler"))?;
                self.steps.push(Step::Head { input, read });
            }
            (Linear::Pooler | Linear::Classifier, _) => {
                return Err(gpu_error("the head kernel is tanh pooler + classifier"))
            }
            (_, Epilogue::ResidualNorm { residual, norm }) => {
                let act = EpilogueOp::None;
                self.steps.push(Step::Linear { linear, input: Buf::Slot(input), read, out: Buf::Scratch, act });
                let residual_read = self.read(rows, residual);
                let out = Buf::Slot(output);
                self.steps.push(Step::LayerNorm {
                    input: Buf::Scratch,
                    residual: Buf::Slot(residual),
                    residual_read,
                    norm,
                    out,
                });
            }
            (_, epilogue) => {
                let act = match epilogue {
                    Epilogue::Activation => self.act,
                    Epilogue::Tanh => EpilogueOp::Tanh,
                    _ => EpilogueOp::None,
                };
                self.steps.push(Step::Linear { linear, input: Buf::Slot(input), read, out: Buf::Slot(output), act });
            }
        }
        self.layouts.insert(output, rows);
        Ok(())
    }

    fn attention(&mut self, qkv: Slot, output: Slot, queries: Rows) -> Result<()> {
        self.steps.push(Step::Attention { qkv: Buf::Slot(qkv), out: Buf::Slot(output), queries });
        self.layouts.insert(output, queries);
        Ok(())
    }
}

/// One pass of a call: `texts` texts of `seq` tokens.
struct PassInput<'a> {
    ids: &'a [u32],
    types: &'a [u32],
    mask: &'a [u32],
    texts: usize,
    seq: usize,
}

impl PassInput<'_> {
    fn tokens(&self) -> usize {
        self.texts * self.seq
    }
}

/// What a workspace holds: tokens and texts per pass, passes per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Capacity {
    tokens: usize,
    texts: usize,
    passes: usize,
}

impl Capacity {
    fn holds(&self, other: &Capacity) -> bool {
        self.tokens >= other.tokens && self.texts >= other.texts && self.passes >= other.passes
    }

    fn max(self, other: Capacity) -> Capacity {
        Capacity {
            tokens: self.tokens.max(other.tokens),
            texts: self.texts.max(other.texts),
            passes: self.passes.max(other.passes),
        }
    }
}

/// Activation buffers for one pass, the inputs of a whole call, the uniform slots, and a bind group per
/// step, reused across calls.
struct Workspace {
    capacity: Capacity,
    buffers: Buffers,
    uniforms: Uniforms,
    /// Per step: the bind group of its (first) dispatch, and of a split linear layer's sum.
    groups: Vec<(wgpu::BindGroup, Option<wgpu::BindGroup>)>,
}

/// The workspace's buffers.
struct Buffers {
    /// One pass's token ids, token types and mask, each region [`Buffers::region_bytes`] long.
    inputs: wgpu::Buffer,
    /// Every pass's inputs, as [`Self::inputs`] lays them out, one after the other: written by the
    /// call's one upload, copied into `inputs` on the GPU before each pass.
    upload: wgpu::Buffer,
    region_bytes: u64,
    hidden: wgpu::Buffer,
    attended: wgpu::Buffer,
    scratch: wgpu::Buffer,
    qkv: wgpu::Buffer,
    context: wgpu::Buffer,
    intermediate: wgpu::Buffer,
    /// Split-K partial sums.
    partial: wgpu::Buffer,
    logits: wgpu::Buffer,
    /// Every pass's logits, one after the other: the call's one readback.
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
            // The head writes the logits from the hidden rows; no step reads or writes a pooled buffer.
            Buf::Slot(Slot::Pooled) | Buf::Slot(Slot::Logits) => &self.logits,
        }
    }

    /// u32 index of the token types and of the mask in `inputs`.
    fn input_offsets(&self) -> (usize, usize) {
        let region = (self.region_bytes / 4) as usize;
        (region, 2 * region)
    }
}

/// A model loaded on a GPU device.
pub struct WebGpuBackend {
    gpu: Gpu,
    kernels: Kernels,
    weights: Weights,
    /// The pass as steps, made once at load.
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

fn storage(gpu: &Gpu, label: &str, bytes: &[u8]) -> wgpu::Buffer {
    // A binding may not be empty: pad to one word.
    let contents = if bytes.is_empty() { &[0u8; 4][..] } else { bytes };
    gpu.create_buffer_init(label, contents, wgpu::BufferUsages::STORAGE)
}

fn scratch(gpu: &Gpu, label: &str, floats: usize, extra: wgpu::BufferUsages) -> wgpu::Buffer {
    gpu.create_buffer(label, (floats.max(1) * 4) as u64, wgpu::BufferUsages::STORAGE | extra)
}

/// Uploads a matrix as stored: int8 stays int8, with one scale per 32 values whatever its block length
/// (the shaders read one per step of 32).
pub fn upload_matrix(gpu: &Gpu, name: &str, stored: &StoredMatrix, rows: usize, cols: usize) -> Result<WebGpuMatrix> {
    let (data, scales, int8) = match stored {
        StoredMatrix::Int8(m) => {
            let bytes: Vec<u8> = m.values.iter().map(|&v| v as u8).collect();
            (bytes, f32_bytes(&m.scales_per_block32()), true)
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
    pub fn load(gpu: Gpu, store: &WeightStore, config: &BertConfig, num_labels: usize) -> Result<Self> {
        let h = config.hidden_size;
        let weight_init = Init::Randn { mean: 0.0, stdev: config.initializer_range };
        let zeros = Init::Const(0.0);
        let table_rows = [config.vocab_size, config.max_position_embeddings, config.type_vocab_size];
        let tables = EMBEDDING_TABLES
            .iter()
            .zip(table_rows)
            .map(|(name, rows)| store.matrix(&format!("{name}.weight"), &[rows, h], weight_init))
            .collect::<Result<Vec<_>>>()?;
        if tables.iter().any(|t| matches!(t, StoredMatrix::Int8(_)) != matches!(tables[0], StoredMatrix::Int8(_))) {
            return Err(Error::Weights("the three embedding tables must share one storage type".into()));
        }
        let tables = upload_matrix(&gpu, "embeddings", &StoredMatrix::stack(tables, h)?, table_rows.iter().sum(), h)?;
        let table_rows = TableRows { position_row0: table_rows[0], type_row0: table_rows[0] + table_rows[1] };
        let mut linears = HashMap::new();
        for linear in Linear::all(config.num_hidden_layers).filter(|l| *l != Linear::Classifier) {
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
        let classifier = Linear::Classifier.parts().remove(0);
        let mut head = store.tensor_f32(&format!("{classifier}.weight"), &[num_labels, h], weight_init)?;
        head.extend(store.tensor_f32(&format!("{classifier}.bias"), &[num_labels], zeros)?);
        let mut norms = HashMap::new();
        for norm in Norm::all(config.num_hidden_layers) {
            let prefix = norm.prefix();
            let mut params = store.tensor_f32(&format!("{prefix}.weight"), &[h], Init::Const(1.0))?;
            params.extend(store.tensor_f32(&format!("{prefix}.bias"), &[h], zeros)?);
            norms.insert(norm, storage(&gpu, &prefix, &f32_bytes(&params)));
        }
        let act = match config.hidden_act {
            HiddenAct::Gelu => EpilogueOp::Gelu,
            HiddenAct::GeluNew => EpilogueOp::GeluTanh,
            HiddenAct::Relu => EpilogueOp::Relu,
        };
        let plan = Planner::plan(config.num_hidden_layers, act)?;
        let kernels = Kernels::new(&gpu, h, config.head_dim());
        Ok(Self {
            weights: Weights {
                tables,
                table_rows,
                linears,
                norms,
                classifier: storage(&gpu, "classifier", &f32_bytes(&head)),
            },
            gpu,
            kernels,
            plan,
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

    /// The WebGPU calls this device has counted so far.
    pub fn counts(&self) -> ApiCounts {
        self.gpu.counts()
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

    /// The batches cut into passes the device's buffers hold.
    fn passes<'a>(&self, batches: &'a [EncodedBatch]) -> Result<Vec<PassInput<'a>>> {
        let mut passes = Vec::new();
        for batch in batches.iter().filter(|b| b.batch_size > 0) {
            let seq = batch.seq_len;
            let per_pass = self.rows_per_pass(seq)?;
            for start in (0..batch.batch_size).step_by(per_pass) {
                let texts = per_pass.min(batch.batch_size - start);
                let range = start * seq..(start + texts) * seq;
                passes.push(PassInput {
                    ids: &batch.input_ids[range.clone()],
                    types: &batch.type_ids[range.clone()],
                    mask: &batch.attention_mask[range],
                    texts,
                    seq,
                });
            }
        }
        Ok(passes)
    }

    /// GPU time per kernel of one forward pass over `batch` (which must fit one pass), measured with
    /// timestamp queries around each dispatch, each in a compute pass of its own; also the logits, which
    /// equal [`Self::logits`]'s. Fails where the device has no timestamp queries.
    pub async fn profile(&self, batch: &EncodedBatch) -> Result<KernelProfile> {
        if !self.gpu.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Err(gpu_error(format!("the adapter {} has no timestamp queries", self.gpu.adapter_name)));
        }
        let passes = self.passes(std::slice::from_ref(batch))?;
        if passes.len() != 1 {
            return Err(gpu_error(format!("profiling needs 1 to {} texts", self.rows_per_pass(batch.seq_len)?)));
        }
        let timing = Timing::new(&self.gpu, (SLOTS_PER_STEP * self.plan.len()) as u32);
        let (flat, labels) = self.run(&passes, Some(&timing)).await?;
        let ticks = self.gpu.read_back(&timing.readback, labels.len() as u64 * 16).await?;
        let ticks: Vec<u64> =
            ticks.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
        let ns_per_tick = f64::from(self.gpu.timestamp_period());
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
        Ok(self.logits_of_batches(std::slice::from_ref(batch)).await?.remove(0))
    }

    /// Logits of several batches (each padded to its own length), every pass of them in one submit and
    /// read back once.
    pub async fn logits_of_batches(&self, batches: &[EncodedBatch]) -> Result<Vec<Vec<Vec<f32>>>> {
        if let Some(why) = self.gpu.failure() {
            return Err(gpu_error(why));
        }
        let passes = self.passes(batches)?;
        let flat = if passes.is_empty() { Vec::new() } else { self.run(&passes, None).await?.0 };
        if flat.iter().any(|l| !l.is_finite()) {
            return Err(gpu_error("the model produced non-finite logits"));
        }
        let mut rows = flat.chunks(self.labels).map(<[f32]>::to_vec);
        Ok(batches.iter().map(|b| rows.by_ref().take(b.batch_size).collect()).collect())
    }

    fn workspace(&self, capacity: Capacity) -> Workspace {
        let gpu = &self.gpu;
        let copy_dst = wgpu::BufferUsages::COPY_DST;
        let (h, i, tokens) = (self.hidden, self.intermediate, capacity.tokens);
        let align = u64::from(gpu.limits.min_storage_buffer_offset_alignment);
        let region_bytes = (tokens as u64 * 4).next_multiple_of(align);
        let buffers = Buffers {
            inputs: gpu.create_buffer("inputs", 3 * region_bytes, wgpu::BufferUsages::STORAGE | copy_dst),
            upload: gpu.create_buffer(
                "inputs upload",
                3 * region_bytes * capacity.passes as u64,
                wgpu::BufferUsages::COPY_SRC | copy_dst,
            ),
            region_bytes,
            hidden: scratch(gpu, "hidden", tokens * h, copy_dst),
            attended: scratch(gpu, "attended", tokens * h, copy_dst),
            scratch: scratch(gpu, "scratch", tokens * h, copy_dst),
            qkv: scratch(gpu, "qkv", tokens * 3 * h, copy_dst),
            context: scratch(gpu, "context", tokens * h, copy_dst),
            intermediate: scratch(gpu, "intermediate", tokens * i, copy_dst),
            partial: scratch(gpu, "partial sums", kernels::partial_capacity(), copy_dst),
            logits: scratch(gpu, "logits", capacity.texts * self.labels, wgpu::BufferUsages::COPY_SRC),
            staging: gpu.create_buffer(
                "staging",
                (capacity.passes * capacity.texts * self.labels * 4).max(4) as u64,
                wgpu::BufferUsages::MAP_READ | copy_dst,
            ),
        };
        let uniforms = Uniforms::new(gpu, SLOTS_PER_STEP * self.plan.len() * capacity.passes);
        // Bound once: the sizes below only fill the bindings, each call records its own.
        let sizes = PassShape { texts: 1, seq: 1 };
        let groups = self
            .plan
            .iter()
            .map(|step| match step {
                Step::Linear { .. } => {
                    let op = self.linear_op(step, &buffers, sizes);
                    let reduce = self.kernels.split_reduce(&op).bind(gpu, &uniforms);
                    (self.kernels.linear(&op).bind(gpu, &uniforms), Some(reduce))
                }
                _ => (self.bind_other(step, &buffers, sizes, &uniforms), None),
            })
            .collect();
        Workspace { capacity, buffers, uniforms, groups }
    }

    /// The matmul of a linear step for a pass of `sizes`.
    fn linear_op<'a>(&'a self, step: &Step, ws: &'a Buffers, sizes: PassShape) -> LinearOp<'a> {
        let Step::Linear { linear, input, read, out, act } = *step else { unreachable!("a linear step") };
        let (weight, bias) = &self.weights.linears[&linear];
        let (rows, x_stride) = read.rows_and_stride(sizes.texts, sizes.seq, weight.cols);
        LinearOp {
            x: ws.buffer(input),
            x_stride,
            rows,
            weight,
            bias,
            out: ws.buffer(out),
            partial: &ws.partial,
            act,
            shape: MatmulShape::for_sizes(rows, weight.rows, weight.cols),
        }
    }

    /// Binds a step other than a linear layer.
    fn bind_other(&self, step: &Step, ws: &Buffers, sizes: PassShape, uniforms: &Uniforms) -> wgpu::BindGroup {
        let gpu = &self.gpu;
        match step {
            Step::EmbedNorm { .. } => self.kernels.embed_norm(&self.embed_op(step, ws, sizes)).bind(gpu, uniforms),
            Step::LayerNorm { .. } => self.kernels.layer_norm(&self.norm_op(step, ws, sizes)).bind(gpu, uniforms),
            Step::Attention { .. } => self.kernels.attention(&self.attention_op(step, ws, sizes)).bind(gpu, uniforms),
            Step::Head { .. } => self.kernels.head(&self.head_op(step, ws, sizes)).bind(gpu, uniforms),
            Step::Linear { .. } => unreachable!("linear steps bind two dispatches"),
        }
    }

    fn embed_op<'a>(&'a self, step: &Step, ws: &'a Buffers, sizes: PassShape) -> EmbedNormOp<'a> {
        let Step::EmbedNorm { out } = *step else { unreachable!("an embedding step") };
        EmbedNormOp {
            inputs: &ws.inputs,
            types_offset: ws.input_offsets().0,
            tables: &self.weights.tables,
            rows: self.weights.table_rows,
            params: &self.weights.norms[&Norm::Embeddings],
            out: ws.buffer(out),
            tokens: sizes.texts * sizes.seq,
            seq: sizes.seq,
            eps: self.eps,
        }
    }

    fn norm_op<'a>(&'a self, step: &Step, ws: &'a Buffers, sizes: PassShape) -> LayerNormOp<'a> {
        let Step::LayerNorm { input, residual, residual_read, norm, out } = *step else { unreachable!("a norm") };
        let (rows, residual_stride) = residual_read.rows_and_stride(sizes.texts, sizes.seq, self.hidden);
        LayerNormOp {
            x: ws.buffer(input),
            residual: Some(ws.buffer(residual)),
            residual_stride,
            params: &self.weights.norms[&norm],
            out: ws.buffer(out),
            rows,
            cols: self.hidden,
            eps: self.eps,
        }
    }

    fn attention_op<'a>(&'a self, step: &Step, ws: &'a Buffers, sizes: PassShape) -> AttentionOp<'a> {
        let Step::Attention { qkv, out, queries } = *step else { unreachable!("an attention step") };
        AttentionOp {
            qkv: ws.buffer(qkv),
            inputs: &ws.inputs,
            mask_offset: ws.input_offsets().1,
            out: ws.buffer(out),
            texts: sizes.texts,
            seq: sizes.seq,
            hidden: self.hidden,
            heads: self.heads,
            cls_only: queries == Rows::Cls,
        }
    }

    fn head_op<'a>(&'a self, step: &Step, ws: &'a Buffers, sizes: PassShape) -> HeadOp<'a> {
        let Step::Head { input, read } = *step else { unreachable!("the head step") };
        let (pooler, pooler_bias) = &self.weights.linears[&Linear::Pooler];
        HeadOp {
            x: ws.buffer(input),
            x_stride: read.rows_and_stride(sizes.texts, sizes.seq, self.hidden).1,
            pooler,
            pooler_bias,
            head: &self.weights.classifier,
            out: &ws.logits,
            texts: sizes.texts,
            labels: self.labels,
        }
    }

    /// Records step `index` for a pass of `sizes`: one dispatch, or two for a linear layer split along k.
    fn record_step(&self, index: usize, ws: &mut Workspace, sizes: PassShape, rec: &mut Recording) {
        let step = &self.plan[index];
        let (group, reduce_group) = &ws.groups[index];
        let (buffers, uniforms) = (&ws.buffers, &mut ws.uniforms);
        let label = step.label();
        match step {
            Step::EmbedNorm { .. } => {
                let d = self.kernels.embed_norm(&self.embed_op(step, buffers, sizes));
                rec.record(label, |p| d.record(p, group, uniforms));
            }
            Step::LayerNorm { .. } => {
                let d = self.kernels.layer_norm(&self.norm_op(step, buffers, sizes));
                rec.record(label, |p| d.record(p, group, uniforms));
            }
            Step::Attention { .. } => {
                let d = self.kernels.attention(&self.attention_op(step, buffers, sizes));
                rec.record(label, |p| d.record(p, group, uniforms));
            }
            Step::Head { .. } => {
                let d = self.kernels.head(&self.head_op(step, buffers, sizes));
                rec.record(label, |p| d.record(p, group, uniforms));
            }
            Step::Linear { .. } => {
                let op = self.linear_op(step, buffers, sizes);
                let d = self.kernels.linear(&op);
                rec.record(label, |p| d.record(p, group, uniforms));
                if op.shape.splits > 1 {
                    let sum = self.kernels.split_reduce(&op);
                    let group = reduce_group.as_ref().expect("linear steps bind their sum");
                    rec.record(SPLIT_SUM_LABEL, |p| sum.record(p, group, uniforms));
                }
            }
        }
    }

    /// Runs `passes` in one submit and reads every pass's logits back at once (flat, in order); with
    /// `timing`, each dispatch is timed (and labelled, in order).
    async fn run(&self, passes: &[PassInput<'_>], timing: Option<&Timing>) -> Result<(Vec<f32>, Vec<&'static str>)> {
        let needed = Capacity {
            tokens: passes.iter().map(PassInput::tokens).max().unwrap_or(1),
            texts: passes.iter().map(|p| p.texts).max().unwrap_or(1),
            passes: passes.len(),
        };
        // The workspace is taken out for the call and put back after it, so no lock is held across an
        // await; a concurrent call (possible from JS) builds its own.
        let cached = self.workspace.lock().map_err(|_| gpu_error("the workspace lock was poisoned"))?.take();
        let mut ws = match cached {
            Some(ws) if ws.capacity.holds(&needed) => ws,
            other => self.workspace(other.map_or(needed, |w| w.capacity.max(needed))),
        };
        let result = self.run_in(&mut ws, passes, timing).await;
        if let Ok(mut slot) = self.workspace.lock() {
            *slot = Some(ws);
        }
        result
    }

    async fn run_in(
        &self,
        ws: &mut Workspace,
        passes: &[PassInput<'_>],
        timing: Option<&Timing>,
    ) -> Result<(Vec<f32>, Vec<&'static str>)> {
        let gpu = &self.gpu;
        let scope = gpu.error_scope();
        let region = ws.buffers.region_bytes;
        let mut upload = vec![0u8; (3 * region) as usize * passes.len()];
        for (pass, block) in passes.iter().zip(upload.chunks_exact_mut(3 * region as usize)) {
            for (part, values) in [pass.ids, pass.types, pass.mask].iter().enumerate() {
                let start = part * region as usize;
                block[start..start + 4 * values.len()].copy_from_slice(bytemuck::cast_slice(values));
            }
        }
        gpu.write_buffer(&ws.buffers.upload, 0, &upload);
        let mut encoder = gpu.create_command_encoder("forward");
        let mut labels = Vec::new();
        let mut read_bytes = 0u64;
        for (p, pass) in passes.iter().enumerate() {
            encoder.copy_buffer_to_buffer(&ws.buffers.upload, 3 * region * p as u64, &ws.buffers.inputs, 0, 3 * region);
            let sizes = PassShape { texts: pass.texts, seq: pass.seq };
            {
                let mut rec = match timing {
                    None => Recording::Single(encoder.begin_compute_pass(&Default::default()).forget_lifetime()),
                    Some(t) => Recording::Timed { encoder: &mut encoder, queries: &t.queries, labels: Vec::new() },
                };
                for index in 0..self.plan.len() {
                    self.record_step(index, ws, sizes, &mut rec);
                }
                labels.extend(rec.finish());
            }
            let bytes = (pass.texts * self.labels * 4) as u64;
            encoder.copy_buffer_to_buffer(&ws.buffers.logits, 0, &ws.buffers.staging, read_bytes, bytes);
            read_bytes += bytes;
        }
        if let Some(t) = timing {
            t.resolve(&mut encoder, labels.len() as u32);
        }
        ws.uniforms.upload(gpu);
        gpu.submit(encoder.finish());
        // Both answers are requested before either is awaited: in a browser, waiting for the error scope
        // first would cost a round trip to the GPU process before the readback even started.
        let errors = scope.pop();
        let logits = gpu.read_back(&ws.buffers.staging, read_bytes).await;
        if let Some(error) = errors.await {
            return Err(gpu_error(format!("a GPU command failed: {error}")));
        }
        let logits = logits?.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Ok((logits, labels))
    }
}

/// The sizes of one pass.
#[derive(Debug, Clone, Copy)]
struct PassShape {
    texts: usize,
    seq: usize,
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
        let bytes = u64::from(count) * 8;
        Timing {
            queries: gpu.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count,
            }),
            resolved: gpu.create_buffer(
                "timestamps",
                bytes,
                wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            ),
            readback: gpu.create_buffer(
                "timestamps readback",
                bytes,
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
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
    let bytes = gpu.read_back(buffer, bytes).await?;
    Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

#[cfg(test)]
mod plan_tests {
    use super::*;

    /// The pass as WebGPU steps: the embeddings with their norm, seven per layer (the two residual norms
    /// separate), the last layer on the [CLS] rows from its attention queries on (its residual norm
    /// reading the [CLS] rows of the per-token hidden states), then one head step on the per-text rows.
    #[test]
    fn the_plan_has_seven_steps_per_layer_and_runs_the_last_layer_on_cls_rows() {
        let steps = Planner::plan(3, EpilogueOp::Gelu).unwrap();
        assert_eq!(steps.len(), 1 + 7 * 3 + 1);
        assert_eq!(steps[0], Step::EmbedNorm { out: Buf::Slot(Slot::Hidden) });
        let labels: Vec<&str> = steps[1..8].iter().map(Step::label).collect();
        assert_eq!(
            labels,
            ["qkv", "attention", "attention output", "layernorm", "intermediate + activation", "output", "layernorm"]
        );
        let reads = |range: std::ops::Range<usize>| -> Vec<Read> {
            steps[range]
                .iter()
                .filter_map(|s| match s {
                    Step::Linear { read, .. } => Some(*read),
                    Step::LayerNorm { residual_read, .. } => Some(*residual_read),
                    _ => None,
                })
                .collect()
        };
        assert!(reads(1..15).iter().all(|r| *r == Read::Tokens), "the first layers read every token");
        let last = 15..22;
        assert!(matches!(steps[16], Step::Attention { queries: Rows::Cls, .. }));
        assert_eq!(reads(last), [Read::Tokens, Read::Texts, Read::ClsOfTokens, Read::Texts, Read::Texts, Read::Texts]);
        assert_eq!(steps[22], Step::Head { input: Buf::Slot(Slot::Hidden), read: Read::Texts });
    }

    /// Split along k only where few rows leave the GPU idle, and then enough to fill it: MiniLM's four
    /// linear layers for one tweet of 40 tokens reach [`kernels::TARGET_WORKGROUPS`]; a 64 x 64-token batch
    /// takes the large tile whole.
    #[test]
    fn small_batches_split_along_k_until_they_fill_the_gpu() {
        for (n, k) in [(1152, 384), (384, 384), (1536, 384), (384, 1536)] {
            let one = MatmulShape::for_sizes(40, n, k);
            let [x, y, z] = one.workgroups(40, n);
            assert!(x * y * z >= kernels::TARGET_WORKGROUPS, "{n}x{k}: {one:?} gives {} workgroups", x * y * z);
            assert!(one.k_chunk.is_multiple_of(32) && (one.splits - 1) * one.k_chunk < k as u32, "{one:?}");
            let many = MatmulShape::for_sizes(64 * 64, n, k);
            assert_eq!((many.tile, many.splits), (kernels::Tile::Large, 1));
        }
        let partial = |m: usize, n: usize, k: usize| {
            let shape = MatmulShape::for_sizes(m, n, k);
            if shape.splits > 1 {
                shape.splits as usize * m * n
            } else {
                0
            }
        };
        for m in 1..200 {
            for (n, k) in [(1152, 384), (384, 1536), (96, 32), (32, 48), (3072, 768), (768, 3072)] {
                assert!(partial(m, n, k) <= kernels::partial_capacity(), "m {m} n {n} k {k}");
            }
        }
    }
}

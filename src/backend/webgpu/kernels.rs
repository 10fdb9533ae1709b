//! The WGSL kernels (`shaders/*.wgsl`), compiled once per device, and the code that binds their buffers
//! and records their dispatches. Variants (int8 or f32 weights, the longest sequence) are injected as
//! constants at the top of the source. Every kernel here has a test against the CPU reference.
//! Each dispatch's small uniform block of dimensions lives in a slot of one buffer per forward pass
//! ([`Binder`]), not in a buffer of its own.

use wgpu::util::DeviceExt;

use super::device::Gpu;

const MATMUL: &str = include_str!("shaders/matmul.wgsl");
const LAYERNORM: &str = include_str!("shaders/layernorm.wgsl");
const EMBEDDINGS: &str = include_str!("shaders/embeddings.wgsl");
const ATTENTION: &str = include_str!("shaders/attention.wgsl");

/// Output tile of the matrix multiply (rows and columns per workgroup).
const MATMUL_TILE: u32 = 64;
/// Invocations per workgroup of the row-wise kernels.
const ROW_WORKGROUP: u32 = 64;
/// Most workgroups along one dispatch dimension (WebGPU's guaranteed minimum).
const MAX_GROUPS: u32 = 65535;

/// What the matmul kernel applies after the bias (its `act` uniform): nothing, the model's activation
/// (the config's [`crate::config::HiddenAct`], mapped to its WGSL form), or the pooler's tanh. Not the
/// config's enum: it has more cases and is a shader's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpilogueOp {
    None = 0,
    /// Exact GELU, `x Φ(x)`; WGSL has no `erf`, so the kernel uses Abramowitz & Stegun 7.1.26
    /// (|erf error| <= 1.5e-7, so |GELU error| <= 1e-7 |x|).
    Gelu = 1,
    /// `tanh`, with the input clamped to [-15, 15] (tanh is +-1 within f32 precision beyond).
    Tanh = 2,
    /// The tanh approximation of GELU (HF `gelu_new`).
    GeluTanh = 3,
    Relu = 4,
}

/// A weight matrix `[rows, cols]` on the GPU: int8 (4 values per `u32`, rows padded to 32 values, one f32
/// scale per block of 32) or f32. `scales` is a 4-byte placeholder for f32 weights.
pub struct WebGpuMatrix {
    pub data: wgpu::Buffer,
    pub scales: wgpu::Buffer,
    pub rows: usize,
    pub cols: usize,
    pub int8: bool,
}

impl WebGpuMatrix {
    /// Columns as stored: padded to whole blocks for int8.
    pub fn stored_cols(&self) -> usize {
        if self.int8 {
            crate::weights::quant::padded_len(self.cols)
        } else {
            self.cols
        }
    }
}

/// The compiled pipelines.
pub struct Kernels {
    matmul_int8: wgpu::ComputePipeline,
    matmul_f32: wgpu::ComputePipeline,
    layernorm: wgpu::ComputePipeline,
    embeddings_int8: wgpu::ComputePipeline,
    embeddings_f32: wgpu::ComputePipeline,
    attention: wgpu::ComputePipeline,
    /// Longest sequence the attention kernel's workgroup memory holds.
    pub max_seq: usize,
}

fn pipeline(gpu: &Gpu, label: &str, source: &str) -> wgpu::ComputePipeline {
    let module = gpu.device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    gpu.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(label),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    })
}

fn with_int8(int8: bool, source: &str) -> String {
    format!("const INT8: bool = {int8};\n{source}")
}

fn groups(n: usize, per_group: u32) -> u32 {
    (n as u32).div_ceil(per_group)
}

/// Splits a count of workgroups over x and y so neither exceeds the per-dimension limit; the shader
/// recombines them as `x + y * 65535`.
fn split_groups(count: u32) -> (u32, u32) {
    if count <= MAX_GROUPS {
        (count, 1)
    } else {
        (MAX_GROUPS, count.div_ceil(MAX_GROUPS))
    }
}

/// The block of uniform parameters a kernel reads, laid out as its WGSL `Dims` struct (`#[repr(C)]`, 32-bit
/// fields, padded to 16 bytes).
pub trait Params: bytemuck::Pod {}

/// `matmul.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LinearParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub x_stride: u32,
    pub k_padded: u32,
    pub act: u32,
    pub _pad: [u32; 2],
}

/// `layernorm.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LayerNormParams {
    pub rows: u32,
    pub cols: u32,
    pub has_residual: u32,
    pub eps: f32,
}

/// `embeddings.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct EmbeddingParams {
    pub tokens: u32,
    pub seq: u32,
    pub hidden: u32,
    pub k_padded: u32,
}

/// `attention.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AttentionParams {
    pub seq: u32,
    pub hidden: u32,
    pub heads: u32,
    pub head_dim: u32,
    pub scale: f32,
    pub _pad: [u32; 3],
}

impl Params for LinearParams {}
impl Params for LayerNormParams {}
impl Params for EmbeddingParams {}
impl Params for AttentionParams {}

/// Bytes of the largest parameter block (a binder slot holds any of them).
const MAX_PARAMS_BYTES: u64 = 32;

/// Makes the bind groups of one forward pass. Every kernel's block of parameters goes to a slot of one
/// uniform buffer, staged on the host and written with a single `queue.write_buffer` ([`Binder::upload`])
/// before the pass is submitted: a buffer per dispatch would cost a driver allocation natively, and a
/// message to the GPU process in a browser, dozens of times per call. A binder is reused call after call
/// (one call at a time); past its slots it falls back to a buffer per dispatch.
pub struct Binder {
    device: wgpu::Device,
    uniforms: wgpu::Buffer,
    /// Bytes between slots: the device's uniform offset alignment (256 on most).
    stride: u64,
    slots: u64,
    staged: Vec<u8>,
}

impl Binder {
    /// A binder for passes of up to `slots` dispatches.
    pub fn new(gpu: &Gpu, slots: usize) -> Binder {
        let stride = u64::from(gpu.limits.min_uniform_buffer_offset_alignment).max(MAX_PARAMS_BYTES);
        let uniforms = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("dims"),
            size: stride * slots.max(1) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Binder { device: gpu.device.clone(), uniforms, stride, slots: slots as u64, staged: Vec::new() }
    }

    /// A bind group of `params` (binding 0) and then `buffers` (bindings 1, 2, ...).
    fn bind<P: Params>(
        &mut self,
        pipeline: &wgpu::ComputePipeline,
        params: &P,
        buffers: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        let bytes = bytemuck::bytes_of(params);
        let slot = self.staged.len() as u64 / self.stride;
        let own_buffer;
        let params_binding = if slot < self.slots {
            self.staged.extend_from_slice(bytes);
            self.staged.resize(((slot + 1) * self.stride) as usize, 0);
            wgpu::BufferBinding {
                buffer: &self.uniforms,
                offset: slot * self.stride,
                size: wgpu::BufferSize::new(bytes.len() as u64),
            }
        } else {
            own_buffer = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("dims"),
                contents: bytes,
                usage: wgpu::BufferUsages::UNIFORM,
            });
            own_buffer.as_entire_buffer_binding()
        };
        let entries: Vec<wgpu::BindGroupEntry> = std::iter::once(wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(params_binding),
        })
        .chain(
            buffers
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.as_entire_binding() }),
        )
        .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        })
    }

    /// Writes the blocks staged since the last upload; call after recording and before submitting.
    pub fn upload(&mut self, queue: &wgpu::Queue) {
        if !self.staged.is_empty() {
            queue.write_buffer(&self.uniforms, 0, &self.staged);
            self.staged.clear();
        }
    }
}

fn dispatch(
    pass: &mut wgpu::ComputePass,
    pipeline: &wgpu::ComputePipeline,
    group: &wgpu::BindGroup,
    xyz: (u32, u32, u32),
) {
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, group, &[]);
    pass.dispatch_workgroups(xyz.0, xyz.1, xyz.2);
}

/// `out[m, n] = act(x[m * x_stride + k] . weight[n, k] + bias[n])` for `rows` rows.
pub struct LinearOp<'a> {
    pub x: &'a wgpu::Buffer,
    /// Floats between consecutive rows of `x` (the row width, or more to pick rows).
    pub x_stride: usize,
    pub rows: usize,
    pub weight: &'a WebGpuMatrix,
    pub bias: &'a wgpu::Buffer,
    pub out: &'a wgpu::Buffer,
    pub act: EpilogueOp,
}

/// `out = LayerNorm(x + residual)` over `rows` rows of `cols` values (`residual` optional).
pub struct LayerNormOp<'a> {
    pub x: &'a wgpu::Buffer,
    pub residual: Option<&'a wgpu::Buffer>,
    pub gamma: &'a wgpu::Buffer,
    pub beta: &'a wgpu::Buffer,
    pub out: &'a wgpu::Buffer,
    pub rows: usize,
    pub cols: usize,
    pub eps: f32,
}

/// `out[t] = word[ids[t]] + position[t mod seq] + token_type[types[t]]` for `tokens` tokens.
pub struct EmbeddingsOp<'a> {
    pub ids: &'a wgpu::Buffer,
    pub types: &'a wgpu::Buffer,
    /// Word, position and token-type tables, one storage type.
    pub tables: [&'a WebGpuMatrix; 3],
    pub out: &'a wgpu::Buffer,
    pub tokens: usize,
    pub seq: usize,
}

/// Multi-head self-attention over `qkv` (`[batch * seq, 3 * hidden]`) with the padding `mask`
/// (`[batch * seq]`, 1 = token) into `out` (`[batch * seq, hidden]`).
pub struct AttentionOp<'a> {
    pub qkv: &'a wgpu::Buffer,
    pub mask: &'a wgpu::Buffer,
    pub out: &'a wgpu::Buffer,
    pub batch: usize,
    pub seq: usize,
    pub hidden: usize,
    pub heads: usize,
}

impl Kernels {
    /// Compiles every kernel for sequences up to `max_seq` tokens.
    pub fn new(gpu: &Gpu, max_seq: usize) -> Kernels {
        let attention = ATTENTION.replace("MAX_SEQ", &max_seq.max(1).to_string());
        Kernels {
            matmul_int8: pipeline(gpu, "matmul_int8", &with_int8(true, MATMUL)),
            matmul_f32: pipeline(gpu, "matmul_f32", &with_int8(false, MATMUL)),
            layernorm: pipeline(gpu, "layernorm", LAYERNORM),
            embeddings_int8: pipeline(gpu, "embeddings_int8", &with_int8(true, EMBEDDINGS)),
            embeddings_f32: pipeline(gpu, "embeddings_f32", &with_int8(false, EMBEDDINGS)),
            attention: pipeline(gpu, "attention", &attention),
            max_seq,
        }
    }

    pub fn linear(&self, binder: &mut Binder, pass: &mut wgpu::ComputePass, op: &LinearOp) {
        let w = op.weight;
        let pipeline = if w.int8 { &self.matmul_int8 } else { &self.matmul_f32 };
        let params = LinearParams {
            m: op.rows as u32,
            n: w.rows as u32,
            k: w.cols as u32,
            x_stride: op.x_stride as u32,
            k_padded: w.stored_cols() as u32,
            act: op.act as u32,
            _pad: [0; 2],
        };
        let group = binder.bind(pipeline, &params, &[op.x, &w.data, &w.scales, op.bias, op.out]);
        dispatch(pass, pipeline, &group, (groups(w.rows, MATMUL_TILE), groups(op.rows, MATMUL_TILE), 1));
    }

    pub fn layer_norm(&self, binder: &mut Binder, pass: &mut wgpu::ComputePass, op: &LayerNormOp) {
        let params = LayerNormParams {
            rows: op.rows as u32,
            cols: op.cols as u32,
            has_residual: op.residual.is_some() as u32,
            eps: op.eps,
        };
        let group =
            binder.bind(&self.layernorm, &params, &[op.x, op.residual.unwrap_or(op.x), op.gamma, op.beta, op.out]);
        let (gx, gy) = split_groups(op.rows as u32);
        dispatch(pass, &self.layernorm, &group, (gx, gy, 1));
    }

    pub fn embeddings(&self, binder: &mut Binder, pass: &mut wgpu::ComputePass, op: &EmbeddingsOp) {
        let [word, position, token_type] = op.tables;
        let pipeline = if word.int8 { &self.embeddings_int8 } else { &self.embeddings_f32 };
        let hidden = word.cols;
        let params = EmbeddingParams {
            tokens: op.tokens as u32,
            seq: op.seq as u32,
            hidden: hidden as u32,
            k_padded: word.stored_cols() as u32,
        };
        let group = binder.bind(
            pipeline,
            &params,
            &[
                op.ids,
                op.types,
                &word.data,
                &word.scales,
                &position.data,
                &position.scales,
                &token_type.data,
                &token_type.scales,
                op.out,
            ],
        );
        let (gy, gz) = split_groups(op.tokens as u32);
        dispatch(pass, pipeline, &group, (groups(hidden, ROW_WORKGROUP), gy, gz));
    }

    pub fn attention(&self, binder: &mut Binder, pass: &mut wgpu::ComputePass, op: &AttentionOp) {
        assert!(op.seq <= self.max_seq, "sequence of {} tokens exceeds the compiled {}", op.seq, self.max_seq);
        let head_dim = op.hidden / op.heads;
        let params = AttentionParams {
            seq: op.seq as u32,
            hidden: op.hidden as u32,
            heads: op.heads as u32,
            head_dim: head_dim as u32,
            scale: (1.0 / (head_dim as f64).sqrt()) as f32,
            _pad: [0; 3],
        };
        let group = binder.bind(&self.attention, &params, &[op.qkv, op.mask, op.out]);
        dispatch(pass, &self.attention, &group, (op.seq as u32, op.heads as u32, op.batch as u32));
    }
}

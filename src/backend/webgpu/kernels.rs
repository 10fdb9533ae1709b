//! The WGSL kernels (`shaders/*.wgsl`), compiled once per device, and the code that binds their buffers
//! and records their dispatches. Every kernel here has a test against the CPU reference.
//!
//! Each kernel's buffers are bound once ([`Kernels::bind`]: a bind group per step of the pass, made when
//! the workspace is), and its sizes come per call: a small uniform block ([`Params`]) in a slot of one
//! uniform buffer ([`Uniforms`]), chosen at record time with a dynamic offset. So a call creates no
//! bind group and no buffer, and writes every block with one upload. Variants (int8 or f32 weights,
//! tile shapes, the head size) are constants the host puts at the top of the source, after which the
//! shared WGSL (`activations.wgsl`, `norm_rows.wgsl`, `layer_norm_row.wgsl`) follows.

use super::device::Gpu;

const ACTIVATIONS: &str = include_str!("shaders/activations.wgsl");
const NORM_ROWS: &str = include_str!("shaders/norm_rows.wgsl");
const LAYER_NORM_ROW: &str = include_str!("shaders/layer_norm_row.wgsl");
const MATMUL: &str = include_str!("shaders/matmul.wgsl");
const SPLIT_REDUCE: &str = include_str!("shaders/split_reduce.wgsl");
const LAYERNORM: &str = include_str!("shaders/layernorm.wgsl");
const EMBED_NORM: &str = include_str!("shaders/embed_norm.wgsl");
const ATTENTION: &str = include_str!("shaders/attention.wgsl");
const HEAD: &str = include_str!("shaders/head.wgsl");

/// Invocations per workgroup of the row-wise kernels (LayerNorm, embeddings, head, the split-K sum).
const ROW_WORKGROUP: u32 = 64;
/// Most workgroups along one dispatch dimension (WebGPU's guaranteed minimum).
const MAX_GROUPS: u32 = 65535;
/// Queries per attention workgroup (`QT` in attention.wgsl).
const ATTENTION_QUERIES: u32 = 32;
/// Workgroup memory the attention kernel gives each chunk's keys and values (8 KiB: with its scores, it
/// stays under WebGPU's guaranteed 16 KiB).
const ATTENTION_KV_BYTES: usize = 8192;

/// Workgroups a linear layer's dispatch should reach when its rows are few (a batch of one tweet): about
/// twice the streaming multiprocessors of a large GPU (an H100 has 132), so every one has work. Fewer
/// row tiles than this take the small tile and a split along k ([`MatmulShape::for_sizes`]).
pub const TARGET_WORKGROUPS: u32 = 264;

/// What the matmul kernel applies after the bias (its `act` uniform): nothing, the model's activation
/// (the config's [`crate::config::HiddenAct`], mapped to its WGSL form), or the pooler's tanh. Not the
/// config's enum: it has more cases and is a shader's numbering (activations.wgsl).
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

/// The matmul kernel's two tiles: rows x columns of one workgroup's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tile {
    /// 64 x 64, 256 invocations of 4 x 4 outputs: many rows.
    Large,
    /// 16 x 32, 128 invocations of 1 x 4 outputs: few rows (small batches).
    Small,
}

impl Tile {
    /// `(WG_X, RM)`: invocations along the columns, rows per invocation (matmul.wgsl).
    pub const fn shape(self) -> (u32, u32) {
        match self {
            Tile::Large => (16, 4),
            Tile::Small => (8, 1),
        }
    }

    /// Output rows and columns of one workgroup.
    pub const fn outputs(self) -> (u32, u32) {
        let (wg_x, rm) = self.shape();
        (16 * rm, 4 * wg_x)
    }
}

/// How one linear layer of `m` rows is dispatched: the tile and the number of splits along k.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatmulShape {
    pub tile: Tile,
    pub splits: u32,
    /// Columns of k per split, a multiple of 32.
    pub k_chunk: u32,
}

impl MatmulShape {
    /// The large tile where it gives [`TARGET_WORKGROUPS`]; else the small one, split along k (in whole
    /// blocks of 32) until the dispatch reaches the target or every split is one block.
    pub fn for_sizes(m: usize, n: usize, k: usize) -> MatmulShape {
        let tiles = |tile: Tile| {
            let (tm, tn) = tile.outputs();
            (m as u32).div_ceil(tm).max(1) * (n as u32).div_ceil(tn).max(1)
        };
        let blocks = (k as u32).div_ceil(32).max(1);
        if tiles(Tile::Large) >= TARGET_WORKGROUPS {
            return MatmulShape { tile: Tile::Large, splits: 1, k_chunk: blocks * 32 };
        }
        let wanted = TARGET_WORKGROUPS.div_ceil(tiles(Tile::Small)).clamp(1, blocks);
        // Rounding the chunk down keeps at least `wanted` splits (and fewer than twice as many).
        let chunk_blocks = (blocks / wanted).max(1);
        MatmulShape { tile: Tile::Small, splits: blocks.div_ceil(chunk_blocks), k_chunk: chunk_blocks * 32 }
    }

    /// Workgroups of the matmul dispatch for `m` x `n` outputs.
    pub fn workgroups(&self, m: usize, n: usize) -> [u32; 3] {
        let (tm, tn) = self.tile.outputs();
        [(n as u32).div_ceil(tn).max(1), (m as u32).div_ceil(tm).max(1), self.splits]
    }
}

/// Floats of the split-K scratch buffer: enough for any [`MatmulShape`] with more than one split, which
/// only small row counts get: fewer small tiles than the target, and fewer than twice the splits the
/// target asks, so splits x tiles < 2 x (target / tiles + 1) x tiles < 4 x target.
pub fn partial_capacity() -> usize {
    let (tm, tn) = Tile::Small.outputs();
    (4 * TARGET_WORKGROUPS * tm * tn) as usize
}

/// The block of uniform parameters a kernel reads, laid out as its WGSL `Dims` struct (`#[repr(C)]`,
/// 32-bit fields, [`PARAMS_BYTES`] in all).
pub trait Params: bytemuck::Pod {}

/// Bytes of every parameter block: eight 32-bit fields (each uniform binding is this size).
pub const PARAMS_BYTES: u64 = 32;

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
    pub k_chunk: u32,
    pub splits: u32,
}

/// `split_reduce.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SplitReduceParams {
    pub m: u32,
    pub n: u32,
    pub splits: u32,
    pub act: u32,
    pub _pad: [u32; 4],
}

/// `layernorm.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LayerNormParams {
    pub rows: u32,
    pub cols: u32,
    pub has_residual: u32,
    pub eps: f32,
    pub residual_stride: u32,
    pub _pad: [u32; 3],
}

/// `embed_norm.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct EmbedNormParams {
    pub tokens: u32,
    pub seq: u32,
    pub hidden: u32,
    pub k_padded: u32,
    pub types_offset: u32,
    pub position_row0: u32,
    pub type_row0: u32,
    pub eps: f32,
}

/// `attention.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AttentionParams {
    pub seq: u32,
    pub hidden: u32,
    pub heads: u32,
    pub mask_offset: u32,
    pub scale: f32,
    pub cls_only: u32,
    pub _pad: [u32; 2],
}

/// `head.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct HeadParams {
    pub texts: u32,
    pub hidden: u32,
    pub k_padded: u32,
    pub labels: u32,
    pub x_stride: u32,
    pub _pad: [u32; 3],
}

impl Params for LinearParams {}
impl Params for SplitReduceParams {}
impl Params for LayerNormParams {}
impl Params for EmbedNormParams {}
impl Params for AttentionParams {}
impl Params for HeadParams {}

const _: () = {
    assert!(size_of::<LinearParams>() as u64 == PARAMS_BYTES);
    assert!(size_of::<SplitReduceParams>() as u64 == PARAMS_BYTES);
    assert!(size_of::<LayerNormParams>() as u64 == PARAMS_BYTES);
    assert!(size_of::<EmbedNormParams>() as u64 == PARAMS_BYTES);
    assert!(size_of::<AttentionParams>() as u64 == PARAMS_BYTES);
    assert!(size_of::<HeadParams>() as u64 == PARAMS_BYTES);
};

/// One slot per dispatch of a call in one uniform buffer: parameter blocks are staged on the host as
/// dispatches are recorded and written with a single upload before the submit.
pub struct Uniforms {
    buffer: wgpu::Buffer,
    /// Bytes between slots: the device's uniform offset alignment (256 on most).
    stride: u64,
    slots: u64,
    staged: Vec<u8>,
}

impl Uniforms {
    pub fn new(gpu: &Gpu, slots: usize) -> Uniforms {
        let stride = u64::from(gpu.limits.min_uniform_buffer_offset_alignment).max(PARAMS_BYTES);
        let slots = slots.max(1) as u64;
        let usage = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;
        Uniforms { buffer: gpu.create_buffer("dims", stride * slots, usage), stride, slots, staged: Vec::new() }
    }

    /// Stages `params` in the next slot and returns its offset (the dispatch's dynamic offset).
    fn stage<P: Params>(&mut self, params: &P) -> u32 {
        let slot = self.staged.len() as u64 / self.stride;
        assert!(slot < self.slots, "a call records more dispatches than its workspace has uniform slots");
        self.staged.extend_from_slice(bytemuck::bytes_of(params));
        self.staged.resize(((slot + 1) * self.stride) as usize, 0);
        (slot * self.stride) as u32
    }

    /// Writes the blocks staged since the last upload (one upload); call before submitting.
    pub fn upload(&mut self, gpu: &Gpu) {
        if !self.staged.is_empty() {
            gpu.write_buffer(&self.buffer, 0, &self.staged);
            self.staged.clear();
        }
    }
}

/// A compiled kernel: its pipeline and the layout of its one bind group (binding 0: the uniform block
/// with a dynamic offset; then storage buffers in the kernel's order).
pub struct Kernel {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

/// Whether a storage binding is only read.
#[derive(Clone, Copy)]
enum Access {
    Read,
    Write,
}

/// The bind group layout of a kernel family (every variant of a kernel binds the same buffers, so a
/// step's bind group serves whichever variant a call picks): binding 0, the uniform block with a
/// dynamic offset, then storage buffers in the kernel's order.
fn layout(gpu: &Gpu, label: &str, storage: &[Access]) -> wgpu::BindGroupLayout {
    let uniform = wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: true,
            min_binding_size: wgpu::BufferSize::new(PARAMS_BYTES),
        },
        count: None,
    };
    let entries: Vec<wgpu::BindGroupLayoutEntry> = std::iter::once(uniform)
        .chain(storage.iter().enumerate().map(|(i, access)| wgpu::BindGroupLayoutEntry {
            binding: i as u32 + 1,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: matches!(access, Access::Read) },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }))
        .collect();
    gpu.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(label), entries: &entries })
}

impl Kernel {
    fn new(gpu: &Gpu, label: &str, source: &str, layout: &wgpu::BindGroupLayout) -> Kernel {
        let module = gpu.create_shader_module(label, source);
        Kernel { pipeline: gpu.create_pipeline(label, &module, layout), layout: layout.clone() }
    }
}

/// One kernel dispatch: which kernel, the buffers it binds, its parameters and workgroup counts.
pub struct Dispatch<'a, P> {
    pub kernel: &'a Kernel,
    pub buffers: Vec<&'a wgpu::Buffer>,
    pub params: P,
    pub workgroups: [u32; 3],
}

impl<P: Params> Dispatch<'_, P> {
    /// A bind group of this dispatch's buffers, with binding 0 on `uniforms` (its slot is given at
    /// record time): made once per workspace and step.
    pub fn bind(&self, gpu: &Gpu, uniforms: &Uniforms) -> wgpu::BindGroup {
        let params = wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &uniforms.buffer,
            offset: 0,
            size: wgpu::BufferSize::new(PARAMS_BYTES),
        });
        let entries: Vec<wgpu::BindGroupEntry> = std::iter::once(wgpu::BindGroupEntry { binding: 0, resource: params })
            .chain(
                self.buffers
                    .iter()
                    .enumerate()
                    .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.as_entire_binding() }),
            )
            .collect();
        gpu.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &self.kernel.layout,
            entries: &entries,
        })
    }

    /// Records the dispatch on `group` (made by [`Self::bind`] with the same buffers), its parameters in
    /// the next slot of `uniforms`.
    pub fn record(&self, pass: &mut wgpu::ComputePass, group: &wgpu::BindGroup, uniforms: &mut Uniforms) {
        let offset = uniforms.stage(&self.params);
        pass.set_pipeline(&self.kernel.pipeline);
        pass.set_bind_group(0, group, &[offset]);
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }
}

fn groups(n: usize, per_group: u32) -> u32 {
    (n as u32).div_ceil(per_group).max(1)
}

/// Splits a count of workgroups over x and y so neither exceeds the per-dimension limit; the shaders
/// recombine them as `x + y * 65535`.
fn split_groups(count: u32) -> [u32; 3] {
    if count <= MAX_GROUPS {
        [count.max(1), 1, 1]
    } else {
        [MAX_GROUPS, count.div_ceil(MAX_GROUPS), 1]
    }
}

/// `out = act(x . W^T + bias)` for `rows` rows of x (row r at `r * x_stride`), split along k as
/// `shape` says (the partial sums go to `partial`, and [`Kernels::split_reduce`] finishes them).
pub struct LinearOp<'a> {
    pub x: &'a wgpu::Buffer,
    pub x_stride: usize,
    pub rows: usize,
    pub weight: &'a WebGpuMatrix,
    pub bias: &'a wgpu::Buffer,
    pub out: &'a wgpu::Buffer,
    pub partial: &'a wgpu::Buffer,
    pub act: EpilogueOp,
    pub shape: MatmulShape,
}

/// `out = LayerNorm(x + residual)` over `rows` rows of `cols` values; residual row r at
/// `r * residual_stride` (`residual` optional). `params` is gamma then beta.
pub struct LayerNormOp<'a> {
    pub x: &'a wgpu::Buffer,
    pub residual: Option<&'a wgpu::Buffer>,
    pub residual_stride: usize,
    pub params: &'a wgpu::Buffer,
    pub out: &'a wgpu::Buffer,
    pub rows: usize,
    pub cols: usize,
    pub eps: f32,
}

/// Where the embedding tables' rows start in their one buffer: the word rows, then these.
#[derive(Debug, Clone, Copy)]
pub struct TableRows {
    pub position_row0: usize,
    pub type_row0: usize,
}

/// `out[t] = LayerNorm(word[ids[t]] + position[t mod seq] + token_type[types[t]])` for `tokens` tokens,
/// ids and types from `inputs` (types from `types_offset`).
pub struct EmbedNormOp<'a> {
    pub inputs: &'a wgpu::Buffer,
    pub types_offset: usize,
    pub tables: &'a WebGpuMatrix,
    pub rows: TableRows,
    pub params: &'a wgpu::Buffer,
    pub out: &'a wgpu::Buffer,
    pub tokens: usize,
    pub seq: usize,
    pub eps: f32,
}

/// Multi-head self-attention over `qkv` (`[texts * seq, 3 * hidden]`) with the padding mask of
/// `inputs` (from `mask_offset`, 1 = token) into `out`: every query (`[texts * seq, hidden]`), or with
/// `cls_only` each text's first (`[texts, hidden]`).
pub struct AttentionOp<'a> {
    pub qkv: &'a wgpu::Buffer,
    pub inputs: &'a wgpu::Buffer,
    pub mask_offset: usize,
    pub out: &'a wgpu::Buffer,
    pub texts: usize,
    pub seq: usize,
    pub hidden: usize,
    pub heads: usize,
    pub cls_only: bool,
}

/// `logits = classifier(tanh(pooler(x_cls)))` for `texts` texts, text t's row at `t * x_stride`.
/// `head` is the classifier's f32 weights then biases.
pub struct HeadOp<'a> {
    pub x: &'a wgpu::Buffer,
    pub x_stride: usize,
    pub pooler: &'a WebGpuMatrix,
    pub pooler_bias: &'a wgpu::Buffer,
    pub head: &'a wgpu::Buffer,
    pub out: &'a wgpu::Buffer,
    pub texts: usize,
    pub labels: usize,
}

/// The compiled pipelines for one model's sizes.
pub struct Kernels {
    matmul: [[Kernel; 2]; 2],
    split_reduce: Kernel,
    layernorm: Kernel,
    embed_norm: [Kernel; 2],
    attention: Kernel,
    head: [Kernel; 2],
    /// The attention kernel's head size.
    head_dim: usize,
}

use Access::{Read, Write};

/// `const` lines for the top of a source.
fn consts(values: &[(&str, String)]) -> String {
    values.iter().map(|(name, value)| format!("const {name} = {value};\n")).collect()
}

impl Kernels {
    /// Compiles every kernel for a model of `hidden` wide rows and `head_dim` wide heads.
    pub fn new(gpu: &Gpu, hidden: usize, head_dim: usize) -> Kernels {
        let int8 = |i: usize| consts(&[("INT8", (i == 0).to_string())]);
        let matmul_layout = layout(gpu, "matmul", &[Read, Read, Read, Read, Write, Write]);
        let matmul = |variant: usize, tile: Tile| {
            let (wg_x, rm) = tile.shape();
            let tile = consts(&[("WG_X", format!("{wg_x}u")), ("RM", format!("{rm}u"))]);
            Kernel::new(gpu, "matmul", &format!("{}{tile}{ACTIVATIONS}{MATMUL}", int8(variant)), &matmul_layout)
        };
        let d_pad = head_dim.next_multiple_of(16);
        let keys_per_chunk = (ATTENTION_KV_BYTES / (2 * 4 * d_pad)).clamp(4, ATTENTION_QUERIES as usize);
        let attention = consts(&[
            ("HEAD_DIM", format!("{head_dim}u")),
            ("QV", format!("{}u", d_pad / 4)),
            ("KC", format!("{keys_per_chunk}u")),
        ]);
        let embed_layout = layout(gpu, "embed_norm", &[Read, Read, Read, Read, Write]);
        let embed_norm = |variant: usize| {
            let source = format!("{}{ACTIVATIONS}{NORM_ROWS}{LAYER_NORM_ROW}{EMBED_NORM}", int8(variant));
            Kernel::new(gpu, "embed_norm", &source, &embed_layout)
        };
        let head_layout = layout(gpu, "head", &[Read, Read, Read, Read, Read, Write]);
        let head = |variant: usize| {
            let hidden = consts(&[("HIDDEN", format!("{hidden}u"))]);
            Kernel::new(gpu, "head", &format!("{}{hidden}{ACTIVATIONS}{NORM_ROWS}{HEAD}", int8(variant)), &head_layout)
        };
        let single = |label: &str, source: String, storage: &[Access]| {
            Kernel::new(gpu, label, &source, &layout(gpu, label, storage))
        };
        Kernels {
            matmul: [
                [matmul(0, Tile::Large), matmul(0, Tile::Small)],
                [matmul(1, Tile::Large), matmul(1, Tile::Small)],
            ],
            split_reduce: single("split_reduce", format!("{ACTIVATIONS}{SPLIT_REDUCE}"), &[Read, Read, Write]),
            layernorm: single(
                "layernorm",
                format!("{NORM_ROWS}{LAYER_NORM_ROW}{LAYERNORM}"),
                &[Read, Read, Read, Write],
            ),
            embed_norm: [embed_norm(0), embed_norm(1)],
            attention: single("attention", format!("{attention}{ATTENTION}"), &[Read, Read, Write]),
            head: [head(0), head(1)],
            head_dim,
        }
    }

    /// The matmul dispatch of `op` (partial sums when split).
    pub fn linear<'a>(&'a self, op: &LinearOp<'a>) -> Dispatch<'a, LinearParams> {
        let w = op.weight;
        let tile = match op.shape.tile {
            Tile::Large => 0,
            Tile::Small => 1,
        };
        Dispatch {
            kernel: &self.matmul[usize::from(!w.int8)][tile],
            buffers: vec![op.x, &w.data, &w.scales, op.bias, op.out, op.partial],
            params: LinearParams {
                m: op.rows as u32,
                n: w.rows as u32,
                k: w.cols as u32,
                x_stride: op.x_stride as u32,
                k_padded: w.stored_cols() as u32,
                act: op.act as u32,
                k_chunk: op.shape.k_chunk,
                splits: op.shape.splits,
            },
            workgroups: op.shape.workgroups(op.rows, w.rows),
        }
    }

    /// The dispatch that adds up a split linear layer's partial sums, its bias and activation.
    pub fn split_reduce<'a>(&'a self, op: &LinearOp<'a>) -> Dispatch<'a, SplitReduceParams> {
        let outputs = op.rows * op.weight.rows;
        Dispatch {
            kernel: &self.split_reduce,
            buffers: vec![op.partial, op.bias, op.out],
            params: SplitReduceParams {
                m: op.rows as u32,
                n: op.weight.rows as u32,
                splits: op.shape.splits,
                act: op.act as u32,
                _pad: [0; 4],
            },
            workgroups: split_groups(groups(outputs, ROW_WORKGROUP)),
        }
    }

    pub fn layer_norm<'a>(&'a self, op: &LayerNormOp<'a>) -> Dispatch<'a, LayerNormParams> {
        Dispatch {
            kernel: &self.layernorm,
            buffers: vec![op.x, op.residual.unwrap_or(op.x), op.params, op.out],
            params: LayerNormParams {
                rows: op.rows as u32,
                cols: op.cols as u32,
                has_residual: op.residual.is_some() as u32,
                eps: op.eps,
                residual_stride: op.residual_stride as u32,
                _pad: [0; 3],
            },
            workgroups: split_groups(op.rows as u32),
        }
    }

    pub fn embed_norm<'a>(&'a self, op: &EmbedNormOp<'a>) -> Dispatch<'a, EmbedNormParams> {
        let tables = op.tables;
        Dispatch {
            kernel: &self.embed_norm[usize::from(!tables.int8)],
            buffers: vec![op.inputs, &tables.data, &tables.scales, op.params, op.out],
            params: EmbedNormParams {
                tokens: op.tokens as u32,
                seq: op.seq as u32,
                hidden: tables.cols as u32,
                k_padded: tables.stored_cols() as u32,
                types_offset: op.types_offset as u32,
                position_row0: op.rows.position_row0 as u32,
                type_row0: op.rows.type_row0 as u32,
                eps: op.eps,
            },
            workgroups: split_groups(op.tokens as u32),
        }
    }

    pub fn attention<'a>(&'a self, op: &AttentionOp<'a>) -> Dispatch<'a, AttentionParams> {
        let queries = if op.cls_only { 1 } else { op.seq };
        Dispatch {
            kernel: &self.attention,
            buffers: vec![op.qkv, op.inputs, op.out],
            params: AttentionParams {
                seq: op.seq as u32,
                hidden: op.hidden as u32,
                heads: op.heads as u32,
                mask_offset: op.mask_offset as u32,
                scale: (1.0 / (self.head_dim as f64).sqrt()) as f32,
                cls_only: op.cls_only as u32,
                _pad: [0; 2],
            },
            workgroups: [groups(queries, ATTENTION_QUERIES), op.heads as u32, op.texts as u32],
        }
    }

    pub fn head<'a>(&'a self, op: &HeadOp<'a>) -> Dispatch<'a, HeadParams> {
        let pooler = op.pooler;
        Dispatch {
            kernel: &self.head[usize::from(!pooler.int8)],
            buffers: vec![op.x, &pooler.data, &pooler.scales, op.pooler_bias, op.head, op.out],
            params: HeadParams {
                texts: op.texts as u32,
                hidden: pooler.cols as u32,
                k_padded: pooler.stored_cols() as u32,
                labels: op.labels as u32,
                x_stride: op.x_stride as u32,
                _pad: [0; 3],
            },
            workgroups: [op.texts.max(1) as u32, 1, 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Tile;

    /// matmul.wgsl's `xs_index` and `ws_index`: where vec4 `q` (k / 4) of tile row or column `r` sits in
    /// a tile of `rows` rows. Keep in step with the shader.
    fn tile_index(rows: u32, q: u32, r: u32) -> u32 {
        q * rows + (r ^ q)
    }

    /// The bank conflict degree of one warp's vec4 (16-byte) accesses to workgroup memory, as NVIDIA
    /// hardware serves them: 32 banks of 4 bytes, a 128-bit request split into four phases of 8
    /// invocations; in a phase, a bank holding words of n distinct addresses costs n passes (invocations
    /// reading one address share a broadcast). `addresses` are in vec4 units, one per invocation.
    fn conflict_degree(addresses: &[u32]) -> usize {
        addresses
            .chunks(8)
            .map(|phase| {
                (0..32u32)
                    .map(|bank| {
                        let mut touching: Vec<u32> =
                            phase.iter().copied().filter(|a| (4 * a..4 * a + 4).any(|w| w % 32 == bank)).collect();
                        touching.sort_unstable();
                        touching.dedup();
                        touching.len()
                    })
                    .max()
                    .unwrap_or(0)
            })
            .max()
            .unwrap_or(0)
    }

    /// Every workgroup-memory access of the matmul kernel, for every warp of both tiles, is free of bank
    /// conflicts: the tile stores (each invocation one vec4 of a row's k-block), and the inner loop's
    /// reads of the weight columns (`b0..b3`) and the activation rows (`acc0..acc3`). The unswizzled
    /// layout (`r ^ q` replaced by `r`) is checked to conflict 8 ways, so the model can tell.
    #[test]
    fn the_matmul_tiles_are_free_of_bank_conflicts() {
        for tile in [Tile::Large, Tile::Small] {
            let (wg_x, rm) = tile.shape();
            let (tm, tn) = tile.outputs();
            let threads = 16 * wg_x;
            for warp in 0..threads / 32 {
                let invocations: Vec<u32> = (32 * warp..32 * (warp + 1)).collect();
                let (lx, ly) = (|t: u32| t % wg_x, |t: u32| t / wg_x);
                // Tile stores: element i = t + threads * pass is (row i / 8, q i % 8).
                for (rows, tile_rows) in [(tm, tm), (tn, tn)] {
                    for pass in 0..(8 * rows).div_ceil(threads) {
                        let addresses: Vec<u32> = invocations
                            .iter()
                            .map(|t| t + threads * pass)
                            .filter(|i| *i < 8 * rows)
                            .map(|i| tile_index(tile_rows, i % 8, i / 8))
                            .collect();
                        assert_eq!(conflict_degree(&addresses), 1, "{tile:?} stores, warp {warp}, pass {pass}");
                    }
                }
                for q in 0..8 {
                    for j in 0..4 {
                        let reads: Vec<u32> =
                            invocations.iter().map(|&t| tile_index(tn, q, lx(t) + wg_x * j)).collect();
                        assert_eq!(conflict_degree(&reads), 1, "{tile:?} weight reads, warp {warp}, q {q}, j {j}");
                    }
                    for i in 0..rm {
                        let reads: Vec<u32> = invocations.iter().map(|&t| tile_index(tm, q, ly(t) + 16 * i)).collect();
                        assert_eq!(conflict_degree(&reads), 1, "{tile:?} row reads, warp {warp}, q {q}, i {i}");
                    }
                }
            }
            let unswizzled: Vec<u32> = (0..32).map(|i| (i % 8) * tm + i / 8).collect();
            assert_eq!(conflict_degree(&unswizzled), 8, "{tile:?}: the model must see the plain layout's conflicts");
        }
    }
}

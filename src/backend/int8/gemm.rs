//! The int8 engine's matrix multiply, `y = x W^T + bias`, with int8 weights in the file's blocks (32 values,
//! or 64 in some tensors: `int8-block-v2`) and activations quantized in blocks of the same length
//! ([`QuantizedRows`]). Below, "32" is the block length of the matrix at hand.
//!
//! Semantics, the same bits on every instruction set (docs/weight-format.md, "int8 compute"). Activations
//! are quantized per block to 7 bits with a zero point ([`quantize_block`]: the block's range
//! `[min(x, 0), max(x, 0)]` onto 0..=127), so every integer dot product is exact on every engine: AVX2's
//! `vpmaddubsw` sums two products into an i16 without saturating, and wasm's relaxed
//! `i32x4.dot_i8x16_i7x16_add` is defined only for a second operand in 0..=127. For row `m`, output `n`:
//!
//! ```text
//! D[m][n][b] = sum over block b of xq[m][k] * wq[n][k]  -  zx[m][b] * S[n][b]   exact in i32; S = the block's sum of wq
//! y[m][n]    = sum over b, in order, of (D as f32) * (sw[n][b] * sx[m][b])  +  bias[n]
//!              (f32: the scales' product, then multiply, then add; no FMA)
//! ```
//!
//! Weights are packed at load into panels of [`PANEL`] output columns: for each 4-value chunk of the
//! input, the panel's 16 columns' 4 bytes side by side. A micro-kernel broadcasts 4 activation bytes of a
//! row and takes a 4-way dot product with each column at once (`vpdpbusd`, `i32x4.dot_i8x16_i7x16_add`),
//! so no horizontal sums are needed; its i32 sums start each block at `-zx * S` (the zero point's share;
//! `S` is computed once at load), and after each block it scales them into f32 accumulators. One packing
//! serves every instruction set: a 128-bit vector holds 4 columns, a 256-bit one 8, a 512-bit one 16.
//!
//! Baseline wasm `simd128` has no 8-bit dot product: its multiply-add is `i32x4.dot_i16x8_s` (x86's
//! `pmaddwd`: 8 products of 16-bit values, summed in pairs). For calls of [`WIDEN_MIN_ROWS`] rows or more its
//! kernel widens once per call and reads 16-bit operands ([`Kernel::Widened`]): the activations as `q -
//! zero` (exact in i16, so the zero point's share disappears) and each panel, as it comes, as pairs of input
//! values per column. Each weight is then widened once per call instead of once per row, and a multiply-add
//! covers 8 products instead of 4 columns' half-sums that need pairing up. The sums are the same integers, so
//! the bits are the same. The weights stay int8 in memory: one panel is widened at a time, into
//! [`GemmScratch`].

use crate::weights::quant::{padded_len, QuantizedMatrix, BLOCK, WIDE_BLOCK};

/// Output columns per packed panel.
pub const PANEL: usize = 16;
/// Most rows one micro-kernel call computes.
pub const MAX_ROWS: usize = 4;
/// Largest quantized activation.
pub(super) const Q_MAX: f32 = 127.0;
/// Fewest rows for which the baseline `simd128` kernel widens its operands first (module docs): widening a
/// panel costs about as much as one row's pass over it, so below this the byte kernel is faster. (Measured
/// on Zen 3 in V8: ~1.1x the byte kernel at 8 rows, 1.35x in Node 20 and ~2x in Chromium 156 at 40.)
pub const WIDEN_MIN_ROWS: usize = 3;

/// Rows of activations quantized per block (of the weights' length, [`Self::block`]): `x ≈ scale[b] * (q -
/// zero[b])`, `q` in `0..=127`; each row padded to whole blocks with zeros (which quantize to the zero point).
#[derive(Debug, Clone, Default)]
pub struct QuantizedRows {
    /// `[rows, stride]`.
    pub data: Vec<u8>,
    /// `[rows, stride / 32]`.
    pub scale: Vec<f32>,
    /// `[rows, stride / 32]`, each in `0..=127`.
    pub zero: Vec<i32>,
    /// Bytes per row: the row length rounded up to a block.
    pub stride: usize,
    /// Values per block: the block length of the weights these rows are multiplied with.
    pub block: usize,
}

impl QuantizedRows {
    /// Room for `rows` rows of `cols` values in blocks of [`BLOCK`] (capacity is kept between calls).
    pub fn reset(&mut self, rows: usize, cols: usize) {
        self.reset_in_blocks(rows, cols, BLOCK);
    }

    /// [`Self::reset`] for blocks of `block` values (that divide the padded row, as a matrix's blocks do).
    pub fn reset_in_blocks(&mut self, rows: usize, cols: usize, block: usize) {
        self.stride = padded_len(cols);
        assert_eq!(self.stride % block, 0, "whole blocks of {block} per row of {cols}");
        self.block = block;
        self.data.clear();
        self.data.resize(rows * self.stride, 0);
        self.scale.clear();
        self.scale.resize(rows * self.stride / block, 0.0);
        self.zero.clear();
        self.zero.resize(rows * self.stride / block, 0);
    }

    pub fn rows(&self) -> usize {
        self.data.len().checked_div(self.stride).unwrap_or(0)
    }

    fn blocks(&self) -> usize {
        self.stride / self.block
    }

    /// Quantizes `values` into row `row`.
    pub fn set_row(&mut self, row: usize, values: &[f32]) {
        let blocks = self.blocks();
        let out = &mut self.data[row * self.stride..][..values.len()];
        let used = values.len().div_ceil(self.block);
        let scales = &mut self.scale[row * blocks..][..used];
        let zeros = &mut self.zero[row * blocks..][..used];
        let block = self.block;
        for (((out, values), scale), zero) in out.chunks_mut(block).zip(values.chunks(block)).zip(scales).zip(zeros) {
            (*scale, *zero) = quantize_block(values, out);
        }
    }
}

/// Adding this rounds an f32 of magnitude below 2^22 to the nearest integer (ties to even) in plain
/// arithmetic, which vectorises everywhere (`f32::round` is a library call on baseline x86-64 and wasm).
pub(super) const ROUNDER: f32 = 12_582_912.0;

/// 7-bit quantization of up to one block (of any length): the range `[lo, hi] = [min(x, 0), max(x, 0)]` onto `0..=127`,
/// so 0 is exact: `scale = (hi - lo) / 127`, `zero = clamp(round(-lo * (1 / scale)), 0, 127)`, `q =
/// clamp(round(x * (1 / scale) + zero), 0, 127)` (f32; round = to nearest, ties to even). Returns `(scale,
/// zero)`; a block of zeros (or of non-finite values) gets `(0, 0)` and all-zero `q`. A block's values are
/// mostly one-signed after GELU, which a symmetric scale would spend half its range on: on the validation
/// split this halves the labels that differ from the f32 model. Whole blocks run through explicit
/// `simd128` in wasm (the same bits as [`quantize_block_portable`], which the tests check).
#[inline]
pub fn quantize_block(values: &[f32], out: &mut [u8]) -> (f32, i32) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if !values.is_empty() && values.len().is_multiple_of(BLOCK) && out.len() == values.len() {
        return super::wasm::quantize_block(values, out);
    }
    quantize_block_portable(values, out)
}

/// [`quantize_block`] in plain Rust (auto-vectorised), for any length up to a block.
pub fn quantize_block_portable(values: &[f32], out: &mut [u8]) -> (f32, i32) {
    let (lo, hi) = crate::math::min_max_with_zero(values);
    let Some((inverse, zero)) = block_quantizer(lo, hi) else {
        out.fill(0);
        return (0.0, 0);
    };
    // Adding zero + ROUNDER rounds v * inverse + zero to an integer (ties to even), which then sits in
    // the low mantissa bits: integer arithmetic from there on, so the loop vectorises.
    let offset = zero as f32 + ROUNDER;
    for (q, &v) in out.iter_mut().zip(values) {
        *q = ((v * inverse + offset).to_bits() as i32 - ROUNDER.to_bits() as i32).clamp(0, Q_MAX as i32) as u8;
    }
    ((hi - lo) / Q_MAX, zero)
}

/// `(1 / scale, zero)` of a block whose range is `[lo, hi]`; `None` for a zero or non-finite scale.
#[inline(always)]
pub(super) fn block_quantizer(lo: f32, hi: f32) -> Option<(f32, i32)> {
    let scale = (hi - lo) / Q_MAX;
    if scale == 0.0 || !scale.is_finite() {
        return None;
    }
    let inverse = 1.0 / scale;
    Some((inverse, rounded(-lo * inverse).clamp(0, Q_MAX as i32)))
}

/// `round_ties_even(x)` for |x| < 2^22, by the same trick.
#[inline(always)]
fn rounded(x: f32) -> i32 {
    (x + ROUNDER).to_bits() as i32 - ROUNDER.to_bits() as i32
}

/// A weight matrix `[n, k]` packed for the micro-kernels, with its bias.
#[derive(Debug, Clone)]
pub struct PackedMatrix {
    /// Output columns (rows of `W`).
    pub n: usize,
    /// Input columns.
    pub k: usize,
    /// `[panels][blocks * 8][PANEL][4]`.
    panels: Vec<i8>,
    /// `[panels][blocks][PANEL]`.
    scales: Vec<f32>,
    /// `S[n][b]`, the blocks' sums of `wq` (see the module docs), `[panels][blocks][PANEL]`.
    sums: Vec<i32>,
    /// Padded to whole panels.
    bias: Vec<f32>,
    /// Values per block (the file's, for this matrix).
    pub block: usize,
}

impl PackedMatrix {
    /// Packs the file's int8 blocks of `W` (`[n, k]`) and its bias (`n` values).
    pub fn pack(w: &QuantizedMatrix, bias: &[f32]) -> Self {
        let (n, k, block) = (w.rows, w.cols, w.block);
        assert_eq!(bias.len(), n, "one bias per output");
        let kp = padded_len(k);
        let blocks = kp / block;
        let panels = n.div_ceil(PANEL);
        let mut packed = vec![0i8; panels * kp * PANEL];
        let mut scales = vec![0f32; panels * blocks * PANEL];
        let mut sums = vec![0i32; panels * blocks * PANEL];
        for col in 0..n {
            let (p, j) = (col / PANEL, col % PANEL);
            let row = &w.values[col * kp..(col + 1) * kp];
            for (i, &q) in row.iter().enumerate() {
                packed[p * kp * PANEL + (i / 4) * PANEL * 4 + j * 4 + i % 4] = q;
            }
            for b in 0..blocks {
                let at = (p * blocks + b) * PANEL + j;
                scales[at] = w.scales[col * blocks + b];
                sums[at] = row[b * block..(b + 1) * block].iter().map(|&q| q as i32).sum::<i32>();
            }
        }
        let mut padded_bias = bias.to_vec();
        padded_bias.resize(panels * PANEL, 0.0);
        Self { n, k, panels: packed, scales, sums, bias: padded_bias, block }
    }

    fn blocks(&self) -> usize {
        padded_len(self.k) / self.block
    }

    /// Bytes of packed weights.
    pub fn weight_bytes(&self) -> usize {
        self.panels.len() + 4 * (self.scales.len() + self.sums.len() + self.bias.len())
    }
}

/// The instruction sets with a micro-kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Plain Rust, the reference: any target.
    Scalar,
    /// x86-64 AVX2: `vpmaddubsw` + `vpmaddwd`.
    Avx2,
    /// x86-64 AVX-VNNI: `vpdpbusd` on 256-bit vectors.
    AvxVnni,
    /// x86-64 AVX-512 VNNI: `vpdpbusd` on 512-bit vectors.
    Avx512Vnni,
    /// wasm `simd128`: `i32x4.dot_i16x8_s` on widened values.
    WasmSimd128,
    /// wasm relaxed SIMD: `i32x4.dot_i8x16_i7x16_add`.
    WasmRelaxed,
    /// wasm relaxed SIMD's 16-bit dot product, `i16x8.dot_i8x16_i7x16_s`, summed in pairs by `i32x4.dot_i16x8_s`.
    WasmRelaxedI16,
}

impl Isa {
    /// What `info()` and the page show.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::AvxVnni => "avx-vnni",
            Isa::Avx512Vnni => "avx512-vnni",
            Isa::WasmSimd128 => "wasm-simd128",
            Isa::WasmRelaxed => "wasm-relaxed-simd",
            Isa::WasmRelaxedI16 => "wasm-relaxed-i16",
        }
    }

    /// Every instruction set this machine (or browser) runs, the usually fastest first; the scalar reference
    /// last. Which one the engine runs is decided in one place, `choice::fastest`.
    pub fn available() -> Vec<Isa> {
        let mut found = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if super::x86::has_avx512_vnni() {
                found.push(Isa::Avx512Vnni);
            }
            if super::x86::has_avx_vnni() {
                found.push(Isa::AvxVnni);
            }
            if super::x86::has_avx2() {
                found.push(Isa::Avx2);
            }
        }
        #[cfg(target_arch = "wasm32")]
        {
            if super::wasm::relaxed_dot_is_exact() {
                found.push(Isa::WasmRelaxed);
                found.push(Isa::WasmRelaxedI16);
            }
            found.push(Isa::WasmSimd128);
        }
        found.push(Isa::Scalar);
        found
    }

    /// The micro-kernel for a call of `rows` rows on blocks of `block` values.
    fn kernel(self, rows: usize, block: usize) -> Kernel {
        // The SIMD kernels take their chunks of 4 values per block as a constant: one instance per length.
        macro_rules! per_block {
            ($kind:ident, $fn_type:ty, $($kernel:ident)::+) => {
                Kernel::$kind(match block {
                    BLOCK => $($kernel)::+::<{ BLOCK / 4 }> as $fn_type,
                    WIDE_BLOCK => $($kernel)::+::<{ WIDE_BLOCK / 4 }> as $fn_type,
                    _ => unreachable!("blocks are {BLOCK} or {WIDE_BLOCK} values (QuantizedMatrix checks)"),
                })
            };
        }
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => per_block!(Bytes, TileFn, super::x86::tile_avx2),
            #[cfg(target_arch = "x86_64")]
            Isa::AvxVnni => per_block!(Bytes, TileFn, super::x86::tile_avx_vnni),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => per_block!(Bytes, TileFn, super::x86::tile_avx512_vnni),
            #[cfg(target_arch = "wasm32")]
            Isa::WasmSimd128 if rows >= WIDEN_MIN_ROWS => per_block!(Widened, WideTileFn, super::wasm::tile_widened),
            #[cfg(target_arch = "wasm32")]
            Isa::WasmSimd128 => per_block!(Bytes, TileFn, super::wasm::tile_simd128),
            #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
            Isa::WasmRelaxed => per_block!(Bytes, TileFn, super::wasm::tile_relaxed),
            #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
            Isa::WasmRelaxedI16 => per_block!(Bytes, TileFn, super::wasm::tile_relaxed_i16),
            _ => {
                let _ = (rows, block); // only the SIMD kernels depend on them
                Kernel::Bytes(tile_scalar)
            }
        }
    }
}

/// How a micro-kernel reads its operands.
#[derive(Clone, Copy)]
enum Kernel {
    /// The packed int8 panels and the 7-bit activations as they are.
    Bytes(TileFn),
    /// 16-bit copies made per call (module docs); only the wasm `simd128` kernel reads them.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    Widened(WideTileFn),
}

/// Reusable buffers of [`matmul`]: the widened operands of [`Kernel::Widened`] (empty otherwise).
#[derive(Debug, Default)]
pub struct GemmScratch {
    /// The activations as `q - zero`, `[rows, stride]`.
    rows: Vec<i16>,
    /// One panel: `[stride / 2][PANEL][2]`, pairs of input values per column.
    panel: Vec<i16>,
}

/// The operands of one micro-kernel call: `rows` (1..=MAX_ROWS) rows of activations at `a` (row stride
/// `lda` bytes) with their block scales and zero points at `a_scales` and `a_zeros` (row stride
/// `blocks`), and one panel of weights (`panel`), its scales and block sums (`[blocks][PANEL]` each), in
/// blocks of `block` values (a SIMD kernel's instance for that length: [`Isa::kernel`]).
#[derive(Clone, Copy)]
pub struct Tile {
    pub rows: usize,
    pub a: *const u8,
    pub lda: usize,
    pub a_scales: *const f32,
    pub a_zeros: *const i32,
    pub panel: *const i8,
    pub scales: *const f32,
    pub sums: *const i32,
    pub blocks: usize,
    /// Values per block.
    pub block: usize,
}

/// A micro-kernel: writes `acc[m][j] = sum over b of (D[m][j][b] as f32) * (scales[b][j] * a_scales[m][b])`
/// with `D` as in the module docs.
///
/// # Safety
/// The pointers of `tile` must hold what [`Tile`] describes (`blocks * block` bytes per activation row,
/// `blocks * block * PANEL` bytes of panel), the instruction set must be available, and a SIMD kernel's
/// instance must be the one for `block`.
pub type TileFn = unsafe fn(tile: &Tile, acc: &mut [[f32; PANEL]; MAX_ROWS]);

/// The operands of one widened micro-kernel call: `rows` rows of `q - zero` at `a` (row stride `lda`
/// values) with their block scales (row stride `blocks`), and one widened panel (`[blocks * 16][PANEL][2]`)
/// with its scales (`[blocks][PANEL]`).
#[derive(Clone, Copy)]
pub struct WideTile {
    pub rows: usize,
    pub a: *const i16,
    pub lda: usize,
    pub a_scales: *const f32,
    pub panel: *const i16,
    pub scales: *const f32,
    pub blocks: usize,
    /// Values per block.
    pub block: usize,
}

/// A widened micro-kernel: the same `acc` as a [`TileFn`] on the same rows and panel.
///
/// # Safety
/// The pointers of `tile` must hold what [`WideTile`] describes, and the instruction set must be available.
pub type WideTileFn = unsafe fn(tile: &WideTile, acc: &mut [[f32; PANEL]; MAX_ROWS]);

/// The reference micro-kernel, in plain Rust.
///
/// # Safety
/// As [`TileFn`].
pub unsafe fn tile_scalar(t: &Tile, acc: &mut [[f32; PANEL]; MAX_ROWS]) {
    let block = t.block;
    let panel = std::slice::from_raw_parts(t.panel, t.blocks * block * PANEL);
    let scales = std::slice::from_raw_parts(t.scales, t.blocks * PANEL);
    let sums = std::slice::from_raw_parts(t.sums, t.blocks * PANEL);
    for (m, acc) in acc.iter_mut().enumerate().take(t.rows) {
        let row = std::slice::from_raw_parts(t.a.add(m * t.lda), t.blocks * block);
        let a_scales = std::slice::from_raw_parts(t.a_scales.add(m * t.blocks), t.blocks);
        let a_zeros = std::slice::from_raw_parts(t.a_zeros.add(m * t.blocks), t.blocks);
        for (j, out) in acc.iter_mut().enumerate() {
            let mut sum = 0f32;
            for b in 0..t.blocks {
                let mut dot = -a_zeros[b] * sums[b * PANEL + j];
                for i in b * block..(b + 1) * block {
                    dot += row[i] as i32 * panel[(i / 4) * PANEL * 4 + j * 4 + i % 4] as i32;
                }
                sum += dot as f32 * (scales[b * PANEL + j] * a_scales[b]);
            }
            *out = sum;
        }
    }
}

/// `out[m * ldo + n] = x W^T + bias` (module docs) for every row of `x` and output `n` of `w`, through
/// the micro-kernel of `isa`.
pub fn matmul(isa: Isa, x: &QuantizedRows, w: &PackedMatrix, out: &mut [f32], ldo: usize, scratch: &mut GemmScratch) {
    let rows = x.rows();
    assert_eq!(x.stride, padded_len(w.k), "the activations' width must match the weights'");
    assert_eq!(x.block, w.block, "the activations' blocks must match the weights'");
    assert!(ldo >= w.n && out.len() >= rows.saturating_sub(1) * ldo + w.n, "output too small");
    let (blocks, block) = (w.blocks(), w.block);
    let kernel = isa.kernel(rows, block);
    if let Kernel::Widened(_) = kernel {
        widen_rows(x, &mut scratch.rows);
        scratch.panel.resize(blocks * block * PANEL, 0);
    }
    let mut acc = [[0f32; PANEL]; MAX_ROWS];
    for p in 0..w.n.div_ceil(PANEL) {
        let panel = &w.panels[p * blocks * block * PANEL..][..blocks * block * PANEL];
        let scales = &w.scales[p * blocks * PANEL..][..blocks * PANEL];
        let sums = &w.sums[p * blocks * PANEL..][..blocks * PANEL];
        if let Kernel::Widened(_) = kernel {
            widen_panel(panel, &mut scratch.panel);
        }
        let cols = PANEL.min(w.n - p * PANEL);
        for m0 in (0..rows).step_by(MAX_ROWS) {
            let tile_rows = MAX_ROWS.min(rows - m0);
            match kernel {
                Kernel::Bytes(kernel) => {
                    let tile = Tile {
                        rows: tile_rows,
                        a: x.data[m0 * x.stride..].as_ptr(),
                        lda: x.stride,
                        a_scales: x.scale[m0 * blocks..].as_ptr(),
                        a_zeros: x.zero[m0 * blocks..].as_ptr(),
                        panel: panel.as_ptr(),
                        scales: scales.as_ptr(),
                        sums: sums.as_ptr(),
                        blocks,
                        block,
                    };
                    // SAFETY: the slices above and x's rows m0.. hold what the kernel reads (sizes checked),
                    // and `Isa::available` only offers instruction sets this machine has.
                    unsafe { kernel(&tile, &mut acc) };
                }
                Kernel::Widened(kernel) => {
                    let tile = WideTile {
                        rows: tile_rows,
                        a: scratch.rows[m0 * x.stride..].as_ptr(),
                        lda: x.stride,
                        a_scales: x.scale[m0 * blocks..].as_ptr(),
                        panel: scratch.panel.as_ptr(),
                        scales: scales.as_ptr(),
                        blocks,
                        block,
                    };
                    // SAFETY: as above; the scratch holds x's rows and this panel, widened.
                    unsafe { kernel(&tile, &mut acc) };
                }
            }
            let n0 = p * PANEL;
            for (m, acc) in acc.iter().enumerate().take(tile_rows) {
                let y = &mut out[(m0 + m) * ldo + n0..][..cols];
                for ((y, a), b) in y.iter_mut().zip(acc).zip(&w.bias[n0..]) {
                    *y = a + b;
                }
            }
        }
    }
}

/// The activations of `x` as `q - zero`, 16 bits each, in `x`'s layout (the widened kernel's `a`).
fn widen_rows(x: &QuantizedRows, out: &mut Vec<i16>) {
    out.clear();
    out.resize(x.data.len(), 0);
    for ((out, q), &zero) in out.chunks_exact_mut(x.block).zip(x.data.chunks_exact(x.block)).zip(&x.zero) {
        let zero = zero as i16;
        for (o, &q) in out.iter_mut().zip(q) {
            *o = q as i16 - zero;
        }
    }
}

/// One packed panel (`[chunks of 4 inputs][PANEL][4]` bytes) as `[pairs of inputs][PANEL][2]` i16: for
/// input pair `i`, column `j` holds its weights for inputs `2i` and `2i + 1` side by side, so a 128-bit
/// load is 4 columns' pairs, ready for `i32x4.dot_i16x8_s` against a row's pair.
fn widen_panel(panel: &[i8], out: &mut [i16]) {
    #[cfg(target_arch = "wasm32")]
    super::wasm::widen_panel(panel, out);
    #[cfg(not(target_arch = "wasm32"))]
    widen_panel_portable(panel, out);
}

/// [`widen_panel`] in plain Rust: the layout's definition (the wasm version is checked against it through
/// [`matmul`]'s results).
pub fn widen_panel_portable(panel: &[i8], out: &mut [i16]) {
    for (out, chunk) in out.chunks_exact_mut(4 * PANEL).zip(panel.chunks_exact(4 * PANEL)) {
        for (j, w) in chunk.chunks_exact(4).enumerate() {
            for (i, &w) in w.iter().enumerate() {
                out[(i / 2) * 2 * PANEL + 2 * j + i % 2] = w as i16;
            }
        }
    }
}

/// The semantics of [`matmul`] straight from the file's format, without packing: what the tests compare
/// every kernel with, bit for bit.
pub fn reference_matmul(x: &QuantizedRows, w: &QuantizedMatrix, bias: &[f32]) -> Vec<f32> {
    let (n, kp, block) = (w.rows, padded_len(w.cols), w.block);
    assert_eq!(x.block, block, "the activations' blocks must match the weights'");
    let blocks = kp / block;
    let mut out = vec![0f32; x.rows() * n];
    for m in 0..x.rows() {
        let row = &x.data[m * x.stride..][..kp];
        for col in 0..n {
            let wrow = &w.values[col * kp..][..kp];
            let mut acc = 0f32;
            for b in 0..blocks {
                let range = b * block..(b + 1) * block;
                let zero = x.zero[m * blocks + b];
                let dot: i32 = row[range.clone()]
                    .iter()
                    .zip(&wrow[range.clone()])
                    .map(|(&a, &w)| (a as i32 - zero) * w as i32)
                    .sum();
                acc += dot as f32 * (w.scales[col * blocks + b] * x.scale[m * blocks + b]);
            }
            out[m * n + col] = acc + bias[col];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The widened panel holds, for input pair `i` and column `j`, the weights of inputs `2i` and `2i + 1`.
    #[test]
    fn a_widened_panel_pairs_each_columns_inputs() {
        let (n, k) = (PANEL + 3, 2 * BLOCK);
        let values: Vec<i8> = (0..n * k).map(|i| ((i * 37) % 255) as i64 as i8).map(|v| v.max(-127)).collect();
        let w = QuantizedMatrix::from_parts(values.clone(), vec![1.0; n * k / BLOCK], n, k).unwrap();
        let packed = PackedMatrix::pack(&w, &vec![0.0; n]);
        let mut out = vec![0i16; k * PANEL];
        for p in 0..n.div_ceil(PANEL) {
            widen_panel_portable(&packed.panels[p * k * PANEL..][..k * PANEL], &mut out);
            for j in 0..PANEL {
                for input in 0..k {
                    let want = values.get((p * PANEL + j) * k + input).filter(|_| p * PANEL + j < n).copied();
                    let got = out[(input / 2) * 2 * PANEL + 2 * j + input % 2];
                    assert_eq!(got, want.unwrap_or(0) as i16, "panel {p}, column {j}, input {input}");
                }
            }
        }
    }
}

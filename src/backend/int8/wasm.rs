//! wasm kernels of [`super::gemm`]: the activation quantizer of a whole block, and the micro-kernels. In the
//! build made with `+relaxed-simd`: `i32x4.dot_i8x16_i7x16_add` (16 multiply-adds per instruction, one
//! `vpdpbusd` where the CPU has VNNI) and `i16x8.dot_i8x16_i7x16_s` summed in pairs (`pmaddubsw` +
//! `pmaddwd`, the faster where it has not). In every build, baseline `simd128` (`i32x4.dot_i16x8_s` on
//! values widened to 16 bits): on bytes for calls of few rows, on operands widened once per call otherwise
//! ([`tile_widened`]). Each computes exactly [`super::gemm::tile_scalar`]. The relaxed instructions are
//! checked on known inputs before use ([`relaxed_dot_is_exact`]): an engine may treat a second operand above
//! 127 either way, and one (Node 20) was seen to get even in-range inputs wrong. A kernel's `C` is the chunks of
//! 4 values in a block (8 for blocks of 32, 16 for 64).

use std::arch::wasm32::*;

use super::gemm::{block_quantizer, Tile, WideTile, MAX_ROWS, PANEL, Q_MAX, ROUNDER};
use crate::weights::quant::BLOCK;

/// Values the quantizer reads at once: one block of the format's unit, 8 vectors.
const QUANTIZER_CHUNK: usize = BLOCK;
const _: () = assert!(QUANTIZER_CHUNK == 8 * 4, "the quantizer loads a chunk as 8 vectors");

/// [`super::gemm::quantize_block`] of one whole block (a multiple of 32 values): the range from
/// `f32x4.pmin`/`pmax`, and the clamp to `0..=127` from two saturating narrows (i32 to i16, i16 to u8) and
/// a `u8x16.min`, which clamp exactly as `i32::clamp` does.
pub fn quantize_block(values: &[f32], out: &mut [u8]) -> (f32, i32) {
    assert!(values.len().is_multiple_of(QUANTIZER_CHUNK) && out.len() == values.len(), "whole chunks of 32 values");
    let load = |chunk: &[f32]| -> [v128; 8] {
        // SAFETY: a chunk is 32 f32, 8 whole v128 loads.
        std::array::from_fn(|i| unsafe { v128_load((chunk.as_ptr() as *const v128).add(i)) })
    };
    let (mut lo, mut hi) = (f32x4_splat(0.0), f32x4_splat(0.0));
    // The range ignores NaN, as `crate::math::min`/`max` do. `f32x4.pmin`/`pmax` would too by the spec
    // (a NaN second operand gives the first), but Chromium 156 was seen to return the NaN, so NaN
    // lanes are zeroed first (x == x is false only for NaN); without NaN, `pmin`/`pmax` give the same
    // range in any operand order (signed zeros aside, which give the same scale and zero point).
    for chunk in values.chunks_exact(QUANTIZER_CHUNK) {
        for x in load(chunk) {
            let x = v128_and(x, f32x4_eq(x, x));
            lo = f32x4_pmin(lo, x);
            hi = f32x4_pmax(hi, x);
        }
    }
    lo = f32x4_pmin(lo, i32x4_shuffle::<2, 3, 0, 1>(lo, lo));
    lo = f32x4_pmin(lo, i32x4_shuffle::<1, 0, 3, 2>(lo, lo));
    hi = f32x4_pmax(hi, i32x4_shuffle::<2, 3, 0, 1>(hi, hi));
    hi = f32x4_pmax(hi, i32x4_shuffle::<1, 0, 3, 2>(hi, hi));
    let (lo, hi) = (f32x4_extract_lane::<0>(lo), f32x4_extract_lane::<0>(hi));
    let Some((inverse, zero)) = block_quantizer(lo, hi) else {
        out.fill(0);
        return (0.0, 0);
    };
    let (inverse, offset) = (f32x4_splat(inverse), f32x4_splat(zero as f32 + ROUNDER));
    let rounder = i32x4_splat(ROUNDER.to_bits() as i32);
    let top = u8x16_splat(Q_MAX as u8);
    for (chunk, out) in values.chunks_exact(QUANTIZER_CHUNK).zip(out.chunks_exact_mut(QUANTIZER_CHUNK)) {
        let q: [v128; 8] = load(chunk).map(|x| i32x4_sub(f32x4_add(f32x4_mul(x, inverse), offset), rounder));
        for (half, q) in q.chunks_exact(4).enumerate() {
            let low = i16x8_narrow_i32x4(q[0], q[1]);
            let high = i16x8_narrow_i32x4(q[2], q[3]);
            // SAFETY: 32 output bytes, two whole v128 stores.
            unsafe {
                v128_store(out.as_mut_ptr().add(16 * half) as *mut v128, u8x16_min(u8x16_narrow_i16x8(low, high), top));
            }
        }
    }
    ((hi - lo) / Q_MAX, zero)
}

/// The 4 activation bytes at `offset` of row `m` in every 32-bit lane.
#[inline(always)]
unsafe fn splat_lane(t: &Tile, m: usize, offset: usize) -> v128 {
    v128_load32_splat(t.a.add(m * t.lda + offset) as *const u32)
}

/// Where row `m`'s sums of block `b` start: `-zero * S`, the zero point's share, for the four 4-column
/// groups of a panel. `|S| <= 64 * 128` fits the low i16 half of its i32 lane, so one `i32x4.dot_i16x8_s`
/// (`pmaddwd`: one instruction; `i32x4.mul` is two on x86) with `[-zero, 0]` in each lane's halves gives
/// `-zero * S` exactly, whatever the sign-extended high half holds.
#[inline(always)]
unsafe fn block_start(t: &Tile, m: usize, b: usize) -> [v128; 4] {
    let zero = i32x4_splat(((-*t.a_zeros.add(m * t.blocks + b)) as u32 & 0xffff) as i32);
    std::array::from_fn(|g| i32x4_dot_i16x8(v128_load(t.sums.add(b * PANEL + 4 * g) as *const v128), zero))
}

/// `sums[g] += convert(dots[g]) * (scales[g] * row scale)` for the four 4-column groups of a panel.
#[inline(always)]
unsafe fn scale_block(t: &Tile, m: usize, b: usize, sums: &mut [v128; 4], dots: &[v128; 4]) {
    scale_sums(t.scales.add(b * PANEL), *t.a_scales.add(m * t.blocks + b), sums, dots)
}

/// [`scale_block`] with the block's `PANEL` weight scales at `scales`.
#[inline(always)]
unsafe fn scale_sums(scales: *const f32, row_scale: f32, sums: &mut [v128; 4], dots: &[v128; 4]) {
    let row_scale = f32x4_splat(row_scale);
    for g in 0..4 {
        let s = f32x4_mul(v128_load(scales.add(4 * g) as *const v128), row_scale);
        sums[g] = f32x4_add(sums[g], f32x4_mul(f32x4_convert_i32x4(dots[g]), s));
    }
}

#[inline(always)]
unsafe fn store_row(acc: &mut [f32; PANEL], sums: &[v128; 4]) {
    for (g, s) in sums.iter().enumerate() {
        v128_store(acc.as_mut_ptr().add(4 * g) as *mut v128, *s);
    }
}

/// Baseline `simd128`, one row at a time: each 16-byte weight vector (4 columns x 4 values) is widened to
/// two i16x8 halves, whose dot products with the row's 4 values leave two partial sums per column; the
/// pairs are added at the end of each block.
///
/// # Safety
/// As [`super::gemm::TileFn`].
pub unsafe fn tile_simd128<const C: usize>(t: &Tile, acc: &mut [[f32; PANEL]; MAX_ROWS]) {
    for (m, acc) in acc.iter_mut().enumerate().take(t.rows) {
        let mut sums = [f32x4_splat(0.0); 4];
        let mut w = t.panel;
        for b in 0..t.blocks {
            // lo[g]: columns 4g, 4g + 1 (two partial sums each); hi[g]: columns 4g + 2, 4g + 3.
            let (mut lo, mut hi) = ([i32x4_splat(0); 4], [i32x4_splat(0); 4]);
            for c in 0..C {
                let x = u16x8_extend_low_u8x16(splat_lane(t, m, (b * C + c) * 4));
                for g in 0..4 {
                    let wv = v128_load(w.add(16 * g) as *const v128);
                    lo[g] = i32x4_add(lo[g], i32x4_dot_i16x8(i16x8_extend_low_i8x16(wv), x));
                    hi[g] = i32x4_add(hi[g], i32x4_dot_i16x8(i16x8_extend_high_i8x16(wv), x));
                }
                w = w.add(4 * PANEL);
            }
            let mut dots = block_start(t, m, b);
            for g in 0..4 {
                let even = i32x4_shuffle::<0, 2, 4, 6>(lo[g], hi[g]);
                let odd = i32x4_shuffle::<1, 3, 5, 7>(lo[g], hi[g]);
                dots[g] = i32x4_add(dots[g], i32x4_add(even, odd));
            }
            scale_block(t, m, b, &mut sums, &dots);
        }
        store_row(acc, &sums);
    }
}

/// [`super::gemm::widen_panel_portable`] with one byte shuffle and two sign extensions per 16 bytes: a
/// 16-byte vector of the packed panel is 4 columns x 4 inputs, which become 4 columns' pairs of inputs
/// `4c, 4c + 1` and 4 columns' pairs `4c + 2, 4c + 3`.
pub fn widen_panel(panel: &[i8], out: &mut [i16]) {
    assert_eq!(out.len(), panel.len(), "one i16 per weight");
    for (out, chunk) in out.chunks_exact_mut(4 * PANEL).zip(panel.chunks_exact(4 * PANEL)) {
        for g in 0..PANEL / 4 {
            // SAFETY: a chunk is 4 * PANEL bytes (64), its output 64 values: 16-byte loads at 16g, 8-value
            // stores at 8g and 2 * PANEL + 8g, all in bounds.
            unsafe {
                let v = v128_load(chunk.as_ptr().add(16 * g) as *const v128);
                let pairs = i8x16_shuffle::<0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15>(v, v);
                v128_store(out.as_mut_ptr().add(8 * g) as *mut v128, i16x8_extend_low_i8x16(pairs));
                v128_store(out.as_mut_ptr().add(2 * PANEL + 8 * g) as *mut v128, i16x8_extend_high_i8x16(pairs));
            }
        }
    }
}

/// Baseline `simd128` on widened operands, `R` rows from `first`: per pair of inputs, the panel's 4
/// vectors (4 columns' pairs each) and one 32-bit splat of each row's pair; one `i32x4.dot_i16x8_s` per
/// row and 4 columns gives their sums directly. As in [`tile_dot4_rows`], the f32 sums wait in `acc`
/// between blocks: 2 rows keep 8 integer sums, 4 weight vectors and 2 splats in registers.
#[allow(clippy::needless_range_loop)] // `m` also picks the row `first + m` of the tile: an index is plainer
#[inline(always)]
unsafe fn tile_widened_rows<const R: usize, const C: usize>(t: &WideTile, first: usize, acc: &mut [[f32; PANEL]]) {
    for m in 0..R {
        store_row(&mut acc[first + m], &[f32x4_splat(0.0); 4]);
    }
    let mut w = t.panel;
    for b in 0..t.blocks {
        let mut dots = [[i32x4_splat(0); 4]; R];
        for pair in 0..2 * C {
            let wv: [v128; 4] = std::array::from_fn(|g| v128_load(w.add(8 * g) as *const v128));
            for m in 0..R {
                let x = v128_load32_splat(t.a.add((first + m) * t.lda + b * 4 * C + 2 * pair) as *const u32);
                for g in 0..4 {
                    dots[m][g] = i32x4_add(dots[m][g], i32x4_dot_i16x8(wv[g], x));
                }
            }
            w = w.add(2 * PANEL);
        }
        for m in 0..R {
            let row = &mut acc[first + m];
            let mut sums: [v128; 4] = std::array::from_fn(|g| v128_load(row.as_ptr().add(4 * g) as *const v128));
            let row_scale = *t.a_scales.add((first + m) * t.blocks + b);
            scale_sums(t.scales.add(b * PANEL), row_scale, &mut sums, &dots[m]);
            store_row(row, &sums);
        }
    }
}

/// # Safety
/// As [`super::gemm::WideTileFn`].
pub unsafe fn tile_widened<const C: usize>(t: &WideTile, acc: &mut [[f32; PANEL]; MAX_ROWS]) {
    debug_assert_eq!(t.block, 4 * C, "the kernel's instance for this block length");
    in_row_pairs(t.rows, |first, two| match two {
        true => tile_widened_rows::<2, C>(t, first, acc),
        false => tile_widened_rows::<1, C>(t, first, acc),
    });
}

/// Calls `rows(first, two)` for the tile's rows two at a time (`two`), then the odd one left.
#[inline(always)]
fn in_row_pairs(rows: usize, mut call: impl FnMut(usize, bool)) {
    for first in (0..rows).step_by(2) {
        call(first, first + 2 <= rows);
    }
}

/// A micro-kernel on bytes, `R` rows from `first`, whose `dot(w, x, sums)` adds the 4-value dot products of
/// 4 columns' weights `w` with a row's 4 activations `x` (in every lane) to `sums`. The f32 sums live in
/// `acc` between blocks (touched once per block), so the loop over a block keeps only its integer sums,
/// the panel's 4 weight vectors and one activation splat in registers: 13 of x86's 16.
#[cfg(target_feature = "relaxed-simd")]
#[allow(clippy::needless_range_loop)] // `m` also picks the row `first + m` of the tile: an index is plainer
#[inline(always)]
unsafe fn tile_dot4_rows<const R: usize, const C: usize>(
    t: &Tile,
    first: usize,
    acc: &mut [[f32; PANEL]],
    dot: impl Fn(v128, v128, v128) -> v128,
) {
    for m in 0..R {
        store_row(&mut acc[first + m], &[f32x4_splat(0.0); 4]);
    }
    let mut w = t.panel;
    for b in 0..t.blocks {
        let mut dots: [[v128; 4]; R] = std::array::from_fn(|m| block_start(t, first + m, b));
        for c in 0..C {
            let wv: [v128; 4] = std::array::from_fn(|g| v128_load(w.add(16 * g) as *const v128));
            for m in 0..R {
                let x = splat_lane(t, first + m, (b * C + c) * 4);
                for g in 0..4 {
                    dots[m][g] = dot(wv[g], x, dots[m][g]);
                }
            }
            w = w.add(4 * PANEL);
        }
        for m in 0..R {
            let row = &mut acc[first + m];
            let mut sums: [v128; 4] = std::array::from_fn(|g| v128_load(row.as_ptr().add(4 * g) as *const v128));
            scale_block(t, first + m, b, &mut sums, &dots[m]);
            store_row(row, &sums);
        }
    }
}

/// [`tile_dot4_rows`] over the tile's rows, two at a time.
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
unsafe fn tile_dot4<const C: usize>(
    t: &Tile,
    acc: &mut [[f32; PANEL]; MAX_ROWS],
    dot: impl Fn(v128, v128, v128) -> v128 + Copy,
) {
    debug_assert_eq!(t.block, 4 * C, "the kernel's instance for this block length");
    in_row_pairs(t.rows, |first, two| match two {
        true => tile_dot4_rows::<2, C>(t, first, acc, dot),
        false => tile_dot4_rows::<1, C>(t, first, acc, dot),
    });
}

/// Relaxed SIMD: one `i32x4.dot_i8x16_i7x16_add` per 4 columns x 4 values (one `vpdpbusd` with VNNI).
///
/// # Safety
/// As [`super::gemm::TileFn`].
#[cfg(target_feature = "relaxed-simd")]
pub unsafe fn tile_relaxed<const C: usize>(t: &Tile, acc: &mut [[f32; PANEL]; MAX_ROWS]) {
    tile_dot4::<C>(t, acc, |w, x, sums| i32x4_relaxed_dot_i8x16_i7x16_add(w, x, sums));
}

/// Relaxed SIMD without the 32-bit dot product: `i16x8.relaxed_dot_i8x16_i7x16_s` (x86's `pmaddubsw`: 16
/// products, summed in pairs into i16, which 7-bit activations keep from saturating), then
/// `i32x4.dot_i16x8_s` against ones (`pmaddwd`) sums the pairs into the same 4-value dot products per
/// column as [`tile_relaxed`]. Three instructions per 16 products where the CPU has no VNNI, against five
/// for V8's lowering of the 32-bit instruction there (which builds its ones inside the loop).
///
/// # Safety
/// As [`super::gemm::TileFn`].
#[cfg(target_feature = "relaxed-simd")]
pub unsafe fn tile_relaxed_i16<const C: usize>(t: &Tile, acc: &mut [[f32; PANEL]; MAX_ROWS]) {
    let ones = i16x8_splat(std::hint::black_box(1));
    tile_dot4::<C>(t, acc, move |w, x, sums| {
        i32x4_add(sums, i32x4_dot_i16x8(i16x8_relaxed_dot_i8x16_i7x16(w, x), ones))
    });
}

/// Whether this build has the relaxed dot products and this engine computes both exactly for a second
/// operand in 0..=127 (checked once on known inputs, at the extremes of both ranges): the 32-bit one of
/// [`tile_relaxed`] and the 16-bit one of [`tile_relaxed_i16`] (whose pair sums stay within i16 there).
pub fn relaxed_dot_is_exact() -> bool {
    #[cfg(target_feature = "relaxed-simd")]
    {
        static EXACT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *EXACT.get_or_init(|| {
            let w: [i8; 16] = [-127, 127, -1, 0, 5, -128, 127, 3, 64, -64, 1, -1, 100, -100, 50, 127];
            let x: [u8; 16] = [127, 127, 0, 1, 127, 127, 2, 3, 1, 127, 64, 65, 0, 126, 127, 127];
            let product = |i: usize| w[i] as i32 * x[i] as i32;
            let want_quads: [i32; 4] =
                std::array::from_fn(|lane| (0..4).map(|i| product(4 * lane + i)).sum::<i32>() + 7);
            let want_pairs: [i16; 8] = std::array::from_fn(|lane| (product(2 * lane) + product(2 * lane + 1)) as i16);
            // SAFETY: 16-byte arrays read and written as v128.
            let (quads, pairs) = unsafe {
                let (wv, xv) = (v128_load(w.as_ptr() as *const v128), v128_load(x.as_ptr() as *const v128));
                let mut quads = [0i32; 4];
                let mut pairs = [0i16; 8];
                v128_store(quads.as_mut_ptr() as *mut v128, i32x4_relaxed_dot_i8x16_i7x16_add(wv, xv, i32x4_splat(7)));
                v128_store(pairs.as_mut_ptr() as *mut v128, i16x8_relaxed_dot_i8x16_i7x16(wv, xv));
                (quads, pairs)
            };
            quads == want_quads && pairs == want_pairs
        })
    }
    #[cfg(not(target_feature = "relaxed-simd"))]
    false
}

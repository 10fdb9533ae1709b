//! x86-64 micro-kernels of [`super::gemm`], chosen at run time: AVX-512 VNNI (one 512-bit register per
//! row of a 16-column panel), AVX-VNNI (two 256-bit registers), AVX2 (the same with `vpmaddubsw` +
//! `vpmaddwd` for the dot product). Each computes exactly [`super::gemm::tile_scalar`]; `C` is the chunks of
//! 4 values in a block (8 for blocks of 32, 16 for 64).

use std::arch::x86_64::*;

use super::gemm::{Tile, MAX_ROWS, PANEL};

pub fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2")
}

pub fn has_avx_vnni() -> bool {
    has_avx2() && is_x86_feature_detected!("avxvnni")
}

pub fn has_avx512_vnni() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vnni")
}

/// The 4 activation bytes at `offset` of row `m`, as one 32-bit lane.
#[inline(always)]
unsafe fn activation_lane(t: &Tile, m: usize, offset: usize) -> i32 {
    (t.a.add(m * t.lda + offset) as *const i32).read_unaligned()
}

/// Expands to a 256-bit micro-kernel for `R` rows: `$dot(acc, activations, weights)` adds the 4-way
/// u8 x i8 dot products of each 32-bit lane.
macro_rules! tile_256 {
    ($name:ident, $features:literal, $dot:ident) => {
        #[target_feature(enable = $features)]
        unsafe fn $name<const R: usize, const C: usize>(t: &Tile, acc: &mut [[f32; PANEL]; MAX_ROWS]) {
            let mut sums = [[_mm256_setzero_ps(); 2]; R];
            let mut w = t.panel;
            for b in 0..t.blocks {
                // Each row's sums start at -zero * S, the zero point's share.
                let s0 = _mm256_loadu_si256(t.sums.add(b * PANEL) as *const __m256i);
                let s1 = _mm256_loadu_si256(t.sums.add(b * PANEL + 8) as *const __m256i);
                let mut dots = [[_mm256_setzero_si256(); 2]; R];
                for (m, dot) in dots.iter_mut().enumerate() {
                    let zero = _mm256_set1_epi32(-*t.a_zeros.add(m * t.blocks + b));
                    *dot = [_mm256_mullo_epi32(s0, zero), _mm256_mullo_epi32(s1, zero)];
                }
                for c in 0..C {
                    let w0 = _mm256_loadu_si256(w as *const __m256i);
                    let w1 = _mm256_loadu_si256(w.add(32) as *const __m256i);
                    for m in 0..R {
                        let x = _mm256_set1_epi32(activation_lane(t, m, (b * C + c) * 4));
                        dots[m][0] = $dot(dots[m][0], x, w0);
                        dots[m][1] = $dot(dots[m][1], x, w1);
                    }
                    w = w.add(4 * PANEL);
                }
                let s0 = _mm256_loadu_ps(t.scales.add(b * PANEL));
                let s1 = _mm256_loadu_ps(t.scales.add(b * PANEL + 8));
                for m in 0..R {
                    let row_scale = _mm256_set1_ps(*t.a_scales.add(m * t.blocks + b));
                    sums[m][0] = _mm256_add_ps(
                        sums[m][0],
                        _mm256_mul_ps(_mm256_cvtepi32_ps(dots[m][0]), _mm256_mul_ps(s0, row_scale)),
                    );
                    sums[m][1] = _mm256_add_ps(
                        sums[m][1],
                        _mm256_mul_ps(_mm256_cvtepi32_ps(dots[m][1]), _mm256_mul_ps(s1, row_scale)),
                    );
                }
            }
            for m in 0..R {
                _mm256_storeu_ps(acc[m].as_mut_ptr(), sums[m][0]);
                _mm256_storeu_ps(acc[m].as_mut_ptr().add(8), sums[m][1]);
            }
        }
    };
}

#[inline]
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn dot_vnni(acc: __m256i, x: __m256i, w: __m256i) -> __m256i {
    _mm256_dpbusd_avx_epi32(acc, x, w)
}

#[inline]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(acc: __m256i, x: __m256i, w: __m256i) -> __m256i {
    // u7 x i8 pairs summed into i16 (at most 2 * 127 * 127, no saturation), then pairs of those into i32.
    let pairs = _mm256_maddubs_epi16(x, w);
    _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
}

tile_256!(tile_avx_vnni_rows, "avx2,avxvnni", dot_vnni);
tile_256!(tile_avx2_rows, "avx2", dot_avx2);

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_avx512_rows<const R: usize, const C: usize>(t: &Tile, acc: &mut [[f32; PANEL]; MAX_ROWS]) {
    let mut sums = [_mm512_setzero_ps(); R];
    let mut w = t.panel;
    for b in 0..t.blocks {
        // Each row's sums start at -zero * S, the zero point's share.
        let sums_b = _mm512_loadu_si512(t.sums.add(b * PANEL) as *const __m512i);
        let mut dots = [_mm512_setzero_si512(); R];
        for (m, dot) in dots.iter_mut().enumerate() {
            *dot = _mm512_mullo_epi32(sums_b, _mm512_set1_epi32(-*t.a_zeros.add(m * t.blocks + b)));
        }
        for c in 0..C {
            let wv = _mm512_loadu_si512(w as *const __m512i);
            for (m, dot) in dots.iter_mut().enumerate() {
                let x = _mm512_set1_epi32(activation_lane(t, m, (b * C + c) * 4));
                *dot = _mm512_dpbusd_epi32(*dot, x, wv);
            }
            w = w.add(4 * PANEL);
        }
        let s = _mm512_loadu_ps(t.scales.add(b * PANEL));
        for m in 0..R {
            let row_scale = _mm512_set1_ps(*t.a_scales.add(m * t.blocks + b));
            sums[m] = _mm512_add_ps(sums[m], _mm512_mul_ps(_mm512_cvtepi32_ps(dots[m]), _mm512_mul_ps(s, row_scale)));
        }
    }
    for m in 0..R {
        _mm512_storeu_ps(acc[m].as_mut_ptr(), sums[m]);
    }
}

/// Dispatches a row count to the kernel specialised for it.
macro_rules! by_rows {
    ($name:ident, $rows_fn:ident) => {
        /// # Safety
        /// As [`super::gemm::TileFn`].
        pub unsafe fn $name<const C: usize>(t: &Tile, acc: &mut [[f32; PANEL]; MAX_ROWS]) {
            debug_assert_eq!(t.block, 4 * C, "the kernel's instance for this block length");
            match t.rows {
                1 => $rows_fn::<1, C>(t, acc),
                2 => $rows_fn::<2, C>(t, acc),
                3 => $rows_fn::<3, C>(t, acc),
                _ => $rows_fn::<4, C>(t, acc),
            }
        }
    };
}

by_rows!(tile_avx_vnni, tile_avx_vnni_rows);
by_rows!(tile_avx2, tile_avx2_rows);
by_rows!(tile_avx512_vnni, tile_avx512_rows);

//! [`super`]'s slice functions in explicit wasm `simd128`, 4 values per vector, with the scalar functions'
//! operations in the same order (so the same bits; the tests compare them). LLVM vectorises the scalar
//! loops too, but leaves every constant as a `v128.const` inside the loop, and V8 builds each one there
//! from two 64-bit immediates on every iteration: in GELU that cost more than the arithmetic (the int8
//! engine's activation time fell by a third without it). Here the constants are splatted once per call
//! from values the optimiser cannot see through ([`std::hint::black_box`]), so they stay in registers.

use std::arch::wasm32::*;
use std::hint::black_box;

/// A constant in every lane, kept out of the loop that uses it.
#[inline(always)]
fn splat(c: f32) -> v128 {
    f32x4_splat(black_box(c))
}

/// The constants of [`super::exp`], splatted.
struct Exp {
    lo: v128,
    hi: v128,
    log2e: v128,
    rounder: v128,
    ln2_hi: v128,
    ln2_lo: v128,
    poly: [v128; 6],
    one: v128,
    /// `127 - bits(ROUNDER)`: the exponent bias less the rounder's bits, in one add.
    bias: v128,
}

impl Exp {
    fn new() -> Self {
        let c = super::EXP;
        Exp {
            lo: splat(c.lo),
            hi: splat(c.hi),
            log2e: splat(std::f32::consts::LOG2_E),
            rounder: splat(c.rounder),
            ln2_hi: splat(c.ln2_hi),
            ln2_lo: splat(c.ln2_lo),
            poly: c.poly.map(splat),
            one: splat(1.0),
            bias: i32x4_splat(black_box(127 - c.rounder.to_bits() as i32)),
        }
    }

    /// [`super::exp`] of 4 values.
    #[inline(always)]
    fn exp(&self, x: v128) -> v128 {
        // `f32::clamp`, which keeps a NaN. So would pmax/pmin by the spec, but LLVM may make them relaxed
        // min/max in the relaxed build, and Chromium 156 then returned the bound: NaN lanes are put back.
        let clamped = f32x4_pmin(f32x4_pmax(x, self.lo), self.hi);
        let x = v128_bitselect(x, clamped, f32x4_ne(x, x));
        let t = f32x4_add(f32x4_mul(x, self.log2e), self.rounder);
        let n = f32x4_sub(t, self.rounder);
        let r = f32x4_sub(f32x4_sub(x, f32x4_mul(n, self.ln2_hi)), f32x4_mul(n, self.ln2_lo));
        let mut p = self.poly[0];
        for c in &self.poly[1..] {
            p = f32x4_add(f32x4_mul(p, r), *c);
        }
        let p = f32x4_add(f32x4_add(f32x4_mul(f32x4_mul(p, r), r), r), self.one);
        f32x4_mul(p, i32x4_shl(i32x4_add(t, self.bias), 23))
    }
}

/// `f(4 values)` over whole vectors of `values`, in place, and `tail` on the values left.
#[inline(always)]
fn map_vectors(values: &mut [f32], mut f: impl FnMut(v128) -> v128, tail: impl Fn(f32) -> f32) {
    let mut chunks = values.chunks_exact_mut(4);
    for chunk in chunks.by_ref() {
        // SAFETY: a chunk is 4 f32, one unaligned v128.
        unsafe {
            let x = v128_load(chunk.as_ptr() as *const v128);
            v128_store(chunk.as_mut_ptr() as *mut v128, f(x));
        }
    }
    for x in chunks.into_remainder() {
        *x = tail(*x);
    }
}

/// [`super::gelu_in_place`].
pub fn gelu_in_place(values: &mut [f32]) {
    let c = super::ERF;
    let (half, one, frac_1_sqrt_2) = (splat(0.5), splat(1.0), splat(std::f32::consts::FRAC_1_SQRT_2));
    let (lo, hi) = (splat(-c.clamp), splat(c.clamp));
    let (numerator, denominator) = (c.numerator.map(splat), c.denominator.map(splat));
    map_vectors(
        values,
        |x| {
            // erf(z), z = x / √2, clamped as `f32::clamp` does (a NaN stays NaN: see `Exp::exp`).
            let z = f32x4_mul(x, frac_1_sqrt_2);
            let clamped = f32x4_pmin(f32x4_pmax(z, lo), hi);
            let z = v128_bitselect(z, clamped, f32x4_ne(z, z));
            let z2 = f32x4_mul(z, z);
            let mut p = numerator[0];
            for &c in &numerator[1..] {
                p = f32x4_add(f32x4_mul(p, z2), c);
            }
            let mut q = denominator[0];
            for &c in &denominator[1..] {
                q = f32x4_add(f32x4_mul(q, z2), c);
            }
            let erf = f32x4_div(f32x4_mul(z, p), q);
            f32x4_mul(f32x4_mul(half, x), f32x4_add(one, erf))
        },
        super::gelu,
    );
}

/// [`super::exp_shifted_in_place`].
pub fn exp_shifted_in_place(values: &mut [f32], shift: f32) {
    let exp = Exp::new();
    let shift_lanes = f32x4_splat(shift);
    map_vectors(values, |x| exp.exp(f32x4_sub(x, shift_lanes)), |x| super::exp(x - shift));
}

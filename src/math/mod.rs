//! Scalar math of the CPU kernels, written branch-free so that loops over slices vectorise (AVX natively,
//! `simd128` in the browser): `exp`, `erf`, GELU and `tanh`. libm's versions are exact to the last bit but
//! cost 10-20 ns a call in wasm, and BERT needs hundreds of thousands of them per tweet.
//!
//! Accuracy (tested below against `f64` references): `exp` within 2 ulp on [-87, 88]; `erf` within 5e-7
//! absolute (a rational approximation, measured 4.4e-7 in f32, worst near ±3.2; the WGSL kernels use
//! Abramowitz & Stegun 7.1.26, which needs an `exp`); `gelu` within 2e-7 (1 + |x|); `tanh` within 1.5e-7.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm;

/// The constants of [`exp`] (and of its vector form).
struct ExpConstants {
    /// The clamp of the input.
    lo: f32,
    hi: f32,
    /// `ln 2` split in two, so that `x - n ln 2` loses nothing.
    ln2_hi: f32,
    ln2_lo: f32,
    /// 1.5 * 2^23: adding it rounds to the nearest integer (ties to even) in plain arithmetic, which
    /// vectorises everywhere (`round` and `floor` are library calls on baseline x86-64), and leaves that
    /// integer in the low mantissa bits.
    rounder: f32,
    /// The polynomial's coefficients, highest degree first, down to `1/2`.
    poly: [f32; 6],
}

const EXP: ExpConstants = ExpConstants {
    lo: -87.336_55,
    hi: 88.0,
    ln2_hi: 0.693_359_4,
    ln2_lo: -2.121_944_4e-4,
    rounder: 12_582_912.0,
    poly: [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5],
};

/// `e^x`: `2^n * p(r)` with `n = round(x / ln 2)` and a degree-6 polynomial on `|r| <= ln 2 / 2` (Cephes
/// `expf`). Inputs are clamped to [-87.34, 88]: tiny results bottom out near 2^-126, huge ones at e^88.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let c = EXP;
    let x = x.clamp(c.lo, c.hi);
    let t = x * std::f32::consts::LOG2_E + c.rounder;
    let n = t - c.rounder;
    let n_int = t.to_bits() as i32 - c.rounder.to_bits() as i32;
    let r = x - n * c.ln2_hi - n * c.ln2_lo;
    let mut p = c.poly[0];
    for k in &c.poly[1..] {
        p = p * r + k;
    }
    let p = p * r * r + r + 1.0;
    // 2^n from its exponent bits: the clamp keeps n in -126..=127.
    p * f32::from_bits(((n_int + 127) as u32) << 23)
}

/// `e^(x - shift)` of every value, in place: 4 at a time in wasm (the same bits).
pub fn exp_shifted_in_place(values: &mut [f32], shift: f32) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    wasm::exp_shifted_in_place(values, shift);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    values.iter_mut().for_each(|x| *x = exp(*x - shift));
}

/// The constants of [`erf`]: a rational approximation `x P(x^2) / Q(x^2)` on `[-4, 4]` (Eigen's and XLA's
/// float `erf`), outside which `erf` is `±1` in f32.
struct ErfConstants {
    /// The clamp of the input.
    clamp: f32,
    /// `P`'s coefficients, highest degree first (of `x^13 .. x^1` in `x P(x^2)`).
    numerator: [f32; 7],
    /// `Q`'s coefficients, highest degree first (of `x^8 .. x^0`).
    denominator: [f32; 5],
}

const ERF: ErfConstants = ErfConstants {
    clamp: 4.0,
    numerator: [
        -2.726_142_4e-10,
        2.770_681_5e-8,
        -2.101_024e-6,
        -5.692_506_2e-5,
        -7.349_906_4e-4,
        -2.954_6e-3,
        -1.609_603_3e-2,
    ],
    denominator: [-1.456_607_15e-5, -2.133_740_5e-4, -1.682_827e-3, -7.373_329_3e-3, -1.426_473_9e-2],
};

/// The error function, as [`ErfConstants`] describes: two short polynomials and one division, without the
/// `exp` of Abramowitz & Stegun 7.1.26, which cost twice as much.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-ERF.clamp, ERF.clamp);
    let x2 = x * x;
    let mut p = ERF.numerator[0];
    for c in &ERF.numerator[1..] {
        p = p * x2 + c;
    }
    let mut q = ERF.denominator[0];
    for c in &ERF.denominator[1..] {
        q = q * x2 + c;
    }
    x * p / q
}

/// Exact GELU, `x Φ(x) = x (1 + erf(x / √2)) / 2` (HF `"gelu"`).
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// [`gelu`] of every value, in place: 4 at a time in wasm (the same bits).
pub fn gelu_in_place(values: &mut [f32]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    wasm::gelu_in_place(values);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    values.iter_mut().for_each(|x| *x = gelu(*x));
}

/// The derivative of [`gelu`]: `Φ(x) + x φ(x)`.
#[inline(always)]
pub fn gelu_grad(x: f32) -> f32 {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    cdf + x * INV_SQRT_2PI * exp(-0.5 * x * x)
}

/// The tanh approximation of GELU (HF `"gelu_new"`).
#[inline(always)]
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + tanh(SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)))
}

/// `tanh(x) = sign(x) (1 - e^{-2|x|}) / (1 + e^{-2|x|})`, within 1.5e-7 absolute.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let e = exp(-2.0 * x.abs());
    ((1.0 - e) / (1.0 + e)).copysign(x)
}

/// The smaller of `a` and `b`, ignoring a NaN `b` (as `f32::min` does when `a` is a number). Written as a
/// comparison and a select, which is `f32x4.pmin` in wasm and `minps` on x86: `f32::min` is a call to
/// libm's `fminf` per element in wasm (it never vectorises there), and the hot loops call it per value.
#[inline(always)]
pub fn min(a: f32, b: f32) -> f32 {
    if b < a {
        b
    } else {
        a
    }
}

/// The larger of `a` and `b`, as [`min`] (`f32x4.pmax`, `maxps`).
#[inline(always)]
pub fn max(a: f32, b: f32) -> f32 {
    if b > a {
        b
    } else {
        a
    }
}

/// Lanes of the partial sums in [`sum`], [`min_max`]: eight independent accumulators, which the
/// compiler keeps in vector registers (a plain fold is one sequential dependency chain: f32 addition is
/// not associative, so it never vectorises).
const LANES: usize = 8;

/// `x[0] + x[1] + ...`, summed in [`LANES`] interleaved partial sums, then those in order: the same
/// bits on every platform.
#[inline]
pub fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + tail.iter().sum::<f32>()
}

/// `sum of (x[i] - mean)^2`, in lanes as [`sum`].
#[inline]
pub fn sum_squares_about(x: &[f32], mean: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a += (v - mean) * (v - mean);
        }
    }
    acc.iter().sum::<f32>() + tail.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>()
}

/// The largest of `x` (`-inf` for none; NaN ignored), in lanes as [`sum`].
#[inline]
pub fn max_of(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = max(*a, v);
        }
    }
    acc.iter().chain(tail).fold(f32::NEG_INFINITY, |a, &v| max(a, v))
}

/// `(min(x ∪ {0}), max(x ∪ {0}))`, vectorised as [`sum`] is.
#[inline]
pub fn min_max_with_zero(x: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = ([0f32; LANES], [0f32; LANES]);
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(chunk) {
            *l = min(*l, v);
            *h = max(*h, v);
        }
    }
    let fold = |(lo, hi): (f32, f32), v: &f32| (min(lo, *v), max(hi, *v));
    let (l, h) = lo.iter().zip(&hi).fold((0f32, 0f32), |(a, b), (l, h)| (min(a, *l), max(b, *h)));
    tail.iter().fold((l, h), fold)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(lo: f32, hi: f32, n: usize) -> impl Iterator<Item = f32> {
        (0..=n).map(move |i| lo + (hi - lo) * i as f32 / n as f32)
    }

    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn exp_is_within_two_ulp() {
        for x in grid(-87.0, 88.0, 200_000) {
            let want = (x as f64).exp() as f32;
            assert!(ulps(exp(x), want) <= 2, "exp({x}) = {} want {want}", exp(x));
        }
        assert_eq!(exp(-1000.0), exp(-87.336_55));
        assert!(exp(-1000.0) < 1e-37 && exp(-1000.0) >= 0.0);
        assert!(exp(1000.0).is_finite() && exp(1000.0) > 1e38);
    }

    #[test]
    fn erf_and_gelu_match_f64_references() {
        // std has no erf: the reference integrates its definition numerically.
        let reference_erf = |x: f64| -> f64 {
            // Simpson's rule on 2/√π ∫0^x e^{-t²} dt with 20,000 panels: error far below 1e-12.
            let n = 20_000;
            let h = x / n as f64;
            let f = |t: f64| (-t * t).exp();
            let mut sum = f(0.0) + f(x);
            for i in 1..n {
                sum += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
            }
            sum * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
        };
        for x in grid(-6.0, 6.0, 1_200) {
            let want = reference_erf(x as f64);
            assert!((erf(x) as f64 - want).abs() <= 5e-7, "erf({x}) = {} want {want}", erf(x));
            let gelu_want = 0.5 * x as f64 * (1.0 + reference_erf(x as f64 / 2f64.sqrt()));
            assert!((gelu(x) as f64 - gelu_want).abs() <= 2e-7 * (1.0 + x.abs() as f64), "gelu({x})");
        }
    }

    #[test]
    fn gelu_grad_is_the_derivative() {
        for x in grid(-5.0, 5.0, 1_000) {
            let h = 1e-3f64;
            let numeric = (gelu((x as f64 + h) as f32) as f64 - gelu((x as f64 - h) as f32) as f64) / (2.0 * h);
            assert!((gelu_grad(x) as f64 - numeric).abs() < 2e-3, "gelu'({x}) = {} numeric {numeric}", gelu_grad(x));
        }
    }

    #[test]
    fn lane_sums_and_extremes() {
        let x: Vec<f32> = (0..37).map(|i| ((i * 7919) % 101) as f32 - 50.0).collect();
        assert_eq!(sum(&x), x.iter().map(|&v| v as f64).sum::<f64>() as f32, "small integers sum exactly");
        assert_eq!(min_max_with_zero(&x), (-50.0, 50.0));
        assert_eq!(min_max_with_zero(&[1.0, 2.0]), (0.0, 2.0), "the range includes 0");
        assert_eq!(min_max_with_zero(&[]), (0.0, 0.0));
        assert_eq!(sum(&[]), 0.0);
        assert_eq!(min_max_with_zero(&[f32::NAN, -3.0, f32::NAN, 4.0]), (-3.0, 4.0), "NaN is ignored");
        assert_eq!((min(1.0, f32::NAN), max(1.0, f32::NAN)), (1.0, 1.0));
        assert_eq!((min(1.0, -2.0), max(1.0, -2.0)), (-2.0, 1.0));
        assert_eq!(max_of(&x), 50.0);
        assert_eq!(max_of(&[-3.0, f32::NAN, -2.5]), -2.5);
        assert_eq!(max_of(&[]), f32::NEG_INFINITY);
    }

    #[test]
    fn tanh_matches_std() {
        for x in grid(-12.0, 12.0, 100_000) {
            assert!((tanh(x) - x.tanh()).abs() <= 1.5e-7, "tanh({x}) = {} want {}", tanh(x), x.tanh());
        }
    }
}

//! Training's dropout: inverted dropout (zero with probability `p`, scale the rest by `1 / (1 - p)`, as
//! `torch.nn.Dropout` and `candle_nn::ops::dropout`). On the CPU every mask comes from a counter-based
//! generator: a 64-bit seed per mask, drawn from a per-thread generator that [`seed_dropout`] seeds, and
//! a hash of (seed, element index) per value. So masks repeat for a seed (a resumed run draws what an
//! uninterrupted one would), the fused kernels regenerate them in backward instead of storing them,
//! and fused and composed passes drop the same values.

use std::cell::RefCell;

use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

thread_local! {
    /// The generator of mask seeds on the CPU once [`seed_dropout`] has run on this thread: candle's CPU
    /// device draws from an unseedable generator (`Device::set_seed` fails there).
    static CPU_DROPOUT_RNG: RefCell<Option<StdRng>> = const { RefCell::new(None) };
}

/// Makes the dropout masks of training a function of `seed` from here on: through the device's own
/// generator on CUDA and Metal, through a seeded generator of the calling thread on the CPU. Without it
/// dropout is random, as in candle. The trainer reseeds at every epoch.
pub fn seed_dropout(device: &Device, seed: u64) -> candle_core::Result<()> {
    if device.is_cpu() {
        CPU_DROPOUT_RNG.with(|rng| *rng.borrow_mut() = Some(StdRng::seed_from_u64(seed)));
        Ok(())
    } else {
        device.set_seed(seed)
    }
}

/// SplitMix64's finaliser: a well-mixed 64-bit function of a 64-bit counter (random test inputs).
#[cfg(test)]
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A well-mixed 32-bit function of a 32-bit counter (Wellons' `lowbias32`). 32-bit multiplies, unlike
/// [`mix`]'s 64-bit ones, vectorise on AVX2 and wasm `simd128`: a mask costs a few instructions per value.
#[inline(always)]
fn mix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

/// One dropout mask: the factor (0 or `1 / (1 - p)`) of every element index under `seed`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DropoutMask {
    pub seed: u64,
    pub p: f32,
}

impl DropoutMask {
    /// The factor of element `index`: 0 with probability `p`, else `1 / (1 - p)`. Two rounds of [`mix32`],
    /// keyed by the two halves of the seed, so masks of different seeds are unrelated (one keyed round
    /// would make them shifted copies of one sequence). Indices count modulo 2^32: a mask covers one
    /// tensor, and no tensor of a BERT step comes near 2^32 elements.
    #[inline(always)]
    pub fn factor(&self, index: usize) -> f32 {
        let bits = mix32(mix32(index as u32 ^ self.seed as u32) ^ (self.seed >> 32) as u32);
        let uniform = (bits >> 8) as f32 * (1.0 / (1u32 << 24) as f32);
        if uniform >= self.p {
            1.0 / (1.0 - self.p)
        } else {
            0.0
        }
    }

    /// `values[i] *= factor(offset + i)`.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn apply(&self, values: &mut [f32], offset: usize) {
        apply_mask(self, values, offset);
    }
}

/// [`DropoutMask::apply`], multiversioned: compiled for AVX2 too (8 lanes and 32-bit vector multiplies),
/// chosen at run time on x86-64, whose baseline SSE2 lacks both.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn apply_mask(mask: &DropoutMask, values: &mut [f32], offset: usize) {
    for (i, v) in values.iter_mut().enumerate() {
        *v *= mask.factor(offset + i);
    }
}

/// The next CPU mask of probability `p`: its seed from the seeded generator when there is one, else random.
pub(crate) fn next_mask(p: f64) -> DropoutMask {
    let seed =
        CPU_DROPOUT_RNG.with(|rng| rng.borrow_mut().as_mut().map(|r| r.random::<u64>())).unwrap_or_else(rand::random);
    DropoutMask { seed, p: p as f32 }
}

/// Dropout of `xs` with probability `p`: the fused kernel for f32 on the CPU, a mask tensor from the same
/// generator for other CPU dtypes, candle's dropout on other devices.
pub(crate) fn dropout(xs: &Tensor, p: f64) -> candle_core::Result<Tensor> {
    if !xs.device().is_cpu() {
        return candle_nn::ops::dropout(xs, p as f32);
    }
    let mask = next_mask(p);
    #[cfg(not(target_arch = "wasm32"))]
    if super::fused::applies(xs) {
        return super::fused::dropout(xs, mask);
    }
    let factors: Vec<f32> = (0..xs.elem_count()).map(|i| mask.factor(i)).collect();
    xs * Tensor::from_vec(factors, xs.shape(), xs.device())?.to_dtype(xs.dtype())?
}

#[cfg(test)]
mod tests {
    use super::DropoutMask;

    /// Each mask drops a fraction `p` of its values, and two masks drop the same value as often as
    /// independent draws would (`p^2`): a shared or shifted sequence would fail the second check.
    #[test]
    fn masks_drop_p_of_the_values_independently_of_each_other() {
        let n = 1 << 20;
        let (p, sd) = (0.1f64, (0.1f64 * 0.9 / (1 << 20) as f64).sqrt());
        let masks =
            [DropoutMask { seed: 7, p: 0.1 }, DropoutMask { seed: 8, p: 0.1 }, DropoutMask { seed: 7 << 32, p: 0.1 }];
        let dropped: Vec<Vec<bool>> = masks.iter().map(|m| (0..n).map(|i| m.factor(i) == 0.0).collect()).collect();
        for (m, d) in masks.iter().zip(&dropped) {
            let rate = d.iter().filter(|&&x| x).count() as f64 / n as f64;
            assert!((rate - p).abs() < 5.0 * sd, "seed {}: dropped {rate}", m.seed);
            let kept = (0..n).find(|&i| !d[i]).unwrap();
            assert_eq!(m.factor(kept), 1.0 / 0.9, "kept values are scaled by 1 / (1 - p)");
        }
        for (a, b) in [(0, 1), (0, 2), (1, 2)] {
            let both = (0..n).filter(|&i| dropped[a][i] && dropped[b][i]).count() as f64 / n as f64;
            assert!((both - p * p).abs() < 0.002, "masks {a} and {b} drop the same values at rate {both}");
        }
    }
}

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

/// SplitMix64's finaliser: a well-mixed 64-bit function of a 64-bit counter.
#[inline(always)]
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One dropout mask: the factor (0 or `1 / (1 - p)`) of every element index under `seed`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DropoutMask {
    pub seed: u64,
    pub p: f32,
}

impl DropoutMask {
    /// The factor of element `index`: 0 with probability `p`, else `1 / (1 - p)`.
    #[inline(always)]
    pub fn factor(&self, index: usize) -> f32 {
        let bits = mix(self.seed.wrapping_add((index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        let uniform = (bits >> 40) as f32 * (1.0 / (1u64 << 24) as f32);
        if uniform >= self.p {
            1.0 / (1.0 - self.p)
        } else {
            0.0
        }
    }

    /// `values[i] *= factor(offset + i)`.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn apply(&self, values: &mut [f32], offset: usize) {
        for (i, v) in values.iter_mut().enumerate() {
            *v *= self.factor(offset + i);
        }
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

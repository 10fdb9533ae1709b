//! Which instruction set the int8 engine runs: the first of [`Isa::available`], except where the fastest
//! kernel depends on the CPU under the browser. Relaxed SIMD's `i32x4.dot_i8x16_i7x16_add` is one
//! `vpdpbusd` on x86 with VNNI, but without it V8 makes it five instructions, where the 16-bit relaxed dot
//! product summed in pairs (three) or the baseline `simd128` kernel on widened operands is faster (Zen 3:
//! ~25 against ~20 GMAC/s in V8 for the latter). Wasm cannot ask the CPU, so a short race at load decides:
//! every kernel computes the same bits, so the choice changes speed only.

use std::sync::OnceLock;

use web_time::Instant;

use super::gemm::{matmul, GemmScratch, Isa, PackedMatrix, QuantizedRows};
use crate::weights::quant::{QuantizedMatrix, BLOCK};

/// The race's product: `ROWS x K` activations against `N x K` weights (9.4 M multiply-adds, about half a
/// millisecond), the shape of a tweet's attention output projection.
const ROWS: usize = 32;
const K: usize = 384;
const N: usize = 768;
/// Untimed calls per kernel first, then timed calls, alternating. V8 first runs a function as Liftoff's
/// quick code and swaps in optimised code once it is hot and compiled in the background: in Chromium 156
/// on Zen 3 that took 7 to 9 rounds here (each kernel ~2.6 ms, then ~1 ms), while the rest of the module
/// was still compiling beside it. That compiling also makes single times noisy, so the race compares the
/// median of the rounds' time ratios: a round's two calls see the same conditions.
const WARM_UP: usize = 12;
const TIMED: usize = 15;
/// A challenger must beat the first-choice kernel by this factor (median ratio of times) to be chosen.
const MARGIN: f64 = 0.95;

/// An instruction set and, where a race chose it, the race's times.
#[derive(Debug, Clone)]
pub struct IsaChoice {
    pub isa: Isa,
    pub reason: Option<String>,
}

/// The instruction set to run here (raced once per process where it depends on the CPU).
pub fn fastest() -> IsaChoice {
    static CHOICE: OnceLock<IsaChoice> = OnceLock::new();
    CHOICE
        .get_or_init(|| {
            let available = Isa::available();
            match available.as_slice() {
                [first @ Isa::WasmRelaxed, challengers @ .., Isa::Scalar] => race(*first, challengers),
                _ => IsaChoice { isa: available[0], reason: None },
            }
        })
        .clone()
}

/// Times `first` and each challenger on the same product, alternating; the fastest challenger wins only
/// by [`MARGIN`] (median of the rounds' time ratios against `first`).
fn race(first: Isa, challengers: &[Isa]) -> IsaChoice {
    let (x, w) = operands();
    let mut scratch = GemmScratch::default();
    let mut out = vec![0f32; ROWS * N];
    let mut time = |isa: Isa| {
        let start = Instant::now();
        matmul(isa, &x, &w, &mut out, N, &mut scratch);
        start.elapsed().as_secs_f64() * 1e3
    };
    let kernels: Vec<Isa> = std::iter::once(first).chain(challengers.iter().copied()).collect();
    let mut rounds: Vec<Vec<f64>> = Vec::with_capacity(TIMED);
    for round in 0..WARM_UP + TIMED {
        let times = kernels.iter().map(|&isa| time(isa)).collect();
        if round >= WARM_UP {
            rounds.push(times);
        }
    }
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let ratios: Vec<f64> = (1..kernels.len()).map(|i| median(rounds.iter().map(|r| r[i] / r[0]).collect())).collect();
    let best = (0..ratios.len()).min_by(|&a, &b| ratios[a].total_cmp(&ratios[b]));
    let isa = match best {
        Some(i) if ratios[i] < MARGIN => challengers[i],
        _ => first,
    };
    let times: Vec<String> = kernels
        .iter()
        .enumerate()
        .map(|(i, isa)| format!("{} {:.3} ms", isa.name(), median(rounds.iter().map(|r| r[i]).collect())))
        .collect();
    let reason = format!("raced at load on a {ROWS}x{K}x{N} product, median of {TIMED} rounds: {}", times.join(", "));
    IsaChoice { isa, reason: Some(reason) }
}

/// Deterministic operands in the engine's ranges: 7-bit activations, int8 weights.
fn operands() -> (QuantizedRows, PackedMatrix) {
    let mut state = 0x2545_f491_u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let values = (0..N * K).map(|_| (next() % 255) as i32 - 127).map(|v| v as i8).collect();
    let weights = QuantizedMatrix::from_parts(values, vec![0.01; N * K / BLOCK], N, K).expect("a valid shape");
    let mut x = QuantizedRows::default();
    x.reset(ROWS, K);
    x.data.iter_mut().for_each(|q| *q = (next() % 128) as u8);
    x.zero.iter_mut().for_each(|z| *z = (next() % 128) as i32);
    x.scale.fill(0.02);
    (x, PackedMatrix::pack(&weights, &vec![0.0; N]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Natively the order is fixed (no race), and the choice is the first available kernel.
    #[test]
    fn the_choice_is_an_available_kernel() {
        let choice = fastest();
        assert!(Isa::available().contains(&choice.isa));
        if !Isa::available().contains(&Isa::WasmRelaxed) {
            assert_eq!(choice.isa, Isa::available()[0]);
            assert!(choice.reason.is_none());
        }
    }
}

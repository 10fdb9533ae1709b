//! Cases for the int8 matrix multiply, shared by the native tests (tests/int8_engine.rs) and the browser
//! tests (tests/browser/cases.rs): awkward shapes (rows and columns off the tiles, K of one block, 384
//! and 1536, padded K), zero-scale blocks, constant and all-zero rows, saturated activations, in blocks of
//! 32 and of 64 values. Every instruction set available here must give the scalar reference's bits
//! exactly. Also the engine's
//! vectorised f32 functions (GELU, the softmax's exponential) against their scalar forms.
#![allow(dead_code)]

use tweetguard::backend::int8::gemm::{
    matmul, quantize_block, quantize_block_portable, reference_matmul, GemmScratch, Isa, PackedMatrix, QuantizedRows,
};
use tweetguard::math;
use tweetguard::weights::quant::{self, padded_len, QuantizedMatrix, BLOCK, WIDE_BLOCK};

/// A small deterministic generator (xorshift64*), so every platform sees the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn uniform(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

/// How a case's inputs are made.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Random,
    /// Some weight blocks all zero (scale 0), one activation row constant, one all zero.
    Degenerate,
    /// Activations at the ends of the 7-bit range, weights at +-127.
    Saturated,
}

fn case(
    rows: usize,
    n: usize,
    k: usize,
    block: usize,
    kind: Kind,
    seed: u64,
) -> (QuantizedRows, QuantizedMatrix, Vec<f32>) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut weights: Vec<f32> = (0..n * k).map(|_| rng.uniform() * 0.2).collect();
    let mut acts: Vec<f32> = (0..rows * k).map(|_| rng.uniform() * 3.0).collect();
    match kind {
        Kind::Random => {}
        Kind::Degenerate => {
            for (i, w) in weights.iter_mut().enumerate() {
                if (i % k) / block % 3 == 1 {
                    *w = 0.0;
                }
            }
            if rows > 1 {
                acts[..k].fill(0.7);
                acts[k..2 * k].fill(0.0);
            }
        }
        Kind::Saturated => {
            weights.iter_mut().for_each(|w| *w = if *w > 0.0 { 1.0 } else { -1.0 });
            acts.iter_mut().for_each(|a| *a = if *a > 0.0 { 5.0 } else { -5.0 });
        }
    }
    let w = QuantizedMatrix::quantize_in_blocks(&weights, n, k, block).unwrap();
    let mut x = QuantizedRows::default();
    x.reset_in_blocks(rows, k, block);
    for r in 0..rows {
        x.set_row(r, &acts[r * k..(r + 1) * k]);
    }
    let bias = (0..n).map(|_| rng.uniform()).collect();
    (x, w, bias)
}

const SHAPES: [(usize, usize, usize); 9] = [
    (1, 1, 32),
    (1, 16, 384),
    (2, 17, 40),
    (3, 33, 384),
    (4, 16, 1536),
    (5, 48, 64),
    (7, 15, 1536),
    (9, 100, 384),
    (13, 1152, 384),
];

pub fn every_kernel_matches_the_reference() {
    let isas = Isa::available();
    assert!(isas.contains(&Isa::Scalar));
    // One scratch for every call, as the engine keeps it: a call must not depend on what an earlier,
    // larger one left there.
    let mut scratch = GemmScratch::default();
    eprintln!("int8 kernels here: {:?}", isas.iter().map(|i| i.name()).collect::<Vec<_>>());
    let cases = SHAPES.iter().flat_map(|&shape| [BLOCK, WIDE_BLOCK].map(|block| (shape, block)));
    for (i, ((rows, n, k), block)) in
        cases.filter(|&((_, _, k), block)| padded_len(k).is_multiple_of(block)).enumerate()
    {
        for kind in [Kind::Random, Kind::Degenerate, Kind::Saturated] {
            let (x, w, bias) = case(rows, n, k, block, kind, i as u64 + 1);
            let want = reference_matmul(&x, &w, &bias);
            let packed = PackedMatrix::pack(&w, &bias);
            for &isa in &isas {
                let mut got = vec![f32::NAN; rows * n];
                matmul(isa, &x, &packed, &mut got, n, &mut scratch);
                for (j, (g, r)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        g.to_bits() == r.to_bits(),
                        "{} on {rows}x{n}x{k}, blocks of {block} ({kind:?}): element {j} (row {}, column {}) is {g}, \
                         the reference {r}",
                        isa.name(),
                        j / n,
                        j % n
                    );
                }
            }
        }
    }
}

/// With every scale 1, the outputs are the integer dot products of `q - zero` and the weights, exactly
/// (in blocks of 32 and of 64, whose sums reach twice as far).
pub fn integer_dot_products_are_exact() {
    for block in [BLOCK, WIDE_BLOCK] {
        integer_dot_products_are_exact_in_blocks_of(block);
    }
}

fn integer_dot_products_are_exact_in_blocks_of(block: usize) {
    let (rows, n, k) = (5, 40, 384);
    let mut rng = Rng(7);
    let values: Vec<i8> = (0..n * k).map(|_| ((rng.next() >> 33) % 255) as i64 as i8).map(|v| v.max(-127)).collect();
    let w = QuantizedMatrix::from_parts(values.clone(), vec![1.0; n * k / block], n, k).unwrap();
    assert_eq!(w.block, block, "the block length follows from the number of scales");
    let mut x = QuantizedRows::default();
    x.reset_in_blocks(rows, k, block);
    for q in x.data.iter_mut() {
        *q = ((rng.next() >> 33) % 128) as u8;
    }
    for z in x.zero.iter_mut() {
        *z = ((rng.next() >> 33) % 128) as i32;
    }
    x.scale.fill(1.0);
    let packed = PackedMatrix::pack(&w, &vec![0.0; n]);
    for isa in Isa::available() {
        let mut got = vec![0f32; rows * n];
        matmul(isa, &x, &packed, &mut got, n, &mut GemmScratch::default());
        for r in 0..rows {
            for c in 0..n {
                let exact: i64 = (0..k)
                    .map(|i| {
                        (x.data[r * k + i] as i64 - x.zero[r * k / block + i / block] as i64) * values[c * k + i] as i64
                    })
                    .sum();
                assert_eq!(got[r * n + c] as i64, exact, "{}, blocks of {block}: row {r} column {c}", isa.name());
            }
        }
    }
}

/// A block's range maps onto 0..=127 with 0 exact (the zero point), and an all-zero block to zeros.
pub fn quantizer_keeps_zero_exact() {
    let values = [-1.0f32, 0.0, 0.5, 2.0, -0.25, 1.0];
    let mut out = [0u8; 6];
    let (scale, zero) = quantize_block(&values, &mut out);
    assert!((scale - 3.0 / 127.0).abs() < 1e-7);
    assert_eq!(out[1] as i32, zero, "0 maps to the zero point");
    assert_eq!((out[0], out[3]), (0, 127), "the ends of the range");
    for (v, q) in values.iter().zip(out) {
        assert_eq!(q as i32, ((v * (1.0 / scale)).round_ties_even() as i32 + zero).clamp(0, 127), "{v}");
    }
    let (scale, zero) = quantize_block(&[0.5, 2.0, 1.0], &mut out[..3]);
    assert_eq!(zero, 0, "a positive block's range starts at 0");
    assert_eq!(out[1], 127);
    assert!(scale > 0.0);
    assert_eq!(quantize_block(&[0.0; 4], &mut out[..4]), (0.0, 0));
    assert!(out[..4].iter().all(|&q| q == 0));
}

/// The quantizer this target runs (explicit `simd128` for whole blocks in wasm) gives the portable
/// version's bytes, scale and zero point on whole blocks (32 and 64 values) and partial ones: random
/// ranges, one-signed blocks, signed zeros, subnormals, values whose rounding lands outside 0..=127, and
/// non-finite values.
pub fn quantizer_matches_the_portable_one_bit_for_bit() {
    let mut rng = Rng(0x51ed_2701);
    let specials =
        [0.0f32, -0.0, f32::MIN_POSITIVE / 4.0, -1e-42, 1e30, -1e30, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
    for case in 0..2000 {
        let len = match case % 5 {
            0 => 1 + case % 32,
            1 => WIDE_BLOCK,
            _ => BLOCK,
        };
        let magnitude = [1e-6f32, 1.0, 1e3, 1e20][case % 4];
        let mut values: Vec<f32> = (0..len)
            .map(|_| match case % 7 {
                0 => rng.uniform().abs() * magnitude,
                1 => -rng.uniform().abs() * magnitude,
                _ => rng.uniform() * magnitude,
            })
            .collect();
        if case % 3 == 0 {
            values[(rng.next() % len as u64) as usize] = specials[case / 3 % specials.len()];
        }
        let (mut got, mut want) = (vec![0u8; len], vec![0u8; len]);
        let (gs, gz) = quantize_block(&values, &mut got);
        let (ws, wz) = quantize_block_portable(&values, &mut want);
        assert_eq!((gs.to_bits(), gz, &got), (ws.to_bits(), wz, &want), "case {case}: {values:?}");
    }
}

/// The slice forms of GELU and of the shifted exponential (explicit `simd128` in wasm) give the scalar
/// functions' bits on every value: a dense grid, the exponential's clamp edges, signed zeros, subnormals,
/// huge and non-finite values, and lengths that leave a tail after whole vectors.
pub fn vector_math_matches_the_scalar_functions_bit_for_bit() {
    let specials = [
        0.0f32,
        -0.0,
        1e-42,
        -1e-42,
        f32::MIN_POSITIVE,
        87.336_55,
        -87.336_55,
        88.0,
        88.1,
        -88.0,
        -100.0,
        100.0,
        1e30,
        -1e30,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MAX,
        f32::MIN,
    ];
    let grid = (0..=8000).map(|i| -20.0 + 40.0 * i as f32 / 8000.0);
    let values: Vec<f32> = specials.into_iter().chain(grid).collect();
    let same = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    for len in [values.len(), 1, 2, 3, 5, 7] {
        let values = &values[..len];
        let mut got = values.to_vec();
        math::gelu_in_place(&mut got);
        for (x, g) in values.iter().zip(&got) {
            assert!(same(*g, math::gelu(*x)), "gelu({x}) = {g}, the scalar one {}", math::gelu(*x));
        }
        for shift in [0.0f32, 3.5, -2.0] {
            let mut got = values.to_vec();
            math::exp_shifted_in_place(&mut got, shift);
            for (x, g) in values.iter().zip(&got) {
                let want = math::exp(*x - shift);
                assert!(same(*g, want), "exp({x} - {shift}) = {g}, the scalar one {want}");
            }
        }
    }
}

/// The tiny BERT's f32 weights as int8 with 64-value blocks on its attention output and FFN down-projection
/// wherever the padded row allows (its FFN down-projection: 48 inputs, padded to 64), the rest in 32: a
/// whole model through the engine's 64-value path. The exporter's own rule gives the tiny model none (48 is
/// not a multiple of 64).
pub fn tiny_with_64_value_blocks(f32_weights: &[u8]) -> Vec<u8> {
    fn wide_where_possible(name: &str, cols: usize) -> usize {
        match name.ends_with(".output.dense.weight") && padded_len(cols).is_multiple_of(WIDE_BLOCK) {
            true => WIDE_BLOCK,
            false => BLOCK,
        }
    }
    let weights = quant::quantize_safetensors_with(f32_weights, wide_where_possible).unwrap();
    assert_eq!(quant::format_of(&weights).unwrap().as_deref(), Some(quant::FORMAT_INT8), "some blocks are 64");
    weights
}

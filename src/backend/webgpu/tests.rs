//! Each WGSL kernel against a CPU reference (candle or plain f64 loops) on random shapes: sizes that are
//! not multiples of the tiles, batch 1 and batch > 1, all-padding rows, int8 and f32 weights. Runs on
//! whatever adapter wgpu finds (lavapipe on CI). Without one the tests skip and say so, except under
//! `CI=true`, where a missing adapter fails them.

use rand::{Rng, SeedableRng};
use wgpu::util::DeviceExt;

use super::kernels::{AttentionOp, Binder, EmbeddingsOp, EpilogueOp, Kernels, LayerNormOp, LinearOp, WebGpuMatrix};
use super::{read_back, upload_matrix, Gpu, WebGpuAdapter};
use crate::weights::{quant::QuantizedMatrix, StoredMatrix};

fn gpu() -> Option<Gpu> {
    let opened = pollster::block_on(async { WebGpuAdapter::request().await?.open().await });
    match opened {
        Ok(gpu) => Some(gpu),
        Err(err) => {
            assert!(std::env::var("CI").is_err(), "CI=true but no WebGPU adapter: {err} (install mesa-vulkan-drivers)");
            eprintln!("SKIPPED: no WebGPU adapter here ({err})");
            None
        }
    }
}

fn random(rng: &mut impl Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

fn input(gpu: &Gpu, values: &[f32]) -> wgpu::Buffer {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let contents = if bytes.is_empty() { vec![0u8; 4] } else { bytes };
    gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: &contents,
        usage: wgpu::BufferUsages::STORAGE,
    })
}

fn input_u32(gpu: &Gpu, values: &[u32]) -> wgpu::Buffer {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: &bytes,
        usage: wgpu::BufferUsages::STORAGE,
    })
}

fn output(gpu: &Gpu, floats: usize) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: (floats.max(1) * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    })
}

/// Records one kernel with `record`, runs it, and reads `floats` values of `out` back.
fn run(
    gpu: &Gpu,
    out: &wgpu::Buffer,
    floats: usize,
    record: impl FnOnce(&mut Binder, &mut wgpu::ComputePass),
) -> Vec<f32> {
    run_with(gpu, &mut Binder::new(gpu, 1), out, floats, record)
}

/// [`run`] with a given binder.
fn run_with(
    gpu: &Gpu,
    binder: &mut Binder,
    out: &wgpu::Buffer,
    floats: usize,
    record: impl FnOnce(&mut Binder, &mut wgpu::ComputePass),
) -> Vec<f32> {
    let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: (floats * 4) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        record(binder, &mut pass);
    }
    encoder.copy_buffer_to_buffer(out, 0, &staging, 0, (floats * 4) as u64);
    binder.upload(&gpu.queue);
    gpu.queue.submit([encoder.finish()]);
    pollster::block_on(read_back(gpu, &staging, (floats * 4) as u64)).unwrap()
}

fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let worst = got.iter().zip(want).map(|(g, w)| (*g as f64 - w).abs() / (1.0 + w.abs())).fold(0.0, f64::max);
    assert!(worst <= tol, "{what}: max relative difference {worst:e} > {tol:e}");
}

fn erf(x: f64) -> f64 {
    candle_core::cpu::erf::erf_f64(x)
}

fn activate(v: f64, act: EpilogueOp) -> f64 {
    match act {
        EpilogueOp::None => v,
        EpilogueOp::Gelu => 0.5 * v * (1.0 + erf(v / 2f64.sqrt())),
        EpilogueOp::Tanh => v.tanh(),
        EpilogueOp::GeluTanh => {
            0.5 * v * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v.powi(3))).tanh())
        }
        EpilogueOp::Relu => v.max(0.0),
    }
}

/// f32 matmul accumulates in a different order than the f64 reference: relative 1e-5 covers k <= 200.
const MATMUL_TOL: f64 = 1e-5;

#[test]
fn linear_matches_the_cpu_for_int8_and_f32_weights() {
    let Some(gpu) = gpu() else { return };
    let kernels = Kernels::new(&gpu, 16);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // (m, n, k, extra x stride): tile edges (64), int8 block edges (32), 1-row and 1-column cases.
    for &(m, n, k, pad) in
        &[(1, 1, 1, 0), (3, 5, 7, 2), (64, 64, 32, 0), (65, 70, 33, 3), (130, 100, 96, 0), (2, 3, 200, 5)]
    {
        for int8 in [false, true] {
            for act in [EpilogueOp::None, EpilogueOp::Gelu, EpilogueOp::Tanh, EpilogueOp::GeluTanh, EpilogueOp::Relu] {
                let stride = k + pad;
                let x = random(&mut rng, m * stride, 2.0);
                let w = random(&mut rng, n * k, 0.5);
                let bias = random(&mut rng, n, 0.5);
                let (stored, dense) = if int8 {
                    let q = QuantizedMatrix::quantize(&w, n, k).unwrap();
                    let dense = q.dequantize();
                    (StoredMatrix::Int8(q), dense)
                } else {
                    (StoredMatrix::F32(w.clone()), w.clone())
                };
                let gw: WebGpuMatrix = upload_matrix(&gpu, "w", &stored, n, k).unwrap();
                let (gx, gb, gy) = (input(&gpu, &x), input(&gpu, &bias), output(&gpu, m * n));
                let got = run(&gpu, &gy, m * n, |binder, pass| {
                    kernels.linear(
                        binder,
                        pass,
                        &LinearOp { x: &gx, x_stride: stride, rows: m, weight: &gw, bias: &gb, out: &gy, act },
                    )
                });
                let want: Vec<f64> = (0..m * n)
                    .map(|i| {
                        let (r, c) = (i / n, i % n);
                        let dot: f64 = (0..k).map(|j| x[r * stride + j] as f64 * dense[c * k + j] as f64).sum();
                        activate(dot + bias[c] as f64, act)
                    })
                    .collect();
                assert_close(&format!("linear m={m} n={n} k={k} int8={int8} {act:?}"), &got, &want, MATMUL_TOL);
            }
        }
    }
}

#[test]
fn gelu_matches_candles_exact_gelu() {
    let Some(gpu) = gpu() else { return };
    let kernels = Kernels::new(&gpu, 16);
    // Identity weights: the kernel's output is GELU(x) itself, over [-8, 8].
    let n = 64;
    let xs: Vec<f32> = (0..4 * n).map(|i| -8.0 + 16.0 * i as f32 / (4 * n) as f32).collect();
    let eye: Vec<f32> = (0..n * n).map(|i| if i / n == i % n { 1.0 } else { 0.0 }).collect();
    let gw = upload_matrix(&gpu, "eye", &StoredMatrix::F32(eye), n, n).unwrap();
    let (gx, gb, gy) = (input(&gpu, &xs), input(&gpu, &vec![0.0; n]), output(&gpu, xs.len()));
    let got = run(&gpu, &gy, xs.len(), |binder, pass| {
        kernels.linear(
            binder,
            pass,
            &LinearOp { x: &gx, x_stride: n, rows: 4, weight: &gw, bias: &gb, out: &gy, act: EpilogueOp::Gelu },
        )
    });
    let reference = candle_core::Tensor::new(xs.as_slice(), &candle_core::Device::Cpu)
        .unwrap()
        .gelu_erf()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let worst = got.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    // Abramowitz-Stegun erf: |error| <= 1.5e-7, times |x| / 2 <= 4, plus f32 rounding.
    assert!(worst <= 2e-6, "GELU differs from candle's erf GELU by {worst:e}");
}

#[test]
fn layer_norm_matches_the_reference_with_and_without_residual() {
    let Some(gpu) = gpu() else { return };
    let kernels = Kernels::new(&gpu, 16);
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    for &(rows, cols) in &[(1, 1), (1, 32), (5, 37), (70, 384), (3, 1000)] {
        for with_residual in [false, true] {
            let x = random(&mut rng, rows * cols, 3.0);
            let residual = random(&mut rng, rows * cols, 1.0);
            let gamma = random(&mut rng, cols, 1.5);
            let beta = random(&mut rng, cols, 0.5);
            let eps = 1e-12f32;
            let (gx, gr, gg, gbeta, gy) = (
                input(&gpu, &x),
                input(&gpu, &residual),
                input(&gpu, &gamma),
                input(&gpu, &beta),
                output(&gpu, rows * cols),
            );
            let got = run(&gpu, &gy, rows * cols, |binder, pass| {
                kernels.layer_norm(
                    binder,
                    pass,
                    &LayerNormOp {
                        x: &gx,
                        residual: with_residual.then_some(&gr),
                        gamma: &gg,
                        beta: &gbeta,
                        out: &gy,
                        rows,
                        cols,
                        eps,
                    },
                )
            });
            let mut want = Vec::with_capacity(rows * cols);
            for r in 0..rows {
                let v: Vec<f64> = (0..cols)
                    .map(|c| x[r * cols + c] as f64 + if with_residual { residual[r * cols + c] as f64 } else { 0.0 })
                    .collect();
                let mean = v.iter().sum::<f64>() / cols as f64;
                let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / cols as f64;
                want.extend(
                    v.iter()
                        .enumerate()
                        .map(|(c, a)| (a - mean) / (var + eps as f64).sqrt() * gamma[c] as f64 + beta[c] as f64),
                );
            }
            // A constant row (cols = 1) normalises to beta: the 1e-12 eps keeps it finite.
            assert_close(&format!("layer_norm {rows}x{cols} residual={with_residual}"), &got, &want, 1e-4);
        }
    }
}

#[test]
fn embeddings_gather_and_sum_int8_and_f32_tables() {
    let Some(gpu) = gpu() else { return };
    let kernels = Kernels::new(&gpu, 16);
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let (vocab, positions, types, hidden, batch, seq) = (50, 12, 2, 40, 3, 7);
    for int8 in [false, true] {
        let tables: Vec<(Vec<f32>, usize)> =
            [vocab, positions, types].iter().map(|&rows| (random(&mut rng, rows * hidden, 1.0), rows)).collect();
        let mut dense = Vec::new();
        let mut uploaded = Vec::new();
        for (values, rows) in &tables {
            let stored = if int8 {
                StoredMatrix::Int8(QuantizedMatrix::quantize(values, *rows, hidden).unwrap())
            } else {
                StoredMatrix::F32(values.clone())
            };
            dense.push(match &stored {
                StoredMatrix::Int8(q) => q.dequantize(),
                StoredMatrix::F32(v) => v.clone(),
            });
            uploaded.push(upload_matrix(&gpu, "table", &stored, *rows, hidden).unwrap());
        }
        let tokens = batch * seq;
        let ids: Vec<u32> = (0..tokens).map(|_| rng.random_range(0..vocab as u32)).collect();
        let type_ids: Vec<u32> = (0..tokens).map(|_| rng.random_range(0..types as u32)).collect();
        let (gi, gt, out) = (input_u32(&gpu, &ids), input_u32(&gpu, &type_ids), output(&gpu, tokens * hidden));
        let got = run(&gpu, &out, tokens * hidden, |binder, pass| {
            kernels.embeddings(
                binder,
                pass,
                &EmbeddingsOp {
                    ids: &gi,
                    types: &gt,
                    tables: [&uploaded[0], &uploaded[1], &uploaded[2]],
                    out: &out,
                    tokens,
                    seq,
                },
            )
        });
        let want: Vec<f64> = (0..tokens * hidden)
            .map(|i| {
                let (t, c) = (i / hidden, i % hidden);
                dense[0][ids[t] as usize * hidden + c] as f64
                    + dense[1][(t % seq) * hidden + c] as f64
                    + dense[2][type_ids[t] as usize * hidden + c] as f64
            })
            .collect();
        assert_close(&format!("embeddings int8={int8}"), &got, &want, 1e-6);
    }
}

/// Reference attention in f64: masked keys get probability 0; an all-padding row averages every key.
fn attention_reference(qkv: &[f32], mask: &[u32], batch: usize, seq: usize, hidden: usize, heads: usize) -> Vec<f64> {
    let d = hidden / heads;
    let mut out = vec![0.0; batch * seq * hidden];
    for b in 0..batch {
        let any = (0..seq).any(|j| mask[b * seq + j] != 0);
        for h in 0..heads {
            for i in 0..seq {
                let q = |c: usize| qkv[(b * seq + i) * 3 * hidden + h * d + c] as f64;
                let scores: Vec<Option<f64>> = (0..seq)
                    .map(|j| {
                        let keep = mask[b * seq + j] != 0 || !any;
                        let s: f64 =
                            (0..d).map(|c| q(c) * qkv[(b * seq + j) * 3 * hidden + hidden + h * d + c] as f64).sum();
                        keep.then_some(if any { s / (d as f64).sqrt() } else { 0.0 })
                    })
                    .collect();
                let max = scores.iter().flatten().fold(f64::MIN, |m, s| m.max(*s));
                let exps: Vec<f64> = scores.iter().map(|s| s.map_or(0.0, |s| (s - max).exp())).collect();
                let total: f64 = exps.iter().sum();
                for c in 0..d {
                    out[(b * seq + i) * hidden + h * d + c] = (0..seq)
                        .map(|j| exps[j] / total * qkv[(b * seq + j) * 3 * hidden + 2 * hidden + h * d + c] as f64)
                        .sum();
                }
            }
        }
    }
    out
}

#[test]
fn attention_matches_the_reference_with_padding_and_empty_rows() {
    let Some(gpu) = gpu() else { return };
    let mut rng = rand::rngs::StdRng::seed_from_u64(10);
    for &(batch, seq, hidden, heads) in &[(1, 1, 8, 2), (1, 9, 32, 4), (3, 70, 48, 3), (4, 130, 64, 2)] {
        let kernels = Kernels::new(&gpu, seq);
        let qkv = random(&mut rng, batch * seq * 3 * hidden, 2.0);
        // Row 0 full, row 1 padded after a few tokens, row 2 all padding, row 3 one token.
        let mask: Vec<u32> = (0..batch * seq)
            .map(|t| {
                let (b, j) = (t / seq, t % seq);
                match b % 4 {
                    0 => 1,
                    1 => (j < seq.div_ceil(3)) as u32,
                    2 => 0,
                    _ => (j == 0) as u32,
                }
            })
            .collect();
        let (gq, gm, out) = (input(&gpu, &qkv), input_u32(&gpu, &mask), output(&gpu, batch * seq * hidden));
        let got = run(&gpu, &out, batch * seq * hidden, |binder, pass| {
            kernels.attention(binder, pass, &AttentionOp { qkv: &gq, mask: &gm, out: &out, batch, seq, hidden, heads })
        });
        let want = attention_reference(&qkv, &mask, batch, seq, hidden, heads);
        assert_close(&format!("attention b={batch} s={seq} h={hidden} heads={heads}"), &got, &want, 1e-5);
    }
}

/// Dispatches of one pass read their own uniform slots: two LayerNorms in one pass (the second adds a
/// residual, so its block differs) equal the same kernels run one per pass. With a one-slot binder the
/// second falls back to a buffer of its own, with the same result.
#[test]
fn dispatches_in_one_pass_read_their_own_uniform_slots() {
    let Some(gpu) = gpu() else { return };
    let kernels = Kernels::new(&gpu, 16);
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let (rows, cols, eps) = (7, 40, 1e-5f32);
    let (x, residual) = (random(&mut rng, rows * cols, 2.0), random(&mut rng, rows * cols, 2.0));
    let (gamma, beta) = (random(&mut rng, cols, 1.5), random(&mut rng, cols, 0.5));
    let (gx, gr, gg, gb) = (input(&gpu, &x), input(&gpu, &residual), input(&gpu, &gamma), input(&gpu, &beta));
    let (first, second) = (output(&gpu, rows * cols), output(&gpu, rows * cols));
    let separate_first = run(&gpu, &first, rows * cols, |binder, pass| {
        kernels.layer_norm(
            binder,
            pass,
            &LayerNormOp { x: &gx, residual: None, gamma: &gg, beta: &gb, out: &first, rows, cols, eps },
        )
    });
    let separate = run(&gpu, &second, rows * cols, |binder, pass| {
        kernels.layer_norm(
            binder,
            pass,
            &LayerNormOp { x: &first, residual: Some(&gr), gamma: &gg, beta: &gb, out: &second, rows, cols, eps },
        )
    });
    for slots in [2, 1] {
        let together = run_with(&gpu, &mut Binder::new(&gpu, slots), &second, rows * cols, |binder, pass| {
            kernels.layer_norm(
                binder,
                pass,
                &LayerNormOp { x: &gx, residual: None, gamma: &gg, beta: &gb, out: &first, rows, cols, eps },
            );
            kernels.layer_norm(
                binder,
                pass,
                &LayerNormOp { x: &first, residual: Some(&gr), gamma: &gg, beta: &gb, out: &second, rows, cols, eps },
            );
        });
        assert_eq!(together, separate, "{slots} slot(s)");
    }
    assert_ne!(separate, separate_first, "the two blocks must differ for the test to mean anything");
}

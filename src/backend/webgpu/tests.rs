//! Each WGSL kernel against a CPU reference (candle or plain f64 loops) on random shapes: sizes that are
//! not multiples of the tiles, batch 1 and batch > 1, all-padding rows, int8 and f32 weights, both
//! matmul tiles with and without a split along k. Runs on whatever adapter wgpu finds (lavapipe on
//! CI). Without one the tests skip and say so, except under `CI=true`, where a missing adapter fails
//! them.

use rand::{Rng, SeedableRng};

use super::kernels::{
    AttentionOp, Dispatch, EmbedNormOp, EpilogueOp, HeadOp, Kernels, LayerNormOp, LinearOp, MatmulShape, Params,
    TableRows, Tile, Uniforms, WebGpuMatrix,
};
use super::{read_back, upload_matrix, Gpu, WebGpuAdapter};
use crate::weights::quant::{padded_len, QuantizedMatrix, BLOCK, WIDE_BLOCK};
use crate::weights::StoredMatrix;

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
    input_bytes(gpu, bytemuck::cast_slice(values))
}

fn input_u32(gpu: &Gpu, values: &[u32]) -> wgpu::Buffer {
    input_bytes(gpu, bytemuck::cast_slice(values))
}

fn input_bytes(gpu: &Gpu, bytes: &[u8]) -> wgpu::Buffer {
    let contents = if bytes.is_empty() { &[0u8; 4][..] } else { bytes };
    gpu.create_buffer_init("input", contents, wgpu::BufferUsages::STORAGE)
}

fn output(gpu: &Gpu, floats: usize) -> wgpu::Buffer {
    gpu.create_buffer("output", (floats.max(1) * 4) as u64, wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC)
}

/// A dispatch of any kernel, for running several in one pass.
trait Recordable {
    fn bind_group(&self, gpu: &Gpu, uniforms: &Uniforms) -> wgpu::BindGroup;
    fn record_on(&self, pass: &mut wgpu::ComputePass, group: &wgpu::BindGroup, uniforms: &mut Uniforms);
}

impl<P: Params> Recordable for Dispatch<'_, P> {
    fn bind_group(&self, gpu: &Gpu, uniforms: &Uniforms) -> wgpu::BindGroup {
        self.bind(gpu, uniforms)
    }
    fn record_on(&self, pass: &mut wgpu::ComputePass, group: &wgpu::BindGroup, uniforms: &mut Uniforms) {
        self.record(pass, group, uniforms)
    }
}

/// Binds and records `dispatches` in order in one compute pass (each its own uniform slot), runs them,
/// and reads `floats` values of `out` back.
fn run(gpu: &Gpu, out: &wgpu::Buffer, floats: usize, dispatches: &[&dyn Recordable]) -> Vec<f32> {
    let mut uniforms = Uniforms::new(gpu, dispatches.len());
    let groups: Vec<wgpu::BindGroup> = dispatches.iter().map(|d| d.bind_group(gpu, &uniforms)).collect();
    let staging =
        gpu.create_buffer("staging", (floats * 4) as u64, wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
    let mut encoder = gpu.create_command_encoder("test");
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        for (d, group) in dispatches.iter().zip(&groups) {
            d.record_on(&mut pass, group, &mut uniforms);
        }
    }
    encoder.copy_buffer_to_buffer(out, 0, &staging, 0, (floats * 4) as u64);
    uniforms.upload(gpu);
    gpu.submit(encoder.finish());
    let values = pollster::block_on(read_back(gpu, &staging, (floats * 4) as u64)).unwrap();
    assert_eq!(gpu.failure(), None, "the device reported an error");
    values
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

/// A matrix as stored (int8 or f32) and its dense f32 values (the int8 ones dequantized).
fn stored(values: &[f32], rows: usize, cols: usize, int8: bool) -> (StoredMatrix, Vec<f32>) {
    stored_in(values, rows, cols, int8.then_some(BLOCK))
}

/// [`stored`] as int8 in blocks of `block` values, or as f32 for `None`.
fn stored_in(values: &[f32], rows: usize, cols: usize, block: Option<usize>) -> (StoredMatrix, Vec<f32>) {
    match block {
        Some(block) => {
            let q = QuantizedMatrix::quantize_in_blocks(values, rows, cols, block).unwrap();
            let dense = q.dequantize();
            (StoredMatrix::Int8(q), dense)
        }
        None => (StoredMatrix::F32(values.to_vec()), values.to_vec()),
    }
}

fn layer_norm_reference(v: &[f64], params: &[f32], eps: f64) -> Vec<f64> {
    let cols = v.len();
    let mean = v.iter().sum::<f64>() / cols as f64;
    let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / cols as f64;
    v.iter()
        .enumerate()
        .map(|(c, a)| (a - mean) / (var + eps).sqrt() * params[c] as f64 + params[cols + c] as f64)
        .collect()
}

/// f32 matmul accumulates in a different order than the f64 reference: relative 1e-5 covers k <= 200.
const MATMUL_TOL: f64 = 1e-5;

/// Every way a linear layer of these sizes can be dispatched: each tile whole, and the small tile split
/// along k in blocks of 32 (as many splits as there are blocks, and two).
fn shapes(k: usize) -> Vec<MatmulShape> {
    let blocks = k.div_ceil(32) as u32;
    let mut shapes = vec![
        MatmulShape { tile: Tile::Large, splits: 1, k_chunk: blocks * 32 },
        MatmulShape { tile: Tile::Small, splits: 1, k_chunk: blocks * 32 },
    ];
    if blocks > 1 {
        shapes.push(MatmulShape { tile: Tile::Small, splits: blocks, k_chunk: 32 });
        let half = blocks.div_ceil(2);
        shapes.push(MatmulShape { tile: Tile::Large, splits: blocks.div_ceil(half), k_chunk: half * 32 });
    }
    shapes
}

#[test]
fn linear_matches_the_cpu_for_int8_and_f32_weights_on_every_tile_and_split() {
    let Some(gpu) = gpu() else { return };
    let kernels = Kernels::new(&gpu, 16, 8);
    let partial = output(&gpu, super::kernels::partial_capacity());
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // (m, n, k, extra x stride): tile edges (16, 32, 64), int8 block edges (32, 64), 1-row and 1-column
    // cases; f32 weights, and int8 in blocks of 32 and (where k allows) 64.
    for &(m, n, k, pad) in &[
        (1, 1, 1, 0),
        (3, 5, 7, 2),
        (64, 64, 32, 0),
        (65, 70, 33, 3),
        (17, 33, 96, 0),
        (130, 100, 96, 0),
        (2, 3, 200, 5),
        (5, 9, 128, 1),
    ] {
        let storages = [None, Some(BLOCK), Some(WIDE_BLOCK)];
        for storage in storages.into_iter().filter(|b| b.is_none_or(|b| padded_len(k).is_multiple_of(b))) {
            let stride = k + pad;
            let x = random(&mut rng, m * stride, 2.0);
            let w = random(&mut rng, n * k, 0.5);
            let bias = random(&mut rng, n, 0.5);
            let (matrix, dense) = stored_in(&w, n, k, storage);
            let gw: WebGpuMatrix = upload_matrix(&gpu, "w", &matrix, n, k).unwrap();
            let (gx, gb, gy) = (input(&gpu, &x), input(&gpu, &bias), output(&gpu, m * n));
            for (s, shape) in shapes(k).into_iter().enumerate() {
                // Every activation on the first shape, one per shape after it.
                let acts =
                    [EpilogueOp::None, EpilogueOp::Gelu, EpilogueOp::Tanh, EpilogueOp::GeluTanh, EpilogueOp::Relu];
                for act in if s == 0 { &acts[..] } else { &acts[s % 5..s % 5 + 1] } {
                    let op = LinearOp {
                        x: &gx,
                        x_stride: stride,
                        rows: m,
                        weight: &gw,
                        bias: &gb,
                        out: &gy,
                        partial: &partial,
                        act: *act,
                        shape,
                    };
                    let (product, sum) = (kernels.linear(&op), kernels.split_reduce(&op));
                    let dispatches: Vec<&dyn Recordable> =
                        if shape.splits > 1 { vec![&product, &sum] } else { vec![&product] };
                    let got = run(&gpu, &gy, m * n, &dispatches);
                    let want: Vec<f64> = (0..m * n)
                        .map(|i| {
                            let (r, c) = (i / n, i % n);
                            let dot: f64 = (0..k).map(|j| x[r * stride + j] as f64 * dense[c * k + j] as f64).sum();
                            activate(dot + bias[c] as f64, *act)
                        })
                        .collect();
                    let what = format!("linear m={m} n={n} k={k} int8 blocks {storage:?} {act:?} {shape:?}");
                    assert_close(&what, &got, &want, MATMUL_TOL);
                }
            }
        }
    }
}

#[test]
fn gelu_matches_candles_exact_gelu() {
    let Some(gpu) = gpu() else { return };
    let kernels = Kernels::new(&gpu, 16, 8);
    // Identity weights: the kernel's output is GELU(x) itself, over [-8, 8].
    let n = 64;
    let xs: Vec<f32> = (0..4 * n).map(|i| -8.0 + 16.0 * i as f32 / (4 * n) as f32).collect();
    let eye: Vec<f32> = (0..n * n).map(|i| if i / n == i % n { 1.0 } else { 0.0 }).collect();
    let gw = upload_matrix(&gpu, "eye", &StoredMatrix::F32(eye), n, n).unwrap();
    let (gx, gb, gy) = (input(&gpu, &xs), input(&gpu, &vec![0.0; n]), output(&gpu, xs.len()));
    let partial = output(&gpu, 4);
    let op = LinearOp {
        x: &gx,
        x_stride: n,
        rows: 4,
        weight: &gw,
        bias: &gb,
        out: &gy,
        partial: &partial,
        act: EpilogueOp::Gelu,
        shape: MatmulShape { tile: Tile::Large, splits: 1, k_chunk: 64 },
    };
    let got = run(&gpu, &gy, xs.len(), &[&kernels.linear(&op)]);
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
fn layer_norm_matches_the_reference_with_and_without_a_strided_residual() {
    let Some(gpu) = gpu() else { return };
    let kernels = Kernels::new(&gpu, 16, 8);
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    for &(rows, cols) in &[(1, 1), (1, 32), (5, 37), (70, 384), (3, 1000)] {
        for residual_every in [0, 1, 3] {
            let x = random(&mut rng, rows * cols, 3.0);
            let residual = random(&mut rng, rows * cols * residual_every.max(1), 1.0);
            let params = [random(&mut rng, cols, 1.5), random(&mut rng, cols, 0.5)].concat();
            let eps = 1e-12f32;
            let (gx, gr, gp, gy) =
                (input(&gpu, &x), input(&gpu, &residual), input(&gpu, &params), output(&gpu, rows * cols));
            let op = LayerNormOp {
                x: &gx,
                residual: (residual_every > 0).then_some(&gr),
                residual_stride: residual_every * cols,
                params: &gp,
                out: &gy,
                rows,
                cols,
                eps,
            };
            let got = run(&gpu, &gy, rows * cols, &[&kernels.layer_norm(&op)]);
            let want: Vec<f64> = (0..rows)
                .flat_map(|r| {
                    let v: Vec<f64> = (0..cols)
                        .map(|c| {
                            x[r * cols + c] as f64
                                + if residual_every > 0 { residual[r * residual_every * cols + c] as f64 } else { 0.0 }
                        })
                        .collect();
                    layer_norm_reference(&v, &params, eps as f64)
                })
                .collect();
            // A constant row (cols = 1) normalises to beta: the 1e-12 eps keeps it finite.
            assert_close(&format!("layer_norm {rows}x{cols} residual every {residual_every} rows"), &got, &want, 1e-4);
        }
    }
}

/// The inputs buffer as the backend lays it out: ids, types, mask, each region `region` u32 long.
fn inputs(gpu: &Gpu, ids: &[u32], types: &[u32], mask: &[u32], region: usize) -> wgpu::Buffer {
    let mut values = vec![0u32; 3 * region];
    for (part, v) in [ids, types, mask].iter().enumerate() {
        values[part * region..part * region + v.len()].copy_from_slice(v);
    }
    input_u32(gpu, &values)
}

#[test]
fn embeddings_and_their_norm_match_the_reference_for_int8_and_f32_tables() {
    let Some(gpu) = gpu() else { return };
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let (vocab, positions, types, texts, seq) = (50, 12, 2, 3, 7);
    for hidden in [40, 384] {
        let kernels = Kernels::new(&gpu, hidden, 8);
        for int8 in [false, true] {
            let rows = vocab + positions + types;
            // Each table quantized on its own, as the weights file stores them, then stacked.
            let parts: Vec<(StoredMatrix, Vec<f32>)> = [vocab, positions, types]
                .iter()
                .map(|&r| stored(&random(&mut rng, r * hidden, 1.0), r, hidden, int8))
                .collect();
            let dense: Vec<f32> = parts.iter().flat_map(|(_, d)| d.clone()).collect();
            let matrix = StoredMatrix::stack(parts.into_iter().map(|(m, _)| m).collect(), hidden).unwrap();
            let tables = upload_matrix(&gpu, "tables", &matrix, rows, hidden).unwrap();
            let params = [random(&mut rng, hidden, 1.5), random(&mut rng, hidden, 0.5)].concat();
            let tokens = texts * seq;
            let ids: Vec<u32> = (0..tokens).map(|_| rng.random_range(0..vocab as u32)).collect();
            let type_ids: Vec<u32> = (0..tokens).map(|_| rng.random_range(0..types as u32)).collect();
            let region = 64; // any region >= tokens: the kernel is told where the types start
            let (gin, gp, out) =
                (inputs(&gpu, &ids, &type_ids, &[], region), input(&gpu, &params), output(&gpu, tokens * hidden));
            let op = EmbedNormOp {
                inputs: &gin,
                types_offset: region,
                tables: &tables,
                rows: TableRows { position_row0: vocab, type_row0: vocab + positions },
                params: &gp,
                out: &out,
                tokens,
                seq,
                eps: 1e-12,
            };
            let got = run(&gpu, &out, tokens * hidden, &[&kernels.embed_norm(&op)]);
            let want: Vec<f64> = (0..tokens)
                .flat_map(|t| {
                    let v: Vec<f64> = (0..hidden)
                        .map(|c| {
                            dense[ids[t] as usize * hidden + c] as f64
                                + dense[(vocab + t % seq) * hidden + c] as f64
                                + dense[(vocab + positions + type_ids[t] as usize) * hidden + c] as f64
                        })
                        .collect();
                    layer_norm_reference(&v, &params, 1e-12)
                })
                .collect();
            assert_close(&format!("embeddings + norm hidden={hidden} int8={int8}"), &got, &want, 1e-4);
        }
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
fn attention_matches_the_reference_with_padding_and_empty_rows_for_every_query_or_cls_only() {
    let Some(gpu) = gpu() else { return };
    let mut rng = rand::rngs::StdRng::seed_from_u64(10);
    // Head sizes 4, 8, 16, 32 and 64; sequences shorter and longer than a query tile and a key chunk.
    for &(batch, seq, hidden, heads) in
        &[(1, 1, 8, 2), (1, 9, 32, 4), (3, 70, 48, 3), (4, 130, 64, 2), (5, 33, 384, 12), (2, 40, 128, 2)]
    {
        let kernels = Kernels::new(&gpu, hidden, hidden / heads);
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
        let region = (batch * seq).next_multiple_of(64);
        let (gq, gin, out) =
            (input(&gpu, &qkv), inputs(&gpu, &[], &[], &mask, region), output(&gpu, batch * seq * hidden));
        let want = attention_reference(&qkv, &mask, batch, seq, hidden, heads);
        for cls_only in [false, true] {
            let op = AttentionOp {
                qkv: &gq,
                inputs: &gin,
                mask_offset: 2 * region,
                out: &out,
                texts: batch,
                seq,
                hidden,
                heads,
                cls_only,
            };
            let what = format!("attention b={batch} s={seq} h={hidden} heads={heads} cls_only={cls_only}");
            if cls_only {
                let got = run(&gpu, &out, batch * hidden, &[&kernels.attention(&op)]);
                let cls: Vec<f64> = (0..batch).flat_map(|b| want[b * seq * hidden..][..hidden].to_vec()).collect();
                assert_close(&what, &got, &cls, 1e-5);
            } else {
                assert_close(&what, &run(&gpu, &out, batch * seq * hidden, &[&kernels.attention(&op)]), &want, 1e-5);
            }
        }
    }
}

#[test]
fn head_pools_and_classifies_each_texts_row() {
    let Some(gpu) = gpu() else { return };
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    for &(texts, hidden, labels, stride_rows) in &[(1, 8, 2, 1), (5, 40, 3, 4), (3, 384, 2, 1)] {
        let kernels = Kernels::new(&gpu, hidden, 8);
        for int8 in [false, true] {
            let x = random(&mut rng, texts * stride_rows * hidden, 2.0);
            let (matrix, dense) = stored(&random(&mut rng, hidden * hidden, 0.3), hidden, hidden, int8);
            let pooler = upload_matrix(&gpu, "pooler", &matrix, hidden, hidden).unwrap();
            let bias = random(&mut rng, hidden, 0.3);
            let head = random(&mut rng, labels * hidden + labels, 0.5);
            let (gx, gb, gh, out) =
                (input(&gpu, &x), input(&gpu, &bias), input(&gpu, &head), output(&gpu, texts * labels));
            let op = HeadOp {
                x: &gx,
                x_stride: stride_rows * hidden,
                pooler: &pooler,
                pooler_bias: &gb,
                head: &gh,
                out: &out,
                texts,
                labels,
            };
            let got = run(&gpu, &out, texts * labels, &[&kernels.head(&op)]);
            let want: Vec<f64> = (0..texts)
                .flat_map(|t| {
                    let row = &x[t * stride_rows * hidden..][..hidden];
                    let pooled: Vec<f64> = (0..hidden)
                        .map(|n| {
                            let dot: f64 = (0..hidden).map(|k| row[k] as f64 * dense[n * hidden + k] as f64).sum();
                            (dot + bias[n] as f64).tanh()
                        })
                        .collect();
                    (0..labels)
                        .map(|l| {
                            let dot: f64 = (0..hidden).map(|k| pooled[k] * head[l * hidden + k] as f64).sum();
                            dot + head[labels * hidden + l] as f64
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            assert_close(&format!("head texts={texts} hidden={hidden} int8={int8}"), &got, &want, 1e-5);
        }
    }
}

/// Dispatches of one pass read their own uniform slots: two LayerNorms in one pass (the second adds a
/// residual, so its block differs) equal the same kernels run one per pass.
#[test]
fn dispatches_in_one_pass_read_their_own_uniform_slots() {
    let Some(gpu) = gpu() else { return };
    let kernels = Kernels::new(&gpu, 16, 8);
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let (rows, cols, eps) = (7, 40, 1e-5f32);
    let (x, residual) = (random(&mut rng, rows * cols, 2.0), random(&mut rng, rows * cols, 2.0));
    let params = [random(&mut rng, cols, 1.5), random(&mut rng, cols, 0.5)].concat();
    let (gx, gr, gp) = (input(&gpu, &x), input(&gpu, &residual), input(&gpu, &params));
    let (first, second) = (output(&gpu, rows * cols), output(&gpu, rows * cols));
    let norm = |x, residual, out| LayerNormOp { x, residual, residual_stride: cols, params: &gp, out, rows, cols, eps };
    let (plain, with_residual) = (norm(&gx, None, &first), norm(&first, Some(&gr), &second));
    let separate_first = run(&gpu, &first, rows * cols, &[&kernels.layer_norm(&plain)]);
    let separate = run(&gpu, &second, rows * cols, &[&kernels.layer_norm(&with_residual)]);
    let together = run(&gpu, &second, rows * cols, &[&kernels.layer_norm(&plain), &kernels.layer_norm(&with_residual)]);
    assert_eq!(together, separate);
    assert_ne!(separate, separate_first, "the two blocks must differ for the test to mean anything");
}

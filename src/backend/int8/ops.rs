//! The f32 parts of the int8 engine's pass: embeddings, LayerNorm, activations and attention. Loops are
//! written over slices so they vectorise (`simd128` in the browser), with the branch-free math of
//! [`crate::math`].

use crate::config::HiddenAct;
use crate::math;
use crate::weights::quant::BLOCK;

/// A dequantized lookup: `out = q[row] * scale` for one row of an int8 table (`stride` bytes per row).
#[inline]
pub fn add_table_row(values: &[i8], scales: &[f32], stride: usize, row: usize, out: &mut [f32]) {
    let q = &values[row * stride..][..out.len()];
    let s = &scales[row * stride / BLOCK..];
    for (block, (out, q)) in out.chunks_mut(BLOCK).zip(q.chunks(BLOCK)).enumerate() {
        let scale = s[block];
        for (o, &q) in out.iter_mut().zip(q) {
            *o += q as f32 * scale;
        }
    }
}

/// LayerNorm of one row in place (biased variance, as PyTorch).
#[inline]
pub fn layer_norm(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = math::sum(row) / n;
    let var = math::sum_squares_about(row, mean) / n;
    let rstd = 1.0 / (var + eps).sqrt();
    for ((x, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *x = (*x - mean) * rstd * g + b;
    }
}

/// The feed-forward activation, in place.
pub fn activate(act: HiddenAct, row: &mut [f32]) {
    match act {
        HiddenAct::Gelu => row.iter_mut().for_each(|x| *x = math::gelu(*x)),
        HiddenAct::GeluNew => row.iter_mut().for_each(|x| *x = math::gelu_tanh(*x)),
        HiddenAct::Relu => row.iter_mut().for_each(|x| *x = x.max(0.0)),
    }
}

pub fn tanh(row: &mut [f32]) {
    row.iter_mut().for_each(|x| *x = math::tanh(*x));
}

/// Reusable buffers of [`attention`].
#[derive(Debug, Default)]
pub struct AttentionScratch {
    keys_t: Vec<f32>,
    scores: Vec<f32>,
}

/// Multi-head self-attention of one text: its `len` tokens' rows of the Q/K/V projection are `qkv`
/// (`[len, 3 * hidden]`: q, k and v side by side, heads side by side in each). For the query tokens
/// `queries`, the context rows (heads side by side) go to `out` (`[queries.len(), hidden]`). Every token is
/// real (no padding), so there is no mask.
pub fn attention(qkv: &[f32], hidden: usize, heads: usize, queries: std::ops::Range<usize>, scratch: &mut AttentionScratch, out: &mut [f32]) {
    let d = hidden / heads;
    let ld = 3 * hidden;
    let len = qkv.len() / ld;
    let scale = 1.0 / (d as f32).sqrt();
    scratch.keys_t.resize(d * len, 0.0);
    scratch.scores.resize(len, 0.0);
    for h in 0..heads {
        // K transposed ([d][len]): the scores of a query are then d passes over contiguous memory.
        for (j, row) in qkv.chunks_exact(ld).enumerate() {
            for (dd, &k) in row[hidden + h * d..][..d].iter().enumerate() {
                scratch.keys_t[dd * len + j] = k;
            }
        }
        for (i, out) in queries.clone().zip(out.chunks_exact_mut(hidden)) {
            let q = &qkv[i * ld + h * d..][..d];
            let scores = &mut scratch.scores[..len];
            scores.fill(0.0);
            for (dd, &qv) in q.iter().enumerate() {
                let qv = qv * scale;
                for (s, &k) in scores.iter_mut().zip(&scratch.keys_t[dd * len..][..len]) {
                    *s += qv * k;
                }
            }
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            for s in scores.iter_mut() {
                *s = math::exp(*s - max);
            }
            let inv = 1.0 / math::sum(scores);
            let context = &mut out[h * d..][..d];
            context.fill(0.0);
            for (row, &p) in qkv.chunks_exact(ld).zip(scores.iter()) {
                let p = p * inv;
                for (c, &v) in context.iter_mut().zip(&row[2 * hidden + h * d..][..d]) {
                    *c += p * v;
                }
            }
        }
    }
}

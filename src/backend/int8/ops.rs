//! The f32 parts of the int8 engine's pass: embeddings, LayerNorm, activations and attention. Loops are
//! written over slices so they vectorise (`simd128` in the browser), with the branch-free math of
//! [`crate::math`].

use crate::config::HiddenAct;
use crate::math;

/// A dequantized lookup: `out += q[row] * scale` for one row of an int8 table (`stride` bytes per row, in
/// blocks of `block` values).
#[inline]
pub fn add_table_row(values: &[i8], scales: &[f32], stride: usize, block: usize, row: usize, out: &mut [f32]) {
    let q = &values[row * stride..][..out.len()];
    let s = &scales[row * stride / block..];
    for (b, (out, q)) in out.chunks_mut(block).zip(q.chunks(block)).enumerate() {
        let scale = s[b];
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
        HiddenAct::Gelu => math::gelu_in_place(row),
        HiddenAct::GeluNew => row.iter_mut().for_each(|x| *x = math::gelu_tanh(*x)),
        HiddenAct::Relu => row.iter_mut().for_each(|x| *x = math::max(*x, 0.0)),
    }
}

pub fn tanh(row: &mut [f32]) {
    row.iter_mut().for_each(|x| *x = math::tanh(*x));
}

/// Keys whose scores one register block of [`attention`] computes, and context values one block
/// accumulates: 16 f32 are four `simd128` vectors (two AVX ones), kept in registers across the loop over
/// the head's dimensions (a loop that read and wrote a row of scores in memory per dimension was bound by
/// loads and stores, not arithmetic).
const BLOCK_LANES: usize = 16;
/// Queries [`attention`] computes side by side: each key and value vector loaded serves both, and their
/// sums are independent chains of additions (one query's four vectors of sums kept the adder waiting on
/// its own latency).
const QUERIES_AT_ONCE: usize = 2;

/// Reusable buffers of [`attention`].
#[derive(Debug, Default)]
pub struct AttentionScratch {
    /// One head's keys transposed, `[d][keys]`, keys padded with zeros to whole [`BLOCK_LANES`].
    keys_t: Vec<f32>,
    /// `[QUERIES_AT_ONCE][keys]`.
    scores: Vec<f32>,
}

/// Multi-head self-attention of one text: its `len` tokens' rows of the Q/K/V projection are `qkv`
/// (`[len, 3 * hidden]`: q, k and v side by side, heads side by side in each). For the query tokens
/// `queries`, the context rows (heads side by side) go to `out` (`[queries.len(), hidden]`). Every token is
/// real (no padding), so there is no mask.
///
/// Each score is `sum over the head's dimensions, in order, of (q * scale) * k`, the softmax is
/// `exp(s - max) * (1 / sum)`, and each context value `sum over keys, in order, of p * v`: the order of a
/// plain loop ([`tests::attention_in_plain_loops`] checks the bits), computed in register blocks for
/// [`QUERIES_AT_ONCE`] queries at a time.
pub fn attention(
    qkv: &[f32],
    hidden: usize,
    heads: usize,
    queries: std::ops::Range<usize>,
    scratch: &mut AttentionScratch,
    out: &mut [f32],
) {
    let d = hidden / heads;
    let ld = 3 * hidden;
    let len = qkv.len() / ld;
    let keys = len.next_multiple_of(BLOCK_LANES);
    let scale = 1.0 / (d as f32).sqrt();
    scratch.keys_t.clear();
    scratch.keys_t.resize(d * keys, 0.0);
    scratch.scores.resize(QUERIES_AT_ONCE * keys, 0.0);
    for h in 0..heads {
        // K transposed: the scores of a query are then d passes over contiguous memory.
        for (j, row) in qkv.chunks_exact(ld).enumerate() {
            for (dd, &k) in row[hidden + h * d..][..d].iter().enumerate() {
                scratch.keys_t[dd * keys + j] = k;
            }
        }
        let head = Head { qkv, ld, hidden, d, h, len, keys, keys_t: &scratch.keys_t, scale };
        let mut first = queries.start;
        while first < queries.end {
            let out = &mut out[(first - queries.start) * hidden..];
            if first + QUERIES_AT_ONCE <= queries.end {
                head.attend::<QUERIES_AT_ONCE>(first, &mut scratch.scores, out);
                first += QUERIES_AT_ONCE;
            } else {
                head.attend::<1>(first, &mut scratch.scores, out);
                first += 1;
            }
        }
    }
}

/// One head of one text, its keys transposed.
struct Head<'a> {
    qkv: &'a [f32],
    ld: usize,
    hidden: usize,
    d: usize,
    h: usize,
    len: usize,
    /// `len` padded to whole [`BLOCK_LANES`].
    keys: usize,
    keys_t: &'a [f32],
    /// `1 / sqrt(d)`, applied to each query value.
    scale: f32,
}

impl Head<'_> {
    /// The context rows of queries `first..first + Q` (into `out`, rows `hidden` apart, this head's columns).
    #[inline(always)]
    fn attend<const Q: usize>(&self, first: usize, scores: &mut [f32], out: &mut [f32]) {
        let (d, keys, scale) = (self.d, self.keys, self.scale);
        let q: [&[f32]; Q] = std::array::from_fn(|i| &self.qkv[(first + i) * self.ld + self.h * d..][..d]);
        for block in 0..keys / BLOCK_LANES {
            let mut acc = [[0f32; BLOCK_LANES]; Q];
            for dd in 0..d {
                let k = &self.keys_t[dd * keys + block * BLOCK_LANES..][..BLOCK_LANES];
                for (acc, q) in acc.iter_mut().zip(q) {
                    let qv = q[dd] * scale;
                    for (a, &k) in acc.iter_mut().zip(k) {
                        *a += qv * k;
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                scores[i * keys + block * BLOCK_LANES..][..BLOCK_LANES].copy_from_slice(acc);
            }
        }
        let mut inv = [0f32; Q];
        for (i, inv) in inv.iter_mut().enumerate() {
            let scores = &mut scores[i * keys..][..self.len];
            math::exp_shifted_in_place(scores, math::max_of(scores));
            *inv = 1.0 / math::sum(scores);
        }
        let probs: [&[f32]; Q] = std::array::from_fn(|i| &scores[i * keys..][..self.len]);
        let values = 2 * self.hidden + self.h * d;
        let mut column = 0;
        while column + BLOCK_LANES <= d {
            // Local arrays of a known length: their sums stay in registers.
            let mut acc = [[0f32; BLOCK_LANES]; Q];
            for (j, row) in self.qkv.chunks_exact(self.ld).enumerate() {
                let v = &row[values + column..][..BLOCK_LANES];
                for ((acc, p), inv) in acc.iter_mut().zip(&probs).zip(&inv) {
                    let p = p[j] * inv;
                    for (a, &v) in acc.iter_mut().zip(v) {
                        *a += p * v;
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                out[i * self.hidden + self.h * d + column..][..BLOCK_LANES].copy_from_slice(acc);
            }
            column += BLOCK_LANES;
        }
        if column < d {
            for (i, (p, inv)) in probs.iter().zip(inv).enumerate() {
                let tail = &mut out[i * self.hidden + self.h * d + column..][..d - column];
                weighted_values(self.qkv, self.ld, values + column, p, inv, tail);
            }
        }
    }
}

/// `out[c] = sum over rows j, in order, of (scores[j] * inv) * qkv[j * ld + first + c]`.
#[inline(always)]
fn weighted_values(qkv: &[f32], ld: usize, first: usize, scores: &[f32], inv: f32, out: &mut [f32]) {
    out.fill(0.0);
    let n = out.len();
    for (row, &p) in qkv.chunks_exact(ld).zip(scores) {
        let p = p * inv;
        for (a, &v) in out.iter_mut().zip(&row[first..first + n]) {
            *a += p * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attention as three plain loops per query (the engine's first version): the order of operations
    /// [`attention`] keeps.
    fn attention_in_plain_loops(qkv: &[f32], hidden: usize, heads: usize, queries: std::ops::Range<usize>) -> Vec<f32> {
        let (d, ld) = (hidden / heads, 3 * hidden);
        let len = qkv.len() / ld;
        let scale = 1.0 / (d as f32).sqrt();
        let mut out = vec![0f32; queries.len() * hidden];
        for h in 0..heads {
            for (i, out) in queries.clone().zip(out.chunks_exact_mut(hidden)) {
                let mut scores = vec![0f32; len];
                for (j, s) in scores.iter_mut().enumerate() {
                    for dd in 0..d {
                        *s += qkv[i * ld + h * d + dd] * scale * qkv[j * ld + hidden + h * d + dd];
                    }
                }
                let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                scores.iter_mut().for_each(|s| *s = math::exp(*s - max));
                let inv = 1.0 / math::sum(&scores);
                for (j, &p) in scores.iter().enumerate() {
                    for dd in 0..d {
                        out[h * d + dd] += p * inv * qkv[j * ld + 2 * hidden + h * d + dd];
                    }
                }
            }
        }
        out
    }

    #[test]
    fn attention_in_blocks_keeps_the_bits_of_plain_loops() {
        let mut scratch = AttentionScratch::default();
        // Head widths of 32 (MiniLM), 64 (BERT-base) and 24 (not a whole block); lengths around the block.
        for (hidden, heads) in [(64, 2), (128, 2), (48, 2)] {
            for len in [1, 2, 15, 16, 17, 33, 40] {
                let qkv: Vec<f32> =
                    (0..len * 3 * hidden).map(|i| ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * 3.0).collect();
                for queries in [0..len, 0..1] {
                    let mut out = vec![f32::NAN; queries.len() * hidden];
                    attention(&qkv, hidden, heads, queries.clone(), &mut scratch, &mut out);
                    let want = attention_in_plain_loops(&qkv, hidden, heads, queries.clone());
                    let same = out.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "hidden {hidden}, heads {heads}, len {len}, queries {queries:?}");
                }
            }
        }
    }
}

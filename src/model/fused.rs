//! Fused CPU kernels for [`super::Mode::Train`], each a candle custom op with its own backward pass:
//! LayerNorm, multi-head attention (scores, padding mask, softmax, dropout and the weighted sum of values
//! in one op), bias + GELU, and dropout. Composed of candle's primitives, each of these is five to
//! fifteen graph nodes, every one allocating its output and, in backward, a zeroed gradient buffer; on
//! a 2-core CPU that overhead, not the matrix multiplies, dominated a training step.
//!
//! The math is HF's (`modeling_bert.py`), as the composed version in [`super`] computes it; the tests
//! below check values and gradients against that composed version. f32 on the CPU only: other devices
//! and dtypes take the composed path ([`applies`]). Dropout masks ([`DropoutMask`]) are regenerated in
//! backward from their seed instead of being stored.

use std::sync::{Arc, Mutex};

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};
use gemm::Parallelism;
use multiversion::multiversion;
use rayon::prelude::*;

use super::DropoutMask;
use crate::math;

/// Whether `xs` runs through these kernels: f32 on the CPU.
pub fn applies(xs: &Tensor) -> bool {
    xs.device().is_cpu() && xs.dtype() == DType::F32
}

/// The contiguous f32 values a storage and layout describe.
fn values<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("fused kernels need contiguous inputs"),
    }
}

/// Runs `f` on a tensor's contiguous f32 values (copying only when it is strided).
fn with_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        candle_core::Storage::Cpu(cpu) => f(values(cpu, layout)?),
        _ => bail!("fused kernels run on the CPU"),
    }
}

fn tensor(values: Vec<f32>, shape: &Shape, like: &Tensor) -> Result<Tensor> {
    Tensor::from_vec(values, shape, like.device())
}

/// Rows per parallel task: enough work per task to amortise scheduling.
fn rows_per_task(row_len: usize) -> usize {
    (16_384 / row_len.max(1)).max(1)
}

/// Column sums of `rows x n` values computed per task and added up: `(sum of a, sum of b)`.
fn column_sums(n: usize, rows: usize, per_row: impl Fn(usize, &mut [f32], &mut [f32]) + Sync) -> (Vec<f32>, Vec<f32>) {
    let chunk = rows_per_task(n);
    (0..rows.div_ceil(chunk))
        .into_par_iter()
        .map(|task| {
            let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
            for row in task * chunk..((task + 1) * chunk).min(rows) {
                per_row(row, &mut a, &mut b);
            }
            (a, b)
        })
        .reduce(
            || (vec![0f32; n], vec![0f32; n]),
            |(mut a, mut b), (c, d)| {
                a.iter_mut().zip(&c).for_each(|(x, y)| *x += y);
                b.iter_mut().zip(&d).for_each(|(x, y)| *x += y);
                (a, b)
            },
        )
}

// ---------------------------------------------------------------------------------------------------
// Dropout

struct Dropout(DropoutMask);

impl CustomOp1 for Dropout {
    fn name(&self) -> &'static str {
        "fused-dropout"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let mut out = values(storage, layout)?.to_vec();
        let chunk = 16_384;
        out.par_chunks_mut(chunk).enumerate().for_each(|(i, part)| self.0.apply(part, i * chunk));
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        grad.apply_op1(Dropout(self.0)).map(Some)
    }
}

/// `xs` with each value zeroed with probability `mask.p` and the rest scaled by `1 / (1 - p)`.
pub fn dropout(xs: &Tensor, mask: DropoutMask) -> Result<Tensor> {
    xs.contiguous()?.apply_op1(Dropout(mask))
}

// ---------------------------------------------------------------------------------------------------
// LayerNorm, alone and as the epilogue of a dense layer
//
// The row loops are multiversioned: x86-64 builds target SSE2, and these also compile for AVX2, chosen
// at run time, where their loops run 8 lanes wide. No fused multiply-add is formed without an explicit
// `mul_add`, so both copies give the same bits.

/// Mean and 1 / standard deviation of a row (biased variance, as PyTorch).
#[inline(always)]
fn moments(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = math::sum(row) / n;
    let var = math::sum_squares_about(row, mean) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

/// `y = (x - mean) / std * gamma + beta` for one row.
#[inline(always)]
fn norm_row(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, y: &mut [f32]) {
    let (mean, rstd) = moments(x, eps);
    for (((y, x), g), b) in y.iter_mut().zip(x).zip(gamma).zip(beta) {
        *y = (x - mean) * rstd * g + b;
    }
}

/// The gradient of [`norm_row`] with respect to `x`, from `dy`; adds this row's share of the gamma and
/// beta gradients.
#[inline(always)]
fn norm_row_grad(
    x: &[f32],
    gamma: &[f32],
    dy: &[f32],
    eps: f32,
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let (mean, rstd) = moments(x, eps);
    // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * gamma.
    let (mut sum, mut dot) = (0f32, 0f32);
    for ((dy, g), x) in dy.iter().zip(gamma).zip(x) {
        let dxhat = dy * g;
        sum += dxhat;
        dot += dxhat * (x - mean) * rstd;
    }
    let n = x.len() as f32;
    let (sum, dot) = (sum / n, dot / n);
    for (((((dx, dy), g), x), dg), db) in
        dx.iter_mut().zip(dy).zip(gamma).zip(x).zip(dgamma.iter_mut()).zip(dbeta.iter_mut())
    {
        let xhat = (x - mean) * rstd;
        *dx = rstd * (dy * g - sum - xhat * dot);
        *dg += dy * xhat;
        *db += dy;
    }
}

/// [`norm_row`] over consecutive rows of `x` into `y`.
#[multiversion(targets("x86_64+avx2+fma"))]
fn norm_rows(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, y: &mut [f32]) {
    let n = gamma.len();
    for (y, x) in y.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
        norm_row(x, gamma, beta, eps, y);
    }
}

/// [`norm_row_grad`] over consecutive rows.
#[multiversion(targets("x86_64+avx2+fma"))]
fn norm_grad_rows(
    x: &[f32],
    gamma: &[f32],
    dy: &[f32],
    eps: f32,
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let n = gamma.len();
    for ((dx, x), dy) in dx.chunks_exact_mut(n).zip(x.chunks_exact(n)).zip(dy.chunks_exact(n)) {
        norm_row_grad(x, gamma, dy, eps, dx, dgamma, dbeta);
    }
}

/// Runs `per_task(first_row, dx, dgamma, dbeta)` over `rows` rows of `n` values in parallel tasks, each
/// task given its rows of `dx` and its own gamma/beta gradient accumulators, and returns `(dx, dgamma,
/// dbeta)`.
fn norm_backward(
    rows: usize,
    n: usize,
    per_task: impl Fn(usize, &mut [f32], &mut [f32], &mut [f32]) + Sync,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let per_task_rows = rows_per_task(n);
    let mut dx = vec![0f32; rows * n];
    let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(n * per_task_rows)
        .enumerate()
        .map(|(task, dx)| {
            let (mut dgamma, mut dbeta) = (vec![0f32; n], vec![0f32; n]);
            per_task(task * per_task_rows, dx, &mut dgamma, &mut dbeta);
            (dgamma, dbeta)
        })
        .collect();
    let (mut dgamma, mut dbeta) = (vec![0f32; n], vec![0f32; n]);
    for (g, b) in partials {
        dgamma.iter_mut().zip(&g).for_each(|(x, y)| *x += y);
        dbeta.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
    }
    (dx, dgamma, dbeta)
}

struct LayerNorm {
    eps: f32,
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        g: &CpuStorage,
        gl: &Layout,
        b: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, gamma, beta) = (values(x, xl)?, values(g, gl)?, values(b, bl)?);
        let n = gamma.len();
        let mut out = vec![0f32; x.len()];
        let chunk = n * rows_per_task(n);
        out.par_chunks_mut(chunk)
            .zip(x.par_chunks(chunk))
            .for_each(|(out, x)| norm_rows(x, gamma, beta, self.eps, out));
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let n = gamma.elem_count();
        let (dx, dgamma, dbeta) = with_values(x, |xv| {
            with_values(gamma, |g| {
                with_values(grad, |dy| {
                    Ok(norm_backward(xv.len() / n, n, |first, dx, dgamma, dbeta| {
                        let cells = first * n..first * n + dx.len();
                        norm_grad_rows(&xv[cells.clone()], g, &dy[cells], self.eps, dx, dgamma, dbeta);
                    }))
                })
            })
        })?;
        Ok((
            Some(tensor(dx, x.shape(), x)?),
            Some(tensor(dgamma, gamma.shape(), x)?),
            Some(tensor(dbeta, gamma.shape(), x)?),
        ))
    }
}

/// LayerNorm over the last dimension of `xs` (biased variance, as PyTorch).
pub fn layer_norm(xs: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    xs.contiguous()?.apply_op3(gamma, beta, LayerNorm { eps: eps as f32 })
}

/// The epilogue of BERT's attention-output and output blocks: `LayerNorm(dropout(x + bias) + residual)`,
/// with `params` = `[bias; gamma; beta]` (`[3, n]`).
struct DenseResidualNorm {
    eps: f32,
    dropout: Option<DropoutMask>,
}

/// `dropout(x + bias) + residual` for row `row` (of the whole tensor, which the mask indexes) into `z`.
#[inline(always)]
fn norm_input(row: usize, x: &[f32], bias: &[f32], residual: &[f32], dropout: Option<&DropoutMask>, z: &mut [f32]) {
    for ((z, x), b) in z.iter_mut().zip(x).zip(bias) {
        *z = x + b;
    }
    if let Some(mask) = dropout {
        mask.apply(z, row * x.len());
    }
    z.iter_mut().zip(residual).for_each(|(z, r)| *z += r);
}

/// The forward rows of [`DenseResidualNorm`], from row `first` on: `x`, `residual` and `y` hold the
/// same rows; `params` is `[bias; gamma; beta]`.
#[multiversion(targets("x86_64+avx2+fma"))]
fn dense_residual_norm_rows(
    first: usize,
    x: &[f32],
    residual: &[f32],
    params: &[f32],
    eps: f32,
    dropout: Option<&DropoutMask>,
    y: &mut [f32],
) {
    let n = params.len() / 3;
    let (bias, gamma, beta) = (&params[..n], &params[n..2 * n], &params[2 * n..]);
    let mut z = vec![0f32; n];
    let rows = y.chunks_exact_mut(n).zip(x.chunks_exact(n)).zip(residual.chunks_exact(n));
    for (i, ((y, x), residual)) in rows.enumerate() {
        norm_input(first + i, x, bias, residual, dropout, &mut z);
        norm_row(&z, gamma, beta, eps, y);
    }
}

/// The gradient rows of [`DenseResidualNorm`] with respect to the norm's input `z`, from row `first` on
/// (arguments as [`dense_residual_norm_rows`], `dy` the output's gradient).
#[allow(clippy::too_many_arguments)]
#[multiversion(targets("x86_64+avx2+fma"))]
fn dense_residual_norm_grad_rows(
    first: usize,
    x: &[f32],
    residual: &[f32],
    params: &[f32],
    dy: &[f32],
    eps: f32,
    dropout: Option<&DropoutMask>,
    dz: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let n = params.len() / 3;
    let (bias, gamma) = (&params[..n], &params[n..2 * n]);
    let mut z = vec![0f32; n];
    let rows = dz.chunks_exact_mut(n).zip(x.chunks_exact(n)).zip(residual.chunks_exact(n)).zip(dy.chunks_exact(n));
    for (i, (((dz, x), residual), dy)) in rows.enumerate() {
        norm_input(first + i, x, bias, residual, dropout, &mut z);
        norm_row_grad(&z, gamma, dy, eps, dz, dgamma, dbeta);
    }
}

impl CustomOp3 for DenseResidualNorm {
    fn name(&self) -> &'static str {
        "fused-dense-residual-norm"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        r: &CpuStorage,
        rl: &Layout,
        p: &CpuStorage,
        pl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, residual, params) = (values(x, xl)?, values(r, rl)?, values(p, pl)?);
        let n = params.len() / 3;
        let per_task = rows_per_task(n);
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(n * per_task).enumerate().for_each(|(task, out)| {
            let first = task * per_task;
            let cells = first * n..first * n + out.len();
            let (x, residual) = (&x[cells.clone()], &residual[cells]);
            dense_residual_norm_rows(first, x, residual, params, self.eps, self.dropout.as_ref(), out);
        });
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        residual: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let n = params.elem_count() / 3;
        let (dz, dgamma, dbeta) = with_values(x, |xv| {
            with_values(residual, |rv| {
                with_values(params, |pv| {
                    with_values(grad, |dy| {
                        Ok(norm_backward(xv.len() / n, n, |first, dz, dgamma, dbeta| {
                            let cells = first * n..first * n + dz.len();
                            let (x, r, dy) = (&xv[cells.clone()], &rv[cells.clone()], &dy[cells]);
                            let dropout = self.dropout.as_ref();
                            dense_residual_norm_grad_rows(first, x, r, pv, dy, self.eps, dropout, dz, dgamma, dbeta);
                        }))
                    })
                })
            })
        })?;
        // dz flows to the residual as is, and to x (and the bias) through the dropout mask.
        let mut dx = dz.clone();
        if let Some(mask) = &self.dropout {
            let chunk = n * rows_per_task(n);
            dx.par_chunks_mut(chunk).enumerate().for_each(|(i, part)| mask.apply(part, i * chunk));
        }
        let (dbias, _) = column_sums(n, dx.len() / n, |row, sum, _| {
            sum.iter_mut().zip(&dx[row * n..(row + 1) * n]).for_each(|(s, d)| *s += d)
        });
        let dparams = [dbias, dgamma, dbeta].concat();
        Ok((
            Some(tensor(dx, x.shape(), x)?),
            Some(tensor(dz, x.shape(), x)?),
            Some(tensor(dparams, params.shape(), x)?),
        ))
    }
}

/// `LayerNorm(dropout(x + bias) + residual)` over rows of `x` and `residual` (same shape, last dimension
/// `n`), the end of BERT's attention-output and output blocks; `x` is the dense layer's product without
/// its bias.
pub fn dense_residual_norm(
    x: &Tensor,
    bias: &Tensor,
    residual: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    dropout: Option<DropoutMask>,
) -> Result<Tensor> {
    let params = Tensor::cat(&[bias, gamma, beta], 0)?;
    x.contiguous()?.apply_op3(&residual.contiguous()?, &params, DenseResidualNorm { eps: eps as f32, dropout })
}

// ---------------------------------------------------------------------------------------------------
// Bias + GELU

/// `y = gelu(x + bias)` over consecutive rows.
#[multiversion(targets("x86_64+avx2+fma"))]
fn bias_gelu_rows(x: &[f32], bias: &[f32], y: &mut [f32]) {
    for (y, x) in y.chunks_exact_mut(bias.len()).zip(x.chunks_exact(bias.len())) {
        for ((y, x), b) in y.iter_mut().zip(x).zip(bias) {
            *y = math::gelu(x + b);
        }
    }
}

/// `dx = dy * gelu'(x + bias)` over consecutive rows.
#[multiversion(targets("x86_64+avx2+fma"))]
fn bias_gelu_grad_rows(x: &[f32], bias: &[f32], dy: &[f32], dx: &mut [f32]) {
    let n = bias.len();
    for ((dx, x), dy) in dx.chunks_exact_mut(n).zip(x.chunks_exact(n)).zip(dy.chunks_exact(n)) {
        for (((d, x), dy), b) in dx.iter_mut().zip(x).zip(dy).zip(bias) {
            *d = dy * math::gelu_grad(x + b);
        }
    }
}

struct BiasGelu;

impl CustomOp2 for BiasGelu {
    fn name(&self) -> &'static str {
        "fused-bias-gelu"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout, b: &CpuStorage, bl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, bias) = (values(x, xl)?, values(b, bl)?);
        let chunk = bias.len() * rows_per_task(bias.len());
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(chunk).zip(x.par_chunks(chunk)).for_each(|(out, x)| bias_gelu_rows(x, bias, out));
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, bias: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let n = bias.elem_count();
        let dx = with_values(x, |xv| {
            with_values(bias, |b| {
                with_values(grad, |dy| {
                    let mut dx = vec![0f32; xv.len()];
                    let chunk = n * rows_per_task(n);
                    dx.par_chunks_mut(chunk)
                        .zip(xv.par_chunks(chunk).zip(dy.par_chunks(chunk)))
                        .for_each(|(dx, (x, dy))| bias_gelu_grad_rows(x, b, dy, dx));
                    Ok(dx)
                })
            })
        })?;
        let rows = dx.len() / n;
        let (dbias, _) = column_sums(n, rows, |row, sum, _| {
            sum.iter_mut().zip(&dx[row * n..(row + 1) * n]).for_each(|(s, d)| *s += d)
        });
        Ok((Some(tensor(dx, x.shape(), x)?), Some(tensor(dbias, bias.shape(), x)?)))
    }
}

/// `gelu(xs + bias)` (exact GELU) with `bias` broadcast over the rows of `xs`.
pub fn bias_gelu(xs: &Tensor, bias: &Tensor) -> Result<Tensor> {
    xs.contiguous()?.apply_op2(bias, BiasGelu)
}

// ---------------------------------------------------------------------------------------------------
// Attention

/// `dst (m x n) = beta * lhs (m x k) . rhs (k x n)`, every matrix given by a pointer and (row, column)
/// strides, single-threaded (callers parallelise over heads).
///
/// # Safety
/// The pointers and strides must describe matrices inside live allocations, `dst` not overlapping the
/// others.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    lhs: *const f32,
    lhs_rs: usize,
    lhs_cs: usize,
    rhs: *const f32,
    rhs_rs: usize,
    rhs_cs: usize,
    beta: f32,
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        false,
        lhs,
        lhs_cs as isize,
        lhs_rs as isize,
        rhs,
        rhs_cs as isize,
        rhs_rs as isize,
        0.0,
        beta,
        false,
        false,
        false,
        Parallelism::None,
    );
}

/// A raw pointer that parallel tasks share; each task writes a disjoint region.
#[derive(Clone, Copy)]
struct Shared(*mut f32);
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// The pointer `offset` elements further.
    ///
    /// # Safety
    /// As [`pointer::add`]: the result must stay inside the allocation.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        self.0.add(offset)
    }
}

/// Probabilities of one (text, head) in place: `softmax` of each row of `scores` (`[queries, keys]`)
/// over the keys whose `keep` is 1.
#[multiversion(targets("x86_64+avx2+fma"))]
fn softmax_rows(scores: &mut [f32], keep: &[f32]) {
    for row in scores.chunks_exact_mut(keep.len()) {
        row.iter_mut().zip(keep).for_each(|(x, &k)| *x = if k != 0.0 { *x } else { f32::NEG_INFINITY });
        let max = math::max_of(row);
        // A masked key's exp is of -inf, clamped to a tiny number, times 0: exactly 0.
        row.iter_mut().zip(keep).for_each(|(x, k)| *x = math::exp(*x - max) * k);
        let inv = 1.0 / math::sum(row);
        row.iter_mut().for_each(|x| *x *= inv);
    }
}

/// What the attention kernel keeps from forward for backward: the Q/K/V projection with its bias added
/// and the softmax output (`[batch, heads, seq, seq]`).
type AttentionSaved = Arc<(Vec<f32>, Vec<f32>)>;

/// Self-attention of `heads` heads over the rows of the fused Q/K/V projection (`[batch * seq, 3 *
/// hidden]`: each row is q, k and v side by side, heads side by side in each), keys masked where `mask`
/// (`[batch, seq]`) is 0, attention probabilities dropped out by `dropout`.
struct Attention {
    batch: usize,
    seq: usize,
    heads: usize,
    /// Per key of each text (`[batch, seq]`): 1 where it is attended, 0 where it is padding. HF adds the
    /// dtype's minimum to masked scores: they get probability 0, unless every key of the text is masked,
    /// when all get the same; so a text without a token attends to every key.
    keep: Vec<f32>,
    dropout: Option<DropoutMask>,
    saved: Mutex<Option<AttentionSaved>>,
}

impl Attention {
    #[inline(always)]
    fn drop_probs(&self, b: usize, h: usize, probs: &mut [f32]) {
        if let Some(mask) = &self.dropout {
            mask.apply(probs, (b * self.heads + h) * self.seq * self.seq);
        }
    }

    fn cache_poisoned() -> candle_core::Error {
        candle_core::Error::Msg("the attention cache is poisoned".into())
    }
}

/// Offsets of head `h` of text `b` in a Q/K/V row block: `(q, k, v)`.
fn head_offsets(b: usize, h: usize, seq: usize, hidden: usize, head_dim: usize) -> (usize, usize, usize) {
    let q = b * seq * 3 * hidden + h * head_dim;
    (q, q + hidden, q + 2 * hidden)
}

impl CustomOp2 for Attention {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(&self, qkv: &CpuStorage, ql: &Layout, bias: &CpuStorage, bl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (product, bias) = (values(qkv, ql)?, values(bias, bl)?);
        let (s, heads, hidden) = (self.seq, self.heads, bias.len() / 3);
        let d = hidden / heads;
        let scale = 1.0 / (d as f32).sqrt();
        let mut qkv = product.to_vec();
        qkv.par_chunks_mut(3 * hidden * rows_per_task(3 * hidden)).for_each(|rows| {
            rows.chunks_exact_mut(3 * hidden).for_each(|row| row.iter_mut().zip(bias).for_each(|(x, b)| *x += b));
        });
        let mut out = vec![0f32; self.batch * s * hidden];
        let mut probs = vec![0f32; self.batch * heads * s * s];
        out.par_chunks_mut(s * hidden).zip(probs.par_chunks_mut(heads * s * s)).enumerate().for_each(
            |(b, (out, probs))| {
                let mut dropped = vec![0f32; s * s];
                for (h, p) in probs.chunks_exact_mut(s * s).enumerate() {
                    let (q, k, v) = head_offsets(b, h, s, hidden, d);
                    // SAFETY: every matrix lies inside text b's rows of qkv; out is this task's block.
                    unsafe {
                        matmul(
                            s,
                            s,
                            d,
                            p.as_mut_ptr(),
                            s,
                            qkv[q..].as_ptr(),
                            3 * hidden,
                            1,
                            qkv[k..].as_ptr(),
                            1,
                            3 * hidden,
                            scale,
                        );
                    }
                    softmax_rows(p, &self.keep[b * s..(b + 1) * s]);
                    dropped.copy_from_slice(p);
                    self.drop_probs(b, h, &mut dropped);
                    unsafe {
                        matmul(
                            s,
                            d,
                            s,
                            out[h * d..].as_mut_ptr(),
                            hidden,
                            dropped.as_ptr(),
                            s,
                            1,
                            qkv[v..].as_ptr(),
                            3 * hidden,
                            1,
                            1.0,
                        );
                    }
                }
            },
        );
        *self.saved.lock().map_err(|_| Self::cache_poisoned())? = Some(Arc::new((qkv, probs)));
        Ok((CpuStorage::F32(out), Shape::from((self.batch * s, hidden))))
    }

    fn bwd(
        &self,
        product: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let saved = self.saved.lock().map_err(|_| Self::cache_poisoned())?.clone();
        let Some(saved) = saved else { bail!("attention backward without its forward pass") };
        let (qkv, probs) = (&saved.0, &saved.1);
        let (s, heads, hidden) = (self.seq, self.heads, bias.elem_count() / 3);
        let d = hidden / heads;
        let scale = 1.0 / (d as f32).sqrt();
        let mut dqkv = with_values(grad, |dout| {
            let mut dqkv = vec![0f32; qkv.len()];
            let target = Shared(dqkv.as_mut_ptr());
            (0..self.batch).into_par_iter().for_each(|b| {
                let (mut dropped, mut dp) = (vec![0f32; s * s], vec![0f32; s * s]);
                for h in 0..heads {
                    let (q, k, v) = head_offsets(b, h, s, hidden, d);
                    let o = b * s * hidden + h * d;
                    let p = &probs[(b * heads + h) * s * s..][..s * s];
                    dropped.copy_from_slice(p);
                    self.drop_probs(b, h, &mut dropped);
                    // SAFETY: reads inside text b's rows; writes go to text b's rows of dqkv, which no
                    // other task touches.
                    unsafe {
                        // dP' = dout . v^T ; dv = P'^T . dout
                        matmul(
                            s,
                            s,
                            d,
                            dp.as_mut_ptr(),
                            s,
                            dout[o..].as_ptr(),
                            hidden,
                            1,
                            qkv[v..].as_ptr(),
                            1,
                            3 * hidden,
                            1.0,
                        );
                        matmul(
                            s,
                            d,
                            s,
                            target.at(v),
                            3 * hidden,
                            dropped.as_ptr(),
                            1,
                            s,
                            dout[o..].as_ptr(),
                            hidden,
                            1,
                            1.0,
                        );
                    }
                    // Back through dropout, then softmax: dS = P * (dP - rowsum(P * dP)).
                    self.drop_probs(b, h, &mut dp);
                    for (dp, p) in dp.chunks_exact_mut(s).zip(p.chunks_exact(s)) {
                        let dot: f32 = dp.iter().zip(p).map(|(a, b)| a * b).sum();
                        dp.iter_mut().zip(p).for_each(|(x, p)| *x = p * (*x - dot));
                    }
                    unsafe {
                        // dq = scale * dS . k ; dk = scale * dS^T . q
                        matmul(
                            s,
                            d,
                            s,
                            target.at(q),
                            3 * hidden,
                            dp.as_ptr(),
                            s,
                            1,
                            qkv[k..].as_ptr(),
                            3 * hidden,
                            1,
                            scale,
                        );
                        matmul(
                            s,
                            d,
                            s,
                            target.at(k),
                            3 * hidden,
                            dp.as_ptr(),
                            1,
                            s,
                            qkv[q..].as_ptr(),
                            3 * hidden,
                            1,
                            scale,
                        );
                    }
                }
            });
            Ok(dqkv)
        })?;
        let n = 3 * hidden;
        let (dbias, _) = column_sums(n, dqkv.len() / n, |row, sum, _| {
            sum.iter_mut().zip(&dqkv[row * n..(row + 1) * n]).for_each(|(s, d)| *s += d)
        });
        dqkv.shrink_to_fit();
        Ok((Some(tensor(dqkv, product.shape(), product)?), Some(tensor(dbias, bias.shape(), product)?)))
    }
}

/// Multi-head self-attention, `softmax(q k^T / √d + mask) v` per head. `qkv` is the fused projection
/// without its bias (`[batch * seq, 3 * hidden]`, q, k and v side by side), `bias` its bias
/// (`[3 * hidden]`); keys are masked where `attention_mask` (`[batch, seq]`, u32) is 0, and the
/// probabilities go through `dropout`. Returns the context, `[batch * seq, hidden]`, heads side by side.
pub fn attention(
    qkv: &Tensor,
    bias: &Tensor,
    attention_mask: &Tensor,
    heads: usize,
    dropout: Option<DropoutMask>,
) -> Result<Tensor> {
    let (batch, seq) = attention_mask.dims2()?;
    let mask = attention_mask.flatten_all()?.to_vec1::<u32>()?;
    let keep = mask
        .chunks_exact(seq.max(1))
        .flat_map(|text| {
            let any_key = text.iter().any(|&m| m != 0);
            text.iter().map(move |&m| if m != 0 || !any_key { 1.0 } else { 0.0 })
        })
        .collect();
    qkv.contiguous()?.apply_op2(bias, Attention { batch, seq, heads, keep, dropout, saved: Mutex::default() })
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var, D};

    use super::super::dropout::mix;
    use super::*;

    /// Values within `tol * (1 + |reference|)`, with the worst element named on failure.
    fn assert_close(got: &Tensor, want: &Tensor, tol: f32, what: &str) {
        let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        let (worst, err) = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).abs() / (1.0 + w.abs()))
            .enumerate()
            .fold((0, 0f32), |best, (i, e)| if e > best.1 { (i, e) } else { best });
        assert!(
            err <= tol,
            "{what}: element {worst} is {} but the reference is {} (relative error {err:e} > {tol:e})",
            got[worst],
            want[worst]
        );
    }

    fn random(shape: &[usize], seed: u64) -> Var {
        let n: usize = shape.iter().product();
        let values = (0..n)
            .map(|i| (mix(seed * 1_000_003 + i as u64) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0)
            .collect::<Vec<_>>();
        Var::from_tensor(&Tensor::from_vec(values, shape, &Device::Cpu).unwrap()).unwrap()
    }

    /// Gradients of `sum(f(inputs) * weights)` with respect to each input.
    fn grads(inputs: &[&Var], out: &Tensor, weights: &Tensor) -> Vec<Tensor> {
        let store = (out * weights).unwrap().sum_all().unwrap().backward().unwrap();
        inputs.iter().map(|v| store.get(v).expect("a gradient").clone()).collect()
    }

    /// Tolerance of the fused kernels against candle's composed ops: f32 rounding in another order, and
    /// the 1.5e-7 erf approximation.
    const TOL: f32 = 2e-5;

    #[test]
    fn layer_norm_matches_the_composed_op_and_its_gradients() {
        let (x, g, b) = (random(&[3, 5, 48], 1), random(&[48], 2), random(&[48], 3));
        let upstream = random(&[3, 5, 48], 4);
        let ours = layer_norm(x.as_tensor(), g.as_tensor(), b.as_tensor(), 1e-12).unwrap();
        let reference = candle_nn::ops::layer_norm_slow(x.as_tensor(), g.as_tensor(), b.as_tensor(), 1e-12).unwrap();
        assert_close(&ours, &reference, TOL, "layer norm");
        let (a, r) =
            (grads(&[&x, &g, &b], &ours, upstream.as_tensor()), grads(&[&x, &g, &b], &reference, upstream.as_tensor()));
        for (i, name) in ["dx", "dgamma", "dbeta"].iter().enumerate() {
            assert_close(&a[i], &r[i], TOL, name);
        }
    }

    #[test]
    fn bias_gelu_matches_the_composed_op_and_its_gradients() {
        let (x, b) = (random(&[7, 40], 5), random(&[40], 6));
        let x3 = Var::from_tensor(&(x.as_tensor() * 3.0).unwrap()).unwrap();
        let upstream = random(&[7, 40], 7);
        let ours = bias_gelu(x3.as_tensor(), b.as_tensor()).unwrap();
        let reference = x3.as_tensor().broadcast_add(b.as_tensor()).unwrap().gelu_erf().unwrap();
        assert_close(&ours, &reference, TOL, "gelu");
        let (a, r) =
            (grads(&[&x3, &b], &ours, upstream.as_tensor()), grads(&[&x3, &b], &reference, upstream.as_tensor()));
        assert_close(&a[0], &r[0], TOL, "dx");
        assert_close(&a[1], &r[1], TOL, "dbias");
    }

    #[test]
    fn dropout_drops_the_asked_fraction_and_backward_uses_the_same_mask() {
        let x = Var::from_tensor(&Tensor::ones((64, 1000), DType::F32, &Device::Cpu).unwrap()).unwrap();
        let mask = DropoutMask { seed: 9, p: 0.1 };
        let y = dropout(x.as_tensor(), mask).unwrap();
        let values = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let dropped = values.iter().filter(|v| **v == 0.0).count() as f64 / values.len() as f64;
        assert!((dropped - 0.1).abs() < 0.005, "dropped {dropped}");
        assert!(values.iter().all(|v| *v == 0.0 || (*v - 1.0 / 0.9).abs() < 1e-6));
        let again = dropout(x.as_tensor(), mask).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(values, again, "a seed fixes the mask");
        let other = dropout(x.as_tensor(), DropoutMask { seed: 10, p: 0.1 })
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_ne!(values, other);
        let grad = grads(&[&x], &y, &Tensor::ones((64, 1000), DType::F32, &Device::Cpu).unwrap()).remove(0);
        assert_eq!(grad.flatten_all().unwrap().to_vec1::<f32>().unwrap(), values, "d(mask * x)/dx = mask");
    }

    /// The composed attention of the model's non-fused path, with an explicit dropout mask tensor.
    fn composed_attention(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: &Tensor,
        heads: usize,
        drop: Option<DropoutMask>,
    ) -> Tensor {
        let (b, s, h) = q.dims3().unwrap();
        let d = h / heads;
        let split = |t: &Tensor| t.reshape((b, s, heads, d)).unwrap().transpose(1, 2).unwrap().contiguous().unwrap();
        let (q, k, v) = (split(q), split(k), split(v));
        let additive = mask.ne(0u32).unwrap().where_cond(
            &Tensor::zeros((b, s), DType::F32, &Device::Cpu).unwrap(),
            &Tensor::full(f32::MIN, (b, s), &Device::Cpu).unwrap(),
        );
        let additive = additive.unwrap().reshape((b, 1, 1, s)).unwrap();
        let scores =
            (q.matmul(&k.t().unwrap()).unwrap() / (d as f64).sqrt()).unwrap().broadcast_add(&additive).unwrap();
        let mut probs = candle_nn::ops::softmax(&scores, D::Minus1).unwrap();
        if let Some(drop) = drop {
            let factors: Vec<f32> = (0..probs.elem_count()).map(|i| drop.factor(i)).collect();
            probs = (probs * Tensor::from_vec(factors, (b, heads, s, s), &Device::Cpu).unwrap()).unwrap();
        }
        probs.matmul(&v).unwrap().transpose(1, 2).unwrap().reshape((b, s, h)).unwrap()
    }

    #[test]
    fn attention_matches_the_composed_ops_and_their_gradients() {
        let (batch, seq, hidden, heads) = (3, 7, 24, 4);
        let product = Var::from_tensor(&(random(&[batch * seq, 3 * hidden], 11).as_tensor() * 3.0).unwrap()).unwrap();
        let bias = random(&[3 * hidden], 12);
        // Text 0 is full, text 1 has 3 padding tokens, text 2 only its first token.
        let lengths = [7usize, 4, 1];
        let mask: Vec<u32> = lengths.iter().flat_map(|&n| (0..seq).map(move |j| u32::from(j < n))).collect();
        let mask = Tensor::from_vec(mask, (batch, seq), &Device::Cpu).unwrap();
        let upstream = random(&[batch * seq, hidden], 14);
        for drop in [None, Some(DropoutMask { seed: 5, p: 0.3 })] {
            let ours = attention(product.as_tensor(), bias.as_tensor(), &mask, heads, drop).unwrap();
            let qkv =
                product.as_tensor().broadcast_add(bias.as_tensor()).unwrap().reshape((batch, seq, 3 * hidden)).unwrap();
            let part = |i: usize| qkv.narrow(2, i * hidden, hidden).unwrap();
            let reference = composed_attention(&part(0), &part(1), &part(2), &mask, heads, drop)
                .reshape((batch * seq, hidden))
                .unwrap();
            assert_close(&ours, &reference, TOL, &format!("attention (dropout {drop:?})"));
            let a = grads(&[&product, &bias], &ours, upstream.as_tensor());
            let r = grads(&[&product, &bias], &reference, upstream.as_tensor());
            for (i, name) in ["dqkv", "dbias"].iter().enumerate() {
                assert_close(&a[i], &r[i], TOL, &format!("{name} (dropout {drop:?})"));
            }
        }
    }

    #[test]
    fn dense_residual_norm_matches_the_composed_ops_and_their_gradients() {
        let (x, residual) = (random(&[6, 32], 21), random(&[6, 32], 22));
        let (bias, gamma, beta) = (random(&[32], 23), random(&[32], 24), random(&[32], 25));
        let upstream = random(&[6, 32], 26);
        let vars = [&x, &residual, &bias, &gamma, &beta];
        for drop in [None, Some(DropoutMask { seed: 3, p: 0.25 })] {
            let ours = dense_residual_norm(
                x.as_tensor(),
                bias.as_tensor(),
                residual.as_tensor(),
                gamma.as_tensor(),
                beta.as_tensor(),
                1e-12,
                drop,
            )
            .unwrap();
            let mut z = x.as_tensor().broadcast_add(bias.as_tensor()).unwrap();
            if let Some(drop) = drop {
                let factors: Vec<f32> = (0..z.elem_count()).map(|i| drop.factor(i)).collect();
                z = (z * Tensor::from_vec(factors, (6, 32), &Device::Cpu).unwrap()).unwrap();
            }
            let z = (z + residual.as_tensor()).unwrap();
            let reference = candle_nn::ops::layer_norm_slow(&z, gamma.as_tensor(), beta.as_tensor(), 1e-12).unwrap();
            assert_close(&ours, &reference, TOL, "dense + residual + norm");
            let (a, r) = (grads(&vars, &ours, upstream.as_tensor()), grads(&vars, &reference, upstream.as_tensor()));
            for (i, name) in ["dx", "dresidual", "dbias", "dgamma", "dbeta"].iter().enumerate() {
                assert_close(&a[i], &r[i], TOL, &format!("{name} (dropout {drop:?})"));
            }
        }
    }
}

//! The int8 weight format `int8-block32-v1` (docs/contracts.md, section 1): weight-only, per-row blocks of
//! 32 values along the input dimension, one f32 scale per block, symmetric int8 in `[-127, 127]`.
//! `quantize` is byte-for-byte the numpy reference quantizer in `tests/fixtures/make_fixtures.py`.

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors, View};

use crate::error::{Error, Result};

/// Values per quantization block along the input dimension.
pub const BLOCK: usize = 32;
/// `__metadata__` key naming the weight format.
pub const FORMAT_KEY: &str = "tweetguard_format";
/// The format this module reads and writes.
pub const FORMAT_INT8: &str = "int8-block32-v1";
/// Suffix of the int8 values tensor.
pub const Q_SUFFIX: &str = ".q";
/// Suffix of the per-block scales tensor.
pub const SCALE_SUFFIX: &str = ".scale";

/// `n` rounded up to a whole number of blocks.
pub fn padded_len(n: usize) -> usize {
    n.div_ceil(BLOCK) * BLOCK
}

/// A row-major `[rows, cols]` matrix in int8 blocks; rows are padded with zeros to `padded_len(cols)`.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedMatrix {
    pub rows: usize,
    pub cols: usize,
    /// `[rows, padded_len(cols)]`.
    pub values: Vec<i8>,
    /// `[rows, padded_len(cols) / BLOCK]`.
    pub scales: Vec<f32>,
}

impl QuantizedMatrix {
    /// Quantizes a row-major `[rows, cols]` f32 matrix. Fails on non-finite input.
    pub fn quantize(weights: &[f32], rows: usize, cols: usize) -> Result<Self> {
        if weights.len() != rows * cols {
            return Err(Error::Weights(format!("{} values cannot form a {rows}x{cols} matrix", weights.len())));
        }
        if let Some(i) = weights.iter().position(|w| !w.is_finite()) {
            return Err(Error::Weights(format!("cannot quantize non-finite value {} at index {i}", weights[i])));
        }
        let padded = padded_len(cols);
        let blocks = padded / BLOCK;
        let mut values = vec![0i8; rows * padded];
        let mut scales = vec![0f32; rows * blocks];
        for r in 0..rows {
            let row = &weights[r * cols..(r + 1) * cols];
            for b in 0..blocks {
                let block = &row[(b * BLOCK).min(cols)..((b + 1) * BLOCK).min(cols)];
                let amax = block.iter().fold(0f32, |m, w| m.max(w.abs()));
                let scale = amax / 127.0;
                scales[r * blocks + b] = scale;
                if scale == 0.0 {
                    continue;
                }
                let out = &mut values[r * padded + b * BLOCK..];
                for (o, w) in out.iter_mut().zip(block) {
                    *o = (w / scale).round_ties_even().clamp(-127.0, 127.0) as i8;
                }
            }
        }
        Ok(Self { rows, cols, values, scales })
    }

    /// Rebuilds from the two stored tensors, given the unpadded column count.
    pub fn from_parts(values: Vec<i8>, scales: Vec<f32>, rows: usize, cols: usize) -> Result<Self> {
        let padded = padded_len(cols);
        if values.len() != rows * padded || scales.len() != rows * padded / BLOCK {
            return Err(Error::Weights(format!(
                "int8 tensors hold {} values and {} scales; a {rows}x{cols} matrix needs {} and {}",
                values.len(),
                scales.len(),
                rows * padded,
                rows * padded / BLOCK
            )));
        }
        Ok(Self { rows, cols, values, scales })
    }

    /// The f32 matrix `[rows, cols]` the reference semantics compute with: `q * scale`.
    pub fn dequantize(&self) -> Vec<f32> {
        let padded = padded_len(self.cols);
        let blocks = padded / BLOCK;
        let mut out = Vec::with_capacity(self.rows * self.cols);
        for r in 0..self.rows {
            let q = &self.values[r * padded..r * padded + self.cols];
            let s = &self.scales[r * blocks..(r + 1) * blocks];
            out.extend(q.iter().enumerate().map(|(c, &v)| v as f32 * s[c / BLOCK]));
        }
        out
    }
}

/// Whether a tensor (HF name, with or without the `bert.` prefix) is stored as int8: every encoder and
/// pooler linear weight and the three embedding tables. Biases, LayerNorm and the classifier stay f32.
pub fn is_quantized(name: &str) -> bool {
    let name = name.strip_prefix("bert.").unwrap_or(name);
    name.ends_with(".weight")
        && !name.contains("LayerNorm")
        && ["embeddings.", "encoder.", "pooler."].iter().any(|p| name.starts_with(p))
}

/// Reads any float tensor of a safetensors file as f32 (F32, F16 or BF16, little-endian).
pub fn tensor_to_f32(name: &str, dtype: Dtype, data: &[u8]) -> Result<Vec<f32>> {
    let chunks = |n: usize| data.chunks_exact(n);
    Ok(match dtype {
        Dtype::F32 => chunks(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => chunks(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => chunks(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        other => return Err(Error::Weights(format!("tensor {name} has dtype {other:?}, expected a float type"))),
    })
}

/// One tensor to write: raw little-endian bytes with their dtype and shape.
struct OwnedTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &OwnedTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        (&self.data[..]).into()
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// Converts an f32/f16/bf16 safetensors file with HF names into the int8 format. Non-float tensors
/// (such as the `position_ids` buffer of older checkpoints) are dropped.
pub fn quantize_safetensors(float_file: &[u8]) -> Result<Vec<u8>> {
    let metadata =
        HashMap::from([("format".to_string(), "pt".to_string()), (FORMAT_KEY.to_string(), FORMAT_INT8.to_string())]);
    convert(float_file, true, metadata)
}

/// The same file with every float tensor as F32 (for the `hf/` export); non-float tensors dropped.
pub fn float_safetensors_as_f32(float_file: &[u8]) -> Result<Vec<u8>> {
    convert(float_file, false, HashMap::from([("format".to_string(), "pt".to_string())]))
}

fn convert(float_file: &[u8], quantize: bool, metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let st = SafeTensors::deserialize(float_file).map_err(|e| Error::Weights(format!("safetensors: {e}")))?;
    let mut out: Vec<(String, OwnedTensor)> = Vec::new();
    for (name, view) in st.tensors() {
        if view.dtype() == Dtype::I8 {
            return Err(Error::Weights(format!("{name} is already int8: this needs full-precision weights")));
        }
        if !matches!(view.dtype(), Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            continue;
        }
        let values = tensor_to_f32(&name, view.dtype(), view.data())?;
        let shape = view.shape().to_vec();
        if quantize && is_quantized(&name) && shape.len() == 2 {
            let m = QuantizedMatrix::quantize(&values, shape[0], shape[1])?;
            let q_shape = vec![m.rows, padded_len(m.cols)];
            let s_shape = vec![m.rows, padded_len(m.cols) / BLOCK];
            let q_bytes = m.values.iter().map(|v| *v as u8).collect();
            out.push((format!("{name}{Q_SUFFIX}"), OwnedTensor { dtype: Dtype::I8, shape: q_shape, data: q_bytes }));
            out.push((format!("{name}{SCALE_SUFFIX}"), f32_tensor(s_shape, &m.scales)));
        } else {
            out.push((name, f32_tensor(shape, &values)));
        }
    }
    let views = out.iter().map(|(n, t)| (n.clone(), t));
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::Weights(format!("safetensors: {e}")))
}

fn f32_tensor(shape: Vec<usize>, values: &[f32]) -> OwnedTensor {
    OwnedTensor { dtype: Dtype::F32, shape, data: values.iter().flat_map(|v| v.to_le_bytes()).collect() }
}

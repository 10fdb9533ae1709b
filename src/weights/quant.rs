//! The int8 weight format `int8-block-v2` (docs/weight-format.md; docs/contracts.md, section 1): weight-only,
//! per-row blocks along the input dimension, one f32 scale per block, symmetric int8 in `[-127, 127]`. A
//! block holds 32 values, or 64 in the tensors [`block_len_for`] names (its stored scales' shape says
//! which); `int8-block32-v1` files (32 everywhere) still load. `quantize_in_blocks` is byte-for-byte the
//! numpy reference quantizer in `tests/python/int8_reference.py`.

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors, View};

use crate::error::{Error, Result};

/// Values per quantization block along the input dimension: the format's unit, to which rows are padded.
pub const BLOCK: usize = 32;
/// The longer block of the tensors [`block_len_for`] names.
pub const WIDE_BLOCK: usize = 64;
/// `__metadata__` key naming the weight format.
pub const FORMAT_KEY: &str = "tweetguard_format";
/// The format of a file with 64-value blocks.
pub const FORMAT_INT8: &str = "int8-block-v2";
/// The format of a file whose blocks are all 32 values (what older builds read too).
pub const FORMAT_INT8_V1: &str = "int8-block32-v1";
/// Suffix of the int8 values tensor.
pub const Q_SUFFIX: &str = ".q";
/// Suffix of the per-block scales tensor.
pub const SCALE_SUFFIX: &str = ".scale";

/// `n` rounded up to a whole number of blocks.
pub fn padded_len(n: usize) -> usize {
    n.div_ceil(BLOCK) * BLOCK
}

/// The block length the exporter gives a matrix of `cols` inputs: [`WIDE_BLOCK`] for the attention output
/// and FFN down-projection weights (`…output.dense.weight`), whose inputs are not LayerNorm outputs (the
/// LayerNorm outputs' outliers are what 7-bit activations lose most on; docs/weight-format.md has the
/// measurements), where `cols` is a multiple of 64; [`BLOCK`] for everything else. Longer blocks halve the
/// int8 engine's per-block scaling work on those products.
pub fn block_len_for(name: &str, cols: usize) -> usize {
    let name = name.strip_prefix("bert.").unwrap_or(name);
    let wide = name.starts_with("encoder.layer.") && name.ends_with(".output.dense.weight");
    if wide && cols.is_multiple_of(WIDE_BLOCK) {
        WIDE_BLOCK
    } else {
        BLOCK
    }
}

/// A row-major `[rows, cols]` matrix in int8 blocks of `block` values; rows are padded with zeros to
/// `padded_len(cols)`, a whole number of blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedMatrix {
    pub rows: usize,
    pub cols: usize,
    /// `[rows, padded_len(cols)]`.
    pub values: Vec<i8>,
    /// `[rows, padded_len(cols) / block]`.
    pub scales: Vec<f32>,
    /// Values per block: [`BLOCK`] or [`WIDE_BLOCK`].
    pub block: usize,
}

impl QuantizedMatrix {
    /// Quantizes a row-major `[rows, cols]` f32 matrix in blocks of [`BLOCK`]. Fails on non-finite input.
    pub fn quantize(weights: &[f32], rows: usize, cols: usize) -> Result<Self> {
        Self::quantize_in_blocks(weights, rows, cols, BLOCK)
    }

    /// [`Self::quantize`] in blocks of `block` values (see [`Self::check_block`]).
    pub fn quantize_in_blocks(weights: &[f32], rows: usize, cols: usize, block: usize) -> Result<Self> {
        Self::check_block(block, cols)?;
        if weights.len() != rows * cols {
            return Err(Error::Weights(format!("{} values cannot form a {rows}x{cols} matrix", weights.len())));
        }
        if let Some(i) = weights.iter().position(|w| !w.is_finite()) {
            return Err(Error::Weights(format!("cannot quantize non-finite value {} at index {i}", weights[i])));
        }
        let padded = padded_len(cols);
        let blocks = padded / block;
        let mut values = vec![0i8; rows * padded];
        let mut scales = vec![0f32; rows * blocks];
        for r in 0..rows {
            let row = &weights[r * cols..(r + 1) * cols];
            for b in 0..blocks {
                let part = &row[(b * block).min(cols)..((b + 1) * block).min(cols)];
                let amax = part.iter().fold(0f32, |m, w| m.max(w.abs()));
                let scale = amax / 127.0;
                scales[r * blocks + b] = scale;
                if scale == 0.0 {
                    continue;
                }
                let out = &mut values[r * padded + b * block..];
                for (o, w) in out.iter_mut().zip(part) {
                    *o = (w / scale).round_ties_even().clamp(-127.0, 127.0) as i8;
                }
            }
        }
        Ok(Self { rows, cols, values, scales, block })
    }

    /// A block is [`BLOCK`] or [`WIDE_BLOCK`] values, and the padded row a whole number of blocks.
    fn check_block(block: usize, cols: usize) -> Result<()> {
        if block != BLOCK && block != WIDE_BLOCK || !padded_len(cols).is_multiple_of(block) {
            return Err(Error::Weights(format!(
                "int8 blocks of {block} values do not fit rows of {cols} (padded to {}): blocks are {BLOCK} or \
                 {WIDE_BLOCK} values and a padded row is a whole number of them",
                padded_len(cols)
            )));
        }
        Ok(())
    }

    /// Rebuilds from the two stored tensors, given the unpadded column count; the block length is what
    /// the number of scales implies (32 or 64 values).
    pub fn from_parts(values: Vec<i8>, scales: Vec<f32>, rows: usize, cols: usize) -> Result<Self> {
        let padded = padded_len(cols);
        let block = [BLOCK, WIDE_BLOCK]
            .into_iter()
            .find(|&b| padded.is_multiple_of(b) && scales.len() == rows * padded / b)
            .filter(|_| values.len() == rows * padded);
        let Some(block) = block else {
            return Err(Error::Weights(format!(
                "int8 tensors hold {} values and {} scales; a {rows}x{cols} matrix needs {} values and {} scales \
                 (blocks of {BLOCK}) or {} (blocks of {WIDE_BLOCK})",
                values.len(),
                scales.len(),
                rows * padded,
                rows * padded / BLOCK,
                rows * padded / WIDE_BLOCK
            )));
        };
        Ok(Self { rows, cols, values, scales, block })
    }

    /// The scales as if every block were [`BLOCK`] values (each wider block's scale repeated): the same
    /// matrix `q * scale`, for consumers that read one scale per 32 values (the WebGPU matmul).
    pub fn scales_per_block32(&self) -> std::borrow::Cow<'_, [f32]> {
        let repeat = self.block / BLOCK;
        match repeat {
            1 => std::borrow::Cow::Borrowed(&self.scales),
            _ => self.scales.iter().flat_map(|&s| std::iter::repeat_n(s, repeat)).collect(),
        }
    }

    /// The f32 matrix `[rows, cols]` the reference semantics compute with: `q * scale`.
    pub fn dequantize(&self) -> Vec<f32> {
        let padded = padded_len(self.cols);
        let blocks = padded / self.block;
        let mut out = Vec::with_capacity(self.rows * self.cols);
        for r in 0..self.rows {
            let q = &self.values[r * padded..r * padded + self.cols];
            let s = &self.scales[r * blocks..(r + 1) * blocks];
            out.extend(q.iter().enumerate().map(|(c, &v)| v as f32 * s[c / self.block]));
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
/// Its `__metadata__` names [`FORMAT_INT8_V1`] when every block is 32 values, else [`FORMAT_INT8`].
pub fn quantize_safetensors(float_file: &[u8]) -> Result<Vec<u8>> {
    quantize_safetensors_with(float_file, block_len_for)
}

/// [`quantize_safetensors`] with the block length of each tensor (by name and input count) from
/// `block_len` instead of [`block_len_for`] (the test goldens made before 64-value blocks use 32 throughout).
pub fn quantize_safetensors_with(float_file: &[u8], block_len: fn(&str, usize) -> usize) -> Result<Vec<u8>> {
    convert(float_file, Some(block_len), HashMap::from([("format".to_string(), "pt".to_string())]))
}

/// The weight format a safetensors file names in its `__metadata__`, if any.
pub fn format_of(file: &[u8]) -> Result<Option<String>> {
    let (_, metadata) =
        SafeTensors::read_metadata(file).map_err(|e| Error::Weights(format!("not a valid safetensors file: {e}")))?;
    Ok(metadata.metadata().as_ref().and_then(|m| m.get(FORMAT_KEY)).cloned())
}

/// The same file with every float tensor as F32 (for the `hf/` export); non-float tensors dropped.
pub fn float_safetensors_as_f32(float_file: &[u8]) -> Result<Vec<u8>> {
    convert(float_file, None, HashMap::from([("format".to_string(), "pt".to_string())]))
}

/// The file's float tensors as F32, or with `Some(block_len)` the quantized ones as int8 in blocks of
/// `block_len(name, cols)` values.
fn convert(
    float_file: &[u8],
    block_len: Option<fn(&str, usize) -> usize>,
    mut metadata: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let st = SafeTensors::deserialize(float_file).map_err(|e| Error::Weights(format!("safetensors: {e}")))?;
    let mut out: Vec<(String, OwnedTensor)> = Vec::new();
    let mut wide_blocks = false;
    for (name, view) in st.tensors() {
        if view.dtype() == Dtype::I8 {
            return Err(Error::Weights(format!("{name} is already int8: this needs full-precision weights")));
        }
        if !matches!(view.dtype(), Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            continue;
        }
        let values = tensor_to_f32(&name, view.dtype(), view.data())?;
        let shape = view.shape().to_vec();
        if let (Some(block_len), true, &[rows, cols]) = (block_len, is_quantized(&name), shape.as_slice()) {
            let m = QuantizedMatrix::quantize_in_blocks(&values, rows, cols, block_len(&name, cols))?;
            let q_shape = vec![m.rows, padded_len(m.cols)];
            let s_shape = vec![m.rows, padded_len(m.cols) / m.block];
            wide_blocks |= m.block != BLOCK;
            let q_bytes = m.values.iter().map(|v| *v as u8).collect();
            out.push((format!("{name}{Q_SUFFIX}"), OwnedTensor { dtype: Dtype::I8, shape: q_shape, data: q_bytes }));
            out.push((format!("{name}{SCALE_SUFFIX}"), f32_tensor(s_shape, &m.scales)));
        } else {
            out.push((name, f32_tensor(shape, &values)));
        }
    }
    if block_len.is_some() {
        let format = if wide_blocks { FORMAT_INT8 } else { FORMAT_INT8_V1 };
        metadata.insert(FORMAT_KEY.to_string(), format.to_string());
    }
    let views = out.iter().map(|(n, t)| (n.clone(), t));
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::Weights(format!("safetensors: {e}")))
}

fn f32_tensor(shape: Vec<usize>, values: &[f32]) -> OwnedTensor {
    OwnedTensor { dtype: Dtype::F32, shape, data: values.iter().flat_map(|v| v.to_le_bytes()).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::{HeadInit, StoredMatrix, WeightStore};

    /// A float safetensors file of `(name, [rows, cols])` tensors with values from a fixed pattern.
    fn float_file(tensors: &[(&str, [usize; 2])], metadata: Option<HashMap<String, String>>) -> Vec<u8> {
        let owned: Vec<(String, OwnedTensor)> = tensors
            .iter()
            .map(|&(name, [rows, cols])| {
                let values: Vec<f32> = (0..rows * cols).map(|i| ((i * 37 % 101) as f32 - 50.0) / 40.0).collect();
                (name.to_string(), f32_tensor(vec![rows, cols], &values))
            })
            .collect();
        safetensors::serialize(owned.iter().map(|(n, t)| (n.clone(), t)), metadata).unwrap()
    }

    const FFN_DOWN: &str = "bert.encoder.layer.0.output.dense.weight";
    const FFN_UP: &str = "bert.encoder.layer.0.intermediate.dense.weight";

    #[test]
    fn the_exporter_gives_64_value_blocks_to_the_attention_and_ffn_outputs_only() {
        assert_eq!(block_len_for("bert.encoder.layer.0.attention.output.dense.weight", 384), WIDE_BLOCK);
        assert_eq!(block_len_for("encoder.layer.11.output.dense.weight", 1536), WIDE_BLOCK);
        for name in [
            FFN_UP,
            "bert.encoder.layer.0.attention.self.query.weight",
            "bert.pooler.dense.weight",
            "bert.embeddings.word_embeddings.weight",
        ] {
            assert_eq!(block_len_for(name, 384), BLOCK, "{name}");
        }
        assert_eq!(block_len_for(FFN_DOWN, 48), BLOCK, "48 inputs are not whole blocks of 64");
    }

    #[test]
    fn a_64_value_block_has_one_scale_and_reads_back_as_two_of_32() {
        let (rows, cols) = (3, 128);
        let weights: Vec<f32> =
            (0..rows * cols).map(|i| ((i * 53 % 97) as f32 - 48.0) * (1.0 + (i / 64) as f32)).collect();
        let m = QuantizedMatrix::quantize_in_blocks(&weights, rows, cols, WIDE_BLOCK).unwrap();
        assert_eq!((m.block, m.scales.len()), (WIDE_BLOCK, rows * 2));
        for (b, block) in weights.chunks(WIDE_BLOCK).enumerate() {
            assert_eq!(m.scales[b], block.iter().fold(0f32, |a, w| a.max(w.abs())) / 127.0, "block {b}");
        }
        for (i, (w, d)) in weights.iter().zip(m.dequantize()).enumerate() {
            assert!((w - d).abs() <= m.scales[i / WIDE_BLOCK] / 2.0 * 1.0001, "weight {i}: {w} became {d}");
        }
        let again = QuantizedMatrix::from_parts(m.values.clone(), m.scales.clone(), rows, cols).unwrap();
        assert_eq!(again, m, "the block length follows from the number of scales");
        let as_32 = QuantizedMatrix::from_parts(m.values.clone(), m.scales_per_block32().into_owned(), rows, cols);
        assert_eq!(as_32.unwrap().dequantize(), m.dequantize(), "the same matrix in blocks of 32");
    }

    #[test]
    fn other_block_lengths_are_refused() {
        assert!(QuantizedMatrix::quantize_in_blocks(&[0.0; 96], 1, 96, WIDE_BLOCK).is_err(), "96 = 1.5 blocks of 64");
        assert!(QuantizedMatrix::quantize_in_blocks(&[0.0; 96], 1, 96, 48).is_err());
        let err = QuantizedMatrix::from_parts(vec![0; 2 * 96], vec![1.0; 4], 2, 96).unwrap_err().to_string();
        assert!(err.contains("blocks of 64"), "{err}");
    }

    #[test]
    fn a_file_names_the_second_format_only_when_a_block_is_64_values() {
        let narrow = quantize_safetensors(&float_file(&[(FFN_UP, [64, 2])], None)).unwrap();
        assert_eq!(format_of(&narrow).unwrap().as_deref(), Some(FORMAT_INT8_V1));
        let wide = quantize_safetensors(&float_file(&[(FFN_UP, [64, 2]), (FFN_DOWN, [2, 64])], None)).unwrap();
        assert_eq!(format_of(&wide).unwrap().as_deref(), Some(FORMAT_INT8));
        let st = SafeTensors::deserialize(&wide).unwrap();
        assert_eq!(st.tensor(&format!("{FFN_DOWN}{SCALE_SUFFIX}")).unwrap().shape(), [2, 1]);
    }

    #[test]
    fn only_the_second_format_may_hold_64_value_blocks() {
        let wide = quantize_safetensors(&float_file(&[(FFN_DOWN, [2, 64])], None)).unwrap();
        let load = |bytes: Vec<u8>| {
            let store = WeightStore::from_bytes(bytes, HeadInit::Require).unwrap();
            store.matrix("encoder.layer.0.output.dense.weight", &[2, 64], candle_nn::Init::Const(0.0))
        };
        match load(wide.clone()).unwrap() {
            StoredMatrix::Int8(m) => assert_eq!(m.block, WIDE_BLOCK),
            StoredMatrix::F32(_) => panic!("int8 stays int8"),
        }
        // The same tensors under the first format's name: its readers expect one scale per 32 values.
        let st = SafeTensors::deserialize(&wide).unwrap();
        let v1 = HashMap::from([(FORMAT_KEY.to_string(), FORMAT_INT8_V1.to_string())]);
        let relabelled = safetensors::serialize(st.tensors(), Some(v1)).unwrap();
        let err = load(relabelled).unwrap_err().to_string();
        assert!(err.contains(SCALE_SUFFIX), "{err}");
    }
}

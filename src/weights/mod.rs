//! Weights from safetensors bytes: f32/f16/bf16 files with HF names and the int8 format of
//! [`quant`]. [`WeightStore`] serves tensors to the model by canonical name (no `bert.` prefix),
//! checks every shape against what the config asks for, dequantizes int8 blocks, rejects
//! non-finite values, and creates a fresh classifier head only when the caller asked for one.

pub mod quant;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::{Init, VarBuilder};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use quant::{QuantizedMatrix, Q_SUFFIX, SCALE_SUFFIX};

/// How the weights were stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightDtype {
    F32,
    F16,
    Bf16,
    Int8,
}

/// What to do when the checkpoint has no classifier head (a bare `BertModel` such as all-MiniLM-L6-v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeadInit {
    /// A missing head is an error.
    #[default]
    Require,
    /// Initialise a missing head as HF does (normal(0, initializer_range), zero bias) from this seed.
    /// The result is an untrained classifier: its labels mean nothing until it is fine-tuned.
    RandomIfMissing { seed: u64 },
}

/// A weight matrix as the file stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredMatrix {
    /// Row-major f32 values (f16/bf16 files are widened).
    F32(Vec<f32>),
    /// The int8 blocks of the format (`quant`).
    Int8(QuantizedMatrix),
}

impl StoredMatrix {
    /// Stacks matrices with the same `cols` row-wise (Q, K and V into one projection); int8 blocks stay
    /// int8 when every part is int8 (in blocks of one length), otherwise every part is f32 (dequantized).
    pub fn stack(parts: Vec<StoredMatrix>, cols: usize) -> Result<StoredMatrix> {
        if parts.len() == 1 {
            return Ok(parts.into_iter().next().expect("one part"));
        }
        let blocks: Vec<usize> =
            parts.iter().filter_map(|p| if let StoredMatrix::Int8(m) = p { Some(m.block) } else { None }).collect();
        if blocks.windows(2).any(|w| w[0] != w[1]) {
            return Err(Error::Weights(format!(
                "the int8 matrices stacked into one ({} parts) use blocks of different lengths {blocks:?}",
                parts.len()
            )));
        }
        if blocks.len() == parts.len() {
            let (mut values, mut scales, mut rows) = (Vec::new(), Vec::new(), 0);
            for part in parts {
                let StoredMatrix::Int8(m) = part else { unreachable!("checked above") };
                values.extend(m.values);
                scales.extend(m.scales);
                rows += m.rows;
            }
            return Ok(StoredMatrix::Int8(QuantizedMatrix::from_parts(values, scales, rows, cols)?));
        }
        let mut values = Vec::new();
        for part in parts {
            match part {
                StoredMatrix::F32(v) => values.extend(v),
                StoredMatrix::Int8(m) => values.extend(m.dequantize()),
            }
        }
        Ok(StoredMatrix::F32(values))
    }
}

#[derive(Debug, Clone)]
struct Entry {
    dtype: Dtype,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// A parsed safetensors file that hands tensors to candle's `VarBuilder`.
pub struct WeightStore {
    bytes: Vec<u8>,
    entries: HashMap<String, Entry>,
    head: HeadInit,
    created_head: Arc<AtomicBool>,
    /// Block lengths an int8 tensor may have: 64 as well as 32 only in `int8-block-v2` files.
    block_lengths: &'static [usize],
}

impl WeightStore {
    /// Parses and validates the file's header (offsets, sizes, dtypes); tensor data is read on demand.
    pub fn from_bytes(bytes: Vec<u8>, head: HeadInit) -> Result<Self> {
        SafeTensors::deserialize(&bytes).map_err(|e| Error::Weights(format!("not a valid safetensors file: {e}")))?;
        let (header_len, metadata) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| Error::Weights(format!("not a valid safetensors file: {e}")))?;
        let block_lengths: &'static [usize] =
            match metadata.metadata().as_ref().and_then(|m| m.get(quant::FORMAT_KEY)).map(String::as_str) {
                None | Some(quant::FORMAT_INT8) => &[quant::BLOCK, quant::WIDE_BLOCK],
                Some(quant::FORMAT_INT8_V1) => &[quant::BLOCK],
                Some(format) => {
                    return Err(Error::Weights(format!(
                        "weight format {format:?} is not supported (this build reads {:?} and {:?})",
                        quant::FORMAT_INT8,
                        quant::FORMAT_INT8_V1
                    )))
                }
            };
        let data_start = 8 + header_len;
        let entries = metadata
            .tensors()
            .into_iter()
            .map(|(name, info)| {
                let entry = Entry {
                    dtype: info.dtype,
                    shape: info.shape.clone(),
                    start: data_start + info.data_offsets.0,
                    end: data_start + info.data_offsets.1,
                };
                (name, entry)
            })
            .collect();
        Ok(Self { bytes, entries, head, created_head: Arc::default(), block_lengths })
    }

    /// A flag that becomes true once the store invents a classifier head
    /// (see [`HeadInit::RandomIfMissing`]); it stays readable after the store moves into a `VarBuilder`.
    pub fn created_head_flag(&self) -> Arc<AtomicBool> {
        self.created_head.clone()
    }

    /// A `VarBuilder` over this store, producing f32 tensors on `device`.
    pub fn into_var_builder(self, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self), DType::F32, device.clone())
    }

    /// Stored names tried for a canonical name: HF classification checkpoints prefix the encoder with
    /// `bert.`; old checkpoints call LayerNorm parameters `gamma`/`beta`.
    fn candidates(name: &str) -> Vec<String> {
        let mut names = vec![format!("bert.{name}"), name.to_string()];
        if let Some(stem) = name.strip_suffix("LayerNorm.weight") {
            names.extend([format!("bert.{stem}LayerNorm.gamma"), format!("{stem}LayerNorm.gamma")]);
        } else if let Some(stem) = name.strip_suffix("LayerNorm.bias") {
            names.extend([format!("bert.{stem}LayerNorm.beta"), format!("{stem}LayerNorm.beta")]);
        }
        names
    }

    fn data(&self, entry: &Entry) -> &[u8] {
        &self.bytes[entry.start..entry.end]
    }

    /// Finds `name` with the requested shape, keeping int8 matrices as int8.
    fn lookup(&self, name: &str, dims: &[usize]) -> Result<Option<StoredMatrix>> {
        for stored in Self::candidates(name) {
            if let Some(entry) = self.entries.get(&stored) {
                if entry.shape != dims {
                    return Err(mismatch(&stored, &entry.shape, dims));
                }
                return quant::tensor_to_f32(&stored, entry.dtype, self.data(entry))
                    .map(|v| Some(StoredMatrix::F32(v)));
            }
            let (Some(q), Some(s)) = (
                self.entries.get(&format!("{stored}{Q_SUFFIX}")),
                self.entries.get(&format!("{stored}{SCALE_SUFFIX}")),
            ) else {
                continue;
            };
            let &[rows, cols] = dims else {
                return Err(Error::Weights(format!("{stored} is stored as int8 but the model needs shape {dims:?}")));
            };
            let padded = quant::padded_len(cols);
            if q.dtype != Dtype::I8 || q.shape != [rows, padded] {
                return Err(mismatch(&format!("{stored}{Q_SUFFIX}"), &q.shape, &[rows, padded]));
            }
            let fits = |block: &usize| padded.is_multiple_of(*block) && s.shape == [rows, padded / block];
            if s.dtype != Dtype::F32 || !self.block_lengths.iter().any(fits) {
                return Err(mismatch(&format!("{stored}{SCALE_SUFFIX}"), &s.shape, &[rows, padded / quant::BLOCK]));
            }
            let values = self.data(q).iter().map(|b| *b as i8).collect();
            let scales = quant::tensor_to_f32(&stored, Dtype::F32, self.data(s))?;
            return QuantizedMatrix::from_parts(values, scales, rows, cols).map(|m| Some(StoredMatrix::Int8(m)));
        }
        Ok(None)
    }

    /// `name` as stored (int8 stays int8), or a fresh head where allowed; every value finite. Backends
    /// that compute on int8 directly (WebGPU) load through this, the CPU path through `VarBuilder`; both
    /// see the same tensors.
    pub fn matrix(&self, name: &str, dims: &[usize], init: Init) -> Result<StoredMatrix> {
        let found = match self.lookup(name, dims)? {
            Some(found) => found,
            None => match self.fresh_head(name, &Shape::from(dims.to_vec()), init)? {
                Some(values) => StoredMatrix::F32(values),
                None => return Err(missing(name)),
            },
        };
        // An int8 block's largest value is 127 times its scale.
        let (values, largest_per_unit) = match &found {
            StoredMatrix::F32(values) => (values, 1.0),
            StoredMatrix::Int8(m) => (&m.scales, 127.0),
        };
        if let Some(i) = values.iter().position(|v| !v.is_finite() || v.abs() * largest_per_unit > MAX_WEIGHT_MAGNITUDE)
        {
            let what = if values[i].is_finite() { "an out-of-range" } else { "a non-finite" };
            return Err(Error::Weights(format!(
                "tensor {name} holds {what} value ({:e}) at index {i} (|w| <= {MAX_WEIGHT_MAGNITUDE:e} is \
                 accepted; a trained BERT's stay below 100): the file is corrupt",
                values[i] * largest_per_unit
            )));
        }
        Ok(found)
    }

    /// `name` as f32 values (int8 dequantized), with the checks of [`WeightStore::matrix`].
    pub fn tensor_f32(&self, name: &str, dims: &[usize], init: Init) -> Result<Vec<f32>> {
        Ok(match self.matrix(name, dims, init)? {
            StoredMatrix::F32(values) => values,
            StoredMatrix::Int8(m) => m.dequantize(),
        })
    }

    fn fresh_head(&self, name: &str, shape: &Shape, init: Init) -> Result<Option<Vec<f32>>> {
        let HeadInit::RandomIfMissing { seed } = self.head else { return Ok(None) };
        if !name.starts_with("classifier.") {
            return Ok(None);
        }
        self.created_head.store(true, Ordering::Relaxed);
        let n = shape.elem_count();
        Ok(Some(match init {
            Init::Randn { mean, stdev } => {
                let seed = seed
                    ^ name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                let normal = Normal::new(mean as f32, stdev as f32).map_err(|e| Error::Weights(e.to_string()))?;
                (0..n).map(|_| normal.sample(&mut rng)).collect()
            }
            Init::Const(c) => vec![c as f32; n],
            other => return Err(Error::Weights(format!("unsupported init {other:?} for {name}"))),
        }))
    }
}

/// The largest |value| a weight may hold. Trained BERTs stay far below it (all-MiniLM-L6-v2's largest is
/// 7.9, bert-base's under 30), and below it every activation of any config [`crate::BertConfig`] accepts
/// stays inside f32's range (LayerNorm rescales each layer), so a model that loads cannot compute
/// infinities. Found by fuzzing: finite values near 1e35 loaded, then every `classify` failed.
pub const MAX_WEIGHT_MAGNITUDE: f32 = 1e4;

/// The storage type of the linear weights in a safetensors file, read from its header alone (no copy of
/// the tensor data).
pub fn stored_dtype(bytes: &[u8]) -> Result<WeightDtype> {
    let (_, metadata) =
        SafeTensors::read_metadata(bytes).map_err(|e| Error::Weights(format!("not a valid safetensors file: {e}")))?;
    Ok(dtype_of(metadata.tensors().iter().map(|(name, info)| (name.as_str(), info.dtype))))
}

fn dtype_of<'a>(tensors: impl Iterator<Item = (&'a str, Dtype)>) -> WeightDtype {
    let mut wide = None;
    for (name, dtype) in tensors {
        if name.ends_with(Q_SUFFIX) {
            return WeightDtype::Int8;
        }
        if matches!(dtype, Dtype::F16 | Dtype::BF16) {
            wide.get_or_insert(dtype);
        }
    }
    match wide {
        Some(Dtype::F16) => WeightDtype::F16,
        Some(_) => WeightDtype::Bf16,
        None => WeightDtype::F32,
    }
}

/// The error for a tensor the file lacks, with a hint for the common case of a bare checkpoint.
fn missing(name: &str) -> Error {
    let hint = if name.starts_with("classifier.") {
        " (a bare BERT checkpoint has no classifier head: fine-tune it, or ask for an untrained random head)"
    } else {
        ""
    };
    Error::Weights(format!("tensor {name} is missing{hint}"))
}

fn mismatch(name: &str, found: &[usize], expected: &[usize]) -> Error {
    Error::Weights(format!(
        "tensor {name} has shape {found:?} but config.json implies {expected:?}: the config and the weights do not belong together"
    ))
}

/// candle's error for a store failure, without repeating our own "invalid weights" prefix.
fn to_candle(err: Error) -> candle_core::Error {
    match err {
        Error::Weights(message) => candle_core::Error::Msg(message),
        other => candle_core::Error::Msg(other.to_string()),
    }
}

impl candle_nn::var_builder::SimpleBackend for WeightStore {
    fn get(&self, shape: Shape, name: &str, init: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let values = self.tensor_f32(name, shape.dims(), init).map_err(to_candle)?;
        Tensor::from_vec(values, shape, dev)?.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        for stored in Self::candidates(name) {
            if let Some(entry) = self.entries.get(&stored) {
                let shape = Shape::from(entry.shape.clone());
                return self.get(shape, name, Init::Const(0.), dtype, dev);
            }
        }
        Err(candle_core::Error::Msg(format!("tensor {name} is missing")))
    }

    fn contains_tensor(&self, name: &str) -> bool {
        Self::candidates(name)
            .iter()
            .any(|n| self.entries.contains_key(n) || self.entries.contains_key(&format!("{n}{Q_SUFFIX}")))
    }
}

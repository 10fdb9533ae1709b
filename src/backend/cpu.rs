//! The CPU backend. int8 files run on the int8 engine ([`super::int8`]: weights stay int8, activations
//! are quantized per token, integer matrix multiplies with SIMD); f32/f16/bf16 files run the model of
//! [`crate::model`] on candle-core's CPU device, which is also the reference the int8 engine is tested
//! against (int8 files there are dequantized at load: the format's reference semantics).

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::int8::Int8Engine;
use super::KernelProfile;
use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::model::{BertClassifier, Mode};
use crate::tokenize::EncodedBatch;
use crate::weights::{WeightDtype, WeightStore};

/// Which CPU engine runs a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuEngine {
    /// The int8 engine for int8 files, the reference for float files.
    #[default]
    Auto,
    /// The int8 engine (float files are quantized to the int8 format at load).
    Int8,
    /// candle in f32 (int8 files dequantized): the reference semantics, slower.
    Reference,
}

impl std::str::FromStr for CpuEngine {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "int8" => Ok(Self::Int8),
            "reference" => Ok(Self::Reference),
            other => Err(Error::Input(format!("unknown CPU engine {other:?}: expected auto, int8 or reference"))),
        }
    }
}

/// A loaded model ready to run on the CPU.
pub enum CpuBackend {
    Int8(Box<Int8Engine>),
    Reference { model: BertClassifier, device: Device },
}

impl CpuBackend {
    /// Builds the model from a weight store on the engine `engine` picks for `dtype` (the file's); shape
    /// and name mismatches surface here. Also says whether the classifier head was freshly initialised
    /// (untrained).
    pub fn load(
        store: WeightStore,
        dtype: WeightDtype,
        config: &BertConfig,
        num_labels: usize,
        engine: CpuEngine,
    ) -> Result<(Self, bool)> {
        let created_head = store.created_head_flag();
        let backend = match (engine, dtype) {
            (CpuEngine::Int8, _) | (CpuEngine::Auto, WeightDtype::Int8) => {
                CpuBackend::Int8(Box::new(Int8Engine::load(&store, config, num_labels)?))
            }
            _ => {
                let device = Device::Cpu;
                let model = BertClassifier::load(store.into_var_builder(&device), config, num_labels)
                    .map_err(|e| Error::Weights(e.to_string()))?;
                CpuBackend::Reference { model, device }
            }
        };
        Ok((backend, created_head.load(std::sync::atomic::Ordering::Relaxed)))
    }

    /// What computes the logits, for `info()`: `"int8 <instruction set>"` or `"f32 reference"`.
    pub fn kernel(&self) -> String {
        match self {
            CpuBackend::Int8(engine) => format!("int8 {}", engine.isa().name()),
            CpuBackend::Reference { .. } => "f32 reference".into(),
        }
    }

    /// Why [`Self::kernel`]'s instruction set was chosen, where a race at load chose it.
    pub fn kernel_reason(&self) -> Option<String> {
        match self {
            CpuBackend::Int8(engine) => engine.isa_reason().map(str::to_string),
            CpuBackend::Reference { .. } => None,
        }
    }

    /// The time of each operation of one pass over `batch`, with its logits; only the int8 engine times
    /// its operations.
    pub fn profile(&self, batch: &EncodedBatch) -> Result<Option<KernelProfile>> {
        match self {
            CpuBackend::Int8(engine) => engine.profile(batch).map(Some),
            CpuBackend::Reference { .. } => Ok(None),
        }
    }

    /// Logits, one row per text.
    pub fn logits(&self, batch: &EncodedBatch) -> Result<Vec<Vec<f32>>> {
        if batch.batch_size == 0 {
            return Ok(Vec::new());
        }
        let (model, device) = match self {
            CpuBackend::Int8(engine) => return engine.logits(batch),
            CpuBackend::Reference { model, device } => (model, device),
        };
        let shape = (batch.batch_size, batch.seq_len);
        let ids = Tensor::from_slice(&batch.input_ids, shape, device).map_err(Error::cpu)?;
        let types = Tensor::from_slice(&batch.type_ids, shape, device).map_err(Error::cpu)?;
        let mask = Tensor::from_slice(&batch.attention_mask, shape, device).map_err(Error::cpu)?;
        let logits = model.forward(&ids, &types, &mask, Mode::Infer).map_err(Error::cpu)?;
        let logits = logits.to_vec2::<f32>().map_err(Error::cpu)?;
        if logits.iter().flatten().any(|l| !l.is_finite()) {
            return Err(Error::cpu("the model produced non-finite logits: its weights are corrupt or out of range"));
        }
        Ok(logits)
    }
}

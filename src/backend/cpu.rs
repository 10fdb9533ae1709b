//! The CPU backend: the model of [`crate::model`] on candle-core's CPU device (gemm with AVX/NEON natively,
//! `simd128` in the browser). Weights are f32 in memory; int8 files are dequantized at load, which is
//! exactly the format's reference semantics (int8 weights, f32 activations, f32 accumulation).

use candle_core::{Device, Tensor};

use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::model::{BertClassifier, Mode};
use crate::tokenize::EncodedBatch;
use crate::weights::WeightStore;

/// A loaded model ready to run on the CPU.
pub struct CpuBackend {
    model: BertClassifier,
    device: Device,
}

impl CpuBackend {
    /// Builds the model from a weight store; shape and name mismatches surface here. Also says whether
    /// the classifier head was freshly initialised (untrained).
    pub fn load(store: WeightStore, config: &BertConfig, num_labels: usize) -> Result<(Self, bool)> {
        let device = Device::Cpu;
        let created_head = store.created_head_flag();
        let model = BertClassifier::load(store.into_var_builder(&device), config, num_labels)
            .map_err(|e| Error::Weights(e.to_string()))?;
        Ok((Self { model, device }, created_head.load(std::sync::atomic::Ordering::Relaxed)))
    }

    /// Logits, one row per text.
    pub fn logits(&self, batch: &EncodedBatch) -> Result<Vec<Vec<f32>>> {
        if batch.batch_size == 0 {
            return Ok(Vec::new());
        }
        let shape = (batch.batch_size, batch.seq_len);
        let ids = Tensor::from_slice(&batch.input_ids, shape, &self.device).map_err(Error::cpu)?;
        let types = Tensor::from_slice(&batch.type_ids, shape, &self.device).map_err(Error::cpu)?;
        let mask = Tensor::from_slice(&batch.attention_mask, shape, &self.device).map_err(Error::cpu)?;
        let logits = self.model.forward(&ids, &types, &mask, Mode::Infer).map_err(Error::cpu)?;
        let logits = logits.to_vec2::<f32>().map_err(Error::cpu)?;
        if logits.iter().flatten().any(|l| !l.is_finite()) {
            return Err(Error::cpu("the model produced non-finite logits: its weights are corrupt or out of range"));
        }
        Ok(logits)
    }
}

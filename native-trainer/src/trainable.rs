//! The core crate's BERT as a trainable model: its parameters live in a candle `VarMap`, initialised from
//! a Hugging Face checkpoint (a missing classifier head gets HF's initialisation from the seed).
//!
//! Mixed precision ([`Precision::Bf16`]) works like PyTorch's autocast with f32 master weights: the
//! variables stay f32 (and so do the optimizer's moments), each training forward pass computes with bf16
//! casts of them, and the casts are part of the graph, so the gradients arrive in f32. LayerNorm,
//! softmax and the loss run in f32 inside the pass.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use tweetguard::model::{BertClassifier, Mode};
use tweetguard::tokenize::EncodedBatch;
use tweetguard::weights::{HeadInit, WeightStore};
use tweetguard::BertConfig;

/// The dtype of a training step's math.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    F32,
    /// bf16 matrix products and activations over f32 master weights (autocast); meant for CUDA.
    Bf16,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    fn compute_dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
        }
    }
}

/// A BERT classifier whose parameters are trainable variables.
pub struct Trainable {
    pub varmap: VarMap,
    pub model: BertClassifier,
    pub config: BertConfig,
    pub device: Device,
    /// The dtype of training forward passes; inference ([`Mode::Infer`]) always runs in f32.
    pub precision: Precision,
}

impl Trainable {
    /// The model with freshly initialised variables (HF's initialisation, unseeded), as benchmarks use it
    /// and as [`Self::from_checkpoint`] starts before overwriting them.
    pub fn random(config: BertConfig, device: Device) -> Result<Self> {
        let num_labels = config.labels()?.len();
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let model = BertClassifier::load(vb, &config, num_labels).context("building the model")?;
        Ok(Self { varmap, model, config, device, precision: Precision::F32 })
    }

    /// Builds the model with fresh variables, then copies every tensor the checkpoint has into them.
    pub fn from_checkpoint(config: BertConfig, weights: Vec<u8>, seed: u64, device: Device) -> Result<Self> {
        let this = Self::random(config, device)?;
        let (config, device) = (&this.config, &this.device);
        let store = WeightStore::from_bytes(weights, HeadInit::RandomIfMissing { seed })?;
        for (name, var) in this.varmap.data().lock().expect("varmap lock").iter() {
            let init = if name.starts_with("classifier.") && name.ends_with(".weight") {
                Init::Randn { mean: 0.0, stdev: config.initializer_range }
            } else {
                Init::Const(0.0)
            };
            let value = store
                .get(var.shape().clone(), name, init, DType::F32, device)
                .with_context(|| format!("loading {name}"))?;
            var.set(&value)?;
        }
        Ok(this)
    }

    /// Every trainable variable with its canonical name, sorted by name.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let mut vars: Vec<_> =
            self.varmap.data().lock().expect("varmap lock").iter().map(|(n, v)| (n.clone(), v.clone())).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    /// Input tensors of a padded batch on the model's device.
    pub fn inputs(&self, batch: &EncodedBatch) -> Result<[Tensor; 3]> {
        let shape = (batch.batch_size, batch.seq_len);
        Ok([
            Tensor::from_slice(&batch.input_ids, shape, &self.device)?,
            Tensor::from_slice(&batch.type_ids, shape, &self.device)?,
            Tensor::from_slice(&batch.attention_mask, shape, &self.device)?,
        ])
    }

    /// The same model computing in `precision` when training.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// Logits `[batch, labels]`, f32 whatever the precision.
    pub fn forward(&self, batch: &EncodedBatch, mode: Mode) -> Result<Tensor> {
        let [ids, types, mask] = self.inputs(batch)?;
        let dtype = self.precision.compute_dtype();
        if mode == Mode::Infer || dtype == DType::F32 {
            return Ok(self.model.forward(&ids, &types, &mask, mode)?);
        }
        // Built per pass: the casts must see the variables' current values.
        let casts = Autocast { vars: Arc::new(self.named_vars().into_iter().collect()) };
        let vb = VarBuilder::from_backend(Box::new(casts), dtype, self.device.clone());
        let model = BertClassifier::load(vb, &self.config, self.model.num_labels())?;
        Ok(model.forward(&ids, &types, &mask, mode)?.to_dtype(DType::F32)?)
    }

    /// The weights as an f32 safetensors file with HF `BertForSequenceClassification` names.
    pub fn hf_safetensors(&self) -> Result<Vec<u8>> {
        let tensors: HashMap<String, Tensor> = self
            .named_vars()
            .into_iter()
            .map(|(name, var)| {
                let hf = if name.starts_with("classifier.") { name } else { format!("bert.{name}") };
                Ok((hf, var.as_tensor().to_device(&Device::Cpu)?.to_dtype(DType::F32)?))
            })
            .collect::<Result<_>>()?;
        let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
        Ok(safetensors::serialize(&tensors, Some(metadata))?)
    }
}

/// Hands out the variables cast to the requested dtype, as graph operations.
struct Autocast {
    vars: Arc<HashMap<String, Var>>,
}

impl SimpleBackend for Autocast {
    fn get(&self, shape: Shape, name: &str, _: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let tensor = self.get_unchecked(name, dtype, dev)?;
        if tensor.shape() != &shape {
            candle_core::bail!("{name}: the variable has shape {:?}, the model asks for {shape:?}", tensor.shape());
        }
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, _: &Device) -> candle_core::Result<Tensor> {
        match self.vars.get(name) {
            Some(var) => var.as_tensor().to_dtype(dtype),
            None => candle_core::bail!("{name}: no such variable"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model_dir::ModelFiles;
    use tweetguard::model::seed_dropout;
    use tweetguard::tokenize::BertTokenizer;

    /// Training-mode logits (dropout on) repeat exactly after reseeding, and differ with another seed.
    #[test]
    fn seeded_dropout_is_reproducible() {
        let (model, tokenizer) = tiny_trainable();
        let batch = tokenizer.encode_batch(&["a bot wrote this", "i wrote this"]).unwrap();
        let logits = |seed| {
            seed_dropout(&Device::Cpu, seed).unwrap();
            model.forward(&batch, Mode::Train).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        assert_eq!(logits(7), logits(7));
        assert_ne!(logits(7), logits(8));
        assert_ne!(
            logits(7),
            model.forward(&batch, Mode::Infer).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
    }

    fn tiny_trainable() -> (Trainable, BertTokenizer) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny");
        let files = ModelFiles::read_for_training(&dir).unwrap();
        let config = tweetguard::BertConfig::from_json(&files.config).unwrap();
        assert_eq!(files.weights_name, "model.safetensors");
        let model = Trainable::from_checkpoint(config, files.weights.clone(), 0, Device::Cpu).unwrap();
        (model, BertTokenizer::from_json(&files.tokenizer, 32).unwrap())
    }

    const TEXTS: [&str; 3] = ["a bot wrote this", "i wrote this myself, honestly", "hi"];

    /// Every trainable tensor receives a non-zero, finite f32 gradient (candle's fused LayerNorm would
    /// block them), in f32 and through the bf16 casts of mixed precision.
    #[test]
    fn every_parameter_gets_a_gradient() {
        let batch = tiny_trainable().1.encode_batch(&TEXTS).unwrap();
        for precision in [Precision::F32, Precision::Bf16] {
            let model = tiny_trainable().0.with_precision(precision);
            let logits = model.forward(&batch, Mode::Train).unwrap();
            assert_eq!(logits.dtype(), candle_core::DType::F32);
            let loss =
                candle_nn::loss::cross_entropy(&logits, &Tensor::new(&[1u32, 0, 1], &Device::Cpu).unwrap()).unwrap();
            let grads = loss.backward().unwrap();
            let named = model.named_vars();
            assert_eq!(named.len(), 5 + 16 * 2 + 4, "embeddings 5, 16 per layer, pooler 2, classifier 2");
            for (name, var) in &named {
                let g = grads.get(var).unwrap_or_else(|| panic!("{precision:?}: {name} has no gradient"));
                assert_eq!(g.dtype(), candle_core::DType::F32, "{precision:?}: {name}");
                let norm = g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
                assert!(norm > 0.0 && norm.is_finite(), "{precision:?}: {name}: gradient norm {norm}");
            }
        }
    }

    /// Mixed precision computes the f32 model's function: with the same dropout masks, bf16 training
    /// logits are within bf16 rounding (8 significant bits through 2 layers) of f32's, and the loss's
    /// gradients point the same way (cosine > 0.99 over all parameters).
    #[test]
    fn bf16_steps_follow_f32() {
        let batch = tiny_trainable().1.encode_batch(&TEXTS).unwrap();
        let labels = Tensor::new(&[1u32, 0, 1], &Device::Cpu).unwrap();
        let run = |precision| {
            let model = tiny_trainable().0.with_precision(precision);
            seed_dropout(&Device::Cpu, 5).unwrap();
            let logits = model.forward(&batch, Mode::Train).unwrap();
            let loss = candle_nn::loss::cross_entropy(&logits, &labels).unwrap();
            let grads = loss.backward().unwrap();
            let flat: Vec<f32> = model
                .named_vars()
                .iter()
                .flat_map(|(_, v)| grads.get(v).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap())
                .collect();
            (logits.flatten_all().unwrap().to_vec1::<f32>().unwrap(), flat)
        };
        let (f32_logits, f32_grads) = run(Precision::F32);
        let (bf16_logits, bf16_grads) = run(Precision::Bf16);
        assert_ne!(f32_logits, bf16_logits, "the bf16 pass must round somewhere");
        for (a, b) in f32_logits.iter().zip(&bf16_logits) {
            assert!((a - b).abs() <= 0.02 + 0.02 * a.abs(), "f32 {a} vs bf16 {b}");
        }
        let dot: f64 = f32_grads.iter().zip(&bf16_grads).map(|(a, b)| *a as f64 * *b as f64).sum();
        let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let cosine = dot / (norm(&f32_grads) * norm(&bf16_grads));
        assert!(cosine > 0.99, "gradient cosine {cosine}");
    }
}

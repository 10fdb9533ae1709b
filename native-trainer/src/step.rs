//! One optimisation step and what it needs, shared by `train` and `bench`: the learning-rate schedule,
//! AdamW over the model's variables (weight decay except on biases and LayerNorm), the step itself
//! (forward with dropout, cross-entropy, backward, clipping, update), length-bucketed batches, and the
//! model's validation logits.

use anyhow::{bail, Result};
use candle_core::{Device, Tensor};
use tweetguard::model::Mode;
use tweetguard::tokenize::{batches_by_length, BertTokenizer, EncodedBatch};

use crate::data::Example;
use crate::optim::{clip_factor, grad_norm, AdamW};
use crate::trainable::Trainable;

/// Learning rate at `step` of `total`: linear warmup over `warmup` steps, then linear decay to 0.
pub fn lr_at(step: usize, total: usize, warmup: usize, peak: f64) -> f64 {
    if step < warmup {
        peak * (step + 1) as f64 / warmup as f64
    } else {
        peak * (total - step) as f64 / (total - warmup).max(1) as f64
    }
}

/// Biases and LayerNorm parameters are not decayed (as in HF examples).
fn decays(name: &str) -> bool {
    !(name.ends_with(".bias") || name.contains("LayerNorm"))
}

/// The learning rate's factor for parameter `name` of a model with `layers` encoder layers under
/// layer-wise decay `decay`: 1 for the pooler, the classifier and the top layer, `decay` per layer below
/// it, and `decay^layers` for the embeddings, so the layers that hold general language change least.
pub fn layer_lr_scale(name: &str, layers: usize, decay: f64) -> f64 {
    if let Some(rest) = name.split("encoder.layer.").nth(1) {
        let layer = rest.split('.').next().and_then(|i| i.parse::<usize>().ok()).unwrap_or(layers);
        decay.powi(layers.saturating_sub(layer + 1) as i32)
    } else if name.contains("embeddings.") {
        decay.powi(layers as i32)
    } else {
        1.0
    }
}

/// AdamW over every variable of `model`, decaying the weights that [`decays`] names, with a weight
/// average of decay `ema_decay` and layer-wise learning-rate decay `layer_lr_decay` where given.
pub fn optimizer(
    model: &Trainable,
    weight_decay: f64,
    ema_decay: Option<f64>,
    layer_lr_decay: Option<f64>,
) -> Result<AdamW> {
    let mut optimizer = AdamW::new(model.named_vars(), |name| if decays(name) { weight_decay } else { 0.0 })?;
    if let Some(decay) = layer_lr_decay {
        if !(decay > 0.0 && decay <= 1.0) {
            bail!("--layer-lr-decay must be in (0, 1], got {decay}");
        }
        let layers = model.config.num_hidden_layers;
        optimizer = optimizer.with_lr_scales(|name| layer_lr_scale(name, layers, decay))?;
    }
    match ema_decay {
        Some(decay) => optimizer.with_weight_average(decay),
        None => Ok(optimizer),
    }
}

/// One optimisation step on a padded batch: forward with dropout, cross-entropy, backward, gradient
/// clipping to `max_grad_norm`, AdamW at `lr`. Returns the batch's mean loss; a non-finite loss is an
/// error and leaves the weights untouched.
pub fn train_step(
    model: &Trainable,
    optimizer: &mut AdamW,
    batch: &EncodedBatch,
    labels: &[u32],
    lr: f64,
    max_grad_norm: f64,
) -> Result<f64> {
    let labels = Tensor::new(labels, &model.device)?;
    let loss = candle_nn::loss::cross_entropy(&model.forward(batch, Mode::Train)?, &labels)?;
    let value = loss.to_scalar::<f32>()? as f64;
    if !value.is_finite() {
        bail!("the loss became {value}: lower --learning-rate or check the data");
    }
    let grads = loss.backward()?;
    let factor = clip_factor(grad_norm(&grads, optimizer.vars())?, max_grad_norm);
    optimizer.step(&grads, lr, factor)?;
    Ok(value)
}

/// Batches of row indices with little padding: the shuffled rows are cut into pools of 50 batches, each
/// pool is sorted by length and cut into batches, and the batches are shuffled (seeded).
pub fn bucketed_batches(encodings: &[tweetguard::tokenize::Encoding], batch_size: usize, seed: u64) -> Vec<Vec<usize>> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let pool_size = batch_size * 50;
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for (p, pool) in encodings.chunks(pool_size).enumerate() {
        let offset = p * pool_size;
        batches.extend(
            batches_by_length(pool, batch_size).into_iter().map(|b| b.into_iter().map(|i| i + offset).collect()),
        );
    }
    batches.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed));
    batches
}

/// Token ids of every example, computed once.
pub fn encode_all(encoder: &BertTokenizer, examples: &[&Example]) -> Result<Vec<tweetguard::tokenize::Encoding>> {
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    Ok(encoder.encode(&texts)?)
}

/// f32 logits of `examples` with the model in inference mode (batched by length, returned in order).
pub fn predict_logits(
    model: &Trainable,
    encoder: &BertTokenizer,
    examples: &[&Example],
    batch_size: usize,
) -> Result<Vec<Vec<f32>>> {
    let encodings = encode_all(encoder, examples)?;
    let mut logits = vec![Vec::new(); examples.len()];
    for chunk in batches_by_length(&encodings, batch_size) {
        let batch = encoder.pad(&chunk.iter().map(|&i| &encodings[i]).collect::<Vec<_>>());
        let rows = model.forward(&batch, Mode::Infer)?.to_device(&Device::Cpu)?.to_vec2::<f32>()?;
        for (&i, row) in chunk.iter().zip(rows) {
            logits[i] = row;
        }
    }
    Ok(logits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        assert!((lr_at(0, 100, 10, 1.0) - 0.1).abs() < 1e-12);
        assert!((lr_at(9, 100, 10, 1.0) - 1.0).abs() < 1e-12);
        assert!((lr_at(10, 100, 10, 1.0) - 1.0).abs() < 1e-12);
        assert!((lr_at(99, 100, 10, 1.0) - 1.0 / 90.0).abs() < 1e-12);
        assert!(lr_at(55, 100, 0, 1.0) < lr_at(54, 100, 0, 1.0));
    }

    #[test]
    fn layer_wise_learning_rates_fall_towards_the_embeddings() {
        let scale = |name| layer_lr_scale(name, 6, 0.8);
        assert_eq!(scale("classifier.weight"), 1.0);
        assert_eq!(scale("bert.pooler.dense.weight"), 1.0);
        assert_eq!(scale("encoder.layer.5.output.dense.weight"), 1.0);
        assert!((scale("bert.encoder.layer.4.attention.self.query.bias") - 0.8).abs() < 1e-12);
        assert!((scale("encoder.layer.0.intermediate.dense.weight") - 0.8f64.powi(5)).abs() < 1e-12);
        assert!((scale("embeddings.word_embeddings.weight") - 0.8f64.powi(6)).abs() < 1e-12);
        assert_eq!(layer_lr_scale("encoder.layer.3.output.dense.weight", 6, 1.0), 1.0);
    }

    #[test]
    fn no_decay_on_biases_and_layer_norm() {
        assert!(decays("encoder.layer.0.attention.self.query.weight"));
        assert!(!decays("encoder.layer.0.attention.self.query.bias"));
        assert!(!decays("embeddings.LayerNorm.weight"));
    }

    /// The build's candle-core is third_party/candle-core (third_party/README.md): its backward stores the
    /// first gradient reaching a node as it is instead of adding it into zeros. The sign of a zero tells the
    /// two apart: `d(x * -0.0)/dx` is `-0.0` stored as it is, `+0.0` after `0.0 + -0.0`.
    #[test]
    fn backward_keeps_the_first_gradient_as_it_is() {
        let x = candle_core::Var::new(&[3f32], &Device::Cpu).unwrap();
        let minus_zero = Tensor::new(&[-0f32], &Device::Cpu).unwrap();
        let grads = x.as_tensor().mul(&minus_zero).unwrap().sum_all().unwrap().backward().unwrap();
        let grad = grads.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap()[0];
        assert!(grad == 0.0 && grad.is_sign_negative(), "unpatched candle-core in the build (gradient {grad:?})");
    }

    /// Where gradients meet (a value used several times, through views and a matrix multiply), the patched
    /// backward still adds them all: `y = sum(x W + 2 x + x)`, the middle `x` through two transposes, gives
    /// `dy/dx[i][k] = sum over j of W[k][j] + 3` and `dy/dW[k][j] = sum over i of x[i][k]`.
    #[test]
    fn backward_adds_every_gradient_that_meets_at_a_node() {
        let device = Device::Cpu;
        let x = candle_core::Var::new(&[[1f32, 2.0], [3.0, 4.0]], &device).unwrap();
        let w = candle_core::Var::new(&[[0.5f32, -1.0], [2.0, 0.25]], &device).unwrap();
        let (xt, wt) = (x.as_tensor(), w.as_tensor());
        let product = xt.matmul(wt).unwrap();
        let twice = (xt.t().unwrap().t().unwrap() * 2.0).unwrap();
        let y = ((product + twice).unwrap() + xt).unwrap().sum_all().unwrap();
        let grads = y.backward().unwrap();
        let dx = grads.get(xt).unwrap().to_vec2::<f32>().unwrap();
        let dw = grads.get(wt).unwrap().to_vec2::<f32>().unwrap();
        // Row sums of W: -0.5 and 2.25; plus 2 + 1.
        assert_eq!(dx, vec![vec![2.5, 5.25], vec![2.5, 5.25]]);
        // Column sums of x, for every column of W.
        assert_eq!(dw, vec![vec![4.0, 4.0], vec![6.0, 6.0]]);
    }
}

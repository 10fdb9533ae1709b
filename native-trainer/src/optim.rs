//! The optimiser: AdamW with decoupled weight decay (the update of PyTorch's `torch.optim.AdamW` and
//! candle-nn's `AdamW`), a weight decay per parameter, and global-norm gradient clipping.
//!
//! candle-nn's `AdamW` keeps its moments and step count private, so a checkpoint could not hold them and a
//! resumed run would restart with cold moments. This one has the same update and saves and restores its
//! state as a safetensors file: `exp_avg.<name>` and `exp_avg_sq.<name>` (PyTorch's names for the first and
//! second moments, f32) with the step count in the metadata.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};

/// Metadata key of the step count in the saved state.
const STEP_KEY: &str = "step";

/// One parameter with its moments.
struct Param {
    name: String,
    var: Var,
    weight_decay: f64,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

/// AdamW over named variables.
pub struct AdamW {
    params: Vec<Param>,
    steps_taken: usize,
    beta1: f64,
    beta2: f64,
    eps: f64,
}

impl AdamW {
    /// Zero moments for every variable; `weight_decay(name)` gives each parameter's decay. Betas and
    /// epsilon are PyTorch's defaults (0.9, 0.999, 1e-8).
    pub fn new(named: Vec<(String, Var)>, weight_decay: impl Fn(&str) -> f64) -> Result<Self> {
        let params = named
            .into_iter()
            .map(|(name, var)| {
                let zeros = var.as_tensor().zeros_like()?;
                Ok(Param { weight_decay: weight_decay(&name), name, var, exp_avg: zeros.clone(), exp_avg_sq: zeros })
            })
            .collect::<Result<_>>()?;
        Ok(Self { params, steps_taken: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8 })
    }

    /// The optimised variables.
    pub fn vars(&self) -> impl Iterator<Item = &Var> + Clone {
        self.params.iter().map(|p| &p.var)
    }

    /// Updates every variable that has a gradient, at learning rate `lr`.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        self.steps_taken += 1;
        let t = self.steps_taken as i32;
        let (scale_m, scale_v) = (1.0 / (1.0 - self.beta1.powi(t)), 1.0 / (1.0 - self.beta2.powi(t)));
        for p in &mut self.params {
            let Some(g) = grads.get(&p.var) else { continue };
            p.exp_avg = ((&p.exp_avg * self.beta1)? + (g * (1.0 - self.beta1))?)?;
            p.exp_avg_sq = ((&p.exp_avg_sq * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
            let direction = ((&p.exp_avg * scale_m)? / ((&p.exp_avg_sq * scale_v)?.sqrt()? + self.eps)?)?;
            let decayed = (p.var.as_tensor() * (1.0 - lr * p.weight_decay))?;
            p.var.set(&(decayed - (direction * lr)?)?)?;
        }
        Ok(())
    }

    /// The moments and step count as a safetensors file (tensors on the CPU, f32).
    pub fn state_safetensors(&self) -> Result<Vec<u8>> {
        let mut tensors = HashMap::new();
        for p in &self.params {
            tensors.insert(format!("exp_avg.{}", p.name), p.exp_avg.to_device(&Device::Cpu)?.to_dtype(DType::F32)?);
            tensors.insert(format!("exp_avg_sq.{}", p.name), p.exp_avg_sq.to_device(&Device::Cpu)?.to_dtype(DType::F32)?);
        }
        let metadata = HashMap::from([(STEP_KEY.to_string(), self.steps_taken.to_string())]);
        Ok(safetensors::serialize(&tensors, Some(metadata))?)
    }

    /// Restores what [`Self::state_safetensors`] saved; every parameter must be there with its shape.
    pub fn load_state(&mut self, bytes: &[u8]) -> Result<()> {
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes).context("reading the optimizer state")?;
        let steps = header.metadata().as_ref().and_then(|m| m.get(STEP_KEY)).ok_or_else(|| anyhow!("the optimizer state has no step count"))?;
        let steps_taken: usize = steps.parse().with_context(|| format!("optimizer step count {steps:?}"))?;
        let device = self.params.first().map_or(Device::Cpu, |p| p.var.device().clone());
        let mut saved = candle_core::safetensors::load_buffer(bytes, &device)?;
        for p in &mut self.params {
            for (prefix, slot) in [("exp_avg", &mut p.exp_avg), ("exp_avg_sq", &mut p.exp_avg_sq)] {
                let key = format!("{prefix}.{}", p.name);
                let value = saved.remove(&key).ok_or_else(|| anyhow!("the optimizer state has no {key}"))?;
                if value.shape() != slot.shape() {
                    bail!("the optimizer state's {key} has shape {:?}, the model needs {:?}", value.dims(), slot.dims());
                }
                *slot = value.to_dtype(slot.dtype())?;
            }
        }
        if let Some(extra) = saved.keys().next() {
            bail!("the optimizer state has {extra}, which the model does not have");
        }
        self.steps_taken = steps_taken;
        Ok(())
    }
}

/// Scales gradients so their global L2 norm is at most `max_norm`; returns the norm before clipping.
pub fn clip_grad_norm<'a>(grads: &mut GradStore, vars: impl Iterator<Item = &'a Var> + Clone, max_norm: f64) -> Result<f64> {
    let squares = vars.clone().filter_map(|v| grads.get(v)).map(|g| g.sqr()?.sum_all()).collect::<candle_core::Result<Vec<_>>>()?;
    // One device-to-host read per step, not one per tensor.
    let norm = (Tensor::stack(&squares, 0)?.sum_all()?.to_scalar::<f32>()? as f64).sqrt();
    if norm > max_norm {
        let factor = max_norm / (norm + 1e-6);
        for var in vars {
            if let Some(g) = grads.remove(var) {
                grads.insert(var, (g * factor)?);
            }
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::Optimizer;

    fn quadratic_loss(var: &Var) -> Tensor {
        let target = Tensor::new(&[1f32, -2.0, 0.5], &Device::Cpu).unwrap();
        (var.as_tensor() - target).unwrap().sqr().unwrap().sum_all().unwrap()
    }

    /// Same trajectory as candle-nn's `AdamW`, which this replaces.
    #[test]
    fn matches_candle_adamw() {
        let (ours, theirs) = (Var::new(&[0.3f32, 0.1, -0.4], &Device::Cpu).unwrap(), Var::new(&[0.3f32, 0.1, -0.4], &Device::Cpu).unwrap());
        let mut optimizer = AdamW::new(vec![("w".into(), ours.clone())], |_| 0.01).unwrap();
        let params = candle_nn::ParamsAdamW { lr: 0.05, weight_decay: 0.01, ..Default::default() };
        let mut reference = candle_nn::AdamW::new(vec![theirs.clone()], params).unwrap();
        for _ in 0..20 {
            optimizer.step(&quadratic_loss(&ours).backward().unwrap(), 0.05).unwrap();
            reference.step(&quadratic_loss(&theirs).backward().unwrap()).unwrap();
        }
        let diff = (ours.as_tensor() - theirs.as_tensor()).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-6, "max difference {diff}");
    }

    /// Saving and restoring the state mid-way gives the same trajectory as never stopping.
    #[test]
    fn state_round_trip_continues_the_same_trajectory() {
        let straight = Var::new(&[0.3f32, 0.1, -0.4], &Device::Cpu).unwrap();
        let mut optimizer = AdamW::new(vec![("w".into(), straight.clone())], |_| 0.0).unwrap();
        for _ in 0..3 {
            optimizer.step(&quadratic_loss(&straight).backward().unwrap(), 0.1).unwrap();
        }
        let saved = optimizer.state_safetensors().unwrap();
        let resumed = Var::new(straight.as_tensor().to_vec1::<f32>().unwrap().as_slice(), &Device::Cpu).unwrap();
        let mut restored = AdamW::new(vec![("w".into(), resumed.clone())], |_| 0.0).unwrap();
        restored.load_state(&saved).unwrap();
        for _ in 0..3 {
            optimizer.step(&quadratic_loss(&straight).backward().unwrap(), 0.1).unwrap();
            restored.step(&quadratic_loss(&resumed).backward().unwrap(), 0.1).unwrap();
        }
        assert_eq!(straight.as_tensor().to_vec1::<f32>().unwrap(), resumed.as_tensor().to_vec1::<f32>().unwrap());
        let mut other = AdamW::new(vec![("v".into(), resumed)], |_| 0.0).unwrap();
        assert!(other.load_state(&saved).unwrap_err().to_string().contains("exp_avg.v"));
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let var = Var::new(&[3f32, 4.0], &Device::Cpu).unwrap();
        let mut grads = (var.as_tensor().sqr().unwrap().sum_all().unwrap() * 0.5).unwrap().backward().unwrap();
        let norm = clip_grad_norm(&mut grads, [&var].into_iter(), 1.0).unwrap();
        assert!((norm - 5.0).abs() < 1e-5);
        assert_eq!(grads.get(&var).unwrap().to_vec1::<f32>().unwrap().iter().map(|g| (g * 1e4).round()).collect::<Vec<_>>(), [6000.0, 8000.0]);
    }
}

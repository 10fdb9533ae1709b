//! The optimiser: AdamW with decoupled weight decay (the update of PyTorch's `torch.optim.AdamW` and
//! candle-nn's `AdamW`), a weight decay per parameter, global-norm gradient clipping, and optionally an
//! exponential moving average of the weights (Polyak averaging, as `torch.optim.swa_utils.AveragedModel`
//! with an EMA: `average = decay * average + (1 - decay) * weights` after every step), which the trainer
//! evaluates and exports instead of the last weights.
//!
//! candle-nn's `AdamW` keeps its moments and step count private, so a checkpoint could not hold them and a
//! resumed run would restart with cold moments. This one has the same update and saves and restores its
//! state as a safetensors file: `exp_avg.<name>` and `exp_avg_sq.<name>` (PyTorch's names for the first and
//! second moments, f32), `average.<name>` for the weight average, with the step count in the metadata.
//!
//! On the CPU the state is plain vectors and each parameter is updated in place in one parallel pass
//! (clipping folded in as a factor on the gradient, the average updated in the same pass), instead of a
//! dozen tensor operations that each allocate a copy of the parameter: with MiniLM's 23 M parameters
//! that was a fifth of a training step.

use std::cell::RefCell;
use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, Device, InplaceOp2, Layout, Tensor, Var};
use multiversion::multiversion;
use rayon::prelude::*;

/// Metadata key of the step count in the saved state.
const STEP_KEY: &str = "step";

/// One buffer of per-parameter state: a host vector for CPU parameters (updated in place), a tensor on
/// other devices.
enum Buffer {
    Host(Vec<f32>),
    Device(Tensor),
}

impl Buffer {
    /// A buffer holding `values` for `var`, on the path [`fused_update`] picks for it.
    fn like(var: &Var, values: &Tensor) -> Result<Self> {
        Ok(if fused_update(var) {
            Buffer::Host(values.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?)
        } else {
            Buffer::Device(values.to_device(var.device())?.to_dtype(var.dtype())?)
        })
    }

    /// As an f32 tensor on the CPU with `var`'s shape (for saving).
    fn to_cpu(&self, var: &Var) -> Result<Tensor> {
        Ok(match self {
            Buffer::Host(values) => Tensor::from_slice(values, var.shape(), &Device::Cpu)?,
            Buffer::Device(t) => t.to_device(&Device::Cpu)?.to_dtype(DType::F32)?,
        })
    }

    fn tensor(&self) -> &Tensor {
        match self {
            Buffer::Device(t) => t,
            Buffer::Host(_) => unreachable!("host buffers belong to CPU parameters, updated in place"),
        }
    }
}

/// One parameter with its state. The buffer names are PyTorch's; `average` is the weight average.
struct Param {
    name: String,
    var: Var,
    weight_decay: f64,
    /// Factor on the learning rate (layer-wise decay), 1 by default.
    lr_scale: f64,
    exp_avg: Buffer,
    exp_avg_sq: Buffer,
    average: Option<Buffer>,
}

/// The names of a parameter's saved buffers.
const EXP_AVG: &str = "exp_avg";
const EXP_AVG_SQ: &str = "exp_avg_sq";
const AVERAGE: &str = "average";

impl Param {
    fn new(name: String, var: Var, weight_decay: f64) -> Result<Self> {
        let zeros = var.as_tensor().zeros_like()?;
        Ok(Self {
            exp_avg: Buffer::like(&var, &zeros)?,
            exp_avg_sq: Buffer::like(&var, &zeros)?,
            average: None,
            name,
            var,
            weight_decay,
            lr_scale: 1.0,
        })
    }

    /// The saved buffers by name.
    fn buffers(&self) -> impl Iterator<Item = (&'static str, &Buffer)> {
        [(EXP_AVG, Some(&self.exp_avg)), (EXP_AVG_SQ, Some(&self.exp_avg_sq)), (AVERAGE, self.average.as_ref())]
            .into_iter()
            .filter_map(|(name, buffer)| Some((name, buffer?)))
    }
}

/// Whether a variable is updated by the fused in-place CPU kernel (f32 on the CPU).
fn fused_update(var: &Var) -> bool {
    var.device().is_cpu() && var.dtype() == DType::F32
}

/// Hyper-parameters of one AdamW update.
#[derive(Debug, Clone, Copy)]
struct Update {
    lr: f32,
    weight_decay: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    /// Bias corrections `1 / (1 - beta^t)`.
    scale_m: f32,
    scale_v: f32,
    /// Factor on the gradient (global-norm clipping).
    grad_scale: f32,
    /// Decay of the weight average, when there is one.
    average_decay: f32,
}

/// A CPU parameter's state borrowed for one update: first and second moments, and the weight average.
type HostState<'a> = (&'a mut [f32], &'a mut [f32], Option<&'a mut [f32]>);

/// The in-place update of one CPU parameter from its gradient, with its state borrowed for the call.
struct FusedAdamW<'a> {
    update: Update,
    state: RefCell<HostState<'a>>,
}

impl InplaceOp2 for FusedAdamW<'_> {
    fn name(&self) -> &'static str {
        "fused-adamw"
    }

    fn cpu_fwd(&self, param: &mut CpuStorage, pl: &Layout, grad: &CpuStorage, gl: &Layout) -> candle_core::Result<()> {
        let (CpuStorage::F32(param), CpuStorage::F32(grad)) = (param, grad) else {
            candle_core::bail!("fused AdamW needs f32 parameters and gradients");
        };
        let (Some((p0, p1)), Some((g0, g1))) = (pl.contiguous_offsets(), gl.contiguous_offsets()) else {
            candle_core::bail!("fused AdamW needs contiguous parameters and gradients");
        };
        let (param, grad) = (&mut param[p0..p1], &grad[g0..g1]);
        let mut state = self.state.borrow_mut();
        let (m, v, average) = &mut *state;
        let u = self.update;
        const CHUNK: usize = 1 << 14;
        let chunks = param
            .par_chunks_mut(CHUNK)
            .zip(grad.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)));
        match average {
            None => chunks.for_each(|((p, g), (m, v))| adam_update(&u, p, g, m, v, None)),
            Some(average) => chunks
                .zip(average.par_chunks_mut(CHUNK))
                .for_each(|(((p, g), (m, v)), a)| adam_update(&u, p, g, m, v, Some(a))),
        }
        Ok(())
    }
}

/// One AdamW update of `p` from its gradient `g`, with its moments `m` and `v`, then of the weight
/// `average` if one is kept. Multiversioned: compiled for AVX2 too and chosen at run time on x86-64 (8
/// lanes instead of SSE2's 4); the same bits either way.
#[multiversion(targets("x86_64+avx2+fma"))]
fn adam_update(u: &Update, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], average: Option<&mut [f32]>) {
    let decay = 1.0 - u.lr * u.weight_decay;
    for (((p, g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = g * u.grad_scale;
        *m = *m * u.beta1 + g * (1.0 - u.beta1);
        *v = *v * u.beta2 + g * g * (1.0 - u.beta2);
        let direction = (*m * u.scale_m) / ((*v * u.scale_v).sqrt() + u.eps);
        *p = *p * decay - direction * u.lr;
    }
    if let Some(average) = average {
        for (a, p) in average.iter_mut().zip(p.iter()) {
            *a = *a * u.average_decay + p * (1.0 - u.average_decay);
        }
    }
}

/// AdamW over named variables.
pub struct AdamW {
    params: Vec<Param>,
    steps_taken: usize,
    beta1: f64,
    beta2: f64,
    eps: f64,
    /// Decay of the weight average; `None` keeps none.
    average_decay: Option<f64>,
}

impl AdamW {
    /// Zero moments for every variable; `weight_decay(name)` gives each parameter's decay. Betas and
    /// epsilon are PyTorch's defaults (0.9, 0.999, 1e-8).
    pub fn new(named: Vec<(String, Var)>, weight_decay: impl Fn(&str) -> f64) -> Result<Self> {
        let params = named
            .into_iter()
            .map(|(name, var)| Param::new(name.clone(), var, weight_decay(&name)))
            .collect::<Result<_>>()?;
        Ok(Self { params, steps_taken: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, average_decay: None })
    }

    /// Also keeps an exponential moving average of the weights with this `decay` (in (0, 1)), starting
    /// from their current values.
    pub fn with_weight_average(mut self, decay: f64) -> Result<Self> {
        if !(decay > 0.0 && decay < 1.0) {
            bail!("the weight average's decay must be in (0, 1), got {decay}");
        }
        for p in &mut self.params {
            p.average = Some(Buffer::like(&p.var, p.var.as_tensor())?);
        }
        self.average_decay = Some(decay);
        Ok(self)
    }

    /// Multiplies each parameter's learning rate by `scale(name)` (layer-wise learning-rate decay).
    pub fn with_lr_scales(mut self, scale: impl Fn(&str) -> f64) -> Result<Self> {
        for p in &mut self.params {
            p.lr_scale = scale(&p.name);
            if !(p.lr_scale > 0.0 && p.lr_scale.is_finite()) {
                bail!("{}: learning-rate factor {} must be positive", p.name, p.lr_scale);
            }
        }
        Ok(self)
    }

    /// The optimised variables.
    pub fn vars(&self) -> impl Iterator<Item = &Var> + Clone {
        self.params.iter().map(|p| &p.var)
    }

    /// Updates every variable that has a gradient, at learning rate `lr`, with the gradients multiplied by
    /// `grad_scale` (1, or the factor of [`clip_factor`]); then the weight average, if any.
    pub fn step(&mut self, grads: &GradStore, lr: f64, grad_scale: f64) -> Result<()> {
        self.steps_taken += 1;
        let t = self.steps_taken as i32;
        let (scale_m, scale_v) = (1.0 / (1.0 - self.beta1.powi(t)), 1.0 / (1.0 - self.beta2.powi(t)));
        let average_decay = self.average_decay.unwrap_or(0.0);
        let base_lr = lr;
        for p in &mut self.params {
            let Some(g) = grads.get(&p.var) else { continue };
            let lr = base_lr * p.lr_scale;
            match (&mut p.exp_avg, &mut p.exp_avg_sq, &mut p.average) {
                (Buffer::Host(m), Buffer::Host(v), average) => {
                    let update = Update {
                        lr: lr as f32,
                        weight_decay: p.weight_decay as f32,
                        beta1: self.beta1 as f32,
                        beta2: self.beta2 as f32,
                        eps: self.eps as f32,
                        scale_m: scale_m as f32,
                        scale_v: scale_v as f32,
                        grad_scale: grad_scale as f32,
                        average_decay: average_decay as f32,
                    };
                    let average = match average {
                        Some(Buffer::Host(a)) => Some(a.as_mut_slice()),
                        Some(Buffer::Device(_)) => {
                            bail!("{}: the weight average is not on the parameter's device", p.name)
                        }
                        None => None,
                    };
                    let op = FusedAdamW { update, state: RefCell::new((m.as_mut_slice(), v.as_mut_slice(), average)) };
                    p.var.as_tensor().inplace_op2(&g.contiguous()?, &op)?;
                }
                (m, v, average) => {
                    let g = (g * grad_scale)?;
                    let exp_avg = ((m.tensor() * self.beta1)? + (&g * (1.0 - self.beta1))?)?;
                    let exp_avg_sq = ((v.tensor() * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
                    let direction = ((&exp_avg * scale_m)? / ((&exp_avg_sq * scale_v)?.sqrt()? + self.eps)?)?;
                    let decayed = (p.var.as_tensor() * (1.0 - lr * p.weight_decay))?;
                    p.var.set(&(decayed - (direction * lr)?)?)?;
                    (*m, *v) = (Buffer::Device(exp_avg), Buffer::Device(exp_avg_sq));
                    if let Some(average) = average {
                        let next =
                            ((average.tensor() * average_decay)? + (p.var.as_tensor() * (1.0 - average_decay))?)?;
                        *average = Buffer::Device(next);
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether a weight average is kept.
    pub fn has_weight_average(&self) -> bool {
        self.average_decay.is_some()
    }

    /// Exchanges the variables' values with the weight average: call once to evaluate or export the
    /// average, again to go back to the trained weights. Fails without a weight average.
    pub fn swap_weight_average(&mut self) -> Result<()> {
        for p in &mut self.params {
            let Some(average) = &mut p.average else { bail!("no weight average is kept (--ema-decay)") };
            let current = Buffer::like(&p.var, p.var.as_tensor())?;
            let values = match &*average {
                Buffer::Host(values) => Tensor::from_slice(values, p.var.shape(), p.var.device())?,
                Buffer::Device(t) => t.clone(),
            };
            p.var.set(&values)?;
            *average = current;
        }
        Ok(())
    }

    /// The optimiser state and step count as a safetensors file (tensors on the CPU, f32).
    pub fn state_safetensors(&self) -> Result<Vec<u8>> {
        let mut tensors = HashMap::new();
        for p in &self.params {
            for (prefix, buffer) in p.buffers() {
                tensors.insert(format!("{prefix}.{}", p.name), buffer.to_cpu(&p.var)?);
            }
        }
        let metadata = HashMap::from([(STEP_KEY.to_string(), self.steps_taken.to_string())]);
        Ok(safetensors::serialize(&tensors, Some(metadata))?)
    }

    /// Restores what [`Self::state_safetensors`] saved; every parameter must be there with its shape, and
    /// with a weight average exactly when this optimiser keeps one.
    pub fn load_state(&mut self, bytes: &[u8]) -> Result<()> {
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes).context("reading the optimizer state")?;
        let steps = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(STEP_KEY))
            .ok_or_else(|| anyhow!("the optimizer state has no step count"))?;
        let steps_taken: usize = steps.parse().with_context(|| format!("optimizer step count {steps:?}"))?;
        let mut saved = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)?;
        for p in &mut self.params {
            let mut take = |prefix: &str| -> Result<Buffer> {
                let key = format!("{prefix}.{}", p.name);
                let value = saved.remove(&key).ok_or_else(|| anyhow!("the optimizer state has no {key}"))?;
                if value.shape() != p.var.shape() {
                    bail!(
                        "the optimizer state's {key} has shape {:?}, the model needs {:?}",
                        value.dims(),
                        p.var.dims()
                    );
                }
                Buffer::like(&p.var, &value)
            };
            p.exp_avg = take(EXP_AVG)?;
            p.exp_avg_sq = take(EXP_AVG_SQ)?;
            if p.average.is_some() {
                p.average = Some(take(AVERAGE)?);
            }
        }
        if let Some(extra) = saved.keys().next() {
            bail!("the optimizer state has {extra}, which this run does not keep");
        }
        self.steps_taken = steps_taken;
        Ok(())
    }
}

/// The global L2 norm of the gradients of `vars`, read back once.
pub fn grad_norm<'a>(grads: &GradStore, vars: impl Iterator<Item = &'a Var>) -> Result<f64> {
    let mut host = 0f64;
    let mut squares = Vec::new();
    for g in vars.filter_map(|v| grads.get(v)) {
        if g.device().is_cpu() && g.dtype() == DType::F32 {
            let g = g.contiguous()?;
            let (storage, layout) = g.storage_and_layout();
            let candle_core::Storage::Cpu(CpuStorage::F32(data)) = &*storage else {
                unreachable!("checked: f32 on the CPU")
            };
            let (start, end) = layout.contiguous_offsets().expect("contiguous");
            host += data[start..end]
                .par_chunks(1 << 14)
                .map(|c| c.iter().map(|x| f64::from(x * x)).sum::<f64>())
                .sum::<f64>();
        } else {
            squares.push(g.to_dtype(DType::F32)?.sqr()?.sum_all()?);
        }
    }
    if !squares.is_empty() {
        // One device-to-host read per step, not one per tensor.
        host += f64::from(Tensor::stack(&squares, 0)?.sum_all()?.to_scalar::<f32>()?);
    }
    Ok(host.sqrt())
}

/// The factor that scales gradients of global norm `norm` to at most `max_norm` (PyTorch's
/// `clip_grad_norm_`): 1 when they are within it.
pub fn clip_factor(norm: f64, max_norm: f64) -> f64 {
    if norm > max_norm {
        max_norm / (norm + 1e-6)
    } else {
        1.0
    }
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
        let (ours, theirs) = (
            Var::new(&[0.3f32, 0.1, -0.4], &Device::Cpu).unwrap(),
            Var::new(&[0.3f32, 0.1, -0.4], &Device::Cpu).unwrap(),
        );
        let mut optimizer = AdamW::new(vec![("w".into(), ours.clone())], |_| 0.01).unwrap();
        let params = candle_nn::ParamsAdamW { lr: 0.05, weight_decay: 0.01, ..Default::default() };
        let mut reference = candle_nn::AdamW::new(vec![theirs.clone()], params).unwrap();
        for _ in 0..20 {
            optimizer.step(&quadratic_loss(&ours).backward().unwrap(), 0.05, 1.0).unwrap();
            reference.step(&quadratic_loss(&theirs).backward().unwrap()).unwrap();
        }
        let diff = (ours.as_tensor() - theirs.as_tensor())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        // The fused CPU update computes in f32 throughout (candle's scalars are f64): 20 steps drift by
        // a few f32 ulps.
        assert!(diff < 1e-5, "max difference {diff}");
    }

    /// A learning-rate factor scales that parameter's update and no other: Adam's first step moves each
    /// weight by the learning rate (times its factor) against the gradient's sign, on both update paths.
    #[test]
    fn learning_rate_factors_scale_each_update() {
        let (a, b) = (Var::new(&[1f32], &Device::Cpu).unwrap(), Var::new(&[1f32], &Device::Cpu).unwrap());
        let named = vec![("encoder.layer.0.w".to_string(), a.clone()), ("classifier.w".to_string(), b.clone())];
        let mut optimizer = AdamW::new(named, |_| 0.0)
            .unwrap()
            .with_lr_scales(|name| if name.starts_with("encoder") { 0.25 } else { 1.0 })
            .unwrap();
        let loss = (a.as_tensor() + b.as_tensor()).unwrap().sum_all().unwrap();
        optimizer.step(&loss.backward().unwrap(), 0.1, 1.0).unwrap();
        let value = |v: &Var| v.as_tensor().to_vec1::<f32>().unwrap()[0];
        assert!((value(&a) - 0.975).abs() < 1e-6, "scaled: {}", value(&a));
        assert!((value(&b) - 0.9).abs() < 1e-6, "unscaled: {}", value(&b));
        assert!(AdamW::new(vec![("w".into(), a)], |_| 0.0).unwrap().with_lr_scales(|_| 0.0).is_err());
    }

    /// Saving and restoring the state mid-way gives the same trajectory as never stopping.
    #[test]
    fn state_round_trip_continues_the_same_trajectory() {
        let straight = Var::new(&[0.3f32, 0.1, -0.4], &Device::Cpu).unwrap();
        let mut optimizer = AdamW::new(vec![("w".into(), straight.clone())], |_| 0.0).unwrap();
        for _ in 0..3 {
            optimizer.step(&quadratic_loss(&straight).backward().unwrap(), 0.1, 1.0).unwrap();
        }
        let saved = optimizer.state_safetensors().unwrap();
        let resumed = Var::new(straight.as_tensor().to_vec1::<f32>().unwrap().as_slice(), &Device::Cpu).unwrap();
        let mut restored = AdamW::new(vec![("w".into(), resumed.clone())], |_| 0.0).unwrap();
        restored.load_state(&saved).unwrap();
        for _ in 0..3 {
            optimizer.step(&quadratic_loss(&straight).backward().unwrap(), 0.1, 1.0).unwrap();
            restored.step(&quadratic_loss(&resumed).backward().unwrap(), 0.1, 1.0).unwrap();
        }
        assert_eq!(straight.as_tensor().to_vec1::<f32>().unwrap(), resumed.as_tensor().to_vec1::<f32>().unwrap());
        let mut other = AdamW::new(vec![("v".into(), resumed)], |_| 0.0).unwrap();
        assert!(other.load_state(&saved).unwrap_err().to_string().contains("exp_avg.v"));
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let (a, b) = (Var::new(&[3f32], &Device::Cpu).unwrap(), Var::new(&[4f32], &Device::Cpu).unwrap());
        let loss =
            ((a.as_tensor().sqr().unwrap() + b.as_tensor().sqr().unwrap()).unwrap().sum_all().unwrap() * 0.5).unwrap();
        let grads = loss.backward().unwrap();
        let norm = grad_norm(&grads, [&a, &b].into_iter()).unwrap();
        assert!((norm - 5.0).abs() < 1e-6, "{norm}");
        assert!((clip_factor(norm, 1.0) * norm - 1.0).abs() < 1e-6);
        assert_eq!(clip_factor(0.5, 1.0), 1.0);
    }

    /// The fused in-place CPU update and the tensor update (other devices) are the same AdamW, with
    /// decay, a gradient factor and the weight average.
    #[test]
    fn fused_update_matches_the_tensor_update() {
        let start = [0.3f32, 0.1, -0.4];
        let fused = Var::new(&start, &Device::Cpu).unwrap();
        let mut optimizer =
            AdamW::new(vec![("w".into(), fused.clone())], |_| 0.01).unwrap().with_weight_average(0.8).unwrap();
        let tensor = Var::new(&start, &Device::Cpu).unwrap();
        let mut reference =
            AdamW::new(vec![("w".into(), tensor.clone())], |_| 0.01).unwrap().with_weight_average(0.8).unwrap();
        let zeros = tensor.as_tensor().zeros_like().unwrap();
        let p = &mut reference.params[0];
        (p.exp_avg, p.exp_avg_sq) = (Buffer::Device(zeros.clone()), Buffer::Device(zeros));
        p.average = Some(Buffer::Device(tensor.as_tensor().copy().unwrap()));
        // The average by hand, from the trajectory.
        let mut by_hand = start.to_vec();
        for _ in 0..10 {
            optimizer.step(&quadratic_loss(&fused).backward().unwrap(), 0.05, 0.7).unwrap();
            reference.step(&quadratic_loss(&tensor).backward().unwrap(), 0.05, 0.7).unwrap();
            let now = fused.as_tensor().to_vec1::<f32>().unwrap();
            by_hand.iter_mut().zip(&now).for_each(|(a, w)| *a = 0.8 * *a + 0.2 * w);
        }
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        let (a, b) = (fused.as_tensor().to_vec1::<f32>().unwrap(), tensor.as_tensor().to_vec1::<f32>().unwrap());
        assert!(close(&a, &b), "{a:?} vs {b:?}");
        optimizer.swap_weight_average().unwrap();
        reference.swap_weight_average().unwrap();
        let (avg, avg_ref) =
            (fused.as_tensor().to_vec1::<f32>().unwrap(), tensor.as_tensor().to_vec1::<f32>().unwrap());
        assert!(close(&avg, &by_hand) && close(&avg_ref, &by_hand), "{avg:?} {avg_ref:?} vs {by_hand:?}");
        optimizer.swap_weight_average().unwrap();
        assert_eq!(fused.as_tensor().to_vec1::<f32>().unwrap(), a, "swapping twice gives the trained weights back");
    }

    /// The weight average is saved and restored with the moments; a state without one is refused by an
    /// optimiser that keeps one, and the other way round.
    #[test]
    fn weight_average_round_trips_and_must_match() {
        let var = Var::new(&[0.3f32, 0.1, -0.4], &Device::Cpu).unwrap();
        let mut optimizer =
            AdamW::new(vec![("w".into(), var.clone())], |_| 0.0).unwrap().with_weight_average(0.5).unwrap();
        optimizer.step(&quadratic_loss(&var).backward().unwrap(), 0.1, 1.0).unwrap();
        let saved = optimizer.state_safetensors().unwrap();
        let other = Var::new(var.as_tensor().to_vec1::<f32>().unwrap().as_slice(), &Device::Cpu).unwrap();
        let mut restored =
            AdamW::new(vec![("w".into(), other.clone())], |_| 0.0).unwrap().with_weight_average(0.5).unwrap();
        restored.load_state(&saved).unwrap();
        for o in [&mut optimizer, &mut restored] {
            o.step(&quadratic_loss(&o.params[0].var.clone()).backward().unwrap(), 0.1, 1.0).unwrap();
            o.swap_weight_average().unwrap();
        }
        assert_eq!(var.as_tensor().to_vec1::<f32>().unwrap(), other.as_tensor().to_vec1::<f32>().unwrap());
        let mut plain = AdamW::new(vec![("w".into(), Var::new(&[0f32; 3], &Device::Cpu).unwrap())], |_| 0.0).unwrap();
        assert!(plain.load_state(&saved).unwrap_err().to_string().contains("average.w"));
        assert!(plain.swap_weight_average().is_err());
        let unaveraged = plain.state_safetensors().unwrap();
        assert!(restored.load_state(&unaveraged).unwrap_err().to_string().contains("no average.w"));
    }
}

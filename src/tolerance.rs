//! Every tolerance that logits are held to, named once: by the tests (native and in the browser) and
//! by the load-time self-check of `auto` on a GPU. docs/weight-format.md derives the int8 budgets;
//! docs/testing.md lists which test uses which.

/// `|got - want| <= atol + rtol * |want|`, per logit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    pub atol: f32,
    pub rtol: f32,
}

impl Tolerance {
    /// The largest difference allowed from `want`.
    pub fn limit(&self, want: f32) -> f32 {
        self.atol + self.rtol * want.abs()
    }

    pub fn allows(&self, got: f32, want: f32) -> bool {
        (got - want).abs() <= self.limit(want)
    }

    /// Whether every logit of `got` is within the tolerance of `want` (same shape).
    pub fn allows_all(&self, got: &[Vec<f32>], want: &[Vec<f32>]) -> bool {
        got.len() == want.len()
            && got
                .iter()
                .zip(want)
                .all(|(g, w)| g.len() == w.len() && g.iter().zip(w).all(|(&a, &b)| self.allows(a, b)))
    }
}

/// Float against float: our f32 logits against PyTorch's, the int8 reference semantics against PyTorch
/// run with the dequantized weights, WebGPU against the CPU reference. Summation order only.
pub const FLOAT: Tolerance = Tolerance { atol: 1e-4, rtol: 0.0 };

/// WebGPU against the CPU reference on the same weights: f32 in another order on another device.
pub const WEBGPU: Tolerance = Tolerance { atol: 1e-3, rtol: 0.0 };

/// int8 weights (the format's reference semantics) against the f32 model: the published budget of the
/// format.
pub const INT8_WEIGHTS: Tolerance = Tolerance { atol: 0.05, rtol: 0.02 };

/// The int8 engine (activations quantized to 7 bits per block of the weights') against the reference semantics on
/// the same int8 weights. Measured on the fixtures: at most 0.12 (tiny BERT, logits up to 7.7).
pub const INT8_COMPUTE: Tolerance = Tolerance { atol: 0.15, rtol: 0.05 };

/// Labels are compared only where the reference's probability is at least this far from 0.5.
pub const DECISIVE_MARGIN: f32 = 0.05;

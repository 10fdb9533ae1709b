// The epilogue activations, shared by every kernel that ends a linear layer (the host prepends this file).
// act: 0 = none, 1 = GELU (erf form, HF "gelu"), 2 = tanh (the pooler), 3 = GELU tanh form ("gelu_new"),
// 4 = ReLU. WGSL has no erf: Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7 for all x.

fn erf_approx(v: f32) -> f32 {
    let a = abs(v);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let r = 1.0 - poly * exp(-a * a);
    return select(-r, r, v >= 0.0);
}

fn activate(v: f32, act: u32) -> f32 {
    switch act {
        case 1u: { return 0.5 * v * (1.0 + erf_approx(v * 0.70710678118654752)); }
        case 2u: { return tanh(clamp(v, -15.0, 15.0)); }
        case 3u: {
            let inner = 0.7978845608028654 * (v + 0.044715 * v * v * v);
            return 0.5 * v * (1.0 + tanh(clamp(inner, -15.0, 15.0)));
        }
        case 4u: { return max(v, 0.0); }
        default: { return v; }
    }
}

// One int8 weight word (4 values, little end first) as floats, times its block's scale.
fn unpack_int8(word: u32, scale: f32) -> vec4<f32> {
    let w = bitcast<i32>(word);
    return vec4<f32>(f32((w << 24u) >> 24u), f32((w << 16u) >> 24u), f32((w << 8u) >> 24u), f32(w >> 24u)) * scale;
}

// Linear layer: y[m, n] = act(sum_k x[m * x_stride + k] * W[n, k] + bias[n]).
// W is either int8 (4 values per u32, one f32 scale per row and block of 32 along k; weight-only
// quantization: dequantized here, f32 activations, f32 accumulation) or f32 (bit-cast in the u32 array).
// The host prepends `const INT8: bool`. Tiles: 64 x 64 outputs per workgroup, 4 x 4 per invocation,
// k in steps of 32 (one int8 block, so one scale per row and step). Workgroup storage: 16 KiB.
// act: 0 = none, 1 = GELU (erf form, as HF's "gelu"), 2 = tanh (the pooler), 3 = GELU tanh form ("gelu_new"),
// 4 = ReLU.

struct Dims { m: u32, n: u32, k: u32, x_stride: u32, k_padded: u32, act: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 32u;
var<workgroup> xs: array<f32, 2048>; // TM x TK
var<workgroup> ws: array<f32, 2048>; // TN x TK

// erf by Abramowitz & Stegun 7.1.26: |error| <= 1.5e-7 for all x.
fn erf_approx(v: f32) -> f32 {
    let a = abs(v);
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let r = 1.0 - poly * exp(-a * a);
    return select(-r, r, v >= 0.0);
}

fn activate(v: f32) -> f32 {
    if (dims.act == 1u) {
        return 0.5 * v * (1.0 + erf_approx(v * 0.70710678118654752));
    }
    if (dims.act == 2u) {
        return tanh(clamp(v, -15.0, 15.0));
    }
    if (dims.act == 3u) {
        let inner = 0.7978845608028654 * (v + 0.044715 * v * v * v);
        return 0.5 * v * (1.0 + tanh(clamp(inner, -15.0, 15.0)));
    }
    if (dims.act == 4u) {
        return max(v, 0.0);
    }
    return v;
}

fn load_w_tile(tid: u32, col0: u32, k0: u32) {
    if (INT8) {
        // 64 rows x 8 words of 4 int8 values; 256 invocations load 2 words each.
        for (var i = 0u; i < 2u; i++) {
            let wi = tid + i * 256u;
            let r = wi / 8u;
            let cw = wi % 8u;
            let n = col0 + r;
            var word = 0u;
            var scale = 0.0;
            if (n < dims.n) {
                word = w[(n * dims.k_padded + k0) / 4u + cw];
                scale = scales[n * (dims.k_padded / 32u) + k0 / 32u];
            }
            for (var j = 0u; j < 4u; j++) {
                let byte = (word >> (8u * j)) & 0xffu;
                ws[r * TK + cw * 4u + j] = f32(bitcast<i32>(byte << 24u) >> 24u) * scale;
            }
        }
    } else {
        for (var i = 0u; i < 8u; i++) {
            let idx = tid + i * 256u;
            let r = idx / TK;
            let c = idx % TK;
            let n = col0 + r;
            let kc = k0 + c;
            var v = 0.0;
            if (n < dims.n && kc < dims.k) {
                v = bitcast<f32>(w[n * dims.k + kc]);
            }
            ws[r * TK + c] = v;
        }
    }
}

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let tid = lid.y * 16u + lid.x;
    let row0 = wid.y * TM;
    let col0 = wid.x * TN;
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i++) {
        acc[i] = 0.0;
    }
    for (var k0 = 0u; k0 < dims.k; k0 += TK) {
        for (var i = 0u; i < 8u; i++) {
            let idx = tid + i * 256u;
            let r = idx / TK;
            let c = idx % TK;
            let gr = row0 + r;
            let gc = k0 + c;
            var v = 0.0;
            if (gr < dims.m && gc < dims.k) {
                v = x[gr * dims.x_stride + gc];
            }
            xs[r * TK + c] = v;
        }
        load_w_tile(tid, col0, k0);
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                a[i] = xs[(lid.y + 16u * i) * TK + kk];
                b[i] = ws[(lid.x + 16u * i) * TK + kk];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] = fma(a[i], b[j], acc[i * 4u + j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + lid.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let c = col0 + lid.x + 16u * j;
            if (r < dims.m && c < dims.n) {
                y[r * dims.n + c] = activate(acc[i * 4u + j] + bias[c]);
            }
        }
    }
}

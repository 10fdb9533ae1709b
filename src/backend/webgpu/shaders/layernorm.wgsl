// LayerNorm over each row of x (plus an optional residual row): y = (v - mean) / sqrt(var + eps) * gamma + beta,
// v = x + residual. One workgroup of 64 invocations per row; two passes (mean, then variance of the
// deviations) for the same numerics as the CPU path.

struct Dims { rows: u32, cols: u32, has_residual: u32, eps: f32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> residual: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

var<workgroup> partial: array<f32, 64>;

fn value(base: u32, c: u32) -> f32 {
    var v = x[base + c];
    if (dims.has_residual != 0u) {
        v += residual[base + c];
    }
    return v;
}

fn row_sum(tid: u32, v: f32) -> f32 {
    partial[tid] = v;
    workgroupBarrier();
    for (var stride = 32u; stride > 0u; stride >>= 1u) {
        if (tid < stride) {
            partial[tid] += partial[tid + stride];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let tid = lid.x;
    let row = wid.x + wid.y * 65535u;
    if (row >= dims.rows) {
        return; // uniform per workgroup: every invocation of it returns
    }
    let base = row * dims.cols;
    let n = f32(dims.cols);
    var s = 0.0;
    for (var c = tid; c < dims.cols; c += 64u) {
        s += value(base, c);
    }
    let mean = row_sum(tid, s) / n;
    var sq = 0.0;
    for (var c = tid; c < dims.cols; c += 64u) {
        let d = value(base, c) - mean;
        sq += d * d;
    }
    let inv = inverseSqrt(row_sum(tid, sq) / n + dims.eps);
    for (var c = tid; c < dims.cols; c += 64u) {
        y[base + c] = (value(base, c) - mean) * inv * gamma[c] + beta[c];
    }
}

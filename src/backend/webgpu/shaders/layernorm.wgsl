// LayerNorm over each row of x plus an optional residual row: y = (v - mean) / sqrt(var + eps) * gamma
// + beta, v = x + residual. x and y hold `rows` consecutive rows; residual row r starts at
// r * residual_stride (the row width, or seq rows of it to pick each text's [CLS] row). params holds
// gamma then beta. One workgroup of 64 invocations per row; two passes (mean, then the variance of the
// deviations) for the same numerics as the CPU path. The host prepends norm_rows.wgsl.

struct Dims { rows: u32, cols: u32, has_residual: u32, eps: f32, residual_stride: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> residual: array<f32>;
@group(0) @binding(3) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn value(row: u32, c: u32) -> f32 {
    var v = x[row * dims.cols + c];
    if (dims.has_residual != 0u) {
        v += residual[row * dims.residual_stride + c];
    }
    return v;
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let tid = lid.x;
    let row = wid.x + wid.y * 65535u;
    if (row >= dims.rows) {
        return; // uniform per workgroup: every invocation of it returns
    }
    var s = 0.0;
    for (var c = tid; c < dims.cols; c += 64u) {
        s += value(row, c);
    }
    let mean = row_sum(tid, s) / f32(dims.cols);
    var sq = 0.0;
    for (var c = tid; c < dims.cols; c += 64u) {
        let d = value(row, c) - mean;
        sq += d * d;
    }
    let inv = inverseSqrt(row_sum(tid, sq) / f32(dims.cols) + dims.eps);
    for (var c = tid; c < dims.cols; c += 64u) {
        y[row * dims.cols + c] = (value(row, c) - mean) * inv * params[c] + params[dims.cols + c];
    }
}

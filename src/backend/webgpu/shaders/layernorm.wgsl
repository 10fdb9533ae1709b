// LayerNorm over each row of x plus an optional residual row: y = (v - mean) / sqrt(var + eps) * gamma
// + beta, v = x + residual. x and y hold `rows` consecutive rows; residual row r starts at
// r * residual_stride (the row width, or seq rows of it to pick each text's [CLS] row). params holds
// gamma then beta. One workgroup of 64 invocations per row; the host prepends norm_rows.wgsl and
// layer_norm_row.wgsl.

struct Dims { rows: u32, cols: u32, has_residual: u32, eps: f32, residual_stride: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> residual: array<f32>;
@group(0) @binding(3) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn norm_value(row: u32, c: u32) -> f32 {
    var v = x[row * dims.cols + c];
    if (dims.has_residual != 0u) {
        v += residual[row * dims.residual_stride + c];
    }
    return v;
}

fn norm_output(row: u32, c: u32, v: f32) {
    y[row * dims.cols + c] = v;
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row = wid.x + wid.y * 65535u;
    if (row >= dims.rows) {
        return; // uniform per workgroup: every invocation of it returns
    }
    normalize_row(lid.x, row, dims.cols, dims.eps);
}

// The end of a linear layer split along k (matmul.wgsl): y[m, n] = act(sum over splits of
// partial[split, m, n] + bias[n]). One invocation per output; the activations come from the host
// (activations.wgsl).

struct Dims { m: u32, n: u32, splits: u32, act: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * 65535u * 64u;
    let outputs = dims.m * dims.n;
    if (i >= outputs) {
        return;
    }
    var sum = 0.0;
    for (var s = 0u; s < dims.splits; s++) {
        sum += partial[s * outputs + i];
    }
    y[i] = activate(sum + bias[i % dims.n], dims.act);
}

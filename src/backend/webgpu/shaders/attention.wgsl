// Self-attention for one query row of one head: softmax(q k^T / sqrt(d) over unmasked keys) v.
// qkv holds [tokens, 3 * hidden] (query | key | value, heads side by side); mask is 1 for real tokens.
// Masked keys get probability 0; a row whose keys are all masked averages all keys uniformly, as the
// CPU path does (every score there becomes the same large negative number). The softmax subtracts the
// row maximum before exp. One workgroup (64 invocations) per (query, head, batch row).

struct Dims { seq: u32, hidden: u32, heads: u32, head_dim: u32, scale: f32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<u32>;
@group(0) @binding(3) var<storage, read_write> ctx: array<f32>;

const WG: u32 = 64u;
var<workgroup> probs: array<f32, MAX_SEQ>;
var<workgroup> partial: array<f32, 64>;

fn reduce(tid: u32, v: f32, is_max: bool) -> f32 {
    partial[tid] = v;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (tid < stride) {
            if (is_max) {
                partial[tid] = max(partial[tid], partial[tid + stride]);
            } else {
                partial[tid] += partial[tid + stride];
            }
        }
        workgroupBarrier();
    }
    let r = partial[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let tid = lid.x;
    let i = wid.x;
    let h = wid.y;
    let b = wid.z;
    let row_stride = 3u * dims.hidden;
    let first = b * dims.seq;
    let q_base = (first + i) * row_stride + h * dims.head_dim;

    var valid = 0.0;
    for (var j = tid; j < dims.seq; j += WG) {
        valid += f32(mask[first + j] != 0u);
    }
    let any_valid = reduce(tid, valid, false) > 0.0;

    var local_max = -3.0e38;
    for (var j = tid; j < dims.seq; j += WG) {
        var s = 0.0;
        let k_base = (first + j) * row_stride + dims.hidden + h * dims.head_dim;
        for (var d = 0u; d < dims.head_dim; d++) {
            s = fma(qkv[q_base + d], qkv[k_base + d], s);
        }
        s *= dims.scale;
        let keep = mask[first + j] != 0u || !any_valid;
        if (!any_valid) {
            s = 0.0;
        }
        probs[j] = select(-3.0e38, s, keep);
        if (keep) {
            local_max = max(local_max, s);
        }
    }
    let row_max = reduce(tid, local_max, true);

    var local_sum = 0.0;
    for (var j = tid; j < dims.seq; j += WG) {
        let keep = mask[first + j] != 0u || !any_valid;
        let e = select(0.0, exp(probs[j] - row_max), keep);
        probs[j] = e;
        local_sum += e;
    }
    let inv_sum = 1.0 / reduce(tid, local_sum, false);

    for (var d = tid; d < dims.head_dim; d += WG) {
        var acc = 0.0;
        let v_col = 2u * dims.hidden + h * dims.head_dim + d;
        for (var j = 0u; j < dims.seq; j++) {
            acc = fma(probs[j], qkv[(first + j) * row_stride + v_col], acc);
        }
        ctx[(first + i) * dims.hidden + h * dims.head_dim + d] = acc * inv_sum;
    }
}

// The pooler and the classifier in one pass, one workgroup of 64 invocations per text:
// pooled = tanh(W_p . x + b_p) for the text's row of x (its [CLS] row: row `text * x_stride / hidden`),
// then logits = W_c . pooled + b_c. W_p is int8 (block-32 scales) or f32 as `const INT8: bool` says;
// the classifier is f32, `head` holding its weights ([labels, hidden]) then its biases. The host
// prepends HIDDEN, activations.wgsl and norm_rows.wgsl.

struct Dims { texts: u32, hidden: u32, k_padded: u32, labels: u32, x_stride: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> head: array<f32>;
@group(0) @binding(6) var<storage, read_write> logits: array<f32>;

var<workgroup> cls: array<f32, HIDDEN>;
var<workgroup> pooled: array<f32, HIDDEN>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let tid = lid.x;
    let text = wid.x;
    if (text >= dims.texts) {
        return; // uniform per workgroup
    }
    for (var c = tid; c < dims.hidden; c += 64u) {
        cls[c] = x[text * dims.x_stride + c];
    }
    workgroupBarrier();
    for (var n = tid; n < dims.hidden; n += 64u) {
        var sum = 0.0;
        if (INT8) {
            for (var q = 0u; q < dims.k_padded / 4u; q++) {
                let k = 4u * q;
                let word = w[n * dims.k_padded / 4u + q];
                let a = vec4<f32>(cls[min(k, HIDDEN - 1u)], cls[min(k + 1u, HIDDEN - 1u)], cls[min(k + 2u, HIDDEN - 1u)], cls[min(k + 3u, HIDDEN - 1u)]);
                let valid = vec4<f32>(vec4<bool>(k < dims.hidden, k + 1u < dims.hidden, k + 2u < dims.hidden, k + 3u < dims.hidden));
                sum += dot(a * valid, unpack_int8(word, scales[n * (dims.k_padded / 32u) + k / 32u]));
            }
        } else {
            for (var k = 0u; k < dims.hidden; k++) {
                sum = fma(cls[k], bitcast<f32>(w[n * dims.hidden + k]), sum);
            }
        }
        pooled[n] = activate(sum + bias[n], 2u);
    }
    workgroupBarrier();
    for (var label = 0u; label < dims.labels; label++) {
        var part = 0.0;
        for (var c = tid; c < dims.hidden; c += 64u) {
            part = fma(pooled[c], head[label * dims.hidden + c], part);
        }
        let total = row_sum(tid, part);
        if (tid == 0u) {
            logits[text * dims.labels + label] = total + head[dims.labels * dims.hidden + label];
        }
    }
}

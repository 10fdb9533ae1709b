// Self-attention, one workgroup per (query tile, head, text): softmax(q k^T / sqrt(d) over the text's
// unmasked keys) v. qkv holds [tokens, 3 * hidden] (query | key | value, heads side by side); the mask
// (1 = token) is read from the inputs buffer at `mask_offset`. Masked keys get probability 0; a text
// whose keys are all masked averages all of them uniformly, as the CPU path does.
//
// The host prepends HEAD_DIM (d), QV = D_PAD / 4 (D_PAD: d rounded up to 16) and KC (keys per chunk).
// 128 invocations: 32 queries of the tile, 4 lanes each. Keys and values go through workgroup memory
// a chunk of KC keys at a time (K and V read from memory once per tile, not once per query); lane L of
// a query scores the chunk's keys L, L + 4, ..., its query held in registers; the scores meet in
// workgroup memory, and each lane then folds the whole chunk into its quarter of the output with an
// online softmax (running maximum and sum, rescaled per chunk). With `cls_only` only query 0 of each
// text is computed, into row `text` of ctx (the last layer, whose other rows nothing reads).

struct Dims { seq: u32, hidden: u32, heads: u32, mask_offset: u32, scale: f32, cls_only: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> inputs: array<u32>;
@group(0) @binding(3) var<storage, read_write> ctx: array<f32>;

const QT: u32 = 32u;
const LANES: u32 = 4u;
const OV: u32 = QV / 4u; // output vec4s per lane
const MASKED: f32 = -3.0e38;
var<workgroup> keys: array<vec4<f32>, KC * QV>;
var<workgroup> values: array<vec4<f32>, KC * QV>;
var<workgroup> scores: array<f32, QT * KC>;
var<workgroup> any_key: atomic<u32>;

// Dimensions 4v..4v+3 of the head's part of row `token`, `part` 0 = query, 1 = key, 2 = value.
fn head_vec4(token: u32, part: u32, head: u32, v: u32) -> vec4<f32> {
    let base = token * 3u * dims.hidden + part * dims.hidden + head * HEAD_DIM;
    var out = vec4<f32>(0.0);
    for (var e = 0u; e < 4u; e++) {
        let d = 4u * v + e;
        if (d < HEAD_DIM) {
            out[e] = qkv[base + d];
        }
    }
    return out;
}

@compute @workgroup_size(128)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let tid = lid.x;
    let head = wid.y;
    let text = wid.z;
    let first = text * dims.seq;
    let local_query = tid / LANES;
    let lane = tid % LANES;
    let query = wid.x * QT + local_query;
    let n_queries = select(dims.seq, 1u, dims.cls_only != 0u);
    let in_range = query < n_queries;

    if (tid == 0u) {
        atomicStore(&any_key, 0u);
    }
    workgroupBarrier();
    for (var j = tid; j < dims.seq; j += 128u) {
        if (inputs[dims.mask_offset + first + j] != 0u) {
            atomicOr(&any_key, 1u);
        }
    }
    let masking = workgroupUniformLoad(&any_key) != 0u;

    var q: array<vec4<f32>, QV>;
    for (var v = 0u; v < QV; v++) {
        q[v] = select(vec4<f32>(0.0), head_vec4(first + query, 0u, head, v) * dims.scale, in_range);
    }
    var o: array<vec4<f32>, OV>;
    for (var v = 0u; v < OV; v++) {
        o[v] = vec4<f32>(0.0);
    }
    var running_max = MASKED;
    var running_sum = 0.0;

    for (var k0 = 0u; k0 < dims.seq; k0 += KC) {
        // Keys as [dimension / 4][key], so the 4 lanes scoring keys j, j + 1, ... read neighbours;
        // values as [key][dimension / 4], so the lanes folding key j read their own quarters of it.
        for (var i = tid; i < KC * QV; i += 128u) {
            let v = i / KC;
            let j = i % KC;
            var kv = vec4<f32>(0.0);
            if (k0 + j < dims.seq) {
                kv = head_vec4(first + k0 + j, 1u, head, v);
            }
            keys[i] = kv;
        }
        for (var i = tid; i < KC * QV; i += 128u) {
            let j = i / QV;
            let v = i % QV;
            var vv = vec4<f32>(0.0);
            if (k0 + j < dims.seq) {
                vv = head_vec4(first + k0 + j, 2u, head, v);
            }
            values[i] = vv;
        }
        workgroupBarrier();
        for (var j = lane; j < KC; j += LANES) {
            let key = k0 + j;
            var s = MASKED;
            if (key < dims.seq && !masking) {
                // HF adds the dtype's minimum to every score of a text without tokens: they all become
                // that same number, so the keys are averaged uniformly.
                s = 0.0;
            } else if (key < dims.seq && inputs[dims.mask_offset + first + key] != 0u) {
                s = 0.0;
                for (var v = 0u; v < QV; v++) {
                    s += dot(q[v], keys[v * KC + j]);
                }
            }
            scores[local_query * KC + j] = s;
        }
        workgroupBarrier();
        var chunk_max = MASKED;
        for (var j = 0u; j < KC; j++) {
            chunk_max = max(chunk_max, scores[local_query * KC + j]);
        }
        let new_max = max(running_max, chunk_max);
        let rescale = exp(running_max - new_max);
        running_sum *= rescale;
        for (var v = 0u; v < OV; v++) {
            o[v] *= rescale;
        }
        for (var j = 0u; j < KC; j++) {
            let s = scores[local_query * KC + j];
            let p = select(0.0, exp(s - new_max), s > MASKED);
            running_sum += p;
            for (var v = 0u; v < OV; v++) {
                o[v] += p * values[j * QV + lane * OV + v];
            }
        }
        running_max = new_max;
        workgroupBarrier();
    }

    if (in_range) {
        let row = select(first + query, text, dims.cls_only != 0u);
        let base = row * dims.hidden + head * HEAD_DIM;
        let inv = 1.0 / running_sum;
        for (var v = 0u; v < OV; v++) {
            for (var e = 0u; e < 4u; e++) {
                let d = 4u * (lane * OV + v) + e;
                if (d < HEAD_DIM) {
                    ctx[base + d] = o[v][e] * inv;
                }
            }
        }
    }
}

// The embeddings and their LayerNorm in one pass: for each token t of a [texts, seq] block,
// v = word[id_t] + position[t mod seq] + token_type[type_t], out[t] = LayerNorm(v). The three tables
// are one buffer of rows (word rows, then position rows from `position_row0`, then token-type rows from
// `type_row0`), int8 (block-32 scales) or f32 as the host's `const INT8: bool` says; ids and types come
// from the inputs buffer (types at `types_offset`); params holds gamma then beta. One workgroup of 64
// invocations per token; the host prepends activations.wgsl, norm_rows.wgsl and layer_norm_row.wgsl.

struct Dims { tokens: u32, seq: u32, hidden: u32, k_padded: u32, types_offset: u32, position_row0: u32, type_row0: u32, eps: f32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> inputs: array<u32>;
@group(0) @binding(2) var<storage, read> tables: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<f32>;
@group(0) @binding(4) var<storage, read> params: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

fn table_at(row: u32, c: u32) -> f32 {
    if (INT8) {
        let word = tables[(row * dims.k_padded + c) / 4u];
        return unpack_int8(word, scales[row * (dims.k_padded / 32u) + c / 32u])[c % 4u];
    }
    return bitcast<f32>(tables[row * dims.hidden + c]);
}

fn embedding(t: u32, c: u32) -> f32 {
    let word = inputs[t];
    let token_type = inputs[dims.types_offset + t];
    return table_at(word, c) + table_at(dims.position_row0 + t % dims.seq, c) + table_at(dims.type_row0 + token_type, c);
}

fn norm_value(t: u32, c: u32) -> f32 {
    return embedding(t, c);
}

fn norm_output(t: u32, c: u32, v: f32) {
    out[t * dims.hidden + c] = v;
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let t = wid.x + wid.y * 65535u;
    if (t >= dims.tokens) {
        return; // uniform per workgroup
    }
    normalize_row(lid.x, t, dims.hidden, dims.eps);
}

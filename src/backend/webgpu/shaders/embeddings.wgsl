// Embedding gather and sum: out[t, c] = word[id_t, c] + position[pos_t, c] + token_type[type_t, c], for each
// token t of a [batch, seq] block (pos_t = t mod seq). Tables are int8 rows (block-32 scales) or f32, as the
// host's `const INT8: bool` says; LayerNorm follows in layernorm.wgsl.

struct Dims { tokens: u32, seq: u32, hidden: u32, k_padded: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> types: array<u32>;
@group(0) @binding(3) var<storage, read> word_w: array<u32>;
@group(0) @binding(4) var<storage, read> word_s: array<f32>;
@group(0) @binding(5) var<storage, read> pos_w: array<u32>;
@group(0) @binding(6) var<storage, read> pos_s: array<f32>;
@group(0) @binding(7) var<storage, read> type_w: array<u32>;
@group(0) @binding(8) var<storage, read> type_s: array<f32>;
@group(0) @binding(9) var<storage, read_write> out: array<f32>;

fn int8_at(word: u32, c: u32, scale: f32) -> f32 {
    let byte = (word >> (8u * (c % 4u))) & 0xffu;
    return f32(bitcast<i32>(byte << 24u) >> 24u) * scale;
}

fn word_at(r: u32, c: u32) -> f32 {
    if (INT8) {
        return int8_at(word_w[(r * dims.k_padded + c) / 4u], c, word_s[r * (dims.k_padded / 32u) + c / 32u]);
    }
    return bitcast<f32>(word_w[r * dims.hidden + c]);
}

fn pos_at(r: u32, c: u32) -> f32 {
    if (INT8) {
        return int8_at(pos_w[(r * dims.k_padded + c) / 4u], c, pos_s[r * (dims.k_padded / 32u) + c / 32u]);
    }
    return bitcast<f32>(pos_w[r * dims.hidden + c]);
}

fn type_at(r: u32, c: u32) -> f32 {
    if (INT8) {
        return int8_at(type_w[(r * dims.k_padded + c) / 4u], c, type_s[r * (dims.k_padded / 32u) + c / 32u]);
    }
    return bitcast<f32>(type_w[r * dims.hidden + c]);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let c = gid.x;
    let t = wid.y + wid.z * 65535u;
    if (c >= dims.hidden || t >= dims.tokens) {
        return;
    }
    let pos = t % dims.seq;
    out[t * dims.hidden + c] = word_at(ids[t], c) + pos_at(pos, c) + type_at(types[t], c);
}

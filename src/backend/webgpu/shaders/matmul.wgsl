// Linear layer: y[m, n] = act(sum_k x[m * x_stride + k] * W[n, k] + bias[n]), or, split along k, each
// split's partial sum into `partial` (split_reduce.wgsl adds them, the bias and the activation).
// W is int8 (4 values per u32, one f32 scale per row and block of 32 along k; weight-only quantization:
// dequantized here, f32 activations and accumulation) or f32 (bit-cast in the u32 array).
//
// The host prepends `const INT8: bool`, `WG_X` (invocations along n: 16 or 8) and `RM` (rows per
// invocation: 4 or 1), then activations.wgsl. A workgroup of 16 x WG_X invocations computes a tile of
// TM = 16 * RM rows by TN = 4 * WG_X columns: invocation (x, y) owns rows y + 16 i (i < RM) and columns
// x + WG_X j (j < 4), accumulated in RM vec4 registers (no array indexed at run time). The large tile
// (64 x 64) is for many rows, the small one (16 x 32) and the k split give a small batch enough
// workgroups to fill a GPU.
//
// k runs in steps of TK = 32 (one int8 block, so one scale per weight row and step). Both tiles sit in
// workgroup memory as vec4 along k, [k / 4][row], the row index swizzled by k / 4 (`row ^ q`, which
// stays inside the row's aligned group of 8): the inner loop's reads are 8 consecutive vec4 (or one,
// broadcast) per quarter warp, and the tile stores (8 invocations per row, one vec4 of each k / 4) land
// in 8 different 16-byte banks: no bank conflicts (modelled in kernels.rs's tests), and no padding, so
// the large tile takes exactly WebGPU's guaranteed 16 KiB of workgroup memory.

struct Dims { m: u32, n: u32, k: u32, x_stride: u32, k_padded: u32, act: u32, k_chunk: u32, splits: u32 }

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;

const TM: u32 = 16u * RM;
const TN: u32 = 4u * WG_X;
const THREADS: u32 = 16u * WG_X;
var<workgroup> xs: array<vec4<f32>, 8u * TM>;
var<workgroup> ws: array<vec4<f32>, 8u * TN>;

// Where k / 4 = q of tile row (or column) r lives.
fn xs_index(q: u32, r: u32) -> u32 {
    return q * TM + (r ^ q);
}

fn ws_index(q: u32, c: u32) -> u32 {
    return q * TN + (c ^ q);
}

fn x_at(r: u32, k: u32) -> f32 {
    if (r < dims.m && k < dims.k) {
        return x[r * dims.x_stride + k];
    }
    return 0.0;
}

fn load_tiles(tid: u32, row0: u32, col0: u32, k0: u32) {
    for (var i = tid; i < 8u * TM; i += THREADS) {
        let r = i / 8u;
        let q = i % 8u;
        let k = k0 + 4u * q;
        let gr = row0 + r;
        xs[xs_index(q, r)] = vec4<f32>(x_at(gr, k), x_at(gr, k + 1u), x_at(gr, k + 2u), x_at(gr, k + 3u));
    }
    for (var i = tid; i < 8u * TN; i += THREADS) {
        let c = i / 8u;
        let q = i % 8u;
        let n = col0 + c;
        var v = vec4<f32>(0.0);
        if (n < dims.n) {
            if (INT8) {
                let word = w[(n * dims.k_padded + k0) / 4u + q];
                v = unpack_int8(word, scales[n * (dims.k_padded / 32u) + k0 / 32u]);
            } else {
                let k = k0 + 4u * q;
                let base = n * dims.k;
                v = vec4<f32>(
                    select(0.0, bitcast<f32>(w[base + min(k, dims.k - 1u)]), k < dims.k),
                    select(0.0, bitcast<f32>(w[base + min(k + 1u, dims.k - 1u)]), k + 1u < dims.k),
                    select(0.0, bitcast<f32>(w[base + min(k + 2u, dims.k - 1u)]), k + 2u < dims.k),
                    select(0.0, bitcast<f32>(w[base + min(k + 3u, dims.k - 1u)]), k + 3u < dims.k));
            }
        }
        ws[ws_index(q, c)] = v;
    }
}

fn products(a: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(dot(a, b0), dot(a, b1), dot(a, b2), dot(a, b3));
}

fn store_one(r: u32, c: u32, split: u32, v: f32) {
    if (c < dims.n) {
        if (dims.splits == 1u) {
            y[r * dims.n + c] = activate(v + bias[c], dims.act);
        } else {
            partial[(split * dims.m + r) * dims.n + c] = v;
        }
    }
}

fn store(r: u32, c0: u32, split: u32, acc: vec4<f32>) {
    if (r < dims.m) {
        store_one(r, c0, split, acc.x);
        store_one(r, c0 + WG_X, split, acc.y);
        store_one(r, c0 + 2u * WG_X, split, acc.z);
        store_one(r, c0 + 3u * WG_X, split, acc.w);
    }
}

@compute @workgroup_size(WG_X, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let tid = lid.y * WG_X + lid.x;
    let row0 = wid.y * TM;
    let col0 = wid.x * TN;
    let split = wid.z;
    let k_begin = split * dims.k_chunk;
    let k_end = min(dims.k, k_begin + dims.k_chunk);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = k_begin; k0 < k_end; k0 += 32u) {
        load_tiles(tid, row0, col0, k0);
        workgroupBarrier();
        for (var q = 0u; q < 8u; q++) {
            let b0 = ws[ws_index(q, lid.x)];
            let b1 = ws[ws_index(q, lid.x + WG_X)];
            let b2 = ws[ws_index(q, lid.x + 2u * WG_X)];
            let b3 = ws[ws_index(q, lid.x + 3u * WG_X)];
            acc0 += products(xs[xs_index(q, lid.y)], b0, b1, b2, b3);
            if (RM > 1u) {
                acc1 += products(xs[xs_index(q, lid.y + 16u)], b0, b1, b2, b3);
                acc2 += products(xs[xs_index(q, lid.y + 32u)], b0, b1, b2, b3);
                acc3 += products(xs[xs_index(q, lid.y + 48u)], b0, b1, b2, b3);
            }
        }
        workgroupBarrier();
    }
    let c0 = col0 + lid.x;
    store(row0 + lid.y, c0, split, acc0);
    if (RM > 1u) {
        store(row0 + lid.y + 16u, c0, split, acc1);
        store(row0 + lid.y + 32u, c0, split, acc2);
        store(row0 + lid.y + 48u, c0, split, acc3);
    }
}

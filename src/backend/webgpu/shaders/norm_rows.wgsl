// The sum of one value per invocation over a workgroup of 64, for the row-wise kernels (the host
// prepends this file to layernorm.wgsl, embed_norm.wgsl and head.wgsl).

var<workgroup> partial: array<f32, 64>;

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

// LayerNorm of one row by a workgroup of 64 invocations, two passes (the mean, then the variance of the
// deviations) for the same numerics as the CPU path: y = (v - mean) / sqrt(var + eps) * gamma + beta,
// gamma and beta in the kernel's `params` binding (gamma, then beta). The kernel that prepends this file
// (with norm_rows.wgsl) defines where the row's values come from, `norm_value(row, c)`, and where they
// go, `norm_output(row, c, y)`.

fn normalize_row(tid: u32, row: u32, cols: u32, eps: f32) {
    var s = 0.0;
    for (var c = tid; c < cols; c += 64u) {
        s += norm_value(row, c);
    }
    let mean = row_sum(tid, s) / f32(cols);
    var sq = 0.0;
    for (var c = tid; c < cols; c += 64u) {
        let d = norm_value(row, c) - mean;
        sq += d * d;
    }
    let inv = inverseSqrt(row_sum(tid, sq) / f32(cols) + eps);
    for (var c = tid; c < cols; c += 64u) {
        norm_output(row, c, (norm_value(row, c) - mean) * inv * params[c] + params[cols + c]);
    }
}

//! The int8 engine's kernels against their scalar reference, bit for bit, on every instruction set this
//! machine runs (the same cases run in headless Chromium for the wasm kernels: tests/browser/cases.rs);
//! and the whole engine against the format's reference semantics (candle, int8 weights dequantized).

#[path = "common/int8_cases.rs"]
mod int8_cases;

#[test]
fn every_kernel_matches_the_scalar_reference_bit_for_bit() {
    int8_cases::every_kernel_matches_the_reference();
}

#[test]
fn integer_dot_products_are_exact() {
    int8_cases::integer_dot_products_are_exact();
}

#[test]
fn quantizer_matches_the_portable_one_bit_for_bit() {
    int8_cases::quantizer_matches_the_portable_one_bit_for_bit();
}

#[test]
fn quantizer_keeps_zero_exact() {
    int8_cases::quantizer_keeps_zero_exact();
}

#[test]
fn vector_math_matches_the_scalar_functions_bit_for_bit() {
    int8_cases::vector_math_matches_the_scalar_functions_bit_for_bit();
}

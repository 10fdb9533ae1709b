//! The int8 engine's kernels against their scalar reference, bit for bit, on every instruction set this
//! machine runs (the same cases run in headless Chromium for the wasm kernels: tests/browser/cases.rs);
//! and the whole engine against the format's reference semantics (candle, int8 weights dequantized).

mod common;
#[path = "common/int8_cases.rs"]
mod int8_cases;

use tweetguard::backend::CpuEngine;
use tweetguard::tolerance::INT8_COMPUTE;
use tweetguard::HeadInit;

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

/// A model with 64-value blocks (the tiny BERT's FFN down-projection) through the int8 engine stays within
/// its budget of the reference semantics on the same weights, on the golden texts.
#[test]
fn a_model_in_64_value_blocks_stays_within_the_int8_budget_of_its_reference() {
    let (config, tokenizer, f32_weights) = common::tiny_bytes("tiny/model.safetensors");
    let weights = int8_cases::tiny_with_64_value_blocks(&f32_weights);
    let texts = common::golden_texts(&common::goldens("tiny_goldens.json")).expect("the tiny goldens have texts");
    let on = |engine| common::load_on(&config, &tokenizer, &weights, HeadInit::Require, engine).unwrap();
    let (int8, reference) = (on(CpuEngine::Int8), on(CpuEngine::Reference));
    let (got, want) = (common::logits(&int8, &texts), common::logits(&reference, &texts));
    common::assert_logits_meet("tiny in 64-value blocks, int8 engine vs reference", &got, &want, INT8_COMPUTE);
}

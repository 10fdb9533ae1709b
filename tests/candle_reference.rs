//! Our BERT encoder (`tweetguard::model`) against candle-transformers' `BertModel`, an independent Rust
//! implementation of Hugging Face's BERT (the comparison itself: `tests/common/encoder_reference.rs`), on
//! the tiny fixture BERT (always) and on all-MiniLM-L6-v2 (when fetched; required in CI). A second,
//! Rust-only check beside the PyTorch goldens of `tests/parity.rs`. Measured: identical bits on both
//! (both run candle's CPU kernels underneath); the tolerance leaves room for a change of summation order,
//! and a 0.01 % change of either side or a dropped padding mask fails it. The browser cases run the tiny
//! comparison on the wasm build too.
#![cfg(not(target_arch = "wasm32"))]

mod common;
#[path = "common/encoder_reference.rs"]
mod encoder_reference;

use common::*;
use encoder_reference::compare;

#[test]
fn tiny_encoder_matches_candle_transformers() {
    let tiny = fixture("tiny");
    let summary = compare(
        "tiny",
        &read(tiny.join("config.json")),
        &read(tiny.join("tokenizer.json")),
        read(tiny.join("model.safetensors")),
    );
    eprintln!("{summary}");
}

#[test]
fn minilm_encoder_matches_candle_transformers() {
    let Some(dir) = minilm_dir() else {
        return skip_or_fail("all-MiniLM-L6-v2 is not fetched (run scripts/fetch-minilm.sh)");
    };
    let weights = minilm_with_head(&dir);
    eprintln!("{}", compare("minilm", &read(dir.join("config.json")), &read(dir.join("tokenizer.json")), weights));
}

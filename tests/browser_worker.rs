//! The browser cases again inside a dedicated Web Worker, where the product runs inference.
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

#[path = "browser/cases.rs"]
mod cases;

//! Browser tests on a page (headless Chromium through wasm-bindgen-test); the cases are in browser/cases.rs.
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[path = "browser/cases.rs"]
mod cases;

# The rustflags of the relaxed-SIMD wasm build, for `cargo --config`: .cargo/config.toml's wasm32 flags
# (which every other wasm build uses) plus +relaxed-simd. Sourced by build-wasm.sh and test.sh.
RELAXED_RUSTFLAGS='["-C", "target-feature=+simd128,+relaxed-simd", "--cfg", "getrandom_backend=\"wasm_js\""]'

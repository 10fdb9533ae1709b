// wasm-build.js: which of the two wasm builds this browser runs. pkg/relaxed/ uses relaxed SIMD
// (i32x4.relaxed_dot_i8x16_i7x16_add_s: 16 int8 multiply-adds per instruction); engines without it reject
// the whole module, so they get the baseline simd128 build in pkg/. No DOM, no fetches: testable in Node.

/**
 * A 82-byte module with one function, `(func (result v128) (i32x4.relaxed_dot_i8x16_i7x16_add_s
 * (v128.const 0) (v128.const 0) (v128.const 0)))`: `WebAssembly.validate` accepts it exactly where relaxed
 * SIMD is available.
 */
export const RELAXED_SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 61, 1, 59, 0,
  253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  253, 147, 2, 11,
]);

/** Whether this engine validates relaxed SIMD instructions. */
export function hasRelaxedSimd(wasm = globalThis.WebAssembly) {
  try {
    return Boolean(wasm?.validate(RELAXED_SIMD_PROBE));
  } catch {
    return false;
  }
}

/** The wasm-bindgen glue modules to try, best first (relative to the page's folder). */
export function packageUrls(relaxed = hasRelaxedSimd()) {
  return relaxed ? ['./pkg/relaxed/tweetguard.js', './pkg/tweetguard.js'] : ['./pkg/tweetguard.js'];
}

/**
 * Imports and initialises the best build that loads: `{ module, build: 'relaxed-simd' | 'simd128' }`.
 * A missing relaxed package (a development build) falls back to the baseline one. The relaxed kernels
 * themselves check the instruction on known inputs before use and fall back to simd128 kernels.
 */
export async function loadWasmPackage(baseUrl, importer = (url) => import(url)) {
  let lastError = null;
  for (const url of packageUrls()) {
    try {
      const module = await importer(new URL(url, baseUrl).href);
      await module.default();
      return { module, build: url.includes('/relaxed/') ? 'relaxed-simd' : 'simd128' };
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError ?? new Error('no wasm package could be loaded');
}

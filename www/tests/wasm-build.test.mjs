// The relaxed-SIMD probe: Node 20 rejects relaxed SIMD by default and accepts it behind its flag, so the
// probe must validate exactly then; a corrupted opcode must not validate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { RELAXED_SIMD_PROBE, hasRelaxedSimd, loadWasmPackage, packageUrls } from '../wasm-build.js';

const validateWith = (flags) => execFileSync(process.execPath, [...flags, '--input-type=module', '-e',
  `import { hasRelaxedSimd } from ${JSON.stringify(new URL('../wasm-build.js', import.meta.url).href)}; process.stdout.write(String(hasRelaxedSimd()))`]).toString();

test('the probe validates exactly where relaxed SIMD is enabled', () => {
  assert.equal(validateWith(['--experimental-wasm-relaxed-simd']), 'true');
  assert.equal(validateWith(['--no-experimental-wasm-relaxed-simd']), 'false');
  const broken = RELAXED_SIMD_PROBE.slice();
  broken[broken.length - 3] = 0x99;
  assert.equal(WebAssembly.validate(broken), false);
  assert.equal(hasRelaxedSimd(undefined), false);
});

test('the relaxed package is tried first, and the baseline one when it is missing', async () => {
  assert.deepEqual(packageUrls(true), ['./pkg/relaxed/tweetguard.js', './pkg/tweetguard.js']);
  assert.deepEqual(packageUrls(false), ['./pkg/tweetguard.js']);
  const tried = [];
  const importer = async (url) => {
    tried.push(url);
    if (url.includes('/relaxed/')) throw new Error('404');
    return { default: async () => {} };
  };
  const loaded = await loadWasmPackage('http://127.0.0.1/', importer);
  assert.equal(loaded.build, 'simd128');
  assert.equal(tried.at(-1), 'http://127.0.0.1/pkg/tweetguard.js');
});

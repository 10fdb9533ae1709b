// Unit tests for www/sha256.js: the pure-JS fallback against node's crypto.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { sha256HexSync, sha256Hex } from '../sha256.js';

const reference = (bytes) => createHash('sha256').update(bytes).digest('hex');

test('known vectors', () => {
  assert.equal(sha256HexSync(new Uint8Array()), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(sha256HexSync(new TextEncoder().encode('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('matches node crypto at block boundaries and on a large buffer', async () => {
  for (const n of [1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, 100003]) {
    const bytes = new Uint8Array(randomBytes(n));
    assert.equal(sha256HexSync(bytes), reference(bytes), `length ${n}`);
    assert.equal(await sha256Hex(bytes), reference(bytes));
  }
});

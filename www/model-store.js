// model-store.js: gets a model folder's files as verified bytes (no DOM; used by worker.js, bench and the page).
// From a URL: fetch manifest.json (no-cache), validate it, then per file look in the Cache API (key = file
// URL + ?sha256=...), else download it with a streamed reader reporting progress, check its size and
// SHA-256 against the manifest, and store it. From disk: the same checks on the chosen files.
// A cached file that fails verification is deleted and downloaded again. Without the Cache API (not a
// secure context, storage disabled, quota) loading goes on without caching, logged once.

import { sha256Hex } from './sha256.js';

export const MODEL_CACHE = 'tweetguard-model-v1';
export const MANIFEST_NAME = 'manifest.json';
export const FORMAT_VERSION = 1;

const SHA256_HEX = /^[0-9a-f]{64}$/i;

/** Verified bytes kept in memory (by SHA-256) so a backend switch does not download again. */
const memory = new Map();

let cacheWarned = false;
function warnCacheOnce(error) {
  if (cacheWarned) return;
  cacheWarned = true;
  console.warn(`tweetguard: continuing without the model cache (${error?.message ?? error})`);
}

const shortHash = (hex) => `${hex.slice(0, 12)}…`;
const baseName = (path) => path.slice(path.lastIndexOf('/') + 1);

/** Formats a byte count for people: "24.8 MB". */
export function formatBytes(n) {
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  return `${(n / 1e6).toFixed(1)} MB`;
}

/** The largest model file a manifest may list (bert-base in f32 is 440 MB): nothing bigger is allocated. */
export const MAX_FILE_BYTES = 1 << 30;

/**
 * A path of plain segments (letters, digits, `.`, `_`, `-`; not starting with a dot): no `..`, no
 * percent-encoding (`%2e%2e` is `..` to a server), no scheme, query, fragment, backslash or drive letter.
 */
function isSafeRelativePath(path) {
  return typeof path === 'string' && path.length <= 256
    && path.split('/').every((part) => /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(part));
}

/**
 * Checks a parsed manifest.json and picks the files the page needs.
 * Returns {manifest, labels, maxLength, temperature, entries: {config, tokenizer, weights, modelCard|null}}.
 * Throws an Error starting with "manifest.json:" that says what is wrong.
 */
export function validateManifest(manifest) {
  const fail = (message) => {
    throw new Error(`manifest.json: ${message}`);
  };
  if (!manifest || typeof manifest !== 'object' || Array.isArray(manifest)) fail('not a JSON object');
  if (manifest.format_version !== FORMAT_VERSION) {
    fail(`unsupported format_version ${JSON.stringify(manifest.format_version)} (this page reads version ${FORMAT_VERSION})`);
  }
  const { labels, files } = manifest;
  if (!Array.isArray(labels) || labels.length < 2 || !labels.every((l) => typeof l === 'string' && l !== '')) {
    fail('"labels" must list at least two label names');
  }
  const maxLength = manifest.max_length ?? 128;
  if (!Number.isSafeInteger(maxLength) || maxLength < 2) fail('"max_length" must be an integer of at least 2');
  if (!Array.isArray(files) || files.length === 0) fail('"files" must list the model files');
  for (const [i, f] of files.entries()) {
    if (!f || typeof f !== 'object') fail(`files[${i}] is not an object`);
    if (!isSafeRelativePath(f.path)) fail(`files[${i}].path ${JSON.stringify(f.path)} is not a plain relative path`);
    if (!Number.isSafeInteger(f.bytes) || f.bytes < 0) fail(`${f.path}: "bytes" must be a non-negative integer`);
    if (f.bytes > MAX_FILE_BYTES) fail(`${f.path}: ${formatBytes(f.bytes)} is more than this page loads (${formatBytes(MAX_FILE_BYTES)})`);
    if (typeof f.sha256 !== 'string' || !SHA256_HEX.test(f.sha256)) fail(`${f.path}: "sha256" must be 64 hex digits`);
  }
  const find = (name) => files.find((f) => f.path === name) ?? files.find((f) => baseName(f.path) === name);
  const config = find('config.json') ?? fail('lists no config.json');
  const tokenizer = find('tokenizer.json') ?? fail('lists no tokenizer.json');
  const weights = find('model.int8.safetensors') ?? files.find((f) => f.path.endsWith('.safetensors'))
    ?? fail('lists no .safetensors weights file');
  const modelCard = find('MODEL_CARD.md') ?? null;
  const temperature = manifest.calibration?.temperature ?? 1;
  // Finite too: JSON's `1e999` parses as Infinity.
  if (!Number.isFinite(temperature) || !(temperature > 0)) fail('"calibration.temperature" must be a positive number');
  return { manifest, labels, maxLength, temperature, entries: { config, tokenizer, weights, modelCard } };
}

/** Throws when bytes do not match their manifest entry (size first, then SHA-256). */
export async function verifyBytes(entry, bytes) {
  if (bytes.length !== entry.bytes) {
    throw new Error(`${entry.path}: size mismatch (expected ${entry.bytes} bytes, got ${bytes.length}); `
      + 'the file is incomplete, corrupt or belongs to another model');
  }
  const actual = await sha256Hex(bytes);
  const expected = entry.sha256.toLowerCase();
  if (actual !== expected) {
    throw new Error(`${entry.path}: SHA-256 mismatch (expected ${shortHash(expected)}, got ${shortHash(actual)}); `
      + 'the file is corrupt or was tampered with');
  }
}

async function openCache() {
  if (typeof caches === 'undefined') {
    warnCacheOnce(new Error('the Cache API needs https or localhost'));
    return null;
  }
  try {
    return await caches.open(MODEL_CACHE);
  } catch (error) {
    warnCacheOnce(error);
    return null;
  }
}

/** Downloads a file with a streamed reader; onBytes(n) reports the bytes received so far. */
async function download(url, entry, onBytes) {
  let response;
  try {
    response = await fetch(url, { cache: 'no-cache' });
  } catch (error) {
    throw new Error(`${entry.path}: download failed (${error.message}); check the connection and retry`);
  }
  if (!response.ok) {
    throw new Error(`${entry.path}: download failed (HTTP ${response.status} ${response.statusText}) from ${url}`);
  }
  if (!response.body) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    onBytes(bytes.length);
    return bytes;
  }
  const reader = response.body.getReader();
  // The manifest's size is a claim, not a promise: start from it (bounded by validateManifest) and stop
  // reading as soon as the server sends more than it said.
  let buffer = new Uint8Array(Math.max(entry.bytes, 1));
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (received + value.length > entry.bytes) {
      await reader.cancel().catch(() => {});
      throw new Error(`${entry.path}: size mismatch (the server sent more than the manifest's ${entry.bytes} bytes); `
        + 'the file is corrupt or belongs to another model');
    }
    if (received + value.length > buffer.length) {
      const grown = new Uint8Array(Math.max(buffer.length * 2, received + value.length));
      grown.set(buffer.subarray(0, received));
      buffer = grown;
    }
    buffer.set(value, received);
    received += value.length;
    onBytes(received);
  }
  return received === buffer.length ? buffer : buffer.slice(0, received);
}

async function fetchManifest(manifestUrl, cache) {
  let response;
  try {
    response = await fetch(manifestUrl, { cache: 'no-cache' });
  } catch (error) {
    const cached = cache ? await cache.match(manifestUrl).catch(() => undefined) : undefined;
    if (cached) {
      console.info('tweetguard: offline, using the cached model manifest');
      return { manifest: await cached.json(), offline: true };
    }
    throw new Error(`Could not download the model manifest ${manifestUrl} (${error.message}). Is the server running?`);
  }
  if (!response.ok) {
    throw new Error(`Could not download the model manifest: HTTP ${response.status} ${response.statusText} `
      + `for ${manifestUrl}. Is a model folder served there?`);
  }
  const text = await response.text();
  try {
    return { manifest: JSON.parse(text), text, offline: false };
  } catch (error) {
    throw new Error(`manifest.json: not valid JSON (${error.message})`);
  }
}

function rolesOf(spec) {
  const { config, tokenizer, weights, modelCard } = spec.entries;
  const roles = [['config', config], ['tokenizer', tokenizer], ['weights', weights]];
  if (modelCard) roles.push(['modelCard', modelCard]);
  return roles;
}

function keepOnlyInMemory(shas) {
  for (const sha of memory.keys()) if (!shas.has(sha)) memory.delete(sha);
}

function decodeCard(bytes) {
  return bytes ? new TextDecoder().decode(bytes) : null;
}

/**
 * Loads the model folder served at `modelUrl` (relative to `baseHref`, default this script's location).
 * onProgress({phase: 'download'|'verify', loaded, total, file}) reports bytes over the manifest's total.
 * Returns {spec, files: {config, tokenizer, weights}, modelCard, modelCardError, stats}.
 */
export async function loadModelFromUrl(modelUrl, { onProgress = () => {}, baseHref = globalThis.location?.href } = {}) {
  const base = new URL(modelUrl, baseHref);
  base.search = '';
  base.hash = '';
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  const cache = await openCache();
  const manifestUrl = new URL(MANIFEST_NAME, base).href;
  const { manifest, text, offline } = await fetchManifest(manifestUrl, cache);
  const spec = validateManifest(manifest);
  const roles = rolesOf(spec);
  const total = roles.reduce((sum, [, entry]) => sum + entry.bytes, 0);
  const stats = { fromMemory: 0, fromCache: 0, downloaded: 0, cacheAvailable: cache !== null, offline };
  const bytesByRole = {};
  let done = 0;
  let modelCardError = null;

  for (const [role, entry] of roles) {
    const url = new URL(entry.path, base).href;
    const key = `${url}?sha256=${entry.sha256.toLowerCase()}`;
    const progress = (phase, loaded) => onProgress({ phase, loaded, total, file: entry.path });
    try {
      bytesByRole[role] = await getVerifiedFile({ url, key, entry, cache, stats, progress, done });
    } catch (error) {
      if (role !== 'modelCard') throw error;
      modelCardError = error.message;
      console.warn(`tweetguard: ${error.message}`);
    }
    done += entry.bytes;
    progress('download', done);
  }

  if (cache) {
    if (text !== undefined) {
      await cache.put(manifestUrl, new Response(text, { headers: { 'content-type': 'application/json' } }))
        .catch(warnCacheOnce);
    }
    await pruneCache(cache, base.href, new Set(roles.map(([, e]) => e.sha256.toLowerCase())));
  }
  keepOnlyInMemory(new Set(roles.map(([, e]) => e.sha256.toLowerCase())));
  const { config, tokenizer, weights, modelCard } = bytesByRole;
  return { spec, files: { config, tokenizer, weights }, modelCard: decodeCard(modelCard), modelCardError, stats };
}

async function getVerifiedFile({ url, key, entry, cache, stats, progress, done }) {
  const sha = entry.sha256.toLowerCase();
  const remembered = memory.get(sha);
  if (remembered) {
    stats.fromMemory++;
    return remembered;
  }
  if (cache) {
    const hit = await cache.match(key).catch(() => undefined);
    if (hit) {
      const bytes = new Uint8Array(await hit.arrayBuffer());
      progress('verify', done);
      try {
        await verifyBytes(entry, bytes);
        stats.fromCache++;
        memory.set(sha, bytes);
        return bytes;
      } catch (error) {
        console.warn(`tweetguard: cached ${error.message}; downloading it again`);
        await cache.delete(key).catch(() => {});
      }
    }
  }
  const bytes = await download(url, entry, (n) => progress('download', done + Math.min(n, entry.bytes)));
  progress('verify', done);
  await verifyBytes(entry, bytes);
  stats.downloaded++;
  memory.set(sha, bytes);
  if (cache) {
    const response = new Response(bytes, { headers: { 'content-type': 'application/octet-stream' } });
    await cache.put(key, response).catch(warnCacheOnce);
  }
  return bytes;
}

/** Deletes cached files of this model folder that the current manifest no longer lists. */
async function pruneCache(cache, baseHref, keepShas) {
  try {
    for (const request of await cache.keys()) {
      const url = new URL(request.url);
      const sha = url.searchParams.get('sha256');
      if (sha && request.url.startsWith(baseHref) && !keepShas.has(sha)) await cache.delete(request);
    }
  } catch (error) {
    warnCacheOnce(error);
  }
}

/** The bytes of a chosen file, its size checked against the manifest before it is read. */
async function toBytes(source, entry) {
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (source && typeof source.arrayBuffer === 'function') {
    if (typeof source.size === 'number' && source.size !== entry.bytes) {
      throw new Error(`${entry.path}: size mismatch (expected ${entry.bytes} bytes, got ${source.size}); `
        + 'the file is incomplete, corrupt or belongs to another model');
    }
    return new Uint8Array(await source.arrayBuffer());
  }
  throw new Error('not a file');
}

/**
 * Loads a model from files chosen on disk. `manifest` is the parsed manifest.json (or its File/Blob/text);
 * `files` maps {config, tokenizer, weights, modelCard?} to File/Blob/ArrayBuffer/Uint8Array.
 * The same size and SHA-256 checks as loadModelFromUrl.
 */
export async function loadModelFromFiles(manifest, files, { onProgress = () => {} } = {}) {
  let parsed = manifest;
  if (typeof manifest === 'string' || (manifest && typeof manifest.text === 'function')) {
    const text = typeof manifest === 'string' ? manifest : await manifest.text();
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new Error(`manifest.json: not valid JSON (${error.message})`);
    }
  }
  const spec = validateManifest(parsed);
  const roles = rolesOf(spec);
  const total = roles.reduce((sum, [, entry]) => sum + entry.bytes, 0);
  const bytesByRole = {};
  let done = 0;
  let modelCardError = null;
  for (const [role, entry] of roles) {
    try {
      if (!files?.[role]) throw new Error(`${entry.path} is missing from the chosen files`);
      const bytes = await toBytes(files[role], entry);
      onProgress({ phase: 'verify', loaded: done, total, file: entry.path });
      await verifyBytes(entry, bytes);
      bytesByRole[role] = bytes;
    } catch (error) {
      if (role !== 'modelCard') throw error;
      modelCardError = error.message;
    }
    done += entry.bytes;
    onProgress({ phase: 'download', loaded: done, total, file: entry.path });
  }
  const { config, tokenizer, weights, modelCard } = bytesByRole;
  return {
    spec,
    files: { config, tokenizer, weights },
    modelCard: decodeCard(modelCard),
    modelCardError,
    stats: { fromMemory: 0, fromCache: 0, downloaded: 0, cacheAvailable: false, offline: false, fromDisk: true },
  };
}

/**
 * Sorts files chosen on disk (a folder via webkitdirectory, or single files) for loadModelFromFiles:
 * finds manifest.json (the shallowest one) and maps the manifest's paths, relative to its folder, to Files.
 * Returns {manifestFile, fileFor(path)} or throws when there is no manifest.json.
 */
export function indexChosenFiles(fileList) {
  const files = Array.from(fileList);
  const relPath = (f) => f.webkitRelativePath || f.name;
  const manifests = files.filter((f) => f.name === MANIFEST_NAME)
    .sort((a, b) => relPath(a).split('/').length - relPath(b).split('/').length);
  if (manifests.length === 0) {
    throw new Error('No manifest.json among the chosen files: choose the model folder (the one holding '
      + 'manifest.json, config.json, tokenizer.json and the .safetensors weights), or select those files together.');
  }
  const manifestFile = manifests[0];
  const dir = relPath(manifestFile).slice(0, -MANIFEST_NAME.length);
  const byPath = new Map();
  for (const f of files) {
    const p = relPath(f);
    if (p.startsWith(dir)) byPath.set(p.slice(dir.length), f);
  }
  const byName = new Map(files.map((f) => [f.name, f]));
  const fileFor = (path) => byPath.get(path) ?? byName.get(baseName(path)) ?? null;
  return { manifestFile, fileFor };
}

/** Deletes the cached model files. Returns {deleted: boolean, files: number, reason?}. */
export async function clearModelCache() {
  memory.clear();
  if (typeof caches === 'undefined') return { deleted: false, files: 0, reason: 'the Cache API is unavailable here' };
  let files = 0;
  try {
    if (await caches.has(MODEL_CACHE)) {
      const cache = await caches.open(MODEL_CACHE);
      files = (await cache.keys()).filter((r) => r.url.includes('?sha256=')).length;
    }
    return { deleted: await caches.delete(MODEL_CACHE), files };
  } catch (error) {
    return { deleted: false, files: 0, reason: error.message };
  }
}

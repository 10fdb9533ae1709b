// Unit tests for www/sw.js, run in a vm context with the service worker globals stubbed: a build's glue and
// module are cached and served offline only as a pair, and a foreign program at the scope makes the
// worker leave.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const SOURCE = readFileSync(new URL('../sw.js', import.meta.url), 'utf8');
const SCOPE = 'http://127.0.0.1:8080/';

/** A fresh worker: its handlers, a Cache Storage stub, and a network that serves `files` (or is down). */
function worker(files) {
  const stores = new Map();
  const cacheOf = (name) => {
    if (!stores.has(name)) stores.set(name, new Map());
    const entries = stores.get(name);
    return {
      put: async (key, response) => { entries.set(String(key), response.clone()); },
      match: async (key) => entries.get(String(key))?.clone(),
    };
  };
  const caches = {
    open: async (name) => cacheOf(name),
    keys: async () => [...stores.keys()],
    delete: async (name) => stores.delete(name),
    match: async (key, { cacheName }) => stores.get(cacheName)?.get(String(key))?.clone(),
  };
  const net = { files, down: false, fetched: [] };
  const handlers = {};
  const registration = { scope: SCOPE, unregistered: false, unregister: async () => { registration.unregistered = true; } };
  const fetch = async (url) => {
    const href = String(url instanceof Request ? url.url : url);
    net.fetched.push(href);
    if (net.down) throw new TypeError('Failed to fetch');
    const path = new URL(href).pathname.slice(1) || './';
    const body = net.files[path];
    const response = body === undefined ? new Response('nope', { status: 404 }) : new Response(body);
    Object.defineProperty(response, 'type', { value: 'basic' });
    return response;
  };
  const self = { registration, addEventListener: (type, f) => { handlers[type] = f; }, skipWaiting: async () => {}, clients: { claim: async () => {} } };
  vm.runInNewContext(SOURCE, { self, caches, fetch, Response, Headers, Request, URL, Promise, console, Date, Math, Map, Set });
  const run = async (type, request) => {
    let done;
    const event = { request, waitUntil: (p) => { done = p; }, respondWith: (p) => { done = p; } };
    handlers[type](event);
    return done;
  };
  const get = (path) => run('fetch', new Request(new URL(path, SCOPE)));
  return { run, get, net, stores, registration };
}

const FILES = {
  './': '<html><meta name="application-name" content="tweetguard">',
  'index.html': '<html><meta name="application-name" content="tweetguard">',
  'app.js': 'app v1',
  'pkg/tweetguard.js': 'glue v1',
  'pkg/tweetguard_bg.wasm': 'wasm v1',
  'pkg/relaxed/tweetguard.js': 'relaxed glue v1',
  'pkg/relaxed/tweetguard_bg.wasm': 'relaxed wasm v1',
};

test('a build is cached and served offline as a pair', async () => {
  const sw = worker({ ...FILES });
  await sw.run('install');
  sw.net.down = true;
  assert.equal(await (await sw.get('pkg/tweetguard.js')).text(), 'glue v1');
  assert.equal(await (await sw.get('pkg/tweetguard_bg.wasm')).text(), 'wasm v1');
  assert.equal(await (await sw.get('app.js')).text(), 'app v1');
  // The relaxed build is not precached: offline, it fails rather than mixing builds.
  await assert.rejects(sw.get('pkg/relaxed/tweetguard_bg.wasm'), /Failed to fetch/);
});

test('a new build replaces both halves, each downloaded once, so offline never mixes two builds', async () => {
  const sw = worker({ ...FILES });
  await sw.run('install');
  Object.assign(sw.net.files, { 'pkg/tweetguard.js': 'glue v2', 'pkg/tweetguard_bg.wasm': 'wasm v2' });
  const before = sw.net.fetched.length;
  assert.equal(await (await sw.get('pkg/tweetguard.js')).text(), 'glue v2');
  await sw.get('pkg/tweetguard_bg.wasm'); // the page loads the glue, then its module
  await new Promise((resolve) => setTimeout(resolve, 10)); // the pair is cached in the background
  assert.equal(sw.net.fetched.length - before, 2, `fetched ${sw.net.fetched.slice(before)}`);
  sw.net.down = true;
  assert.equal(await (await sw.get('pkg/tweetguard_bg.wasm')).text(), 'wasm v2');
  // A glue cached alone (another tag) is never served with the other build's module.
  const [name] = [...sw.stores.keys()];
  const lone = new Response('glue v3', { headers: { 'x-tweetguard-build': 'other' } });
  sw.stores.get(name).set(new URL('pkg/tweetguard.js', SCOPE).href, lone);
  await assert.rejects(sw.get('pkg/tweetguard.js'), /Failed to fetch/);
});

test('another program at the scope makes the worker forget its cache and unregister', async () => {
  const sw = worker({ ...FILES });
  await sw.run('install');
  assert.equal(sw.stores.size, 1);
  assert.match([...sw.stores.keys()][0], /^tweetguard-shell:\/:v\d+$/);
  sw.net.files['./'] = '<html><title>some other app</title>';
  assert.equal(await (await sw.get('./')).text(), '<html><title>some other app</title>');
  assert.equal(sw.stores.size, 0);
  assert.ok(sw.registration.unregistered);
});

test('paths outside the shell and the model folder are never answered', async () => {
  const sw = worker({ ...FILES });
  assert.equal(await sw.get('model/model.int8.safetensors'), undefined);
  assert.equal(await sw.get('other-app/index.js'), undefined);
});

test('the shell precaches every module the page, its workers and the bench page load', () => {
  const shell = new Set([...SOURCE.match(/const SHELL_FILES = \[([^\]]*)\]/)[1].matchAll(/'([^']+)'/g)].map((m) => m[1]));
  const www = new URL('../', import.meta.url);
  const seen = new Set();
  const visit = (file) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(new URL(file, www), 'utf8');
    const references = [
      ...text.matchAll(/^\s*import\s[^'"]*['"]\.\/([^'"]+\.js)['"]/gm), // static imports
      ...text.matchAll(/new URL\(\s*['"]\.\/([^'"]+\.js)['"]/g), // workers
      ...text.matchAll(/<script[^>]+src="([^"]+\.js)"/g), // pages
    ].map((m) => m[1]).filter((f) => !f.startsWith('pkg/'));
    references.forEach(visit);
  };
  ['index.html', 'bench.html'].forEach(visit);
  assert.ok(seen.has('input-worker.js') && seen.has('worker.js') && seen.has('protocol.js'), [...seen].join(', '));
  // sw.js is the service worker itself: the browser fetches and updates it, never from the cache.
  const missing = [...seen].filter((f) => f !== 'sw.js' && !shell.has(f));
  assert.deepEqual(missing, [], 'loaded by the page but not precached: offline, these would fail');
});

// sw.js: service worker for offline use. Precaches the page shell on install and serves shell files
// network-first with a cache fallback (so changes show up at once, and the page works offline after
// the first visit). It never touches the model folder (model/): model-store.js caches that itself.

const VERSION = 'v2';
const SHELL_CACHE = `tweetguard-shell-${VERSION}`;
const SHELL_PREFIX = 'tweetguard-shell-';
const SHELL_FILES = [
  './',
  'index.html',
  'style.css',
  'favicon.svg',
  'app.js',
  'worker.js',
  'pool.js',
  'wasm-build.js',
  'model-store.js',
  'csv.js',
  'explain.js',
  'sha256.js',
  'examples.js',
  'bench.html',
  'bench.js',
  'pkg/tweetguard.js',
  'pkg/tweetguard_bg.wasm',
];
// The relaxed-SIMD build: cached when the worker loads it (only browsers that run it fetch it), not precached.
const CACHED_WHEN_FETCHED = ['pkg/relaxed/tweetguard.js', 'pkg/relaxed/tweetguard_bg.wasm'];

const scopeUrl = new URL(self.registration.scope);
const shellPaths = new Set([...SHELL_FILES, ...CACHED_WHEN_FETCHED].map((f) => new URL(f, scopeUrl).pathname));
const modelPath = new URL('model/', scopeUrl).pathname;

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL_CACHE);
    // One by one, so a missing optional file does not stop the rest from being cached.
    await Promise.all(SHELL_FILES.map(async (file) => {
      try {
        const response = await fetch(new URL(file, scopeUrl), { cache: 'no-cache' });
        if (response.ok) await cache.put(new URL(file, scopeUrl).href, response);
      } catch (error) {
        console.info(`tweetguard sw: could not precache ${file} (${error.message})`);
      }
    }));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(SHELL_PREFIX) && name !== SHELL_CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== scopeUrl.origin || url.pathname.startsWith(modelPath)) return;
  if (!shellPaths.has(url.pathname)) return;
  event.respondWith(networkFirst(request, url));
});

async function networkFirst(request, url) {
  const key = url.origin + url.pathname; // one entry per file, whatever the query string
  try {
    const response = await fetch(request);
    if (response.ok && response.type === 'basic') {
      const copy = response.clone();
      caches.open(SHELL_CACHE).then((cache) => cache.put(key, copy)).catch(() => {});
    }
    return response;
  } catch (error) {
    const cached = await caches.match(key, { cacheName: SHELL_CACHE });
    if (cached) return cached;
    throw error;
  }
}

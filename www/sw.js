// sw.js: service worker for offline use. Precaches the page shell on install and serves shell files
// network-first with a cache fallback (so changes show up at once, and the page works offline after
// the first visit). It never touches the model folder (model/): model-store.js caches that itself.
//
// Two rules keep the cache honest:
// - A wasm build's JS glue and its .wasm are one unit: they are cached together, tagged with one id, and
//   served offline only as a matching pair (a glue from one build with the .wasm of another fails to
//   instantiate). The pair is stored when the module arrives, with the glue fetched just before it.
// - The cache is this app's, in this scope: its name carries the scope, and a page at the scope that is
//   not this app (another program served later on the same 127.0.0.1 port) makes the worker delete its
//   cache and unregister, so it never answers for that program.

const VERSION = 'v6';
const APP_MARKER = '<meta name="application-name" content="tweetguard">';
const scopeUrl = new URL(self.registration.scope);
const SHELL_PREFIX = `tweetguard-shell:${scopeUrl.pathname}:`;
const SHELL_CACHE = `${SHELL_PREFIX}${VERSION}`;
const SHELL_FILES = [
  './',
  'index.html',
  'style.css',
  'favicon.svg',
  'app.js',
  'page-state.js',
  'model-panel.js',
  'model-metrics.js',
  'input-panel.js',
  'run.js',
  'results-view.js',
  'worker.js',
  'pool.js',
  'wasm-build.js',
  'model-store.js',
  'csv.js',
  'input-file.js',
  'input-worker.js',
  'protocol.js',
  'results.js',
  'explain.js',
  'sha256.js',
  'examples.js',
  'bench.html',
  'bench.js',
];
// Each build's glue and module. The baseline build is precached; the relaxed-SIMD build is cached when
// the worker loads it (only browsers that run it fetch it).
const BUILDS = [
  { glue: 'pkg/tweetguard.js', wasm: 'pkg/tweetguard_bg.wasm', precache: true },
  { glue: 'pkg/relaxed/tweetguard.js', wasm: 'pkg/relaxed/tweetguard_bg.wasm', precache: false },
];
const PAIR_HEADER = 'x-tweetguard-build';

const pathOf = (file) => new URL(file, scopeUrl).pathname;
const keyOf = (file) => new URL(file, scopeUrl).href;
const shellPaths = new Set(SHELL_FILES.map(pathOf));
const buildOf = new Map(BUILDS.flatMap((b) => [[pathOf(b.glue), b], [pathOf(b.wasm), b]]));
const pagePaths = new Set([pathOf('./'), pathOf('index.html')]);
const modelPath = pathOf('model/');

/** `response` with the build tag `id`, as the cache stores it. */
async function tagged(response, id) {
  const headers = new Headers(response.headers);
  headers.set(PAIR_HEADER, id);
  return new Response(await response.arrayBuffer(), { status: response.status, statusText: response.statusText, headers });
}

/**
 * Caches a build's glue and module as one unit, from the network responses in hand (`glue`, `wasm`); a
 * missing one is fetched. Nothing is cached unless both arrived.
 */
async function cacheBuild(build, { glue = null, wasm = null } = {}) {
  const fetchFile = (file) => fetch(keyOf(file), { cache: 'no-cache' });
  [glue, wasm] = await Promise.all([glue ?? fetchFile(build.glue), wasm ?? fetchFile(build.wasm)]);
  if (!glue.ok || !wasm.ok) return;
  const id = `${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const cache = await caches.open(SHELL_CACHE);
  await cache.put(keyOf(build.glue), await tagged(glue, id));
  await cache.put(keyOf(build.wasm), await tagged(wasm, id));
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL_CACHE);
    // One by one, so a missing optional file does not stop the rest from being cached.
    await Promise.all([
      ...SHELL_FILES.map(async (file) => {
        try {
          const response = await fetch(keyOf(file), { cache: 'no-cache' });
          if (response.ok) await cache.put(keyOf(file), response);
        } catch (error) {
          console.info(`tweetguard sw: could not precache ${file} (${error.message})`);
        }
      }),
      ...BUILDS.filter((b) => b.precache).map((b) => cacheBuild(b).catch((error) => {
        console.info(`tweetguard sw: could not precache ${b.glue} (${error.message})`);
      })),
    ]);
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
  if (buildOf.has(url.pathname)) event.respondWith(networkFirstBuild(url, buildOf.get(url.pathname)));
  else if (shellPaths.has(url.pathname)) event.respondWith(networkFirst(request, url));
});

/** Another program now answers at this scope: forget this app's cache and stop answering for it. */
async function leave() {
  for (const name of await caches.keys()) {
    if (name.startsWith(SHELL_PREFIX)) await caches.delete(name);
  }
  await self.registration.unregister();
}

async function networkFirst(request, url) {
  const key = url.origin + url.pathname; // one entry per file, whatever the query string
  let response;
  try {
    response = await fetch(request);
  } catch (error) {
    const cached = await caches.match(key, { cacheName: SHELL_CACHE });
    if (cached) return cached;
    throw error;
  }
  if (response.ok && response.type === 'basic') {
    if (pagePaths.has(url.pathname) && !(await response.clone().text()).includes(APP_MARKER)) {
      await leave();
      return response;
    }
    const copy = response.clone();
    caches.open(SHELL_CACHE).then((cache) => cache.put(key, copy)).catch(() => {});
  }
  return response;
}

// A build's glue as it came from the network, held until its module follows (the page loads the glue, then
// the module it names): the two are then cached as a pair, and nothing is downloaded twice.
const glueInHand = new Map();

async function networkFirstBuild(url, build) {
  const file = url.pathname === pathOf(build.glue) ? build.glue : build.wasm;
  try {
    const response = await fetch(keyOf(file), { cache: 'no-cache' });
    if (response.ok && response.type === 'basic') {
      if (file === build.glue) {
        glueInHand.set(build.glue, response.clone());
      } else {
        const glue = glueInHand.get(build.glue) ?? null;
        glueInHand.delete(build.glue);
        cacheBuild(build, { glue, wasm: response.clone() }).catch(() => {});
      }
    }
    return response;
  } catch (error) {
    const cache = await caches.open(SHELL_CACHE);
    const [glue, wasm] = await Promise.all([cache.match(keyOf(build.glue)), cache.match(keyOf(build.wasm))]);
    const id = glue?.headers.get(PAIR_HEADER);
    if (id && id === wasm?.headers.get(PAIR_HEADER)) return file === build.glue ? glue : wasm;
    throw error;
  }
}

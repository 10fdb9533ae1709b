// bench.js: the benchmark page. Loads the model from model/ through the same worker and model store as
// the classifier page, then classifies N tweets once per batch size and reports model load time,
// tweets/s and p50/p95 latency per classify call. The JSON result lands in
// <pre data-testid="bench-result" data-state="done"> for scripts. URL: ?n=256&backend=cpu&batch=1,32.

import { decodeText, extractTexts, parseInputFile } from './csv.js';
import { EXAMPLES } from './examples.js';
import { WorkerPool, defaultPoolSize } from './pool.js';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const ui = {
  form: $('bench-form'),
  n: $('bench-n'),
  backend: $('bench-backend'),
  batch: $('bench-batch'),
  workers: $('bench-workers'),
  file: $('bench-file'),
  run: $('bench-run'),
  status: $('bench-status'),
  progress: $('bench-progress'),
  error: $('bench-error'),
  rows: $('bench-rows'),
  meta: $('bench-meta'),
  result: $('bench-result'),
};

let fileTexts = null;
let running = false;

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function parseBatchSizes(text) {
  const sizes = text.split(/[,\s]+/).filter(Boolean).map(Number);
  if (sizes.length === 0 || sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 512)) {
    throw new Error(`batch sizes must be whole numbers from 1 to 512, e.g. 1,32 (got "${text}")`);
  }
  return sizes;
}

function buildTexts(n) {
  const source = fileTexts?.length ? fileTexts : EXAMPLES.map((e) => e.text);
  return Array.from({ length: n }, (_, i) => source[i % source.length]);
}

const round = (x, digits = 2) => (x === null ? null : Number(x.toFixed(digits)));

/** Passes `?profile=1` times; each kernel reports its median. */
const PROFILE_PASSES = 7;

/** A small promise wrapper around the classifier workers (`workers` of them, see pool.js). */
function createClient(workers) {
  const workerUrl = new URL('./worker.js', import.meta.url);
  const worker = new WorkerPool(() => new Worker(workerUrl, { type: 'module' }), workers);
  const handlers = new Set();
  const pool = { ready: 0, size: 1 };
  worker.onmessage = (event) => {
    if (event.data?.type === 'workers') Object.assign(pool, event.data);
    handlers.forEach((h) => h(event.data));
  };
  let failWith = null;
  worker.onerror = (event) => {
    event.preventDefault();
    failWith?.(new Error(`the worker stopped: ${event.message || 'its script could not be loaded'}`));
  };
  const request = (message, onMessage) => new Promise((resolve, reject) => {
    failWith = reject;
    const handler = (m) => {
      if (m.type === 'error' && (m.id === message.id || m.op === message.type)) {
        handlers.delete(handler);
        reject(new Error(m.message));
      } else if (onMessage(m, resolve) === true) {
        handlers.delete(handler);
      }
    };
    handlers.add(handler);
    worker.postMessage(message);
  });
  /** Resolves once every worker of the pool has loaded the model (the followers load after the first). */
  const allReady = () => new Promise((resolve) => {
    const check = () => {
      if (pool.ready < pool.size) return false;
      handlers.delete(check);
      resolve({ ...pool });
      return true;
    };
    if (!check()) handlers.add(check);
  });
  return { worker, request, allReady };
}

async function runBenchmark() {
  if (running) return;
  running = true;
  ui.run.disabled = true;
  ui.error.hidden = true;
  ui.rows.replaceChildren();
  ui.meta.textContent = '';
  ui.result.textContent = '';
  ui.result.dataset.state = 'running';
  document.body.dataset.appState = 'busy';
  let client = null;
  try {
    const n = Number(ui.n.value);
    if (!Number.isInteger(n) || n < 1) throw new Error(`N must be a positive whole number (got "${ui.n.value}")`);
    const batchSizes = parseBatchSizes(ui.batch.value);
    const backend = ui.backend.value;
    const texts = buildTexts(n);
    const wantedWorkers = ui.workers.value === 'all' ? defaultPoolSize() : Number(ui.workers.value);
    if (!Number.isInteger(wantedWorkers) || wantedWorkers < 1) throw new Error(`workers must be a whole number or "all" (got "${ui.workers.value}")`);
    client = createClient(wantedWorkers);

    setStatus('Loading the model…', null);
    const loadStart = performance.now();
    const ready = await client.request({ type: 'load', modelUrl: new URL('model/', location.href).href, backend }, (m, resolve) => {
      if (m.type === 'progress' && m.phase !== 'classify') setStatus(`Loading the model (${m.phase})…`, m.loaded / (m.total || 1));
      if (m.type !== 'ready') return false;
      resolve(m);
      return true;
    });
    const loadMs = performance.now() - loadStart;
    if (ready.info.optimized === false && params.get('dev') !== '1') {
      throw new Error('This wasm package is a development build (scripts/build-wasm.sh --dev, which the tests make): '
        + 'its timings say nothing about what users get. Build the release package with scripts/build-wasm.sh, '
        + 'or add dev=1 to the URL to time it anyway.');
    }
    // Every worker of the pool loaded before timing (the followers load after the first).
    const workers = await client.allReady();
    const poolMs = performance.now() - loadStart;

    // Warm-up call, not measured: first-call allocations and code paths.
    let nextId = 1;
    const classify = (batch, label) => {
      const id = nextId++;
      const calls = [];
      const started = performance.now();
      return client.request({ type: 'classify', id, texts: batch.texts, batchSize: batch.size }, (m, resolve) => {
        if (m.id !== id) return false;
        if (m.type === 'result') {
          calls.push(m.ms);
          setStatus(`${label}: ${m.start + m.results.length} of ${batch.texts.length}`, (m.start + m.results.length) / batch.texts.length);
        }
        if (m.type !== 'done') return false;
        resolve({ done: m, calls, wallMs: performance.now() - started });
        return true;
      });
    };
    await classify({ texts: texts.slice(0, Math.min(8, n)), size: 8 }, 'Warming up');

    const runs = [];
    let last = null;
    for (const size of batchSizes) {
      const { done, calls, wallMs } = await classify({ texts, size }, `Batch size ${size}`);
      last = done;
      const sorted = [...calls].sort((a, b) => a - b);
      const run = {
        batchSize: size,
        calls: calls.length,
        tweets: n,
        totalMs: round(wallMs),
        tweetsPerSecond: round((n / wallMs) * 1000),
        p50Ms: round(percentile(sorted, 50)),
        p95Ms: round(percentile(sorted, 95)),
        meanMs: round(calls.reduce((a, b) => a + b, 0) / calls.length),
        tokenizeMs: round(done.timings.tokenizeMs),
        inferMs: round(done.timings.inferMs),
      };
      runs.push(run);
      addRow(run);
    }

    // ?profile=1: the time of each kernel in a pass over 8 tweets, summed by kernel; the median of
    // PROFILE_PASSES passes per kernel (one pass's times vary by 10-20 % on a shared machine).
    let profile = null;
    if (params.get('profile') === '1') {
      const passes = [];
      for (let i = 0; i < PROFILE_PASSES; i++) {
        const kernels = await client.request({ type: 'profile', id: nextId++, texts: texts.slice(0, 8) }, (m, resolve) => {
          if (m.type !== 'profile') return false;
          resolve(m.kernels);
          return true;
        });
        passes.push(kernels.reduce((by, { kernel, ms }) => {
          by[kernel] ??= { kernel, calls: 0, ms: 0 };
          by[kernel].calls++;
          by[kernel].ms += ms;
          return by;
        }, {}));
      }
      const medians = Object.values(passes[0]).map(({ kernel, calls }) => {
        const times = passes.map((pass) => pass[kernel].ms).sort((a, b) => a - b);
        return { kernel, calls, ms: percentile(times, 50) };
      });
      const total = medians.reduce((sum, k) => sum + k.ms, 0);
      profile = medians.map((k) => ({ ...k, ms: round(k.ms, 3), share: round(k.ms / total, 3) }));
    }

    const result = {
      backend: last?.backend ?? ready.info.backend,
      ...(last?.fallbackReason ? { fallbackReason: last.fallbackReason } : {}),
      ...(ready.info.adapter ? { adapter: ready.info.adapter } : {}),
      backendRequested: backend,
      n,
      input: fileTexts?.length ? 'file' : 'examples',
      loadMs: round(loadMs),
      modelFrom: ready.stats?.downloaded === 0 ? 'cache' : 'network',
      model: { dtype: ready.info.dtype, maxLength: ready.info.maxLength, labels: ready.info.labels },
      cpuKernel: ready.info.cpuKernel ?? null,
      cpuKernelReason: ready.info.cpuKernelReason ?? null,
      wasmHeapBytes: ready.info.heapBytes ?? null,
      wasmBuild: ready.info.wasmBuild ?? null,
      optimized: ready.info.optimized ?? null,
      workers: workers.ready,
      allWorkersLoadMs: round(poolMs),
      ...(profile ? { profile } : {}),
      runs,
      userAgent: navigator.userAgent,
      crossOriginIsolated: globalThis.crossOriginIsolated === true,
      hardwareConcurrency: navigator.hardwareConcurrency ?? null,
      date: new Date().toISOString(),
    };
    ui.meta.textContent = `Backend ${result.backend}${result.cpuKernel ? ` (${result.cpuKernel})` : ''}`
      + `${result.fallbackReason ? ` (${result.fallbackReason})` : ''}; `
      + `model loaded in ${Math.round(loadMs)} ms from the ${result.modelFrom}.`;
    ui.result.textContent = JSON.stringify(result, null, 2);
    ui.result.dataset.state = 'done';
    setStatus('Done', 1);
  } catch (error) {
    ui.error.textContent = error.message;
    ui.error.hidden = false;
    ui.result.textContent = JSON.stringify({ error: error.message }, null, 2);
    ui.result.dataset.state = 'error';
    setStatus('Failed', 0);
  } finally {
    client?.worker.terminate();
    running = false;
    ui.run.disabled = false;
    document.body.dataset.appState = 'ready';
  }
}

function setStatus(text, fraction) {
  ui.status.textContent = text;
  if (fraction === null) ui.progress.removeAttribute('value');
  else ui.progress.value = Math.min(1, Math.max(0, fraction));
}

function addRow(run) {
  const tr = document.createElement('tr');
  const cells = [run.batchSize, run.calls, run.tweetsPerSecond.toFixed(1), `${run.p50Ms} ms`, `${run.p95Ms} ms`, `${Math.round(run.totalMs)} ms`];
  for (const value of cells) {
    const td = document.createElement('td');
    td.textContent = String(value);
    tr.append(td);
  }
  ui.rows.append(tr);
}

async function onFile() {
  const file = ui.file.files[0];
  if (!file) {
    fileTexts = null;
    return;
  }
  const parsed = parseInputFile(decodeText(await file.arrayBuffer()), file.name);
  fileTexts = extractTexts(parsed).texts;
  setStatus(`${fileTexts.length} tweets from ${file.name} (repeated or cut to N)`, 0);
}

function main() {
  if (params.has('n')) ui.n.value = params.get('n');
  if (['auto', 'webgpu', 'cpu'].includes(params.get('backend'))) ui.backend.value = params.get('backend');
  if (params.has('batch')) ui.batch.value = params.get('batch');
  if (params.has('workers')) ui.workers.value = params.get('workers');
  ui.form.addEventListener('submit', (event) => {
    event.preventDefault();
    runBenchmark();
  });
  ui.file.addEventListener('change', () => onFile().catch((error) => {
    ui.error.textContent = `Could not read the file: ${error.message}`;
    ui.error.hidden = false;
  }));
  document.body.dataset.appState = 'ready';
  if (params.get('autorun') !== '0') runBenchmark();
  else setStatus('Ready: press Run', 0);
}

main();

// worker.js: the classifier's module worker. Loads a model once (files via model-store.js, inference via
// the wasm package), classifies in batches and yields to its event loop between batches so that `cancel`
// is seen, and explains single tweets by word occlusion. Jobs run one at a time, in arrival order;
// `cancel` acts at once. The message protocol is documented in docs/web-page.md and typed in protocol.js.

import { loadModelFromFiles, loadModelFromUrl } from './model-store.js';
import { loadWasmPackage } from './wasm-build.js';
import { MAX_EXPLAIN_WORDS, botLabelOf, contextWords, occlusionDeltas, occlusionTexts } from './explain.js';
import { classifyBatchSize } from './protocol.js';

const BACKENDS = ['auto', 'webgpu', 'cpu'];

let classifier = null;
let model = null; // {info, botLabel}
let wasm = null; // the wasm package's exports and which build they are, once loaded
let queue = Promise.resolve();
const pending = new Set(); // ids of queued or running classify/explain jobs
const cancelled = new Set(); // ids asked to stop
const acked = new Map(); // classify id -> highest batchIndex the page has acknowledged (flow control)
const waiters = new Set(); // callbacks re-checked on every ack or cancel

const post = (message) => self.postMessage(message);
const messageOf = (error) => (error instanceof Error ? error.message : String(error)) || 'unknown error';

// A macrotask yield through a MessageChannel: unlike nested setTimeout(0), it is not clamped to 4 ms.
const channel = new MessageChannel();
const wakeups = [];
channel.port1.onmessage = () => wakeups.shift()?.();
function yieldToEventLoop() {
  return new Promise((resolve) => {
    wakeups.push(resolve);
    channel.port2.postMessage(null);
  });
}

/** wasm-bindgen may hand maps over as Map objects; the page wants plain JSON-like objects. */
function toPlain(value) {
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [k, toPlain(v)]));
  if (Array.isArray(value)) return value.map(toPlain);
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toPlain(v)]));
  }
  return value;
}

function wakeWaiters() {
  for (const check of [...waiters]) check();
}

/** Flow control: waits until fewer than `window` posted batches of job `id` are unacknowledged. */
function waitForAcks(id, batchIndex, window) {
  return new Promise((resolve) => {
    const check = () => {
      const unacknowledged = batchIndex - (acked.get(id) ?? -1) - 1;
      if (unacknowledged < window || cancelled.has(id)) {
        waiters.delete(check);
        resolve();
      } else {
        waiters.add(check);
      }
    };
    check();
  });
}

function requireModel() {
  if (!classifier) throw new Error('No model is loaded: wait for it to load, or load one first');
  return classifier;
}

function enqueue(op, id, job) {
  if (id !== undefined) pending.add(id);
  queue = queue
    .then(job)
    .catch((error) => {
      const message = { type: 'error', op, message: messageOf(error) };
      if (id !== undefined) message.id = id;
      if (op === 'load') message.modelKept = classifier !== null;
      post(message);
    })
    .finally(() => {
      pending.delete(id);
      cancelled.delete(id);
      acked.delete(id);
    });
}

self.onmessage = ({ data: message }) => {
  switch (message?.type) {
    case 'cancel':
      if (pending.has(message.id)) cancelled.add(message.id);
      wakeWaiters();
      break;
    case 'ack':
      if (pending.has(message.id)) acked.set(message.id, Math.max(acked.get(message.id) ?? -1, message.batchIndex));
      wakeWaiters();
      break;
    case 'load':
      enqueue('load', message.id, () => load(message));
      break;
    case 'classify':
      enqueue('classify', message.id, () => classify(message));
      break;
    case 'explain':
      enqueue('explain', message.id, () => explain(message));
      break;
    case 'profile':
      enqueue('profile', message.id, async () => {
        const kernels = await requireModel().profile(message.texts.map(String));
        post({ type: 'profile', id: message.id, kernels: toPlain(kernels) });
      });
      break;
    default:
      post({ type: 'error', message: `unknown message type ${JSON.stringify(message?.type)}` });
  }
};

async function load(message) {
  const started = performance.now();
  const backend = message.backend ?? 'auto';
  if (!BACKENDS.includes(backend)) throw new Error(`unknown backend ${JSON.stringify(backend)} (use auto, webgpu or cpu)`);
  const onProgress = (progress) => post({ type: 'progress', ...progress });
  const loaded = message.files
    ? await loadModelFromFiles(message.manifest, message.files, { onProgress })
    : await loadModelFromUrl(message.modelUrl ?? 'model/', { onProgress, baseHref: self.location.href });
  const { spec } = loaded;

  post({ type: 'progress', phase: 'compile', loaded: 0, total: 1 });
  wasm ??= await loadWasmPackage(self.location.href);
  const next = await wasm.module.Classifier.load(loaded.files, {
    backend,
    maxLength: spec.maxLength,
    temperature: spec.temperature,
  });
  // Only now drop the previous model: if loading failed, it stays usable.
  classifier?.free();
  classifier = next;
  const info = { ...toPlain(next.info()), wasmBuild: wasm.build };
  model = { info, botLabel: botLabelOf(info.labels) };
  post({ type: 'progress', phase: 'compile', loaded: 1, total: 1 });
  post({
    type: 'ready',
    ...(message.id !== undefined ? { id: message.id } : {}),
    info,
    manifest: spec.manifest,
    modelCard: loaded.modelCard,
    modelCardError: loaded.modelCardError,
    backendRequested: backend,
    source: message.files ? 'disk' : 'url',
    stats: loaded.stats,
    loadMs: performance.now() - started,
  });
}

async function classify({ id, texts, batchSize, window = 0 }) {
  const active = requireModel();
  if (!Array.isArray(texts)) throw new Error('classify: "texts" must be an array of strings');
  const size = classifyBatchSize(batchSize);
  const total = texts.length;
  const started = performance.now();
  let backend = model.info.backend;
  let fallbackReason;
  let tokenizeMs = 0;
  let inferMs = 0;
  let processed = 0;
  let batchIndex = 0;

  post({ type: 'progress', phase: 'classify', loaded: 0, total, id });
  for (let start = 0; start < total; start += size) {
    if (window > 0) await waitForAcks(id, batchIndex, window);
    if (cancelled.has(id)) break;
    const batch = texts.slice(start, start + size).map(String);
    const t0 = performance.now();
    const output = await active.classify(batch);
    const ms = performance.now() - t0;
    backend = output.backend;
    fallbackReason = output.fallbackReason ?? fallbackReason;
    tokenizeMs += output.timings.tokenizeMs;
    inferMs += output.timings.inferMs;
    post({ type: 'result', id, batchIndex, start, results: toPlain(output.results), ms, timings: toPlain(output.timings) });
    processed += batch.length;
    batchIndex++;
    post({ type: 'progress', phase: 'classify', loaded: processed, total, id });
    if (processed < total) await yieldToEventLoop(); // lets `cancel` in between batches
  }
  post({
    type: 'done',
    id,
    backend,
    ...(fallbackReason ? { fallbackReason } : {}),
    timings: { tokenizeMs, inferMs, totalMs: performance.now() - started },
    count: processed,
    total,
    cancelled: processed < total,
  });
}

async function explain({ id, text }) {
  const active = requireModel();
  if (cancelled.has(id)) {
    post({ type: 'explanation', id, cancelled: true, words: [] });
    return;
  }
  const { words, clipped } = contextWords(String(text ?? ''));
  const { texts, scored } = occlusionTexts(words, MAX_EXPLAIN_WORDS);
  const t0 = performance.now();
  const output = await active.classify(texts);
  const results = toPlain(output.results);
  post({
    type: 'explanation',
    id,
    words: occlusionDeltas(words, results, model.botLabel),
    scored,
    clipped,
    botLabel: model.botLabel,
    full: results[0],
    ms: performance.now() - t0,
  });
}

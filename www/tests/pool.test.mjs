// The worker pool against fake workers that answer like worker.js: every text reaches the page once, in
// order, whatever order the workers finish in; extra workers load only after the first and only on the
// CPU; small chunks travel together; explanations jump the queue; cancel and the flow-control window hold;
// a follower that crashes hands its chunks back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TASK_MIN_TEXTS, WorkerPool, defaultPoolSize } from '../pool.js';

/** A fake worker.js: answers load and classify (each text's "score" is its length) after `delay` ms. */
/** `crashOf`: the worker that stops after the first result of its first classify task. */
function fakeWorkerFactory({ delays = [5], backend = 'cpu', failLoadOf = -1, crashOf = -1, log = [] } = {}) {
  let made = 0;
  return () => {
    const n = made++;
    const worker = {
      n,
      onmessage: null,
      terminated: false,
      postMessage(message) {
        log.push([n, message.type]);
        const reply = (m, ms = 0) => setTimeout(() => !worker.terminated && worker.onmessage?.({ data: m }), ms);
        const delay = delays[n % delays.length];
        if (message.type === 'load') {
          if (n === failLoadOf) return reply({ type: 'error', op: 'load', message: 'no memory' }, delay);
          reply({ type: 'progress', phase: 'download', loaded: 1, total: 1 });
          reply({ type: 'ready', info: { backend, labels: ['human', 'bot'] } }, delay);
        } else if (message.type === 'classify') {
          // As worker.js: one result per batch of `batchSize` texts.
          const results = message.texts.map((t) => ({ label: 'bot', score: t.length, worker: n }));
          log.push([n, 'texts', message.texts.length]);
          for (let start = 0, batchIndex = 0; start < results.length; start += message.batchSize, batchIndex++) {
            const batch = results.slice(start, start + message.batchSize);
            reply({ type: 'result', id: message.id, batchIndex, start, results: batch, ms: delay, timings: { tokenizeMs: 1, inferMs: 2 } }, delay);
            if (n === crashOf) {
              setTimeout(() => worker.onerror?.({ message: 'out of memory', preventDefault() {} }), delay);
              return;
            }
          }
          reply({ type: 'done', id: message.id, backend, timings: { tokenizeMs: 1, inferMs: 2 }, count: results.length }, delay);
        } else if (message.type === 'explain') {
          reply({ type: 'explanation', id: message.id, words: [message.text] }, 1);
        }
      },
      terminate() { worker.terminated = true; },
    };
    return worker;
  };
}

/** Runs messages through a pool and collects what it posts back until `until(messages)`. */
function drive(pool, messages, until) {
  return new Promise((resolve) => {
    const seen = [];
    pool.onmessage = ({ data }) => {
      seen.push(data);
      if (data.type === 'result') pool.postMessage({ type: 'ack', id: data.id, batchIndex: data.batchIndex });
      if (until(seen)) resolve(seen);
    };
    for (const m of messages) pool.postMessage(m);
  });
}

const texts = Array.from({ length: 23 }, (_, i) => 'x'.repeat(i + 1));

test('results come back once each, in order, from every worker', async () => {
  const pool = new WorkerPool(fakeWorkerFactory({ delays: [9, 2, 5] }), 3);
  await drive(pool, [{ type: 'load', modelUrl: 'model/' }], (s) => s.some((m) => m.type === 'ready'));
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(pool.readyCount, 3);
  const seen = await drive(pool, [{ type: 'classify', id: 7, texts, batchSize: 4, window: 8 }], (s) => s.some((m) => m.type === 'done'));
  const results = seen.filter((m) => m.type === 'result');
  assert.deepEqual(results.map((m) => m.batchIndex), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(results.flatMap((m) => m.results.map((r) => r.score)), texts.map((t) => t.length));
  assert.ok(new Set(results.flatMap((m) => m.results.map((r) => r.worker))).size > 1, 'the work is shared');
  const done = seen.find((m) => m.type === 'done');
  assert.equal(done.count, 23);
  assert.equal(done.cancelled, false);
  assert.equal(done.workers, 3);
  pool.terminate();
});

test('followers load after the first worker, and not at all on WebGPU', async () => {
  const log = [];
  const cpu = new WorkerPool(fakeWorkerFactory({ log }), 2);
  const seen = await drive(cpu, [{ type: 'load', modelUrl: 'model/' }], (s) => s.some((m) => m.type === 'workers' && m.ready === 2));
  assert.equal(seen.filter((m) => m.type === 'ready').length, 1, 'the page sees one ready');
  assert.deepEqual(seen.filter((m) => m.type === 'workers').map((m) => [m.ready, m.size]), [[1, 2], [2, 2]]);
  assert.deepEqual(log.filter(([, t]) => t === 'load').map(([n]) => n), [0, 1]);
  const gpu = new WorkerPool(fakeWorkerFactory({ backend: 'webgpu' }), 4);
  await drive(gpu, [{ type: 'load', modelUrl: 'model/' }], (s) => s.some((m) => m.type === 'ready'));
  assert.equal(gpu.members.length, 1);
  cpu.terminate();
  gpu.terminate();
});

test('an explanation jumps ahead of a queued bulk job', async () => {
  const pool = new WorkerPool(fakeWorkerFactory({ delays: [10] }), 1);
  await drive(pool, [{ type: 'load', modelUrl: 'model/' }], (s) => s.some((m) => m.type === 'ready'));
  const seen = await drive(pool, [
    { type: 'classify', id: 1, texts, batchSize: 2 },
    { type: 'explain', id: 2, text: 'hello' },
  ], (s) => s.some((m) => m.type === 'done'));
  // It waits for the task running at most: TASK_MIN_TEXTS texts in chunks of 2.
  const explanationAt = seen.findIndex((m) => m.type === 'explanation');
  const textsBefore = seen.slice(0, explanationAt).filter((m) => m.type === 'result').reduce((n, m) => n + m.results.length, 0);
  assert.ok(textsBefore <= TASK_MIN_TEXTS, `the explanation waited for ${textsBefore} texts`);
  assert.equal(seen[explanationAt].id, 2);
  pool.terminate();
});

test('one-text chunks travel to a worker TASK_MIN_TEXTS at a time, and come back one by one', async () => {
  const log = [];
  const pool = new WorkerPool(fakeWorkerFactory({ log }), 1);
  await drive(pool, [{ type: 'load', modelUrl: 'model/' }], (s) => s.some((m) => m.type === 'ready'));
  const seen = await drive(pool, [{ type: 'classify', id: 9, texts, batchSize: 1 }], (s) => s.some((m) => m.type === 'done'));
  assert.deepEqual(log.filter(([, t]) => t === 'texts').map(([, , n]) => n), [8, 8, 7]);
  const results = seen.filter((m) => m.type === 'result');
  assert.deepEqual(results.map((m) => m.batchIndex), texts.map((_, i) => i));
  assert.deepEqual(results.map((m) => m.start), texts.map((_, i) => i));
  assert.deepEqual(results.flatMap((m) => m.results.map((r) => r.score)), texts.map((t) => t.length));
  pool.terminate();
});

test('a follower that crashes mid-task hands the chunks it did not finish back', async () => {
  const pool = new WorkerPool(fakeWorkerFactory({ delays: [5, 1], crashOf: 1 }), 2);
  await drive(pool, [{ type: 'load', modelUrl: 'model/' }], (s) => s.some((m) => m.type === 'ready'));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(pool.readyCount, 2);
  const seen = await drive(pool, [{ type: 'classify', id: 6, texts, batchSize: 2 }], (s) => s.some((m) => m.type === 'done'));
  assert.equal(pool.members.length, 1);
  const results = seen.filter((m) => m.type === 'result');
  assert.deepEqual(results.flatMap((m) => m.results.map((r) => r.score)), texts.map((t) => t.length));
  assert.equal(seen.find((m) => m.type === 'done').count, texts.length);
  pool.terminate();
});

test('cancel stops between chunks and says how many were classified', async () => {
  const pool = new WorkerPool(fakeWorkerFactory({ delays: [5] }), 2);
  await drive(pool, [{ type: 'load', modelUrl: 'model/' }], (s) => s.some((m) => m.type === 'ready'));
  await new Promise((r) => setTimeout(r, 20));
  const seen = await new Promise((resolve) => {
    const got = [];
    pool.onmessage = ({ data }) => {
      got.push(data);
      if (data.type === 'result' && data.batchIndex === 0) pool.postMessage({ type: 'cancel', id: 3 });
      if (data.type === 'done') resolve(got);
    };
    pool.postMessage({ type: 'classify', id: 3, texts, batchSize: 2 });
  });
  const done = seen.at(-1);
  assert.equal(done.cancelled, true);
  assert.ok(done.count < texts.length && done.count >= 2);
  assert.equal(done.count, seen.filter((m) => m.type === 'result').reduce((n, m) => n + m.results.length, 0));
  pool.terminate();
});

test('the flow-control window holds chunks until the page acknowledges', async () => {
  const pool = new WorkerPool(fakeWorkerFactory({ delays: [1] }), 2);
  await drive(pool, [{ type: 'load', modelUrl: 'model/' }], (s) => s.some((m) => m.type === 'ready'));
  await new Promise((r) => setTimeout(r, 10));
  const got = [];
  pool.onmessage = ({ data }) => got.push(data); // never acknowledges
  pool.postMessage({ type: 'classify', id: 4, texts, batchSize: 2, window: 3 });
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(got.filter((m) => m.type === 'result').length, 3);
  pool.postMessage({ type: 'ack', id: 4, batchIndex: 2 });
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(got.filter((m) => m.type === 'result').length, 6);
  pool.terminate();
});

test('a follower that fails to load leaves the pool and the first one carries on', async () => {
  const pool = new WorkerPool(fakeWorkerFactory({ failLoadOf: 1 }), 2);
  await drive(pool, [{ type: 'load', modelUrl: 'model/' }], (s) => s.some((m) => m.type === 'ready'));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(pool.members.length, 1);
  const seen = await drive(pool, [{ type: 'classify', id: 5, texts, batchSize: 5 }], (s) => s.some((m) => m.type === 'done'));
  assert.equal(seen.find((m) => m.type === 'done').count, texts.length);
  pool.terminate();
});

test('one worker per core, capped', () => {
  assert.equal(defaultPoolSize(2), 2);
  assert.equal(defaultPoolSize(64), 4);
  assert.equal(defaultPoolSize(undefined), 1);
});

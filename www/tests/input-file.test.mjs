// The tweet-file reader that runs in a worker (input-file.js): the service answers what the page shows
// (counts, the first bad rows, the total of them), refuses an oversized file before reading it, and the
// page's client talks to it through a fake worker exactly as through a real one (requests matched by id,
// errors as Error objects, a crashed or closed reader failing every waiting request).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSkipReport } from '../csv.js';
import { InputFile, InputFileService, MAX_INPUT_BYTES } from '../input-file.js';

const blob = (text, name) => Object.assign(new Blob([text]), { name });

/** A fake input-worker.js: the real service behind postMessage/onmessage, answering asynchronously. */
function fakeWorker() {
  const service = new InputFileService();
  const worker = {
    onmessage: null,
    onerror: null,
    terminated: false,
    posted: [],
    postMessage(message) {
      worker.posted.push(message.op);
      service.handle(message).then((reply) => setTimeout(() => !worker.terminated && worker.onmessage?.({ data: reply })));
    },
    terminate() { worker.terminated = true; },
  };
  return worker;
}

test('a TweepFake-style CSV is counted, with its bad rows listed up to 10 and counted beyond', async () => {
  const good = Array.from({ length: 30 }, (_, i) => `user${i};tweet ${i};human;human`);
  const bad = Array.from({ length: 15 }, (_, i) => `broken${i};only two`);
  const text = ['screen_name;text;account.type;class_type', ...good, ...bad, ''].join('\n');
  const service = new InputFileService();
  assert.deepEqual(await service.open({ file: blob(text, 'tweets.csv') }), { name: 'tweets.csv', bytes: text.length });
  const summary = service.layout({ layout: 'auto' });
  assert.equal(summary.delimiter, ';');
  assert.equal(summary.columns[summary.defaultColumn], 'text');
  assert.equal(summary.errors.length, 10);
  assert.equal(summary.errorCount, 15);
  assert.equal(summary.errors[0].line, 32);
  assert.deepEqual(service.describe({ column: summary.defaultColumn }), { count: 30, emptyTexts: 0 });
  assert.deepEqual(service.texts({ column: summary.defaultColumn }).texts, good.map((_, i) => `tweet ${i}`));
  const report = formatSkipReport(summary);
  assert.match(report, /^15 bad rows skipped: line 32 \(.+\), .*line 41 \(.+\) and 5 more\.$/);
});

test('requests before a file or before a parse, and unknown requests, answer errors', async () => {
  const service = new InputFileService();
  assert.deepEqual(await service.handle({ id: 1, op: 'layout', layout: 'auto' }), { id: 1, error: 'no file is open' });
  assert.deepEqual(await service.handle({ id: 2, op: 'open' }), { id: 2, error: 'no file was given' });
  await service.open({ file: blob('a\nb', 'x.txt') });
  assert.deepEqual(await service.handle({ id: 3, op: 'texts', column: 0 }), { id: 3, error: 'the file has not been parsed yet' });
  assert.deepEqual(await service.handle({ id: 4, op: 'constructor' }), { id: 4, error: 'unknown request "constructor"' });
});

test('a file over the limit is refused before it is read', async () => {
  let read = false;
  const huge = { name: 'huge.csv', size: MAX_INPUT_BYTES + 1, arrayBuffer: async () => { read = true; return new ArrayBuffer(0); } };
  await assert.rejects(InputFile.open(huge, fakeWorker), (e) => assert.match(String(e), /^Error: it is 268\.4 MB \(268,435,457 bytes, over by 1\); the limit is 268\.4 MB$/) ?? true);
  assert.equal(read, false);
});

test('the page client opens, re-parses with another layout, switches column and closes', async () => {
  let made;
  const input = await InputFile.open(blob('name,text\nann,"hi, there"\nbob,\ncid,third\n', 'in.csv'), () => (made = fakeWorker()));
  assert.equal(input.summary.kind, 'delimited');
  assert.equal(input.summary.columns[input.column], 'text');
  assert.deepEqual(await input.describe(), { count: 2, emptyTexts: 1 });
  assert.deepEqual((await input.texts()).texts, ['hi, there', 'third']);
  input.column = 0;
  assert.deepEqual((await input.texts()).texts, ['ann', 'bob', 'cid']);
  await input.setLayout('lines');
  assert.equal(input.column, 0);
  assert.deepEqual((await input.texts()).texts, ['name,text', 'ann,"hi, there"', 'bob,', 'cid,third']);
  input.close();
  assert.equal(made.terminated, true);
  await assert.rejects(input.texts(), /the file was closed/);
});

test('a reader that crashes or is closed fails every waiting request', async () => {
  const silent = { onmessage: null, onerror: null, postMessage() {}, terminate() {} };
  const input = new InputFile(silent, 'x.csv');
  const waiting = [input.describe(), input.texts()];
  silent.onerror({ message: 'out of memory', preventDefault() {} });
  for (const request of waiting) await assert.rejects(request, /out of memory/);
  const again = input.describe();
  input.close();
  await assert.rejects(again, /the file was closed/);
});

// The result store behind the paged results view: every result is kept and read back as stored, pages
// cover every row exactly once, and the chunked CSV export equals csv.js's resultsToCsv over all rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resultsToCsv } from '../csv.js';
import { RESULTS_PAGE_SIZE, ResultStore, pageCount, pageRange } from '../results.js';

const LABELS = ['human', 'bot'];
const resultFor = (i) => {
  const bot = (i * 7919) % 1000 / 1000;
  return { label: bot >= 0.5 ? 'bot' : 'human', score: Math.max(bot, 1 - bot), probabilities: { human: 1 - bot, bot }, truncated: i % 13 === 0 };
};

test('results are read back exactly as stored, and unclassified rows are absent', () => {
  const texts = ['=cmd', 'hello, "world"', 'line\nbreak', 'émoji 🤖'];
  const store = new ResultStore(texts, LABELS);
  assert.equal(store.get(0), null);
  store.set(2, resultFor(2));
  store.set(0, resultFor(0));
  assert.equal(store.count, 2);
  assert.deepEqual(store.get(2), { text: texts[2], ...resultFor(2) });
  assert.deepEqual(store.get(0), { text: texts[0], ...resultFor(0) });
  assert.equal(store.has(1), false);
  assert.equal(store.has(99), false);
  assert.deepEqual([...store.items()].map((r) => r.text), [texts[0], texts[2]]);
  store.set(2, resultFor(3)); // a repeated index replaces, and is counted once
  assert.equal(store.count, 2);
  assert.deepEqual(store.get(2), { text: texts[2], ...resultFor(3) });
});

test('a result with an unknown label or outside the run is refused', () => {
  const store = new ResultStore(['a'], LABELS);
  assert.throws(() => store.set(0, { label: 'robot', score: 1 }), /unknown label "robot"/);
  assert.throws(() => store.set(1, resultFor(1)), /outside the run's 1 tweets/);
  assert.throws(() => store.set(-1, resultFor(1)), /outside/);
  assert.throws(() => new ResultStore([], Array.from({ length: 255 }, (_, i) => `l${i}`)), /at most 254/);
});

test('the chunked CSV export equals resultsToCsv over every classified row', () => {
  const texts = Array.from({ length: 2_345 }, (_, i) => (i % 100 === 0 ? `=formula ${i}` : `tweet ${i}, "quoted"\n`));
  const store = new ResultStore(texts, LABELS);
  texts.forEach((_, i) => { if (i % 10 !== 9) store.set(i, resultFor(i)); });
  const expected = resultsToCsv([...store.items()], LABELS);
  for (const chunkRows of [1, 7, 1_000, 100_000]) {
    const chunks = store.csvChunks(chunkRows);
    assert.equal(chunks.join(''), expected, `chunks of ${chunkRows}`);
    assert.equal(chunks.length, Math.ceil(store.count / chunkRows));
  }
  assert.equal(new ResultStore([], LABELS).csvChunks().join(''), resultsToCsv([], LABELS), 'an empty run still has its header');
});

test('pages cover every row exactly once and clamp out-of-range pages', () => {
  for (const total of [0, 1, RESULTS_PAGE_SIZE - 1, RESULTS_PAGE_SIZE, RESULTS_PAGE_SIZE + 1, 100_000]) {
    const pages = pageCount(total);
    assert.equal(pages, Math.max(1, Math.ceil(total / RESULTS_PAGE_SIZE)));
    let next = 0;
    for (let p = 0; p < pages; p++) {
      const { page, start, end } = pageRange(p, total);
      assert.equal(page, p);
      assert.equal(start, next);
      assert.ok(end - start <= RESULTS_PAGE_SIZE);
      next = end;
    }
    assert.equal(next, total, `${total} rows`);
    assert.equal(pageRange(-3, total).page, 0);
    assert.equal(pageRange(pages + 5, total).page, pages - 1);
    assert.equal(pageRange(Number.NaN, total).page, 0);
  }
});

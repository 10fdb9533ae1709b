// Unit tests for www/explain.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contextWords, MAX_CONTEXT_WORDS, MAX_CONTEXT_CHARS, occlusionTexts, botLabelOf, humanLabelOf, occlusionDeltas, strongestWords } from '../explain.js';

test('words and occlusion texts', () => {
  const { words } = contextWords('  buy\tnow \n cheap ');
  assert.deepEqual(words, ['buy', 'now', 'cheap']);
  assert.deepEqual(occlusionTexts(words), { texts: ['buy now cheap', 'now cheap', 'buy cheap', 'buy now'], scored: 3 });
  assert.equal(occlusionTexts(Array.from({ length: 100 }, (_, i) => `w${i}`), 64).texts.length, 65);
  assert.deepEqual(occlusionTexts([]), { texts: [''], scored: 0 });
});

test('labels', () => {
  assert.equal(botLabelOf(['human', 'bot']), 'bot');
  assert.equal(botLabelOf(['Bot', 'Human']), 'Bot');
  assert.equal(botLabelOf(['LABEL_0', 'LABEL_1']), 'LABEL_1');
  assert.equal(humanLabelOf(['human', 'bot']), 'human');
});

test('deltas and strongest words', () => {
  const p = (bot) => ({ probabilities: { bot, human: 1 - bot } });
  const words = occlusionDeltas(['a', 'b', 'c'], [p(0.6), p(0.4), p(0.7)], 'bot');
  assert.equal(words[0].text, 'a');
  assert.ok(Math.abs(words[0].delta - 0.2) < 1e-12);
  assert.ok(Math.abs(words[1].delta + 0.1) < 1e-12);
  assert.equal(words[2].delta, null);
  const s = strongestWords(words);
  assert.deepEqual(s.bot.map((w) => w.text), ['a']);
  assert.deepEqual(s.human.map((w) => w.text), ['b']);
});

test('huge tweets: bounded words, bounded copies, no split surrogate pair', () => {
  const many = 'word '.repeat(100_000);
  const { words, clipped } = contextWords(many);
  assert.equal(words.length, MAX_CONTEXT_WORDS);
  assert.ok(clipped);
  const { texts } = occlusionTexts(words);
  assert.ok(texts.every((t) => t.length <= MAX_CONTEXT_WORDS * 5));
  const oneWord = 'x'.repeat(1_000_000);
  assert.deepEqual(contextWords(oneWord), { words: ['x'.repeat(MAX_CONTEXT_CHARS)], clipped: true });
  const emoji = `${'a'.repeat(MAX_CONTEXT_CHARS - 1)}😀 tail`;
  assert.deepEqual(contextWords(emoji), { words: ['a'.repeat(MAX_CONTEXT_CHARS - 1)], clipped: true });
  assert.deepEqual(contextWords('short tweet'), { words: ['short', 'tweet'], clipped: false });
});

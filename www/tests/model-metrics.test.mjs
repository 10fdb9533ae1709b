// The model panel's quality rows from a manifest: per-generator validation figures and the grouped
// cross-validation, shown only when present and well-formed (the manifest is outside input).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crossValidationEntries, generatorEntries } from '../model-metrics.js';

const pct = (p) => `${(p * 100).toFixed(1)}%`;
const shown = (rows) => rows.map(([label, value, format]) => `${label}: ${format(value)}`);

test('per-generator rows name TweepFake\'s generators plainly and keep unknown ones', () => {
  const rows = [
    { generator: 'human', accuracy: 0.8617 },
    { generator: 'gpt2', accuracy: 0.7601 },
    { generator: 'markov', accuracy: 0.5 },
    { generator: 7, accuracy: 0.1 },
    null,
  ];
  assert.deepEqual(shown(generatorEntries(rows, pct)), [
    'Human tweets labelled human (validation, int8): 86.2%',
    'GPT-2 bot tweets caught (validation, int8): 76.0%',
    'markov tweets labelled right (validation, int8): 50.0%',
  ]);
  for (const junk of [undefined, null, 'x', {}]) assert.deepEqual(generatorEntries(junk, pct), []);
});

test('cross-validation rows give unseen accounts first, with the folds\' spread', () => {
  const cv = { unseen: { accuracy: 0.7568, accuracy_sd: 0.0726 }, seen: { accuracy: 0.8784 } };
  assert.deepEqual(shown(crossValidationEntries(cv, pct)), [
    'Accuracy on accounts it never saw (grouped cross-validation): 75.7% (folds ± 7.3 points)',
    'Accuracy on accounts it saw in training (cross-validation): 87.8%',
  ]);
  assert.deepEqual(crossValidationEntries({ unseen: { accuracy: '0.9' } }, pct), []);
  assert.deepEqual(crossValidationEntries(undefined, pct), []);
});

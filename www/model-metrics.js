// The model panel's quality figures from a model folder's manifest, as [label, value, format] rows:
// per-generator validation figures and the recipe's grouped cross-validation (docs/contracts.md,
// section 2). Pure functions (the percentage format is the caller's), so Node tests them; model-panel.js
// renders the rows as text.

// How each generator's validation tweets were labelled (the manifest's `int8_by_generator`, written by
// the trainer since per-generator metrics exist; older manifests have none).
const GENERATOR_LABELS = {
  human: 'Human tweets labelled human',
  gpt2: 'GPT-2 bot tweets caught',
  rnn: 'RNN bot tweets caught',
  others: 'Other bot tweets caught',
};

export function generatorEntries(rows, fmtPct) {
  if (!Array.isArray(rows)) return [];
  return rows
    .filter((row) => row && typeof row.generator === 'string' && typeof row.accuracy === 'number')
    .map((row) => [
      `${GENERATOR_LABELS[row.generator] ?? `${row.generator} tweets labelled right`} (validation, int8)`,
      row.accuracy,
      fmtPct,
    ]);
}

// The recipe's grouped cross-validation (`train --cross-validation`): what to expect on accounts the model
// never saw, which is most accounts, beside the figure for accounts it studied.
export function crossValidationEntries(cv, fmtPct) {
  if (!cv || typeof cv !== 'object') return [];
  const entry = (label, set) => {
    if (!set || typeof set.accuracy !== 'number') return undefined;
    const spread = typeof set.accuracy_sd === 'number' ? ` (folds ± ${(set.accuracy_sd * 100).toFixed(1)} points)` : '';
    return [label, set.accuracy, (v) => `${fmtPct(v)}${spread}`];
  };
  return [
    entry('Accuracy on accounts it never saw (grouped cross-validation)', cv.unseen),
    entry('Accuracy on accounts it saw in training (cross-validation)', cv.seen),
  ].filter(Boolean);
}

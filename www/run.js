// run.js: a classification run (ES module): start it from the input, send its texts to the workers in
// batches with flow control (protocol.js), take their results into the run's store and the view, end it
// (done, cancelled, or stopped by an error).

import { botLabelOf, humanLabelOf } from './explain.js';
import { collectInput } from './input-panel.js';
import { clearError, describeBackend, fmtInt, post, setAppState, setProgress, state, ui } from './page-state.js';
import { CLASSIFY_BATCH, FLOW_WINDOW } from './protocol.js';
import { cancelPendingExplanations, renderRow, requestExplanation, updatePager, updateSummary } from './results-view.js';
import { pageRange, ResultStore } from './results.js';

const EXPLAIN_ALL_LIMIT = 25;

export async function startRun() {
  if (state.appState !== 'ready' || state.run?.active) return;
  clearError();
  // Busy (and the summary `preparing`) from the click on: a file's texts come from its reader worker, and
  // until they do, neither a second click nor anyone watching the summary may take the last run's
  // `done` for this one's.
  const shownState = ui.summary.dataset.state;
  ui.summary.dataset.state = 'preparing';
  setAppState('busy');
  ui.cancel.disabled = true; // nothing to cancel until the run starts
  let texts = null;
  try {
    texts = await collectInput();
  } finally {
    if (!texts || state.appState !== 'busy') {
      if (shownState === undefined) delete ui.summary.dataset.state;
      else ui.summary.dataset.state = shownState;
      if (state.appState === 'busy') setAppState('ready');
    }
  }
  if (!texts || state.appState !== 'busy') return;
  cancelPendingExplanations();
  const { info } = state.model;
  const id = state.nextId++;
  state.run = {
    id,
    texts,
    results: new ResultStore(texts, info.labels),
    batches: [], // batch index -> {ms, size}: the time shown on each row
    rowBatch: new Uint32Array(texts.length),
    page: 0,
    labels: info.labels,
    botLabel: botLabelOf(info.labels),
    humanLabel: humanLabelOf(info.labels),
    maxLength: info.maxLength,
    bots: 0,
    humans: 0,
    scoreSum: 0,
    started: performance.now(),
    elapsedMs: 0,
    lastSummaryText: 0,
    active: true,
    state: 'running',
    explainAll: ui.explainAll.checked && texts.length <= EXPLAIN_ALL_LIMIT,
  };
  ui.results.replaceChildren();
  updatePager();
  ui.downloadCsv.disabled = true;
  ui.cancel.textContent = 'Cancel';
  setProgress(`Classified 0 of ${fmtInt(texts.length)}`, 0, texts.length);
  updateSummary(true);
  setAppState('busy');
  post({ type: 'classify', id, texts, batchSize: CLASSIFY_BATCH, window: FLOW_WINDOW });
}

export function cancelRun() {
  if (!state.run?.active) return;
  post({ type: 'cancel', id: state.run.id });
  ui.cancel.disabled = true;
  ui.cancel.textContent = 'Cancelling…';
}

export function onResult({ id, start, batchIndex, results, ms }) {
  const run = state.run;
  if (!run || id !== run.id) return;
  const first = start ?? batchIndex * CLASSIFY_BATCH;
  run.batches[batchIndex] = { ms, size: results.length };
  const { start: pageStart, end: pageEnd } = pageRange(run.page, run.texts.length);
  const fragment = document.createDocumentFragment();
  results.forEach((result, i) => {
    const index = first + i;
    run.results.set(index, result);
    run.rowBatch[index] = batchIndex;
    run.scoreSum += result.score;
    if (result.label === run.botLabel) run.bots++;
    else if (result.label === run.humanLabel) run.humans++;
    if (index < pageStart || index >= pageEnd) return; // stored; shown when its page is
    const row = renderRow(run.results.get(index), index);
    fragment.append(row);
    if (run.explainAll) requestExplanation(row);
  });
  ui.results.append(fragment);
  updatePager();
  post({ type: 'ack', id, batchIndex });
  run.elapsedMs = performance.now() - run.started;
  updateSummary(false);
}

export function onDone(message) {
  const run = state.run;
  if (!run || message.id !== run.id) return;
  run.backend = message.backend;
  run.fallbackReason = message.fallbackReason;
  run.workerTimings = message.timings;
  run.elapsedMs = performance.now() - run.started;
  ui.backendUsed.dataset.backend = message.backend;
  ui.backendUsed.textContent = describeBackend(message.backend, message.fallbackReason, state.model.info);
  finishRun(message.cancelled ? 'cancelled' : 'done');
}

export function finishRun(finalState) {
  const run = state.run;
  run.active = false;
  run.state = finalState;
  ui.cancel.textContent = 'Cancel';
  const count = run.results.count;
  ui.downloadCsv.disabled = count === 0;
  setProgress(finalState === 'done' ? `Classified ${fmtInt(count)} of ${fmtInt(run.texts.length)}`
    : `${finalState === 'cancelled' ? 'Cancelled' : 'Stopped'} after ${fmtInt(count)} of ${fmtInt(run.texts.length)}`,
  count, run.texts.length);
  updateSummary(true);
  if (state.appState === 'busy') setAppState(state.model.status === 'ready' ? 'ready' : state.model.status);
}

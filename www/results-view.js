// results-view.js: the results (ES module): one page of rows in the DOM (the run's results live in a
// ResultStore), the summary, the pager, the CSV download and the per-word explanations. Tweet text is
// only ever written with textContent.

import { strongestWords } from './explain.js';
import { backendName, fmtInt, fmtMs, fmtPct, plural, post, showError, state, ui } from './page-state.js';
import { pageCount, pageRange, RESULTS_PAGE_SIZE } from './results.js';

const SUMMARY_TEXT_INTERVAL_MS = 700;

export function updateSummary(force) {
  const run = state.run;
  const count = run.results.count;
  const mean = count ? run.scoreSum / count : 0;
  const { summary } = ui;
  summary.dataset.state = run.state;
  summary.dataset.count = String(count);
  summary.dataset.bots = String(run.bots);
  summary.dataset.humans = String(run.humans);
  summary.dataset.meanConfidence = String(mean);

  const now = performance.now();
  if (!force && now - run.lastSummaryText < SUMMARY_TEXT_INTERVAL_MS) return;
  run.lastSummaryText = now;
  const seconds = run.elapsedMs / 1000;
  const speed = seconds > 0 ? count / seconds : 0;
  ui.stats.hidden = false;
  ui.statCount.textContent = fmtInt(count);
  ui.statBots.textContent = fmtInt(run.bots);
  ui.statHumans.textContent = fmtInt(run.humans);
  ui.statConfidence.textContent = count ? fmtPct(mean) : '–';
  ui.statTime.textContent = run.elapsedMs ? fmtMs(run.elapsedMs) : '–';
  ui.statSpeed.textContent = speed ? `${speed >= 100 ? Math.round(speed) : speed.toFixed(1)} tweets/s` : '–';

  const tally = `${plural(run.bots, 'bot', 'bots')}, ${plural(run.humans, 'human', 'humans')}`;
  const backend = run.backend ? ` on ${backendName(run.backend)}` : '';
  const total = run.texts.length;
  const line = {
    running: `Classifying ${fmtInt(count)} of ${plural(total, 'tweet', 'tweets')}…`,
    done: `${plural(count, 'tweet', 'tweets')} classified${backend}: ${tally}, mean confidence ${fmtPct(mean)}.`,
    cancelled: `Cancelled after ${fmtInt(count)} of ${plural(total, 'tweet', 'tweets')}${backend}: ${tally}.`,
    error: `Stopped after ${fmtInt(count)} of ${plural(total, 'tweet', 'tweets')} by an error.`,
  }[run.state];
  ui.summaryLine.textContent = line;
}

/** Shows page `page` of the run's results (only one page of rows is ever in the DOM). */
export function showPage(page) {
  const run = state.run;
  if (!run) return;
  cancelPendingExplanations();
  const { page: shown, start, end } = pageRange(page, run.texts.length);
  run.page = shown;
  const fragment = document.createDocumentFragment();
  for (let index = start; index < end && run.results.has(index); index++) fragment.append(renderRow(run.results.get(index), index));
  ui.results.replaceChildren(fragment);
  updatePager();
}

export function updatePager() {
  const run = state.run;
  const total = run?.texts.length ?? 0;
  const pages = pageCount(total);
  ui.pager.hidden = pages < 2;
  if (pages < 2) return;
  const { page, start, end } = pageRange(run.page, total);
  ui.pageStatus.textContent = `Tweets ${fmtInt(start + 1)}–${fmtInt(end)} of ${fmtInt(total)} (page ${fmtInt(page + 1)} of `
    + `${fmtInt(pages)}, ${RESULTS_PAGE_SIZE} per page); the CSV download holds every classified tweet.`;
  ui.pagePrev.disabled = page === 0;
  ui.pageNext.disabled = page === pages - 1;
  ui.pager.dataset.page = String(page);
}

export function renderRow(item, index) {
  const run = state.run;
  const timing = run.batches[run.rowBatch[index]];
  const isBot = item.label === run.botLabel;
  const row = document.createElement('li');
  row.className = isBot ? 'row is-bot' : 'row';
  row.dataset.testid = 'result-row';
  row.dataset.index = String(index);
  row.dataset.label = item.label;
  row.dataset.score = String(item.score);
  row.dataset.truncated = String(Boolean(item.truncated));

  const text = document.createElement('p');
  text.className = 'row-text';
  const number = document.createElement('span');
  number.className = 'row-number';
  number.textContent = `${index + 1}.`;
  number.setAttribute('aria-hidden', 'true');
  const body = document.createElement('span');
  body.dataset.testid = 'result-text';
  body.textContent = item.text;
  text.append(number, body);

  const meta = document.createElement('div');
  meta.className = 'row-meta';
  const badge = document.createElement('span');
  badge.className = isBot ? 'badge is-bot' : 'badge';
  badge.textContent = item.label.toUpperCase();

  const confidence = document.createElement('span');
  confidence.className = 'confidence';
  confidence.title = Object.entries(item.probabilities ?? {})
    .map(([label, p]) => `${label} ${fmtPct(p)}`).join(', ');
  const bar = document.createElement('span');
  bar.className = 'bar';
  bar.setAttribute('aria-hidden', 'true');
  const fill = document.createElement('span');
  fill.className = 'bar-fill';
  fill.style.setProperty('--score', String(item.score));
  bar.append(fill);
  const pct = document.createElement('span');
  pct.className = 'pct';
  pct.textContent = fmtPct(item.score);
  const pctLabel = document.createElement('span');
  pctLabel.className = 'visually-hidden';
  pctLabel.textContent = ' confidence';
  pct.append(pctLabel);
  confidence.append(bar, pct);
  meta.append(badge, confidence);

  if (item.truncated) {
    const mark = document.createElement('span');
    mark.className = 'truncated-mark';
    mark.textContent = 'truncated';
    mark.title = `Longer than the model's ${run.maxLength} tokens: only the first ${run.maxLength} were read.`;
    meta.append(mark);
  }

  const time = document.createElement('span');
  time.className = 'row-time';
  const perTweet = timing.ms / timing.size;
  time.textContent = `${perTweet < 10 ? perTweet.toFixed(1) : Math.round(perTweet)} ms`;
  time.title = `Batch ${run.rowBatch[index] + 1}: ${plural(timing.size, 'tweet', 'tweets')} in ${fmtMs(timing.ms)}`;

  const explain = document.createElement('button');
  explain.type = 'button';
  explain.className = 'explain-button';
  explain.dataset.testid = 'explain-button';
  explain.setAttribute('aria-expanded', 'false');
  meta.append(time, explain);

  row.append(text, meta);
  setExplainText(explain, 'Explain');
  return row;
}

export function downloadCsv() {
  const run = state.run;
  if (!run) return;
  const url = URL.createObjectURL(new Blob(run.results.csvChunks(), { type: 'text/csv;charset=utf-8' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = `tweetguard-results-${new Date().toISOString().slice(0, 19).replaceAll(':', '-')}.csv`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Sets an explain button's text; its accessible name also says which tweet. */
function setExplainText(button, text) {
  const row = button.closest('.row');
  button.textContent = text;
  const index = Number(row?.dataset.index);
  button.setAttribute('aria-label', Number.isNaN(index) ? text : `${text} (tweet ${index + 1})`);
}

export function requestExplanation(row) {
  const run = state.run;
  const index = Number(row.dataset.index);
  const button = row.querySelector('.explain-button');
  const id = state.nextId++;
  state.explains.set(id, { row, runId: run.id });
  button.disabled = true;
  setExplainText(button, 'Explaining…');
  post({ type: 'explain', id, text: run.texts[index] });
}

export function cancelPendingExplanations() {
  for (const id of state.explains.keys()) post({ type: 'cancel', id });
  state.explains.clear();
}

export function onExplanation(message) {
  const pending = state.explains.get(message.id);
  if (!pending) return;
  state.explains.delete(message.id);
  if (message.cancelled) return;
  const { row } = pending;
  const button = row.querySelector('.explain-button');
  button.disabled = false;
  setExplainText(button, 'Hide explanation');
  button.setAttribute('aria-expanded', 'true');
  row.querySelector('.explanation')?.remove();
  row.append(renderExplanation(message));
}

function renderExplanation({ words, scored, clipped, botLabel }) {
  const humanLabel = state.run?.humanLabel ?? 'human';
  const box = document.createElement('div');
  box.className = 'explanation';
  box.dataset.testid = 'explanation';
  const line = document.createElement('p');
  line.className = 'words';
  const scale = words.reduce((max, w) => Math.max(max, Math.abs(w.delta ?? 0)), 0.02);
  words.forEach((word, i) => {
    if (i > 0) line.append(' ');
    if (word.delta === null) {
      line.append(word.text);
      return;
    }
    const span = document.createElement('span');
    span.textContent = word.text;
    span.dataset.delta = String(word.delta);
    const direction = word.delta >= 0.005 ? 'bot' : word.delta <= -0.005 ? 'human' : null;
    span.className = direction ? `w push-${direction}` : 'w';
    span.style.setProperty('--w', (Math.abs(word.delta) / scale).toFixed(3));
    span.title = describeDelta(word.delta, botLabel, humanLabel);
    line.append(span);
  });
  box.append(line);

  const strongest = strongestWords(words);
  const summary = document.createElement('p');
  summary.className = 'explanation-summary';
  const list = (ws) => ws.map((w) => `“${w.text}” ${signedPoints(w.delta)}`).join(', ');
  const parts = [];
  if (strongest.bot.length) parts.push(`Toward ${botLabel}: ${list(strongest.bot)}.`);
  if (strongest.human.length) parts.push(`Toward ${humanLabel}: ${list(strongest.human)}.`);
  summary.textContent = parts.length ? parts.join(' ')
    : 'No single word moves the bot probability by half a point or more.';
  box.append(summary);

  if (words.length > scored || clipped) {
    const note = document.createElement('p');
    note.className = 'explanation-note';
    note.textContent = `Only the first ${scored} words are scored${clipped ? `; the tweet goes on past the ${words.length} shown` : ''}.`;
    box.append(note);
  }
  return box;
}

const signedPoints = (delta) => `${delta >= 0 ? '+' : '−'}${(Math.abs(delta) * 100).toFixed(1)} pts`;

function describeDelta(delta, botLabel, humanLabel) {
  const direction = delta >= 0 ? botLabel : humanLabel;
  return `Pushes toward ${direction}: ${signedPoints(delta)} ${botLabel} probability with this word than without it`;
}

export function showExplanationError(row, message) {
  const button = row.querySelector('.explain-button');
  button.disabled = false;
  setExplainText(button, 'Explain');
  row.querySelector('.explanation')?.remove();
  const box = document.createElement('p');
  box.className = 'explanation explanation-error';
  box.textContent = `Could not explain: ${message}`;
  row.append(box);
}

export function onResultsClick(event) {
  const button = event.target.closest('.explain-button');
  if (!button || button.disabled) return;
  const row = button.closest('.row');
  const existing = row.querySelector('.explanation:not(.explanation-error)');
  if (existing) {
    existing.hidden = !existing.hidden;
    setExplainText(button, existing.hidden ? 'Show explanation' : 'Hide explanation');
    button.setAttribute('aria-expanded', String(!existing.hidden));
    return;
  }
  if (state.model.status !== 'ready') {
    showError('The model is not loaded; explanations need it.');
    return;
  }
  requestExplanation(row);
}

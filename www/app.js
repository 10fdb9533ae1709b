// app.js: the page's UI (ES module). Wires the input (text box, files, examples), the model panel (status,
// backend, model folder, cache, model card) and the results (rows, summary, CSV export, explanations) to
// the classifier worker (worker.js). Tweet text is only ever written with textContent / text nodes.
// The worker protocol and the data-testid hooks are documented in docs/web-page.md.

import { LAYOUTS, formatSkipReport, splitInputLines } from './csv.js';
import { EXAMPLES } from './examples.js';
import { botLabelOf, humanLabelOf, strongestWords } from './explain.js';
import { InputFile } from './input-file.js';
import { clearModelCache, formatBytes, indexChosenFiles, validateManifest } from './model-store.js';
import { WorkerPool } from './pool.js';
import { CLASSIFY_BATCH, FLOW_WINDOW } from './protocol.js';
import { RESULTS_PAGE_SIZE, ResultStore, pageCount, pageRange } from './results.js';

const EXPLAIN_ALL_LIMIT = 25;
const SUMMARY_TEXT_INTERVAL_MS = 700;
const params = new URLSearchParams(location.search);

const $ = (id) => document.getElementById(id);
const ui = {
  body: document.body,
  tweetInput: $('tweet-input'),
  fileInput: $('file-input'),
  textColumn: $('text-column'),
  fileLayout: $('file-layout'),
  fileReport: $('file-report'),
  inputSource: $('input-source'),
  inputSourceText: $('input-source-text'),
  useTextbox: $('use-textbox'),
  dropZone: $('input-panel'),
  exampleChips: $('example-chips'),
  classify: $('classify-button'),
  cancel: $('cancel-button'),
  explainAll: $('explain-all'),
  progress: $('progress'),
  progressLabel: $('progress-label'),
  modelStatus: $('model-status'),
  backendSelect: $('backend-select'),
  modelFolderInput: $('model-folder-input'),
  modelFilesInput: $('model-files-input'),
  useServerModel: $('use-server-model'),
  retryLoad: $('retry-load'),
  clearCache: $('clear-cache-button'),
  cacheStatus: $('cache-status'),
  metrics: $('model-metrics'),
  modelCardText: $('model-card-text'),
  error: $('error-message'),
  summary: $('summary'),
  summaryLine: $('summary-line'),
  stats: $('stats'),
  statCount: $('stat-count'),
  statBots: $('stat-bots'),
  statHumans: $('stat-humans'),
  statConfidence: $('stat-confidence'),
  statTime: $('stat-time'),
  statSpeed: $('stat-speed'),
  backendUsed: $('backend-used'),
  downloadCsv: $('download-csv'),
  results: $('results'),
  pager: $('results-pager'),
  pagePrev: $('page-prev'),
  pageNext: $('page-next'),
  pageStatus: $('page-status'),
};

const state = {
  worker: null,
  appState: 'loading',
  model: {
    status: 'loading', // loading | ready | error
    info: null,
    manifest: null,
    loadedBackend: null, // the backend select value of the model now loaded
    source: { kind: 'url', url: serverModelUrl() },
  },
  input: { kind: 'text', file: null, reading: null }, // file: an InputFile; reading: the name of a file being opened
  run: null,
  nextId: 1,
  explains: new Map(), // explain id -> {row, runId}
};

function serverModelUrl() {
  // ?model=path/ picks another folder on this origin (the CSP forbids other origins anyway).
  const url = new URL(params.get('model') ?? 'model/', location.href);
  return url.origin === location.origin ? url.href : new URL('model/', location.href).href;
}

// ---------------------------------------------------------------- formatting

const numberFormat = new Intl.NumberFormat('en-US');
const fmtInt = (n) => numberFormat.format(n);
const fmtPct = (p) => `${(p * 100).toFixed(1)}%`;
const fmtMs = (ms) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`);
const plural = (n, one, many) => `${fmtInt(n)} ${n === 1 ? one : many}`;
const backendName = (b) => ({ cpu: 'CPU', webgpu: 'WebGPU' })[b] ?? String(b);

/** What ran: `CPU (int8, wasm relaxed SIMD, 2 workers)` or `WebGPU on <adapter>`, and why, if not asked for. */
function describeBackend(backend, fallbackReason, info = {}) {
  let text = backendName(backend);
  if (backend === 'webgpu' && info.adapter) text += ` on ${info.adapter}`;
  if (backend === 'cpu' && info.cpuKernel) {
    const workers = state.model.workers?.ready;
    text += ` (${info.cpuKernel.replace('wasm-', 'wasm ').replace('-simd', ' SIMD')}${workers > 1 ? `, ${workers} workers` : ''})`;
  }
  if (fallbackReason) text += ` (${fallbackReason})`;
  return text;
}

// ---------------------------------------------------------------- app state and errors

function setAppState(next) {
  state.appState = next;
  ui.body.dataset.appState = next;
  const busy = next === 'busy';
  ui.classify.disabled = next !== 'ready';
  ui.cancel.disabled = !busy;
  ui.retryLoad.hidden = state.model.status !== 'error';
}

function setModelStatus(status, text, warning) {
  state.model.status = status;
  ui.modelStatus.dataset.state = status;
  ui.modelStatus.textContent = text;
  if (warning) {
    const note = document.createElement('span');
    note.className = 'warning';
    note.textContent = warning;
    ui.modelStatus.append(note);
  }
  ui.retryLoad.hidden = status !== 'error';
}

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = false;
}

function clearError() {
  ui.error.textContent = '';
  ui.error.hidden = true;
}

function setProgress(label, loaded, total) {
  ui.progressLabel.textContent = label;
  if (loaded === null) {
    ui.progress.removeAttribute('value'); // indeterminate
    return;
  }
  ui.progress.max = Math.max(total, 1);
  ui.progress.value = Math.min(loaded, ui.progress.max);
}

// ---------------------------------------------------------------- worker

function startWorker() {
  try {
    const workerUrl = new URL('./worker.js', import.meta.url);
    const worker = new WorkerPool(() => new Worker(workerUrl, { type: 'module' }));
    worker.onmessage = (event) => onWorkerMessage(event.data);
    worker.onerror = (event) => {
      event.preventDefault();
      workerFailed(event.message || 'its script could not be loaded');
    };
    worker.onmessageerror = () => showError('A message from the classifier worker could not be read.');
    state.worker = worker;
    return true;
  } catch (error) {
    workerFailed(error.message);
    return false;
  }
}

function workerFailed(reason) {
  state.worker?.terminate();
  state.worker = null;
  const message = `The classifier worker stopped: ${reason}. Check that the wasm package (pkg/) is built and `
    + 'served; module workers need Chrome/Edge 80+, Firefox 114+ or Safari 15+.';
  if (state.run?.active) finishRun('error');
  setModelStatus('error', 'Model not loaded: the classifier worker stopped.');
  setProgress('Stopped', 0, 1);
  showError(message);
  setAppState('error');
}

function post(message) {
  if (!state.worker) return false; // stopped; "Retry loading" starts a new one
  state.worker.postMessage(message);
  return true;
}

function onWorkerMessage(message) {
  switch (message?.type) {
    case 'progress': return onProgress(message);
    case 'ready': return onReady(message);
    case 'result': return onResult(message);
    case 'done': return onDone(message);
    case 'explanation': return onExplanation(message);
    case 'error': return onWorkerError(message);
    case 'workers': return onWorkers(message);
    default: return console.warn('tweetguard: unknown worker message', message);
  }
}

// ---------------------------------------------------------------- model loading

function loadModel() {
  clearError();
  const backend = ui.backendSelect.value;
  const { source } = state.model;
  setModelStatus('loading', source.kind === 'disk'
    ? `Loading the model from ${source.name} (${backendName(backend)} backend requested)…`
    : `Loading the model (${backendName(backend)} backend requested)…`);
  setProgress('Loading the model…', null);
  if (state.appState !== 'busy') setAppState('loading');
  const message = source.kind === 'disk'
    ? { type: 'load', files: source.files, manifest: source.manifest, backend }
    : { type: 'load', modelUrl: source.url, backend };
  post(message);
}

function onProgress({ phase, loaded, total, file }) {
  switch (phase) {
    case 'download':
      setProgress(`Loading the model: ${formatBytes(loaded)} of ${formatBytes(total)}`, loaded, total);
      break;
    case 'verify':
      setProgress(`Checking the SHA-256 of ${file ?? 'the model files'}…`, loaded, total);
      break;
    case 'compile':
      if (loaded < total) setProgress('Starting the model…', null);
      break;
    case 'classify':
      if (state.run?.active) setProgress(`Classified ${fmtInt(loaded)} of ${fmtInt(total)}`, loaded, total);
      break;
    default:
  }
}

function onReady({ info, manifest, modelCard, modelCardError, loadMs, stats, source }) {
  state.model.info = info;
  state.model.manifest = manifest;
  state.model.loadedBackend = ui.backendSelect.value;
  state.model.loadedSource = state.model.source;
  let how = `Downloaded, verified and started in ${fmtMs(loadMs)}.`;
  if (source === 'disk') how = `Loaded from ${state.model.source.name}, verified and started in ${fmtMs(loadMs)}.`;
  else if (stats && stats.downloaded === 0) how = `Loaded from the cache, verified and started in ${fmtMs(loadMs)}.`;
  const text = `Ready: ${info.dtype} model, labels ${info.labels.join(' / ')}, up to ${info.maxLength} tokens, `
    + `${describeBackend(info.backend, undefined, info)} backend. ${how}`;
  const warning = info.untrainedHead
    ? 'This model has an untrained classifier head: its labels and scores are meaningless (test model).'
    : undefined;
  state.model.readyText = [text, warning];
  setModelStatus('ready', text, warning);
  setProgress('Model ready', 1, 1);
  renderModelDetails(info, manifest, modelCard, modelCardError);
  ui.useServerModel.hidden = state.model.source.kind !== 'disk';
  if (state.appState !== 'busy') setAppState('ready');
}

function renderModelDetails(info, manifest, modelCard, modelCardError) {
  const validation = manifest?.metrics?.validation ?? {};
  const int8 = validation.int8 ?? {};
  const entries = [
    ['Validation accuracy (int8)', int8.accuracy, fmtPct],
    ['Validation F1 (int8)', int8.f1, (v) => v.toFixed(3)],
    ['Validation MCC (int8)', int8.mcc, (v) => v.toFixed(3)],
    ['Validation rows', validation.rows, fmtInt],
    ['Weights', `${info.dtype}, ${formatBytes(weightsBytes(manifest))}`, String],
    ['Calibration temperature', info.temperature, (v) => Number(v).toFixed(2)],
  ];
  const fragment = document.createDocumentFragment();
  for (const [label, value, format] of entries) {
    if (value === undefined || value === null || Number.isNaN(value)) continue;
    const item = document.createElement('div');
    const dt = document.createElement('dt');
    const dd = document.createElement('dd');
    dt.textContent = label;
    dd.textContent = format(value);
    item.append(dt, dd);
    fragment.append(item);
  }
  ui.metrics.replaceChildren(fragment);
  ui.modelCardText.textContent = modelCard
    ?? (modelCardError ? `The model card could not be loaded: ${modelCardError}` : 'This model folder has no MODEL_CARD.md.');
}

function weightsBytes(manifest) {
  try {
    return validateManifest(manifest).entries.weights.bytes;
  } catch {
    return 0;
  }
}

function onLoadError(message) {
  if (message.modelKept && state.model.info) {
    // The previous model still works: keep it and put the backend choice back.
    ui.backendSelect.value = state.model.loadedBackend ?? 'auto';
    state.model.source = state.model.loadedSource ?? state.model.source;
    ui.useServerModel.hidden = state.model.source.kind !== 'disk';
    showError(`${message.message}\nStill using the model loaded before (${backendName(state.model.info.backend)} backend).`);
    setModelStatus('ready', ...(state.model.readyText ?? ['Ready (previous model kept).']));
    setProgress('Model ready', 1, 1);
    if (state.appState !== 'busy') setAppState('ready');
    return;
  }
  state.model.info = null;
  setModelStatus('error', `Model not loaded: ${message.message}`);
  setProgress('Model not loaded', 0, 1);
  showError(message.message);
  if (state.run?.active) finishRun('error');
  setAppState('error');
}

/** The pool's workers as they load (the first one serves at once, the rest join when ready). */
function onWorkers({ ready, size }) {
  state.model.workers = { ready, size };
  if (state.model.info) ui.backendUsed.title = `${ready} of ${size} classifier workers ready`;
}

function onWorkerError(message) {
  if (message.op === 'load' || (message.id === undefined && state.model.status === 'loading')) {
    onLoadError(message);
  } else if (state.run && message.id === state.run.id) {
    showError(`Classification stopped: ${message.message}`);
    finishRun('error');
  } else if (state.explains.has(message.id)) {
    const { row } = state.explains.get(message.id);
    state.explains.delete(message.id);
    showExplanationError(row, message.message);
    showError(`Could not explain a tweet: ${message.message}`);
  } else {
    showError(message.message);
  }
}

async function onModelFilesChosen(fileList) {
  if (!fileList || fileList.length === 0) return;
  clearError();
  try {
    const { manifestFile, fileFor } = indexChosenFiles(fileList);
    let manifest;
    try {
      manifest = JSON.parse(await manifestFile.text());
    } catch (error) {
      throw new Error(`manifest.json: not valid JSON (${error.message})`);
    }
    const spec = validateManifest(manifest);
    const files = {};
    for (const [role, entry] of Object.entries(spec.entries)) {
      if (!entry) continue;
      const file = fileFor(entry.path);
      if (file) files[role] = file;
      else if (role !== 'modelCard') throw new Error(`${entry.path} is missing from the chosen files`);
    }
    const folder = (manifestFile.webkitRelativePath || '').split('/').slice(0, -1).join('/');
    state.model.source = { kind: 'disk', files, manifest, name: folder ? `the folder ${folder}` : 'the chosen files' };
    if (state.run?.active) cancelRun();
    loadModel();
  } catch (error) {
    showError(`Could not use the chosen model files: ${error.message}`);
  } finally {
    ui.modelFolderInput.value = '';
    ui.modelFilesInput.value = '';
  }
}

async function onClearCache() {
  ui.clearCache.disabled = true;
  const result = await clearModelCache();
  ui.clearCache.disabled = false;
  if (result.deleted) {
    ui.cacheStatus.textContent = `Deleted the cached model (${plural(result.files, 'file', 'files')}). `
      + 'It will be downloaded again the next time the page loads it; the model in use keeps working.';
  } else if (result.reason) {
    ui.cacheStatus.textContent = `Nothing deleted: ${result.reason}.`;
  } else {
    ui.cacheStatus.textContent = 'There was no cached model to delete.';
  }
}

// ---------------------------------------------------------------- input

function useTextInput() {
  state.input.file?.close();
  state.input = { kind: 'text', file: null, reading: null };
  ui.fileInput.value = '';
  ui.inputSource.hidden = true;
  ui.textColumn.replaceChildren(new Option('(choose a CSV or TSV file)', ''));
  ui.textColumn.disabled = true;
  ui.fileLayout.disabled = true;
  ui.fileReport.textContent = '';
}

/** Opens a chosen tweet file in its own reader worker (input-file.js): the UI thread never parses it. */
async function onInputFileChosen(file) {
  if (!file) return;
  clearError();
  useTextInput();
  const reading = { kind: 'file', file: null, reading: file.name };
  state.input = reading;
  ui.inputSourceText.textContent = `Reading the file ${file.name}…`;
  ui.inputSource.hidden = false;
  ui.fileReport.textContent = `Reading ${file.name} (${formatBytes(file.size)})…`;
  let opened;
  try {
    opened = await InputFile.open(file, () => new Worker(new URL('./input-worker.js', import.meta.url), { type: 'module' }));
  } catch (error) {
    if (state.input !== reading) return; // another file (or the text box) was chosen meanwhile
    useTextInput();
    showError(`Could not read ${file.name}: ${error.message}`);
    return;
  }
  if (state.input !== reading) {
    opened.close();
    return;
  }
  state.input = { kind: 'file', file: opened, reading: null };
  ui.fileLayout.value = 'auto';
  showFileColumns();
  ui.inputSourceText.textContent = `Classifying the file ${file.name}.`;
  await updateFileReport();
}

/** Reads the chosen file again with a layout (a key of LAYOUTS): the guess, or the user's choice. */
async function applyFileLayout(layout) {
  const file = state.input.file;
  try {
    await file.setLayout(layout);
  } catch (error) {
    if (state.input.file === file) showError(`Could not read ${file.name}: ${error.message}`);
    return;
  }
  if (state.input.file !== file) return;
  showFileColumns();
  await updateFileReport();
}

function showFileColumns() {
  const { summary, column } = state.input.file;
  const select = ui.textColumn;
  select.replaceChildren(...summary.columns.map((name, i) => new Option(name, String(i))));
  select.value = String(column);
  select.disabled = summary.columns.length < 2;
  ui.fileLayout.disabled = false;
}

/** The file report under the input: how many tweets, from which column, what was assumed and skipped. */
async function updateFileReport(counts) {
  const file = state.input.file;
  if (!file) return;
  const { count, emptyTexts } = counts ?? await file.describe().catch(() => ({ count: 0, emptyTexts: 0 }));
  if (state.input.file !== file) return;
  const { name, summary, column } = file;
  const what = summary.kind === 'lines'
    ? `${name}: ${plural(count, 'tweet', 'tweets')}, one per line.`
    : `${name}: ${plural(count, 'tweet', 'tweets')} from the column “${summary.columns[column]}”`
      + `${summary.delimiter ? ` (delimiter ${delimiterName(summary.delimiter)})` : ''}.`;
  const skipped = formatSkipReport({ errors: summary.errors, errorCount: summary.errorCount, emptyLines: summary.emptyLines, emptyTexts });
  ui.fileReport.textContent = [what, summary.assumed, skipped].filter(Boolean).join(' ');
}

function delimiterName(d) {
  return { ',': 'comma', ';': 'semicolon', '\t': 'tab', '|': 'pipe' }[d] ?? JSON.stringify(d);
}

/** The tweets to classify, or null (with an error shown) when there are none. */
async function collectInput() {
  if (state.input.kind === 'file') {
    const file = state.input.file;
    if (!file) {
      showError(`${state.input.reading} is still being read; classify again in a moment.`);
      return null;
    }
    let texts;
    let emptyTexts;
    try {
      ({ texts, emptyTexts } = await file.texts());
    } catch (error) {
      showError(`Could not read ${file.name}: ${error.message}`);
      return null;
    }
    if (state.input.file !== file) return null;
    await updateFileReport({ count: texts.length, emptyTexts });
    if (texts.length === 0) {
      showError(`${file.name} holds no tweets to classify in the chosen column.`);
      return null;
    }
    return texts;
  }
  const { texts, emptyLines } = splitInputLines(ui.tweetInput.value);
  ui.fileReport.textContent = formatSkipReport({ emptyLines }).replace(/\.$/, '');
  if (texts.length === 0) {
    showError('Nothing to classify: type or paste tweets (one per line), choose a file, or load the examples.');
    return null;
  }
  return texts;
}

function renderExamples() {
  const fragment = document.createDocumentFragment();
  for (const example of EXAMPLES) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'chip';
    button.dataset.testid = 'example-button';
    button.textContent = example.name;
    button.title = `${example.style}: ${example.text}`;
    button.addEventListener('click', () => addExample(example.text));
    fragment.append(button);
  }
  ui.exampleChips.replaceChildren(fragment);
}

function addExample(text) {
  if (state.input.kind === 'file') useTextInput();
  const current = ui.tweetInput.value;
  ui.tweetInput.value = current === '' || current.endsWith('\n') ? current + text : `${current}\n${text}`;
}

function loadAllExamples() {
  useTextInput();
  ui.tweetInput.value = EXAMPLES.map((e) => e.text).join('\n');
}

// ---------------------------------------------------------------- classification run

async function startRun() {
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

function cancelRun() {
  if (!state.run?.active) return;
  post({ type: 'cancel', id: state.run.id });
  ui.cancel.disabled = true;
  ui.cancel.textContent = 'Cancelling…';
}

function onResult({ id, start, batchIndex, results, ms }) {
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

function onDone(message) {
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

function finishRun(finalState) {
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

function updateSummary(force) {
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
function showPage(page) {
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

function updatePager() {
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

function renderRow(item, index) {
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

function downloadCsv() {
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

// ---------------------------------------------------------------- explanations

/** Sets an explain button's text; its accessible name also says which tweet. */
function setExplainText(button, text) {
  const row = button.closest('.row');
  button.textContent = text;
  const index = Number(row?.dataset.index);
  button.setAttribute('aria-label', Number.isNaN(index) ? text : `${text} (tweet ${index + 1})`);
}

function requestExplanation(row) {
  const run = state.run;
  const index = Number(row.dataset.index);
  const button = row.querySelector('.explain-button');
  const id = state.nextId++;
  state.explains.set(id, { row, runId: run.id });
  button.disabled = true;
  setExplainText(button, 'Explaining…');
  post({ type: 'explain', id, text: run.texts[index] });
}

function cancelPendingExplanations() {
  for (const id of state.explains.keys()) post({ type: 'cancel', id });
  state.explains.clear();
}

function onExplanation(message) {
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

function showExplanationError(row, message) {
  const button = row.querySelector('.explain-button');
  button.disabled = false;
  setExplainText(button, 'Explain');
  row.querySelector('.explanation')?.remove();
  const box = document.createElement('p');
  box.className = 'explanation explanation-error';
  box.textContent = `Could not explain: ${message}`;
  row.append(box);
}

function onResultsClick(event) {
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

// ---------------------------------------------------------------- events and start

function bindEvents() {
  ui.classify.addEventListener('click', startRun);
  ui.cancel.addEventListener('click', cancelRun);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      startRun();
    }
  });
  ui.tweetInput.addEventListener('input', () => {
    if (state.input.kind === 'file') useTextInput();
  });
  ui.useTextbox.addEventListener('click', () => {
    useTextInput();
    ui.tweetInput.focus();
  });
  ui.fileInput.addEventListener('change', () => onInputFileChosen(ui.fileInput.files[0]));
  ui.fileLayout.replaceChildren(...Object.entries(LAYOUTS).map(([key, label]) => new Option(label, key)));
  ui.fileLayout.addEventListener('change', () => {
    if (state.input.file) applyFileLayout(ui.fileLayout.value);
  });
  ui.textColumn.addEventListener('change', () => {
    if (!state.input.file) return;
    state.input.file.column = Number(ui.textColumn.value);
    updateFileReport();
  });
  document.querySelector('[data-example="all"]').addEventListener('click', loadAllExamples);

  ui.dropZone.addEventListener('dragover', (event) => {
    if (!event.dataTransfer?.types.includes('Files')) return;
    event.preventDefault();
    ui.dropZone.querySelector('.file-row').classList.add('dragging');
  });
  ui.dropZone.addEventListener('dragleave', (event) => {
    if (!ui.dropZone.contains(event.relatedTarget)) ui.dropZone.querySelector('.file-row').classList.remove('dragging');
  });
  ui.dropZone.addEventListener('drop', (event) => {
    if (!event.dataTransfer?.files.length) return;
    event.preventDefault();
    ui.dropZone.querySelector('.file-row').classList.remove('dragging');
    const files = [...event.dataTransfer.files];
    if (files.some((f) => f.name === 'manifest.json')) onModelFilesChosen(files);
    else onInputFileChosen(files[0]);
  });

  ui.backendSelect.addEventListener('change', () => {
    if (state.run?.active) cancelRun();
    loadModel();
  });
  ui.modelFolderInput.addEventListener('change', () => onModelFilesChosen(ui.modelFolderInput.files));
  ui.modelFilesInput.addEventListener('change', () => onModelFilesChosen(ui.modelFilesInput.files));
  ui.useServerModel.addEventListener('click', () => {
    state.model.source = { kind: 'url', url: serverModelUrl() };
    loadModel();
  });
  ui.retryLoad.addEventListener('click', () => {
    if (!state.worker) startWorker();
    loadModel();
  });
  ui.clearCache.addEventListener('click', onClearCache);
  ui.downloadCsv.addEventListener('click', downloadCsv);
  ui.results.addEventListener('click', onResultsClick);
  ui.pagePrev.addEventListener('click', () => showPage(state.run.page - 1));
  ui.pageNext.addEventListener('click', () => showPage(state.run.page + 1));
}

function registerServiceWorker() {
  if (!('serviceWorker' in navigator) || !window.isSecureContext || params.get('sw') === '0') return;
  navigator.serviceWorker.register(new URL('./sw.js', import.meta.url)).catch((error) => {
    console.info(`tweetguard: offline support unavailable (${error.message})`);
  });
}

function main() {
  const backend = params.get('backend');
  if (['auto', 'webgpu', 'cpu'].includes(backend)) ui.backendSelect.value = backend;
  renderExamples();
  bindEvents();
  setAppState('loading');
  if (startWorker()) loadModel();
  registerServiceWorker();
}

main();

// page-state.js: the page's shared state (ES module): the element map, the state of the model, the input
// and the run, the one way to message the classifier workers, the status line, errors and progress, and
// the formatting every panel uses. Text from tweets is only ever written with textContent.



export const params = new URLSearchParams(location.search);

const $ = (id) => document.getElementById(id);

export const ui = {
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

export const state = {
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

export function serverModelUrl() {
  // ?model=path/ picks another folder on this origin (the CSP forbids other origins anyway).
  const url = new URL(params.get('model') ?? 'model/', location.href);
  return url.origin === location.origin ? url.href : new URL('model/', location.href).href;
}

const numberFormat = new Intl.NumberFormat('en-US');

export const fmtInt = (n) => numberFormat.format(n);

export const fmtPct = (p) => `${(p * 100).toFixed(1)}%`;

export const fmtMs = (ms) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`);

export const plural = (n, one, many) => `${fmtInt(n)} ${n === 1 ? one : many}`;

export const backendName = (b) => ({ cpu: 'CPU', webgpu: 'WebGPU' })[b] ?? String(b);

/** What ran: `CPU (int8, wasm relaxed SIMD, 2 workers)` or `WebGPU on <adapter>`, and why, if not asked for. */
export function describeBackend(backend, fallbackReason, info = {}) {
  let text = backendName(backend);
  if (backend === 'webgpu' && info.adapter) text += ` on ${info.adapter}`;
  if (backend === 'cpu' && info.cpuKernel) {
    const workers = state.model.workers?.ready;
    text += ` (${info.cpuKernel.replace('wasm-', 'wasm ').replace('-simd', ' SIMD')}${workers > 1 ? `, ${workers} workers` : ''})`;
  }
  if (fallbackReason) text += ` (${fallbackReason})`;
  return text;
}

export function setAppState(next) {
  state.appState = next;
  ui.body.dataset.appState = next;
  const busy = next === 'busy';
  ui.classify.disabled = next !== 'ready';
  ui.cancel.disabled = !busy;
  ui.retryLoad.hidden = state.model.status !== 'error';
}

export function setModelStatus(status, text, warning) {
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

export function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = false;
}

export function clearError() {
  ui.error.textContent = '';
  ui.error.hidden = true;
}

export function setProgress(label, loaded, total) {
  ui.progressLabel.textContent = label;
  if (loaded === null) {
    ui.progress.removeAttribute('value'); // indeterminate
    return;
  }
  ui.progress.max = Math.max(total, 1);
  ui.progress.value = Math.min(loaded, ui.progress.max);
}

export function post(message) {
  if (!state.worker) return false; // stopped; "Retry loading" starts a new one
  state.worker.postMessage(message);
  return true;
}

// app.js: the page's entry point (ES module). Starts the classifier workers (worker.js, through the pool)
// and routes their messages to the panels: the model panel (model-panel.js), the run (run.js) and its
// results (results-view.js); binds the page's events, including the input panel's (input-panel.js); and
// registers the service worker. The shared state is page-state.js. Tweet text is only ever written with
// textContent / text nodes. The worker protocol and the data-testid hooks are documented in
// docs/web-page.md.

import { LAYOUTS } from './csv.js';
import { applyFileLayout, loadAllExamples, onInputFileChosen, renderExamples, updateFileReport, useTextInput } from './input-panel.js';
import { loadModel, onClearCache, onLoadError, onModelFilesChosen, onProgress, onReady, onWorkers } from './model-panel.js';
import { params, serverModelUrl, setAppState, setModelStatus, setProgress, showError, state, ui } from './page-state.js';
import { WorkerPool } from './pool.js';
import { downloadCsv, onExplanation, onResultsClick, showExplanationError, showPage } from './results-view.js';
import { cancelRun, finishRun, onDone, onResult, startRun } from './run.js';

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

// model-panel.js: the model panel (ES module): loading the model (from the server or a chosen folder) with
// its progress, the ready line and the model card's metrics, load errors (keeping a working model), the
// pool's workers as they join, and clearing the cached model.

import { clearModelCache, formatBytes, indexChosenFiles, validateManifest } from './model-store.js';
import { backendName, clearError, describeBackend, fmtInt, fmtMs, fmtPct, plural, post, setAppState, setModelStatus, setProgress, showError, state, ui } from './page-state.js';
import { cancelRun, finishRun } from './run.js';
import { crossValidationEntries, generatorEntries } from './model-metrics.js';

export function loadModel() {
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

export function onProgress({ phase, loaded, total, file }) {
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

export function onReady({ info, manifest, modelCard, modelCardError, loadMs, stats, source }) {
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
    ...generatorEntries(validation.int8_by_generator, fmtPct),
    ...crossValidationEntries(manifest?.metrics?.cross_validation, fmtPct),
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

export function onLoadError(message) {
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
export function onWorkers({ ready, size }) {
  state.model.workers = { ready, size };
  if (state.model.info) ui.backendUsed.title = `${ready} of ${size} classifier workers ready`;
}

export async function onModelFilesChosen(fileList) {
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

export async function onClearCache() {
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

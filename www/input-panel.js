// input-panel.js: what is classified (ES module): the text box, a chosen tweet file (read and parsed in its
// own worker, input-file.js; its column and layout), the example tweets.

import { formatSkipReport, splitInputLines } from './csv.js';
import { EXAMPLES } from './examples.js';
import { InputFile } from './input-file.js';
import { formatBytes } from './model-store.js';
import { clearError, plural, showError, state, ui } from './page-state.js';

export function useTextInput() {
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
export async function onInputFileChosen(file) {
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
export async function applyFileLayout(layout) {
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
export async function updateFileReport(counts) {
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
export async function collectInput() {
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

export function renderExamples() {
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

export function loadAllExamples() {
  useTextInput();
  ui.tweetInput.value = EXAMPLES.map((e) => e.text).join('\n');
}

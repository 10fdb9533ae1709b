// input-file.js: a tweet file chosen on the page is read, decoded and parsed in a worker (input-worker.js),
// never on the UI thread: a 100 MB, two-million-row CSV takes seconds and hundreds of MB of parse
// objects, and the tab stays responsive because both live in the worker. The page only receives what it
// shows (columns, the layout guessed, counts, the first bad rows) and, when it classifies, the texts.
//
// InputFileService is the worker's side (pure: csv.js over one file's text); InputFile is the page's
// handle on it, one worker per chosen file. Both are testable in Node (the client with a fake worker).

import { LISTED_BAD_ROWS, decodeText, extractTexts, parseInputFile } from './csv.js';
import { formatBytes } from './model-store.js';

/** The largest input file the page reads (the browser holds its text, and the parse, in the worker). */
export const MAX_INPUT_BYTES = 256 * 1024 * 1024;

/** The worker's side: holds one file's text and its parse; each method answers one page request. */
export class InputFileService {
  constructor() {
    this.text = null;
    this.name = '';
    this.parsed = null;
  }

  /** Reads and decodes `file` (a File or Blob); refuses one over MAX_INPUT_BYTES before reading it. */
  async open({ file, name = file?.name ?? '' }) {
    if (!file || typeof file.arrayBuffer !== 'function') throw new Error('no file was given');
    if (file.size > MAX_INPUT_BYTES) {
      const [size, limit] = [file.size, MAX_INPUT_BYTES].map(formatBytes);
      const exact = size === limit ? ` (${file.size.toLocaleString('en-US')} bytes, over by ${(file.size - MAX_INPUT_BYTES).toLocaleString('en-US')})` : '';
      throw new Error(`it is ${size}${exact}; the limit is ${limit}`);
    }
    this.text = decodeText(await file.arrayBuffer());
    this.name = name;
    this.parsed = null;
    return { name, bytes: file.size };
  }

  /** Parses with `layout` (a key of csv.js's LAYOUTS) and returns what the page shows about it. */
  layout({ layout }) {
    if (this.text === null) throw new Error('no file is open');
    this.parsed = parseInputFile(this.text, this.name, layout);
    const { kind, columns, defaultColumn, delimiter, assumed, errors, emptyLines } = this.parsed;
    return {
      kind, columns, defaultColumn, delimiter, assumed, emptyLines,
      layout: this.parsed.layout,
      errors: errors.slice(0, LISTED_BAD_ROWS),
      errorCount: errors.length,
    };
  }

  /** How many tweets the column holds, and how many of its rows are blank. */
  describe({ column }) {
    const { texts, emptyTexts } = extractTexts(this.requireParsed(), column);
    return { count: texts.length, emptyTexts };
  }

  /** The tweets of the column, in file order. */
  texts({ column }) {
    const { texts, emptyTexts } = extractTexts(this.requireParsed(), column);
    return { texts, emptyTexts };
  }

  requireParsed() {
    if (!this.parsed) throw new Error('the file has not been parsed yet');
    return this.parsed;
  }

  /** Answers one request message {id, op, ...args} with {id, value} or {id, error}. */
  async handle(message) {
    const { id, op } = message ?? {};
    try {
      if (!['open', 'layout', 'describe', 'texts'].includes(op)) throw new Error(`unknown request ${JSON.stringify(op)}`);
      return { id, value: await this[op](message) };
    } catch (error) {
      return { id, error: error?.message ?? String(error) };
    }
  }
}

/** The page's handle on one chosen file, read by its own worker (ended by close()). */
export class InputFile {
  /**
   * Opens `file` in a new worker made by `createWorker` and parses it with the `auto` layout.
   * Resolves to the InputFile, or rejects with the reason (too big, unreadable) after ending the worker.
   */
  static async open(file, createWorker) {
    const input = new InputFile(createWorker(), file.name);
    try {
      await input.request('open', { file });
      await input.setLayout('auto');
      return input;
    } catch (error) {
      input.close();
      throw error;
    }
  }

  constructor(worker, name) {
    this.worker = worker;
    this.name = name;
    this.summary = null; // what layout() answered: columns, defaultColumn, kind, delimiter, assumed, errors, ...
    this.column = 0;
    this.pending = new Map(); // request id -> {resolve, reject}
    this.nextId = 1;
    this.closed = false;
    worker.onmessage = (event) => this.onReply(event.data);
    worker.onerror = (event) => {
      event.preventDefault?.();
      this.failAll(new Error(event.message || 'the file reader stopped'));
    };
  }

  /** Parses the file again with `layout`; the text column goes back to the layout's default. */
  async setLayout(layout) {
    this.summary = await this.request('layout', { layout });
    this.column = this.summary.defaultColumn;
    return this.summary;
  }

  /** {count, emptyTexts} of the current column. */
  describe() {
    return this.request('describe', { column: this.column });
  }

  /** {texts, emptyTexts} of the current column. */
  texts() {
    return this.request('texts', { column: this.column });
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.worker.terminate();
    this.failAll(new Error('the file was closed'));
  }

  request(op, args) {
    if (this.closed) return Promise.reject(new Error('the file was closed'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, ...args });
    });
  }

  onReply({ id, value, error }) {
    const waiter = this.pending.get(id);
    if (!waiter) return;
    this.pending.delete(id);
    if (error !== undefined) waiter.reject(new Error(error));
    else waiter.resolve(value);
  }

  failAll(error) {
    for (const { reject } of this.pending.values()) reject(error);
    this.pending.clear();
  }
}

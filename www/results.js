// results.js: the results of one classify run, kept compactly (typed arrays beside the texts, not one object
// per tweet), the window of them that the page renders, and their CSV export in chunks. A run of a
// million tweets is a few tens of MB here and never a million DOM rows: the page renders one page of
// RESULTS_PAGE_SIZE rows at a time, and the CSV export holds every row. No DOM: testable in Node.

import { resultsToCsv } from './csv.js';

/** Rows the page renders at once; the pager moves between pages, and the CSV export has them all. */
export const RESULTS_PAGE_SIZE = 200;
/** Rows per chunk of the CSV export (one string per chunk, joined by the Blob, never by us). */
const CSV_CHUNK_ROWS = 10_000;
const NOT_CLASSIFIED = 255;

export class ResultStore {
  /**
   * @param {string[]} texts the run's tweets (result i is for texts[i])
   * @param {string[]} labels the model's labels, index -> name (at most 255)
   */
  constructor(texts, labels) {
    if (labels.length >= NOT_CLASSIFIED) throw new Error(`a model with ${labels.length} labels is not supported (at most 254)`);
    this.texts = texts;
    this.labels = labels;
    this.labelIndex = new Map(labels.map((label, i) => [label, i]));
    this.label = new Uint8Array(texts.length).fill(NOT_CLASSIFIED);
    this.score = new Float64Array(texts.length);
    this.probabilities = new Float64Array(texts.length * labels.length);
    this.truncated = new Uint8Array(texts.length);
    this.count = 0;
  }

  get total() {
    return this.texts.length;
  }

  /** Stores the result for texts[index] ({label, score, probabilities: {label: p}, truncated}). */
  set(index, result) {
    const label = this.labelIndex.get(result.label);
    if (label === undefined) throw new Error(`the classifier answered an unknown label ${JSON.stringify(result.label)}`);
    if (!(index >= 0 && index < this.total)) throw new Error(`result index ${index} is outside the run's ${this.total} tweets`);
    if (this.label[index] === NOT_CLASSIFIED) this.count++;
    this.label[index] = label;
    this.score[index] = result.score;
    this.truncated[index] = result.truncated ? 1 : 0;
    const base = index * this.labels.length;
    this.labels.forEach((name, i) => { this.probabilities[base + i] = result.probabilities?.[name] ?? Number.NaN; });
  }

  has(index) {
    return this.label[index] !== undefined && this.label[index] !== NOT_CLASSIFIED;
  }

  /** The result for texts[index] as {text, label, score, probabilities, truncated}, or null if not classified yet. */
  get(index) {
    if (!this.has(index)) return null;
    const base = index * this.labels.length;
    const probabilities = {};
    this.labels.forEach((name, i) => {
      const p = this.probabilities[base + i];
      if (!Number.isNaN(p)) probabilities[name] = p;
    });
    return {
      text: this.texts[index],
      label: this.labels[this.label[index]],
      score: this.score[index],
      probabilities,
      truncated: this.truncated[index] === 1,
    };
  }

  /** The classified results in input order. */
  * items() {
    for (let i = 0; i < this.total; i++) if (this.has(i)) yield this.get(i);
  }

  /** The CSV export (csv.js's resultsToCsv columns) as strings of at most `chunkRows` rows, for a Blob. */
  csvChunks(chunkRows = CSV_CHUNK_ROWS) {
    const chunks = [];
    let batch = [];
    let first = true;
    const flush = () => {
      // resultsToCsv writes the header: every chunk after the first drops its first line.
      const csv = resultsToCsv(batch, this.labels);
      chunks.push(first ? csv : csv.slice(csv.indexOf('\r\n') + 2));
      first = false;
      batch = [];
    };
    for (const item of this.items()) {
      batch.push(item);
      if (batch.length === chunkRows) flush();
    }
    if (batch.length || first) flush();
    return chunks;
  }
}

/** Pages of `size` rows over `total` rows: how many there are (at least 1). */
export function pageCount(total, size = RESULTS_PAGE_SIZE) {
  return Math.max(1, Math.ceil(total / size));
}

/** The rows [start, end) of page `page` (clamped into range) and the clamped page. */
export function pageRange(page, total, size = RESULTS_PAGE_SIZE) {
  const clamped = Math.min(Math.max(0, Math.floor(page) || 0), pageCount(total, size) - 1);
  const start = clamped * size;
  return { page: clamped, start, end: Math.min(total, start + size) };
}

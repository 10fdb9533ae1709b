// protocol.js: the messages between the page (app.js, bench.js) and the classifier worker (worker.js, or
// pool.js in its place), as JSDoc types both sides name, and the numbers both sides must agree on.
// docs/web-page.md describes each message; this file is the one place for the batch size and the limits.

/** Texts per `classify()` call: per progress step, per `result` message and per chunk a pool worker takes. */
export const CLASSIFY_BATCH = 32;
/** The most texts one `classify()` call may take (a larger `batchSize` is clamped to it). */
export const MAX_CLASSIFY_BATCH = 512;
/** Batches the worker may run ahead of the page's `ack`s (flow control: results never pile up unrendered). */
export const FLOW_WINDOW = 8;

/** `batchSize` as a worker uses it: a whole number in [1, MAX_CLASSIFY_BATCH], CLASSIFY_BATCH when absent or not a number. */
export function classifyBatchSize(batchSize) {
  return Math.min(MAX_CLASSIFY_BATCH, Math.max(1, Math.floor(Number(batchSize)) || CLASSIFY_BATCH));
}

/**
 * Page → worker.
 * @typedef {'auto' | 'webgpu' | 'cpu'} BackendChoice
 * @typedef {{type: 'load', modelUrl?: string, backend: BackendChoice}} LoadUrlMessage
 * @typedef {{type: 'load', files: {config: Blob, tokenizer: Blob, weights: Blob, modelCard?: Blob},
 *   manifest: object | Blob, backend: BackendChoice}} LoadFilesMessage
 * @typedef {{type: 'classify', id: number, texts: string[], batchSize?: number, window?: number}} ClassifyMessage
 * @typedef {{type: 'ack', id: number, batchIndex: number}} AckMessage
 * @typedef {{type: 'cancel', id: number}} CancelMessage
 * @typedef {{type: 'explain', id: number, text: string}} ExplainMessage
 * @typedef {{type: 'profile', id: number, texts: string[]}} ProfileMessage
 * @typedef {LoadUrlMessage | LoadFilesMessage | ClassifyMessage | AckMessage | CancelMessage | ExplainMessage
 *   | ProfileMessage} ToWorker
 */

/**
 * Worker → page.
 * @typedef {{label: string, score: number, probabilities: Object<string, number>, truncated: boolean,
 *   logits?: number[]}} TweetResult
 * @typedef {{tokenizeMs: number, inferMs: number, totalMs?: number}} Timings
 * @typedef {{type: 'progress', phase: 'download' | 'verify' | 'compile' | 'classify', loaded: number,
 *   total: number, file?: string, id?: number}} ProgressMessage
 * @typedef {{type: 'ready', info: object, manifest: object | null, modelCard: string | null,
 *   modelCardError?: string, backendRequested: BackendChoice, source: 'url' | 'disk', stats: object,
 *   loadMs: number}} ReadyMessage
 * @typedef {{type: 'workers', ready: number, size: number}} WorkersMessage
 * @typedef {{type: 'result', id: number, batchIndex: number, start: number, results: TweetResult[], ms: number,
 *   timings: Timings}} ResultMessage
 * @typedef {{type: 'done', id: number, backend: string, fallbackReason?: string, timings: Timings, count: number,
 *   total: number, cancelled: boolean}} DoneMessage
 * @typedef {{type: 'explanation', id: number, words: {text: string, delta: number}[], scored?: number,
 *   botLabel?: string, full?: TweetResult, ms?: number, cancelled?: boolean}} ExplanationMessage
 * @typedef {{type: 'profile', id: number, kernels: {kernel: string, ms: number}[]}} ProfileReply
 * @typedef {{type: 'error', id?: number, op: 'load' | 'classify' | 'explain' | 'profile', message: string,
 *   modelKept?: boolean}} ErrorMessage
 * @typedef {ProgressMessage | ReadyMessage | WorkersMessage | ResultMessage | DoneMessage | ExplanationMessage
 *   | ProfileReply | ErrorMessage} FromWorker
 */

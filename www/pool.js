// pool.js: a pool of classifier workers behind the interface of one (postMessage / onmessage / terminate),
// so the page and the benchmark talk to it as to worker.js (protocol: docs/web-page.md). Each worker loads
// its own copy of the model (int8, ~25 MB); the first one downloads it, the others load once it is ready,
// from the Cache API. A classify job is cut into chunks of `batchSize` consecutive texts; each idle worker
// takes the next task, one chunk or several small ones (TASK_MIN_TEXTS), and results go back to the page in
// order. Explanations jump the queue, so a single tweet waits at most for one task of a bulk job (so do
// `profile` requests). On WebGPU the pool keeps one worker: the GPU is shared.
// No DOM: testable in Node with fake workers.

import { classifyBatchSize } from './protocol.js';

/** Most workers, whatever the core count: each holds a model and its buffers (~50 MB). */
export const MAX_WORKERS = 4;

/** Fewest texts a worker's task holds where a job's chunks are smaller (whole chunks, consecutive): each
 * task costs a round trip through the page's thread, which one-tweet chunks would otherwise pay per tweet
 * (~0.7 ms of a ~10 ms tweet in headless Chromium, measured with bench.html). */
export const TASK_MIN_TEXTS = 8;

/** The pool size for this machine: one worker per core, at most MAX_WORKERS. */
export function defaultPoolSize(cores = globalThis.navigator?.hardwareConcurrency) {
  return Math.max(1, Math.min(MAX_WORKERS, Math.floor(Number(cores)) || 1));
}

/** Whether a job has as many chunks out, unacknowledged, as its flow-control window allows. */
function windowFull(job) {
  return job.window > 0 && job.dispatched - job.acked - 1 >= job.window;
}

export class WorkerPool {
  /**
   * @param {() => Worker} createWorker makes one worker (module worker.js)
   * @param {number} size how many workers to run at most
   */
  constructor(createWorker, size = defaultPoolSize()) {
    this.createWorker = createWorker;
    this.size = Math.max(1, size);
    this.onmessage = null;
    this.onerror = null;
    this.onmessageerror = null;
    this.members = []; // {worker, ready, task}
    this.loadMessage = null;
    this.loadGeneration = 0;
    this.info = null; // the ready model's info
    this.jobs = new Map(); // page job id -> job
    this.queue = []; // tasks waiting for a worker: {job, chunks}, or {single} (one request, one reply)
    this.nextTaskId = 1;
    this.addMember(); // the first worker exists from the start, as a plain worker would
  }

  /** Workers ready to classify. */
  get readyCount() {
    return this.members.filter((m) => m.ready).length;
  }

  addMember() {
    const member = { worker: this.createWorker(), ready: false, task: null, generation: this.loadGeneration };
    member.worker.onmessage = (event) => this.onMemberMessage(member, event.data);
    member.worker.onerror = (event) => this.onMemberError(member, event);
    member.worker.onmessageerror = (event) => this.onmessageerror?.(event);
    this.members.push(member);
    return member;
  }

  emit(message) {
    this.onmessage?.({ data: message });
  }

  postMessage(message) {
    switch (message?.type) {
      case 'load': return this.load(message);
      case 'classify': return this.classify(message);
      case 'explain':
      case 'profile': return this.enqueue({ single: message }, true);
      case 'cancel': return this.cancel(message.id);
      case 'ack': return this.ack(message);
      default: return this.members[0]?.worker.postMessage(message);
    }
  }

  terminate() {
    for (const member of this.members) member.worker.terminate();
    this.members = [];
  }

  // ------------------------------------------------------------------ loading

  /** The first worker loads in view of the page; the others follow once it is ready (from the cache). */
  load(message) {
    this.loadMessage = message;
    this.loadGeneration++;
    const first = this.members[0] ?? this.addMember();
    first.generation = this.loadGeneration;
    first.loading = true;
    // Workers beyond the first drop out until the new model is ready on the first.
    for (const extra of this.members.splice(1)) extra.worker.terminate();
    first.worker.postMessage(message);
  }

  onLoaded(member, message) {
    member.ready = true;
    member.loading = false;
    if (member !== this.members[0]) {
      this.emitWorkers();
      return this.dispatch();
    }
    this.info = message.info;
    this.emit(message);
    // More workers only pay off on the CPU path.
    this.wanted = message.info?.backend === 'cpu' ? this.size : 1;
    this.emitWorkers();
    while (this.members.length < this.wanted) {
      const extra = this.addMember();
      extra.loading = true;
      extra.worker.postMessage(this.loadMessage);
    }
    this.dispatch();
  }

  /** Tells the page how many workers are ready of how many are loading (extension: `workers`). */
  emitWorkers() {
    this.emit({ type: 'workers', ready: this.readyCount, size: this.wanted ?? 1 });
  }

  // ------------------------------------------------------------------ classification

  classify({ id, texts, batchSize, window = 0 }) {
    if (!Array.isArray(texts)) {
      return this.emit({ type: 'error', op: 'classify', id, message: 'classify: "texts" must be an array of strings' });
    }
    const size = classifyBatchSize(batchSize);
    const chunks = [];
    for (let start = 0; start < texts.length; start += size) chunks.push({ index: chunks.length, start, texts: texts.slice(start, start + size) });
    const job = {
      id, total: texts.length, chunks, window, started: performance.now(), cancelled: false,
      dispatched: 0, finished: new Map(), emitted: 0, acked: -1, inFlight: 0, count: 0,
      backend: null, fallbackReason: undefined, timings: { tokenizeMs: 0, inferMs: 0 },
    };
    this.jobs.set(id, job);
    this.emit({ type: 'progress', phase: 'classify', loaded: 0, total: job.total, id });
    if (chunks.length === 0) return this.finishJob(job);
    this.dispatch();
  }

  enqueue(task, urgent) {
    if (urgent) this.queue.unshift(task);
    else this.queue.push(task);
    this.dispatch();
  }

  /** The next task for an idle worker: queued ones first (explanations, chunks handed back), then the
   * next chunks of a job: one, or as many as make TASK_MIN_TEXTS texts, within the flow-control window. */
  nextTask() {
    while (this.queue.length) {
      const task = this.queue.shift();
      if (!task.job?.cancelled) return task;
      if (task.job.inFlight === 0) this.finishJob(task.job);
    }
    for (const job of this.jobs.values()) {
      const chunks = [];
      let texts = 0;
      while (!job.cancelled && job.dispatched < job.chunks.length && texts < TASK_MIN_TEXTS && !windowFull(job)) {
        const chunk = job.chunks[job.dispatched++];
        chunks.push(chunk);
        texts += chunk.texts.length;
      }
      if (chunks.length) return { job, chunks };
    }
    return null;
  }

  dispatch() {
    for (const member of this.members) {
      if (!member.ready || member.task) continue;
      const task = this.nextTask();
      if (!task) return;
      task.taskId = this.nextTaskId++;
      member.task = task;
      if (task.single) {
        member.worker.postMessage({ ...task.single, id: task.taskId });
      } else {
        // The worker cuts the texts back into the same chunks: all but a job's last are batchSize long.
        task.job.inFlight++;
        const texts = task.chunks.flatMap((chunk) => chunk.texts);
        member.worker.postMessage({ type: 'classify', id: task.taskId, texts, batchSize: task.chunks[0].texts.length });
      }
    }
  }

  onChunkResult(task, message) {
    const { job } = task;
    const chunk = task.chunks[message.batchIndex];
    job.finished.set(chunk.index, { results: message.results, ms: message.ms, timings: message.timings });
    // In order: a chunk goes out once every chunk before it has.
    while (job.finished.has(job.emitted)) {
      const done = job.finished.get(job.emitted);
      job.finished.delete(job.emitted);
      const at = job.chunks[job.emitted];
      job.count += done.results.length;
      this.emit({ type: 'result', id: job.id, batchIndex: job.emitted, start: at.start, results: done.results, ms: done.ms, timings: done.timings });
      this.emit({ type: 'progress', phase: 'classify', loaded: job.count, total: job.total, id: job.id });
      job.emitted++;
    }
  }

  onChunkDone(task, message) {
    const { job } = task;
    job.inFlight--;
    job.backend = message.backend;
    job.fallbackReason = message.fallbackReason ?? job.fallbackReason;
    job.timings.tokenizeMs += message.timings?.tokenizeMs ?? 0;
    job.timings.inferMs += message.timings?.inferMs ?? 0;
    const allDone = job.emitted === job.chunks.length;
    const stopped = job.cancelled && job.inFlight === 0;
    if (allDone || stopped) this.finishJob(job);
  }

  finishJob(job) {
    if (!this.jobs.has(job.id)) return;
    this.jobs.delete(job.id);
    this.emit({
      type: 'done',
      id: job.id,
      backend: job.backend ?? this.info?.backend ?? 'cpu',
      ...(job.fallbackReason ? { fallbackReason: job.fallbackReason } : {}),
      timings: { ...job.timings, totalMs: performance.now() - job.started },
      count: job.count,
      total: job.total,
      cancelled: job.count < job.total,
      workers: this.readyCount,
    });
  }

  cancel(id) {
    const job = this.jobs.get(id);
    if (job) {
      job.cancelled = true;
      // Tasks of several chunks stop between them.
      for (const member of this.members) {
        if (member.task?.job === job) member.worker.postMessage({ type: 'cancel', id: member.task.taskId });
      }
      if (job.inFlight === 0) this.finishJob(job);
      return;
    }
    // An explanation that has not started yet.
    const queued = this.queue.findIndex((t) => t.single?.type === 'explain' && t.single.id === id);
    if (queued >= 0) {
      this.queue.splice(queued, 1);
      this.emit({ type: 'explanation', id, cancelled: true, words: [] });
    }
  }

  ack({ id, batchIndex }) {
    const job = this.jobs.get(id);
    if (!job) return;
    job.acked = Math.max(job.acked, batchIndex);
    this.dispatch();
  }

  // ------------------------------------------------------------------ messages from the workers

  onMemberMessage(member, message) {
    if (member.generation !== this.loadGeneration) return; // a worker of a model being replaced
    if (member.loading) {
      if (message.type === 'ready') return this.onLoaded(member, message);
      if (member !== this.members[0]) {
        if (message.type === 'error') this.dropMember(member, message.message);
        return; // a follower's progress is not the page's business
      }
      if (message.type === 'error' && message.op === 'load') member.loading = false;
      return this.emit(message);
    }
    const task = member.task;
    if (!task) return this.emit(message);
    if (task.single) {
      // explain -> explanation, profile -> profile, or an error.
      if (message.type === 'explanation' || message.type === 'profile' || message.type === 'error') {
        member.task = null;
        this.emit({ ...message, id: task.single.id });
        this.dispatch();
      }
      return;
    }
    switch (message.type) {
      case 'result': return this.onChunkResult(task, message);
      case 'done':
        member.task = null;
        this.onChunkDone(task, message);
        return this.dispatch();
      case 'error':
        member.task = null;
        task.job.inFlight--;
        task.job.cancelled = true;
        this.emit({ ...message, id: task.job.id });
        if (task.job.inFlight === 0) this.finishJob(task.job);
        return this.dispatch();
      default: // progress of one chunk: the pool reports the job's own
    }
  }

  /** A follower that failed to load or crashed leaves the pool; the first one's failure is the page's. */
  dropMember(member, reason) {
    member.worker.terminate();
    this.members = this.members.filter((m) => m !== member);
    this.wanted = Math.min(this.wanted ?? 1, Math.max(1, this.members.length));
    console.warn(`tweetguard: a classifier worker left the pool (${reason})`);
    this.emitWorkers();
    const task = member.task;
    if (task?.job) {
      // Its chunks without results go back to the front of the queue.
      task.job.inFlight--;
      const unfinished = task.chunks.filter((chunk) => chunk.index >= task.job.emitted && !task.job.finished.has(chunk.index));
      if (unfinished.length) this.queue.unshift({ job: task.job, chunks: unfinished });
    } else if (task?.single) {
      this.queue.unshift({ single: task.single });
    }
    this.dispatch();
  }

  onMemberError(member, event) {
    if (member === this.members[0] || this.members.length === 1) return this.onerror?.(event);
    event.preventDefault?.();
    this.dropMember(member, event.message || 'it stopped');
  }
}

// input-worker.js: module worker that reads, decodes and parses one tweet file for the page, off the UI
// thread (input-file.js: InputFileService answers, InputFile asks). One request at a time, in order.

import { InputFileService } from './input-file.js';

const service = new InputFileService();
let queue = Promise.resolve();

self.onmessage = (event) => {
  queue = queue.then(async () => self.postMessage(await service.handle(event.data)));
};

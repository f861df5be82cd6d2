// Benchmark peer: the model service's design rebuilt small. Each workspace runs in its own
// worker thread (worker.js, vm2 inside); an LRU keeps FUNCTIONS_WORKERS_MAX_LRU of them.
//   npm ci && PORT=4100 node server.js
'use strict';
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { settings, serve, HttpError } = require('../shared');

class WorkerSandbox {
  constructor(script, names) {
    this.pending = new Map();
    this.next = 0;
    this.dead = false;
    this.worker = new Worker(path.join(__dirname, 'worker.js'), {
      workerData: { script, names },
      resourceLimits: { maxOldGenerationSizeMb: settings.maxOldMb },
    });
    this.worker.on('message', ({ id, answer, error }) => {
      const call = this.pending.get(id);
      if (!call) return;
      this.pending.delete(id);
      clearTimeout(call.timer);
      if (error === undefined) call.resolve(answer);
      else call.reject(new HttpError(500, 'FunctionError', error));
    });
    const fail = (error) => this.failAll(new HttpError(500, 'SandboxCrashed', String(error && error.message ? error.message : error)));
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => {
      this.dead = true;
      fail(`worker exited with code ${code}`);
    });
  }

  run(fn, params, timeout) {
    return new Promise((resolve, reject) => {
      const id = this.next++;
      const timer = setTimeout(() => {
        this.failAll(new HttpError(504, 'TimeoutExceeded', `the run passed ${timeout} ms`));
        this.close();
      }, timeout);
      this.pending.set(id, { resolve, reject, timer });
      this.worker.postMessage({ id, fn, params });
    });
  }

  failAll(error) {
    for (const call of this.pending.values()) {
      clearTimeout(call.timer);
      call.reject(error);
    }
    this.pending.clear();
  }

  close() {
    this.dead = true;
    this.worker.terminate();
  }
}

serve({ create: (script, names) => new WorkerSandbox(script, names) });

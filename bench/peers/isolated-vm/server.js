// Benchmark peer: the modern Node choice. One isolated-vm isolate (and context) per workspace,
// an LRU of FUNCTIONS_WORKERS_MAX_LRU of them, runs on isolated-vm's own threads.
//   npm ci && PORT=4200 node --no-node-snapshot server.js   (Node 20 needs the flag)
'use strict';
const ivm = require('isolated-vm');
const { settings, serve, HttpError } = require('../shared');

// Evaluated in each context before the workspace's script: cache, console capture and the
// entry point that runs one function and answers JSON text of {result, logs}.
const PRELUDE = `
const cache = {};
let __logs = [];
const __logger = (level) => (...args) => {
  const message = args.map((arg) => (typeof arg === 'string' ? arg : JSON.stringify(arg))).join(' ');
  __logs.push({ level, message, time: Date.now() });
};
const console = { log: __logger('info'), info: __logger('info'), warn: __logger('warn'), error: __logger('error'), debug: __logger('debug') };
async function __run(fn, params) {
  __logs = [];
  const logs = __logs;
  const result = await __functions[fn](JSON.parse(params));
  return JSON.stringify({ result: result === undefined ? null : result, logs });
}
`;

class IsolateSandbox {
  constructor(script, names) {
    this.isolate = new ivm.Isolate({ memoryLimit: settings.maxOldMb });
    const context = this.isolate.createContextSync();
    context.evalSync(`${PRELUDE}\n${script}\nconst __functions = {${names.join(', ')}};`);
    this.entry = context.global.getSync('__run', { reference: true });
  }

  async run(fn, params, timeout) {
    const started = process.hrtime.bigint();
    let answer;
    try {
      answer = await this.entry.apply(undefined, [fn, JSON.stringify(params)], { timeout, result: { promise: true } });
    } catch (error) {
      if (this.isolate.isDisposed) throw new HttpError(500, 'SandboxCrashed', String(error.message));
      if (/timed out/i.test(error.message)) throw new HttpError(504, 'TimeoutExceeded', error.message);
      throw new HttpError(500, 'FunctionError', String(error.message));
    }
    const duration = Number(process.hrtime.bigint() - started) / 1e6;
    return `${answer.slice(0, -1)},"duration":${duration}}`;
  }

  get dead() {
    return this.isolate.isDisposed;
  }

  close() {
    if (!this.isolate.isDisposed) this.isolate.dispose();
  }
}

serve({ create: (script, names) => new IsolateSandbox(script, names) });

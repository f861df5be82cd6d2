// One workspace in one worker thread: its generated script runs in a vm2 NodeVM, as in the
// model service. Messages in: {id, fn, params}; out: {id, answer} with answer the JSON text of
// {result, logs, duration} or {id, error}.
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { performance } = require('node:perf_hooks');
const { NodeVM } = require('vm2');

let logs = []; // the logs of the run going on (runs that await may mix theirs: good enough here)
const logger = (level) => (...args) => {
  const message = args.map((arg) => (typeof arg === 'string' ? arg : JSON.stringify(arg))).join(' ');
  logs.push({ level, message, time: Date.now() });
};
const vm = new NodeVM({
  console: 'off',
  sandbox: {
    cache: {},
    console: { log: logger('info'), info: logger('info'), warn: logger('warn'), error: logger('error'), debug: logger('debug') },
  },
  require: { builtin: [] },
  wrapper: 'commonjs',
});
const functions = vm.run(`${workerData.script}\nmodule.exports = {${workerData.names.join(', ')}};`, 'workspace.js');

parentPort.on('message', async ({ id, fn, params }) => {
  logs = [];
  const mine = logs;
  const started = performance.now();
  try {
    const result = await functions[fn](params);
    const duration = performance.now() - started;
    parentPort.postMessage({ id, answer: JSON.stringify({ result: result === undefined ? null : result, logs: mine, duration }) });
  } catch (error) {
    parentPort.postMessage({ id, error: String(error && error.message ? error.message : error) });
  }
});

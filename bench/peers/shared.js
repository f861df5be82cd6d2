// What both Node peers share: settings, the HTTP routes, the generated workspace script
// and an LRU of warm sandboxes. Each peer brings an engine: create(script, names) -> sandbox
// with run(fn, params, timeout) -> Promise<JSON string of {result, logs, duration}>, close(),
// and `dead` once it cannot run any more (it is then replaced on the next run).
'use strict';
const http = require('node:http');

const settings = {
  host: process.env.HOST || '127.0.0.1',
  port: Number(process.env.PORT || 4000),
  maxLru: Number(process.env.FUNCTIONS_WORKERS_MAX_LRU || 500),
  timeout: Number(process.env.FUNCTIONS_RUN_TIMEOUT || 20000),
  maxOldMb: Number(process.env.NODE_WORKER_MAX_OLD_GENERATION_SIZE_MB || 100),
};

const WORKSPACE = /^\/v2\/functions\/([A-Za-z_][A-Za-z0-9_-]{0,63})(?:\/run\/([A-Za-z_$][\w$]*))?$/;
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
const JAVASCRIPT = new Set([undefined, 'javascript', 'js', 'nodejs']);

class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// One script per workspace, as the model service generates it: every JavaScript function
// becomes `async function NAME({p1, p2 = default} = {}) {body}`, all sharing one `cache`.
function generate(functions) {
  const names = [];
  let script = '';
  for (const [name, fn] of Object.entries(functions)) {
    if (!JAVASCRIPT.has(fn.language)) continue;
    if (!IDENTIFIER.test(name)) throw new HttpError(400, 'InvalidRequest', `bad function name ${name}`);
    const params = Object.entries(fn.parameters || {}).map(([param, spec]) => {
      if (!IDENTIFIER.test(param)) throw new HttpError(400, 'InvalidRequest', `bad parameter name ${param}`);
      return spec && spec.default !== undefined ? `${param} = ${JSON.stringify(spec.default)}` : param;
    });
    script += `async function ${name}({${params.join(', ')}} = {}) {\n${fn.code}\n}\n`;
    names.push(name);
  }
  return { script, names };
}

// Map order is recency order. An evicted sandbox is closed once its runs in flight are done.
class Lru {
  constructor(size) {
    this.size = size;
    this.map = new Map();
  }
  get(key) {
    const entry = this.map.get(key);
    if (entry) {
      this.map.delete(key);
      this.map.set(key, entry);
    }
    return entry;
  }
  set(key, entry) {
    this.map.set(key, entry);
    while (this.map.size > this.size) this.drop(this.map.keys().next().value);
  }
  drop(key) {
    const entry = this.map.get(key);
    if (!entry) return;
    this.map.delete(key);
    entry.retired = true;
    if (entry.busy === 0) entry.sandbox.close();
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      try {
        resolve(text.trim() ? JSON.parse(text) : {});
      } catch {
        reject(new HttpError(400, 'InvalidRequest', 'the body is not valid JSON'));
      }
    });
    req.on('error', reject);
  });
}

function send(res, status, body) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function serve(engine) {
  const documents = new Map();
  const sandboxes = new Lru(settings.maxLru);

  async function run(workspace, fn, params) {
    const document = documents.get(workspace);
    if (!document || !document.names.includes(fn)) throw new HttpError(404, 'NotFound', `no function ${workspace}/${fn}`);
    let entry = sandboxes.get(workspace);
    if (!entry || entry.sandbox.dead) {
      entry = { sandbox: engine.create(document.script, document.names), busy: 0, retired: false };
      sandboxes.set(workspace, entry);
    }
    entry.busy += 1;
    try {
      return await entry.sandbox.run(fn, params || {}, settings.timeout);
    } catch (error) {
      if (error instanceof HttpError) throw error;
      throw new HttpError(500, 'FunctionError', String(error && error.message ? error.message : error));
    } finally {
      entry.busy -= 1;
      if (entry.retired && entry.busy === 0) entry.sandbox.close();
    }
  }

  async function handle(req, res) {
    if (req.url === '/sys/healthcheck') return send(res, 200, { status: 'ok' });
    const match = WORKSPACE.exec(req.url);
    if (!match || !['POST', 'PUT'].includes(req.method) || (match[2] && req.method !== 'POST')) {
      throw new HttpError(404, 'NotFound', `no route ${req.method} ${req.url}`);
    }
    const [, workspace, fn] = match;
    const body = await readBody(req);
    if (fn) return send(res, 200, await run(workspace, fn, body.parameters));
    if (!body.functions || typeof body.functions !== 'object') throw new HttpError(400, 'InvalidRequest', 'no functions');
    documents.set(workspace, generate(body.functions));
    sandboxes.drop(workspace); // a new version gets a fresh sandbox on its next run
    return send(res, 200, body);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error) => {
      const status = error instanceof HttpError ? error.status : 500;
      send(res, status, { error: error.code || 'InternalError', message: error.message, details: {} });
    });
  });
  server.keepAliveTimeout = 60000;
  server.listen(settings.port, settings.host, () => {
    console.log(`listening on http://${settings.host}:${settings.port} (LRU ${settings.maxLru})`);
  });
}

module.exports = { settings, serve, HttpError };

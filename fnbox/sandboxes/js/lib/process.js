// `process`: a small stand-in, never the host's: env (the workspace's secrets), nextTick, hrtime, platform, version.
(function (fnbox) {
  "use strict";
  const events = fnbox.lib("events");
  const process = new events.EventEmitter();
  const now = () => (fnbox.running() ? BigInt(fnbox.host("clock", [])) : BigInt(Date.now()) * 1000000n);
  function hrtime(previous) {
    const t = now();
    let s = Number(t / 1000000000n), ns = Number(t % 1000000000n);
    if (Array.isArray(previous)) {
      s -= previous[0];
      ns -= previous[1];
      if (ns < 0) {
        s -= 1;
        ns += 1e9;
      }
    }
    return [s, ns];
  }
  hrtime.bigint = now;
  Object.assign(process, {
    argv: ["node"],
    execArgv: [],
    platform: "linux",
    arch: "x64",
    version: "v20.0.0",
    versions: { node: "20.0.0", fnbox: "1" },
    release: { name: "node" },
    pid: 1,
    ppid: 0,
    title: "fnbox",
    exitCode: undefined,
    hrtime,
    nextTick(callback, ...args) {
      if (typeof callback !== "function") {
        const error = new TypeError('The "callback" argument must be of type function');
        error.code = "ERR_INVALID_ARG_TYPE";
        throw error;
      }
      Promise.resolve().then(() => callback(...args));
    },
    cwd: () => "/",
    uptime: () => Number(now()) / 1e9,
    memoryUsage: () => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }),
    emitWarning() {},
    exit(code) {
      throw new Error("process.exit(" + (code === undefined ? "" : code) + ") is not available in fnbox: return or throw instead");
    },
    abort() {
      throw new Error("process.abort() is not available in fnbox");
    },
  });
  Object.defineProperty(process, "env", { get: () => fnbox.env(), enumerable: true, configurable: false });
  return { process };
});

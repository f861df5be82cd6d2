// Node's `timers` and `timers/promises` modules, on the sandbox's own timers.
(function (fnbox) {
  "use strict";
  const web = () => fnbox.lib("web");
  function abortError(signal) {
    const error = new Error("The operation was aborted");
    error.name = "AbortError";
    error.code = "ABORT_ERR";
    error.cause = signal.reason;
    return error;
  }
  function delayed(ms, value, options) {
    return new Promise((resolve, reject) => {
      const signal = options && options.signal;
      if (signal && signal.aborted) {
        reject(abortError(signal));
        return;
      }
      const id = setTimeout(() => resolve(value), ms);
      if (signal) {
        signal.addEventListener("abort", () => {
          clearTimeout(id);
          reject(abortError(signal));
        });
      }
    });
  }
  const promises = {
    setTimeout: delayed,
    setImmediate: (value, options) => delayed(0, value, options),
    async *setInterval(ms, value) {
      for (;;) yield await delayed(ms, value);
    },
    scheduler: {
      wait: (ms, options) => delayed(ms, undefined, options),
      yield: () => delayed(0),
    },
  };
  return {
    setTimeout: (...args) => setTimeout(...args),
    clearTimeout: (id) => clearTimeout(id),
    setInterval: (...args) => setInterval(...args),
    clearInterval: (id) => clearInterval(id),
    setImmediate: (...args) => web().setImmediate(...args),
    clearImmediate: (id) => web().clearImmediate(id),
    promises,
  };
});

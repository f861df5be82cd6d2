// Node's `dns` module: lookup() and dns.promises.lookup() answered in Python under the
// egress policy (a name that resolves only to addresses the policy refuses is not found),
// as an asynchronous host call (see fetch.js and hostnet.py). The resolve*() family asks
// DNS servers for records fnbox does not query: each fails with a clear error.
(function (fnbox) {
  "use strict";
  const { lookup: lookupOne } = fnbox.lib("fetch");

  function failure(what) {
    const error = new Error(what + " is not available in fnbox: use dns.lookup()");
    error.code = "ENOTIMP";
    return error;
  }

  function check(hostname) {
    if (typeof hostname !== "string") {
      const error = new TypeError('The "hostname" argument must be of type string');
      error.code = "ERR_INVALID_ARG_TYPE";
      throw error;
    }
  }

  // One address, or all of them ({all: true}): fnbox answers the one a request would connect to.
  async function lookupPromise(hostname, options) {
    check(hostname);
    const opts = typeof options === "number" ? { family: options } : options || {};
    const { address, family } = await lookupOne(hostname);
    if (opts.family && +opts.family !== family && opts.family !== "IPv" + family) {
      const error = new Error("getaddrinfo ENOTFOUND " + hostname);
      error.code = "ENOTFOUND";
      error.hostname = hostname;
      throw error;
    }
    return opts.all ? [{ address, family }] : { address, family };
  }

  function lookup(hostname, options, callback) {
    if (typeof options === "function") [callback, options] = [options, undefined];
    if (typeof callback !== "function") {
      const error = new TypeError('The "callback" argument must be of type function');
      error.code = "ERR_INVALID_ARG_TYPE";
      throw error;
    }
    lookupPromise(hostname, options).then(
      (answer) => (Array.isArray(answer) ? callback(null, answer) : callback(null, answer.address, answer.family)),
      (error) => callback(error),
    );
  }

  const UNAVAILABLE = ["resolve", "resolve4", "resolve6", "resolveMx", "resolveTxt", "resolveCname", "resolveNs", "resolveSrv", "reverse"];
  const callbacks = {};
  const promises = { lookup: lookupPromise };
  for (const name of UNAVAILABLE) {
    callbacks[name] = (...args) => {
      const callback = args[args.length - 1];
      if (typeof callback !== "function") throw failure("dns." + name);
      Promise.resolve().then(() => callback(failure("dns." + name)));
    };
    promises[name] = () => Promise.reject(failure("dns.promises." + name));
  }
  class Resolver {
    constructor() {
      Object.assign(this, callbacks);
    }
  }
  promises.Resolver = Resolver;
  return { lookup, ...callbacks, promises, Resolver, ADDRCONFIG: 1024, V4MAPPED: 2048, ALL: 256, NOTFOUND: "ENOTFOUND" };
});

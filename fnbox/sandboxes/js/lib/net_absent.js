// `http`, `https` and `dns` until fnbox has outbound network: requirable, with the surface
// functions reach for, and every call that would use the network fails with a clear error.
(function (fnbox) {
  "use strict";
  const EventEmitter = fnbox.lib("events");
  function unavailable(what) {
    const error = new Error(what + ": outbound network is not available in this fnbox");
    error.code = "ERR_FNBOX_NO_NETWORK";
    return error;
  }
  const STATUS_CODES = {
    100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
    206: "Partial Content", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
    307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 410: "Gone", 413: "Payload Too Large",
    415: "Unsupported Media Type", 422: "Unprocessable Entity", 429: "Too Many Requests",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
  };
  const METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"];
  function http(name) {
    class Agent extends EventEmitter {
      constructor(options) {
        super();
        this.options = options || {};
      }
      destroy() {}
    }
    const refuse = (what) => () => {
      throw unavailable(name + "." + what);
    };
    return {
      Agent,
      globalAgent: new Agent(),
      STATUS_CODES,
      METHODS,
      request: refuse("request"),
      get: refuse("get"),
      createServer: () => {
        throw new Error(name + ".createServer is not available in fnbox: a function answers through its return value");
      },
    };
  }
  function dns() {
    const names = ["lookup", "resolve", "resolve4", "resolve6", "resolveMx", "resolveTxt", "resolveCname", "resolveNs", "resolveSrv", "reverse"];
    const callbacks = {};
    const promises = {};
    for (const name of names) {
      callbacks[name] = (...args) => {
        const callback = args[args.length - 1];
        if (typeof callback !== "function") throw unavailable("dns." + name);
        Promise.resolve().then(() => callback(unavailable("dns." + name)));
      };
      promises[name] = () => Promise.reject(unavailable("dns.promises." + name));
    }
    return { ...callbacks, promises, Resolver: class Resolver {} };
  }
  return { http, dns };
});

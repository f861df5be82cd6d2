// Node's `url` module and the URL and URLSearchParams globals: WHATWG URL parsing (with
// IDNA) is a host call; URLSearchParams and the legacy API are JavaScript.
(function (fnbox) {
  "use strict";
  const codec = fnbox.lib("codec");
  const PARTS = ["href", "protocol", "username", "password", "host", "hostname", "port", "pathname", "search", "hash", "origin"];
  const HREF = 0, SEARCH = 8;

  function invalid(input) {
    const error = new TypeError("Invalid URL");
    error.code = "ERR_INVALID_URL";
    error.input = input;
    return error;
  }

  // ---- URLSearchParams ----
  const FORM_SAFE = /[A-Za-z0-9*\-._]/;
  function formEncode(s) {
    const bytes = codec.utf8Encode(s);
    let out = "";
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      const c = String.fromCharCode(b);
      if (b === 32) out += "+";
      else if (b < 128 && FORM_SAFE.test(c)) out += c;
      else out += "%" + (b < 16 ? "0" : "") + b.toString(16).toUpperCase();
    }
    return out;
  }

  function formDecode(s) {
    const bytes = codec.utf8Encode(s.replace(/\+/g, " "));
    const out = new Uint8Array(bytes.length);
    let n = 0;
    const isHex = (c) => (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
    const hex = (c) => (c <= 57 ? c - 48 : (c | 32) - 87);
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] === 37 && i + 2 < bytes.length && isHex(bytes[i + 1]) && isHex(bytes[i + 2])) {
        out[n++] = (hex(bytes[i + 1]) << 4) | hex(bytes[i + 2]);
        i += 2;
      } else out[n++] = bytes[i];
    }
    return codec.utf8Decode(out, 0, n, false, false);
  }

  function parseForm(s) {
    const list = [];
    if (s.startsWith("?")) s = s.slice(1);
    for (const piece of s.split("&")) {
      if (piece === "") continue;
      const at = piece.indexOf("=");
      list.push(at >= 0 ? [formDecode(piece.slice(0, at)), formDecode(piece.slice(at + 1))] : [formDecode(piece), ""]);
    }
    return list;
  }

  const toUSV = (v) => {
    const s = "" + v;
    return s.toWellFormed ? s.toWellFormed() : s;
  };

  class URLSearchParams {
    #list = [];
    #url = null;
    constructor(init = undefined) {
      if (init === undefined || init === null) return;
      if (typeof init === "object" || typeof init === "function") {
        if (typeof init[Symbol.iterator] === "function") {
          for (const pair of init) {
            const items = [...pair];
            if (items.length !== 2) {
              const error = new TypeError("Each query pair must be an iterable [name, value] tuple");
              error.code = "ERR_INVALID_TUPLE";
              throw error;
            }
            this.#list.push([toUSV(items[0]), toUSV(items[1])]);
          }
        } else {
          for (const key of Reflect.ownKeys(init)) {
            if (typeof key !== "string") continue;
            const d = Object.getOwnPropertyDescriptor(init, key);
            if (d && d.enumerable) this.#list.push([toUSV(key), toUSV(init[key])]);
          }
        }
      } else {
        this.#list = parseForm(toUSV(init));
      }
    }
    static _attach(params, url, search) {
      params.#url = url;
      params.#list = parseForm(search);
    }
    static _reset(params, search) {
      params.#list = parseForm(search);
    }
    #update() {
      if (this.#url !== null) urlSetSearch(this.#url, this.toString());
    }
    get size() {
      return this.#list.length;
    }
    append(name, value) {
      this.#list.push([toUSV(name), toUSV(value)]);
      this.#update();
    }
    delete(name, value) {
      const n = toUSV(name);
      const v = value === undefined ? undefined : toUSV(value);
      this.#list = this.#list.filter(([k, val]) => !(k === n && (v === undefined || val === v)));
      this.#update();
    }
    get(name) {
      const n = toUSV(name);
      const found = this.#list.find(([k]) => k === n);
      return found ? found[1] : null;
    }
    getAll(name) {
      const n = toUSV(name);
      return this.#list.filter(([k]) => k === n).map(([, v]) => v);
    }
    has(name, value) {
      const n = toUSV(name);
      const v = value === undefined ? undefined : toUSV(value);
      return this.#list.some(([k, val]) => k === n && (v === undefined || val === v));
    }
    set(name, value) {
      const n = toUSV(name);
      const v = toUSV(value);
      const i = this.#list.findIndex(([k]) => k === n);
      if (i < 0) this.#list.push([n, v]);
      else {
        this.#list[i] = [n, v];
        this.#list = this.#list.filter(([k], j) => j <= i || k !== n);
      }
      this.#update();
    }
    sort() {
      const indexed = this.#list.map((pair, i) => [pair, i]);
      indexed.sort((a, b) => {
        const x = a[0][0], y = b[0][0];
        return x < y ? -1 : x > y ? 1 : a[1] - b[1];
      });
      this.#list = indexed.map(([pair]) => pair);
      this.#update();
    }
    forEach(callback, thisArg) {
      if (typeof callback !== "function") throw new TypeError('The "callback" argument must be of type function');
      for (let i = 0; i < this.#list.length; i++) callback.call(thisArg, this.#list[i][1], this.#list[i][0], this);
    }
    *entries() {
      for (let i = 0; i < this.#list.length; i++) yield [this.#list[i][0], this.#list[i][1]];
    }
    *keys() {
      for (let i = 0; i < this.#list.length; i++) yield this.#list[i][0];
    }
    *values() {
      for (let i = 0; i < this.#list.length; i++) yield this.#list[i][1];
    }
    [Symbol.iterator]() {
      return this.entries();
    }
    toString() {
      return this.#list.map(([k, v]) => formEncode(k) + "=" + formEncode(v)).join("&");
    }
    get [Symbol.toStringTag]() {
      return "URLSearchParams";
    }
  }

  // ---- URL ----
  let urlSetSearch;
  class URL {
    #parts;
    #params = null;
    constructor(input, base = undefined) {
      if (arguments.length === 0) {
        const error = new TypeError('The "url" argument must be specified');
        error.code = "ERR_MISSING_ARGS";
        throw error;
      }
      const href = toUSV(input);
      const parts = fnbox.host("urlParse", base === undefined ? [href] : [href, toUSV(base)]);
      if (parts === null) throw invalid(href);
      this.#parts = parts;
    }
    static canParse(input, base = undefined) {
      return fnbox.host("urlParse", base === undefined ? [toUSV(input)] : [toUSV(input), toUSV(base)]) !== null;
    }
    static parse(input, base = undefined) {
      try {
        return new URL(input, base);
      } catch (_) {
        return null;
      }
    }
    static _setSearch(url, search) {
      url.#parts = fnbox.host("urlSet", [url.#parts[HREF], "search", search]);
    }
    #set(part, value) {
      this.#parts = fnbox.host("urlSet", [this.#parts[HREF], part, toUSV(value)]);
      if (this.#params !== null && (part === "search" || part === "href")) URLSearchParams._reset(this.#params, this.#parts[SEARCH]);
    }
    get href() {
      return this.#parts[0];
    }
    set href(value) {
      this.#set("href", value);
    }
    get protocol() {
      return this.#parts[1];
    }
    set protocol(value) {
      this.#set("protocol", value);
    }
    get username() {
      return this.#parts[2];
    }
    set username(value) {
      this.#set("username", value);
    }
    get password() {
      return this.#parts[3];
    }
    set password(value) {
      this.#set("password", value);
    }
    get host() {
      return this.#parts[4];
    }
    set host(value) {
      this.#set("host", value);
    }
    get hostname() {
      return this.#parts[5];
    }
    set hostname(value) {
      this.#set("hostname", value);
    }
    get port() {
      return this.#parts[6];
    }
    set port(value) {
      this.#set("port", value);
    }
    get pathname() {
      return this.#parts[7];
    }
    set pathname(value) {
      this.#set("pathname", value);
    }
    get search() {
      return this.#parts[8];
    }
    set search(value) {
      this.#set("search", value);
    }
    get hash() {
      return this.#parts[9];
    }
    set hash(value) {
      this.#set("hash", value);
    }
    get origin() {
      return this.#parts[10];
    }
    get searchParams() {
      if (this.#params === null) {
        this.#params = new URLSearchParams();
        URLSearchParams._attach(this.#params, this, this.#parts[SEARCH]);
      }
      return this.#params;
    }
    toString() {
      return this.#parts[HREF];
    }
    toJSON() {
      return this.#parts[HREF];
    }
    get [Symbol.toStringTag]() {
      return "URL";
    }
  }
  urlSetSearch = (url, search) => URL._setSearch(url, search);
  for (const name of ["_setSearch"]) Object.defineProperty(URL, name, { enumerable: false });
  for (const name of ["_attach", "_reset"]) Object.defineProperty(URLSearchParams, name, { enumerable: false });
  for (const part of PARTS) {
    const d = Object.getOwnPropertyDescriptor(URL.prototype, part);
    d.enumerable = true;
    Object.defineProperty(URL.prototype, part, d);
  }

  // ---- the legacy API ----
  const querystring = () => fnbox.lib("querystring");
  function Url() {
    this.protocol = null;
    this.slashes = null;
    this.auth = null;
    this.host = null;
    this.port = null;
    this.hostname = null;
    this.hash = null;
    this.search = null;
    this.query = null;
    this.pathname = null;
    this.path = null;
    this.href = null;
  }
  const SLASHED = { http: true, https: true, ftp: true, gopher: true, file: true, ws: true, wss: true };
  const LEGACY = /^([a-zA-Z][a-zA-Z0-9+.-]*:)?(\/\/)?(?:([^@/?#]*)@)?([^/?#]*)?([^?#]*)(\?[^#]*)?(#.*)?$/;

  const HOSTLESS = { javascript: true, "javascript:": true };
  const AUTO_ESCAPE = /[{}|\\^`'"<> \r\n\t]/g;

  function parse(input, parseQueryString, slashesDenoteHost) {
    if (input instanceof Url) return input;
    if (typeof input !== "string") {
      const error = new TypeError('The "url" argument must be of type string. Received ' + fnbox.inspect(input));
      error.code = "ERR_INVALID_ARG_TYPE";
      throw error;
    }
    const u = new Url();
    let rest = input.trim();
    const queryStart = rest.search(/[?#]/);
    rest = queryStart < 0 ? rest.replace(/\\/g, "/") : rest.slice(0, queryStart).replace(/\\/g, "/") + rest.slice(queryStart);
    const proto = /^([a-zA-Z][a-zA-Z0-9+.-]*:)/.exec(rest);
    let scheme = null;
    if (proto) {
      u.protocol = proto[1].toLowerCase();
      scheme = u.protocol.slice(0, -1);
      rest = rest.slice(proto[1].length);
    }
    let slashes = false;
    if (slashesDenoteHost || proto || /^\/\/[^@/]+@[^@/]+/.test(rest)) {
      slashes = rest.startsWith("//");
      if (slashes && !(scheme !== null && HOSTLESS[scheme])) {
        rest = rest.slice(2);
        u.slashes = true;
      } else slashes = false;
    }
    if (!(scheme !== null && HOSTLESS[scheme]) && (slashes || (scheme !== null && !SLASHED[scheme]))) {
      const end = rest.search(/[/?#]/);
      let authority = end < 0 ? rest : rest.slice(0, end);
      rest = end < 0 ? "" : rest.slice(end);
      const at = authority.lastIndexOf("@");
      if (at >= 0) {
        u.auth = decodeURIComponent(authority.slice(0, at));
        authority = authority.slice(at + 1);
      }
      const port = /:(\d*)$/.exec(authority);
      if (port) {
        if (port[1] !== "") u.port = port[1];
        authority = authority.slice(0, port.index);
      }
      let hostname = authority.toLowerCase();
      const ipv6 = hostname.startsWith("[") && hostname.endsWith("]");
      if (ipv6) hostname = hostname.slice(1, -1);
      u.hostname = hostname;
      u.host = (ipv6 ? "[" + hostname + "]" : hostname) + (u.port ? ":" + u.port : "");
    }
    rest = rest.replace(AUTO_ESCAPE, (c) => encodeURIComponent(c) === c ? escape(c) : encodeURIComponent(c));
    const hashAt = rest.indexOf("#");
    if (hashAt >= 0) {
      u.hash = rest.slice(hashAt);
      rest = rest.slice(0, hashAt);
    }
    const queryAt = rest.indexOf("?");
    if (queryAt >= 0) {
      u.search = rest.slice(queryAt);
      u.query = rest.slice(queryAt + 1);
      rest = rest.slice(0, queryAt);
    } else if (parseQueryString) {
      u.query = {};
    }
    if (parseQueryString && typeof u.query === "string") u.query = querystring().parse(u.query);
    if (rest !== "") u.pathname = rest;
    else if (u.hostname !== null && scheme !== null && SLASHED[scheme]) u.pathname = "/";
    const search = u.search || "";
    u.path = u.pathname === null && !search ? null : (u.pathname || "") + search;
    u.href = format(u);
    return u;
  }

  function format(obj, options) {
    if (typeof obj === "string") obj = parse(obj);
    else if (obj instanceof URL) {
      let href = obj.href;
      if (options && options.fragment === false) href = href.replace(/#.*$/, "");
      if (options && options.search === false) href = href.replace(/\?[^#]*/, "");
      if (options && options.auth === false) href = href.replace(/\/\/[^@/]*@/, "//");
      return href;
    } else if (obj === null || typeof obj !== "object") {
      const error = new TypeError('The "urlObject" argument must be one of type object or string. Received ' + fnbox.inspect(obj));
      error.code = "ERR_INVALID_ARG_TYPE";
      throw error;
    }
    let protocol = obj.protocol || "";
    if (protocol && !protocol.endsWith(":")) protocol += ":";
    let auth = obj.auth ? encodeURIComponent(obj.auth).replace(/%3A/i, ":") + "@" : "";
    let host = "";
    if (obj.host) host = auth + obj.host;
    else if (obj.hostname) host = auth + (obj.hostname.includes(":") ? "[" + obj.hostname + "]" : obj.hostname) + (obj.port ? ":" + obj.port : "");
    let pathname = obj.pathname || "";
    let search = obj.search || "";
    if (!search && obj.query && typeof obj.query === "object" && Object.keys(obj.query).length) {
      search = "?" + querystring().stringify(obj.query);
    } else if (!search && typeof obj.query === "string" && obj.query) search = "?" + obj.query;
    if (search && search[0] !== "?") search = "?" + search;
    let hash = obj.hash || "";
    if (hash && hash[0] !== "#") hash = "#" + hash;
    const scheme = protocol.slice(0, -1);
    if (obj.slashes || (SLASHED[scheme] && (host || scheme === "file"))) {
      host = "//" + host;
      if (pathname && pathname[0] !== "/") pathname = "/" + pathname;
    }
    pathname = pathname.replace(/[?#]/g, encodeURIComponent);
    search = search.replace(/#/g, "%23");
    return protocol + host + pathname + search + hash;
  }

  function resolve(from, to) {
    const resolved = new URL(to, new URL(from, "resolve://"));
    if (resolved.protocol === "resolve:") {
      const { pathname, search, hash } = resolved;
      const relative = !from.startsWith("/") && !to.startsWith("/");
      return (relative ? pathname.slice(1) : pathname) + search + hash;
    }
    return resolved.toString();
  }

  function fileURLToPath(input) {
    const u = typeof input === "string" ? new URL(input) : input;
    if (u.protocol !== "file:") {
      const error = new TypeError("The URL must be of scheme file");
      error.code = "ERR_INVALID_URL_SCHEME";
      throw error;
    }
    return decodeURIComponent(u.pathname);
  }

  function pathToFileURL(path) {
    const u = new URL("file://");
    u.pathname = fnbox.lib("path").resolve(path).replace(/%/g, "%25").replace(/\?/g, "%3F").replace(/#/g, "%23");
    return u;
  }

  Url.prototype.format = function () {
    return format(this);
  };
  Url.prototype.resolve = function (to) {
    return resolve(this.href, to);
  };

  return {
    URL,
    URLSearchParams,
    Url,
    parse,
    format,
    resolve,
    resolveObject: (from, to) => parse(resolve(from, to)),
    fileURLToPath,
    pathToFileURL,
    domainToASCII: (domain) => fnbox.host("domain", ["" + domain, true]),
    domainToUnicode: (domain) => fnbox.host("domain", ["" + domain, false]),
    urlToHttpOptions(url) {
      return {
        protocol: url.protocol, hostname: url.hostname.replace(/^\[|\]$/g, ""), hash: url.hash, search: url.search,
        pathname: url.pathname, path: url.pathname + url.search, href: url.href,
        ...(url.port !== "" ? { port: Number(url.port) } : {}),
        ...(url.username || url.password ? { auth: decodeURIComponent(url.username) + ":" + decodeURIComponent(url.password) } : {}),
      };
    },
  };
});

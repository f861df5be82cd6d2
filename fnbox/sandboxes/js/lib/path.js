// Node's `path` module, posix flavour (a sandbox has no Windows paths): path.win32 is absent.
(function (fnbox) {
  "use strict";
  function check(value, name) {
    if (typeof value !== "string") {
      const error = new TypeError('The "' + name + '" argument must be of type string. Received ' + fnbox.inspect(value));
      error.code = "ERR_INVALID_ARG_TYPE";
      throw error;
    }
  }

  function normalizeArray(path, allowAboveRoot) {
    const out = [];
    for (const segment of path.split("/")) {
      if (segment === "" || segment === ".") continue;
      if (segment === "..") {
        if (out.length && out[out.length - 1] !== "..") out.pop();
        else if (allowAboveRoot) out.push("..");
      } else out.push(segment);
    }
    return out.join("/");
  }

  const posix = {
    sep: "/",
    delimiter: ":",
    normalize(path) {
      check(path, "path");
      if (path === "") return ".";
      const absolute = path[0] === "/";
      const trailing = path[path.length - 1] === "/";
      let result = normalizeArray(path, !absolute);
      if (result === "" && !absolute) result = ".";
      if (result !== "" && trailing) result += "/";
      return (absolute ? "/" : "") + result;
    },
    join(...parts) {
      for (const p of parts) check(p, "path");
      const joined = parts.filter((p) => p !== "").join("/");
      return joined === "" ? "." : posix.normalize(joined);
    },
    resolve(...parts) {
      let resolved = "";
      let absolute = false;
      for (let i = parts.length - 1; i >= -1 && !absolute; i--) {
        const p = i >= 0 ? parts[i] : "/";
        check(p, "paths[" + i + "]");
        if (p === "") continue;
        resolved = p + "/" + resolved;
        absolute = p[0] === "/";
      }
      resolved = normalizeArray(resolved, !absolute);
      return (absolute ? "/" : "") + resolved || ".";
    },
    isAbsolute(path) {
      check(path, "path");
      return path.length > 0 && path[0] === "/";
    },
    relative(from, to) {
      check(from, "from");
      check(to, "to");
      const a = posix.resolve(from).split("/").filter(Boolean);
      const b = posix.resolve(to).split("/").filter(Boolean);
      let i = 0;
      while (i < a.length && i < b.length && a[i] === b[i]) i++;
      return [...a.slice(i).map(() => ".."), ...b.slice(i)].join("/");
    },
    dirname(path) {
      check(path, "path");
      if (path === "") return ".";
      const stripped = path.replace(/\/+$/, "");
      if (stripped === "") return "/";
      const at = stripped.lastIndexOf("/");
      if (at < 0) return ".";
      const dir = stripped.slice(0, at).replace(/\/+$/, "");
      return dir === "" ? "/" : dir;
    },
    basename(path, suffix) {
      check(path, "path");
      if (suffix !== undefined) check(suffix, "ext");
      const stripped = path.replace(/\/+$/, "");
      let base = stripped.slice(stripped.lastIndexOf("/") + 1);
      if (suffix !== undefined && base !== suffix && base.endsWith(suffix)) base = base.slice(0, base.length - suffix.length);
      return base;
    },
    extname(path) {
      check(path, "path");
      const base = posix.basename(path);
      const at = base.lastIndexOf(".");
      if (at <= 0 || (at === 1 && base === "..")) return "";
      return base.slice(at);
    },
    parse(path) {
      check(path, "path");
      const root = path[0] === "/" ? "/" : "";
      const base = posix.basename(path);
      const ext = posix.extname(path);
      let dir = posix.dirname(path);
      if (dir === "." && !path.includes("/")) dir = "";
      return { root, dir, base, ext, name: ext ? base.slice(0, base.length - ext.length) : base };
    },
    format(obj) {
      if (obj === null || typeof obj !== "object") {
        const error = new TypeError('The "pathObject" argument must be of type object. Received ' + fnbox.inspect(obj));
        error.code = "ERR_INVALID_ARG_TYPE";
        throw error;
      }
      const dir = obj.dir || obj.root || "";
      const base = obj.base || (obj.name || "") + (obj.ext ? (obj.ext[0] === "." ? "" : ".") + obj.ext : "");
      return dir === "" ? base : dir === obj.root ? dir + base : dir + "/" + base;
    },
    toNamespacedPath: (path) => path,
    matchesGlob() {
      throw new Error("path.matchesGlob is not available in fnbox");
    },
  };
  posix.posix = posix;
  return posix;
});

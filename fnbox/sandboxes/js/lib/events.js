// Node's `events` module: EventEmitter, once, on.
(function (fnbox) {
  "use strict";
  const kEvents = Symbol("kEvents");
  let defaultMaxListeners = 10;

  function checkListener(listener) {
    if (typeof listener !== "function") {
      const error = new TypeError('The "listener" argument must be of type function. Received ' + fnbox.inspect(listener));
      error.code = "ERR_INVALID_ARG_TYPE";
      throw error;
    }
  }

  function EventEmitter(options) {
    EventEmitter.init.call(this, options);
  }
  EventEmitter.init = function () {
    if (this._events === undefined || this._events === Object.getPrototypeOf(this)._events) {
      this._events = Object.create(null);
      this._eventsCount = 0;
    }
    this._maxListeners = this._maxListeners || undefined;
  };
  Object.defineProperty(EventEmitter, "defaultMaxListeners", {
    get: () => defaultMaxListeners,
    set: (n) => {
      defaultMaxListeners = n;
    },
    enumerable: true,
  });
  EventEmitter.prototype._events = undefined;
  EventEmitter.prototype._eventsCount = 0;
  EventEmitter.prototype._maxListeners = undefined;
  const proto = EventEmitter.prototype;

  function events(target) {
    if (target._events === undefined) {
      target._events = Object.create(null);
      target._eventsCount = 0;
    }
    return target._events;
  }

  function add(target, type, listener, prepend) {
    checkListener(listener);
    const map = events(target);
    if (map.newListener !== undefined) target.emit("newListener", type, listener.listener ? listener.listener : listener);
    const existing = map[type];
    if (existing === undefined) {
      map[type] = listener;
      target._eventsCount++;
    } else if (typeof existing === "function") {
      map[type] = prepend ? [listener, existing] : [existing, listener];
    } else if (prepend) existing.unshift(listener);
    else existing.push(listener);
    return target;
  }

  proto.setMaxListeners = function (n) {
    this._maxListeners = n;
    return this;
  };
  proto.getMaxListeners = function () {
    return this._maxListeners === undefined ? defaultMaxListeners : this._maxListeners;
  };
  proto.emit = function (type, ...args) {
    const map = events(this);
    const handler = map[type];
    if (type === "error" && handler === undefined) {
      const er = args[0];
      if (er instanceof Error) throw er;
      const error = new Error("Unhandled error." + (er === undefined ? "" : " (" + fnbox.inspect(er) + ")"));
      error.code = "ERR_UNHANDLED_ERROR";
      error.context = er;
      throw error;
    }
    if (handler === undefined) return false;
    if (typeof handler === "function") {
      Reflect.apply(handler, this, args);
    } else {
      const listeners = handler.slice();
      for (let i = 0; i < listeners.length; i++) Reflect.apply(listeners[i], this, args);
    }
    return true;
  };
  proto.addListener = function (type, listener) {
    return add(this, type, listener, false);
  };
  proto.on = proto.addListener;
  proto.prependListener = function (type, listener) {
    return add(this, type, listener, true);
  };
  function onceWrapper(target, type, listener) {
    const state = { fired: false, target, type, listener };
    const wrapped = function (...args) {
      if (state.fired) return undefined;
      state.fired = true;
      target.removeListener(type, wrapped);
      return Reflect.apply(listener, target, args);
    };
    wrapped.listener = listener;
    return wrapped;
  }
  proto.once = function (type, listener) {
    checkListener(listener);
    return this.on(type, onceWrapper(this, type, listener));
  };
  proto.prependOnceListener = function (type, listener) {
    checkListener(listener);
    return this.prependListener(type, onceWrapper(this, type, listener));
  };
  proto.removeListener = function (type, listener) {
    checkListener(listener);
    const map = events(this);
    const list = map[type];
    if (list === undefined) return this;
    if (list === listener || list.listener === listener) {
      delete map[type];
      this._eventsCount--;
      if (map.removeListener) this.emit("removeListener", type, list.listener || listener);
      return this;
    }
    if (typeof list !== "function") {
      for (let i = list.length - 1; i >= 0; i--) {
        if (list[i] === listener || list[i].listener === listener) {
          list.splice(i, 1);
          if (list.length === 1) map[type] = list[0];
          if (map.removeListener) this.emit("removeListener", type, listener);
          break;
        }
      }
    }
    return this;
  };
  proto.off = proto.removeListener;
  proto.removeAllListeners = function (type) {
    const map = events(this);
    if (type === undefined) {
      this._events = Object.create(null);
      this._eventsCount = 0;
    } else if (map[type] !== undefined) {
      delete map[type];
      this._eventsCount--;
    }
    return this;
  };
  proto.listeners = function (type) {
    const list = events(this)[type];
    if (list === undefined) return [];
    return typeof list === "function" ? [list.listener || list] : list.map((l) => l.listener || l);
  };
  proto.rawListeners = function (type) {
    const list = events(this)[type];
    if (list === undefined) return [];
    return typeof list === "function" ? [list] : list.slice();
  };
  proto.listenerCount = function (type) {
    const list = events(this)[type];
    return list === undefined ? 0 : typeof list === "function" ? 1 : list.length;
  };
  proto.eventNames = function () {
    return Reflect.ownKeys(events(this));
  };

  function once(emitter, name, options) {
    return new Promise((resolve, reject) => {
      const signal = options && options.signal;
      if (signal && signal.aborted) {
        reject(abortError(signal));
        return;
      }
      if (typeof emitter.addEventListener === "function" && typeof emitter.on !== "function") {
        emitter.addEventListener(name, (event) => resolve([event]), { once: true });
        return;
      }
      const onError = (error) => {
        emitter.removeListener(name, onEvent);
        reject(error);
      };
      const onEvent = (...args) => {
        if (name !== "error") emitter.removeListener("error", onError);
        resolve(args);
      };
      emitter.once(name, onEvent);
      if (name !== "error") emitter.once("error", onError);
      if (signal) {
        signal.addEventListener("abort", () => {
          emitter.removeListener(name, onEvent);
          emitter.removeListener("error", onError);
          reject(abortError(signal));
        });
      }
    });
  }

  function abortError(signal) {
    const error = new Error("The operation was aborted");
    error.name = "AbortError";
    error.code = "ABORT_ERR";
    error.cause = signal.reason;
    return error;
  }

  function on(emitter, name) {
    const queue = [];
    const waiting = [];
    let error = null;
    emitter.on(name, (...args) => {
      if (waiting.length) waiting.shift().resolve({ value: args, done: false });
      else queue.push(args);
    });
    emitter.on("error", (e) => {
      error = e;
      while (waiting.length) waiting.shift().reject(e);
    });
    return {
      next() {
        if (queue.length) return Promise.resolve({ value: queue.shift(), done: false });
        if (error) return Promise.reject(error);
        return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
      },
      return() {
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  EventEmitter.EventEmitter = EventEmitter;
  EventEmitter.once = once;
  EventEmitter.on = on;
  EventEmitter.errorMonitor = Symbol("events.errorMonitor");
  EventEmitter.captureRejections = false;
  EventEmitter.listenerCount = (emitter, type) => emitter.listenerCount(type);
  EventEmitter.getEventListeners = (emitter, type) => emitter.listeners(type);
  EventEmitter.setMaxListeners = () => {};
  Object.defineProperty(EventEmitter, "EventTarget", { get: () => fnbox.lib("web").EventTarget });
  Object.defineProperty(EventEmitter, "Event", { get: () => fnbox.lib("web").Event });
  void kEvents;
  return EventEmitter;
});

// Node's `assert` module: ok, equal, deepStrictEqual, throws, rejects and the rest.
(function (fnbox) {
  "use strict";
  const util = fnbox.lib("util");

  class AssertionError extends Error {
    constructor(options) {
      super(options.message);
      this.name = "AssertionError";
      this.code = "ERR_ASSERTION";
      this.actual = options.actual;
      this.expected = options.expected;
      this.operator = options.operator;
      this.generatedMessage = !options.userMessage;
    }
  }

  function fail(actual, expected, message, operator, defaultMessage) {
    if (message instanceof Error) throw message;
    throw new AssertionError({
      message: message !== undefined ? "" + message : defaultMessage,
      userMessage: message !== undefined,
      actual,
      expected,
      operator,
    });
  }

  const show = (v) => util.inspect(v);

  function ok(value, message) {
    if (!value) {
      fail(value, true, message, "==", arguments.length === 0 ? "No value argument passed to `assert.ok()`" : "The expression evaluated to a falsy value:\n\n  assert.ok(" + show(value) + ")\n");
    }
  }

  function matchesError(error, expected) {
    if (expected === undefined) return true;
    if (typeof expected === "function") {
      if (expected.prototype !== undefined && error instanceof expected) return true;
      if (Error.isPrototypeOf(expected) || expected === Error) return false;
      return expected.call({}, error) === true;
    }
    if (expected instanceof RegExp) return expected.test(String(error));
    if (typeof expected === "object" && expected !== null) {
      for (const k of Object.keys(expected)) {
        const want = expected[k];
        const got = error == null ? undefined : error[k];
        if (want instanceof RegExp && typeof got === "string") {
          if (!want.test(got)) return false;
        } else if (!util.isDeepStrictEqual(got, want)) return false;
      }
      return true;
    }
    return true;
  }

  function throws(fn, expected, message) {
    if (typeof expected === "string") {
      message = expected;
      expected = undefined;
    }
    try {
      fn();
    } catch (error) {
      if (!matchesError(error, expected)) {
        if (typeof expected === "function" && !(expected.prototype !== undefined && Error.isPrototypeOf(expected) === false)) throw error;
        fail(error, expected, message, "throws", "The error is expected to match " + show(expected) + ", got " + show(error));
      }
      return;
    }
    fail(undefined, expected, message, "throws", "Missing expected exception" + (message ? ": " + message : "."));
  }

  async function rejects(promiseOrFn, expected, message) {
    if (typeof expected === "string") {
      message = expected;
      expected = undefined;
    }
    const promise = typeof promiseOrFn === "function" ? promiseOrFn() : promiseOrFn;
    try {
      await promise;
    } catch (error) {
      if (!matchesError(error, expected)) fail(error, expected, message, "rejects", "The rejection is expected to match " + show(expected));
      return;
    }
    fail(undefined, expected, message, "rejects", "Missing expected rejection" + (message ? ": " + message : "."));
  }

  const assert = function assert(value, message) {
    if (!value) fail(value, true, message, "==", arguments.length === 0 ? "No value argument passed to `assert.ok()`" : "The expression evaluated to a falsy value:\n\n  assert(" + show(value) + ")\n");
  };
  Object.assign(assert, {
    AssertionError,
    ok,
    fail(message = "Failed") {
      if (message instanceof Error) throw message;
      throw new AssertionError({ message, userMessage: true, operator: "fail" });
    },
    equal(actual, expected, message) {
      if (!(actual == expected || (actual !== actual && expected !== expected))) fail(actual, expected, message, "==", show(actual) + " == " + show(expected));
    },
    notEqual(actual, expected, message) {
      if (actual == expected) fail(actual, expected, message, "!=", show(actual) + " != " + show(expected));
    },
    strictEqual(actual, expected, message) {
      if (!Object.is(actual, expected)) fail(actual, expected, message, "strictEqual", "Expected values to be strictly equal:\n\n" + show(actual) + " !== " + show(expected) + "\n");
    },
    notStrictEqual(actual, expected, message) {
      if (Object.is(actual, expected)) fail(actual, expected, message, "notStrictEqual", 'Expected "actual" to be strictly unequal to: ' + show(expected));
    },
    deepEqual(actual, expected, message) {
      if (!util._deepEqual(actual, expected, false, new Map())) fail(actual, expected, message, "deepEqual", "Expected values to be loosely deep-equal:\n\n" + show(actual) + "\n\nshould loosely deep-equal\n\n" + show(expected));
    },
    notDeepEqual(actual, expected, message) {
      if (util._deepEqual(actual, expected, false, new Map())) fail(actual, expected, message, "notDeepEqual", '"actual" deepEqual "expected"');
    },
    deepStrictEqual(actual, expected, message) {
      if (!util.isDeepStrictEqual(actual, expected)) fail(actual, expected, message, "deepStrictEqual", "Expected values to be strictly deep-equal:\n" + show(actual) + "\n\nshould equal\n\n" + show(expected));
    },
    notDeepStrictEqual(actual, expected, message) {
      if (util.isDeepStrictEqual(actual, expected)) fail(actual, expected, message, "notDeepStrictEqual", 'Expected "actual" not to be strictly deep-equal to: ' + show(expected));
    },
    throws,
    doesNotThrow(fn, expected, message) {
      try {
        fn();
      } catch (error) {
        fail(error, expected, typeof expected === "string" ? expected : message, "doesNotThrow", "Got unwanted exception.\nActual message: \"" + (error && error.message) + '"');
      }
    },
    rejects,
    async doesNotReject(promiseOrFn, expected, message) {
      try {
        await (typeof promiseOrFn === "function" ? promiseOrFn() : promiseOrFn);
      } catch (error) {
        fail(error, expected, message, "doesNotReject", "Got unwanted rejection.\nActual message: \"" + (error && error.message) + '"');
      }
    },
    match(string, regexp, message) {
      if (!regexp.test(string)) fail(string, regexp, message, "match", "The input did not match the regular expression " + regexp + ". Input:\n\n" + show(string) + "\n");
    },
    doesNotMatch(string, regexp, message) {
      if (regexp.test(string)) fail(string, regexp, message, "doesNotMatch", "The input was expected to not match the regular expression " + regexp + ". Input:\n\n" + show(string) + "\n");
    },
    ifError(value) {
      if (value !== null && value !== undefined) {
        if (value instanceof Error) throw value;
        fail(value, null, undefined, "ifError", "ifError got unwanted exception: " + show(value));
      }
    },
  });
  const strict = function strict(value, message) {
    return Reflect.apply(assert, this, arguments);
  };
  Object.assign(strict, assert, {
    equal: assert.strictEqual,
    notEqual: assert.notStrictEqual,
    deepEqual: assert.deepStrictEqual,
    notDeepEqual: assert.notDeepStrictEqual,
  });
  assert.strict = strict;
  strict.strict = strict;
  return assert;
});

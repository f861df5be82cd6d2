"""JavaScript payloads from the public record, run against a real service (see conftest.py).

Each names its source. Escapes must show the code reaches nothing outside its own context
(no host `process`, `require` or constructor: those of the sandbox are its own), not merely that nothing crashed. Every payload
here is refused inside the sandbox, so each must be cheap: the worker, and so other tenants'
caches, survive (the supervisor's deadline and RSS watch stay the second line).
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest

from tests.hostile.conftest import TIMEOUT_MS, Service

pytestmark = pytest.mark.slow  # a real server, worker processes or a subprocess

JS = "javascript"

#: `spy(F)` runs code through a Function constructor reached by an escape and reports what
#: it saw: this context's own Function, and no host globals.
SPY = """
function spy(F) {
  if (typeof F !== "function") return "no function: " + typeof F;
  // `process` holds only the workspace's `env`: a host process would bring `binding` and `mainModule`.
  const host = "(typeof process === 'undefined' ? undefined : process.binding || process.mainModule)";
  const seen = F("return [typeof " + host + ", typeof require, typeof module, typeof global, typeof Buffer].join()")();
  return (F === Function ? "own Function: " : "another Function: ") + seen;
}
"""
# No host process (its `binding` or `mainModule`); `require` and `Buffer` are the sandbox's own
# (see tests/hostile/test_js_library_payloads.py); `module` and `global` do not exist.
NOTHING = "own Function: undefined,function,undefined,undefined,function"

_workspaces = itertools.count()


def js(service: Service, code: str, *, expect: tuple[str, ...], **options: Any) -> Any:
    """Attack with a JS payload that must be cheap (the healthy workspace's caches survive);
    returns the result of a normal answer, else the error body."""
    outcome = service.attack(JS, code, expect=expect, keeps_neighbours_warm=True, **options)
    return outcome.body.get("result") if outcome.code == "ok" else outcome.body


def own_workspace(service: Service, code: str) -> str:
    """A workspace with the payload `f` and a healthy `g`, for what a payload does to its own calls."""
    name = f"jsown{next(_workspaces)}"
    document = {"functions": {"f": {"code": code}, "g": {"code": "cache.n = (cache.n || 0) + 1; return cache.n;"}}}
    assert service.client.put(f"/v2/functions/{name}", json=document).status_code == 200
    return name


def call(service: Service, workspace: str, function: str) -> tuple[str, Any, float]:
    started = time.monotonic()
    answer = service.client.post(f"/v2/functions/{workspace}/run/{function}", json={"parameters": {}})
    elapsed = time.monotonic() - started
    body = answer.json()
    assert elapsed < TIMEOUT_MS / 1000 + 1, f"answered after {elapsed:.2f} s"
    return body.get("error", "ok"), body.get("result", body), elapsed


# ---- vm2 escape shapes: nothing outside the context is reachable ---------------------------


def test_cve_2023_29017_prepare_stack_trace_hands_out_nothing(service: Service) -> None:
    """vm2 GHSA-7jxr-cg7f-gpgv: Error.prepareStackTrace got host CallSites and a host array."""
    result = js(
        service,
        SPY
        + """
        const frames = [];
        Error.prepareStackTrace = (error, sites) => {
          for (const site of sites) frames.push([site.getFunctionName(), typeof site.getThis(), typeof site.getFunction()]);
          return "";
        };
        new Error().stack;  // before any await: the sandbox's own frames are below this one
        let seen = "hook never called";
        Error.prepareStackTrace = (error, sites) => { seen = spy(sites.constructor.constructor); return "hooked"; };
        let stack;
        try { await (async () => {}).constructor("return hostProcess")(); } catch (error) { stack = error.stack; }
        return { frames, seen, stack };
        """,
        expect=("ok",),
    )
    assert result["seen"] == NOTHING and result["stack"] == "hooked"
    assert result["frames"][0] == ["f", "object", "function"]  # its own function, sloppy mode
    assert len(result["frames"]) > 1
    assert all(frame[1:] == ["undefined", "undefined"] for frame in result["frames"][1:])  # ours: strict


def test_cve_2023_30547_thrown_proxy_with_hostile_get_prototype_of(service: Service) -> None:
    """vm2 GHSA-ch3r-j5x3-6q2m: handleException bypass, a thrown Proxy whose trap overflows the stack."""
    body = js(
        service,
        SPY
        + """
        const handler = { getPrototypeOf(target) { (function stack() { new Error().stack; stack(); })(); } };
        const thrown = new Proxy({}, handler);
        try { throw thrown; } catch ({ constructor: c }) { console.log(spy(c.constructor)); }
        throw thrown;  // and now through the sandbox's own error handling
        """,
        expect=("FunctionError",),
    )
    assert [entry["message"] for entry in body["logs"]] == [NOTHING]


def test_cve_2023_30547_error_named_by_a_symbol(service: Service) -> None:
    """vm2 GHSA-ch3r-j5x3-6q2m, the Symbol variant: an error whose name cannot become a string."""
    body = js(
        service, "const error = new Error('x'); error.name = Symbol('boom'); throw error;", expect=("FunctionError",)
    )
    assert isinstance(body["message"], str)


def test_cve_2023_32314_proxy_to_string_of_error_name(service: Service) -> None:
    """vm2 GHSA-whpj-8f3w-67p5: a Proxy as error.name.toString got a host arguments array."""
    result = js(
        service,
        SPY
        + """
        let found = "toString never called";
        const error = new Error();
        error.name = { toString: new Proxy(() => "", { apply(target, self, args) { found = spy(args.constructor.constructor); return ""; } }) };
        try { error.stack; } catch (caught) { found += " / caught: " + spy(caught.constructor.constructor); }
        String(error);
        return found;
        """,
        expect=("ok",),
    )
    assert result == NOTHING


def test_cve_2023_37466_promise_species_gets_no_host_error(service: Service) -> None:
    """vm2 GHSA-cchq-frgv-rjh5: a Promise species catching the host RangeError of a stack overflow."""
    result = js(
        service,
        SPY
        + """
        let found = "species never used";
        async function overflow() { (function stack() { new Error().stack; stack(); })(); }
        const p = overflow();
        p.constructor = { [Symbol.species]: class FakePromise {
          constructor(executor) { executor((x) => x, (error) => { found = spy(error.constructor.constructor); }); }
        } };
        p.then();
        await new Promise((resolve) => setTimeout(resolve, 1));
        return found;
        """,
        expect=("ok",),
    )
    assert result == NOTHING


def test_cve_2023_37466_shape_a_global_promise_species_fails_only_the_run(service: Service) -> None:
    """GHSA-cchq-frgv-rjh5 turned on the sandbox: a species getter that throws when the runtime awaits the function."""
    body = js(
        service,
        "Object.defineProperty(Promise, Symbol.species, { get() { throw new Error('species'); } }); return 1;",
        expect=("FunctionError",),
    )
    assert body["message"] == "Error: species"


def test_cve_2023_37903_no_custom_inspect_and_no_webassembly(service: Service) -> None:
    """vm2 GHSA-g644-9gfx-q4q4: Node's custom inspect symbol, reached through WebAssembly.compileStreaming."""
    result = js(
        service,
        SPY
        + """
        let called = "never";
        const obj = {
          [Symbol.for("nodejs.util.inspect.custom")]: (depth, options, inspect) => { called = spy(inspect.constructor); return "x"; },
          valueOf: undefined,
          constructor: undefined,
        };
        console.log(obj); console.log("%o %O %s", obj, obj, obj); console.dir(obj);
        let wasm;
        try { WebAssembly.compileStreaming(obj).catch(() => {}); wasm = "reachable"; } catch (error) { wasm = error.name; }
        return { called, wasm };
        """,
        expect=("ok",),
    )
    assert result == {"called": "never", "wasm": "ReferenceError"}


def test_cve_2026_22709_promise_callbacks_get_nothing_from_outside(service: Service) -> None:
    """vm2 GHSA-99p7-6v5w-7xg8 (CVE-2026-22709): an error named by a Symbol, its stack read in an
    async function, the rejection caught by a then/catch callback that vm2 failed to sanitise."""
    result = js(
        service,
        SPY
        + """
        const error = new Error();
        error.name = Symbol();
        const f = async () => error.stack;
        const caught = await f().then(() => "the stack was formatted", (e) => spy(e.constructor.constructor));
        const caught2 = await f().catch((e) => spy(e.constructor.constructor));
        return [caught, typeof caught2 === "string" && caught2.startsWith("own") ? caught2 : "formatted"];
        """,
        expect=("ok",),
    )
    assert result[0] in ("the stack was formatted", NOTHING) and result[1] in ("formatted", NOTHING)


def test_cve_2026_22709_shape_patched_then_never_sees_the_sandbox_callbacks(service: Service) -> None:
    """CVE-2026-22709 from the other side: a replaced Promise.prototype.then/catch only ever gets
    the function's own callbacks, never the sandbox's (timers, the run's own settlement)."""
    workspace = own_workspace(
        service,
        """
        const seen = [];
        const then = Promise.prototype.then;
        Promise.prototype.then = function (onFulfilled, onRejected) {
          seen.push(typeof onFulfilled === "function" ? onFulfilled.name || "anonymous" : typeof onFulfilled);
          return Reflect.apply(then, this, [onFulfilled, onRejected]);
        };
        Promise.prototype.catch = function (onRejected) { seen.push("catch"); return Reflect.apply(then, this, [undefined, onRejected]); };
        await new Promise((resolve) => setTimeout(resolve, 1));
        await Promise.resolve(1).then(function mine(x) { return x; });
        return seen;
        """,
    )
    assert call(service, workspace, "f")[:2] == ("ok", ["mine"])
    assert call(service, workspace, "g")[:2] == ("ok", 1)  # its own workspace still runs
    service.check_healthy(True)


# ---- hangs: TimeoutExceeded, stopped inside the sandbox -------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("while (true) {}", id="while-true"),
        pytest.param("return /(a+)+$/.test('a'.repeat(40) + 'b');", id="redos-catastrophic-backtracking"),
        pytest.param("Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);", id="atomics-wait"),
        pytest.param("return String(10n ** (10n ** 7n)).length;", id="bigint-ten-million-digits"),
        pytest.param("for (;;) { await null; }", id="await-loop"),
        pytest.param(
            "(function again() { Promise.resolve().then(again); })(); await new Promise(() => {});", id="microtask-loop"
        ),
        pytest.param("setInterval(() => {}, 0); await new Promise(() => {});", id="setInterval"),
        pytest.param(
            "(function again() { setTimeout(again, 0); })(); await new Promise(() => {});", id="recursive-setTimeout"
        ),
        pytest.param("setInterval(() => { while (true) {} }, 1); await new Promise(() => {});", id="spin-in-timer"),
    ],
)
def test_hangs_time_out_cheaply(service: Service, code: str) -> None:
    """vm2 #180 (`while(1){}`), OWASP's ReDoS example, vm2 #116 / #35 and Node #3020 (promise and
    timer loops escape vm timeouts), CWE-835: each answers TimeoutExceeded, the worker kept."""
    body = js(service, code, expect=("TimeoutExceeded",))
    assert body["duration"] >= TIMEOUT_MS


def test_bigint_beyond_v8_maximum_is_a_range_error(service: Service) -> None:
    """`2n ** 10000000000n`: V8 refuses it at once (RangeError: Maximum BigInt size exceeded)."""
    body = js(service, "return String(2n ** 10000000000n).length;", expect=("FunctionError",))
    assert "BigInt" in body["message"]


@pytest.mark.parametrize(
    ("code", "fresh"),  # whether the next call finds a fresh isolate
    [
        pytest.param("(async () => { for (;;) await null; })(); return 'left';", True, id="await-loop"),
        pytest.param(
            "(function again() { Promise.resolve().then(again); })(); return 'left';", True, id="microtask-loop"
        ),
        pytest.param(
            "(async () => { for (let i = 0; i < 3; i++) await null; while (true) {} })(); return 'left';",
            True,
            id="sync-loop-later",
        ),
        pytest.param(
            "const a = new Int32Array(new SharedArrayBuffer(4));\n"
            "(async () => { for (;;) { await Atomics.waitAsync(a, 0, 0, 1).value; for (let i = 0; i < 1e6; i++); } })();\n"
            "return 'left';",
            False,
            id="waitAsync-loop",
        ),
        pytest.param(
            "const registry = new FinalizationRegistry(() => { for (let i = 0; i < 20; i++) registry.register(new Array(1e5).fill(i), 0); });\n"
            "for (let i = 0; i < 20; i++) registry.register(new Array(1e5).fill(i), 0);\n"
            "return 'left';",
            False,
            id="finalization-loop",
        ),
    ],
)
def test_work_left_behind_after_the_return(service: Service, code: str, fresh: bool) -> None:
    """Loops left behind after the return (vm2 #116 and #35, Node #3020: `Promise.resolve().then(() =>
    { while (true); })` outlives the call): the call answers; next calls of another workspace and of
    the same one work. A spinning leftover wedges its isolate, and the next call moves to a fresh one
    (its cache lost); a leftover that waits (waitAsync, FinalizationRegistry) simply stops."""
    workspace = own_workspace(service, "cache.n = 10;\n" + code)
    assert call(service, workspace, "f")[:2] == ("ok", "left")
    service.check_healthy(True)
    assert call(service, workspace, "g")[:2] == ("ok", 1 if fresh else 11)
    service.check_healthy(True)


def test_work_left_behind_that_calls_the_runtime_again_and_again(service: Service) -> None:
    """Leftover work re-entering the runtime thousands of times, each with a big log stream,
    makes as many outcome notifications: none is taken for a later call's, and the native
    hand-off copies the mailbox for the run it expects only (the others are read in place),
    so the worker holds no pile of copies. The next calls of both workspaces answer."""
    code = (
        "if (params.again) { console.log('x'.repeat(30000)); return 1; }\n"
        "(async () => { for (let i = 0; i < 3; i++) await null;\n"
        "  for (let k = 0; k < 3000; k++) { try { $fnbox.run(1e9 + k, 0, '{\"again\":true}'); } catch (e) {} await null; }\n"
        "})();\n"
        "return 'left';"
    )
    workspace = own_workspace(service, code)
    assert call(service, workspace, "f")[:2] == ("ok", "left")
    service.check_healthy(True)
    assert call(service, workspace, "g")[:2] == ("ok", 1)  # in a fresh isolate, or once the leftover ended
    service.check_healthy(True)


def test_work_left_behind_calling_the_host_while_its_sandbox_closes(service: Service) -> None:
    """Leftover work that keeps calling into Python (host calls, log entries, evals of its own
    making) while its workspace is saved again and deleted: the isolate is freed while V8's
    thread still calls back, and still has evals queued. Freeing it must not crash the worker
    (a crash would cost the healthy workspace its warm caches)."""
    code = (
        "const crypto = require('crypto');\n"
        "(async () => { for (let i = 0; ; i++) {\n"
        "  crypto.createHash('sha256').update('x' + i).digest('hex');\n"
        "  console.log('tick', i); await null;\n"
        "} })();\n"
        "return 'left';"
    )
    for round in range(5):
        workspace = own_workspace(service, code)
        assert call(service, workspace, "f")[:2] == ("ok", "left")
        document = {"functions": {"f": {"code": f"return {round};"}}}
        assert service.client.put(f"/v2/functions/{workspace}", json=document).status_code == 200
        assert call(service, workspace, "f")[:2] == ("ok", round)
        assert call(service, workspace, "f")[:2] == ("ok", round)
        assert service.client.delete(f"/v2/functions/{workspace}").status_code in (200, 204)
        service.check_healthy(True)


# ---- memory ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("let a = []; for (;;) a.push(new Array(1e6).fill(0));", id="arrays"),
        pytest.param("const m = new Map(); for (let i = 0; ; i++) m.set(i, new Array(1000).fill(i));", id="map"),
        pytest.param("const s = new Set(); for (let i = 0; ; i++) s.add(new Array(1000).fill(i));", id="set"),
        pytest.param(
            "function* g() { for (let i = 0; ; i++) yield new Array(1000).fill(i); } return [...g()].length;",
            id="generator",
        ),
        pytest.param("let o = {}; for (let i = 0; ; i++) o = { o, pad: 'x'.repeat(100) + i };", id="object-chain"),
    ],
)
def test_heap_bombs_hit_the_heap_limit_cheaply(service: Service, code: str) -> None:
    """Heap exhaustion (CWE-400 / CWE-789): V8's heap limit stops it, the worker survives. Each step
    allocates enough to reach the limit well within the timeout, even on a busy machine."""
    js(service, code, expect=("MemoryLimitExceeded",))


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("return 'x'.repeat(2 ** 29).length;", id="string-repeat"),
        pytest.param("let s = 'x'; for (;;) s += s;", id="string-doubling"),
        pytest.param("return new Array(2 ** 32).length;", id="invalid-array-length"),
        pytest.param("return 'x'.padEnd(2 ** 30).length;", id="padEnd"),
    ],
)
def test_size_bombs_v8_refuses_with_a_range_error(service: Service, code: str) -> None:
    """Allocation sizes V8 refuses up front (string too long, invalid array length)."""
    body = js(service, code, expect=("FunctionError",))
    assert body["message"].startswith("RangeError")


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(
            "const b = new ArrayBuffer(2 ** 30); new Uint8Array(b).fill(1); return b.byteLength;", id="1GiB-ArrayBuffer"
        ),
        pytest.param("const a = []; for (;;) a.push(new Float64Array(1e6).fill(1));", id="filled-typed-arrays"),
        pytest.param("const a = []; for (;;) a.push(new Float64Array(1e6));", id="untouched-typed-arrays"),
        pytest.param(
            "const a = []; for (;;) a.push(new ArrayBuffer(1, { maxByteLength: 2 ** 32 }));",
            id="resizable-reservations",
        ),
        pytest.param(
            "const a = [new Uint8Array(2 ** 25)]; for (;;) a.push(a[0].slice(), a[0].toReversed());", id="copies"
        ),
        pytest.param(
            "const b = new SharedArrayBuffer(2 ** 30); return new Int32Array(b).fill(1).length;", id="SharedArrayBuffer"
        ),
    ],
)
def test_array_buffer_bombs_count_against_the_memory_limit(service: Service, code: str) -> None:
    """ArrayBuffers live outside V8's heap limit and in one pool per worker that V8 shares
    among isolates: counted by the sandbox, refused at the memory limit, before the RSS watch acts."""
    body = js(service, code, expect=("MemoryLimitExceeded",))
    assert "ArrayBuffers would pass its memory limit" in body["message"]


def test_array_buffers_kept_by_one_tenant_leave_the_pool_to_others(service: Service) -> None:
    """Untouched ArrayBuffers cost no RSS but fill V8's per-process pool (~16 GB): one tenant keeping
    them in its cache must not make another tenant's allocations fail."""
    workspace = own_workspace(
        service,
        "cache.keep = []; try { for (;;) cache.keep.push(new Float64Array(1e6)); } catch (e) { return cache.keep.length; }",
    )
    code, kept, _ = call(service, workspace, "f")
    assert code == "ok" and kept * 8 <= 64
    js(service, "return new Uint8Array(2 ** 24).length + new ArrayBuffer(2 ** 20).byteLength;", expect=("ok",))


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("return new Array(2 ** 31).fill(0).length;", id="fill"),
        pytest.param("const a = []; a[2 ** 31] = 1; a.forEach(() => {});", id="forEach"),
        pytest.param("return new Array(2 ** 31).lastIndexOf(1);", id="lastIndexOf"),
        pytest.param("return String(new Array(2 ** 31)).length;", id="join"),
        pytest.param("return Array.from({ length: 2 ** 31 }).length;", id="Array.from"),
        pytest.param("return Array.prototype.map.call({ length: 2 ** 32 - 1 }, (x) => x).length;", id="array-like"),
    ],
)
def test_walks_over_huge_sparse_arrays_are_refused(service: Service, code: str) -> None:
    """`new Array(2**31).fill(0)` and its kin: V8 walks a sparse array in native loops that
    TerminateExecution cannot stop (for minutes, and `fill` until V8 aborts the process). An array
    longer than the memory limit could hold is refused by the methods that would walk it."""
    body = js(service, code, expect=("MemoryLimitExceeded",))
    assert "more than the function's memory limit of 64 MB can hold" in body["message"]


# ---- recursion ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("function f() { f(); } f();", id="sync"),
        pytest.param("async function f() { await f(); } await f();", id="async"),
    ],
)
def test_deep_recursion_is_a_range_error(service: Service, code: str) -> None:
    """Unbounded recursion (CWE-674): Maximum call stack size exceeded."""
    assert "Maximum call stack size exceeded" in js(service, code, expect=("FunctionError",))["message"]


def test_deep_recursion_across_awaits_hits_the_heap_limit(service: Service) -> None:
    """CWE-674 where each level awaits first: no stack grows, a chain of promises does."""
    code = "async function f(n) { await null; const pad = new Array(100).fill(n); return (await f(n + 1)) + pad.length; } await f(0);"
    js(service, code, expect=("MemoryLimitExceeded",))


# ---- hostile results -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("return { get x() { while (true) {} } };", id="getter-loop"),
        pytest.param("return { toJSON() { while (true) {} } };", id="toJSON-loop"),
    ],
)
def test_a_result_that_spins_while_serialised(service: Service, code: str) -> None:
    """Hostile getters/toJSON on results (read inside the timed call, never from Python)."""
    js(service, code, expect=("TimeoutExceeded",))


@pytest.mark.parametrize(
    ("code", "message"),
    [
        pytest.param("return { toJSON() { throw new Error('no'); } };", "Error: no", id="toJSON-throws"),
        pytest.param("const o = {}; o.o = o; return o;", "TypeError: Converting circular structure", id="cyclic"),
        pytest.param("return 10n;", "TypeError: Do not know how to serialize a BigInt", id="bigint"),
        pytest.param(
            "let o = {}; for (let i = 0; i < 1e5; i++) o = { o }; return o;",
            "the result is not JSON-serialisable: it is nested more than 200 levels deep",
            id="nested-1e5",
        ),
    ],
)
def test_a_result_that_is_not_json(service: Service, code: str, message: str) -> None:
    body = js(service, code, expect=("FunctionError",))
    assert body["message"].startswith(message)


def test_results_json_drops(service: Service) -> None:
    """Results with Symbols and functions (JSON made inside the run): null, as JSON.stringify makes them."""
    assert js(service, "return [Symbol('s'), () => 1, undefined, { f() {} }];", expect=("ok",)) == [
        None,
        None,
        None,
        {},
    ]


def test_a_huge_result_is_refused_inside_the_sandbox(service: Service) -> None:
    """A 100 MB string result: refused before it leaves V8 (it would cost the worker its RSS)."""
    js(service, "return 'x'.repeat(100 * 2 ** 20);", expect=("MemoryLimitExceeded",))


def test_a_thrown_value_with_hostile_getters(service: Service) -> None:
    """vm2-style hostile thrown objects: getters are shown, never run."""
    body = js(
        service,
        "throw { get message() { while (true) {} }, get stack() { while (true) {} }, get name() { throw new Error('x'); } };",
        expect=("FunctionError",),
    )
    assert body["message"] == "{ message: [Getter], stack: [Getter], name: [Getter] }"


def test_a_thrown_value_that_spins_when_printed(service: Service) -> None:
    """An object that claims to be an Error and spins in toString: it burns its own run only."""
    js(service, "throw { [Symbol.toStringTag]: 'Error', toString() { while (true) {} } };", expect=("TimeoutExceeded",))


# ---- prototype pollution: its own workspace only -------------------------------------------------


def test_prototype_pollution_stays_in_its_workspace(service: Service) -> None:
    """Prototype pollution (CVE-2019-10744 lodash, CVE-2018-3721 shapes): built-ins replaced in one call
    may break that workspace's later calls (its own context), never another workspace's."""
    workspace = own_workspace(
        service,
        """
        Object.prototype.polluted = "yes";
        Object.prototype.toJSON = function () { return "hijacked"; };
        Array.prototype.push = null;
        Array.prototype.join = () => { throw new Error("join"); };
        String.prototype.charCodeAt = () => { while (true) {} };
        JSON.stringify = () => { throw new Error("stringify"); };
        JSON.parse = () => ({ hijacked: true });
        Promise.prototype.then = function () { while (true) {} };
        Map.prototype.set = Map.prototype.delete = Map.prototype.clear = () => { throw new Error("map"); };
        Reflect.apply = () => { throw new Error("apply"); };
        return 1;
        """,
    )
    assert call(service, workspace, "f")[:2] == ("ok", 1)
    service.check_healthy(True)
    code, result, _ = call(service, workspace, "g")  # its own context is polluted: whatever it answers, fast
    assert code in ("ok", "FunctionError")
    service.check_healthy(True)


def test_a_polluted_to_json_cannot_hijack_the_error_report(service: Service) -> None:
    """Object.prototype.toJSON would run in JSON.stringify of the sandbox's error report: it is not used."""
    body = js(
        service,
        "Object.prototype.toJSON = () => { while (true) {} }; throw new Error('after pollution');",
        expect=("FunctionError",),
    )
    assert body["message"] == "Error: after pollution"


def test_timers_survive_a_polluted_map(service: Service) -> None:
    """Prototype pollution (as above) of what the sandbox's timers use: they keep their own Map methods."""
    workspace = own_workspace(
        service,
        "Map.prototype.set = Map.prototype.has = Map.prototype.delete = Map.prototype.clear = () => { throw new Error('map'); };\n"
        "await new Promise((resolve) => setTimeout(resolve, 1)); return 'timers work';",
    )
    assert call(service, workspace, "f")[:2] == ("ok", "timers work")
    assert call(service, workspace, "f")[:2] == ("ok", "timers work")


# ---- huge or deep parameters and sources -----------------------------------------------------------


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"o": value}
    return value


def test_a_900kb_string_parameter(service: Service) -> None:
    """A big parameter (CWE-400): too big for the sandbox's mailbox, it goes in the eval's text."""
    result = js(
        service,
        "return s.length;",
        expect=("ok",),
        parameters={"s": "ü" * 450_000},
        function={"parameters": {"s": {"type": "string"}}},
    )
    assert result == 450_000


def test_a_parameter_nested_60_deep(service: Service) -> None:
    """CVE-2020-36518's shape, under the HTTP cap."""
    result = js(
        service,
        "let d = 0; for (let x = o; typeof x === 'object'; x = x.o) d++; return d;",
        expect=("ok",),
        parameters={"o": _nested(60)},
        function={"parameters": {"o": {"type": "object"}}},
    )
    assert result == 60


def test_a_parameter_nested_past_the_http_cap(service: Service) -> None:
    """JSON nesting bombs (CVE-2020-36518, jackson-databind's stack overflow on deep JSON): the HTTP
    layer caps depth at 64."""
    js(
        service,
        "return 1;",
        expect=("InvalidRequest",),
        parameters={"o": _nested(200)},
        function={"parameters": {"o": {"type": "object"}}},
    )


def test_a_body_over_the_cap(service: Service) -> None:
    """CWE-400: a body over REQUEST_MAX_SIZE is refused before any sandbox sees it."""
    outcome = service.client.post(
        "/v2/functions/healthy/run/js", content=json.dumps({"parameters": {"s": "x" * (1 << 20)}})
    )
    assert outcome.json()["error"] == "PayloadTooLarge"
    service.check_healthy(True)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param("{" * 1000 + "}" * 1000 + " return 1;", "ok", id="1000-nested-blocks"),
        pytest.param("return " + "(" * 1000 + "1" + ")" * 1000 + ";", "ok", id="1000-nested-parentheses"),
        pytest.param("return " + "[" * 100_000 + "]" * 100_000 + ";", "CompilationError", id="100k-nested-arrays"),
        pytest.param("let x = 0;\n" + "x += 1;\n" * 110_000 + "return x;", "ok", id="900kb-body"),
        pytest.param("return " + "- " * 200_000 + "1;", "CompilationError", id="200k-unary-minus"),
    ],
)
def test_huge_or_deep_sources(service: Service, code: str, expected: str) -> None:
    """Parser stack exhaustion (CWE-674 in a parser, as in CVE-2020-36518): refused at save time with
    V8's RangeError, or compiled and run; never a crash."""
    body = js(service, code, expect=(expected,))
    if expected == "CompilationError":
        assert "Maximum call stack size exceeded" in body["message"]


def test_results_a_fast_json_reader_could_read_otherwise(service: Service) -> None:
    """The worker reads outcomes with orjson where it agrees with `json`: numbers past 64 bits, past a
    double's range, escapes of lone surrogates and escaped backslashes before them come out as before."""
    code = (
        'return [2 ** 64, -(2 ** 63) - 4096, 1e308 * 10, "\\ud800", "\\\\ud800x", "\\\\\\ud800", '
        '{["__proto__"]: 1}, "9".repeat(40) * 1, Number("1" + "0".repeat(25))];'
    )
    assert js(service, code, expect=("ok",)) == [
        18446744073709552000,
        -9223372036854780000,
        None,
        "\ufffd",
        "\\ud800x",
        "\\\ufffd",
        {"__proto__": 1},
        1e40,
        1e25,
    ]


def test_parameters_a_fast_json_writer_could_write_otherwise(service: Service) -> None:
    """Parameters written for JS with orjson where it agrees with `json`: an integer past 64 bits
    arrives as the number JSON.parse makes of it, nulls stay nulls, U+2028 and astral text stay text."""
    code = "const p = params.p; return [p.s.length, p.s.codePointAt(1), p.n, p.z === null, Object.keys(p).join()];"
    workspace = own_workspace(service, code)
    body = (
        b'{"parameters": {"p": {"s": "\\u2028\\ud83d\\ude00", "n": 1180591620717411303424, "z": null, "__proto__": 1}}}'
    )
    answer = service.client.post(
        f"/v2/functions/{workspace}/run/f", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 200, answer.json()
    assert answer.json()["result"] == [3, 0x1F600, 1.1805916207174113e21, True, "s,n,z,__proto__"]
    service.check_healthy(warm=True)

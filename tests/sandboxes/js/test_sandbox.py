"""The JavaScript sandbox: a workspace's functions in one V8 context, with limits."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fnbox.sandboxes.base import MAX_LOG_ENTRIES, MAX_LOG_MESSAGE, FunctionSource, Limits, Parameter, RunResult
from fnbox.sandboxes.errors import (
    CompilationError,
    FunctionError,
    InvalidParameters,
    MemoryLimitExceeded,
    NotFound,
    SandboxCrashed,
    TimeoutExceeded,
)
from fnbox.sandboxes.js import inflight
from fnbox.sandboxes.js import sandbox as js_sandbox
from fnbox.sandboxes.js.engine import stuck_isolates
from fnbox.sandboxes.js.names import RESERVED_NAMES
from fnbox.sandboxes.js.outcome import MAX_RESULT
from fnbox.sandboxes.js.sandbox import JsSandbox, compile_workspace

ROOT = Path(__file__).resolve().parents[3]
LIMITS = Limits(timeout=2.0, memory=64 << 20)
SHORT = Limits(timeout=0.3, memory=64 << 20)


def fn(name: str, code: str, *parameters: Parameter) -> FunctionSource:
    return FunctionSource(name, code, parameters)


def run(sandbox: JsSandbox, function: str, params: dict[str, Any] | None = None, limits: Limits = LIMITS) -> RunResult:
    return asyncio.run(sandbox.run(function, params or {}, limits))


def fails(sandbox: JsSandbox, function: str, error: type[Exception], limits: Limits = LIMITS) -> Any:
    with pytest.raises(error) as info:
        run(sandbox, function, limits=limits)
    return info.value


@pytest.fixture
def compile() -> Iterator[Any]:
    sandboxes: list[JsSandbox] = []

    def make(*functions: FunctionSource) -> JsSandbox:
        sandboxes.append(compile_workspace(functions))
        return sandboxes[-1]

    yield make
    for sandbox in sandboxes:
        sandbox.close()


HELLO = fn("hello", 'return "Hello " + name;', Parameter("name", "string", "world", True))


def test_parameter_and_its_default(compile: Any) -> None:
    sandbox = compile(HELLO)
    assert run(sandbox, "hello", {"name": "you"}).result == "Hello you"
    assert run(sandbox, "hello").result == "Hello world"


def test_undeclared_parameters_are_not_locals(compile: Any) -> None:
    sandbox = compile(fn("f", "return typeof extra;"))
    assert run(sandbox, "f", {"extra": 1}).result == "undefined"


def test_a_function_awaits_another(compile: Any) -> None:
    sandbox = compile(
        fn("funcA", "return x * 2;", Parameter("x")),
        fn("funcB", 'return "hello " + (await funcA({x: 21}));'),
    )
    assert run(sandbox, "funcB").result == "hello 42"


def test_cache_is_kept_across_runs_and_functions(compile: Any) -> None:
    counter = fn("count", "cache.n = (cache.n || 0) + 1; return cache.n;")
    sandbox = compile(counter, fn("peek", "return cache.n;"))
    assert [run(sandbox, "count").result for _ in range(3)] == [1, 2, 3]
    assert run(sandbox, "peek").result == 3
    assert run(compile(counter), "count").result == 1


def test_workspaces_compiled_one_after_another_share_nothing(compile: Any) -> None:
    # Each compile takes the spare isolate made in the background after the previous one.
    leave = fn("leave", "globalThis.left = 'mine'; Object.prototype.polluted = 1; cache.n = 1; return 1;")
    look = fn("look", "return [typeof left, ({}).polluted === undefined, cache.n === undefined];")
    run(compile(leave), "leave")
    for _ in range(3):
        time.sleep(0.05)  # let the next spare be made
        assert run(compile(leave, look), "look").result == ["undefined", True, True]


def test_console_levels_and_formatting(compile: Any) -> None:
    sandbox = compile(
        fn(
            "talk",
            'console.log("a", 1, {b: [1, "x"]}); console.info("%s=%d", "n", 5); console.warn("w");'
            'console.error(new Error("e")); console.debug(null, undefined, () => 1); return 0;',
        )
    )
    logs = run(sandbox, "talk").logs
    assert [entry["level"] for entry in logs] == ["info", "info", "warn", "error", "debug"]
    assert logs[0]["message"] == "a 1 { b: [ 1, 'x' ] }"
    assert logs[1]["message"] == "n=5"
    assert logs[3]["message"].startswith("Error: e\n    at talk (talk.js:1:")
    assert logs[4]["message"] == "null undefined [Function: (anonymous)]"
    assert all(isinstance(entry["time"], int) for entry in logs)


def test_logging_never_throws(compile: Any) -> None:
    code = (
        "const o = {get boom() { throw new Error('no'); }}; o.self = o;"
        "console.log(o, new Map([[1, 2]]), new Set(['a']), 10n, Symbol('s'), new Date(0), /x/g);"
        "return 0;"
    )
    message = run(compile(fn("f", code)), "f").logs[0]["message"]
    assert message == (
        "{ boom: [Getter], self: [Circular] } Map(1) { 1 => 2 } Set(1) { 'a' } 10n Symbol(s)"
        " 1970-01-01T00:00:00.000Z /x/g"
    )


def test_a_log_flood_is_capped(compile: Any) -> None:
    sandbox = compile(fn("flood", "for (let i = 0; i < 5000; i++) console.log('x'.repeat(10000)); return 1;"))
    logs = run(sandbox, "flood").logs
    assert len(logs) == MAX_LOG_ENTRIES + 1
    assert logs[0]["message"] == "x" * MAX_LOG_MESSAGE + "… (truncated)"
    assert logs[-1] == {"level": "warn", "message": "4000 more log entries were dropped", "time": logs[-1]["time"]}


def test_a_thrown_error_gives_its_message_line_stack_and_logs(compile: Any) -> None:
    sandbox = compile(fn("boom", 'console.log("before");\nthrow new Error("boom");'))
    error = fails(sandbox, "boom", FunctionError)
    assert error.message == "Error: boom"
    assert error.details["function"] == "boom"
    assert error.details["line"] == 2
    assert error.details["stack"] == "Error: boom\n    at boom (boom.js:2:7)"
    assert [entry["message"] for entry in error.logs] == ["before"]
    assert error.duration > 0


def test_an_error_in_a_called_function_points_at_both(compile: Any) -> None:
    sandbox = compile(fn("inner", "await null;\n\nnull.x;"), fn("outer", "await null;\nawait inner();"))
    error = fails(sandbox, "outer", FunctionError)
    assert error.message.startswith("TypeError: Cannot read properties of null")
    assert error.details["line"] == 2
    assert "at inner (inner.js:3:" in error.details["stack"]
    assert "at async outer (outer.js:2:" in error.details["stack"]


@pytest.mark.parametrize(("code", "message"), [('throw "x";', "x"), ("throw {};", "{}"), ("throw null;", "null")])
def test_throwing_a_non_error(compile: Any, code: str, message: str) -> None:
    error = fails(compile(fn("f", code)), "f", FunctionError)
    assert (error.message, error.details["line"], error.details["stack"]) == (message, None, None)


def test_a_syntax_error_marks_only_its_function(compile: Any) -> None:
    sandbox = compile(HELLO, fn("bad", "let x = 1;\nreturn );"))
    assert set(sandbox.errors) == {"bad"}
    error = sandbox.errors["bad"]
    assert error.message == "function 'bad' does not compile (line 2): SyntaxError: Unexpected token ')'"
    assert error.details == {"function": "bad", "line": 2}
    with pytest.raises(CompilationError) as info:
        run(sandbox, "bad")
    assert info.value.details["line"] == 2 and info.value.logs == [] and info.value.duration == 0.0
    assert run(sandbox, "hello").result == "Hello world"


def test_a_body_cannot_close_its_function_early(compile: Any) -> None:
    sneaky = fn("sneaky", "return 1; }; globalThis.leaked = 1; (function () {")
    sandbox = compile(sneaky, fn("check", "return typeof leaked;"))
    assert "sneaky" in sandbox.errors
    assert run(sandbox, "check").result == "undefined"


def test_invalid_names_do_not_compile(compile: Any) -> None:
    sandbox = compile(fn("class", "return 1;"), fn("f", "return 1;", Parameter("first-name")))
    assert set(sandbox.errors) == {"class", "f"}


def test_any_identifier_is_a_parameter_and_params_holds_them_all(compile: Any) -> None:
    sandbox = compile(
        fn(
            "event",
            "return [id, type, typeof Date, params.default, params.class, params.extra];",
            Parameter("id"),
            Parameter("type"),
            Parameter("Date"),
            Parameter("default", None, 7, True),
            Parameter("class"),
        ),
        fn("outer", "return [typeof Date, await event({id: 1, class: 'c'})];"),
        fn("own", "return params;", Parameter("params")),
        fn("cached", "return [cache, console];", Parameter("cache"), Parameter("console")),
    )
    assert not sandbox.errors
    given = {"id": "evt_1", "type": "charge", "Date": 3, "class": "k", "extra": True}
    assert run(sandbox, "event", given).result == ["evt_1", "charge", "number", 7, "k", True]
    assert run(sandbox, "outer").result == ["function", [1, None, "undefined", 7, "c", None]]
    assert run(sandbox, "own", {"params": [1]}).result == [1]
    assert run(sandbox, "cached", {"cache": 1, "console": 2}).result == [1, 2]


@pytest.mark.parametrize(
    ("declaration", "kind"),
    [
        ("const params = new URLSearchParams(q);", "object"),
        ("let params = q;", "string"),
        ("function params() {}", "function"),
        ("class params {}", "function"),
    ],
)
def test_a_body_that_declares_params_keeps_its_own(compile: Any, declaration: str, kind: str) -> None:
    sandbox = compile(fn("own", f"{declaration}\nreturn typeof params;", Parameter("q", None, "a=1", True)))
    assert not sandbox.errors
    assert run(sandbox, "own", {"q": "b=2"}).result == kind
    broken = compile(fn("broken", "const params = 1;\nconst params = 2;"))
    assert "has already been declared" in str(broken.errors["broken"])


def test_results_are_json(compile: Any) -> None:
    sandbox = compile(
        fn("values", "return [1, 1.5, 'é', true, null, {a: {b: []}}, undefined, () => 1, new Date(0)];"),
        fn("nothing", "return;"),
    )
    expected = [1, 1.5, "é", True, None, {"a": {"b": []}}, None, None, "1970-01-01T00:00:00.000Z"]
    assert run(sandbox, "values").result == expected
    assert run(sandbox, "nothing").result is None


def test_a_result_that_is_not_json_is_a_function_error(compile: Any) -> None:
    sandbox = compile(fn("big", "return 10n;"), fn("loop", "const a = {}; a.a = a; return a;"))
    assert "BigInt" in fails(sandbox, "big", FunctionError).message
    assert fails(sandbox, "loop", FunctionError).message.startswith("TypeError: Converting circular structure")


def test_big_parameters_and_results(compile: Any) -> None:
    sandbox = compile(fn("echo", "return {s: s + s, n: s.length};", Parameter("s")))
    text = "ü" * 300_000
    assert run(sandbox, "echo", {"s": text}).result == {"s": text * 2, "n": 300_000}


def test_a_lone_surrogate_becomes_a_replacement_character(compile: Any) -> None:
    sandbox = compile(fn("f", 'console.log("\\ud800"); return "a\\udc00b";'))
    result = run(sandbox, "f")
    assert (result.result, result.logs[0]["message"]) == ("a\ufffdb", "\ufffd")


def test_numbers_and_text_a_fast_json_reader_could_change_read_as_json_reads_them(compile: Any) -> None:
    # Outcomes are read with orjson where it gives what `json` gives: an integer past 64 bits stays
    # an exact int, a number past a double's range and escapes of lone surrogates are read as before.
    sandbox = compile(
        fn("big", "return [2 ** 64, -(2 ** 63) - 4096, 1e21, 1e-7, 0.1 + 0.2, -0, 5e-324, 1.7976931348623157e308];"),
        fn("text", 'return ["\\ud800", "\\\\ud800", "\\ud83d\\ude00", "\\u0000", "\\u2028"];'),
        fn("keys", 'return JSON.parse(\'{"__proto__": 1, "a": 2}\');'),
    )
    assert run(sandbox, "big").result == json.loads(
        "[18446744073709552000,-9223372036854780000,1e+21,1e-7,0.30000000000000004,0,5e-324,1.7976931348623157e+308]"
    )
    assert [type(n) for n in run(sandbox, "big").result[:2]] == [int, int]
    assert run(sandbox, "text").result == ["\ufffd", "\\ud800", "\U0001f600", "\x00", "\u2028"]
    assert run(sandbox, "keys").result == {"__proto__": 1, "a": 2}


def test_parameters_reach_js_as_json_would_write_them(compile: Any) -> None:
    sandbox = compile(fn("echo", "return [typeof p, JSON.stringify(p), Object.keys(p || {}).length];", Parameter("p")))
    for value, text in [
        (2**70, "1.1805916207174113e+21"),
        ({"x": None, "y": 1e-7}, '{"x":null,"y":1e-7}'),
        ("\ud800", '"\\ud800"'),
        ({"1": [True, False]}, '{"1":[true,false]}'),
    ]:
        result = run(sandbox, "echo", {"p": value}).result
        assert result[1] == text, value
    with pytest.raises(InvalidParameters):
        run(sandbox, "echo", {"p": float("nan")})


def test_a_sync_loop_times_out_and_the_sandbox_goes_on(compile: Any) -> None:
    sandbox = compile(fn("spin", "console.log('started'); while (true) {}"), HELLO)
    started = time.monotonic()
    error = fails(sandbox, "spin", TimeoutExceeded, SHORT)
    assert time.monotonic() - started < SHORT.timeout + 0.5
    assert [entry["message"] for entry in error.logs] == ["started"]
    assert error.duration >= SHORT.timeout * 1000
    assert not sandbox.broken
    assert run(sandbox, "hello").result == "Hello world"


@pytest.mark.parametrize(
    "code",
    [
        "await null; while (true) {}",
        "while (true) await null;",
        "(function again() { Promise.resolve().then(again); })(); return new Promise(() => {});",
        "return {toJSON() { while (true) {} }};",
    ],
    ids=["async-loop", "microtask-loop", "detached-microtask-loop", "hostile-toJSON"],
)
def test_a_loop_out_of_reach_times_out_and_breaks_the_sandbox(compile: Any, code: str) -> None:
    sandbox = compile(fn("spin", "console.log('started');\n" + code))
    started = time.monotonic()
    error = fails(sandbox, "spin", TimeoutExceeded, SHORT)
    assert time.monotonic() - started < SHORT.timeout + 0.5
    assert [entry["message"] for entry in error.logs] == ["started"]
    assert sandbox.broken
    fails(sandbox, "spin", SandboxCrashed)
    started = time.monotonic()
    sandbox.close()
    assert time.monotonic() - started < 0.5
    assert run(compile(HELLO), "hello").result == "Hello world"


def test_work_left_spinning_after_a_run_is_stopped(compile: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(js_sandbox, "IDLE_CHECK", 0.1)
    sandbox = compile(fn("leave", "(async () => { while (true) await null; })(); return 1;"))
    calm = compile(HELLO)

    async def main() -> None:
        assert (await sandbox.run("leave", {}, LIMITS)).result == 1
        assert (await calm.run("hello", {}, LIMITS)).result == "Hello world"
        await asyncio.sleep(0.3)

    asyncio.run(main())
    assert sandbox.broken and not calm.broken


def test_a_caller_giving_up_stops_the_run_and_keeps_the_isolate(compile: Any) -> None:
    sandbox = compile(fn("spin", "cache.n = (cache.n || 0) + 1; while (true) {}"), fn("n", "return cache.n;"))

    async def main() -> float:
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(sandbox.run("spin", {}, LIMITS), 0.1)
        return time.monotonic() - started

    assert asyncio.run(main()) < 0.5
    assert not sandbox.broken
    assert run(sandbox, "n").result == 1  # the same isolate: its cache is still there


def test_a_caller_giving_up_on_a_loop_out_of_reach_drops_the_isolate(compile: Any) -> None:
    sandbox = compile(fn("spin", "while (true) await null;"))

    async def main() -> float:
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(sandbox.run("spin", {}, LIMITS), 0.1)
        return time.monotonic() - started

    assert asyncio.run(main()) < 0.6
    assert sandbox.broken


def test_a_timer_loop_times_out_and_is_stopped(compile: Any) -> None:
    sandbox = compile(fn("tick", "while (true) await new Promise((r) => setTimeout(r, 1));"), HELLO)
    started = time.monotonic()
    fails(sandbox, "tick", TimeoutExceeded, SHORT)
    assert time.monotonic() - started < SHORT.timeout + 0.5
    assert not sandbox.broken
    assert run(sandbox, "hello").result == "Hello world"


def test_a_getter_that_throws_on_the_result(compile: Any) -> None:
    sandbox = compile(fn("f", "return {get x() { throw new Error('no'); }};"))
    assert fails(sandbox, "f", FunctionError).message == "Error: no"


def test_timers_work_within_a_run(compile: Any) -> None:
    sandbox = compile(
        fn(
            "wait",
            "const order = [];\n"
            "const id = setTimeout(() => order.push('cleared'), 5); clearTimeout(id);\n"
            "setTimeout((a) => order.push(a), 20, 'late'); setTimeout(() => order.push('soon'), 1);\n"
            "await new Promise((r) => setTimeout(r, 40)); return order;",
        )
    )
    assert run(sandbox, "wait").result == ["soon", "late"]


def test_a_pending_timer_never_fires_after_its_run(compile: Any) -> None:
    sandbox = compile(
        fn("arm", "setTimeout(() => { cache.fired = true; }, 30); setInterval(() => { cache.ticks = 1; }, 10);"),
        fn("check", "await new Promise((r) => setTimeout(r, 80)); return [cache.fired, cache.ticks];"),
    )
    run(sandbox, "arm")
    time.sleep(0.05)
    assert run(sandbox, "check").result == [None, None]


def test_an_error_in_a_timer_fails_the_run(compile: Any) -> None:
    sandbox = compile(fn("f", "setTimeout(() => { throw new Error('late'); }, 1); await new Promise(() => {});"))
    assert fails(sandbox, "f", FunctionError).message == "Error: late"


def test_memory_limit(compile: Any) -> None:
    sandbox = compile(fn("hog", "let a = []; while (true) a.push(new Array(1e5).fill(1.5));"))
    error = fails(sandbox, "hog", MemoryLimitExceeded, Limits(timeout=10, memory=32 << 20))
    assert error.duration < 10_000
    assert sandbox.broken
    assert run(compile(HELLO), "hello").result == "Hello world"


def test_memory_limit_after_an_await(compile: Any) -> None:
    sandbox = compile(fn("hog", "await null; let a = []; while (true) a.push(new Array(1e5).fill(1.5));"))
    fails(sandbox, "hog", MemoryLimitExceeded, Limits(timeout=10, memory=32 << 20))


def test_no_host_objects(compile: Any) -> None:
    # `require` and `process` are fnbox's own stand-ins: nothing of the host's process shows through.
    code = "return [Object.keys(process.env), process.pid, process.cwd(), typeof WebAssembly, typeof $fnbox.go];"
    sandbox = compile(fn("probe", code))
    assert run(sandbox, "probe").result == [[], 1, "/", "undefined", "function"]


def test_sandbox_globals_cannot_be_replaced(compile: Any) -> None:
    sandbox = compile(fn("f", "console = null; cache = 1; setTimeout = 2; return [typeof console.log, typeof cache];"))
    assert run(sandbox, "f").result == ["function", "object"]


def test_every_global_of_the_context_is_reserved(compile: Any) -> None:
    sandbox = compile(fn("names", "return Object.getOwnPropertyNames(globalThis);"))
    assert set(run(sandbox, "names").result) - {"names"} <= RESERVED_NAMES
    assert {"while", "let", "await", "cache", "console", "setTimeout", "clearTimeout", "Date", "eval"} <= RESERVED_NAMES


def test_parameters_that_are_not_json(compile: Any) -> None:
    with pytest.raises(InvalidParameters):
        run(compile(HELLO), "hello", {"name": float("nan")})


def test_unknown_function(compile: Any) -> None:
    error = fails(compile(HELLO), "nope", NotFound)
    assert error.logs == [] and error.duration == 0.0


def test_compile_and_run_from_inside_a_running_loop(compile: Any) -> None:
    async def main() -> Any:
        sandbox = compile(HELLO)  # sync, inside the loop
        return (await sandbox.run("hello", {}, LIMITS)).result

    assert asyncio.run(main()) == "Hello world"


def test_overlapping_runs_from_two_loops_take_turns(compile: Any) -> None:
    sandbox = compile(fn("slow", "await new Promise((r) => setTimeout(r, 20)); return n;", Parameter("n")))
    results: dict[int, Any] = {}

    def worker(n: int) -> None:
        results[n] = asyncio.run(sandbox.run("slow", {"n": n}, LIMITS)).result

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {0: 0, 1: 1, 2: 2, 3: 3}


@pytest.mark.slow  # a subprocess
def test_a_thread_started_before_v8_can_free_an_isolate() -> None:
    # With V8's memory protection keys, such a thread crashed the process (SIGSEGV).
    script = """
import asyncio
from concurrent.futures import ThreadPoolExecutor
old = ThreadPoolExecutor(1)
old.submit(lambda: None).result()
from fnbox.sandboxes.base import FunctionSource, Limits
from fnbox.sandboxes.errors import FunctionError
from fnbox.sandboxes.js.sandbox import compile_workspace
sandbox = compile_workspace([FunctionSource("f", "throw new Error('x')")])
try:
    asyncio.run(sandbox.run("f", {}, Limits(timeout=5, memory=64 << 20)))
except FunctionError:
    old.submit(sandbox.close).result()
    print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "ok\n"), done.stderr


def test_close_is_quick_even_mid_run(compile: Any) -> None:
    sandbox = compile(fn("spin", "await null; while (true) {}"))

    async def main() -> None:
        task = asyncio.ensure_future(sandbox.run("spin", {}, Limits(timeout=30, memory=64 << 20)))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        sandbox.close()
        assert time.monotonic() - started < 0.5
        with pytest.raises(SandboxCrashed):
            await task

    asyncio.run(main())


def test_a_result_nested_too_deep_is_a_function_error(compile: Any) -> None:
    sandbox = compile(fn("deep", "let o = {}; for (let i = 0; i < n; i++) o = { o }; return o;", Parameter("n")))
    assert run(sandbox, "deep", {"n": 199}).result is not None  # 200 levels, with the innermost {}
    message = fails_with(sandbox, "deep", {"n": 200}, FunctionError).message
    assert message == "the result is not JSON-serialisable: it is nested more than 200 levels deep"


def test_a_result_too_big_to_leave_is_a_memory_failure(compile: Any) -> None:
    sandbox = compile(fn("big", "return 'x'.repeat(n);", Parameter("n")), HELLO)
    assert len(run(sandbox, "big", {"n": MAX_RESULT - 2}).result) == MAX_RESULT - 2
    assert "more than the 12 M allowed" in fails_with(sandbox, "big", {"n": MAX_RESULT}, MemoryLimitExceeded).message
    assert not sandbox.broken


def test_a_run_moves_to_a_fresh_isolate_when_work_left_behind_wedges_it(compile: Any) -> None:
    sandbox = compile(
        fn("leave", "cache.n = 1; (async () => { for (;;) await null; })(); return 'left';"),
        fn("count", "cache.n = (cache.n || 0) + 1; return cache.n;"),
    )
    assert run(sandbox, "leave").result == "left"
    started = time.monotonic()
    assert run(sandbox, "count").result == 1  # the old isolate, and its cache, are gone
    assert time.monotonic() - started < inflight.START_WAIT + 1
    assert run(sandbox, "count").result == 2 and not sandbox.broken


def test_a_run_moves_to_a_fresh_isolate_when_work_left_behind_breaks_the_runtime(compile: Any) -> None:
    sandbox = compile(
        fn("stall", "await new Promise(() => {});"),
        fn(
            "hijack", "(async () => { for (let i = 0; i < 3; i++) await null; $fnbox.run(1e9, 0, '{}'); })(); return 1;"
        ),
        HELLO,
    )
    assert run(sandbox, "hijack").result == 1
    assert run(sandbox, "hello").result == "Hello world"  # the runtime thought a run was still going
    assert not sandbox.broken


@pytest.mark.parametrize(
    "code",
    [
        "const a = new Int32Array(new SharedArrayBuffer(4));\n"
        "(async () => { for (;;) { await Atomics.waitAsync(a, 0, 0, 1).value; cache.ticks++; } })();",
        "const r = new FinalizationRegistry(() => { cache.ticks++; for (let i = 0; i < 9; i++) r.register(new Array(1e5).fill(i), 0); });\n"
        "for (let i = 0; i < 9; i++) r.register(new Array(1e5).fill(i), 0);",
    ],
    ids=["waitAsync", "FinalizationRegistry"],
)
def test_work_that_resumes_by_itself_stops_with_the_run(compile: Any, code: str) -> None:
    sandbox = compile(fn("leave", "cache.ticks = 0;\n" + code + "\nreturn 1;"), fn("ticks", "return cache.ticks;"))
    run(sandbox, "leave")
    time.sleep(0.1)
    ticks = run(sandbox, "ticks").result
    time.sleep(0.1)
    assert run(sandbox, "ticks").result == ticks <= 1


@pytest.mark.parametrize(
    "code",
    [
        "const b = new ArrayBuffer(2 ** 30); return b.byteLength;",
        "const a = []; for (;;) a.push(new Float64Array(1e6));",
        "const a = []; for (;;) a.push(new ArrayBuffer(1, { maxByteLength: 2 ** 30 }));",
        "const a = [new Uint8Array(2 ** 24)]; for (;;) a.push(a[0].slice(), a[0].toReversed(), a[0].buffer.slice(0));",
        "new Uint8Array(2 ** 20).fill(1); return new Uint8Array(2 ** 26).length;",
    ],
    ids=["one-big", "many", "resizable", "copies", "typed-array"],
)
def test_array_buffers_count_against_the_memory_limit(compile: Any, code: str) -> None:
    sandbox = compile(fn("hog", code))
    error = fails(sandbox, "hog", MemoryLimitExceeded)
    assert "ArrayBuffers would pass its memory limit of 64 MB" in error.message
    assert not sandbox.broken


def test_array_buffers_that_were_collected_stop_counting(compile: Any) -> None:
    sandbox = compile(
        fn("keep", "cache.b = new Uint8Array(40 << 20); return cache.b.length;"),
        fn("drop", "cache.b = null; return new Uint8Array(40 << 20).length;"),
        fn(
            "api",
            "return [new Uint8Array([1, 2]).join(), Uint8Array.from([3]).join(), new Uint8Array(new ArrayBuffer(8), 4).length,"
            " new (class extends Uint8Array {})(2).length, Uint8Array.name, new Uint8Array(1) instanceof Uint8Array, typeof $fnbox_gc];",
        ),
    )
    assert run(sandbox, "keep").result == 40 << 20
    assert run(sandbox, "drop").result == 40 << 20
    assert run(sandbox, "api").result == ["1,2", "3", 4, 2, "Uint8Array", True, "undefined"]


def test_array_buffers_one_sandbox_keeps_leave_the_others_room(compile: Any) -> None:
    hog = compile(
        fn(
            "keep",
            "cache.k = []; try { for (;;) cache.k.push(new Float64Array(1e6)); } catch (e) { return cache.k.length; }",
        )
    )
    assert run(hog, "keep").result <= 8
    assert run(compile(fn("f", "return new ArrayBuffer(32 << 20).byteLength;")), "f").result == 32 << 20


@pytest.mark.parametrize(
    "code",
    [
        "return new Array(2 ** 31).fill(0).length;",
        "const a = []; a[2 ** 31] = 1; a.forEach(() => {});",
        "return Array.from({ length: 2 ** 31 }).length;",
        "let reads = 0; Array.prototype.forEach.call({ get length() { return reads++ ? 2 ** 31 : 1; } }, () => {}); return reads;",
    ],
    ids=["fill", "forEach", "Array.from", "a-length-that-lies"],
)
def test_walks_over_huge_sparse_arrays_are_refused(compile: Any, code: str) -> None:
    # V8 walks them in native loops no TerminateExecution reaches, for minutes.
    sandbox = compile(fn("walk", code))
    try:
        result = run(sandbox, "walk", limits=SHORT)
    except MemoryLimitExceeded as error:
        assert "more than the function's memory limit of 64 MB can hold" in error.message
    else:
        assert result.result == 1  # the length was read once
    assert stuck_isolates(0.0) == 0


def test_an_isolate_stuck_in_native_code_is_reported(compile: Any) -> None:
    # Sorting a typed array is one native loop: the run times out, its isolate cannot be freed until it ends.
    sandbox = compile(
        fn(
            "fill",
            "cache.a = new Float64Array(6e6); for (let i = 0; i < cache.a.length; i++) cache.a[i] = Math.random();",
        ),
        fn("sort", "cache.a.sort();"),
    )
    run(sandbox, "fill")
    fails(sandbox, "sort", TimeoutExceeded, Limits(timeout=0.05, memory=64 << 20))
    assert sandbox.broken and stuck_isolates(0.0) == 1
    deadline = time.monotonic() + 10
    while stuck_isolates(0.0) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stuck_isolates(0.0) == 0


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (
            "Object.defineProperty(Promise, Symbol.species, { get() { throw new Error('species'); } }); return 1;",
            "Error: species",
        ),
        ("Object.prototype.toJSON = () => { while (true) {} }; throw new Error('thrown');", "Error: thrown"),
    ],
    ids=["promise-species", "toJSON"],
)
def test_replaced_built_ins_fail_only_the_function(compile: Any, code: str, expected: str) -> None:
    sandbox = compile(fn("f", code))
    assert fails(sandbox, "f", FunctionError).message == expected


def test_the_runtime_keeps_its_own_built_ins(compile: Any) -> None:
    sandbox = compile(
        fn(
            "pollute",
            "String.prototype.charCodeAt = () => 0; Array.prototype.join = () => { throw 1; };"
            " Map.prototype.set = Map.prototype.has = Map.prototype.delete = Map.prototype.clear = () => { throw 2; };"
            " JSON.stringify = JSON.parse = () => { throw 3; }; Reflect.apply = () => { throw 4; };"
            " console.log('still logging'); await new Promise((resolve) => setTimeout(resolve, 1)); return ['a', 1];",
        ),
        HELLO,
    )
    result = run(sandbox, "pollute")
    assert (result.result, [entry["message"] for entry in result.logs]) == (["a", 1], ["still logging"])
    assert run(sandbox, "hello", {"name": "again"}).result == "Hello again"


def fails_with(sandbox: JsSandbox, function: str, params: dict[str, Any], error: type[Exception]) -> Any:
    with pytest.raises(error) as info:
        run(sandbox, function, params)
    return info.value


# Live logs and cancelling


def cancelled_after(sandbox: JsSandbox, function: str, seconds: float, **kwargs: Any) -> float:
    """Start a run, cancel it after `seconds`: how long it took to stop."""

    async def main() -> float:
        task = asyncio.create_task(sandbox.run(function, {}, LIMITS, **kwargs))
        await asyncio.sleep(seconds)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    return asyncio.run(main())


def test_on_log_gets_each_entry_while_the_run_goes_on(compile: Any) -> None:
    sandbox = compile(
        fn("talk", "console.log('a'); await new Promise((r) => setTimeout(r, 300)); console.error('b'); return 1;")
    )

    async def main() -> Any:
        seen: list[Any] = []
        first = asyncio.Event()

        def on_log(entry: Any) -> None:
            seen.append(entry)
            first.set()

        task = asyncio.create_task(sandbox.run("talk", {}, LIMITS, on_log=on_log))
        await asyncio.wait_for(first.wait(), 5)
        during = [entry["message"] for entry in seen], task.done()
        return during, seen, await task

    during, seen, outcome = asyncio.run(main())
    assert during == (["a"], False)
    assert seen == outcome.logs and [entry["level"] for entry in seen] == ["info", "error"]


def test_live_logs_are_the_logs_of_a_run_that_is_not_followed(compile: Any) -> None:
    # An entry bigger than the mailbox (JSON-escaped control characters) goes over in pieces;
    # past the cap, entries are dropped, not streamed.
    code = (
        "console.log('\\u0001'.repeat(8000) + '\\ud83d\\ude00'); console.log('x'.repeat(20000));"
        f"for (let i = 0; i < {MAX_LOG_ENTRIES + 5}; i++) console.log(i); return 1;"
    )
    sandbox = compile(fn("flood", code))
    seen: list[Any] = []
    followed = asyncio.run(sandbox.run("flood", {}, LIMITS, on_log=seen.append))
    plain = run(sandbox, "flood")
    assert len(seen) == MAX_LOG_ENTRIES and seen == followed.logs[:-1]
    assert [(e["level"], e["message"]) for e in followed.logs] == [(e["level"], e["message"]) for e in plain.logs]
    assert seen[0]["message"].endswith("\U0001f600") and seen[1]["message"].endswith("x… (truncated)")


def test_a_run_not_followed_never_hands_entries_over(compile: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    pieces: list[bytes] = []
    monkeypatch.setattr(inflight.Run, "on_piece", lambda self, data, more: pieces.append(data))
    sandbox = compile(fn("talk", "console.log('a'); return 1;"))
    assert [entry["message"] for entry in run(sandbox, "talk").logs] == ["a"]
    assert pieces == []
    asyncio.run(sandbox.run("talk", {}, LIMITS, on_log=lambda entry: None))
    assert len(pieces) == 1


def test_live_logs_of_a_run_that_times_out(compile: Any) -> None:
    sandbox = compile(fn("spin", "console.log('started'); while (true) {}"))
    seen: list[Any] = []
    with pytest.raises(TimeoutExceeded) as info:
        asyncio.run(sandbox.run("spin", {}, SHORT, on_log=seen.append))
    assert seen == info.value.logs and [entry["message"] for entry in seen] == ["started"]


@pytest.mark.parametrize(
    "code",
    [
        "while (true) {}",
        "await new Promise((r) => setTimeout(r, 60000));",
        "while (true) await new Promise((r) => setTimeout(r, 1));",
    ],
    ids=["loop", "timer", "timer-loop"],
)
def test_a_cancelled_run_stops_and_the_isolate_goes_on(compile: Any, code: str) -> None:
    sandbox = compile(fn("f", "cache.runs = (cache.runs || 0) + 1;\n" + code), fn("runs", "return cache.runs;"))
    assert cancelled_after(sandbox, "f", 0.2, on_log=lambda entry: None) < 0.3
    assert not sandbox.broken
    assert run(sandbox, "runs").result == 1


def test_a_cancelled_run_still_queued_never_starts(compile: Any) -> None:
    sandbox = compile(
        fn("slow", "await new Promise((r) => setTimeout(r, 300));"),
        fn("count", "cache.n = (cache.n || 0) + 1; return cache.n;"),
    )

    async def main() -> Any:
        slow = asyncio.create_task(sandbox.run("slow", {}, LIMITS))
        await asyncio.sleep(0.05)
        queued = asyncio.create_task(sandbox.run("count", {}, LIMITS))  # waits for the sandbox's slot
        await asyncio.sleep(0.05)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        await slow
        return (await sandbox.run("count", {}, LIMITS)).result

    assert asyncio.run(main()) == 1

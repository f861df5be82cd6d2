"""The JavaScript library: require(), the lazy globals, NODE_BUILTIN_MODULES, host-call errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from fnbox.sandboxes.base import FunctionSource, Limits
from fnbox.sandboxes.errors import CompilationError, FunctionError, MemoryLimitExceeded
from fnbox.sandboxes.js.names import NODE_MODULES, RESERVED_NAMES, unavailable_requires
from fnbox.sandboxes.js.sandbox import JsSandbox, compile_workspace

LIMITS = Limits(timeout=5.0, memory=64 << 20)


@pytest.fixture
def compile() -> Iterator[Any]:
    sandboxes: list[JsSandbox] = []

    def make(code: str, modules: Sequence[str] = NODE_MODULES, name: str = "f") -> JsSandbox:
        sandboxes.append(compile_workspace([FunctionSource(name, code)], node_modules=modules))
        return sandboxes[-1]

    yield make
    for sandbox in sandboxes:
        sandbox.close()


def run(sandbox: JsSandbox, limits: Limits = LIMITS) -> Any:
    return asyncio.run(sandbox.run("f", {}, limits)).result


def fails(sandbox: JsSandbox, error: type[Exception] = FunctionError) -> Any:
    with pytest.raises(error) as info:
        run(sandbox)
    return info.value


def test_a_literal_require_of_an_unavailable_module_does_not_compile(compile: Any) -> None:
    sandbox = compile('const a = 1;\nconst cp = require("node:child_process");\nreturn cp;')
    error = sandbox.errors["f"]
    assert isinstance(error, CompilationError)
    assert error.details == {"function": "f", "line": 2}
    assert "module 'child_process' is not available in fnbox (available: buffer, crypto" in error.message


def test_a_dynamic_require_answers_a_function_error_listing_the_modules(compile: Any) -> None:
    error = fails(compile('const name = "f" + "s"; return require(name);'))
    assert error.message == "Error: module 'fs' is not available in fnbox (available: " + ", ".join(NODE_MODULES) + ")"
    assert error.details["line"] == 1


def test_node_modules_narrow_what_require_answers(compile: Any) -> None:
    sandbox = compile(
        'return [typeof require("url").parse, typeof require("node:path").join];', modules=("url", "path")
    )
    assert run(sandbox) == ["function", "function"]
    assert compile('return require("crypto");', modules=("url",)).errors["f"].details["line"] == 1
    error = fails(compile('const m = "crypto"; return require(m);', modules=("url",)))
    assert "(available: url)" in error.message


def test_submodules_and_the_node_prefix_are_the_same_objects(compile: Any) -> None:
    code = """
        return [require("node:util") === require("util"), require("timers/promises") === require("timers").promises,
                require("util/types") === require("util").types, require("assert/strict") === require("assert").strict,
                require("stream/promises") === require("stream").promises, require("path/posix") === require("path"),
                typeof require("dns/promises").lookup];
    """
    assert run(compile(code)) == [True] * 6 + ["function"]


def test_the_literal_scan_finds_lines_and_ignores_other_calls() -> None:
    code = 'x.require("fs");\nrequire ( `fs` );\nmyrequire("fs");\nrequire("timers/promises");\nrequire("node:zlib")'
    assert unavailable_requires(code, NODE_MODULES) == [("fs", 2)]


def test_globals_are_lazy_settable_and_reserved(compile: Any) -> None:
    code = """
        const before = Object.getOwnPropertyDescriptor(globalThis, "Buffer").get !== undefined;
        const B = Buffer;
        const after = Object.getOwnPropertyDescriptor(globalThis, "Buffer");
        globalThis.URL = "mine";
        return [before, typeof B, "value" in after, URL];
    """
    assert run(compile(code)) == [True, "function", True, "mine"]
    for name in ("require", "process", "Buffer", "URL", "TextEncoder", "crypto", "structuredClone", "atob"):
        assert name in RESERVED_NAMES


def test_the_library_is_loaded_once_per_context(compile: Any) -> None:
    sandbox = compile(
        "cache.n = (cache.n || 0) + 1; const c = require('crypto'); cache.c = cache.c || c; return cache.c === c;"
    )
    assert [run(sandbox), run(sandbox)] == [True, True]


def test_host_errors_are_javascript_errors_with_codes(compile: Any) -> None:
    code = """
        const out = [];
        for (const f of [
          () => require("crypto").createHash("whirlpool-9000"),
          () => require("crypto").createCipheriv("aes-256-gcm", Buffer.alloc(3), Buffer.alloc(12)).final(),
          () => require("crypto").createPublicKey("-----BEGIN PUBLIC KEY-----\\nnope\\n-----END PUBLIC KEY-----"),
          () => require("zlib").gunzipSync(Buffer.from("not gzip")),
          () => new URL("http://[::1"),
          () => require("crypto").pbkdf2Sync("a", "b", 2 ** 30, 64, "sha512"),
        ]) {
          try { f(); out.push("no error"); } catch (e) { out.push([e.constructor.name, e.code || null]); }
        }
        return out;
    """
    assert run(compile(code)) == [
        ["Error", "ERR_OSSL_EVP_UNSUPPORTED"],
        ["RangeError", "ERR_CRYPTO_INVALID_KEYLEN"],
        ["Error", "ERR_OSSL_UNSUPPORTED"],
        ["Error", "Z_DATA_ERROR"],
        ["TypeError", "ERR_INVALID_URL"],
        ["RangeError", "ERR_OUT_OF_RANGE"],
    ]


def test_network_modules_without_outbound_access_say_so(compile: Any) -> None:
    # A sandbox given no outbound access (see tests/sandboxes/js/test_fetch.py for one that has it).
    code = """
        const req = require("https").get("https://example.com");
        const https = await new Promise((resolve) => req.on("error", (e) => resolve([e.code, e.message])));
        const dns = await new Promise((resolve) => require("dns").lookup("example.com", (e) => resolve(e.code)));
        let fetched;
        try { await fetch("https://example.com"); } catch (e) { fetched = [e.name, e.cause.code]; }
        let resolved;
        try { await require("dns").promises.resolve4("example.com"); } catch (e) { resolved = e.code; }
        return [https, dns, fetched, resolved];
    """
    assert run(compile(code)) == [
        ["ERR_FNBOX_NO_NETWORK", "outbound network is not available in this fnbox"],
        "ERR_FNBOX_NO_NETWORK",
        ["TypeError", "ERR_FNBOX_NO_NETWORK"],
        "ENOTIMP",
    ]


def test_a_decompression_bomb_answers_a_clear_error(compile: Any) -> None:
    code = """
        const zlib = require("zlib");
        const member = zlib.gzipSync(Buffer.alloc(2 << 20));  // gzip members may follow one another
        const bomb = Buffer.concat([member, member, member, member]);
        try { zlib.gunzipSync(bomb); return "inflated"; } catch (e) { return [bomb.length < 20000, e.code, e.message]; }
    """
    small, code_, message = run(compile(code), Limits(timeout=5.0, memory=16 << 20))
    assert small and code_ == "ERR_BUFFER_TOO_LARGE"
    assert "decompression bomb" in message


def test_host_call_arguments_are_capped(compile: Any) -> None:
    code = 'return require("crypto").createHash("sha256").update("x".repeat(9 * 2 ** 20)).digest("hex");'
    error = fails(compile(code), MemoryLimitExceeded)
    assert "more than the 8388608 a call may carry" in error.message
    # Under that, a request may not take more than half the run's memory limit.
    code = 'return require("crypto").createHash("sha256").update(Buffer.alloc(3 << 20)).digest("hex");'
    with pytest.raises(MemoryLimitExceeded) as info:
        run(compile(code), Limits(timeout=5.0, memory=8 << 20))
    assert "more than a host call may carry (half the memory limit" in info.value.message


def test_process_is_a_small_stand_in(compile: Any) -> None:
    code = "return [process.env, process.platform, process.version, typeof process.nextTick, process.hrtime().length];"
    assert run(compile(code)) == [{}, "linux", "v20.0.0", "function", 2]
    error = fails(compile("process.exit(1);"))
    assert "not available in fnbox" in error.message


def test_key_derivation_that_would_outlast_the_run_is_refused_beforehand(compile: Any) -> None:
    code = """
        const started = Date.now();
        try { require("crypto").pbkdf2Sync("pw", "salt", 1000000, 64, "sha512"); return "derived"; }
        catch (e) { return [e.code, e.message, Date.now() - started < 100]; }
    """
    code_, message, fast = run(compile(code), Limits(timeout=0.5, memory=64 << 20))
    assert code_ == "ERR_OUT_OF_RANGE" and fast
    assert message.startswith("pbkdf2: about 1.50 s of work, more than the 0.")


def test_slow_compression_that_would_outlast_the_run_is_refused_beforehand(compile: Any) -> None:
    code = """
        const zlib = require("zlib");
        const big = Buffer.alloc(2 << 20, "abc");
        const fast = zlib.brotliCompressSync(big, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } }).length > 0;
        try { zlib.brotliCompressSync(big); return "compressed"; } catch (e) { return [fast, e.code]; }
    """
    assert run(compile(code), Limits(timeout=1.0, memory=64 << 20)) == [True, "ERR_OUT_OF_RANGE"]


def test_user_code_cannot_widen_the_modules(compile: Any) -> None:
    code = """
        $fnbox.allow(["url", "crypto", "fs", "codec"]);
        Array.prototype.indexOf = () => 0;
        Array.prototype.includes = () => true;
        const out = [];
        for (const name of ["crypto", "fs", "codec", "web", "url"]) {
          try { out.push(typeof require(name)); } catch (e) { out.push(e.code); }
        }
        return out;
    """
    assert run(compile(code, modules=("url",))) == ["MODULE_NOT_FOUND"] * 4 + ["object"]


def test_what_host_calls_answer_counts_against_the_memory_limit(compile: Any) -> None:
    sandbox = compile(
        'const keep = []; for (;;) keep.push(require("crypto").randomBytes(1 << 20)); return keep.length;'
    )
    with pytest.raises(MemoryLimitExceeded):
        run(sandbox, Limits(timeout=10.0, memory=32 << 20))
    code = 'const keep = []; for (;;) keep.push(require("zlib").gunzipSync(require("zlib").gzipSync(Buffer.alloc(4 << 20))));'
    with pytest.raises(MemoryLimitExceeded):
        run(compile(code), Limits(timeout=10.0, memory=32 << 20))

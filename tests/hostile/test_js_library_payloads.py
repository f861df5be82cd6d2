"""Payloads against the JavaScript library: require(), the lazy globals, and the host calls
behind crypto, zlib and URL (see fnbox/sandboxes/js/host.py), run against a real service.

Every one must be contained cheaply: refused with a clear error inside the run, within the
timeout, the worker and other tenants' caches untouched, and nothing but plain data ever
crossing between V8 and Python.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.hostile.conftest import SETTINGS, Service
from tests.hostile.test_js_payloads import NOTHING, SPY
from tests.processes import running_server

pytestmark = pytest.mark.slow  # a real server and worker processes

JS = "javascript"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service of its own: these payloads leave big V8 heaps in warm sandboxes, which
    would count against the worker RSS cap of the other hostile modules' shared service."""
    with running_server(tmp_path_factory.mktemp("library"), **SETTINGS) as server:
        service = Service(server.url)
        try:
            yield service
        finally:
            service.client.close()


def js(service: Service, code: str, *, expect: tuple[str, ...] = ("ok",), **options: Any) -> Any:
    outcome = service.attack(JS, code, expect=expect, keeps_neighbours_warm=True, **options)
    return outcome.body.get("result") if outcome.code == "ok" else outcome.body


# ---- prototype tricks -------------------------------------------------------------------


def test_poisoned_buffer_and_typed_array_prototypes_reach_python_as_bad_data_only(service: Service) -> None:
    result = js(
        service,
        """
        Uint8Array.prototype.toBase64 = function () { return "@@not base64@@" + "A".repeat(1e6); };
        Object.setPrototypeOf(Buffer.prototype, new Proxy({}, { get: () => () => { throw new Error("trap"); } }));
        const out = [];
        for (const f of [
          () => require("crypto").createHash("sha256").update("x").digest("hex"),
          () => require("zlib").gzipSync("abc"),
          () => Buffer.from("abc").toString("base64"),
        ]) {
          try { out.push(String(f())); } catch (e) { out.push(e.constructor.name + ": " + e.message.slice(0, 60)); }
        }
        return out;
        """,
    )
    assert result[0].startswith('TypeError: the "data" argument is not base64')
    assert result[1].startswith('TypeError: the "buffer" argument is not base64')


def test_a_getter_on_object_prototype_does_not_forge_a_host_answer(service: Service) -> None:
    result = js(
        service,
        """
        for (const key of ["v", "e", "t", "c"]) {
          Object.defineProperty(Object.prototype, key, { get() { return "forged " + key; }, configurable: true });
        }
        const hash = require("crypto").createHash("md5").update("abc").digest("hex");
        let error = null;
        try { require("crypto").createPublicKey("not a key"); } catch (e) { error = [e.constructor.name, e.code]; }
        return [hash, error];
        """,
    )
    assert result == ["900150983cd24fb0d6963f7d28e17f72", ["Error", "ERR_OSSL_UNSUPPORTED"]]


def test_module_objects_replaced_by_one_workspace_stay_its_own(service: Service) -> None:
    js(
        service,
        """
        const crypto = require("crypto");
        crypto.createHash = () => { throw new Error("poisoned"); };
        Object.freeze(require("buffer").Buffer.prototype);
        globalThis.Buffer = null;
        return "poisoned";
        """,
    )
    result = js(service, 'return [require("crypto").createHash("sha1").update("x").digest("hex"), typeof Buffer];')
    assert result == ["11f6ad8ec52a2984abaafd7c3b516503785c2072", "function"]


# ---- stack traces and species around host calls -------------------------------------------


def test_prepare_stack_trace_around_a_host_error_hands_out_nothing(service: Service) -> None:
    result = js(
        service,
        SPY
        + """
        const frames = [];
        let seen = "hook never called";
        Error.prepareStackTrace = (error, sites) => {
          for (const site of sites) {
            frames.push([typeof site.getThis(), typeof site.getFunction()]);
            if (typeof site.getFunction() === "function") seen = spy(site.getFunction().constructor);
          }
          seen = seen === "hook never called" ? spy(sites.constructor.constructor) : seen;
          return "hooked";
        };
        let stack;
        try { require("crypto").createCipheriv("aes-256-gcm", Buffer.alloc(32), Buffer.alloc(12)).setAuthTag(Buffer.alloc(1)).final(); }
        catch (error) { stack = error.stack; }
        try { new URL("::nope"); } catch (error) { stack += "," + error.stack; }
        return { seen, stack, frames };
        """,
    )
    assert result["seen"] == NOTHING and result["stack"] == "hooked,hooked", result


def test_species_games_cannot_make_the_library_allocate_or_escape(service: Service) -> None:
    result = js(
        service,
        SPY
        + """
        let seen = "no species call";
        class Evil extends Uint8Array {
          constructor(...args) { seen = spy(new.target.constructor.constructor); super(...args); }
          static get [Symbol.species]() { return Evil; }
        }
        Object.defineProperty(Uint8Array, Symbol.species, { get: () => Evil, configurable: true });
        Object.defineProperty(Buffer, Symbol.species, { get: () => Evil, configurable: true });
        const b = Buffer.from("hello world");
        const parts = [b.subarray(0, 5).toString(), b.slice(6).toString()];
        const digest = await crypto.subtle.digest("SHA-256", b);
        return { seen, parts, digest: new Uint8Array(digest).length };
        """,
    )
    # As on Node, a species replaced on Buffer makes subarray() answer the user's class.
    assert result["parts"] == ["104,101,108,108,111", "119,111,114,108,100"] and result["digest"] == 32
    assert result["seen"] in ("no species call", NOTHING)


# ---- huge and hostile arguments -----------------------------------------------------------


def test_huge_arguments_answer_clear_errors_fast(service: Service) -> None:
    result = js(
        service,
        """
        const crypto = require("crypto");
        const out = [];
        for (const f of [
          () => crypto.randomBytes(2 ** 31 - 1),
          () => crypto.pbkdf2Sync("pw", "salt", 2 ** 31 - 1, 64, "sha512"),
          () => crypto.scryptSync("pw", "salt", 64, { N: 2 ** 20, r: 8, p: 16 }),
          () => new URL("http://example.com/" + "x".repeat(1.1 * 2 ** 20)),
          () => Buffer.alloc(2 ** 40),
          () => crypto.createHmac("sha256", "k").update("x".repeat(6 << 20)).digest(),
        ]) {
          const started = Date.now();
          try { f(); out.push("no error"); } catch (e) { out.push([e.constructor.name, Date.now() - started < 500]); }
        }
        return out;
        """,
    )
    assert [entry[0] for entry in result] == ["RangeError"] * 6
    assert all(fast for _, fast in result)


def test_hostile_to_string_and_value_of_run_in_the_function_only(service: Service) -> None:
    result = js(
        service,
        """
        const crypto = require("crypto");
        const spin = { valueOf() { for (;;); }, toString() { for (;;); } };
        const out = [];
        for (const f of [
          () => crypto.randomBytes(spin),
          () => Buffer.alloc(spin),
          () => crypto.createHmac("sha256", spin),
          () => crypto.pbkdf2Sync("a", "b", spin, 32, "sha256"),
          () => crypto.createHash(spin),
          () => require("zlib").gzipSync(spin),
        ]) {
          try { f(); out.push("no error"); } catch (e) { out.push(e.constructor.name); }
        }
        return out;
        """,
    )
    assert result == ["TypeError"] * 6
    outcome = service.attack(
        JS, "new URL({ toString() { for (;;); } });", expect=("TimeoutExceeded",), keeps_neighbours_warm=True
    )
    assert "ran for longer than" in outcome.body["message"]


def test_a_loop_of_host_calls_stops_at_the_timeout(service: Service) -> None:
    outcome = service.attack(
        JS,
        'const c = require("crypto"); for (;;) c.createHash("sha256").update("x").digest();',
        expect=("TimeoutExceeded",),
    )
    assert outcome.elapsed < service.timeout_ms / 1000 + 1


# ---- decompression bombs ------------------------------------------------------------------


def test_zlib_bombs_answer_an_error_not_gigabytes(service: Service) -> None:
    bomb = base64.b64encode(zlib.compress(bytes(256 << 20), 9)).decode()  # 256 MB of zeros in about 250 KB
    result = js(
        service,
        """
        const zlib = require("zlib");
        const out = [];
        const gz = zlib.gzipSync(Buffer.alloc(1 << 20));
        const brotli = zlib.brotliCompressSync(Buffer.alloc(1 << 20), { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } });
        for (const f of [
          () => zlib.inflateSync(Buffer.from(bomb, "base64")),
          () => zlib.gunzipSync(Buffer.concat(new Array(200).fill(gz))),
          () => zlib.brotliDecompressSync(brotli, { maxOutputLength: 1000 }),
        ]) {
          try { f(); out.push("no error"); } catch (e) { out.push([e.code, e.message.includes("decompression bomb")]); }
        }
        return out;
        """,
        parameters={"bomb": bomb},
        function={"parameters": {"bomb": {"type": "string"}}},
    )
    assert result == [["ERR_BUFFER_TOO_LARGE", True]] * 3

"""fetch, Node's http/https clients and dns.lookup in JavaScript functions, against local targets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from typing import Any

import pytest

from fnbox.sandboxes.base import FunctionSource, Limits
from fnbox.sandboxes.errors import FunctionError, TimeoutExceeded
from fnbox.sandboxes.js.hostnet import JsNetwork
from fnbox.sandboxes.js.sandbox import compile_workspace
from fnbox.sandboxes.network import EgressSettings
from tests.targets import http_target

LIMITS = Limits(timeout=5.0, memory=64 << 20)
LOCAL = EgressSettings(policy="127.0.0.1").build()


def echo(handler):
    seen = {
        "method": handler.command,
        "path": handler.path,
        "body": handler.body.decode(errors="replace"),
        "headers": {k.lower(): v for k, v in handler.headers.items()},
    }
    return 200, {"Content-Type": "application/json"}, json.dumps(seen).encode()


ROUTES = {
    "/echo": echo,
    "/to-echo": lambda h: (302, {"Location": "/echo"}, b""),
    "/slow": lambda h: (time.sleep(0.3), (200, {}, b"late"))[1],
    "/big": lambda h: (200, {"Content-Encoding": "gzip"}, gzip.compress(b"x" * (3 << 20))),
    "/missing": lambda h: (404, {"Content-Type": "text/plain"}, b"nothing here"),
}


@pytest.fixture(scope="module")
def base():
    with http_target(ROUTES) as url:
        yield url


def run(code: str, base: str, *, egress: Any = LOCAL, limits: Limits = LIMITS):
    sandbox = compile_workspace([FunctionSource("f", code)])
    try:
        return asyncio.run(sandbox.run("f", {"base": base}, limits, outbound=egress))
    finally:
        sandbox.close()


def test_fetch_sends_json_and_reads_json_with_a_debug_log_entry(base):
    outcome = run(
        """
        const r = await fetch(params.base + "/echo?q=1", {method: "POST", body: JSON.stringify({a: 1}),
            headers: {"Content-Type": "application/json", "X-Key": "k"}});
        const seen = await r.json();
        return [r.status, r.ok, r.statusText, r.headers.get("Content-Type"), seen.method, seen.path, seen.body,
                seen.headers["x-key"], r.bodyUsed];
        """,
        base,
    )
    assert outcome.result == [200, True, "OK", "application/json", "POST", "/echo?q=1", '{"a":1}', "k", True]
    [entry] = outcome.logs
    assert entry["level"] == "debug" and entry["message"].startswith(f"POST {base}/echo?q=1 -> 200 in ")


def test_fetch_bodies_of_every_kind(base):
    outcome = run(
        """
        const post = async (body) => (await (await fetch(params.base + "/echo", {method: "POST", body})).json());
        const form = new FormData();
        form.append("a", "1");
        form.append("f", new Blob(["xyz"], {type: "text/plain"}), "f.txt");
        const multipart = await post(form);
        const search = await post(new URLSearchParams({q: "a b"}));
        const blob = await post(new Blob(["blob"], {type: "application/x-blob"}));
        const bytes = await post(new Uint8Array([104, 105]));
        const request = await (await fetch(new Request(params.base + "/echo", {method: "PUT", body: "req"}))).json();
        return [multipart.headers["content-type"].split(";")[0], multipart.body.includes('name="f"; filename="f.txt"'),
                search.body, search.headers["content-type"], blob.body, blob.headers["content-type"], bytes.body,
                request.method, request.body];
        """,
        base,
    )
    assert outcome.result == [
        "multipart/form-data",
        True,
        "q=a+b",
        "application/x-www-form-urlencoded;charset=UTF-8",
        "blob",
        "application/x-blob",
        "hi",
        "PUT",
        "req",
    ]


def test_fetch_redirects_follow_manual_and_error(base):
    outcome = run(
        """
        const followed = await fetch(params.base + "/to-echo");
        const manual = await fetch(params.base + "/to-echo", {redirect: "manual"});
        let refused;
        try { await fetch(params.base + "/to-echo", {redirect: "error"}); } catch (e) { refused = e.name; }
        return [followed.status, followed.redirected, followed.url.endsWith("/echo"), manual.status,
                manual.headers.get("location"), refused];
        """,
        base,
    )
    assert outcome.result == [200, True, True, 302, "/echo", "TypeError"]


def test_abort_signals_and_timeouts_stop_a_fetch(base):
    outcome = run(
        """
        const controller = new AbortController();
        const pending = fetch(params.base + "/slow", {signal: controller.signal});
        setTimeout(() => controller.abort(), 20);
        let aborted, timedOut;
        try { await pending; } catch (e) { aborted = e.name; }
        try { await fetch(params.base + "/slow", {signal: AbortSignal.timeout(20)}); } catch (e) { timedOut = e.name; }
        return [aborted, timedOut];
        """,
        base,
    )
    assert outcome.result == ["AbortError", "TimeoutError"]


def test_a_body_streams_in_pieces_and_as_a_whole(base):
    outcome = run(
        """
        const streamed = await fetch(params.base + "/big");
        let pieces = 0, bytes = 0;
        for await (const piece of streamed.body) { pieces++; bytes += piece.length; }
        const whole = await (await fetch(params.base + "/big")).arrayBuffer();
        const text = await (await fetch(params.base + "/missing")).text();
        return [pieces > 1, bytes, whole.byteLength, text];
        """,
        base,
    )
    assert outcome.result == [True, 3 << 20, 3 << 20, "nothing here"]


def test_the_policy_refuses_with_a_clear_error(base):
    code = "try { await fetch(params.base + '/echo'); } catch (e) { return [e.name, e.cause.code, e.message]; }"
    name, code_, message = run(code, base, egress=EgressSettings().build()).result
    assert (name, code_) == ("TypeError", "ERR_FNBOX_EGRESS")
    assert "127.0.0.1" in message and "not a public address" in message


def test_http_request_with_the_callback_and_event_surface(base):
    outcome = run(
        """
        const http = require("http");
        const u = new URL(params.base);
        const answer = await new Promise((resolve, reject) => {
          const req = http.request({hostname: u.hostname, port: u.port, path: "/echo?x=1", method: "POST",
                                    headers: {"Content-Type": "text/plain"}, auth: "u:p"}, (res) => {
            const chunks = [];
            res.on("data", (c) => chunks.push(c));
            res.on("end", () => resolve([res.statusCode, res.statusMessage, res.headers["content-type"],
                                         JSON.parse(Buffer.concat(chunks).toString())]));
            res.on("error", reject);
          });
          req.on("error", reject);
          req.setTimeout(5000, () => req.destroy(new Error("timeout")));
          req.write("hel");
          req.end("lo");
        });
        const redirect = await new Promise((resolve, reject) =>
          http.get(params.base + "/to-echo", (res) => { res.resume(); resolve(res.statusCode); }).on("error", reject));
        const timedOut = await new Promise((resolve) => {
          const req = http.get(params.base + "/slow");
          req.setTimeout(20, () => { req.destroy(); resolve("timeout"); });
        });
        const seen = answer[3];
        return [answer[0], answer[1], answer[2], seen.body, seen.path, seen.headers.authorization, redirect, timedOut];
        """,
        base,
    )
    assert outcome.result == [200, "OK", "application/json", "hello", "/echo?x=1", "Basic dTpw", 302, "timeout"]


def test_an_axios_style_node_adapter_call(base):
    # What axios's node adapter does: request(options, callback), 'socket', setTimeout,
    # end(data), then the response piped as a stream with setEncoding and 'aborted'.
    outcome = run(
        """
        const https = require("https"), http = require("http");
        const transport = params.base.startsWith("https:") ? https : http;
        const { URL } = require("url");
        const parsed = new URL(params.base + "/echo");
        const options = { path: parsed.pathname + parsed.search, method: "PUT", headers: {
            "Accept": "application/json, text/plain, */*", "Content-Type": "application/json",
            "User-Agent": "axios/1.7.0", "Content-Length": 11, "Accept-Encoding": "gzip, compress, deflate, br" },
          agents: { http: undefined, https: undefined }, auth: undefined, family: undefined,
          beforeRedirect: () => {}, hostname: parsed.hostname, port: parsed.port, protocol: parsed.protocol };
        const data = await new Promise((resolve, reject) => {
          const req = transport.request(options, function handleResponse(res) {
            if (req.destroyed) return;
            const stream = res;
            const chunks = [];
            stream.on("data", (chunk) => chunks.push(chunk));
            stream.on("aborted", () => reject(new Error("aborted")));
            stream.on("error", reject);
            stream.on("end", () => resolve({ status: res.statusCode, headers: res.headers,
                                             data: JSON.parse(Buffer.concat(chunks).toString("utf8")) }));
          });
          req.on("error", reject);
          req.on("socket", (socket) => socket.setKeepAlive(true, 60000));
          req.setTimeout(5000, () => req.abort());
          req.end(Buffer.from('{"a":"b"}'));
        });
        return [data.status, data.data.method, data.data.body, data.data.headers["user-agent"]];
        """,
        base,
    )
    assert outcome.result == [200, "PUT", '{"a":"b"}', "axios/1.7.0"]


def test_dns_lookup_answers_under_the_policy(base):
    outcome = run(
        """
        const dns = require("dns");
        const one = await dns.promises.lookup("localhost", {family: 4});
        const all = await require("dns/promises").lookup("127.0.0.1", {all: true});
        const callback = await new Promise((resolve) => dns.lookup("127.0.0.1", (e, address, family) => resolve([e, address, family])));
        let refused;
        try { await dns.promises.lookup("10.1.2.3"); } catch (e) { refused = e.code; }
        return [one, all, callback, refused];
        """,
        base,
    )
    assert outcome.result == [
        {"address": "127.0.0.1", "family": 4},
        [{"address": "127.0.0.1", "family": 4}],
        [None, "127.0.0.1", 4],
        "ERR_FNBOX_EGRESS",
    ]


def test_waiting_counts_against_the_run_timeout_and_a_request_left_open_is_cancelled(base):
    with pytest.raises(TimeoutExceeded):
        run("await fetch(params.base + '/slow');", base, limits=Limits(timeout=0.1, memory=64 << 20))
    outcome = run("fetch(params.base + '/slow').catch(() => {}); return 'left open';", base)
    assert outcome.result == "left open"


def test_a_request_cut_at_the_run_deadline_wakes_none_of_the_runs_code(base):
    """Woken, the code could catch the error and answer past its deadline, before its timeout ends it."""

    async def woken_by(timeout: float | None) -> list[int]:
        woken: list[int] = []
        network = JsNetwork(asyncio.get_running_loop(), LOCAL, time.perf_counter() + 0.1, woken.append)

        def fetch(holder):
            return network.fetch(holder, "GET", base + "/slow", [], b"", "follow", timeout)

        try:
            await asyncio.to_thread(network.start, fetch)  # from the isolate's thread, as host calls are
            await asyncio.sleep(0.25)
            return woken
        finally:
            await network.end()

    assert asyncio.run(woken_by(None)) == []
    assert asyncio.run(woken_by(0.02)) == [1]  # its own timeout: the code catches it and goes on


def test_the_request_cap_holds_per_run(base):
    egress = EgressSettings(policy="127.0.0.1", max_requests=2).build()
    code = "for (let i = 0; i < 3; i++) await fetch(params.base + '/echo');"
    with pytest.raises(FunctionError, match="at most 2 requests"):
        run(code, base, egress=egress)


def test_a_request_body_bigger_than_a_host_call_goes_in_pieces_within_the_cap(base):
    outcome = run(
        """
        const body = new Uint8Array(8 * 1024 * 1024).fill(97);
        const seen = await (await fetch(params.base + "/echo", {method: "POST", body})).json();
        let refused;
        try { await fetch(params.base + "/echo", {method: "POST", body: new Uint8Array(11 * 1024 * 1024)}); }
        catch (e) { refused = e.message; }
        return [seen.body.length, refused];
        """,
        base,
        limits=Limits(timeout=10.0, memory=128 << 20),
    )
    assert outcome.result[0] == 8 * 1024 * 1024
    assert "the most is 10485760" in outcome.result[1]


def test_response_bodies_left_unread_may_not_pass_the_run_memory_limit(base):
    # They live in the worker, outside the isolate's heap: a run that fetches and never reads
    # is stopped at its memory limit, one that reads (or drops) goes on.
    code = """
        const kept = [];
        try {
          for (let i = 0; i < 8; i++) kept.push(await fetch(params.base + "/big"));
        } catch (e) { return [kept.length, e.cause.message.includes("memory limit")]; }
        return [kept.length, false];
    """
    assert run(code, base, limits=Limits(timeout=10.0, memory=8 << 20)).result == [2, True]
    code = "for (let i = 0; i < 8; i++) await (await fetch(params.base + '/big')).body.cancel(); return 'dropped';"
    assert run(code, base, limits=Limits(timeout=10.0, memory=8 << 20)).result == "dropped"

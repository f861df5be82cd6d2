"""Attacks on the guarded client of outbound requests: SSRF by every road, and resource abuse."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from ipaddress import ip_address

import pytest

from fnbox.sandboxes.egress import EgressPolicy
from fnbox.sandboxes.outbound import OutboundError, OutboundLimits, OutboundSession
from tests.targets import http_target


def attempt(policy, url, *, seconds=5.0, limits=None, **request):
    """Make one request in a fresh session; return the OutboundError it raised (the test fails if none)."""

    async def main():
        client = OutboundSession(policy, limits or OutboundLimits(), deadline=time.monotonic() + seconds)
        try:
            with pytest.raises(OutboundError) as caught:
                await client.request(request.pop("method", "GET"), url, **request)
            return str(caught.value)
        finally:
            await client.aclose()

    return asyncio.run(main())


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "2130706433", "0x7f.1", "127.1", "[::ffff:127.0.0.1]", "localhost", "0.0.0.0", "[::1]"]
)
def test_loopback_in_any_spelling_is_refused_by_default(host):
    assert "egress policy" in attempt(EgressPolicy.parse("public"), f"http://{host}:9/")


@pytest.mark.parametrize(
    "target", ["http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://10.0.0.1/"]
)
def test_a_redirect_to_metadata_or_a_private_address_is_refused_on_its_hop(target):
    routes = {"/go": lambda h: (302, {"Location": target}, b"")}
    with http_target(routes) as base:
        assert "egress policy" in attempt(EgressPolicy.parse("127.0.0.1"), f"{base}/go")


def test_fnbox_own_port_cannot_be_reached_even_when_loopback_is_allowed():
    routes = {"/x": lambda h: (200, {}, b"secret")}
    with http_target(routes) as base:
        port = int(base.rsplit(":", 1)[1])
        policy = EgressPolicy.parse("127.0.0.0/8", own={(ip_address("127.0.0.1"), port)})
        assert "this fnbox service itself" in attempt(policy, f"{base}/x")
        assert "this fnbox service itself" in attempt(policy, f"http://[::ffff:127.0.0.1]:{port}/x")


@pytest.mark.parametrize(
    "url, match",
    [
        ("http://127.0.0.1:9/a\r\nHost: evil", "white space, a line break"),
        ("http://127.0.0.1:9/" + "a" * 20000, "at most 16384 characters"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://127.0.0.1:9/", "only http and https"),
        ("http://user:pass@127.0.0.1:9/", "credentials in a URL"),
        ("http://127.0.0.1:99999/", "not a valid URL"),
        ("http://[fe80::1%25eth0]/", "egress policy"),
    ],
)
def test_malformed_and_smuggling_urls_are_refused(url, match):
    assert match in attempt(EgressPolicy.parse("127.0.0.1"), url)


@pytest.mark.parametrize(
    "headers, match",
    [
        ([("X-A", "1\r\nX-Injected: 1")], "line break"),
        ([("Host", "169.254.169.254")], "set by fnbox"),
        ([("Transfer-Encoding", "chunked")], "set by fnbox"),
        ([("Bad Name", "x")], "not a valid header name"),
    ],
)
def test_header_injection_and_host_games_are_refused(headers, match):
    assert match in attempt(EgressPolicy.parse("127.0.0.1"), "http://127.0.0.1:9/", headers=headers)


def test_connect_and_trace_are_refused():
    assert "not allowed" in attempt(EgressPolicy.parse("127.0.0.1"), "http://127.0.0.1:9/", method="CONNECT")


def test_thousands_of_requests_stop_at_the_per_run_count():
    routes = {"/": lambda h: (200, {}, b"ok")}
    with http_target(routes) as base:

        async def main():
            client = OutboundSession(EgressPolicy.parse("127.0.0.1"), OutboundLimits(), deadline=time.monotonic() + 30)
            try:
                results = await asyncio.gather(
                    *(client.request("GET", f"{base}/") for _ in range(2000)), return_exceptions=True
                )
            finally:
                await client.aclose()
            return results

        results = asyncio.run(main())
    assert sum(1 for r in results if not isinstance(r, Exception)) == 50
    assert all("at most 50 requests" in str(r) for r in results if isinstance(r, Exception))


@contextlib.contextmanager
def _raw_server(handler):
    """A bare TCP server on 127.0.0.1 whose connections `handler(conn, stop)` serves; yields its port.

    The serving thread owns the listener and closes it itself, so leaving the block never closes
    a socket under a pending accept()."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve():
        with listener:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                threading.Thread(target=handler, args=(conn, stop), daemon=True).start()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        server.join()


def test_a_slow_drip_response_ends_at_the_run_deadline():
    def drip(conn, stop):
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        while not stop.is_set():
            try:
                conn.sendall(b"x")
            except OSError:
                break
            time.sleep(0.05)
        conn.close()

    with _raw_server(drip) as port:
        started = time.monotonic()
        message = attempt(EgressPolicy.parse("127.0.0.1"), f"http://127.0.0.1:{port}/", seconds=1)
        assert "timed out" in message and time.monotonic() - started < 3


def test_huge_response_headers_fail_cleanly():
    def huge(conn, stop):
        conn.recv(65536)
        try:
            conn.sendall(b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"a" * (4 << 20) + b"\r\n\r\n")
        except OSError:
            pass
        conn.close()

    with _raw_server(huge) as port:
        assert "failed" in attempt(EgressPolicy.parse("127.0.0.1"), f"http://127.0.0.1:{port}/")

"""Malformed and tricky run requests at the connection, where plain run requests skip uvicorn's cycle.

Each payload is sent raw to a real server. Every answer must be a well-formed HTTP answer
with the status listed (never a 500), carry no header the request tried to put in it, and
leave the server answering healthy runs.
"""

import re
import socket
import time

import httpx2 as httpx
import pytest

from tests.processes import running_server

pytestmark = pytest.mark.slow  # a real server and worker processes

SETTINGS = {
    "HTTP_REQUEST_TIMEOUT": "1",
    "HTTP_KEEP_ALIVE_TIMEOUT": "0.5",  # each payload's connection closes soon after its answers
    "FUNCTIONS_WORKERS": "1",
    "REQUEST_MAX_SIZE": "4kb",
}
#: What an echoed request id may hold (anything else is replaced by a new one).
SAFE_ID = re.compile(rb"[A-Za-z0-9._:/+=-]{1,128}")
DOCUMENT = {
    "functions": {
        "hello": {"code": 'return "Hello " + name;', "parameters": {"name": {"type": "string"}}},
        "big": {"code": 'return "x".repeat(3 * 1024 * 1024);'},
        "slow": {"language": "python", "code": "import time\ntime.sleep(0.3)\nreturn 'slow'"},
    }
}
RUN = b"/v2/functions/ws/run/hello"
BODY = b'{"parameters": {"name": "x"}}'


def request(head: bytes, body: bytes = BODY) -> bytes:
    return b"POST " + RUN + b" HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n" + body


# (name, raw bytes, statuses allowed)
PAYLOADS = [
    ("plain", request(b"Content-Length: %d\r\n" % len(BODY)), {200}),
    (
        "request id with control bytes",
        request(b"X-Request-Id: a\x01b\r\nContent-Length: %d\r\n" % len(BODY)),
        {200, 400},
    ),
    (
        "request id that looks like a header",
        request(b"X-Request-Id: a: b\r\nContent-Length: %d\r\n" % len(BODY)),
        {200},
    ),
    ("two lengths that differ", request(b"Content-Length: %d\r\nContent-Length: 3\r\n" % len(BODY)), {400}),
    ("a signed length", request(b"Content-Length: +%d\r\n" % len(BODY)), {200, 400}),
    ("a length with spaces", request(b"Content-Length:  %d \r\n" % len(BODY)), {200, 400}),
    ("a length past the limit", request(b"Content-Length: 99999\r\n"), {413}),
    ("a length past 64 bits", request(b"Content-Length: 99999999999999999999999\r\n"), {400, 413}),
    ("a length longer than the body", request(b"Content-Length: %d\r\n" % (len(BODY) + 10)), {408}),
    ("a body longer than its length", request(b"Content-Length: 5\r\n", BODY + b"\r\n\r\n"), {400}),
    ("no length", request(b""), {400}),
    (
        "a name of 64 characters",
        b"POST /v2/functions/" + b"w" * 64 + b"/run/hello HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        {404},
    ),
    (
        "a name of 65 characters",
        b"POST /v2/functions/" + b"w" * 65 + b"/run/hello HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        {400, 404},
    ),
    ("upper-case route", b"POST /V2/functions/ws/run/hello HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", {404}),
    ("absolute URL", b"POST http://x" + RUN + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", {200, 400, 404}),
    ("no host", b"POST " + RUN + b" HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY, {200, 400}),
    ("a NUL in the body", request(b"Content-Length: 3\r\n", b"{\x00}"), {400}),
    ("keep-alive asked", request(b"Connection: Keep-Alive\r\nContent-Length: %d\r\n" % len(BODY)), {200}),
    ("close asked", request(b"Connection: close\r\nContent-Length: %d\r\n" % len(BODY)), {200}),
    (
        "an upgrade to HTTP/2",
        request(
            b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Length: %d\r\n"
            % len(BODY)
        ),
        {200, 400},
    ),
    ("a big answer", b"POST /v2/functions/ws/run/big HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", {200}),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("direct"), **SETTINGS) as server:
        assert httpx.put(f"{server.url}/v2/functions/ws", json=DOCUMENT).status_code == 200
        yield server


def answers(url: str, data: bytes) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """Every answer the server gives to `data` before it closes the connection or goes quiet."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(1 << 20):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    found = []
    while received:
        head, separator, rest = received.partition(b"\r\n\r\n")
        assert separator, received[:200]
        status, *lines = head.split(b"\r\n")
        assert status.startswith(b"HTTP/1.1 "), status
        headers = dict(line.split(b": ", 1) for line in lines)
        length = int(headers.get(b"content-length", b"0"))
        found.append((int(status.split()[1]), headers, rest[:length]))
        received = rest[length:]
    return found


@pytest.mark.parametrize(("name", "data", "allowed"), PAYLOADS, ids=[name for name, _, _ in PAYLOADS])
def test_a_tricky_run_request_gets_a_clean_answer(server, name, data, allowed):
    got = answers(server.url, data)
    assert got, "no answer"
    status, headers, body = got[0]
    assert status in allowed, (status, body[:300])
    assert SAFE_ID.fullmatch(headers.get(b"x-request-id", b"none")), headers
    assert not any(re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", value) for value in headers.values()), headers
    if status == 200 and name == "a big answer":
        assert len(body) == int(headers[b"content-length"]) > 3 * 1024 * 1024
    healthy = httpx.post(f"{server.url}/v2/functions/ws/run/hello", json={"parameters": {"name": "y"}}, timeout=10)
    assert healthy.json()["result"] == "Hello y"


def test_pipelined_runs_behind_a_slow_one_keep_their_order(server):
    slow = b"POST /v2/functions/ws/run/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    fast = request(b"Content-Length: %d\r\n" % len(BODY))
    started = time.monotonic()
    got = answers(server.url, slow + fast * 20 + slow + fast)
    results = [body.split(b'"result":')[1].split(b",")[0] for _, _, body in got]
    assert results == [b'"slow"'] + [b'"Hello x"'] * 20 + [b'"slow"', b'"Hello x"']
    assert all(status == 200 for status, _, _ in got) and time.monotonic() - started < 10

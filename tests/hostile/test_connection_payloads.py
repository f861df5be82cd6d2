"""Clients that try to keep connections open once answered, or to flood one with requests.

Idle keep-alive connections are closed by a sweep of the server's connections rather than
a timer each: these check that no way of idling escapes it, that a flood of pipelined
requests is answered in full and in order, and that healthy clients are served meanwhile.
"""

import socket
import time

import httpx2 as httpx
import pytest

from tests.processes import running_server
from tests.server.test_connections import HELLO, connect, read_all

pytestmark = pytest.mark.slow  # a real server and worker processes

KEEP_ALIVE = 1.0
SETTINGS = {"HTTP_REQUEST_TIMEOUT": "2", "HTTP_KEEP_ALIVE_TIMEOUT": str(KEEP_ALIVE), "FUNCTIONS_WORKERS": "1"}
HEALTH = b"GET /sys/healthcheck HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("connections"), **SETTINGS) as server:
        assert httpx.put(f"{server.url}/v2/functions/ws", json=HELLO).status_code == 200
        yield server


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes `sock` within `seconds` (what it answers meanwhile is read and dropped)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_hundreds_of_answered_connections_left_idle_are_all_closed(server):
    socks = [connect(server.url) for _ in range(300)]
    try:
        for sock in socks:
            sock.sendall(HEALTH)
        for sock in socks:
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        answer = httpx.post(f"{server.url}/v2/functions/ws/run/pyhello", json={}, timeout=10)
        assert answer.json()["result"] == "hi"  # served while they idle
        deadline = time.monotonic() + KEEP_ALIVE + 3
        assert all(closed_within(sock, max(0.1, deadline - time.monotonic())) for sock in socks)
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize(
    "drip",
    [b"\r\n", b"\n", b"\r\n\r\n"],
    ids=["CRLF", "LF", "two blank lines"],
)
def test_blank_lines_after_an_answer_do_not_keep_a_connection_open(server, drip):
    with connect(server.url) as sock:
        sock.sendall(HEALTH)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        sock.settimeout(0.2)
        closed = False
        while not closed and time.monotonic() - started < KEEP_ALIVE + 5:
            try:
                sock.sendall(drip)
                closed = sock.recv(65536) == b""
            except TimeoutError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                closed = True
        assert closed and time.monotonic() - started < KEEP_ALIVE + 3


def test_a_flood_of_pipelined_runs_is_answered_in_full_and_in_order(server):
    count = 200
    requests = b"".join(
        b"POST /v2/functions/ws/run/%s HTTP/1.1\r\nHost: x\r\nX-Request-Id: r%d\r\nContent-Length: 2\r\n\r\n{}"
        % (b"pyhello" if index % 2 else b"hello", index)
        for index in range(count)
    )
    with connect(server.url) as sock:
        sock.sendall(requests)
        answers = read_all(sock)  # all of them, then closed once idle
    assert answers.count(b"HTTP/1.1 200 ") == count
    ids = [int(line.split(b"r")[-1]) for line in answers.split(b"\r\n") if line.startswith(b"x-request-id: ")]
    assert ids == list(range(count))


def test_a_connection_answered_once_then_sending_half_a_request_gets_408(server):
    with connect(server.url) as sock:
        sock.sendall(HEALTH)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /sys/healthcheck HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        assert read_all(sock).startswith(b"HTTP/1.1 408 ")

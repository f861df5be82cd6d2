"""The HTTP server sheds abusive connections: huge headers, slow requests, idle sockets by the thousand."""

import resource
import socket
import sys
import time

import httpx2 as httpx
import pytest

from tests.processes import running_server

pytestmark = pytest.mark.slow  # a real server, worker processes or a subprocess

HELLO = {
    "functions": {
        "hello": {"code": "return 'hi';"},
        "pyhello": {"language": "python", "code": "return 'hi'"},
    }
}
FAST = {"HTTP_REQUEST_TIMEOUT": "1", "HTTP_KEEP_ALIVE_TIMEOUT": "1", "FUNCTIONS_WORKERS": "1"}


def connect(url):
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def read_all(sock):
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, TimeoutError):
        pass
    return b"".join(chunks)


def test_headers_over_the_cap_answer_431_and_close(tmp_path):
    with running_server(tmp_path, HTTP_MAX_HEADER_SIZE="16kb", **FAST) as server:
        with connect(server.url) as sock:
            sock.sendall(b"GET /sys/healthcheck HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (64 * 1024))
            try:
                sock.sendall(b"a" * (4 * 1024 * 1024))  # the server may have closed already
            except OSError:
                pass
            assert read_all(sock).startswith(b"HTTP/1.1 431 ")
        with connect(server.url) as sock:
            many = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
            sock.sendall(b"GET /sys/healthcheck HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
            assert read_all(sock).startswith(b"HTTP/1.1 431 ")
        assert httpx.get(f"{server.url}/sys/healthcheck", headers={"X-Fine": "a" * 8000}).status_code == 200


def test_answers_carry_a_date_and_name_no_server_software(tmp_path):
    with running_server(tmp_path, **FAST) as server, httpx.Client(timeout=30) as client:
        assert client.put(f"{server.url}/v2/functions/ws", json=HELLO).status_code == 200
        for answer in (
            client.get(f"{server.url}/sys/healthcheck"),
            client.post(f"{server.url}/v2/functions/ws/run/pyhello", json={}),
            client.post(f"{server.url}/v2/functions/ws/run/missing", json={}),
        ):
            assert "server" not in answer.headers, answer.headers
            assert answer.headers["date"].endswith(" GMT")


def test_big_bodies_on_a_keep_alive_connection_are_not_taken_for_headers(tmp_path):
    with running_server(tmp_path, HTTP_MAX_HEADER_SIZE="16kb", **FAST) as server, httpx.Client(timeout=30) as client:
        for index in range(4):
            document = {"functions": {"f": {"code": "return 1;", "description": "d" * 900_000}}}
            assert client.put(f"{server.url}/v2/functions/big{index}", json=document).status_code == 200


def test_a_request_that_does_not_arrive_in_time_answers_408_and_an_idle_socket_is_closed(tmp_path):
    with running_server(tmp_path, **FAST) as server:
        with connect(server.url) as slow, connect(server.url) as idle:
            slow.sendall(b"GET /sys/healthcheck HTTP/1.1\r\nHost: x\r\n")
            time.sleep(0.4)
            slow.sendall(b"X-Drip: 1\r\n")  # one header at a time, never the end
            assert read_all(slow).startswith(b"HTTP/1.1 408 ")
            assert read_all(idle) == b""  # closed without a word: it never sent a request
        with connect(server.url) as sock:
            sock.sendall(b'POST /v2/functions/w HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"fun')
            assert read_all(sock).startswith(b"HTTP/1.1 408 ")  # a body that stops coming


def test_an_idle_keep_alive_connection_is_closed(tmp_path):
    with running_server(tmp_path, **FAST) as server, connect(server.url) as sock:
        sock.sendall(b"GET /sys/healthcheck HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 200 ") and time.monotonic() - started < 10


def test_pipelined_requests_are_answered_in_order_and_the_connection_then_idles_out(tmp_path):
    with running_server(tmp_path, **FAST) as server:
        httpx.put(f"{server.url}/v2/functions/ws", json=HELLO)
        run = b"POST /v2/functions/ws/run/%s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
        with connect(server.url) as sock:
            sock.sendall(run % b"pyhello" + b"GET /sys/healthcheck HTTP/1.1\r\nHost: x\r\n\r\n" + run % b"hello")
            idle = time.monotonic()
            answers = read_all(sock)
            assert time.monotonic() - idle < 5  # closed once idle, not at the socket's own timeout
        assert answers.count(b"HTTP/1.1 200 ") == 3, answers
        assert answers.index(b'"result":"hi"') < answers.index(b'"status"') < answers.rindex(b'"result":"hi"')


def test_timeouts_count_from_the_latest_request_of_a_busy_connection(tmp_path):
    """Requests on one connection for 2.5 s, past both 1 s timeouts: never cut; then idle: closed within them."""
    with running_server(tmp_path, **FAST) as server, connect(server.url) as sock:
        sock.settimeout(5)
        started = time.monotonic()
        while time.monotonic() - started < 2.5:
            time.sleep(0.3)  # idle for less than the keep-alive timeout
            sock.sendall(b"GET /sys/healthcheck HTTP/1.1\r\nHost: x\r\n")
            time.sleep(0.3)  # a request arriving slowly, within its own timeout
            sock.sendall(b"\r\n")
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 "), answer
        idle = time.monotonic()
        assert read_all(sock) == b"" and time.monotonic() - idle < 3


@pytest.mark.parametrize(
    ("limit", "settings"),
    [("1024:1024", {}), (None, {"HTTP_MAX_CONNECTIONS": "50"})],
    ids=["1100 idle under a limit of 1024 open files", "120 idle past HTTP_MAX_CONNECTIONS=50"],
)
def test_idle_connections_past_the_cap_never_lock_healthy_clients_out(tmp_path, limit, settings):
    command = (
        ("prlimit", f"--nofile={limit}", sys.executable, "-m", "fnbox") if limit else (sys.executable, "-m", "fnbox")
    )
    count = 1100 if limit else 120
    with running_server(
        tmp_path, command=command, HTTP_REQUEST_TIMEOUT="60", FUNCTIONS_WORKERS="1", **settings
    ) as server:
        httpx.post(f"{server.url}/v2/functions/w", json=HELLO)
        idle = [connect(server.url) for _ in range(count)]
        try:
            time.sleep(0.5)
            for function in ("hello", "pyhello"):
                answer = httpx.post(f"{server.url}/v2/functions/w/run/{function}", json={}, timeout=10)
                assert answer.json()["result"] == "hi"
            assert read_all(idle[0]) == b""  # the oldest idle connections were pushed out
        finally:
            for sock in idle:
                sock.close()


def test_the_server_raises_its_open_files_limit_to_the_hard_limit(tmp_path):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    command = ("prlimit", f"--nofile=1024:{hard}", sys.executable, "-m", "fnbox")
    with running_server(tmp_path, command=command, FUNCTIONS_WORKERS="0") as server:
        with open(f"/proc/{server.process.pid}/limits") as limits:
            line = next(line for line in limits if line.startswith("Max open files"))
        assert line.split()[3:5] == [str(hard), str(hard)]

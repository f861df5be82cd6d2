"""Run requests that skip uvicorn's ASGI cycle answer exactly as those that go through it.

Two real servers (uvicorn with fnbox's protocol, in this process, sandboxes in process too)
get the same requests in the same order over a socket: one as they are, the other with
`X-Forwarded-Proto: http` added, which sends every request through uvicorn's cycle and its
proxy-headers middleware without changing what the request means (the client is loopback,
a trusted proxy, and the scheme stays http). Their answers must agree, and the first server
must have served its plain run requests directly.
"""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import uvicorn

from fnbox.server import direct
from fnbox.server.app import create_app
from fnbox.server.connections import connection_limits, uvicorn_options
from fnbox.server.settings import load_settings
from tests.processes import free_port
from tests.server.test_runpath import ADMIN, CASES, RUN, VOLATILE, normalised, set_up

pytestmark = pytest.mark.slow  # real servers

FORWARDED = {"x-forwarded-proto": "http"}


@contextmanager
def serving(directory: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A real server in a thread of this process; its URL and the tokens of test_runpath's table."""
    environ = {
        "FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH": str(directory),
        "FUNCTIONS_WORKERS": "0",
        "FNBOX_ADMIN_TOKEN": ADMIN,
        "REQUEST_MAX_SIZE": "2kb",
        "PORT": str(free_port()),
    }
    settings = load_settings(environ=environ)
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=settings.port,
        log_config=None,
        log_level="warning",
        access_log=False,  # as `fnbox serve` by default: with an access log every request takes uvicorn's cycle
        **uvicorn_options(connection_limits(settings)),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{settings.port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    with httpx.Client(base_url=url, timeout=30) as client:
        tokens = set_up(client)
    try:
        yield url, tokens
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def started(monkeypatch):
    """The paths of the requests each direct cycle served, in order."""
    paths: list[str] = []
    start = direct.DirectCycle.start

    def counted(cycle: direct.DirectCycle) -> None:
        paths.append(cycle.scope["path"])
        start(cycle)

    monkeypatch.setattr(direct.DirectCycle, "start", counted)
    return paths


def exchange(url: str, request: bytes) -> bytes:
    """One request on a connection of its own; the raw answer (the connection is closed after it)."""
    host, port = url.removeprefix("http://").split(":")
    headless = request.startswith(b"HEAD ")  # its answer's length is that of a body it does not carry
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer or (not headless and len(answer) < _length(answer)):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def _length(answer: bytes) -> int:
    """How long the whole answer is, as far as its head says."""
    final = answer.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n")
    head, ended, _ = final.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:] if ended else ():
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(answer) - len(final) + len(head) + 4 + int(value)
    return len(answer) + 1  # no length yet: read on


def raw(method: str, path: str, body: bytes | None, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def parsed(answer: bytes, sent: dict[str, str]) -> dict[str, Any]:
    answer = answer.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n")  # to `Expect: 100-continue`
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = [line.split(b": ", 1) for line in lines]
    return {
        "status": status,
        "header names": [name for name, _ in headers],
        "headers": {name: value for name, value in headers if name.decode() not in VOLATILE},
        "body": normalised(body),
        "request id echoed": dict(headers).get(b"x-request-id", b"").decode() == sent.get("x-request-id"),
    }


def until_closed(url: str, body: bytes) -> bytes:
    """What the server sends for one run request before it closes the connection (a kept one would time out)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=3) as sock:
        sock.sendall(raw("POST", f"{RUN}/hello", body, {"authorization": f"Bearer {ADMIN}"}))
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def ask(url: str, tokens: dict[str, str], case: tuple[Any, ...], extra: dict[str, str]) -> dict[str, Any]:
    method, path, body, headers, token = case
    sent = {**headers, **extra}
    if token is not None:
        sent["authorization"] = f"Bearer {tokens[token]}"
    return parsed(exchange(url, raw(method, path, body, sent)), sent)


def test_direct_runs_answer_every_request_of_the_table_as_uvicorns_cycle_does(tmp_path, started):
    with (
        serving(tmp_path / "direct") as (direct_url, direct_tokens),
        serving(tmp_path / "cycle") as (cycle_url, cycle_tokens),
    ):
        for case in CASES:
            before = len(started)
            plain = ask(direct_url, direct_tokens, case, {})
            went_direct = len(started) > before
            assert ask(cycle_url, cycle_tokens, case, FORWARDED) == plain, case
            method, path, body, *_ = case
            plain_path = "%" not in path and "?" not in path and path.count("/") == 5 and not path.endswith("/")
            small = body is not None and len(body) <= 2048  # REQUEST_MAX_SIZE: a bigger one is refused early
            assert went_direct == (method == "POST" and plain_path and small), case


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"expect": "100-continue"}, b'{"parameters": {"name": "x"}}'),
        ({"x-forwarded-for": "10.1.2.3"}, b'{"parameters": {"name": "x"}}'),
        ({"connection": "close"}, b'{"parameters": {"name": "x"}}'),
    ],
    ids=["expect", "forwarded-for", "connection close"],
)
def test_requests_whose_headers_uvicorn_acts_on_go_through_its_cycle(tmp_path, started, headers, body):
    with serving(tmp_path) as (url, tokens):
        sent = {**headers, "authorization": f"Bearer {tokens['run']}"}
        answer = parsed(exchange(url, raw("POST", f"{RUN}/hello", body, sent)), sent)
    assert answer["status"] == b"HTTP/1.1 200 OK" and answer["body"]["result"] == "Hello x"
    assert started == []


def test_chunked_bodies_and_http_1_0_go_through_uvicorns_cycle(tmp_path, started):
    with serving(tmp_path) as (url, tokens):
        auth = f"Authorization: Bearer {tokens['run']}\r\n".encode()
        body = b'{"parameters": {"name": "x"}}'
        chunked = b"POST %s/hello HTTP/1.1\r\nHost: t\r\n%sTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (
            RUN.encode(),
            auth,
            len(body),
            body,
        )
        old = b"POST %s/hello HTTP/1.0\r\nHost: t\r\n%sContent-Length: %d\r\n\r\n%s" % (
            RUN.encode(),
            auth,
            len(body),
            body,
        )
        for request in (chunked, old):
            answer = exchange(url, request)
            assert answer.split(b"\r\n")[0].endswith(b"200 OK") and b'"Hello x"' in answer, answer
    assert started == []


def test_a_client_gone_before_its_answer_leaves_the_server_serving(tmp_path, started):
    with serving(tmp_path) as (url, tokens):
        host, port = url.removeprefix("http://").split(":")
        slow = b'{"parameters": {}}'
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}) as client:
            document = {
                "functions": {"slow": {"code": "const end = Date.now() + 300; while (Date.now() < end) {} return 1;"}}
            }
            assert client.put("/v2/functions/w2", json=document).status_code == 200
        request = raw("POST", "/v2/functions/w2/run/slow", slow, {"authorization": f"Bearer {ADMIN}"})
        for _ in range(5):
            sock = socket.create_connection((host, int(port)))
            sock.sendall(request)
            sock.close()  # before the answer
        answer = parsed(
            exchange(
                url, raw("POST", f"{RUN}/hello", b'{"parameters": {"name": "y"}}', {"authorization": f"Bearer {ADMIN}"})
            ),
            {},
        )
        assert answer["body"]["result"] == "Hello y"
    assert len(started) == 6


def test_an_unexpected_failure_answers_500_and_closes_as_uvicorns_cycle_does(tmp_path, started, monkeypatch):
    from fnbox.workspaces.runtime import Runtime

    async def broken(self, *args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(Runtime, "run", broken)
    case = ("POST", f"{RUN}/hello", b'{"parameters": {"name": "x"}}', {}, "admin")
    with serving(tmp_path / "direct") as (direct_url, tokens), serving(tmp_path / "cycle") as (cycle_url, _):
        plain = ask(direct_url, tokens, case, {})
        assert plain == ask(cycle_url, tokens, case, FORWARDED)
        received = until_closed(direct_url, case[2])
    assert plain["status"] == b"HTTP/1.1 500 Internal Server Error" and plain["body"]["error"] == "InternalError"
    assert received.startswith(b"HTTP/1.1 500 ")
    assert started == [f"{RUN}/hello", f"{RUN}/hello"]


@pytest.mark.parametrize("length", [[(b"content-length", b"5")], []], ids=["wrong", "missing"])
def test_an_answer_whose_length_is_wrong_or_missing_answers_500_and_closes(tmp_path, started, monkeypatch, length):
    """A bug of the lean path must not reach the client as a broken answer on a kept connection."""
    from starlette.responses import Response

    async def unmeasured(*args, **kwargs):
        response = Response(b'"x"')
        response.raw_headers = [*length, (b"content-type", b"application/json")]
        return response

    monkeypatch.setattr("fnbox.server.runpath.answer_run", unmeasured)
    with serving(tmp_path) as (url, _):
        received = until_closed(url, b"{}")
    assert received.startswith(b"HTTP/1.1 500 ") and b'"x"' not in received
    assert started == [f"{RUN}/hello"]


def test_a_run_request_that_asks_to_keep_its_connection_alive_goes_direct(tmp_path, started):
    """As Node's HTTP clients ask, where HTTP/1.1 keeps it alive anyway."""
    with serving(tmp_path) as (url, tokens):
        sent = {"connection": "keep-alive", "authorization": f"Bearer {tokens['run']}"}
        answer = parsed(exchange(url, raw("POST", f"{RUN}/hello", b'{"parameters": {"name": "x"}}', sent)), sent)
    assert answer["status"] == b"HTTP/1.1 200 OK" and answer["body"]["result"] == "Hello x"
    assert started == [f"{RUN}/hello"]

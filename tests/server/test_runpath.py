"""The lean path of runs answers exactly as the general middleware and routing do."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from fnbox import logs
from fnbox.server.access import PRINCIPAL_KEY
from fnbox.server.app import create_app
from fnbox.server.observe import route_template
from fnbox.server.settings import load_settings

ADMIN = "admin-token-0123456789abcdef"
DOC = {
    "functions": {
        "hello": {"code": 'return "Hello " + name;', "parameters": {"name": {"type": "string"}}},
        "py": {
            "language": "python",
            "code": "print('n is', n)\nreturn n * 2",
            "parameters": {"n": {"type": "integer", "default": 1}},
        },
        "boom": {"code": "console.warn('about to');\nthrow new Error('boom');"},
        "any": {"code": "return 1;"},
    }
}
RUN = "/v2/functions/w/run"
#: Header values that differ from one call to the next, compared by presence only.
VOLATILE = {"date", "x-request-id", "x-execution-id", "location", "content-length"}
BIG = b'{"parameters": {"name": "' + b"x" * 3000 + b'"}}'
DEEP = b'{"parameters": {"name": ' + b"[" * 70 + b"]" * 70 + b"}}"

# (method, path, body, headers, token): token is a key of the tokens made by `serve`, or None.
CASES: list[tuple[str, str, bytes | None, dict[str, str], str | None]] = [
    ("POST", f"{RUN}/hello", b'{"parameters": {"name": "world"}}', {}, "admin"),
    ("POST", f"{RUN}/py", b'{"parameters": {"n": 21}}', {}, "run"),
    ("POST", f"{RUN}/py", b"", {}, "run"),
    ("POST", f"{RUN}/py", b"  \n", {}, "run"),
    ("POST", f"{RUN}/any", b"{}", {"x-request-id": "my-request-1"}, "run"),
    ("POST", f"{RUN}/any", b"{}", {"x-request-id": "not a safe id!"}, "run"),
    ("POST", f"{RUN}/boom", b"{}", {}, "run"),
    ("POST", f"{RUN}/hello", b"{", {}, "run"),
    ("POST", f"{RUN}/hello", b"[1, 2]", {}, "run"),
    ("POST", f"{RUN}/hello", b'"text"', {}, "run"),
    ("POST", f"{RUN}/hello", DEEP, {}, "run"),
    ("POST", f"{RUN}/hello", b'{"parameters": {"name": "\\ud800"}}', {}, "run"),
    ("POST", f"{RUN}/hello", b'{"parameters": {"name": NaN}}', {}, "run"),
    ("POST", f"{RUN}/hello", BIG, {}, "run"),
    ("POST", f"{RUN}/hello", BIG, {}, None),
    ("POST", f"{RUN}/hello", b'{"parameters": {"name": 5}}', {}, "run"),
    ("POST", f"{RUN}/hello", b'{"parameters": [1]}', {}, "run"),
    ("POST", f"{RUN}/hello", b'{"parameters": {}}', {}, "run"),
    ("POST", f"{RUN}/hello", b'{"parameters": {"name": "x"}, "id": "mine"}', {}, "run"),
    ("POST", f"{RUN}/nope", b"{}", {}, "run"),
    ("POST", "/v2/functions/nowhere/run/hello", b"{}", {}, "admin"),
    ("POST", "/v2/functions/Bad%20Name/run/hello", b"{}", {}, "admin"),
    ("POST", f"{RUN}/hel%6Co", b'{"parameters": {"name": "encoded"}}', {}, "run"),
    ("POST", "/v2/functions/w%2Fx/run/hello", b"{}", {}, "admin"),
    ("POST", f"{RUN}/hello/", b'{"parameters": {"name": "slash"}}', {}, "run"),
    ("POST", f"{RUN}/", b"{}", {}, "run"),
    ("POST", f"{RUN}/hello/", b'{"parameters": {"name": "slash"}}', {}, "admin"),
    ("GET", f"{RUN}/hello", None, {}, "run"),
    ("GET", f"{RUN}/hello", None, {}, "admin"),
    ("HEAD", f"{RUN}/hello", None, {}, "admin"),
    ("HEAD", f"{RUN}/hello", None, {}, "run"),
    ("PUT", f"{RUN}/hello", b"{}", {}, "admin"),
    ("POST", f"{RUN}/hello", b'{"parameters": {"name": "world"}}', {}, None),
    ("POST", f"{RUN}/hello", b'{"parameters": {"name": "world"}}', {}, "wrong"),
    ("POST", f"{RUN}/hello", b'{"parameters": {"name": "world"}}', {"authorization": "Basic abc"}, None),
    ("POST", f"{RUN}/hello", b'{"parameters": {"name": "world"}}', {}, "read"),
    ("POST", f"{RUN}/hello", b'{"parameters": {"name": "world"}}', {}, "elsewhere"),
    ("POST", f"{RUN}/hello", b'{"parameters": {"name": "a"}}', {"prefer": "respond-async"}, "run"),
    ("POST", f"{RUN}/hello", b'{"parameters": {"name": "a"}}', {"prefer": "wait=5, Respond-Async; x=1"}, "run"),
    ("POST", f"{RUN}/hello", b'{"parameters": {"name": "a"}}', {"prefer": "return=minimal"}, "run"),
    ("POST", f"{RUN}/hello?async=true", b'{"parameters": {"name": "a"}}', {}, "run"),
    ("POST", f"{RUN}/hello?async=", b'{"parameters": {"name": "a"}}', {}, "run"),
    ("POST", f"{RUN}/hello?async=no&async=yes", b'{"parameters": {"name": "a"}}', {}, "run"),
    ("POST", f"{RUN}/hello?async=maybe", b'{"parameters": {"name": "a"}}', {}, "run"),
    ("POST", f"{RUN}/hello?other=1", b'{"parameters": {"name": "a"}}', {}, "run"),
    ("POST", f"{RUN}/hello?async=1", b'{"parameters": {"name": "a"}, "id": "given-1"}', {}, "run"),
    ("POST", f"{RUN}/hello?async=1", b'{"parameters": {"name": "a"}, "id": "given-1"}', {}, "run"),
    ("POST", f"{RUN}/hello?async=1", b'{"parameters": {"name": "a"}, "id": "../x"}', {}, "run"),
    ("POST", f"{RUN}/hello?async=1", b'{"parameters": {"name": 5}}', {}, "run"),
    ("POST", f"{RUN}/hello?async=1", b"[]", {}, "run"),
    ("POST", f"{RUN}/nope?async=1", b"{}", {}, "run"),
]


Served = tuple[TestClient, dict[str, str]]


def serve(tmp_path: Path, name: str, *, lean_run: bool) -> Served:
    environ = {
        "FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH": str(tmp_path / name),
        "FUNCTIONS_WORKERS": "0",
        "FNBOX_ADMIN_TOKEN": ADMIN,
        "REQUEST_MAX_SIZE": "2kb",
    }
    client = TestClient(create_app(load_settings(environ=environ), lean_run=lean_run), raise_server_exceptions=False)
    client.__enter__()
    return client, set_up(client)


def set_up(client: Any) -> dict[str, str]:
    """Save DOC and make the tokens CASES name, through `client` (Starlette's TestClient or httpx's): those tokens."""
    auth = {"Authorization": f"Bearer {ADMIN}"}
    assert client.put("/v2/functions/w", json=DOC, headers=auth).status_code == 200

    def made(spec: dict[str, Any]) -> str:
        return str(client.post("/v2/tokens", json=spec, headers=auth).json()["token"])

    return {
        "admin": ADMIN,
        "run": made({"scopes": ["run"], "workspaces": ["w"]}),
        "read": made({"scopes": ["read"]}),
        "elsewhere": made({"scopes": ["run"], "workspaces": ["other-*"]}),
        "wrong": "fnbox_not-a-token",
    }


@contextmanager
def general_and_lean(directory: Path) -> Iterator[tuple[Served, Served]]:
    """Two apps alike but for the path of runs: (general, lean)."""
    general = serve(directory, "general", lean_run=False)
    lean = serve(directory, "lean", lean_run=True)
    try:
        yield general, lean
    finally:
        for client, _ in (general, lean):
            client.__exit__(None, None, None)


@pytest.fixture
def both(tmp_path):
    with general_and_lean(tmp_path) as apps:
        yield apps


def answer(served: Served, method: str, path: str, body, headers, token) -> dict[str, Any]:
    client, tokens = served
    sent = dict(headers)
    if token is not None:
        sent["authorization"] = f"Bearer {tokens[token]}"
    response = client.request(method, path, content=body, headers=sent, follow_redirects=False)
    names = [name for name, _ in response.headers.raw]
    fixed = {name.decode(): value.decode() for name, value in response.headers.raw if name.decode() not in VOLATILE}
    return {
        "status": response.status_code,
        "header names": names,
        "headers": fixed,
        "body": normalised(response.content),
        "request id echoed": response.headers.get("x-request-id") == headers.get("x-request-id"),
    }


def normalised(content: bytes) -> Any:
    """The JSON answer with what differs per call (durations, generated ids) blanked out."""
    try:
        value = json.loads(content)
    except ValueError:
        return content

    def blank(item: Any) -> Any:
        if isinstance(item, dict):
            return {
                key: "…"
                if key in ("duration", "execution", "time") or (key == "id" and item.get("status"))
                else blank(v)
                for key, v in item.items()
            }
        if isinstance(item, list):
            return [blank(v) for v in item]
        return item

    return blank(value)


def test_the_lean_path_answers_every_request_of_the_table_as_the_general_one(both):
    general, lean = both
    for case in CASES:
        assert answer(lean, *case) == answer(general, *case), case


def test_an_execution_id_given_is_kept_on_both_paths(both):
    for client, tokens in both:
        accepted = client.post(
            f"{RUN}/hello",
            json={"parameters": {"name": "x"}, "id": "kept-id"},
            headers={"Prefer": "respond-async", "Authorization": f"Bearer {tokens['run']}"},
        )
        assert accepted.status_code == 202 and accepted.json()["id"] == "kept-id"
        assert accepted.headers["location"] == "/v2/executions/kept-id"


def test_a_recorded_run_names_its_record_on_both_paths(both):
    for client, tokens in both:
        auth = {"Authorization": f"Bearer {tokens['run']}"}
        ran = client.post(f"{RUN}/boom", json={}, headers=auth)
        record = client.get(f"/v2/executions/{ran.headers['x-execution-id']}", headers=auth).json()
        assert record["status"] == "failed" and record["error"]["error"] == "FunctionError"


def test_failed_attempts_on_runs_count_towards_the_limit_of_every_route(both):
    _, (client, tokens) = both
    for _ in range(10):
        assert client.post(f"{RUN}/hello", json={}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    refused = client.get("/v2/functions", headers={"Authorization": f"Bearer {ADMIN}"})
    assert refused.status_code == 401 and "too many failed attempts" in refused.json()["message"]
    assert "retry-after" in refused.headers


def drive(
    client: TestClient, token: str, messages: list[dict[str, Any]], sent: list[dict[str, Any]]
) -> tuple[int, dict[str, Any]]:
    """POST to the hello run as ASGI with these request messages, the answer into `sent`.

    Returns how many messages were left unread, and the scope as the app left it.
    """
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"{RUN}/hello",
        "raw_path": f"{RUN}/hello".encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"authorization", f"Bearer {token}".encode()), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    assert client.portal is not None
    client.portal.call(client.app, scope, receive, send)
    return len(pending), scope


def test_a_chunked_body_over_the_limit_is_refused_as_it_arrives(both):
    """Driven as ASGI, so that the body comes in several messages, as a chunked upload does."""
    chunks = [b'{"parameters": {"name": "', b"x" * 1500, b"x" * 1500, b'"}}']
    messages = [{"type": "http.request", "body": chunk, "more_body": chunk != chunks[-1]} for chunk in chunks]
    answers = []
    for client, tokens in both:
        sent: list[dict[str, Any]] = []
        unread, _ = drive(client, tokens["run"], messages, sent)
        assert unread == 1  # refused before the rest was read
        answers.append((sent[0]["status"], json.loads(sent[1]["body"])))
    assert answers[0] == answers[1] and answers[0][0] == 413


def test_log_lines_and_metrics_see_the_same_request_on_both_paths(both):
    """What JSON log lines and the HTTP metrics read from a request's scope is there on the lean path too."""
    seen = []
    for client, tokens in both:
        sent: list[dict[str, Any]] = []
        body = [{"type": "http.request", "body": b'{"parameters": {"name": "x"}}'}]
        _, scope = drive(client, tokens["run"], body, sent)
        token = logs.CONTEXT.set({"request_id": "r", "scope": scope})
        try:
            fields = logs.context_fields()
        finally:
            logs.CONTEXT.reset(token)
        principal = scope[PRINCIPAL_KEY]
        seen.append((sent[0]["status"], route_template(scope), fields, principal.scopes, principal.workspaces))
    assert seen[0] == seen[1]
    assert seen[0][:3] == (
        200,
        "/v2/functions/{workspace}/run/{function}",
        {"request_id": "r", "workspace": "w", "function": "hello"},
    )


def test_an_unexpected_failure_answers_500_and_is_raised_on_both_paths(both):
    """A client that leaves before its body came: Starlette raises, and both paths answer alike."""
    answers = []
    for client, tokens in both:
        sent: list[dict[str, Any]] = []
        with pytest.raises(Exception) as raised:
            drive(client, tokens["run"], [{"type": "http.disconnect"}], sent)
        answers.append(
            (type(raised.value).__name__, sent[0]["status"], sent[0]["headers"], json.loads(sent[1]["body"]))
        )
    assert answers[0] == answers[1] and answers[0][:2] == ("ClientDisconnect", 500)


def test_a_body_in_several_messages_is_read_whole_on_both_paths(both):
    """A body that comes in pieces (with an empty one among them) is joined before it is parsed."""
    chunks = [b'{"parameters": ', b"", b'{"name": "pie', b'ces"}}']
    messages = [{"type": "http.request", "body": chunk, "more_body": index < 3} for index, chunk in enumerate(chunks)]
    answers = []
    for client, tokens in both:
        sent: list[dict[str, Any]] = []
        unread, _ = drive(client, tokens["run"], messages, sent)
        answers.append((unread, sent[0]["status"], json.loads(sent[1]["body"])["result"]))
    assert answers == [(0, 200, "Hello pieces")] * 2

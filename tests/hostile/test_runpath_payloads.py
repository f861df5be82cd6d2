"""Attacks on the lean path of runs: whatever a request tries, it gets the general path's answer and nothing more.

Each payload goes to two apps, one serving runs through the lean path and one through
Starlette's middleware and routing, and the answers must agree (generated ids and times
aside); none may be a 500, and none may run a function of a workspace its token does not cover.
"""

import pytest

from tests.server.test_runpath import answer, general_and_lean

NAME = b'{"parameters": {"name": "x"}}'
# (method, path, body, headers, token)
PAYLOADS = [
    ("POST", "/v2/functions/w/run/hello%00", NAME, {}, "run"),
    ("POST", "/v2/functions/w%00/run/hello", NAME, {}, "admin"),
    ("POST", "/v2/functions/" + "w" * 5000 + "/run/hello", NAME, {}, "admin"),
    ("POST", "/v2/functions/w/run/" + "h" * 5000, NAME, {}, "run"),
    ("POST", "/v2/functions/w/run/..%2Fhello", NAME, {}, "run"),
    ("POST", "/v2/functions/../functions/w/run/hello", NAME, {}, "run"),
    ("POST", "/v2/functions/w/./run/hello", NAME, {}, "run"),
    ("POST", "/v2/functions/w//run/hello", NAME, {}, "run"),
    ("POST", "//v2/functions/w/run/hello", NAME, {}, "run"),
    ("POST", "/V2/functions/w/run/hello", NAME, {}, "run"),
    ("POST", "/v2/functions/w/run/hello;x=1", NAME, {}, "run"),
    ("POST", "/v2/functions/other/run/hello", NAME, {}, "run"),
    ("POST", "/v2/functions/%77/run/hello", NAME, {}, "elsewhere"),
    ("POST", "/v2/functions/w/run/hello", NAME, {"content-length": "-1"}, "run"),
    ("POST", "/v2/functions/w/run/hello", NAME, {"content-length": "+99999999"}, "run"),
    ("POST", "/v2/functions/w/run/hello", NAME, {"content-length": "99999999999999999999999"}, "run"),
    ("POST", "/v2/functions/w/run/hello", NAME, {"prefer": "respond-async" * 1000}, "run"),
    ("POST", "/v2/functions/w/run/hello", NAME, {"prefer": ",,;;,respond-async;;"}, "run"),
    ("POST", "/v2/functions/w/run/hello?async=%00", NAME, {}, "run"),
    ("POST", "/v2/functions/w/run/hello?async=tru%C3%A9", NAME, {}, "run"),
    ("POST", "/v2/functions/w/run/hello?async", NAME, {}, "run"),
    ("POST", "/v2/functions/w/run/hello?%61sync=1", NAME, {}, "run"),
    ("POST", "/v2/functions/w/run/hello", NAME, {"authorization": "Bearer " + "a" * 10000}, None),
    ("POST", "/v2/functions/w/run/hello", NAME, {"authorization": "bearer  \t "}, None),
    ("POST", "/v2/functions/w/run/hello", NAME, {"x-request-id": "a\u00e9b".encode()}, "run"),
    ("POST", "/v2/functions/w/run/hello", NAME, {"x-request-id": "x" * 129}, "run"),
    ("POST", "/v2/functions/w/run/hello", b"\xff\xfe{}", {}, "run"),
    ("POST", "/v2/functions/w/run/hello", b"\xef\xbb\xbf{}", {}, "run"),
    ("POST", "/v2/functions/w/run/hello", b'{"parameters": {"name": "x"}}' + b" " * 1800, {}, "run"),
    ("POST", "/v2/functions/w/run/hello", b'{"parameters": {"name": "x"}, "parameters": 1}', {}, "run"),
    ("POST", "/v2/functions/w/run/hello", b'{"parameters": {"name": 1e400}}', {}, "run"),
    ("POST", "/v2/functions/w/run/hello", b'{"parameters": {"name": 123456789012345678901234567890}}', {}, "run"),
    ("POST", "/v2/functions/w/run/hello", b'{"parameters": {"name": "x"}, "id": null}', {}, "run"),
    ("POST", "/v2/functions/w/run/hello?async=1", b'{"parameters": {"name": "x"}, "id": ""}', {}, "run"),
    ("POST", "/v2/functions/w/run/hello?async=1", b'{"parameters": {"name": "x"}, "id": {"a": 1}}', {}, "run"),
    ("POST", "/v2/functions/w/run/hello", b"[" * 500 + b"]" * 500, {}, "run"),
    ("POST", "/v2/functions/w/run/hello", b'{"a": "' + b"[" * 1500 + b'"}', {}, "run"),
    ("POST", "/v2/functions/w/run/__proto__", b"{}", {}, "run"),
    ("POST", "/v2/functions/w/run/constructor", b"{}", {}, "run"),
]


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """One pair for all payloads: each gets the same requests in the same order, failed attempts included."""
    with general_and_lean(tmp_path_factory.mktemp("runpath")) as apps:
        yield apps


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_a_hostile_run_request_gets_the_general_answer_and_never_a_500(both, payload):
    general, lean = both
    answered = answer(lean, *payload)
    assert answered == answer(general, *payload)
    assert answered["status"] < 500
    if payload[4] in ("elsewhere", None) or "/other/" in payload[1]:
        assert answered["status"] in (400, 401, 403, 404, 405, 413)

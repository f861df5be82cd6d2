"""SSRF and resource abuse through real functions of both languages on a real server.

Two servers, one worker per language each: one with the default policy (`public`), for
the address forms that must be refused before anything is connected to; one that allows
127.0.0.1 (where the local targets live), for redirects, fnbox's own port, header games
and resource abuse. Each payload is a function that tries and returns what it got.
"""

from __future__ import annotations

import gzip
import select
import threading
import time
from collections.abc import Iterator

import httpx2 as httpx
import pytest

from tests.processes import RunningServer, running_server
from tests.targets import http_target

pytestmark = pytest.mark.slow

#: A function of each language that requests `url` with `headers` and answers what happened:
#: ["ok", status, body] or ["error", message].
PROBES = {
    "javascript": """
        try {
          const r = await fetch(params.url, {headers: params.headers || {}, method: params.method || "GET"});
          return ["ok", r.status, (await r.text()).slice(0, 200)];
        } catch (e) {
          return ["error", String(e.message) + " " + String(e.cause ? e.cause.message : "")];
        }
    """,
    "python": """
import requests
try:
    r = requests.request(params.get('method') or 'GET', params['url'], headers=params.get('headers') or {})
    return ['ok', r.status_code, r.text[:200]]
except Exception as e:
    return ['error', str(e)]
""",
}
MANY = {
    "javascript": """
        let made = 0;
        try {
          for (let i = 0; i < 5000; i++) { await fetch(params.url); made++; }
        } catch (e) { return [made, e.cause ? e.cause.message : e.message]; }
        return [made, "no error"];
    """,
    "python": """
import requests
made = 0
try:
    for i in range(5000):
        requests.get(params['url'])
        made += 1
except Exception as e:
    return [made, str(e)]
return [made, 'no error']
""",
}
LEAVE_OPEN = {
    # Started, then the run ends while it waits (a request not yet started when the run ends never starts).
    "javascript": "fetch(params.url).catch(() => {});\nawait new Promise((r) => setTimeout(r, 200));\nreturn 'returned';",
    "python": "import requests\nrequests.get(params['url'])\nreturn 'never'",
}
LANGUAGES = ("javascript", "python")


def deploy(server: RunningServer, name: str, code: str, language: str, timeout: int = 10000) -> None:
    document = {"functions": {"f": {"language": language, "code": code, "timeout": timeout}}}
    httpx.put(f"{server.url}/v2/functions/{name}", json=document).raise_for_status()


def call(server: RunningServer, name: str, **parameters) -> httpx.Response:
    return httpx.post(f"{server.url}/v2/functions/{name}/run/f", json={"parameters": parameters}, timeout=60)


@pytest.fixture(scope="module")
def public(tmp_path_factory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("public"), FUNCTIONS_WORKERS="1") as server:
        for language in LANGUAGES:
            deploy(server, f"probe_{language}", PROBES[language], language)
        yield server


class Target:
    """Local routes for the abuse payloads, and what they saw."""

    def __init__(self) -> None:
        self.hits = 0
        self.closed = threading.Event()
        self.lock = threading.Lock()

    def count(self, handler):
        with self.lock:
            self.hits += 1
        return 200, {}, b"ok"

    def hold(self, handler):
        # Answers nothing; notes when the client goes away (the run ended and closed its connection).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            readable, _, _ = select.select([handler.connection], [], [], 0.05)
            if readable and not handler.connection.recv(1, 2):  # MSG_PEEK: b"" once the peer closed
                self.closed.set()
                break
        return 200, {}, b"late"

    @staticmethod
    def drip(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "1000000")
        handler.end_headers()
        try:
            for _ in range(600):
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass
        handler.close_connection = True
        return None

    @staticmethod
    def headers(handler):
        return (
            200,
            {"X-Seen-Host": handler.headers.get("Host", ""), "Content-Type": "text/plain"},
            handler.headers.get("Host", "").encode(),
        )


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Iterator[tuple[RunningServer, str, Target]]:
    target = Target()
    bomb = gzip.compress(b"\0" * (64 << 20))
    routes = {
        "/count": target.count,
        "/hold": target.hold,
        "/host": Target.headers,
        "/drip": Target.drip,
        "/bomb": lambda h: (200, {"Content-Encoding": "gzip"}, bomb),
        "/to-metadata": lambda h: (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
        "/to-private": lambda h: (307, {"Location": "http://10.0.0.1/admin"}, b""),
        "/huge-headers": lambda h: (200, {f"X-H{i}": "a" * 8000 for i in range(200)}, b""),
    }
    with (
        http_target(routes) as base,
        running_server(tmp_path_factory.mktemp("local"), FUNCTIONS_WORKERS="1", FUNCTIONS_EGRESS="127.0.0.1") as server,
    ):
        for language in LANGUAGES:
            deploy(server, f"probe_{language}", PROBES[language], language)
            deploy(server, f"many_{language}", MANY[language], language)
            deploy(server, f"open_{language}", LEAVE_OPEN[language], language, timeout=1000)
            deploy(server, f"drip_{language}", PROBES[language], language, timeout=1000)
        yield server, base, target


def refusal(answer: httpx.Response) -> str:
    assert answer.status_code == 200, answer.text
    outcome, *rest = answer.json()["result"]
    assert outcome == "error", rest
    return str(rest[0])


SSRF = [
    "http://127.0.0.1/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[::1]/",
    "http://[::]/",
    "http://0.0.0.0/",
    "http://localhost/",
    "http://localhost./",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://[fe80::1%25eth0]/",
    "http://10.0.0.1/",
    "http://192.168.1.1/",
    "http://224.0.0.1/",
    "http://100.64.0.1/",
]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("url", SSRF)
def test_every_non_public_address_form_is_refused_by_default(public, language, url):
    message = refusal(call(public, f"probe_{language}", url=url))
    assert any(word in message for word in ("egress", "not a public address", "nvalid", "valid URL", "parse URL")), (
        message
    )


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("route", ["/to-metadata", "/to-private"])
def test_a_redirect_off_the_allowed_range_is_refused_on_its_hop(local, language, route):
    server, base, _ = local
    message = refusal(call(server, f"probe_{language}", url=base + route))
    assert "egress" in message and "allow-list" in message, message


@pytest.mark.parametrize("language", LANGUAGES)
def test_fnbox_own_port_is_refused_even_where_loopback_is_allowed(local, language):
    server, _, _ = local
    port = server.url.rsplit(":", 1)[1]
    for url in (f"{server.url}/v2/functions", f"http://[::ffff:127.0.0.1]:{port}/sys/healthcheck"):
        assert "this fnbox service itself" in refusal(call(server, f"probe_{language}", url=url))


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    "url, headers",
    [
        ("http://127.0.0.1:1/" + "a" * 20000, {}),
        ("{base}/host", {"X-Injected": "a\r\nHost: 169.254.169.254"}),
        ("{base}/host", {"X-Injected": "a\nX-Other: b"}),
        ("http://127.0.0.1:1/a\r\nHost: evil/", {}),
    ],
)
def test_long_urls_and_line_breaks_are_refused(local, language, url, headers):
    server, base, _ = local
    message = refusal(call(server, f"probe_{language}", url=url.format(base=base), headers=headers))
    # (A WHATWG URL drops tabs and line breaks: fetch then asks port 1, with no header injected, and nobody answers.)
    words = ("at most", "line break", "invalid", "white space", "valid url", "connection attempts failed")
    assert any(word in message.lower() for word in words), message


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_host_header_never_redirects_the_request(local, language):
    server, base, _ = local
    answer = call(server, f"probe_{language}", url=f"{base}/host", headers={"Host": "169.254.169.254"}).json()
    outcome, *rest = answer["result"]
    if outcome == "ok":  # fetch leaves the header out, as browsers do
        assert rest[1] == base.removeprefix("http://")
    else:  # requests says it is fnbox's to set
        assert "'Host' header is set by fnbox" in rest[0]


@pytest.mark.parametrize("language", LANGUAGES)
def test_thousands_of_requests_stop_at_the_per_run_count(local, language):
    server, base, target = local
    before = target.hits
    answer = call(server, f"many_{language}", url=f"{base}/count")
    made, message = answer.json()["result"]
    assert made == 50 and "at most 50 requests" in message
    assert target.hits - before == 50


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_slow_drip_ends_at_the_run_timeout_and_the_worker_goes_on(local, language):
    server, base, _ = local
    answer = call(server, f"drip_{language}", url=f"{base}/drip")
    assert answer.status_code == 504, answer.text
    assert call(server, f"probe_{language}", url=f"{base}/count").json()["result"][0] == "ok"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("route, words", [("/bomb", "passed"), ("/huge-headers", "failed")])
def test_gzip_bombs_and_huge_headers_fail_cleanly(local, language, route, words):
    server, base, _ = local
    assert words in refusal(call(server, f"probe_{language}", url=base + route))


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_request_left_open_is_closed_when_its_run_ends(local, language):
    server, base, target = local
    target.closed.clear()
    answer = call(server, f"open_{language}", url=f"{base}/hold")
    assert answer.status_code in (200, 504), answer.text
    assert target.closed.wait(5), "the connection stayed open after the run"

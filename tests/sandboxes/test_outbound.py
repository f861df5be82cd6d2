"""The guarded client of a run's outbound requests, against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time

import pytest

from fnbox import metrics
from fnbox.sandboxes.egress import EgressPolicy
from fnbox.sandboxes.outbound import OutboundError, OutboundLimits, OutboundSession
from tests.targets import http_target

LOCAL = EgressPolicy.parse("127.0.0.1")


def echo(handler):
    seen = {
        "method": handler.command,
        "path": handler.path,
        "body": handler.body.decode(),
        "headers": dict(handler.headers),
    }
    return 200, {"Content-Type": "application/json"}, json.dumps(seen).encode()


ROUTES = {
    "/echo": echo,
    "/gzip": lambda h: (200, {"Content-Encoding": "gzip"}, gzip.compress(b"hello " * 1000)),
    "/bomb": lambda h: (200, {"Content-Encoding": "gzip"}, gzip.compress(b"\0" * (64 << 20))),
    "/big": lambda h: (200, {}, b"x" * (2 << 20)),
    "/to-echo": lambda h: (302, {"Location": "/echo"}, b""),
    "/see-other": lambda h: (303, {"Location": "/echo"}, b""),
    "/loop": lambda h: (302, {"Location": "/loop"}, b""),
    "/slow": lambda h: (time.sleep(2), (200, {}, b"late"))[1],
}


class InFlight:
    """A route that answers after a moment and remembers how many requests it held at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = 0

    def __call__(self, handler):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.2)
        with self.lock:
            self.now -= 1
        return 200, {}, b"done"


def session(policy=LOCAL, *, seconds=10.0, logs=None, **limits):
    return OutboundSession(
        policy,
        OutboundLimits(**limits),
        deadline=time.monotonic() + seconds,
        on_log=None if logs is None else logs.append,
    )


def run(coroutine_function):
    return asyncio.run(coroutine_function())


def test_a_request_reaches_an_allowed_target_and_is_logged():
    logs = []
    with http_target(ROUTES) as base:

        async def main():
            client = session(logs=logs)
            try:
                return await client.request("post", f"{base}/echo?x=1", headers=[("X-Key", "k")], body=b"hi")
            finally:
                await client.aclose()

        answer = run(main)
    seen = json.loads(answer.body)
    assert (answer.status, seen["method"], seen["path"], seen["body"]) == (200, "POST", "/echo?x=1", "hi")
    assert seen["headers"]["X-Key"] == "k" and seen["headers"]["Host"].startswith("127.0.0.1:")
    assert len(logs) == 1 and logs[0].startswith(f"POST {base}/echo?x=1 -> 200 in ")


def test_gzip_is_decoded_and_a_bomb_stops_at_the_byte_cap():
    with http_target(ROUTES) as base:

        async def main():
            client = session(max_bytes=1 << 20)
            try:
                plain = await client.request("GET", f"{base}/gzip")
                with pytest.raises(OutboundError, match="passed 1048576 bytes"):
                    await client.request("GET", f"{base}/bomb")
                with pytest.raises(OutboundError, match="passed 1048576 bytes"):
                    await client.request("GET", f"{base}/big")
                return plain
            finally:
                await client.aclose()

        plain = run(main)
    assert plain.body == b"hello " * 1000 and "content-encoding" not in dict(plain.headers)


def test_redirects_follow_as_fetch_does_and_are_checked_on_every_hop():
    with http_target(ROUTES) as base:

        async def main():
            client = session()
            try:
                followed = await client.request("GET", f"{base}/to-echo")
                posted = await client.request("POST", f"{base}/see-other", body=b"form")
                manual = await client.request("GET", f"{base}/to-echo", redirect="manual")
                with pytest.raises(OutboundError, match="redirect is 'error'"):
                    await client.request("GET", f"{base}/to-echo", redirect="error")
                with pytest.raises(OutboundError, match="more than 20 times"):
                    await client.request("GET", f"{base}/loop")
                return followed, posted, manual
            finally:
                await client.aclose()

        followed, posted, manual = run(main)
    assert followed.redirected and followed.url.endswith("/echo") and json.loads(followed.body)["method"] == "GET"
    assert json.loads(posted.body)["method"] == "GET" and json.loads(posted.body)["body"] == ""
    assert manual.status == 302 and not manual.redirected


def test_the_run_is_bounded_in_requests_and_time():
    with http_target(ROUTES) as base:

        async def main():
            client = session(seconds=0.5, max_requests=2)
            try:
                await client.request("GET", f"{base}/echo")
                with pytest.raises(OutboundError, match="timed out"):
                    await client.request("GET", f"{base}/slow")
                with pytest.raises(OutboundError, match="at most 2 requests"):
                    await client.request("GET", f"{base}/echo")
            finally:
                await client.aclose()

        run(main)


def test_only_so_many_requests_are_open_at_once():
    in_flight = InFlight()
    with http_target({"/held": in_flight}) as base:

        async def main():
            client = session(max_concurrency=2)
            try:
                return await asyncio.gather(*(client.request("GET", f"{base}/held", timeout=5) for _ in range(5)))
            finally:
                await client.aclose()

        answers = run(main)
    assert len(answers) == 5
    assert in_flight.most == 2


def test_requests_are_counted_by_outcome_for_metrics():
    def count(outcome):
        return metrics.REGISTRY.get_sample_value("fnbox_egress_requests_total", {"outcome": outcome}) or 0

    before = {outcome: count(outcome) for outcome in ("answered", "refused")}
    with http_target(ROUTES) as base:

        async def main():
            client = session()
            try:
                await client.request("GET", f"{base}/echo")
                with pytest.raises(OutboundError):
                    await client.request("GET", "http://10.0.0.1/")
            finally:
                await client.aclose()

        run(main)
    assert count("answered") == before["answered"] + 1
    assert count("refused") == before["refused"] + 1

"""A run's outbound requests end with the run, even one started on the isolate's thread as it ended."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time

import pytest

from fnbox.sandboxes.js.hostnet import JsNetwork, _Pending
from fnbox.sandboxes.network import EgressSettings
from fnbox.sandboxes.outbound import OutboundError
from tests.targets import http_target

LOCAL = EgressSettings(policy="127.0.0.1").build()


def test_a_request_that_reaches_the_loop_after_the_run_ended_opens_nothing():
    hits: list[str] = []

    def answer(handler):
        hits.append(handler.path)
        return 200, {}, b"ok"

    with http_target({"/x": answer}) as base:

        async def main() -> None:
            network = JsNetwork(asyncio.get_running_loop(), LOCAL, time.perf_counter() + 5, lambda call_id: None)
            await network.end()
            # What a fetchStart that passed its check just before the end queues on the loop.
            holder = _Pending(concurrent.futures.Future())
            with pytest.raises(OutboundError, match="the run is over"):
                await network.fetch(holder, "GET", f"{base}/x", [], b"", "follow", None)
            with pytest.raises(OutboundError, match="the run is over"):
                await network.lookup(holder, "localhost")
            assert network._session is None  # no session left open for good

        asyncio.run(main())
    assert hits == []

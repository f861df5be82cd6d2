"""Outbound requests and DNS lookups of a JavaScript run: asynchronous host calls.

A host call (host.py) answers while the run's thread waits, which suits a hash, not a
request that takes 200 ms. So `fetchStart` only starts the request on the worker's event
loop, through the run's guarded client (sandboxes.outbound, under the egress policy and the
per-run caps), and answers an id at once; the run awaits a promise. When the request ends,
Python posts `$fnbox.arrived(id)` to the isolate, which settles that promise; JS then takes
the answer (`fetchTake`: status, headers, the request's log lines) and reads its body in
pieces (`fetchRead`), so a body of any size within the cap crosses within a host call's
bounds. `lookup` answers a DNS name under the same policy, the same way.

A run that ends (answered, timed out, cancelled) cancels the requests it left open.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import itertools
import time
from collections.abc import Callable
from typing import Any

from fnbox.sandboxes.egress import EgressRefused, resolve
from fnbox.sandboxes.js.host import CURRENT_NETWORK, HostError, Op
from fnbox.sandboxes.network import Egress
from fnbox.sandboxes.outbound import (
    OutboundConnectionFailed,
    OutboundError,
    OutboundRedirects,
    OutboundRefused,
    OutboundResponse,
    OutboundSession,
    OutboundTimeout,
)

__all__ = ["OPS", "JsNetwork"]

#: Bytes of a body one `fetchRead` answers (base64 makes it a third more characters).
READ_PIECE = 1 << 20
#: Requests and lookups of one run kept at once (answers not yet dropped by JS).
MAX_KEPT = 256


class _Pending:
    __slots__ = ("future", "held")

    def __init__(self, future: concurrent.futures.Future[Any]) -> None:
        self.future = future
        self.held = 0  # bytes of its response body kept here until JS drops it


class JsNetwork:
    """One run's outbound requests and lookups; made on the loop, called on the isolate's thread."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        egress: Egress,
        deadline: float,
        wake: Callable[[int], None],
        *,
        on_start: Callable[[asyncio.AbstractEventLoop], None] | None = None,
        memory: int | None = None,
    ) -> None:
        self.loop = loop
        self.egress = egress
        self.deadline = deadline  # time.perf_counter() when the run times out
        self._wake = wake  # posts $fnbox.arrived(id) to the isolate
        self._on_start = on_start  # told (from the isolate's thread) that the run waits on the network
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._session: OutboundSession | None = None
        self._logs: list[str] = []  # the session's log lines, until JS takes them into the run's logs
        self.ended = False
        #: Bytes of response bodies JS has not dropped yet may not pass the run's memory limit:
        #: they live in the worker, outside the isolate's heap.
        self._memory = memory if memory is not None else egress.limits.max_bytes * egress.limits.max_concurrency
        self._held = 0
        #: Request bodies too big for one host call, sent in pieces before their request.
        self._staged: dict[int, bytearray] = {}

    # On the isolate's thread (host calls).

    def stage(self, stage_id: int, piece: bytes) -> int:
        """Append a piece of a request body (stage 0: a new body); its stage id."""
        if stage_id == 0:
            stage_id = next(self._ids)
            self._staged[stage_id] = bytearray()
        body = self._staged.get(stage_id)
        if body is None:
            raise HostError(f"no request body {stage_id}", "TypeError")
        most = self.egress.limits.max_bytes
        if len(body) + len(piece) > most:
            del self._staged[stage_id]
            raise HostError(f"the request body has more than {most} bytes; the most is {most}", "RangeError")
        body += piece
        return stage_id

    def staged(self, stage_id: int) -> bytes:
        body = self._staged.pop(stage_id, None)
        if body is None:
            raise HostError(f"no request body {stage_id}", "TypeError")
        return bytes(body)

    def start(self, coroutine_of: Callable[[_Pending], Any]) -> int:
        if self.ended:
            raise HostError("the run is over")
        if len(self._pending) >= MAX_KEPT:
            raise HostError(f"a run may keep at most {MAX_KEPT} requests and lookups at once")
        call_id = next(self._ids)
        holder = _Pending(concurrent.futures.Future())
        coroutine = coroutine_of(holder)
        try:
            holder.future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        except RuntimeError:
            coroutine.close()
            raise HostError("the worker is stopping") from None
        self._pending[call_id] = holder
        holder.future.add_done_callback(lambda _: self._arrived(call_id))
        if self._on_start is not None:
            self._on_start(self.loop)
        return call_id

    def outcome(self, call_id: int) -> tuple[_Pending, Any, BaseException | None] | None:
        """A finished call: (its record, its value, its error); None while it runs."""
        holder = self._pending.get(call_id)
        if holder is None:
            raise HostError(f"no request {call_id}", "TypeError")
        if not holder.future.done():
            return None
        if holder.future.cancelled():
            return holder, None, OutboundError("the request was aborted")
        error = holder.future.exception()
        return holder, None if error is not None else holder.future.result(), error

    def waiting(self) -> bool:
        """Whether a request or lookup of the run is on its way (from the loop)."""
        return any(not holder.future.done() for holder in self._pending.values())

    def take_logs(self) -> list[str]:
        logs = list(self._logs)
        self._logs.clear()  # in place: the session appends to this list
        return logs

    def drop(self, call_id: int) -> None:
        holder = self._pending.pop(call_id, None)
        if holder is not None:
            holder.future.cancel()
            self._held -= holder.held
            holder.held = 0

    # On the loop.

    async def fetch(
        self,
        holder: _Pending,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        redirect: str,
        timeout: float | None,
    ) -> OutboundResponse:
        if self.ended:  # started on the isolate's thread as the run ended: `end` has closed all
            raise OutboundError("the run is over")
        if self._session is None:
            left = self.deadline - time.perf_counter()
            self._session = self.egress.session(deadline=time.monotonic() + left, on_log=self._logs.append)
        answer = await self._session.request(
            method, url, headers=headers, body=body, redirect=redirect, timeout=timeout
        )
        if self._held + len(answer.body) > self._memory:
            raise OutboundError(
                f"{method} {url}: the responses this run has not read yet would hold more than "
                f"{self._memory} bytes (its memory limit): read or drop them first"
            )
        holder.held = len(answer.body)
        self._held += holder.held
        return answer

    async def lookup(self, holder: _Pending, host: str) -> str:
        if self.ended:
            raise OutboundError("the run is over")
        address = await asyncio.to_thread(resolve, self.egress.policy, host, 0)
        return str(address)

    def _arrived(self, call_id: int) -> None:
        holder = self._pending.get(call_id)
        if self.ended or holder is None:
            return
        future = holder.future
        error = None if future.cancelled() else future.exception()
        if isinstance(error, OutboundTimeout) and error.run_ended:
            return  # cut at the run's deadline: the run times out too, its code does not go on
        self._wake(call_id)

    def end_unused(self) -> bool:
        """The run is over: if it opened nothing, it ends here and now (True); else see `end`."""
        if self._session is None and not self._pending:
            self.ended = True
            return True
        return False

    async def end(self) -> None:
        """The run is over: cancel what it left open, close its connections."""
        self.ended = True
        for holder in self._pending.values():
            holder.future.cancel()
        self._pending.clear()
        if self._session is not None:
            session, self._session = self._session, None
            try:
                await session.aclose()
            except Exception:
                pass


def _network() -> JsNetwork:
    network = CURRENT_NETWORK.get()
    if not isinstance(network, JsNetwork):
        error = HostError("outbound network is not available in this fnbox", "Error", "ERR_FNBOX_NO_NETWORK")
        raise error
    return network


def _string(value: Any, what: str, limit: int = 1 << 16) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise HostError(f"{what} must be a string of at most {limit} characters", "TypeError")
    return value


def fetch_start(args: list[Any], budget: int) -> int:
    """[method, url, [[name, value]...], body base64, redirect, timeout ms or null] -> id."""
    network = _network()
    if len(args) != 6:
        raise HostError("fetchStart takes 6 arguments", "TypeError")
    method = _string(args[0], "method", 32)
    url = _string(args[1], "url", 1 << 20)
    pairs = args[2]
    if not isinstance(pairs, list) or len(pairs) > 1000:
        raise HostError("headers must be a list of at most 1000 pairs", "TypeError")
    headers = []
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise HostError("a header is a [name, value] pair", "TypeError")
        headers.append((_string(pair[0], "a header name", 1024), _string(pair[1], "a header value", 1 << 16)))
    if isinstance(args[3], int) and not isinstance(args[3], bool):
        body = network.staged(args[3])  # sent in pieces before (fetchBody)
    else:
        body = base64.b64decode(_string(args[3], "body", 2 * 2**24), validate=True) if args[3] else b""
    redirect = _string(args[4], "redirect", 16)
    timeout = args[5]
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0):
        raise HostError("timeout must be a number of ms", "TypeError")
    seconds = None if timeout is None else timeout / 1000
    return network.start(lambda holder: network.fetch(holder, method, url, headers, body, redirect, seconds))


def fetch_body(args: list[Any], budget: int) -> int:
    """[stage id (0: a new body), a piece in base64] -> the stage id, for fetchStart's body."""
    network = _network()
    if len(args) != 2 or isinstance(args[0], bool) or not isinstance(args[0], int):
        raise HostError("fetchBody takes [stage id, piece]", "TypeError")
    return network.stage(args[0], base64.b64decode(_string(args[1], "a body piece", 2 * READ_PIECE), validate=True))


def fetch_take(args: list[Any], budget: int) -> Any:
    """[id] -> null while it runs; then {status, statusText, headers, url, redirected, size, logs} or {error, ...}."""
    network = _network()
    done = network.outcome(_id(args))
    if done is None:
        return None
    _, answer, error = done
    logs = network.take_logs()
    if error is not None:
        return {"error": str(error) or type(error).__name__, "kind": _kind(error), "logs": logs}
    assert isinstance(answer, OutboundResponse)
    return {
        "status": answer.status,
        "statusText": answer.reason,
        "headers": [[name, value] for name, value in answer.headers],
        "url": answer.url,
        "redirected": answer.redirected,
        "size": len(answer.body),
        "logs": logs,
    }


def fetch_read(args: list[Any], budget: int) -> str:
    """[id, offset] -> the body's next piece, base64 (empty at its end)."""
    network = _network()
    if len(args) != 2 or not isinstance(args[1], int) or args[1] < 0:
        raise HostError("fetchRead takes [id, offset]", "TypeError")
    done = network.outcome(_id(args[:1]))
    if done is None or done[2] is not None or not isinstance(done[1], OutboundResponse):
        raise HostError("the response has no body to read", "TypeError")
    piece = done[1].body[args[1] : args[1] + min(READ_PIECE, max(budget // 2, 1024))]
    return base64.b64encode(piece).decode("ascii")


def fetch_drop(args: list[Any], budget: int) -> None:
    """[id]: JS is done with it (read, or aborted): cancel it if it still runs, forget it."""
    _network().drop(_id(args))


def lookup(args: list[Any], budget: int) -> int:
    """[host] -> id; its answer (fetchTake) is {address} or {error}."""
    network = _network()
    host = _string(args[0] if args else None, "hostname", 253 + 2)
    return network.start(lambda holder: network.lookup(holder, host))


def lookup_take(args: list[Any], budget: int) -> Any:
    network = _network()
    done = network.outcome(_id(args))
    if done is None:
        return None
    _, answer, error = done
    if error is not None:
        return {"error": str(error), "kind": _kind(error)}
    return {"address": answer, "family": 6 if ":" in answer else 4}


def _id(args: list[Any]) -> int:
    if len(args) != 1 or isinstance(args[0], bool) or not isinstance(args[0], int):
        raise HostError("a request id is a number", "TypeError")
    return int(args[0])


def _kind(error: BaseException) -> str:
    if isinstance(error, OutboundTimeout):
        return "timeout"
    if isinstance(error, OutboundRefused | EgressRefused):
        return "refused"
    if isinstance(error, OutboundRedirects):
        return "redirect"
    if isinstance(error, OutboundConnectionFailed):
        return "network"
    if isinstance(error, OutboundError):
        return "invalid"
    return "network"


OPS: dict[str, Op] = {
    "fetchStart": fetch_start,
    "fetchBody": fetch_body,
    "fetchTake": fetch_take,
    "fetchRead": fetch_read,
    "fetchDrop": fetch_drop,
    "lookup": lookup,
    "lookupTake": lookup_take,
}

"""The routes of executions: list, read, wait for, cancel, and follow the logs.

Handlers translate HTTP to Runtime calls and back. Logs come as JSON, or as Server-Sent
Events when the client accepts `text/event-stream`: one `log` event per entry (its `id`
is the entry's index, so a client that reconnects with `Last-Event-ID` resumes after
it), then one `end` event with the final state.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from fnbox.executions.records import MAX_LIST_LIMIT, Execution
from fnbox.executions.scheduler import EndEvent, LogEvent
from fnbox.sandboxes.errors import InvalidRequest, NotFound
from fnbox.server.access import execution_filters, execution_visible, principal_of
from fnbox.server.inputs import query_flag, query_number, runtime_of

__all__ = ["execution_routes"]

#: Longest `?timeout=` of wait and of followed JSON logs, seconds.
MAX_WAIT = 300.0
DEFAULT_WAIT = 30.0
#: Seconds without news after which an event stream gets a comment, so proxies keep it open.
HEARTBEAT = 15.0


async def list_executions(request: Request) -> Response:
    """
    ---
    summary: Executions, newest first, optionally of one workspace, function or status
    parameters:
      - {name: workspace, in: query, schema: {type: string}}
      - {name: function, in: query, schema: {type: string}}
      - {name: status, in: query, schema: {type: string, enum: [accepted, running, successful, failed, dismissed]}}
      - {name: limit, in: query, schema: {type: integer, default: 50, maximum: 1000}}
      - {name: after, in: query, description: 'the `next` cursor of the previous page', schema: {type: string}}
    responses:
      200: {description: '{"executions": [...], "next": cursor or null}'}
      400: {description: 'InvalidRequest (a bad filter, limit or cursor)'}
    """
    query = request.query_params
    limit = int(query_number(request, "limit", 50, low=1, high=MAX_LIST_LIMIT))
    items, cursor = await runtime_of(request).list_executions(
        workspace=query.get("workspace"),
        function=query.get("function"),
        status=query.get("status"),
        limit=limit,
        after=query.get("after"),
        **execution_filters(principal_of(request)),
    )
    body: dict[str, Any] = {"executions": [item.to_json() for item in items], "next": cursor}
    if cursor is not None:
        body["links"] = {"next": str(request.url.include_query_params(after=cursor))}
    return JSONResponse(body)


async def get_execution(request: Request) -> Response:
    """
    ---
    summary: One execution, with its status, times, result, logs and error
    responses:
      200: {description: 'The execution'}
      404: {description: 'NotFound'}
    """
    execution = await visible_execution(request)
    return JSONResponse(execution.to_json())


async def wait_execution(request: Request) -> Response:
    """
    ---
    summary: The execution as soon as it ends, or as it is when the timeout passes
    parameters:
      - {name: timeout, in: query, description: 'seconds (default 30, at most 300)', schema: {type: number}}
    responses:
      200: {description: 'The execution; its status says whether it ended'}
      404: {description: 'NotFound'}
    """
    timeout = query_number(request, "timeout", DEFAULT_WAIT, low=0, high=MAX_WAIT)
    await visible_execution(request)
    execution = await runtime_of(request).wait_execution(request.path_params["id"], timeout)
    return JSONResponse(execution.to_json())


async def cancel_execution(request: Request) -> Response:
    """
    ---
    summary: Stop an execution that is waiting or running; it ends dismissed
    responses:
      200: {description: 'The execution, dismissed'}
      404: {description: 'NotFound'}
      409: {description: 'Conflict (the execution has already ended)'}
    """
    await visible_execution(request, write=True)
    execution = await runtime_of(request).cancel_execution(request.path_params["id"])
    return JSONResponse(execution.to_json())


async def execution_logs(request: Request) -> Response:
    """
    ---
    summary: An execution's logs; live as Server-Sent Events with Accept text/event-stream
    parameters:
      - {name: tail, in: query, description: 'only the last N entries there are now', schema: {type: integer}}
      - {name: follow, in: query, description: 'wait for the end: JSON answers then, events come as they happen', schema: {type: boolean}}
      - {name: timeout, in: query, description: 'JSON with follow: seconds to wait at most (default 30)', schema: {type: number}}
    responses:
      200: {description: '{"id", "status", "logs": [...]}, or events "log" and a last "end"'}
      404: {description: 'NotFound'}
    """
    runtime = runtime_of(request)
    execution_id = request.path_params["id"]
    follow = query_flag(request, "follow")
    execution = await visible_execution(request)
    start = _start(request, execution)
    if "text/event-stream" in request.headers.get("accept", ""):
        events = runtime.follow_execution(execution_id, start=start, follow=follow, heartbeat=HEARTBEAT)
        tokens, principal = request.app.state.tokens, principal_of(request)

        async def still_allowed() -> bool:
            await tokens.refresh()  # a revocation through another instance ends the stream too
            return tokens.active(principal)

        return StreamingResponse(
            _event_stream(events, still_allowed),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    if follow:
        timeout = query_number(request, "timeout", DEFAULT_WAIT, low=0, high=MAX_WAIT)
        execution = await runtime.wait_execution(execution_id, timeout)
    logs = execution.logs[start:]
    return JSONResponse({"id": execution.id, "status": str(execution.status), "logs": logs, "next": start + len(logs)})


async def visible_execution(request: Request, *, write: bool = False) -> Execution:
    """The execution of the path, if the request's token may see it (`write`: cancel it); else NotFound."""
    execution_id = request.path_params["id"]
    execution = await runtime_of(request).get_execution(execution_id)
    if not execution_visible(principal_of(request), execution, write=write):
        raise NotFound(f"no execution {execution_id!r}", details={"id": execution_id})
    return execution


def _start(request: Request, execution: Execution) -> int:
    """The index of the first entry to send: after Last-Event-ID, or the last `tail` ones."""
    last_event = request.headers.get("last-event-id")
    if last_event is not None:
        try:
            return max(int(last_event) + 1, 0)
        except ValueError:
            raise InvalidRequest(f"Last-Event-ID {last_event!r} is not an entry index") from None
    if "tail" not in request.query_params:
        return 0
    tail = int(query_number(request, "tail", 0, low=0, high=10**9))
    return max(len(execution.logs) - tail, 0)


async def _event_stream(
    events: AsyncIterator[LogEvent | EndEvent | None], still_allowed: Callable[[], Awaitable[bool]]
) -> AsyncIterator[str]:
    """The events as SSE; a stream whose token is revoked or expires meanwhile ends at its next event."""
    async for event in events:
        if not await still_allowed():
            yield "event: revoked\ndata: {}\n\n"
            return
        if event is None:
            yield ": still running\n\n"
        elif isinstance(event, LogEvent):
            yield f"id: {event.index}\nevent: log\ndata: {json.dumps(event.entry)}\n\n"
        else:
            ended = event.execution
            final = {"id": ended.id, "status": str(ended.status), "duration": ended.duration, "error": ended.error}
            yield f"event: end\ndata: {json.dumps(final)}\n\n"


execution_routes = [
    Route("/v2/executions", list_executions, methods=["GET"]),
    Route("/v2/executions/{id}", get_execution, methods=["GET"]),
    Route("/v2/executions/{id}/wait", wait_execution, methods=["GET"]),
    Route("/v2/executions/{id}/cancel", cancel_execution, methods=["POST"]),
    Route("/v2/executions/{id}/logs", execution_logs, methods=["GET"]),
]

"""The answer to `POST /v2/functions/{workspace}/run/{function}`, whichever path brought the request.

The general route (`routes.run_function`, behind Starlette's routing and middleware) and the
lean path (`runpath.RunPath`) both end here, so a run is answered by one piece of code:
a synchronous run's result with its `X-Execution-Id`, or with `Prefer: respond-async`
(or `?async=true`) a 202 and the execution to follow. Errors found before the run are
raised (each path maps them as it maps every error); a failed run is answered here,
with the id of its record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse, Response

from fnbox.executions.records import check_execution_id
from fnbox.sandboxes.errors import FnboxError, InvalidRequest
from fnbox.server.responses import FastJSONResponse, error_response
from fnbox.workspaces.runtime import Runtime

__all__ = ["answer_run"]


async def answer_run(
    runtime: Runtime,
    workspace: str,
    function: str,
    body: Any,
    *,
    respond_async: Callable[[], bool],
    owner: str | None,
) -> Response:
    """Run (or accept) `function` with the request's JSON `body`; `respond_async` is asked once the body passed."""
    if not isinstance(body, dict):
        raise InvalidRequest('the body must be an object such as {"parameters": {...}}')
    if respond_async():
        given = body.get("id")
        execution = await runtime.start_run(
            workspace,
            function,
            body.get("parameters"),
            execution_id=None if given is None else check_execution_id(given),
            owner=owner,
        )
        return JSONResponse(
            {"id": execution.id, "status": str(execution.status)},
            status_code=202,
            headers={"Location": f"/v2/executions/{execution.id}", "Preference-Applied": "respond-async"},
        )
    if "id" in body:
        raise InvalidRequest("an execution id can only be given to an asynchronous run (header Prefer: respond-async)")
    try:
        outcome = await runtime.run(workspace, function, body.get("parameters"), owner=owner)
    except FnboxError as exc:
        response = error_response(exc)
        if exc.execution_id:  # the run started and its failure is recorded
            response.headers["X-Execution-Id"] = exc.execution_id
        return response
    return RunAnswer(outcome.result, outcome.logs, outcome.duration, outcome.execution_id)


class RunAnswer(FastJSONResponse):
    """A run's 200 answer: the `FastJSONResponse` its fields would give, built without its general steps.

    The same body and the same headers in the same order (`X-Execution-Id` if any, then
    `content-length` and `content-type`, as Starlette lays out given headers and its own).
    """

    def __init__(self, result: Any, logs: Any, duration: float, execution_id: str | None) -> None:
        self.status_code = 200
        self.background = None
        self.body = body = self.render({"result": result, "logs": logs, "duration": duration})
        length = (b"content-length", str(len(body)).encode())
        self.raw_headers = (
            [(b"x-execution-id", execution_id.encode("latin-1")), length, _JSON] if execution_id else [length, _JSON]
        )


_JSON = (b"content-type", FastJSONResponse.media_type.encode("latin-1"))

"""OGC API - Processes - Part 1: Core (OGC 18-062r2) under /ogcapi, over workspaces and executions.

A process is a function (`{workspace}.{function}`), a job is an execution. Handlers
translate HTTP to Runtime calls and back: the documents are built in `documents`,
the HTML pages in `html`, and every error answers as an RFC 7807 problem
(`problems`), so the native API keeps its own error format.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route

from fnbox.executions.records import MAX_LIST_LIMIT, Execution, ExecutionStatus
from fnbox.sandboxes.errors import Conflict, FnboxError, InternalError, InvalidRequest, NotFound
from fnbox.server.access import execution_filters, execution_visible, principal_of
from fnbox.server.inputs import query_number, read_json, runtime_of, wants_async
from fnbox.server.ogcapi import documents
from fnbox.server.ogcapi.documents import OUTPUT, Urls, execute_request, link, split_process_id, status_info
from fnbox.server.ogcapi.html import render_page
from fnbox.server.ogcapi.problems import (
    INVALID_PARAMETER,
    NO_SUCH_JOB,
    NO_SUCH_PROCESS,
    RESULT_NOT_READY,
    Handler,
    Problem,
    ProblemRouter,
    problem_of,
    problem_response,
    problems,
)
from fnbox.server.tokens import Principal
from fnbox.workspaces.document import FunctionSpec, Workspace
from fnbox.workspaces.runtime import Runtime

__all__ = ["ogcapi"]

#: No script may run in our pages: what they show is tenant data.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'"


# ---- format negotiation ------------------------------------------------------------------


def wants_html(request: Request) -> bool:
    """`?f=html|json` decides; else HTML when the client prefers text/html (a browser), JSON otherwise."""
    chosen = request.query_params.get("f")
    if chosen is not None:
        if chosen.lower() not in ("json", "html"):
            raise Problem(400, f"f={chosen!r}: this resource is available as f=json or f=html", type=INVALID_PARAMETER)
        return chosen.lower() == "html"
    weights: dict[str, float] = {}
    for part in request.headers.get("accept", "").split(","):
        media, *parameters = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[media.lower()] = max(weight, weights.get(media.lower(), 0.0))
    html = weights.get("text/html", 0.0)
    return html > 0 and html >= weights.get("application/json", 0.0)


def _answer(request: Request, page: str, build: Callable[[bool], dict[str, Any]]) -> Response:
    html = wants_html(request)
    document = build(html)
    headers = {"Vary": "Accept"}
    if html:
        body = render_page(page, document, Urls(request).home)
        return HTMLResponse(body, headers={**headers, "Content-Security-Policy": _CSP})
    return JSONResponse(document, headers=headers)


# ---- lookups -----------------------------------------------------------------------------


def _process(runtime: Runtime, value: str) -> tuple[Workspace, FunctionSpec]:
    names = split_process_id(value)
    try:
        if names is not None:
            workspace = runtime.get_workspace(names[0])
            spec = workspace.functions.get(names[1])
            if spec is not None:
                return workspace, spec
    except (NotFound, InvalidRequest):
        pass
    raise Problem(404, f"no process {value!r}: a process id is {{workspace}}.{{function}}", type=NO_SUCH_PROCESS)


async def _job(runtime: Runtime, job_id: str, principal: Principal, *, write: bool = False) -> Execution:
    """The job, if `principal` may see it (`write`: dismiss it); a job it may not see does not exist for it."""
    try:
        execution = await runtime.get_execution(job_id)
    except NotFound:
        execution = None
    if execution is None or not execution_visible(principal, execution, write=write):
        raise Problem(404, f"no job {job_id!r}", type=NO_SUCH_JOB)
    return execution


# ---- landing page, conformance, processes ------------------------------------------------


async def landing(request: Request) -> Response:
    """
    ---
    summary: 'OGC API - Processes: the landing page'
    responses:
      200: {description: 'Links to the API definition, conformance, processes and jobs (JSON, or HTML with f=html)'}
    """
    return _answer(request, "landing", lambda html: documents.landing(Urls(request), html))


async def conformance(request: Request) -> Response:
    """
    ---
    summary: 'OGC API - Processes: the conformance classes'
    responses:
      200: {description: '{"conformsTo": [...]}'}
    """
    return _answer(request, "conformance", lambda html: documents.conformance(Urls(request), html))


async def list_processes(request: Request) -> Response:
    """
    ---
    summary: 'OGC API - Processes: every function as a process, {workspace}.{function}, in order'
    parameters:
      - {name: limit, in: query, schema: {type: integer, default: 100, maximum: 1000}}
      - {name: after, in: query, description: 'the last process id of the previous page (see the next link)', schema: {type: string}}
    responses:
      200: {description: '{"processes": [summary...], "links": [...]}'}
    """
    runtime, urls = runtime_of(request), Urls(request)
    limit = int(query_number(request, "limit", 100, low=1, high=1000))
    after = request.query_params.get("after")
    start = split_process_id(after) if after is not None else ("", "")
    if start is None:
        raise Problem(400, f"after={after!r} is not a process id", type=INVALID_PARAMETER)
    page: list[dict[str, Any]] = []
    more = False
    for name in runtime.list_workspaces():
        if more:
            break
        if name < start[0] or not principal_of(request).covers(name):
            continue
        try:
            workspace = runtime.get_workspace(name)
        except FnboxError:  # a stored file that cannot be loaded has no process to offer
            continue
        for function in sorted(workspace.functions):
            if (name, function) <= start:
                continue
            if len(page) == limit:
                more = True
                break
            page.append(documents.process_summary(workspace, function, urls))

    def build(html: bool) -> dict[str, Any]:
        links = urls.self_links(html)
        if more:
            href = request.url.remove_query_params("f").include_query_params(after=page[-1]["id"])
            links.append(link(str(href), "next", documents.JSON, "next page"))
        return {"processes": page, "links": [*links, link(urls.home, "up", documents.JSON, "landing page")]}

    return _answer(request, "processes", build)


async def describe_process(request: Request) -> Response:
    """
    ---
    summary: 'OGC API - Processes: a process: its inputs (the declared parameters) and its output, result'
    responses:
      200: {description: The process description}
      404: {description: 'problem no-such-process'}
    """
    workspace, spec = _process(runtime_of(request), request.path_params["processID"])
    urls = Urls(request)
    return _answer(request, "process", lambda html: documents.process_description(workspace, spec.name, urls, html))


# ---- execution ---------------------------------------------------------------------------


async def execute(request: Request) -> Response:
    """
    ---
    summary: 'OGC API - Processes: execute a process, synchronously, or as a job with Prefer: respond-async'
    requestBody:
      content:
        application/json:
          example: {"inputs": {"name": "world"}, "response": "document"}
    responses:
      200: {description: '{"result": value} (response document), or the bare value (response raw)'}
      201: {description: 'a job was created: its statusInfo, with Location .../jobs/{jobID}'}
      400: {description: 'problem invalid-parameter'}
      404: {description: 'problem no-such-process'}
      500: {description: 'the function failed: a problem naming its code, with logs and duration'}
    """
    runtime, urls = runtime_of(request), Urls(request)
    workspace, spec = _process(runtime, request.path_params["processID"])
    body = await read_json(request, empty={})
    inputs, raw, mode = execute_request(body, spec)
    if mode == "async" or wants_async(request):
        execution = await _run(
            runtime.start_run(workspace.name, spec.name, inputs, owner=principal_of(request).id), request
        )
        return JSONResponse(
            status_info(execution, urls),
            status_code=201,
            headers={"Location": urls.job(execution.id), "Preference-Applied": "respond-async"},
        )
    try:
        outcome = await _run(runtime.run(workspace.name, spec.name, inputs, owner=principal_of(request).id), request)
    except Problem as problem:
        if "jobID" in problem.extra:  # the run started: its failure is a job to look at
            return problem_response(problem, request, _monitor(urls, problem.extra["jobID"]))
        raise
    headers = _monitor(urls, outcome.execution_id)
    if raw:
        return JSONResponse(outcome.result, headers=headers)
    return JSONResponse({OUTPUT: outcome.result}, headers=headers)


async def _run(call: Awaitable[Any], request: Request) -> Any:
    """Await a run: a function gone meanwhile is no process, other failures their problem."""
    try:
        return await call
    except NotFound:
        raise Problem(404, f"no process {request.path_params['processID']!r}", type=NO_SUCH_PROCESS) from None
    except FnboxError as exc:
        problem = problem_of(exc)
        if exc.execution_id:
            problem.extra["jobID"] = exc.execution_id
        raise problem from None


def _monitor(urls: Urls, job_id: str | None) -> dict[str, str]:
    """The header linking an answer to the job that records it, if one does."""
    return {} if job_id is None else {"Link": f'<{urls.job(job_id)}>; rel="monitor"'}


# ---- jobs --------------------------------------------------------------------------------


async def list_jobs(request: Request) -> Response:
    """
    ---
    summary: 'OGC API - Processes: jobs (executions), newest first'
    parameters:
      - {name: processID, in: query, schema: {type: string}}
      - {name: status, in: query, schema: {type: string, enum: [accepted, running, successful, failed, dismissed]}}
      - {name: type, in: query, schema: {type: string, enum: [process]}}
      - {name: limit, in: query, schema: {type: integer, default: 50, maximum: 1000}}
      - {name: after, in: query, description: 'cursor of the next page (see the next link)', schema: {type: string}}
    responses:
      200: {description: '{"jobs": [statusInfo...], "links": [...]}'}
    """
    runtime, urls, query = runtime_of(request), Urls(request), request.query_params
    limit = int(query_number(request, "limit", 50, low=1, high=MAX_LIST_LIMIT))
    for name in ("processID", "status", "type"):
        if len(query.getlist(name)) > 1:
            raise Problem(400, f"give {name} once", type=INVALID_PARAMETER)
    names = split_process_id(query["processID"]) if "processID" in query else (None, None)
    items: list[Execution] = []
    cursor = None
    if names is not None and query.get("type", "process") == "process":
        items, cursor = await runtime.list_executions(
            workspace=names[0],
            function=names[1],
            status=query.get("status"),
            limit=limit,
            after=query.get("after"),
            **execution_filters(principal_of(request)),
        )

    def build(html: bool) -> dict[str, Any]:
        links = urls.self_links(html)
        if cursor is not None:
            href = request.url.remove_query_params("f").include_query_params(after=cursor)
            links.append(link(str(href), "next", documents.JSON, "next page"))
        links.append(link(urls.home, "up", documents.JSON, "landing page"))
        return {"jobs": [status_info(item, urls) for item in items], "links": links}

    return _answer(request, "jobs", build)


async def get_job(request: Request) -> Response:
    """
    ---
    summary: 'OGC API - Processes: the statusInfo of a job'
    responses:
      200: {description: 'jobID, processID, status, message, times, progress and links'}
      404: {description: 'problem no-such-job'}
    """
    execution = await _job(runtime_of(request), request.path_params["jobID"], principal_of(request))
    urls = Urls(request)
    return _answer(request, "job", lambda html: status_info(execution, urls, html, own=True))


async def dismiss_job(request: Request) -> Response:
    """
    ---
    summary: 'OGC API - Processes: dismiss a job: a job waiting or running is cancelled'
    responses:
      200: {description: 'its statusInfo, dismissed (also when it already was)'}
      404: {description: 'problem no-such-job'}
      409: {description: 'the job ended successful or failed: its record is kept, there is nothing to dismiss'}
    """
    runtime, job_id = runtime_of(request), request.path_params["jobID"]
    execution = await _job(runtime, job_id, principal_of(request), write=True)
    if not execution.ended:
        try:
            execution = await runtime.cancel_execution(job_id)
        except Conflict:  # it ended meanwhile
            execution = await _job(runtime, job_id, principal_of(request), write=True)
    if execution.ended and execution.status != ExecutionStatus.DISMISSED:
        raise Problem(
            409,
            f"job {job_id!r} has already ended ({execution.status}); its record is kept, there is nothing to dismiss",
            code=Conflict.code,
            jobID=job_id,
        )
    return JSONResponse(status_info(execution, Urls(request)))


async def job_results(request: Request) -> Response:
    """
    ---
    summary: 'OGC API - Processes: the results of a job, {"result": value}'
    responses:
      200: {description: '{"result": value}'}
      404: {description: 'problem no-such-job, or result-not-ready while it waits or runs'}
      410: {description: 'the job was dismissed'}
      500: {description: 'the job failed: its error as a problem (4xx when it failed on its input)'}
    """
    job_id = request.path_params["jobID"]
    execution = await _job(runtime_of(request), job_id, principal_of(request))
    if execution.status == ExecutionStatus.SUCCESSFUL:
        return JSONResponse({OUTPUT: execution.result})
    if not execution.ended:
        raise Problem(404, f"job {job_id!r} is {execution.status}: its result is not ready", type=RESULT_NOT_READY)
    error = execution.error or InternalError("the job failed").to_json()
    if execution.status == ExecutionStatus.DISMISSED:
        raise problem_of(error, job_id=job_id, status=410)
    problem = problem_of(error, job_id=job_id)
    if not 400 <= problem.status < 500:
        problem.status = 500
    raise problem


async def job_logs(request: Request) -> Response:
    """
    ---
    summary: "A job's logs (a SEPEX extension; see /v2/executions/{id}/logs to follow them live)"
    responses:
      200: {description: '{"jobID", "status", "logs": [...]}'}
      404: {description: 'problem no-such-job'}
    """
    execution = await _job(runtime_of(request), request.path_params["jobID"], principal_of(request))
    links = [link(Urls(request).job(execution.id), "up", documents.JSON, "job status")]
    return JSONResponse(
        {"jobID": execution.id, "status": str(execution.status), "logs": execution.logs, "links": links}
    )


async def job_metadata(request: Request) -> Response:
    """
    ---
    summary: "A job's metadata: function, language, workspace version, parameters and timings (a SEPEX extension)"
    responses:
      200: {description: The metadata}
      404: {description: 'problem no-such-job'}
    """
    execution = await _job(runtime_of(request), request.path_params["jobID"], principal_of(request))
    return JSONResponse(documents.job_metadata(execution, Urls(request)))


# ---- routing ----------------------------------------------------------------------------


def _route(path: str, handler: Handler, method: str = "GET") -> Route:
    return Route(path, problems(handler), methods=[method])


ogcapi = Mount(
    "/ogcapi",
    app=ProblemRouter(
        [
            _route("/", landing),
            _route("/conformance", conformance),
            _route("/processes", list_processes),
            _route("/processes/{processID}", describe_process),
            _route("/processes/{processID}/execution", execute, "POST"),
            _route("/jobs", list_jobs),
            _route("/jobs/{jobID}", get_job),
            _route("/jobs/{jobID}", dismiss_job, "DELETE"),
            _route("/jobs/{jobID}/results", job_results),
            _route("/jobs/{jobID}/logs", job_logs),
            _route("/jobs/{jobID}/metadata", job_metadata),
        ]
    ),
)

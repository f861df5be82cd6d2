"""The JSON documents of the OGC API - Processes face (OGC 18-062r2), and its execute requests.

The mapping: a process is a function, with the id `{workspace}.{function}` and the
workspace's version; its inputs are the declared parameters and its one output is
`result`. A job is an execution (synchronous runs included, when runs are recorded).
Every link is absolute, built from the request's base URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.datastructures import URL
from starlette.requests import Request

from fnbox.executions.records import Execution, ExecutionStatus
from fnbox.server.ogcapi.problems import INVALID_PARAMETER, Problem
from fnbox.workspaces.document import FunctionSpec, Workspace

__all__ = [
    "CONFORMANCE",
    "OUTPUT",
    "Urls",
    "conformance",
    "execute_request",
    "job_metadata",
    "landing",
    "link",
    "process_description",
    "process_id",
    "process_summary",
    "split_process_id",
    "status_info",
]

JSON = "application/json"
HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
OGC_REL = "http://www.opengis.net/def/rel/ogc/1.0/"
_CONF = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/"
CONFORMANCE = [
    _CONF + name for name in ("core", "json", "oas30", "ogc-process-description", "job-list", "dismiss", "html")
]
_QUALIFIED = {"value", "mediaType", "encoding", "schema"}
OUTPUT = "result"
JOB_CONTROL = ["sync-execute", "async-execute", "dismiss"]
TRANSMISSION = ["value"]
#: fnbox does not know how far a function has got: 50 only says that it has started.
_PROGRESS = {ExecutionStatus.ACCEPTED: 0, ExecutionStatus.RUNNING: 50}
#: Keywords of a parameter declaration passed on into its input's JSON schema.
_SCHEMA_KEYWORDS = (
    "type", "enum", "const", "format", "pattern", "minLength", "maxLength", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "items", "minItems", "maxItems", "uniqueItems",
    "properties", "required", "additionalProperties", "default",
)  # fmt: skip


# ---- ids and URLs ------------------------------------------------------------------------


def process_id(workspace: str, function: str) -> str:
    return f"{workspace}.{function}"


def split_process_id(value: str) -> tuple[str, str] | None:
    """(workspace, function) of `{workspace}.{function}`; None if it is not of that form.

    Neither name may hold a dot, so the one dot tells them apart.
    """
    workspace, dot, function = value.partition(".")
    if not dot or not workspace or not function or "." in function:
        return None
    return workspace, function


class Urls:
    """Absolute URLs of this face, from the base URL of the request (a proxy's root path included)."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.root = str(request.base_url).rstrip("/")
        self.home = f"{self.root}/ogcapi/"

    def __call__(self, path: str) -> str:
        return f"{self.root}/ogcapi{path}"

    def process(self, workspace: str, function: str) -> str:
        return self(f"/processes/{process_id(workspace, function)}")

    def job(self, job_id: str, tail: str = "") -> str:
        return self(f"/jobs/{job_id}{tail}")

    def self_links(self, html: bool, url: URL | None = None) -> list[dict[str, Any]]:
        """`self` in the format served, `alternate` in the other one."""
        url = url or self.request.url
        as_json = link(str(url.include_query_params(f="json")), "self", JSON, "this document")
        as_html = link(str(url.include_query_params(f="html")), "alternate", HTML, "this document as HTML")
        if html:
            as_json, as_html = (
                {**as_json, "rel": "alternate", "title": "this document as JSON"},
                {**as_html, "rel": "self"},
            )
        return [as_json, as_html]


def link(href: str, rel: str, media_type: str = JSON, title: str | None = None) -> dict[str, Any]:
    found = {"href": href, "rel": rel, "type": media_type}
    if title:
        found["title"] = title
    return found


# ---- landing page and conformance --------------------------------------------------------


def landing(urls: Urls, html: bool) -> dict[str, Any]:
    processes, jobs, conformance_url = urls("/processes"), urls("/jobs"), urls("/conformance")
    return {
        "title": "fnbox",
        "description": "The functions of every fnbox workspace, as OGC API - Processes: "
        "a process is {workspace}.{function}, a job is one of its executions.",
        "links": [
            *urls.self_links(html),
            link(f"{urls.root}/openapi.json", "service-desc", OPENAPI, "the API definition"),
            link(f"{urls.root}/docs", "service-doc", HTML, "the API documentation"),
            link(conformance_url, "conformance", JSON, "conformance classes"),
            link(conformance_url, OGC_REL + "conformance", JSON, "conformance classes"),
            link(processes, "processes", JSON, "processes"),
            link(processes, OGC_REL + "processes", JSON, "processes"),
            link(jobs, "job-list", JSON, "jobs"),
            link(jobs, OGC_REL + "job-list", JSON, "jobs"),
        ],
    }


def conformance(urls: Urls, html: bool) -> dict[str, Any]:
    return {"conformsTo": CONFORMANCE, "links": [*urls.self_links(html), link(urls.home, "up", JSON, "landing page")]}


# ---- processes ---------------------------------------------------------------------------


def process_summary(workspace: Workspace, function: str, urls: Urls) -> dict[str, Any]:
    declared = _declaration(workspace, function)
    href = urls.process(workspace.name, function)
    description = declared.get("description")
    return {
        "id": process_id(workspace.name, function),
        "version": workspace.version,
        "title": function,
        "description": description if isinstance(description, str) else "",
        "keywords": [workspace.name, workspace.functions[function].language],
        "jobControlOptions": JOB_CONTROL,
        "outputTransmission": TRANSMISSION,
        "links": [
            link(href, "self", JSON, "process description"),
            link(f"{href}?f=html", "alternate", HTML, "process description as HTML"),
        ],
    }


def process_description(workspace: Workspace, function: str, urls: Urls, html: bool) -> dict[str, Any]:
    summary = process_summary(workspace, function, urls)
    href = urls.process(workspace.name, function)
    jobs = URL(urls("/jobs")).include_query_params(processID=summary["id"])
    return {
        **summary,
        "inputs": process_inputs(workspace, function),
        "outputs": {OUTPUT: {"title": OUTPUT, "description": "the value the function returns", "schema": {}}},
        "links": [
            *urls.self_links(html),
            link(f"{href}/execution", OGC_REL + "execute", JSON, "execute the process"),
            link(str(jobs), OGC_REL + "job-list", JSON, "jobs of this process"),
            link(urls("/processes"), "up", JSON, "processes"),
        ],
    }


def process_inputs(workspace: Workspace, function: str) -> dict[str, Any]:
    """One input per declared parameter, in the order of declaration."""
    declared = _declaration(workspace, function).get("parameters") or {}
    inputs = {}
    for parameter in workspace.functions[function].parameters:
        declaration = declared.get(parameter.name) or {}
        schema = {key: declaration[key] for key in _SCHEMA_KEYWORDS if key in declaration}
        description, title = declaration.get("description"), declaration.get("title")
        inputs[parameter.name] = {
            "title": title if isinstance(title, str) else parameter.name,
            "description": description if isinstance(description, str) else "",
            "schema": schema,
            "minOccurs": 0 if parameter.has_default else 1,
            "maxOccurs": 1,
        }
    return inputs


def _declaration(workspace: Workspace, function: str) -> Mapping[str, Any]:
    """The function's entry in the stored document (descriptions live only there)."""
    found = (workspace.document.get("functions") or {}).get(function)
    return found if isinstance(found, dict) else {}


# ---- jobs --------------------------------------------------------------------------------


def status_info(execution: Execution, urls: Urls, html: bool = False, *, own: bool = False) -> dict[str, Any]:
    """The statusInfo of a job; `own` when it is the document asked for (self links then)."""
    href = urls.job(execution.id)
    times = execution.to_json()
    links = urls.self_links(html, URL(href)) if own else [link(href, "self", JSON, "job status")]
    links.append(link(urls.process(execution.workspace, execution.function), "process", JSON, "the process"))
    if execution.status in (ExecutionStatus.SUCCESSFUL, ExecutionStatus.FAILED):
        links.append(link(urls.job(execution.id, "/results"), OGC_REL + "results", JSON, "job results"))
    links.append(link(urls.job(execution.id, "/logs"), "logs", JSON, "job logs"))
    links.append(link(urls.job(execution.id, "/metadata"), "describedby", JSON, "job metadata"))
    if own:
        links.append(link(urls("/jobs"), "up", JSON, "jobs"))
    info = {
        "jobID": execution.id,
        "processID": process_id(execution.workspace, execution.function),
        "type": "process",
        "status": str(execution.status),
        "message": _message(execution),
        **{key: times[key] for key in ("created", "started", "finished", "updated") if times[key] is not None},
        "progress": _PROGRESS.get(execution.status, 100),
        "links": links,
    }
    return info


def _message(execution: Execution) -> str:
    status, error = execution.status, execution.error or {}
    if status == ExecutionStatus.ACCEPTED:
        return "accepted: waiting for its turn"
    if status == ExecutionStatus.RUNNING:
        return "running"
    if status == ExecutionStatus.SUCCESSFUL:
        return "successful" if execution.duration is None else f"successful in {execution.duration:.3g} ms"
    if status == ExecutionStatus.FAILED:
        return f"{error.get('error', 'failed')}: {error.get('message', '')}"
    return str(error.get("message") or "dismissed")


def job_metadata(execution: Execution, urls: Urls) -> dict[str, Any]:
    """What SEPEX calls metadata: what ran, with what, when and for how long."""
    record = execution.to_json()
    return {
        "jobID": execution.id,
        "processID": process_id(execution.workspace, execution.function),
        "workspace": execution.workspace,
        "function": execution.function,
        "language": execution.language,
        "version": execution.version,
        "parameters": record["parameters"],
        "status": record["status"],
        **{key: record[key] for key in ("created", "started", "finished", "updated", "duration")},
        "links": [link(urls.job(execution.id), "up", JSON, "job status")],
    }


# ---- execute requests --------------------------------------------------------------------


def execute_request(body: Any, spec: FunctionSpec) -> tuple[dict[str, Any], bool, str | None]:
    """(parameters, raw?, mode) from an execute request; unknown members are ignored.

    An input that has no default is required (minOccurs 1): its absence, or null, is refused.
    """
    if not isinstance(body, dict):
        raise Problem(400, 'the body must be an object such as {"inputs": {...}}', type=INVALID_PARAMETER)
    given = body.get("inputs") or {}
    if not isinstance(given, dict):
        raise Problem(400, "'inputs' must be an object mapping input ids to values", type=INVALID_PARAMETER)
    inputs = {name: _input_value(value, spec, name) for name, value in given.items()}
    for parameter in spec.parameters:
        if not parameter.has_default and inputs.get(parameter.name) is None:
            raise Problem(400, f"input {parameter.name!r} is required (minOccurs 1)", type=INVALID_PARAMETER)
    outputs = body.get("outputs") or {}
    if not isinstance(outputs, dict) or any(name != OUTPUT for name in outputs):
        raise Problem(400, f"this process has one output, {OUTPUT!r}", type=INVALID_PARAMETER)
    for wanted in outputs.values():
        if isinstance(wanted, dict) and wanted.get("transmissionMode", "value") != "value":
            raise Problem(400, "outputs are transmitted by value only", type=INVALID_PARAMETER)
    response = body.get("response", "document")
    if response not in ("document", "raw"):
        raise Problem(400, f"response {response!r}: document or raw", type=INVALID_PARAMETER)
    mode = body.get("mode")  # drafts before 1.0 asked for asynchronous execution in the body
    return inputs, response == "raw", mode if isinstance(mode, str) else None


def _input_value(value: Any, spec: FunctionSpec, name: str) -> Any:
    """An input's value; a qualified value (`{"value": ..., "mediaType": ...}`) is unwrapped,
    except for a parameter declared as an object, whose value is taken as given."""
    declared = next((parameter for parameter in spec.parameters if parameter.name == name), None)
    if (
        isinstance(value, dict)
        and "value" in value
        and set(value) <= _QUALIFIED
        and (declared is None or declared.type != "object")
    ):
        return value["value"]
    return value

"""The JS text the sandbox evaluates, and the mapping of V8's lines back to the user's.

A function compiles to `async function NAME($params = {}, {p1 = <default>, p2} = $params,
params = $params\\n) {\\n<body>\\n}` (without `params` when the body declares its own)
(see `define` in runtime.js), so the user's body starts at line HEADER_LINES + 1 of the
script named `fnbox/NAME.js`; syntax errors are mapped back from there here, stacks by
runtime.js.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from fnbox import jsonfast
from fnbox.sandboxes.base import FunctionSource, JSONValue
from fnbox.sandboxes.js.names import IDENTIFIER, PARAMS, is_local_parameter, is_valid_name

__all__ = [
    "GO",
    "GO_BATCH",
    "HEADER_LINES",
    "define_call",
    "request",
    "run_call",
    "source_url",
    "stack_line",
    "syntax_error",
]

HEADER_LINES = 2
# mini-racer's report of an uncaught exception: "<script>:<line>: <message>\n<source line>..."
_REPORT = re.compile(r"^(?P<script>[^\n]*?):(?P<line>-?\d+): (?P<message>[^\n]*)")


def source_url(name: str) -> str:
    return f"fnbox/{name}.js"


def _js(value: JSONValue) -> str:
    """A JS literal for a JSON value (JSON is JS; ASCII-only sidesteps U+2028 questions)."""
    return json.dumps(value, allow_nan=False)


def define_call(function: FunctionSource) -> str:
    """The eval that compiles one function; raises ValueError for a name that cannot be."""
    if not is_valid_name(function.name):
        raise ValueError(f"{function.name!r} is not a valid JavaScript function name")
    params = []
    for parameter in function.parameters:
        if not IDENTIFIER.match(parameter.name):
            raise ValueError(f"parameter {parameter.name!r} is not a valid JavaScript name")
        if not is_local_parameter(parameter.name):
            continue  # a reserved word: params.NAME only
        if parameter.has_default:
            try:
                params.append(f"{parameter.name} = {_js(parameter.default)}")
            except (TypeError, ValueError) as exc:
                raise ValueError(f"the default of parameter {parameter.name!r} is not JSON: {exc}") from exc
        else:
            params.append(parameter.name)
    header = "$params = {}"
    if params:
        header += ", {" + ", ".join(params) + "} = $params"
    parts = [function.name, header, function.code, source_url(function.name)]
    if not any(p.name == PARAMS and is_local_parameter(p.name) for p in function.parameters):
        # Declared defaults first, then what was given; computed keys, so "__proto__" stays data.
        # The header without it goes along for a body that declares a `params` of its own.
        defaults = "".join(f"[{_js(p.name)}]: {_js(p.default)}, " for p in function.parameters if p.has_default)
        parts[1] += f", {PARAMS} = {{{defaults}...$params}}" if defaults else f", {PARAMS} = $params"
        parts.append(header)
    return f"$fnbox.define({', '.join(_js(part) for part in parts)})"


#: The eval of a run whose request is in the mailbox: always the same text, compiled once.
GO = "$fnbox.go()\n//# sourceURL=fnbox:run"
#: The eval of a batch of runs whose requests are in the mailbox (see runtime.js's goBatch).
GO_BATCH = "$fnbox.goBatch()\n//# sourceURL=fnbox:run"


def request(parameters: Mapping[str, Any]) -> str:
    """A run's parameters as JSON text, for JSON.parse (so a `__proto__` key stays data)."""
    try:
        return jsonfast.dumps(parameters, allow_nan=False).decode()
    except UnicodeEncodeError:  # a lone surrogate, which JS strings may hold: `json` keeps it
        return json.dumps(parameters, allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def set_env_call(env: str) -> str:
    """The eval that makes `env` (a JSON object's text) the `process.env` of the next runs."""
    return f"$fnbox.setEnv({_js(env)})"


def arrived_call(call_id: int) -> str:
    """The eval that tells the isolate an asynchronous host call (a request, a lookup) has ended."""
    return f"$fnbox.arrived({int(call_id)})"


def run_call(run_id: int, function: int, request: str) -> str:
    """The eval of a run whose request is too big for the mailbox."""
    return f"$fnbox.run({run_id},{function},{_js(request)})\n//# sourceURL=fnbox:run"


def syntax_error(report: str, body: str) -> tuple[str, int | None]:
    """The message and body line of a failed `define_call`, from mini-racer's report."""
    match = _REPORT.match(report)
    if match is None:
        return report.strip().split("\n", 1)[0] or "the function does not compile", None
    line: int | None = None
    if match["script"] == "undefined" or match["script"].startswith("fnbox/"):
        lines = body.count("\n") + 1
        line = min(max(int(match["line"]) - HEADER_LINES, 1), lines)
    return match["message"], line


def stack_line(stack: str | None, function: str) -> int | None:
    """The body line of the first frame in `function` of a stack cleaned by runtime.js.

    That is where it threw, or where it called the function that did.
    """
    if stack is None:
        return None
    match = re.search(rf"[\s(]{function}\.js:(\d+)", stack)
    return int(match[1]) if match else None

"""The workspace document: validation of what a platform saves, and of run parameters.

The document is kept as the caller sent it (unknown keys included, so a platform moving
from the model service gets back the body it stored); `Workspace` is the checked view
the rest of fnbox works from.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fnbox.sandboxes.base import FunctionSource, Parameter
from fnbox.sandboxes.egress import EgressPolicy
from fnbox.sandboxes.errors import InvalidParameters, InvalidRequest
from fnbox.sandboxes.languages import LANGUAGES, language_named

__all__ = ["FunctionSpec", "Workspace", "check_parameters", "check_workspace_name", "lone_surrogate", "parse_workspace"]

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
IDENTIFIER_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

PARAMETER_TYPES = ("string", "number", "integer", "boolean", "object", "array")
MAX_FUNCTIONS = 1000
_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_PARAMETERS = 100
MAX_EGRESS_ENTRIES = 100


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    language: str  # "javascript" or "python"
    code: str
    parameters: tuple[Parameter, ...]
    timeout: float | None  # milliseconds, before capping
    memory: float | None  # megabytes, before capping

    def source(self) -> FunctionSource:
        return FunctionSource(name=self.name, code=self.code, parameters=self.parameters)


@dataclass(frozen=True)
class Workspace:
    name: str
    document: dict[str, Any]
    functions: Mapping[str, FunctionSpec]
    version: str  # content hash: a changed document is a new version
    #: What each language's sandbox compiles; made once per version, used by every run.
    sources: Mapping[str, tuple[FunctionSource, ...]] = field(default_factory=dict)
    #: The document's `egress:` list, narrowing the server's egress policy; None: not narrowed.
    egress: tuple[str, ...] | None = None

    @property
    def languages(self) -> set[str]:
        return set(self.sources)


def check_workspace_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InvalidRequest(
            f"invalid workspace name {name!r}: use 1 to 64 letters, digits, '_' or '-', "
            "not starting with a digit or '-'",
            details={"workspace": name},
        )
    return name


def parse_workspace(name: str, document: Any) -> Workspace:
    """Check a document and return its checked view; raise InvalidRequest naming the fault."""
    check_workspace_name(name)
    if not isinstance(document, dict):
        raise InvalidRequest("the workspace document must be a JSON/YAML object with a 'functions' object")
    surrogate = lone_surrogate(document)
    if surrogate is not None:
        raise InvalidRequest(f"the document holds a lone surrogate ({surrogate}), which is not Unicode text")
    functions = document.get("functions", {})
    if functions is None:
        functions = {}
    if not isinstance(functions, dict):
        raise InvalidRequest("'functions' must be an object mapping function names to functions")
    if len(functions) > MAX_FUNCTIONS:
        raise InvalidRequest(f"a workspace holds at most {MAX_FUNCTIONS} functions")
    specs = {fname: _parse_function(fname, body) for fname, body in functions.items()}
    sources: dict[str, tuple[FunctionSource, ...]] = {}
    for spec in specs.values():
        sources[spec.language] = (*sources.get(spec.language, ()), spec.source())
    return Workspace(
        name=name,
        document=document,
        functions=specs,
        version=document_version(document),
        sources=sources,
        egress=_parse_egress(document.get("egress")),
    )


def _parse_egress(entries: Any) -> tuple[str, ...] | None:
    """A workspace's `egress:` list: hosts, `*.domain` patterns, addresses or ranges it may reach.

    It narrows the server's FUNCTIONS_EGRESS (a request must pass both), so it can never open
    what the server refuses; an empty list turns outbound requests off for the workspace.
    """
    if entries is None:
        return None
    if not isinstance(entries, list) or len(entries) > MAX_EGRESS_ENTRIES:
        raise InvalidRequest(
            f"'egress' must be a list of at most {MAX_EGRESS_ENTRIES} hosts, *.domain patterns, addresses or ranges"
        )
    try:
        EgressPolicy.from_entries(entries)
    except ValueError as exc:
        raise InvalidRequest(f"'egress': {exc}", details={"egress": entries}) from None
    return tuple(entry.strip() for entry in entries)


def document_version(document: Mapping[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _parse_function(name: Any, body: Any) -> FunctionSpec:
    if not isinstance(name, str) or not IDENTIFIER_PATTERN.match(name):
        raise InvalidRequest(
            f"invalid function name {name!r}: use 1 to 64 letters, digits or '_', not starting with a digit",
            details={"function": str(name)},
        )
    if not isinstance(body, dict):
        raise InvalidRequest(f"function {name!r} must be an object with a 'code' string", details={"function": name})
    named = body.get("language", next(iter(LANGUAGES)))
    found = language_named(named)
    if found is None:
        known = ", ".join(alias for language in LANGUAGES.values() for alias in language.aliases)
        raise InvalidRequest(f"function {name!r}: unknown language {named!r} ({known})", details={"function": name})
    language = found.name
    if found.reserves(name):
        raise InvalidRequest(
            f"function name {name!r} is reserved in {language}: choose another name", details={"function": name}
        )
    code = body.get("code")
    if not isinstance(code, str):
        raise InvalidRequest(f"function {name!r}: 'code' must be a string", details={"function": name})
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRequest(f"function {name!r}: 'description' must be a string", details={"function": name})
    return FunctionSpec(
        name=name,
        language=language,
        code=code,
        parameters=_parse_parameters(name, language, body.get("parameters")),
        timeout=_positive_number(name, "timeout", body.get("timeout")),
        memory=_positive_number(name, "memory", body.get("memory")),
    )


def _parse_parameters(function: str, language: str, declared: Any) -> tuple[Parameter, ...]:
    if declared is None:
        return ()
    if not isinstance(declared, dict):
        raise InvalidRequest(f"function {function!r}: 'parameters' must be an object", details={"function": function})
    if len(declared) > MAX_PARAMETERS:
        raise InvalidRequest(f"function {function!r} declares more than {MAX_PARAMETERS} parameters")
    parameters = []
    for pname, schema in declared.items():
        where = {"function": function, "parameter": pname}
        if not isinstance(pname, str) or not IDENTIFIER_PATTERN.match(pname):
            raise InvalidRequest(
                f"function {function!r}: parameter name {pname!r} is not an identifier (1 to 64 letters, digits "
                f"or '_', not starting with a digit); leave it undeclared and read it as params[{pname!r}]",
                details=where,
            )
        if schema is None:
            schema = {}
        if not isinstance(schema, dict):
            raise InvalidRequest(f"function {function!r}: parameter {pname!r} must be an object", details=where)
        ptype = schema.get("type")
        if ptype is not None and ptype not in PARAMETER_TYPES:
            raise InvalidRequest(
                f"function {function!r}: parameter {pname!r} has unknown type {ptype!r} "
                f"(one of {', '.join(PARAMETER_TYPES)})",
                details=where,
            )
        has_default = "default" in schema
        default = schema.get("default")
        if has_default and default is not None and not _matches(ptype, default):
            raise InvalidRequest(
                f"function {function!r}: the default of parameter {pname!r} is not of type {ptype}", details=where
            )
        parameters.append(Parameter(name=pname, type=ptype, default=default, has_default=has_default))
    return tuple(parameters)


def _positive_number(function: str, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise InvalidRequest(
            f"function {function!r}: {key!r} must be a positive number", details={"function": function}
        )
    return float(value)


def check_parameters(function: FunctionSpec, given: Any) -> dict[str, Any]:
    """Check run parameters against the declared types.

    Undeclared parameters are accepted and passed on: they are not locals of the function
    (the model service behaves the same way), but its `params` mapping holds them; `null`
    stands for "not given".
    """
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise InvalidParameters("'parameters' must be an object")
    surrogate = lone_surrogate(given)
    if surrogate is not None:
        raise InvalidParameters(f"the parameters hold a lone surrogate ({surrogate}), which is not Unicode text")
    checked = dict(given)
    for parameter in function.parameters:
        value = checked.get(parameter.name)
        if value is None:
            checked.pop(parameter.name, None)  # a declared parameter given as null was not given
        elif not _matches(parameter.type, value):
            raise InvalidParameters(
                f"parameter {parameter.name!r} must be of type {parameter.type}, got {_json_type(value)}",
                details={"parameter": parameter.name, "expected": parameter.type, "got": _json_type(value)},
            )
    return checked


def lone_surrogate(value: Any) -> str | None:
    """The first lone surrogate (as "U+D800") in the strings of a JSON value, keys included.

    A JSON \\ud800 escape decodes to one (as does YAML's with PyYAML's pure-Python
    loader), but it is not Unicode text: every UTF-8 encode downstream (the store, the
    worker frames, the records, the answer) would fail on it, so it is refused where
    values come in.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                found = _SURROGATE.search(item)
                if found:
                    return f"U+{ord(found.group()):04X}"
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _matches(ptype: str | None, value: Any) -> bool:
    if ptype is None:
        return True
    return _json_type(value) in _ACCEPTED[ptype]


_ACCEPTED: dict[str, Iterable[str]] = {
    "string": ("string",),
    "number": ("integer", "number"),
    "integer": ("integer",),
    "boolean": ("boolean",),
    "object": ("object",),
    "array": ("array",),
}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    if value is None:
        return "null"
    return type(value).__name__

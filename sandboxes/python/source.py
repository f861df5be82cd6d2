"""One function of the document compiled into a `def` of the shared module.

`code` is a function body: it is parsed on its own, so every line number the compiler,
the policy or a traceback reports is a line of the user's body (1-based), then wrapped as
`def NAME(p1=<default>, p2=None): <body>` and run through the policy.
"""

from __future__ import annotations

import ast
import keyword
import re
import sys
import textwrap
from dataclasses import dataclass
from types import CodeType
from typing import Any

from sandboxes.base import FunctionSource
from sandboxes.errors import CompilationError
from sandboxes.python.namespace import RESERVED_NAMES
from sandboxes.python.policy import FnboxPolicy

_POLICY_ERROR = re.compile(r"Line (\d+|None): (.*)", re.S)


@dataclass(frozen=True)
class CompiledFunction:
    name: str
    filename: str
    code: CodeType
    parameters: tuple[str, ...]
    lines: list[str]


def compile_function(function: FunctionSource, allowed_modules: frozenset[str]) -> CompiledFunction:
    """Compile one function, or raise CompilationError with its name and body line."""
    name = function.name
    _check_name(name, "function")
    parameters = tuple(p.name for p in function.parameters)
    for parameter in parameters:
        _check_name(parameter, "parameter", function=name)
    if len(set(parameters)) != len(parameters):
        raise _error(name, None, "a parameter is declared twice")

    filename = f"<fnbox {name}>"
    body = textwrap.dedent(function.code)
    try:
        tree = ast.parse(body, filename=filename, mode="exec")
    except SyntaxError as exc:
        raise _error(name, exc.lineno, f"{type(exc).__name__}: {exc.msg}") from None
    except (ValueError, MemoryError, RecursionError) as exc:
        raise _error(name, None, f"the code cannot be parsed: {exc}") from None

    definition = ast.FunctionDef(
        name=name,
        args=ast.arguments(
            posonlyargs=[],
            args=[ast.arg(arg=p) for p in parameters],
            vararg=None,
            kwonlyargs=[],
            kw_defaults=[],
            kwarg=None,
            defaults=[],
        ),
        body=tree.body or [ast.Pass()],
        decorator_list=[],
        returns=None,
        lineno=1,
        col_offset=0,
        **({"type_params": []} if sys.version_info >= (3, 12) else {}),
    )
    module = ast.fix_missing_locations(ast.Module(body=[definition], type_ignores=[]))

    errors: list[str] = []
    try:
        FnboxPolicy(errors, [], {}, allowed_modules=allowed_modules).visit(module)
    except RecursionError:
        raise _error(name, None, "the code is nested too deeply") from None
    if errors:
        line, message = _policy_error(errors[0])
        extra = {"errors": [_policy_error(e)[1] for e in errors]} if len(errors) > 1 else {}
        raise _error(name, line, message, **extra)

    # Added after the policy ran: it would refuse the `_missing_` name (rightly, in user code).
    definition.args.defaults, prologue = _defaults(function)
    definition.body[0:0] = prologue
    ast.fix_missing_locations(module)
    try:
        code = compile(module, filename, "exec")
    except SyntaxError as exc:
        raise _error(name, exc.lineno, f"{type(exc).__name__}: {exc.msg}") from None
    except (ValueError, MemoryError, RecursionError) as exc:
        raise _error(name, None, f"the code cannot be compiled: {exc}") from None
    return CompiledFunction(name, filename, code, parameters, body.splitlines())


def _check_name(name: str, kind: str, *, function: str | None = None) -> None:
    owner = function or name
    if not name.isidentifier() or keyword.iskeyword(name):
        raise _error(owner, None, f"{kind} name {name!r} is not a valid Python identifier")
    if name.startswith("_"):
        raise _error(owner, None, f"{kind} name {name!r} starts with '_', which is reserved")
    if kind == "function" and name in RESERVED_NAMES:
        raise _error(owner, None, f"function name {name!r} is reserved (a builtin or a name the sandbox defines)")


def _defaults(function: FunctionSource) -> tuple[list[ast.expr], list[ast.stmt]]:
    """Scalar defaults go into the signature; a dict or list default is rebuilt on each
    call (`if p is _missing_: p = {...}`), so one call's changes never leak into the next."""
    defaults: list[ast.expr] = []
    prologue: list[ast.stmt] = []
    for parameter in function.parameters:
        value = parameter.default if parameter.has_default else None
        if isinstance(value, (dict, list)):
            defaults.append(ast.Name(id="_missing_", ctx=ast.Load()))
            prologue.append(
                ast.If(
                    test=ast.Compare(
                        left=ast.Name(id=parameter.name, ctx=ast.Load()),
                        ops=[ast.Is()],
                        comparators=[ast.Name(id="_missing_", ctx=ast.Load())],
                    ),
                    body=[ast.Assign(targets=[ast.Name(id=parameter.name, ctx=ast.Store())], value=_literal(value))],
                    orelse=[],
                    lineno=1,
                    col_offset=0,
                )
            )
        elif value is None or isinstance(value, (str, int, float, bool)):
            defaults.append(ast.Constant(value))
        else:
            raise _error(function.name, None, f"the default of parameter {parameter.name!r} is not a JSON value")
    return defaults, prologue


def _literal(value: Any) -> ast.expr:
    if isinstance(value, dict):
        return ast.Dict(keys=[ast.Constant(k) for k in value], values=[_literal(v) for v in value.values()])
    if isinstance(value, list):
        return ast.List(elts=[_literal(v) for v in value], ctx=ast.Load())
    return ast.Constant(value)


def _policy_error(error: str) -> tuple[int | None, str]:
    match = _POLICY_ERROR.match(error)
    if not match:
        return None, error
    line = match.group(1)
    return (int(line) if line != "None" else None), match.group(2)


def _error(function: str, line: int | None, message: str, **details: Any) -> CompilationError:
    where = f" (line {line})" if line else ""
    return CompilationError(
        f"function {function!r} does not compile{where}: {message}",
        details={"function": function, "line": line, **details},
    )

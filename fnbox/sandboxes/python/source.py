"""One function of the document compiled into a `def` of the shared module.

`code` is a function body: it is parsed on its own, so every line number the compiler,
the policy or a traceback reports is a line of the user's body (1-based), then wrapped as
`def NAME(p1=<default>, p2=None, **_given_): <body>` and run through the policy.

A declared parameter is a local variable when its name can be one (not a keyword, not
starting with "_"): it shadows a builtin of the same name inside its function only. Every
parameter, declared or not and whatever its name, is also in the `params` dict (declared
ones with their defaults), unless a declared parameter is itself called `params`.
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

from fnbox.sandboxes.base import FunctionSource
from fnbox.sandboxes.errors import CompilationError
from fnbox.sandboxes.python.names import FORBIDDEN_CALLS, PARAMS, RESERVED_NAMES, RESERVED_PARAMETER_NAMES
from fnbox.sandboxes.python.policy import FnboxPolicy

_POLICY_ERROR = re.compile(r"Line (\d+|None): (.*)", re.S)

# CPython's parser and compiler hold the worker's GIL while they work, stalling every
# other run of the worker, and the policy walks the tree in Python: the code a save may
# make them chew on is bounded.

#: Characters of Python code a workspace may have, all functions together (parsing takes
#: up to ~2 µs a character).
MAX_SOURCE_SIZE = 256 * 1024
#: Syntax tree nodes of one function (the policy and the compiler take ~7 µs a node).
MAX_NODES = 50_000
#: Functions, lambdas, classes and comprehensions in one function: the compiler slows
#: down quadratically with many identical nested functions (2,000 take 0.1 s, 40,000 a minute).
MAX_SCOPES = 1_000
#: Python 3.12 added type parameters to a function definition; older versions refuse the field.
_TYPE_PARAMS: dict[str, Any] = {"type_params": []} if sys.version_info >= (3, 12) else {}
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.comprehension)


@dataclass(frozen=True)
class CompiledFunction:
    name: str
    filename: str
    code: CodeType
    parameters: tuple[str, ...]
    lines: list[str]
    #: The modules its code imports (a run can only reach a module it imports: see sandbox.py).
    imports: frozenset[str] = frozenset()
    #: Whether a run can leave state for the next ones (it names `cache`, or declares a `global`).
    keeps_state: bool = False


def compile_function(
    function: FunctionSource, allowed_modules: frozenset[str], *, source_left: int = MAX_SOURCE_SIZE
) -> CompiledFunction:
    """Compile one function, or raise CompilationError with its name and body line.

    `source_left` is what remains of the workspace's MAX_SOURCE_SIZE after the functions
    compiled before this one.
    """
    if len(function.code) > source_left:
        limit = f"a workspace's Python functions may have {MAX_SOURCE_SIZE // 1024} KB of code together"
        raise _error(function.name, None, f"the code is too big: {limit}")
    try:
        return _compile(function, allowed_modules)
    except RecursionError:  # ast helpers and the policy walk the tree recursively
        raise _error(function.name, None, "the code is nested too deeply") from None
    except MemoryError:
        raise _error(function.name, None, "the code is too big to compile") from None


def _compile(function: FunctionSource, allowed_modules: frozenset[str]) -> CompiledFunction:
    name = function.name
    _check_name(name, "function")
    declared = tuple(p.name for p in function.parameters)
    for parameter in declared:
        if not parameter.isidentifier():
            raise _error(
                name, None, f"parameter name {parameter!r} is not an identifier: read it as params[{parameter!r}]"
            )
    if len(set(declared)) != len(declared):
        raise _error(name, None, "a parameter is declared twice")
    parameters = tuple(p for p in declared if is_local(p))

    filename = f"<fnbox {name}>"
    body = textwrap.dedent(function.code)
    try:
        tree = ast.parse(body, filename=filename, mode="exec")
    except SyntaxError as exc:
        raise _error(name, exc.lineno, f"{type(exc).__name__}: {exc.msg}") from None
    except (ValueError, MemoryError, RecursionError) as exc:
        raise _error(name, None, f"the code cannot be parsed: {_reason(exc)}") from None
    _check_size(name, tree)

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
        **_TYPE_PARAMS,
    )
    module = ast.fix_missing_locations(ast.Module(body=[definition], type_ignores=[]))

    errors: list[str] = []
    shadowed = frozenset(parameters) & frozenset([*FORBIDDEN_CALLS, "super"])
    FnboxPolicy(errors, [], {}, allowed_modules=allowed_modules, shadowed=shadowed).visit(module)
    if errors:
        line, message = _policy_error(errors[0])
        extra = {"errors": [_policy_error(e)[1] for e in errors]} if len(errors) > 1 else {}
        raise _error(name, line, message, **extra)

    # Added after the policy ran: it would refuse the `_missing_` name (rightly, in user code).
    definition.args.defaults, prologue = _defaults(function)
    definition.args.kwarg = ast.arg(arg="_given_")
    if PARAMS not in parameters and _uses(tree, PARAMS):
        prologue.append(_params_statement(function))
    definition.body[0:0] = prologue
    ast.fix_missing_locations(module)
    try:
        code = compile(module, filename, "exec", dont_inherit=True)  # not this module's `annotations` future
    except SyntaxError as exc:
        raise _error(name, exc.lineno, f"{type(exc).__name__}: {exc.msg}") from None
    except (ValueError, MemoryError, RecursionError) as exc:
        raise _error(name, None, f"the code cannot be compiled: {_reason(exc)}") from None
    return CompiledFunction(name, filename, code, parameters, body.splitlines(), _imports(tree), _keeps_state(tree))


def _imports(tree: ast.AST) -> frozenset[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
    return frozenset(names)


def _keeps_state(tree: ast.AST) -> bool:
    """Whether the code can change what later runs see: the workspace's `cache`, or a global of its module."""
    return any(
        isinstance(node, ast.Global) or (isinstance(node, ast.Name) and node.id == "cache") for node in ast.walk(tree)
    )


def _check_size(name: str, tree: ast.AST) -> None:
    nodes = scopes = 0
    stack = [tree]
    while stack:
        node = stack.pop()
        nodes += 1
        if isinstance(node, _SCOPES):
            scopes += 1
        if nodes > MAX_NODES:
            raise _error(name, None, f"the code is too big: a function may have {MAX_NODES:,} syntax nodes")
        if scopes > MAX_SCOPES:
            limit = f"a function may have {MAX_SCOPES:,} functions, lambdas, classes and comprehensions"
            raise _error(name, getattr(node, "lineno", None), f"the code is too big: {limit}")
        stack.extend(ast.iter_child_nodes(node))


def _reason(exc: BaseException) -> str:
    """What the parser or compiler said; it raises some errors without a message."""
    if isinstance(exc, (MemoryError, RecursionError)) and not str(exc):
        return "it is nested too deeply"
    return str(exc) or type(exc).__name__


def _check_name(name: str, kind: str, *, function: str | None = None) -> None:
    owner = function or name
    if not name.isidentifier() or keyword.iskeyword(name):
        raise _error(owner, None, f"{kind} name {name!r} is not a valid Python identifier")
    if name.startswith("_"):
        raise _error(owner, None, f"{kind} name {name!r} starts with '_', which is reserved")
    if kind == "function" and name in RESERVED_NAMES:
        raise _error(owner, None, f"function name {name!r} is reserved (a builtin or a name the sandbox defines)")


def is_local(parameter: str) -> bool:
    """Whether a declared parameter becomes a local variable of its function."""
    return parameter.isidentifier() and not parameter.startswith("_") and parameter not in RESERVED_PARAMETER_NAMES


def _uses(tree: ast.AST, name: str) -> bool:
    return any(isinstance(node, ast.Name) and node.id == name for node in ast.walk(tree))


def _params_statement(function: FunctionSource) -> ast.stmt:
    """`params = _params_(_given_, {"p1": p1, ...}, {"class": <default>, ...}, ("p2", ...))`.

    The last are the declared parameters without a default: left out when not given, as
    JavaScript's `params` leaves them out.
    """
    local = [p.name for p in function.parameters if is_local(p.name)]
    others = [p for p in function.parameters if not is_local(p.name) and p.has_default]
    optional = [p.name for p in function.parameters if is_local(p.name) and not p.has_default]
    statement = ast.Assign(
        targets=[ast.Name(id=PARAMS, ctx=ast.Store())],
        value=_call_name(
            "_params_",
            ast.Name(id="_given_", ctx=ast.Load()),
            ast.Dict(keys=[ast.Constant(n) for n in local], values=[ast.Name(id=n, ctx=ast.Load()) for n in local]),
            ast.Dict(keys=[ast.Constant(p.name) for p in others], values=[_literal(p.default) for p in others]),
            ast.Tuple(elts=[ast.Constant(n) for n in optional], ctx=ast.Load()),
        ),
        lineno=1,
        col_offset=0,
    )
    return statement


def _call_name(func: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Name(id=func, ctx=ast.Load()), args=list(args), keywords=[])


def _defaults(function: FunctionSource) -> tuple[list[ast.expr], list[ast.stmt]]:
    """Scalar defaults go into the signature; a dict or list default is rebuilt on each
    call (`if p is _missing_: p = {...}`), so one call's changes never leak into the next."""
    defaults: list[ast.expr] = []
    prologue: list[ast.stmt] = []
    for parameter in function.parameters:
        if not is_local(parameter.name):
            continue
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

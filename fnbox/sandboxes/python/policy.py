"""The compile-time half of the policy: RestrictedPython's transformer, tightened for fnbox.

On top of RestrictedPython (no `_` names, guarded attribute/item access and iteration,
no `exec`/`eval`, no `try/except*`, no frame attributes), this transformer:

- inserts a deadline check at the top of every loop body, function body, lambda and
  comprehension, so a run stops itself when its time is up (a thread cannot be killed);
- compiles bare `except:` as `except Exception:` and refuses `except BaseException`, and
  `return`/`break`/`continue` inside `finally`, so user code cannot swallow that stop;
- routes `*`, `**`, `<<`, `%` and f-string format specs through size guards, and
  augmented assignment through the same operator functions;
- refuses imports outside the allow-list and calls of introspection builtins, at save
  time with the line;
- lets classes define the special methods of names.DUNDER_METHODS (and call the parent's
  as `super().__init__(...)`), and refuses those Python or the standard library would
  call behind the guards' back (names.REFUSED_DUNDER_METHODS), saying why.

The names it emits (`_tick`, `_getattr_`, `_mul_`...) start with `_`, which user code can
never bind or read, so it cannot shadow or reach them.
"""

from __future__ import annotations

import ast
import operator
from typing import Any, cast

from RestrictedPython.transformer import RestrictingNodeTransformer, copy_locations

from fnbox.sandboxes.python.names import DUNDER_METHODS, FORBIDDEN_CALLS, REFUSED_DUNDER_METHODS

#: Exception classes a handler may not name: catching them would catch the deadline stop.
FORBIDDEN_HANDLERS = frozenset({"BaseException", "GeneratorExit", "KeyboardInterrupt", "SystemExit"})

#: Augmented-assignment operators and the guard each compiles to (`x += y` -> `x = _iadd_(x, y)`).
INPLACE_GUARDS = {
    ast.Add: "_iadd_",
    ast.Sub: "_isub_",
    ast.Mult: "_imul_",
    ast.Div: "_itruediv_",
    ast.FloorDiv: "_ifloordiv_",
    ast.Mod: "_imod_",
    ast.Pow: "_ipow_",
    ast.LShift: "_ilshift_",
    ast.RShift: "_irshift_",
    ast.BitOr: "_ior_",
    ast.BitXor: "_ixor_",
    ast.BitAnd: "_iand_",
    ast.MatMult: "_imatmul_",
}

#: Binary operators that can allocate without bound in one step, and their guard.
BINOP_GUARDS = {ast.Mult: "_mul_", ast.Pow: "_pow_", ast.LShift: "_lshift_", ast.Mod: "_mod_"}


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


_ALLOWED_DUNDERS_HINT = (
    "Classes may define __init__, __repr__, __str__, __eq__ and the other comparisons, __hash__, __len__, __iter__, __next__, "
    "__contains__, __getitem__, __setitem__, the arithmetic operators, __enter__/__exit__, __call__ and __bool__."
)


def _name(id_: str) -> ast.Name:
    return ast.Name(id=id_, ctx=ast.Load())


def _call(func: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=_name(func), args=list(args), keywords=[])


def tick_statement(at: ast.AST) -> ast.stmt:
    """`if _clock_() > _deadline_: _timeout_()`: about 40 ns when there is time left."""
    node = ast.If(
        test=ast.Compare(left=_call("_clock_"), ops=[ast.Gt()], comparators=[_name("_deadline_")]),
        body=[ast.Expr(value=_call("_timeout_"))],
        orelse=[],
    )
    _locate(node, at)
    return node


def tick_expression(at: ast.AST) -> ast.expr:
    """`(_clock_() <= _deadline_ or _timeout_())`: always true while there is time left."""
    node = ast.BoolOp(
        op=ast.Or(),
        values=[
            ast.Compare(left=_call("_clock_"), ops=[ast.LtE()], comparators=[_name("_deadline_")]),
            _call("_timeout_"),
        ],
    )
    _locate(node, at)
    return node


def _locate(node: ast.AST, at: ast.AST) -> None:
    for child in ast.walk(node):
        if "lineno" in child._attributes:
            ast.copy_location(child, at)
            if getattr(at, "end_lineno", None) is not None:
                child.end_lineno = at.end_lineno  # type: ignore[attr-defined]
                child.end_col_offset = at.end_col_offset  # type: ignore[attr-defined]


class FnboxPolicy(RestrictingNodeTransformer):
    """RestrictedPython's transformer with fnbox's deadline checks and size guards."""

    def __init__(
        self,
        errors: list[str] | None = None,
        warnings: list[str] | None = None,
        used_names: dict[str, bool] | None = None,
        *,
        allowed_modules: frozenset[str] = frozenset(),
        shadowed: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(errors, warnings, used_names)
        self.allowed_modules = allowed_modules
        #: Builtins a declared parameter shadows: a call of it calls the parameter.
        self.shadowed = shadowed
        self._methods: set[int] = set()
        self._super_calls: set[int] = set()
        # "urllib" may be imported when "urllib.parse" is allowed.
        self.importable = allowed_modules | {name.rpartition(".")[0] for name in allowed_modules if "." in name}

    # Names: `print` is a plain builtin here, not RestrictedPython's print collector.

    def visit_Name(self, node: ast.Name) -> Any:
        node = self.node_contents_visit(node)
        if isinstance(node.ctx, ast.Load) and node.id == "print":
            return node
        if node.id == "super" and id(node) not in self._super_calls and "super" not in self.shadowed:
            self.error(node, '"super" may only be called: super().method(...) or super(Class, self).method(...).')
            return node
        self.check_name(node, node.id)
        return node

    def visit_Call(self, node: ast.Call) -> Any:
        func = node.func
        if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS and func.id not in self.shadowed:
            self.error(node, FORBIDDEN_CALLS[func.id] + ".")
        if isinstance(func, ast.Name) and func.id == "super" and "super" not in self.shadowed:
            self._super_calls.add(id(func))
            if node.args or node.keywords:  # super(Class, obj): checked at run time (see guards.super_builtin)
                visited = super().visit_Call(node)
                func.id = "_super_"  # once visited: user code may not name it
                return visited
        return super().visit_Call(node)

    # Classes: special methods from an allow-list.

    def visit_ClassDef(self, node: ast.ClassDef) -> Any:
        for statement in node.body:
            if isinstance(statement, ast.FunctionDef):
                self._methods.add(id(statement))
        return super().visit_ClassDef(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> Any:
        name = node.name
        if _is_dunder(name) and id(node) in self._methods:
            if name in DUNDER_METHODS:
                node.name = "special_method"  # past RestrictedPython's "_" check, restored below
                try:
                    node = cast(ast.FunctionDef, self._visit_function(node))
                finally:
                    node.name = name
                return node
            why = REFUSED_DUNDER_METHODS.get(name, "fnbox has not vetted it")
            self.error(node, f'Defining "{name}" is not allowed: {why}. ' + _ALLOWED_DUNDERS_HINT)
        return self._visit_function(node)

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        """`super().__init__(...)`: a special method of the parent class, through zero-argument super()."""
        value = node.value
        if (
            node.attr in DUNDER_METHODS
            and isinstance(node.ctx, ast.Load)
            and isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id == "super"
            and not value.args
            and not value.keywords
        ):
            return node
        if _is_dunder(node.attr):
            self.error(
                node,
                f'"{node.attr}" is an invalid attribute name because it starts with "_": fnbox functions do '
                "not read or write special attributes (use isinstance(), or call the operation: len(x), str(x)...).",
            )
            self.visit(node.value)  # its errors too
            return node
        return super().visit_Attribute(node)

    # Imports: only vetted modules, never relative.

    def visit_Import(self, node: ast.Import) -> Any:
        for alias in node.names:
            self._check_module(node, alias.name)
        return super().visit_Import(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> Any:
        if node.level:
            self.error(node, "Relative imports are not allowed.")
        elif node.module is not None and node.module not in self.allowed_modules:
            if node.module in self.importable:  # `from urllib import parse`: the package of an allowed module
                for alias in node.names:
                    self._check_module(node, f"{node.module}.{alias.name}")
            else:
                self._check_module(node, node.module)
        return super().visit_ImportFrom(node)

    def _check_module(self, node: ast.AST, module: str) -> None:
        if module not in self.importable:
            allowed = ", ".join(sorted(self.allowed_modules)) or "none"
            self.error(
                node, f'Import of "{module}" is not allowed: fnbox functions import vetted modules only ({allowed}).'
            )

    def visit_AnnAssign(self, node: ast.AnnAssign) -> Any:
        """`x: int = 1`: the target and value are checked as in a plain assignment."""
        return self.node_contents_visit(node)

    # Deadline checks in every loop, function, lambda and comprehension.

    def guard_iter(self, node: Any) -> Any:
        """`for x in it` -> `for x in _getiter_(it)`, also with tuple targets.

        RestrictedPython also wraps tuple targets in `_iter_unpack_sequence_`, a Python
        generator per loop; fnbox's `_getiter_` has nothing to check per item, so the
        unpacking stays native.
        """
        node = self.node_contents_visit(node)
        new_iter = _call("_getiter_", node.iter)
        copy_locations(new_iter, node.iter)
        node.iter = new_iter
        return node

    def protect_unpack_sequence(self, target: ast.Tuple, value: ast.expr) -> ast.expr:  # type: ignore[override]
        return value  # see guard_iter: unpacking needs no per-item check in fnbox

    def visit_For(self, node: ast.For) -> Any:
        node = cast(ast.For, super().visit_For(node))
        node.body.insert(0, tick_statement(node))
        return node

    def visit_While(self, node: ast.While) -> Any:
        node = cast(ast.While, super().visit_While(node))
        node.body.insert(0, tick_statement(node))
        return node

    def _visit_function(self, node: ast.FunctionDef) -> Any:
        node = cast(ast.FunctionDef, super().visit_FunctionDef(node))
        node.body.insert(0, tick_statement(node.body[0] if node.body else node))
        return node

    def visit_Lambda(self, node: ast.Lambda) -> Any:
        node = cast(ast.Lambda, super().visit_Lambda(node))
        node.body = ast.BoolOp(op=ast.And(), values=[tick_expression(node.body), node.body])
        copy_locations(node.body, node.body.values[1])
        return node

    def visit_comprehension(self, node: ast.comprehension) -> Any:
        node = cast(ast.comprehension, super().visit_comprehension(node))
        node.ifs.insert(0, tick_expression(node.iter))
        return node

    # Exceptions: the deadline stop must stay uncatchable.

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> Any:
        node = cast(ast.ExceptHandler, super().visit_ExceptHandler(node))
        if node.type is None:
            node.type = _name("Exception")
            copy_locations(node.type, node)
        else:
            for caught in ast.walk(node.type):
                if isinstance(caught, ast.Name) and caught.id in FORBIDDEN_HANDLERS:
                    self.error(node, f'Catching "{caught.id}" is not allowed: catch Exception.')
        return node

    def visit_Try(self, node: ast.Try) -> Any:
        for statement in node.finalbody:
            for escape in _finally_escapes(statement, in_loop=False):
                name = type(escape).__name__.lower()
                self.error(escape, f'"{name}" inside "finally" is not allowed (it would swallow errors).')
        return super().visit_Try(node)

    # Operators that can allocate a lot in one step go through size guards.

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        node = self.node_contents_visit(node)
        guard = BINOP_GUARDS.get(type(node.op))
        if guard is None or _float_literal(node.left) or _float_literal(node.right):
            return node
        folded = _fold(node)
        if folded is not None:
            return folded
        new_node = _call(guard, node.left, node.right)
        copy_locations(new_node, node)
        return new_node

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        """`x op= y` -> `x = _iop_(x, y)`; items and attributes through `_augitem_`/`_augattr_`."""
        guard = _name(INPLACE_GUARDS[type(node.op)])
        target = node.target
        value = self.visit(node.value)
        if isinstance(target, ast.Name):
            self.check_name(target, target.id)
            new_node: ast.stmt = ast.Assign(
                targets=[ast.Name(id=target.id, ctx=ast.Store())],
                value=ast.Call(func=guard, args=[_name(target.id), value], keywords=[]),
            )
        elif isinstance(target, ast.Subscript):
            if any(isinstance(part, ast.Slice) for part in ast.walk(target.slice)):
                self.error(node, "Augmented assignment of slices is not allowed.")
                return node
            obj, key = self.visit(target.value), self.visit(target.slice)
            new_node = ast.Expr(value=_call("_augitem_", obj, key, guard, value))
        elif isinstance(target, ast.Attribute):
            self._check_attribute_name(node, target.attr)
            obj = self.visit(target.value)
            new_node = ast.Expr(value=_call("_augattr_", obj, ast.Constant(target.attr), guard, value))
        else:  # pragma: no cover - the grammar allows nothing else
            self.not_allowed(node)
            return node
        copy_locations(new_node, node)
        return new_node

    def _check_attribute_name(self, node: ast.AST, attr: str) -> None:
        """Record the errors a plain read of `.attr` would (underscore, frame attributes)."""
        probe = ast.Attribute(value=_name("x"), attr=attr, ctx=ast.Load())
        copy_locations(probe, cast(ast.expr, node))
        super().visit_Attribute(probe)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> Any:
        """`f"{x:{spec}}"` -> `f"{_format_(x, f'{spec}', conversion)}"`: the spec sets a width."""
        node = self.node_contents_visit(node)
        if node.format_spec is None:
            return node
        call = _call("_format_", node.value, node.format_spec, ast.Constant(node.conversion))
        copy_locations(call, node)
        node.value, node.conversion, node.format_spec = call, -1, None
        return node


#: Largest constant `_fold` computes at compile time (CPython's own folding stops at 128 bits
#: and 4096 items, and would leave `10 ** 100000000` to run unguarded).
_FOLD_LIMIT = 4096


def _fold(node: ast.BinOp) -> ast.Constant | None:
    """`3 * 10 ** 6`, `'-' * 20`: small results of literals become constants, so a guard
    call is not paid on each evaluation; anything bigger keeps its guard."""
    a, b = _literal_value(node.left), _literal_value(node.right)
    if type(b) is not int or type(a) not in (int, float, str):
        return None
    if type(a) is int:
        size = {
            ast.Mult: abs(a).bit_length() + b.bit_length(),
            ast.Pow: abs(a).bit_length() * b if b >= 0 else _FOLD_LIMIT + 1,
            ast.LShift: abs(a).bit_length() + b,
            ast.Mod: 0,
        }[type(node.op)]
    elif type(a) is str:  # repetition only: `'%d' % 5` is formatting, left to its guard
        size = len(a) * b if isinstance(node.op, ast.Mult) else _FOLD_LIMIT + 1
    else:
        size = 0 if isinstance(node.op, (ast.Mult, ast.Pow, ast.Mod)) else _FOLD_LIMIT + 1
    if size > _FOLD_LIMIT:
        return None
    try:
        value = _FOLDABLE[type(node.op)](a, b)
    except (ArithmeticError, ValueError, TypeError):
        return None  # raises at run time, where the error gets its line
    folded = ast.Constant(value)
    copy_locations(folded, node)
    return folded


_FOLDABLE = {ast.Mult: operator.mul, ast.Pow: operator.pow, ast.LShift: operator.lshift, ast.Mod: operator.mod}


def _literal_value(node: ast.expr) -> Any:
    """The value of a literal or a negated literal, else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _literal_value(node.operand)
        return -value if type(value) in (int, float) else None
    return node.value if isinstance(node, ast.Constant) else None


def _float_literal(node: ast.expr) -> bool:
    """`x * 0.5` cannot repeat a sequence or grow an int: leave it native."""
    return isinstance(node, ast.Constant) and type(node.value) is float


def _finally_escapes(node: ast.AST, *, in_loop: bool) -> list[ast.stmt]:
    """`return` anywhere, `break`/`continue` outside a loop of their own, in a finally block."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
        return []
    if isinstance(node, ast.Return) or (isinstance(node, (ast.Break, ast.Continue)) and not in_loop):
        return [node]
    found: list[ast.stmt] = []
    for field, value in ast.iter_fields(node):
        nested_loop = in_loop or (isinstance(node, (ast.For, ast.While)) and field == "body")
        children = value if isinstance(value, list) else [value]
        for child in children:
            if isinstance(child, ast.AST):
                found.extend(_finally_escapes(child, in_loop=nested_loop))
    return found

"""Everyday function bodies (real_world.py) give on fnbox what they give on plain CPython.

`python -m tests.sandboxes.python.test_real_world [CHECKOUT]` prints the count, on this
checkout's fnbox or on the fnbox of another checkout (to count before a change).
"""

from __future__ import annotations

import asyncio
import json
import keyword
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from fnbox.sandboxes.base import Limits
from fnbox.sandboxes.python.sandbox import compile_workspace
from fnbox.workspaces.document import parse_workspace
from tests.sandboxes.python.real_world import BODIES

LIMITS = Limits(timeout=5.0, memory=64 << 20)


def on_fnbox(name: str, body: str, declared: tuple[str, ...], given: dict[str, Any]) -> Any:
    """The JSON result, or "error: ..." (refused at save or at run)."""
    document = {"functions": {name: {"language": "python", "code": body, "parameters": {p: {} for p in declared}}}}
    try:
        spec = parse_workspace("w", document).functions[name]
        sandbox = compile_workspace([spec.source()])
        if sandbox.errors:
            return "error: " + sandbox.errors[name].message
        return asyncio.run(sandbox.run(name, given, LIMITS)).result
    except Exception as exc:
        return f"error: {exc}"


def cpython_source(name: str, body: str, declared: tuple[str, ...]) -> str:
    local = [p for p in declared if p.isidentifier() and not keyword.iskeyword(p)]
    signature = ", ".join([f"{p}=None" for p in local] + ["**rest"])
    binding = "params = {" + "".join(f"{p!r}: {p}, " for p in local) + "**rest}"
    return f"def {name}({signature}):\n    {binding}\n" + textwrap.indent(body, "    ") + "\n"


def on_cpython(bodies: list[Any]) -> dict[str, Any]:
    """Every body in one plain CPython process."""
    script = ["import json", "results = {}"]
    for name, body, declared, given in bodies:
        script.append(cpython_source(name, body, declared))
        script.append(
            f"try:\n    results[{name!r}] = json.loads(json.dumps({name}(**{given!r})))\n"
            f"except Exception as exc:\n    results[{name!r}] = 'error: ' + repr(exc)"
        )
    script.append("print(json.dumps(results))")
    done = subprocess.run([sys.executable, "-c", "\n".join(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def compare() -> dict[str, tuple[Any, Any]]:
    """Each body's (fnbox, CPython) results."""
    reference = on_cpython(BODIES)
    return {name: (on_fnbox(name, body, declared, given), reference[name]) for name, body, declared, given in BODIES}


@pytest.mark.slow  # a subprocess
def test_every_body_gives_what_cpython_gives():
    results = compare()
    assert len(results) >= 40
    for name, (_, cpython) in results.items():
        assert not (isinstance(cpython, str) and cpython.startswith("error")), (name, cpython)
    differ = {name: pair for name, pair in results.items() if pair[0] != pair[1]}
    assert not differ


_ON_CHECKOUT = """
import importlib.util, sys
sys.path.insert(0, sys.argv[1])
for name, path in (("tests.sandboxes.python.real_world", sys.argv[2]), ("real_world_test", sys.argv[3])):
    spec = importlib.util.spec_from_file_location(name, path)
    sys.modules[name] = module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
module.main()
"""


def main() -> None:
    outcome = compare()
    same = [name for name, (a, b) in outcome.items() if a == b]
    for name, (a, b) in outcome.items():
        if a != b:
            print(f"{name}: fnbox {str(a)[:150]!r}")
    print(f"{len(same)} of {len(outcome)} bodies give on fnbox what they give on CPython")


if __name__ == "__main__":
    if len(sys.argv) > 1:  # another checkout's fnbox, with these bodies
        here = __file__.rsplit("/", 1)[0]
        files = (f"{here}/real_world.py", __file__)
        subprocess.run([sys.executable, "-c", _ON_CHECKOUT, sys.argv[1], *files], check=True, cwd="/")
    else:
        main()

"""Which sandbox compiles which language."""

from __future__ import annotations

import functools

from sandboxes import js, python
from sandboxes.base import SandboxFactory

__all__ = ["LANGUAGES", "sandbox_factories"]

LANGUAGES = ("javascript", "python")


def sandbox_factories(*, python_modules: tuple[str, ...] = python.ALLOWED_MODULES) -> dict[str, SandboxFactory]:
    return {
        "javascript": js.compile_workspace,
        "python": functools.partial(python.compile_workspace, allowed_modules=python_modules),
    }

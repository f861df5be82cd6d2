"""Which sandbox compiles which language: the one place that maps a language to its factory."""

from __future__ import annotations

import functools

from fnbox.sandboxes.base import SandboxFactory

__all__ = ["LANGUAGES", "sandbox_factories", "sandbox_factory"]

LANGUAGES = ("javascript", "python")


def sandbox_factory(language: str, *, python_modules: tuple[str, ...] | None = None) -> SandboxFactory:
    """The factory of one language, importing only that language's sandbox.

    A Python worker must not map V8 under its RLIMIT_AS, hence the imports in here.
    `python_modules` narrows the import allow-list (default: every vetted module).
    """
    if language == "javascript":
        from fnbox.sandboxes import js

        js.prepare_blank()  # the first workspace compiles as fast as the next ones
        return js.compile_workspace
    from fnbox.sandboxes import python

    modules = python.ALLOWED_MODULES if python_modules is None else python_modules
    return functools.partial(python.compile_workspace, allowed_modules=modules)


def sandbox_factories(*, python_modules: tuple[str, ...] | None = None) -> dict[str, SandboxFactory]:
    return {language: sandbox_factory(language, python_modules=python_modules) for language in LANGUAGES}

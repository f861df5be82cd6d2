"""Each language fnbox runs, described once: what documents call it, its source files, its names.

Importing this module loads no engine: a language's sandbox (V8, RestrictedPython) is
imported only when its factory is asked for, so the server process, which validates
documents but runs no function itself, never maps V8.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from fnbox.sandboxes.base import SandboxFactory
from fnbox.sandboxes.js import names as js_names
from fnbox.sandboxes.python import names as python_names

__all__ = ["LANGUAGES", "Language", "language_named", "sandbox_factories", "sandbox_factory"]


@dataclass(frozen=True)
class Language:
    name: str
    #: What a document's `language` may say for it.
    aliases: tuple[str, ...]
    #: A source file of this language in an archive.
    suffix: str
    #: Names a function may not take: keywords, and what the sandbox itself defines.
    reserved_names: frozenset[str]
    #: Names starting with it are refused too (Python's guards live under "_").
    reserved_prefix: str | None = None

    def reserves(self, name: str) -> bool:
        return name in self.reserved_names or bool(self.reserved_prefix and name.startswith(self.reserved_prefix))


JAVASCRIPT = Language("javascript", ("javascript", "nodejs", "js"), ".js", js_names.RESERVED_NAMES)
PYTHON = Language("python", ("python",), ".py", python_names.RESERVED_NAMES, reserved_prefix="_")

#: Every language, by its name; the first is a document's default.
LANGUAGES: dict[str, Language] = {language.name: language for language in (JAVASCRIPT, PYTHON)}
_BY_ALIAS = {alias: language for language in LANGUAGES.values() for alias in language.aliases}


def language_named(alias: object) -> Language | None:
    """The language a document's `language` names, if any."""
    return _BY_ALIAS.get(alias) if isinstance(alias, str) else None


def sandbox_factory(
    language: str, *, python_modules: tuple[str, ...] | None = None, node_modules: tuple[str, ...] | None = None
) -> SandboxFactory:
    """The factory of one language, importing only that language's sandbox.

    A Python worker must not map V8 under its RLIMIT_AS, hence the imports in here.
    `python_modules` narrows the import allow-list (default: every vetted module);
    `node_modules` is what a JavaScript function may `require` (default: NODE_MODULES).
    """
    if language == JAVASCRIPT.name:
        from fnbox.sandboxes.js import context, overlap

        context.prepare_blank()  # the first workspace compiles as fast as the next ones
        if node_modules is None:
            return overlap.compile_overlapping
        return functools.partial(overlap.compile_overlapping, node_modules=node_modules)
    from fnbox.sandboxes.python import modules
    from fnbox.sandboxes.python import sandbox as python_sandbox

    allowed = modules.ALLOWED_MODULES if python_modules is None else python_modules
    return functools.partial(python_sandbox.compile_workspace, allowed_modules=allowed)


def sandbox_factories(
    *, python_modules: tuple[str, ...] | None = None, node_modules: tuple[str, ...] | None = None
) -> dict[str, SandboxFactory]:
    return {
        language: sandbox_factory(language, python_modules=python_modules, node_modules=node_modules)
        for language in LANGUAGES
    }

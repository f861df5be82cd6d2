"""`print()` and `log.*` for user code, writing into the current run's LogCollector."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fnbox.sandboxes.base import MAX_LOG_ENTRIES, MAX_LOG_MESSAGE, LogCollector
from fnbox.sandboxes.python.modules import make_proxy
from fnbox.sandboxes.python.results import clean_text


class Output:
    """One sandbox's log sink; the sandbox points `collector` at each run's LogCollector."""

    __slots__ = ("collector",)

    # copy.deepcopy() of a bound guard (`copy.deepcopy(getattr)`) must not clone the sandbox's state.
    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: Any) -> Any:
        return self

    def __init__(self) -> None:
        self.collector = LogCollector()

    def emit(self, level: str, args: tuple[Any, ...], sep: str = " ", end: str = "") -> None:
        collector = self.collector
        if len(collector.entries) >= MAX_LOG_ENTRIES:
            collector.dropped += 1  # skip formatting what would be dropped anyway
            return
        parts, size = [], 0
        for arg in args:
            text = arg if type(arg) is str else str(arg)
            parts.append(text[:MAX_LOG_MESSAGE])
            size += len(parts[-1]) + len(sep)
            if size > MAX_LOG_MESSAGE:
                break  # the collector cuts the message there anyway
        message = clean_text(sep.join(parts) + end)
        collector.add(level, message[:-1] if message.endswith("\n") else message)

    def make_print(self) -> Callable[..., None]:
        emit = self.emit

        def print(
            *args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
        ) -> None:
            """print() into the run's logs, at level info; `file` and `flush` are ignored."""
            if sep is None:
                sep = " "
            if end is None:
                end = "\n"
            if type(sep) is not str or type(end) is not str:
                raise TypeError("print() sep and end must be str")
            emit("info", args, sep[:MAX_LOG_MESSAGE], end[:MAX_LOG_MESSAGE])

        return print

    def make_log(self) -> Any:
        emit = self.emit

        def debug(*args: Any) -> None:
            emit("debug", args)

        def info(*args: Any) -> None:
            emit("info", args)

        def warning(*args: Any) -> None:
            emit("warn", args)

        def error(*args: Any) -> None:
            emit("error", args)

        members = {"debug": debug, "info": info, "warning": warning, "warn": warning, "error": error}
        return make_proxy("log", members, "<log>")

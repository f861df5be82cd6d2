"""A fresh V8 isolate set up for one workspace version: the runtime, then each function.

A sandbox builds one when it is compiled, and again if work left behind by a run wedges
the isolate (see sandbox.py): the same functions then run on in a new one.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from fnbox.sandboxes.base import MAX_LOG_ENTRIES, MAX_LOG_MESSAGE, FunctionSource
from fnbox.sandboxes.errors import CompilationError
from fnbox.sandboxes.js import codegen
from fnbox.sandboxes.js.engine import Engine, EngineError, Handle, resolve, resolve_threadsafe
from fnbox.sandboxes.js.host import HOST_CAPACITY, HOST_HEADER, MAX_HOST_TEXT, HostChannel
from fnbox.sandboxes.js.mailbox import CAPACITY, HOST_OFFSET, MAX_BATCH, Mail, Mailbox
from fnbox.sandboxes.js.names import NODE_MODULES, unavailable_requires
from fnbox.sandboxes.js.outcome import MAX_RESULT, MAX_RESULT_DEPTH

__all__ = ["SETUP_TIMEOUT", "Blank", "Context", "Inbox", "prepare_blank", "take_blank"]

#: Seconds allowed to set up the runtime or compile one function (no user code runs).
SETUP_TIMEOUT = 10.0


def without_comment_lines(source: str) -> str:
    """`source` without its lines that are only a `//` comment.

    An isolate keeps the text of every script it ran: runtime.js's comment lines, a fifth of
    it, would cost each warm sandbox some 20 KiB. (No template literal of runtime.js spans
    lines, so no such line is inside one: tests/sandboxes/js/test_context.py checks it.)
    """
    return "\n".join(line for line in source.split("\n") if not line.lstrip().startswith("//"))


_RUNTIME = without_comment_lines((Path(__file__).with_name("runtime.js")).read_text(encoding="utf-8"))


class Waiting(Protocol):
    """The run an inbox delivers to (inflight.py's Run)."""

    id: int
    loop: Any
    future: Any
    posted: float
    timeout: float
    network: Any
    mail: Any  # its outcome (mail, when), once handed over
    index: int  # its place in its batch (-1: none)

    def on_piece(self, data: bytes, more: bool) -> None: ...


class Inbox:
    """Receives `notify` on the isolate's thread (apart from the sandbox, so as not to keep it alive)."""

    def __init__(self) -> None:
        self.mailbox: Mailbox | None = None
        self.current: Waiting | None = None
        self.host: HostChannel | None = None
        #: The runs of the batch in flight, by id (see batch.py), and the one host calls are for.
        self.batch: dict[int, Waiting] = {}
        self.hosting: Waiting | None = None
        #: When the isolate last handed a run's outcome over (time.perf_counter()): see on_host.
        self.ended: Callable[[], float] = time.perf_counter

    def waiting(self, run_id: int) -> Waiting | None:
        """The run whose outcome `run_id` is, if one waits for it."""
        run = self.current
        if run is not None and run.id == run_id:
            return run
        return self.batch.get(run_id) if self.batch else None

    def on_host(self) -> None:
        host = self.host
        if host is None:
            return
        batch, mailbox = self.batch, self.mailbox
        if batch and mailbox is not None:  # JS may be runs ahead of the loop: calls are its run's
            run = batch.get(mailbox.started())  # (only a run JS took: user code can write that id)
            if run is not None and run is not self.hosting and mailbox.taken(run.index):
                self.hosting = run
                # Its run began as the one before it handed its outcome over (or as the batch was posted).
                host.deadline = max(run.posted, self.ended()) + run.timeout
                host.network = run.network
                if run.network is not None:
                    run.network.deadline = host.deadline
        host.on_call()  # JS waits for this call to return: see host.py

    def on_notify(self) -> None:
        mailbox = self.mailbox
        if mailbox is None:
            return
        ended = time.perf_counter()
        mail = mailbox.read()  # JS waits for this call to return, so the mail is complete
        run = self.waiting(mail.run_id)
        if run is not None:
            run.mail = (mail, ended)
            resolve_threadsafe(run.loop, run.future, run.mail)

    def on_signal(self, copy: bytes, ended: float, loop: asyncio.AbstractEventLoop) -> None:
        """`notify` through the native hand-off: the mailbox as JS left it, on `loop`'s thread."""
        mail = Mail.from_copy(copy)
        run = self.waiting(mail.run_id)
        if run is None:
            return
        run.mail = (mail, ended)
        if run.loop is loop:
            resolve(run.future, run.mail)
        else:  # the run came from another loop since this one was told to expect it
            resolve_threadsafe(run.loop, run.future, run.mail)

    def on_live(self) -> None:
        run, mailbox = self.current, self.mailbox
        if run is None or mailbox is None:
            return
        run_id, data, more = mailbox.piece()  # JS waits for this call to return
        if run_id == run.id:
            run.on_piece(data, more)


class Blank:
    """An isolate with the runtime installed and no function yet.

    Starting an isolate and installing runtime.js is most of a workspace's compile time
    (about 2.5 + 5 ms), so one blank is kept ready per process: see `take_blank`.
    """

    def __init__(self) -> None:
        self.engine = Engine()
        self.inbox = Inbox()
        self.inbox.ended = self.engine.last_signal
        try:
            self.mailbox = self._install_runtime()
            self.go: Handle = self.engine.script(codegen.GO)
        except BaseException:
            self.engine.close()
            raise

    def _install_runtime(self) -> Mailbox:
        arguments = (
            f"{MAX_LOG_ENTRIES},{MAX_LOG_MESSAGE},{CAPACITY},{codegen.HEADER_LINES},{MAX_RESULT},{MAX_RESULT_DEPTH},"
            f"{HOST_CAPACITY},{MAX_HOST_TEXT},{json.dumps(list(NODE_MODULES))},{MAX_BATCH}"
        )
        source = f"{_RUNTIME}({arguments})\n//# sourceURL=fnbox:runtime"
        install = self.engine.eval(source, timeout=SETUP_TIMEOUT)
        notify = self.engine.notifier(self.inbox.on_notify, self.inbox.on_signal)
        live = self.engine.notifier(self.inbox.on_live)
        host = self.engine.notifier(self.inbox.on_host)
        memory = self.engine.call(install, notify, live, host, timeout=SETUP_TIMEOUT)
        mailbox = self.inbox.mailbox = Mailbox(memory, HOST_OFFSET + HOST_HEADER * 4 + HOST_CAPACITY * 2)
        self.engine.set_mailbox(memory, CAPACITY)
        self.inbox.host = HostChannel(memory, HOST_OFFSET, mailbox.memory_limit)
        return mailbox


_spare: Blank | None = None
_spare_building = False
_spare_changed = threading.Condition()


def take_blank() -> Blank:
    """The spare blank (waiting for it if it is being made), and start making the next.

    A blank holds no tenant's code or state, so handing it to any workspace is safe.
    Waiting for a blank half made beats starting another from scratch.
    """
    global _spare
    with _spare_changed:
        _spare_changed.wait_for(lambda: not _spare_building, timeout=SETUP_TIMEOUT)
        blank, _spare = _spare, None
    prepare_blank()
    return blank if blank is not None else Blank()


def prepare_blank() -> None:
    """Start making the spare blank in the background, unless one is ready or on its way."""
    global _spare_building
    with _spare_changed:
        if _spare is not None or _spare_building:
            return
        _spare_building = True
    threading.Thread(target=_make_spare, name="fnbox-js-spare", daemon=True).start()


def _make_spare() -> None:
    global _spare, _spare_building
    try:
        blank: Blank | None = Blank()
    except (EngineError, ValueError):
        blank = None  # the next take_blank makes its own and says why
    with _spare_changed:
        _spare, _spare_building = blank, False
        _spare_changed.notify_all()


class Context:
    """An isolate with the runtime installed and a workspace's functions compiled.

    Sync, from any thread; raises EngineError or ValueError if V8 itself fails.
    """

    def __init__(self, functions: Sequence[FunctionSource], node_modules: Sequence[str] = NODE_MODULES) -> None:
        blank = take_blank()
        self.node_modules = tuple(node_modules)
        self.engine = blank.engine
        self.inbox = blank.inbox
        self.mailbox = blank.mailbox
        self.go = blank.go
        self._go_batch: Handle | None = None
        self.errors: dict[str, CompilationError] = {}
        self.indexes: dict[str, int] = {}  # compiled functions, by name
        self.memory_limit: int | None = None
        try:
            if self.node_modules != NODE_MODULES:
                self.engine.eval(f"$fnbox.allow({json.dumps(list(self.node_modules))})", timeout=SETUP_TIMEOUT)
            for function in functions:
                self._define(function)
        except BaseException:
            self.engine.close()
            raise

    @property
    def go_batch(self) -> Handle:
        """The eval of a batch of runs (see runtime.js), made the first time one is posted."""
        if self._go_batch is None:
            self._go_batch = self.engine.script(codegen.GO_BATCH)
        return self._go_batch

    def set_deadline(self, deadline: float) -> None:
        """When the run about to start times out (time.perf_counter()): host calls check it."""
        if self.inbox.host is not None:
            self.inbox.host.deadline = deadline

    def set_network(self, network: Any) -> None:
        """The outbound requests of the run about to start (a hostnet.JsNetwork), or None after it."""
        if self.inbox.host is not None:
            self.inbox.host.network = network

    def set_memory_limit(self, limit: int) -> None:
        """The limit of the run about to start: V8's heap, and the ArrayBuffers runtime.js counts."""
        if limit != self.memory_limit:
            self.engine.set_memory_limit(limit)
            self.mailbox.set_memory_limit(limit)
            self.memory_limit = limit

    def _define(self, function: FunctionSource) -> None:
        name = function.name
        try:
            self.indexes[name] = int(self.engine.eval(codegen.define_call(function), timeout=SETUP_TIMEOUT))
        except ValueError as exc:
            self.errors[name] = _compilation_error(name, None, str(exc))
        except EngineError as exc:
            message, line = codegen.syntax_error(exc.message, function.code)
            self.errors[name] = _compilation_error(name, line, message)
            return
        for module, line in unavailable_requires(function.code, self.node_modules):
            available = ", ".join(self.node_modules)
            message = f"module {module!r} is not available in fnbox (available: {available})"
            self.errors[name] = _compilation_error(name, line, message)
            return


def _compilation_error(function: str, line: int | None, message: str) -> CompilationError:
    where = f" (line {line})" if line else ""  # worded as the Python sandbox words it
    return CompilationError(
        f"function {function!r} does not compile{where}: {message}",
        details={"function": function, "line": line},
    )

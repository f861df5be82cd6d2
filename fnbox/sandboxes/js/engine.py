"""One V8 isolate, driven through mini-racer's C interface.

Why not `py_mini_racer.MiniRacer`: each of its calls hops through an asyncio loop of its
own (about 250 µs an eval, against 30 µs here), it adopts the caller's running loop if
there is one, and reading a JS value back is a further round trip that blocks for good
if the isolate is busy. Here an eval is posted straight to the isolate's thread and its
completion handed to a plain callback on that thread; the caller decides where to wake up.

This is the only module that touches mini-racer's private parts (its ctypes declarations,
matching the 0.14 C interface), so a mini-racer upgrade is checked here.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import itertools
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from py_mini_racer import DEFAULT_V8_FLAGS, LibAlreadyInitializedError, init_mini_racer
from py_mini_racer._dll import MR_CALLBACK

from fnbox.sandboxes.js import handoff

__all__ = ["Engine", "EngineError", "Handle", "SharedMemory", "resolve", "resolve_threadsafe", "stuck_isolates"]

# Value types of the C interface (mini-racer's binary_value.h).
_NULL, _BOOL, _INTEGER, _DOUBLE, _STRING, _UNDEFINED = 1, 2, 3, 4, 5, 11
_SHARED_ARRAY_BUFFER, _ARRAY_BUFFER = 101, 102
_UNPIN = 0  # callback id of the last eval, posted by close() (below the engine's slot bits)
#: Seconds between looks at whether V8's thread is stuck, while freeing waits for that last
#: eval's callback (see Engine._wait_for_tasks); and CPU seconds it must have run meanwhile to
#: count as stuck: far more than an eval takes from starting to reading its context.
UNPIN_WAIT = 0.1
STUCK_CPU = 0.005
_SLOT_SHIFT = 32  # with _handoff, an id's bits from here on name its engine's slot
_ID_MASK = (1 << _SLOT_SHIFT) - 1
_ERRORS = {
    200: "execute",
    201: "parse",
    202: "oom",
    203: "timeout",
    204: "terminated",
    205: "value",
    206: "key",
}


#: mini-racer's flags, less memory protection keys: their permissions are per thread and
#: fixed when a thread starts, so with them V8 crashes the process when a thread started
#: before V8 was set up (an asyncio executor's, say) frees or uses an isolate. And `gc`,
#: which runtime.js takes for itself (to count live ArrayBuffers) and hides from user code.
V8_FLAGS = (*DEFAULT_V8_FLAGS, "--no-memory-protection-keys", "--expose-gc-as=$fnbox_gc")


def _load_v8() -> ctypes.CDLL:
    try:
        return init_mini_racer(flags=V8_FLAGS)
    except LibAlreadyInitializedError:  # someone else set V8 up first: take it as it is
        return init_mini_racer(ignore_duplicate_init=True)


#: When each isolate still being freed was dropped (by id of its Engine).
_freeing: dict[int, float] = {}


def stuck_isolates(after: float) -> int:
    """Isolates dropped more than `after` s ago and still not freed.

    Freeing waits for JS to stop, and some of V8's native loops never look at a
    TerminateExecution: such an isolate's thread spins on (and its memory stays) until the
    loop ends, minutes later maybe. Only the process ending stops it sooner.
    """
    now = time.monotonic()
    return sum(1 for since in list(_freeing.values()) if now - since > after)


class EngineError(Exception):
    """An eval that did not complete: `kind` is parse, execute, oom, terminated..."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Handle:
    """A JS object held for Python on the C++ side (freed with its context)."""

    raw: Any


@dataclass(frozen=True)
class SharedMemory:
    """A SharedArrayBuffer's memory, readable in place while its context lives."""

    address: int
    size: int
    handle: Handle


Callback = Callable[[Any], None]


#: One isolate made at a time: two threads making a process's first isolates at once can
#: both set up V8's shared memory pools, which V8 answers by aborting the process ("Check
#: failed: !IsConfigurablePoolInitialized()"; seen when a compile and the spare blank raced).
_making = threading.Lock()
#: Engines by their slot in `_handoff`, for the one Python callback it forwards to.
_by_slot: dict[int, Engine] = {}
_forward: Any = None  # that callback (a ctypes function pointer): made once, kept for good


def _forward_to_engine(callback_id: int, raw: Any) -> None:
    engine = _by_slot.get(callback_id >> _SLOT_SHIFT & 0x1FFFFFFF)
    if engine is not None:
        engine._on_callback(callback_id, raw)


def _native_callback(dll: ctypes.CDLL) -> Any:
    """mini-racer's callback for an engine on the native path: `_handoff`'s C function."""
    global _forward
    if _forward is None:
        forward = MR_CALLBACK(_forward_to_engine)
        free_value = ctypes.cast(dll.mr_free_value, ctypes.c_void_p).value
        handoff.native.configure(ctypes.cast(forward, ctypes.c_void_p).value, free_value)
        _forward = forward
    return MR_CALLBACK(handoff.native.trampoline())


class Engine:
    """A V8 isolate and context: post evals, cancel them, close.

    Completion callbacks run on the isolate's thread while it waits for them, so they must
    be quick and must not call back into the isolate synchronously. With `_handoff` built
    (handoff.py), quiet evals and signalling notifiers skip Python on that thread.
    """

    def __init__(self) -> None:
        self._dll = _load_v8()
        self._lock = threading.Lock()
        self._closing = False
        self._ids = itertools.count(_UNPIN + 1)
        self._pending: dict[int, Callback] = {}  # one-shot: eval and call completions
        self._quiet: tuple[int, Callback] | None = None  # the last quiet eval: see start_eval
        self._tasks: dict[int, int] = {}  # task ids of evals and calls not heard of yet, by callback id
        self._quiet_tasks: collections.deque[int] = collections.deque(maxlen=64)  # never heard of
        self._unpinned = threading.Event()  # the last eval's callback came: see close
        self._notifiers: dict[int, Callable[[], None]] = {}  # JS -> Python notifications
        self._gil_state: int | None = None  # see _on_callback
        self._thread: int | None = None  # the isolate's thread (its ident), once it called back
        self._native = handoff.native
        self._slot = -1
        self._fd = -1  # the pipe signals go to
        self._signal_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None  # the loop that pipe is of
        self._base = 0  # the slot's bits of every callback id
        if self._native is not None:
            self._slot = self._native.open_slot()
            self._base = self._slot << _SLOT_SHIFT
            _by_slot[self._slot] = self
            self._callback = _native_callback(self._dll)
        else:
            self._callback = MR_CALLBACK(self._on_callback)  # must outlive the context
        with _making:
            self._ctx = self._dll.mr_init_context(self._callback)
        if self._native is not None:
            self._native.bind(self._slot, self._ctx)
        self._closed = threading.Event()
        # A first task, which mini-racer answers without the context: the thread its callback
        # comes on is the isolate's (see _wait_for_tasks).
        self.start_eval(Handle(None), _ignore)

    @property
    def native(self) -> bool:
        """Whether this engine hands runs over through `_handoff` (see handoff.py)."""
        return self._native is not None

    def _next_id(self) -> int:
        return self._base | ((next(self._ids) - 1) % _ID_MASK + 1)

    # ---- evals --------------------------------------------------------------------------

    def start_eval(self, code: str | Handle, on_done: Callback, *, quiet: bool = False) -> int:
        """Post `code` to the isolate; `on_done(value or EngineError)` gets the outcome.

        A `quiet` eval's value is not wanted: on the native path, `on_done` only hears of
        an error. Only the last quiet eval posted is heard of at all.
        """
        with self._lock:
            if self._closing:
                raise EngineError("closed", "the sandbox is closed")
            callback_id = self._next_id()
            quiet = quiet and self._native is not None
            if quiet:
                callback_id |= handoff.QUIET
                self._quiet = (callback_id, on_done)
            else:
                self._pending[callback_id] = on_done
            if isinstance(code, Handle):
                task_id = int(self._dll.mr_eval(self._ctx, code.raw, callback_id))
            else:
                data = code.encode("utf-8")
                handle = self._dll.mr_alloc_string_val(self._ctx, data, len(data), _STRING)
                try:
                    task_id = int(self._dll.mr_eval(self._ctx, handle, callback_id))
                finally:
                    self._dll.mr_free_value(self._ctx, handle)
            self._track(callback_id, task_id, quiet)
            return task_id

    def _track(self, callback_id: int, task_id: int, quiet: bool) -> None:
        """Remember a task until its callback comes, for close to cancel (see there)."""
        if quiet:  # its callback comes only if it fails: the last few are kept
            self._quiet_tasks.append(task_id)
        else:
            self._tasks[callback_id] = task_id
            if callback_id not in self._pending:  # its callback came already
                self._tasks.pop(callback_id, None)

    def script(self, code: str) -> Handle:
        """`code` kept as a JS string, to eval again and again without re-sending it."""
        data = code.encode("utf-8")
        return Handle(self._dll.mr_alloc_string_val(self._ctx, data, len(data), _STRING))

    def cancel(self, task_id: int) -> None:
        """Stop an eval: V8 terminates it if it is running, or skips it if queued."""
        with self._lock:
            if not self._closing:
                self._dll.mr_cancel_task(self._ctx, task_id)

    def eval(self, code: str, *, timeout: float) -> Any:
        """Eval and wait, from any thread (compilation and set-up, never a run)."""
        return self._wait(lambda on_done: self.start_eval(code, on_done), timeout)

    async def eval_async(self, code: str, *, timeout: float) -> Any:
        """Eval and wait on the running asyncio loop; cancels the eval on timeout."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        task_id = self.start_eval(code, lambda value: resolve_threadsafe(loop, future, value))
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancel that comes
            # as the eval's answer does, and the caller would go on as if never cancelled.
            async with asyncio.timeout(timeout):
                value = await future
        except TimeoutError:
            self.cancel(task_id)
            raise
        return _unwrap(value)

    def call(self, function: Handle, *args: Handle, timeout: float) -> Any:
        """Call a JS function with JS values, and wait (set-up only)."""
        argv = self.eval("[]", timeout=timeout)
        for arg in args:
            _unwrap(self._decode(self._dll.mr_array_push(self._ctx, argv.raw, arg.raw)))
        this = self._dll.mr_alloc_int_val(self._ctx, 0, _UNDEFINED)

        def start(on_done: Callback) -> int:
            with self._lock:
                if self._closing:
                    raise EngineError("closed", "the sandbox is closed")
                callback_id = self._next_id()
                self._pending[callback_id] = on_done
                task_id = int(self._dll.mr_call_function(self._ctx, function.raw, this, argv.raw, callback_id))
                self._track(callback_id, task_id, False)
                return task_id

        return self._wait(start, timeout)

    def _wait(self, start: Callable[[Callback], int], timeout: float) -> Any:
        done = threading.Event()
        box: list[Any] = []

        def on_done(value: Any) -> None:
            box.append(value)
            done.set()

        task_id = start(on_done)
        if not done.wait(timeout):
            self.cancel(task_id)
            raise EngineError("timeout", f"V8 did not answer within {timeout} s")
        return _unwrap(box[0])

    def notifier(
        self,
        on_notify: Callable[[], None],
        on_signal: Callable[[bytes, float, asyncio.AbstractEventLoop], None] | None = None,
    ) -> Handle:
        """A JS function that calls `on_notify()` on the isolate's thread, JS waiting.

        With `on_signal`, on the native path, it copies the mailbox (set_mailbox) instead, and
        `on_signal(copy, when, loop)` gets it on `loop`, the one given to `signal_to`; `on_notify` still gets
        the calls that cannot go that way (no loop yet, a pipe full).
        """
        callback_id = self._next_id()
        if on_signal is not None and self._native is not None:
            callback_id |= handoff.SIGNAL
            handoff.signals[callback_id] = self._guard(on_signal)
        self._notifiers[callback_id] = on_notify
        return Handle(self._dll.mr_make_js_callback(self._ctx, callback_id))

    def _guard(
        self, on_signal: Callable[[bytes, float, asyncio.AbstractEventLoop], None]
    ) -> Callable[[bytes, float, asyncio.AbstractEventLoop], None]:
        def guarded(copy: bytes, ended: float, loop: asyncio.AbstractEventLoop) -> None:
            if not self._closing:
                on_signal(copy, ended, loop)

        return guarded

    def set_mailbox(self, memory: SharedMemory, capacity: int) -> None:
        """The mailbox a signalling notifier copies (header, then `capacity` UTF-16 units)."""
        if self._native is not None:
            self._native.set_mailbox(self._slot, memory.address, capacity)

    def swap(self, address: int, expected: int, desired: int) -> int:
        """Compare-and-swap an int32 of shared memory (native path only): what it held."""
        return int(self._native.swap(address, expected, desired))

    def last_signal(self) -> float:
        """When the isolate last handed a run's signal over natively (time.perf_counter()), or 0."""
        return float(self._native.ended(self._slot)) if self._native is not None else 0.0

    def signal_to(self, loop: asyncio.AbstractEventLoop, run_id: int, last: int | None = None) -> None:
        """Hand run `run_id`'s signal (the mailbox's first slot) to `loop` (call on its thread), or
        those of runs `run_id`..`last`, each once and in order (a batch's); any other signal goes
        to the notifier's `on_notify`, as on the pure-Python path."""
        if self._native is not None:
            if self._signal_loop is None or self._signal_loop() is not loop:
                # A new loop's pipe may reuse the number of a gone loop's (whose slots were retired).
                self._fd = handoff.pipe_for(loop).write_fd
                self._native.set_fd(self._slot, self._fd)
                self._signal_loop = weakref.ref(loop)
            self._native.expect(self._slot, run_id, run_id if last is None else last)

    # ---- memory -------------------------------------------------------------------------

    def set_memory_limit(self, limit: int) -> None:
        """V8 terminates JS at the first GC that finds the heap over `limit` bytes."""
        with self._lock:
            if not self._closing:
                self._dll.mr_set_hard_memory_limit(self._ctx, limit)

    def memory_limit_reached(self) -> bool:
        with self._lock:
            return not self._closing and bool(self._dll.mr_hard_memory_limit_reached(self._ctx))

    # ---- lifetime -----------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        return self._closing

    def close(self, *, wait: float = 2.0) -> None:
        """Free the isolate (terminating any JS still running), waiting at most `wait` s.

        The freeing runs on its own thread: if V8 is stuck somewhere TerminateExecution
        cannot reach, the caller still gets on, and the worker's supervisor deals with it.

        mini-racer's freeing cancels the tasks still queued, but does not wait for one that
        has just started: an eval beginning then finds its context already taken apart, and
        V8's thread crashes the process (SIGSEGV). So no eval may start while the context
        is freed: close cancels every task it knows of (one not started never starts; one
        running is terminated), then posts a last one, with no code (mini-racer answers it
        without looking at the context), whose callback also unpins the thread (see
        _on_callback). Tasks run in order, so once that callback has come, every earlier
        task is over, and freeing is safe. See _wait_for_tasks for JS no cancel reaches.
        """
        with self._lock:
            if not self._closing:
                self._closing = True
                for task_id in [*self._tasks.values(), *self._quiet_tasks]:
                    self._dll.mr_cancel_task(self._ctx, task_id)
                self._tasks.clear()
                self._quiet_tasks.clear()
                self._dll.mr_eval(self._ctx, None, self._base | _UNPIN)
                _freeing[id(self)] = time.monotonic()
                threading.Thread(target=self._free, name="fnbox-js-close", daemon=True).start()
        self._closed.wait(wait)

    def _free(self) -> None:
        self._wait_for_tasks()
        if self._native is not None:
            # Nothing of _handoff's may hold the context as it goes (see _handoff.c).
            self._native.seal(self._slot)
        self._dll.mr_free_context(self._ctx)
        if self._native is not None:  # no callback comes any more
            # Let go of the slot only once nothing of this engine's is left in it: an engine
            # made meanwhile may take it, and must find its own routes there.
            if _by_slot.get(self._slot) is self:
                del _by_slot[self._slot]
            for callback_id in self._notifiers:
                handoff.signals.pop(callback_id, None)
            self._native.close_slot(self._slot)
        _freeing.pop(id(self), None)
        self._closed.set()

    def _wait_for_tasks(self) -> None:
        """Wait for the last eval's callback, unless V8's thread is stuck (see close).

        JS that no cancel reaches (work a run left behind, looping in a microtask) holds that
        callback back until the context is freed. Such a thread keeps running: once it has
        run for STUCK_CPU s meanwhile, it is past the start of any eval (and each task it
        knows of is cancelled, so none starts any more), so freeing is safe, and stops that
        JS. A thread that does not run (the machine is busy, or it waits for the GIL) is
        waited for: it would hold freeing up all the same.
        """
        if self._unpinned.wait(UNPIN_WAIT) or self._thread is None:
            return  # (no callback yet: only the first task, which needs no context, has begun)
        clock = time.pthread_getcpuclockid(self._thread)
        since = time.clock_gettime(clock)
        while not self._unpinned.wait(UNPIN_WAIT):
            if time.clock_gettime(clock) - since >= STUCK_CPU:
                return

    # ---- from the isolate's thread ------------------------------------------------------

    def _on_callback(self, callback_id: int, raw: Any) -> None:
        # Never raise (ctypes would only print it), and stay off the isolate once closing.
        #
        # ctypes gives a thread Python did not start a fresh PyThreadState for every
        # callback, and deletes it after: 13 µs a callback, two callbacks a run. One
        # PyGILState_Ensure of our own, released on close, keeps the isolate's thread
        # state alive in between (2 µs a callback). Ensure and Release stay matched,
        # on the same thread, as the C API asks.
        try:
            if self._thread is None:
                self._thread = threading.get_ident()
            if self._closing:
                if callback_id == self._base | _UNPIN:
                    if self._gil_state is not None:
                        ctypes.pythonapi.PyGILState_Release(self._gil_state)
                        self._gil_state = None
                    self._unpinned.set()
                return
            if self._gil_state is None:
                self._gil_state = ctypes.pythonapi.PyGILState_Ensure()
            notify = self._notifiers.get(callback_id)
            if notify is not None:
                self._dll.mr_free_value(self._ctx, raw)  # the call's arguments: unused
                notify()
                return
            on_done = self._pending.pop(callback_id, None)
            self._tasks.pop(callback_id, None)
            if on_done is None and self._quiet is not None and self._quiet[0] == callback_id:
                on_done = self._quiet[1]
            value = self._decode(raw)
            if on_done is not None:
                on_done(value)
        except BaseException:
            pass

    def _decode(self, raw: Any) -> Any:
        """A primitive or an EngineError (freeing `raw`), or a Handle that keeps it."""
        contents = raw.contents
        kind = contents.type
        value = contents.value
        if kind == _STRING or kind in _ERRORS:
            text = ctypes.string_at(value.bytes_val, contents.len).decode("utf-8", "replace")
            result: Any = text if kind == _STRING else EngineError(_ERRORS[kind], text)
        elif kind in (_NULL, _UNDEFINED):
            result = None
        elif kind == _BOOL:
            result = value.int_val == 1
        elif kind == _INTEGER:
            result = int(value.int_val)
        elif kind == _DOUBLE:
            result = float(value.double_val)
        elif kind in (_SHARED_ARRAY_BUFFER, _ARRAY_BUFFER):
            return SharedMemory(int(value.value_ptr or 0), int(contents.len), Handle(raw))
        else:
            return Handle(raw)
        self._dll.mr_free_value(self._ctx, raw)
        return result


def _ignore(value: Any) -> None:
    pass


def _unwrap(value: Any) -> Any:
    if isinstance(value, EngineError):
        raise value
    return value


def resolve_threadsafe(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], value: Any) -> None:
    """Complete `future` from another thread; a loop already closed is ignored."""
    try:
        loop.call_soon_threadsafe(resolve, future, value)
    except RuntimeError:
        pass


def resolve(future: asyncio.Future[Any], value: Any) -> None:
    """Complete `future` unless something else did first."""
    if not future.done():
        future.set_result(value)

"""Worker threads for Python runs, so the event loop stays free while user code runs.

Not a ThreadPoolExecutor: its threads are joined at interpreter exit, so one run stuck
in C code would hold the process open; these are daemon threads. Each one also sets a
bounded decimal context, since decimal contexts are per thread.

A run that waits (on the network, a sleep, its turn in a sandbox whose runs overlap) says
so with `blocking()`: its thread no longer counts against the threads that run code, so
another workspace's run gets a thread of its own instead of waiting behind the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import decimal
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from fnbox.sandboxes.python.sizes import decimal_context

#: Threads at most, waiting ones included (each reserves a stack under the worker's memory cap).
MAX_THREADS = 256
#: Bytes of a run thread's stack. Under a worker's RLIMIT_AS every stack counts whole: at
#: glibc's default of 8 MiB, 512 MB hold about 50 threads, too few for runs that wait;
#: 4 MiB holds the deepest recursion the sandbox allows (its recursion limit comes first).
STACK_SIZE = 4 * 1024 * 1024

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]] | Callable[[], bool]


class Executor:
    """Runs sync callables on daemon threads and completes asyncio futures with the outcome."""

    def __init__(self, max_threads: int) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()  # a C lock: threading.Semaphore costs microseconds
        self._idle = 0  # threads free for a job, less the jobs reserved for them
        self._unserved = 0  # jobs queued with no thread reserved for them: the next free ones take them
        self._threads = 0
        self._blocked = 0  # threads inside blocking()
        self._max_threads = max_threads

    def submit(self, function: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._reserve()
        self._jobs.put((loop, future, function, args))
        return future

    def start(self, function: Callable[[], bool]) -> None:
        """Run `function` on a thread, with no outcome to deliver (it delivers its own); from any thread.

        It returns True if it called `idle` itself (after which it takes on no more work).

        Raises MemoryError if no thread could be started and none runs to take it.
        """
        self._reserve()
        self._jobs.put(function)

    def idle(self) -> None:
        """The calling thread of this executor takes no more work in its job: it is free for the next."""
        with self._lock:
            if self._unserved:
                self._unserved -= 1  # it takes a job that waits for a thread
            else:
                self._idle += 1

    def contended(self) -> bool:
        """Whether jobs wait for a thread: a thread running job after job lets them have it."""
        return not self._jobs.empty()

    def _reserve(self) -> None:
        """A thread for a job about to be queued: an idle one, or a new one if the limits allow."""
        with self._lock:
            if self._idle:
                self._idle -= 1  # an idle thread will take the job
            elif not (self._threads - self._blocked < self._max_threads and self._start_thread()):
                self._unserved += 1

    @contextlib.contextmanager
    def blocking(self) -> Iterator[None]:
        """Around a wait of a thread of this executor: a job waiting for a thread gets a new one."""
        with self._lock:
            self._blocked += 1
            if self._unserved and self._start_thread():
                self._unserved -= 1
        try:
            yield
        finally:
            with self._lock:
                self._blocked -= 1

    def _start_thread(self) -> bool:
        """A new thread, for a job about to be queued or waiting; False if none may or could start."""
        if self._threads >= MAX_THREADS:
            return False
        previous = threading.stack_size(STACK_SIZE)
        try:
            threading.Thread(target=self._work, name=f"fnbox-python-{self._threads + 1}", daemon=True).start()
        except RuntimeError:  # "can't start new thread": RLIMIT_AS covers thread stacks too
            if self._threads == 0:
                raise MemoryError("no thread could be started for the run (the worker is out of memory)") from None
            return False  # the job waits for a busy thread; the watchdog answers if none frees up
        finally:
            threading.stack_size(previous)
        self._threads += 1
        return True

    def _work(self) -> None:
        decimal.setcontext(decimal_context())
        while True:
            job = self._jobs.get()
            counted = False
            try:
                if isinstance(job, tuple):
                    _run(*job)
                else:
                    counted = job() is True  # called from here: its runs recurse as deep as those of _run
            except BaseException:
                pass
            del job
            if not counted:
                self.idle()


def _run(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], function: Callable[..., Any], args: Any) -> None:
    if future.done():  # the caller gave up before it started (cancelled, or the watchdog)
        return
    try:
        outcome, failed = function(*args), False
    except BaseException as exc:  # delivered to the caller, whatever it is
        outcome, failed = exc, True
    hand_back(future, outcome, failed)


def hand_back(future: asyncio.Future[Any], outcome: Any, failed: bool) -> None:
    """From a run's thread: complete `future` with the outcome, on its loop."""
    loop = future.get_loop()
    try:
        loop.call_soon_threadsafe(_deliver, future, outcome, failed)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass
    except MemoryError:  # out of memory for the callback itself: drop the outcome, say why
        del outcome
        loop.call_soon_threadsafe(_deliver, future, MemoryError("the run's outcome could not be delivered"), True)


def _deliver(future: asyncio.Future[Any], outcome: Any, failed: bool) -> None:
    if future.done():  # cancelled, or already answered by the watchdog
        return
    if failed:
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def interrupt(thread_id: int, exception: type[BaseException] | None) -> None:
    """Raise `exception` in a thread at its next bytecode (None clears a pending one).

    Reaches Python-level loops in host code (statistics over a huge input, say) that the
    deadline checks in user code do not; C code holding the GIL is beyond its reach.
    """
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exception) if exception is not None else None
    )


_PR_SET_NAME = 15
#: Called with the GIL held: prctl returns at once, and letting the GIL go for it would hand the
#: event loop a turn in the middle of a drain of short runs, two thread switches each time.
_libc = ctypes.PyDLL(None)
#: The OS name of a thread between runs.
IDLE_THREAD_NAME = "fnbox-python"


def name_thread(name: str) -> None:
    """Give the calling OS thread a name (15 bytes at most, as Linux keeps them)."""
    _libc.prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)


_PR_GET_NAME = 16


def thread_name() -> str:
    """The calling OS thread's name."""
    buffer = ctypes.create_string_buffer(16)
    _libc.prctl(_PR_GET_NAME, buffer, 0, 0, 0)
    return buffer.value.decode(errors="replace")


_executor: Executor | None = None
_executor_lock = threading.Lock()


def executor() -> Executor:
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                _executor = Executor(max_threads=min(32, (os.cpu_count() or 1) + 4))
    return _executor
